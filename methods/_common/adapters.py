"""Bottleneck adapters shared by the adapter-based methods (DualReal, DreamVideo).

A :class:`BottleneckAdapter` maps tokens ``x`` of width ``dim`` through a low-rank
bottleneck, optionally conditioned on a per-sample embedding ``c`` (DualReal's Eq. 1,
DreamVideo's motion adapter)::

    x' = x + cond_scale * W_cond(c)              (only with a condition projection and a c)
    A(x) = W_up(GELU(W_down(x'))) [+ x]          (the skip adds the *unconditioned* x)

``W_up`` is zero-initialised, so ``A(x)`` starts as ``x`` (with the skip) or ``0``
(without). The condition is one vector per sample, broadcast over every token: its
projection is computed once per sample, never per token. The skip adds ``x`` as it was
before the condition, as the DualReal authors' ``Adapter`` does (``hidden_states_in``
taken before ``condition_linear`` is added; wenc-k/DualReal, ``model/dit.py``).

The adapter is per-token (no mixing across tokens), so applying it to a concatenation of
token sets equals concatenating its outputs on each set; callers use that to avoid
building concatenated copies.

:func:`mix_adapters` evaluates a weighted sum ``sum_k w_k * A_k(x)`` of several adapters
with one fused up-projection; it is the fast path the methods run, while
:meth:`BottleneckAdapter.forward` is the plain reference the tests compare it with.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["BottleneckAdapter", "mix_adapters", "mix_pair"]


class BottleneckAdapter(nn.Module):
    """``dim -> hidden_dim -> dim`` adapter with GELU, zero-initialised up-projection.

    Args:
        dim: token width (3,072 for CogVideoX-5B).
        hidden_dim: bottleneck width (64 in DualReal and DreamVideo).
        cond_dim: width of the per-sample condition embedding; ``None`` for no
            condition projection (DualReal's identity adapters).
        skip: add the input back (``A(x) = ... + x``), as the paper's Eq. 1.
        zero_init_up: zero the up-projection (weights and bias) so training starts from
            ``A(x) = x`` (or 0). Tests switch it off so an adapter is not trivial.

    Parameters are kept in their own dtype (fp32 for training); :meth:`forward` computes
    in the dtype of ``x`` (bf16 on GPU), so gradients reach the fp32 master weights.
    """

    def __init__(
        self,
        dim: int,
        hidden_dim: int,
        cond_dim: int | None = None,
        *,
        skip: bool = True,
        zero_init_up: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        if dim <= 0 or hidden_dim <= 0:
            raise ValueError(
                f"adapter widths must be positive, got dim={dim}, hidden_dim={hidden_dim}"
            )
        factory = {"device": device, "dtype": dtype}
        self.dim = dim
        self.hidden_dim = hidden_dim
        self.cond_dim = cond_dim
        self.skip = skip
        self.down = nn.Linear(dim, hidden_dim, **factory)
        self.up = nn.Linear(hidden_dim, dim, **factory)
        self.cond = nn.Linear(cond_dim, dim, **factory) if cond_dim is not None else None
        if zero_init_up:
            nn.init.zeros_(self.up.weight)
            nn.init.zeros_(self.up.bias)

    @property
    def has_condition(self) -> bool:
        return self.cond is not None

    def condition_offset(
        self, cond: torch.Tensor, cond_scale: float, dtype: torch.dtype
    ) -> torch.Tensor:
        """``cond_scale * W_cond(c)`` pushed through ``W_down`` (no bias): ``(B_c, hidden_dim)``.

        Because ``W_down`` is linear, ``W_down(x + s W_cond(c)) = W_down(x) + W_down_nobias(s W_cond(c))``:
        adding this offset to ``W_down(x)`` avoids materialising ``x'`` for every token.
        """
        if self.cond is None:
            raise ValueError("this adapter has no condition projection (cond_dim=None)")
        c = cond.to(self.cond.weight.dtype)
        projected = cond_scale * self.cond(c)  # (B_c, dim)
        return F.linear(projected.to(dtype), self.down.weight.to(dtype))  # (B_c, hidden_dim)

    def hidden(
        self, x: torch.Tensor, cond: torch.Tensor | None = None, cond_scale: float = 1.0
    ) -> torch.Tensor:
        """``GELU(W_down(x'))``: ``(B, N, hidden_dim)`` for ``x`` ``(B, N, dim)``."""
        dt = x.dtype
        h = F.linear(x, self.down.weight.to(dt), self.down.bias.to(dt))
        if cond is not None and self.cond is not None:
            offset = self.condition_offset(cond, cond_scale, dt)  # (B_c, hidden_dim)
            h = h + offset.unsqueeze(1)  # broadcast over tokens
        return F.gelu(h)

    def forward(
        self, x: torch.Tensor, cond: torch.Tensor | None = None, cond_scale: float = 1.0
    ) -> torch.Tensor:
        """Reference evaluation, literally as Eq. 1.

        Args:
            x: tokens ``(B, N, dim)``.
            cond: per-sample condition ``(B, cond_dim)`` or ``(1, cond_dim)``; ignored by an
                adapter without a condition projection; ``None`` runs unconditioned.
            cond_scale: ``lam`` in ``x + lam * W_cond(c)``.
        Returns:
            ``(B, N, dim)`` in the dtype of ``x``.
        """
        dt = x.dtype
        x_in = x
        if cond is not None and self.cond is not None:
            x = x + (cond_scale * self.cond(cond.to(self.cond.weight.dtype))).to(dt).unsqueeze(1)
        h = F.gelu(F.linear(x, self.down.weight.to(dt), self.down.bias.to(dt)))
        out = F.linear(h, self.up.weight.to(dt), self.up.bias.to(dt))
        return out + x_in if self.skip else out


def _as_weight(w: float | torch.Tensor, x: torch.Tensor) -> float | torch.Tensor:
    """A mixing weight as a python float or a ``(B, 1, 1)`` tensor in ``x``'s dtype."""
    if isinstance(w, torch.Tensor):
        return w.to(device=x.device, dtype=x.dtype).reshape(-1, 1, 1)
    return float(w)


def mix_adapters(
    x: torch.Tensor,
    adapters: Sequence[BottleneckAdapter],
    weights: Sequence[float | torch.Tensor],
    conds: Sequence[torch.Tensor | None],
    cond_scale: float = 1.0,
) -> torch.Tensor:
    """``sum_k w_k * A_k(x)`` with one fused up-projection.

    Args:
        x: tokens ``(B, N, dim)``.
        adapters: the adapters to mix (same ``dim``).
        weights: one per adapter: a float or a per-sample tensor ``(B,)`` / ``(B, 1)``.
        conds: one per adapter: ``(B_c, cond_dim)`` with ``B_c`` in {1, B}, or ``None``.
        cond_scale: ``lam`` for every conditioned adapter.
    Returns:
        ``(B, N, dim)`` in the dtype of ``x``; equal (up to float rounding) to
        ``sum_k w_k * adapters[k](x, conds[k], cond_scale)``.
    """
    if not adapters:
        return torch.zeros_like(x)
    if not (len(adapters) == len(weights) == len(conds)):
        raise ValueError("mix_adapters: adapters, weights and conds must have the same length")
    dt = x.dtype
    ws = [_as_weight(w, x) for w in weights]
    hidden = [a.hidden(x, c, cond_scale) * w for a, w, c in zip(adapters, ws, conds, strict=True)]
    up_weight = torch.cat([a.up.weight.to(dt) for a in adapters], dim=1)  # (dim, sum hidden)
    out = F.linear(torch.cat(hidden, dim=-1), up_weight)
    # (dim,) for float weights, (B, 1, dim) for per-sample ones
    bias = sum(w * a.up.bias.to(dt) for a, w in zip(adapters, ws, strict=True))
    out = out + bias
    skip_weight = sum(w for a, w in zip(adapters, ws, strict=True) if a.skip)
    if not (isinstance(skip_weight, (int, float)) and skip_weight == 0):
        out = out + skip_weight * x
    return out


def mix_pair(
    x: torch.Tensor,
    identity: BottleneckAdapter,
    motion: BottleneckAdapter,
    weights: Sequence[float | torch.Tensor | None],
    cond: torch.Tensor | None = None,
    cond_scale: float = 1.0,
) -> torch.Tensor:
    """``w_id * identity(x) + w_m * motion(x, c)`` by :func:`mix_adapters`.

    ``weights`` is ``(w_id, w_m)``: floats or per-sample tensors ``(B,)``; ``None`` switches
    that adapter off entirely (it does not run). ``cond`` ``(B_c, cond_dim)`` goes to the
    motion adapter only.
    """
    w_id, w_m = weights
    adapters, ws, conds = [], [], []
    if w_id is not None:
        adapters.append(identity)
        ws.append(w_id)
        conds.append(None)
    if w_m is not None:
        adapters.append(motion)
        ws.append(w_m)
        conds.append(cond)
    return mix_adapters(x, adapters, ws, conds, cond_scale)
