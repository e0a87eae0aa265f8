"""Dual-aware adapters: an identity and a motion bottleneck adapter at each place of a block.

Each DiT block gets two places (paper Fig. 3; wenc-k/DualReal ``CogVideoXBlockWithAdapter``):
  * ``attn``: input = the block's normalised pre-attention tokens (text and visual), output
    added to the attention output before its gate;
  * ``ff``: input = the normalised pre-feed-forward tokens, output added to the FF output
    before its gate.

At each place ``out = w_id * A_id(x) + w_m * A_m(x, c)``; only the motion adapter has a
condition projection ``W_cond`` (the authors' runs: --use_motion_condition true,
--use_id_condition false).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .._common.adapters import BottleneckAdapter, mix_pair

__all__ = ["DIMENSIONS", "PLACES", "DualAwareAdapter", "BlockAdapters"]

#: the two learned dimensions, in the order of the weight pair (w_id, w_m)
DIMENSIONS = ("identity", "motion")
#: the two places of a block
PLACES = ("attn", "ff")


class DualAwareAdapter(nn.Module):
    """The identity and the motion adapter of one place.

    Args:
        dim: token width.
        hidden_dim: bottleneck width (64).
        cond_dim: width of the motion condition ``c``; ``None`` for an unconditioned motion adapter.
        skip: Eq. 1's ``+ x`` in both adapters.
        zero_init_up: zero-initialise the up-projections (tests switch it off).
    """

    def __init__(
        self,
        dim: int,
        hidden_dim: int,
        cond_dim: int | None,
        *,
        skip: bool = True,
        zero_init_up: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        kw = {"skip": skip, "zero_init_up": zero_init_up, "device": device, "dtype": dtype}
        self.identity = BottleneckAdapter(dim, hidden_dim, None, **kw)
        self.motion = BottleneckAdapter(dim, hidden_dim, cond_dim, **kw)

    def forward(
        self,
        x: torch.Tensor,
        weights: Sequence[float | torch.Tensor | None],
        cond: torch.Tensor | None = None,
        cond_scale: float = 1.0,
    ) -> torch.Tensor:
        """``w_id * A_id(x) + w_m * A_m(x, c)`` for ``x`` ``(B, N, dim)`` (see
        :func:`~dualreal_bench.methods._common.adapters.mix_pair`: a ``None`` weight switches
        that adapter off)."""
        return mix_pair(x, self.identity, self.motion, weights, cond, cond_scale)


class BlockAdapters(nn.Module):
    """The two places (``attn``, ``ff``) of one transformer block."""

    def __init__(self, dim: int, hidden_dim: int, cond_dim: int | None, **kwargs) -> None:
        super().__init__()
        self.attn = DualAwareAdapter(dim, hidden_dim, cond_dim, **kwargs)
        self.ff = DualAwareAdapter(dim, hidden_dim, cond_dim, **kwargs)

    def dimension_parameters(self, dimension: str) -> list[nn.Parameter]:
        """Parameters of the ``identity`` or ``motion`` adapters of both places."""
        return [p for place in (self.attn, self.ff) for p in getattr(place, dimension).parameters()]
