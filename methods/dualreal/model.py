"""Attaching DualReal to a diffusers ``CogVideoXTransformer3DModel`` with forward hooks.

The transformer is not forked: :meth:`DualRealModel.attach` registers hooks and
:meth:`DualRealModel.detach` removes them, leaving the backbone exactly as it was.

One transformer forward, in the order diffusers runs it, and what the hooks do::

    emb = time_embedding(t_proj)                    hook: keep emb (B, T)
    tokens = patch_embed(text, latents)             hook: w_id, w_m = controller(emb, tokens), (B, n) each
    for block i (group g = groups[i]):
        n_h, n_e, gate, e_gate = norm1(h, e, emb)
        a_h, a_e = attn1(n_h, n_e)                  hook: a_h += mix_i(n_h), a_e += mix_i(n_e)
        h, e = h + gate * a_h, e + e_gate * a_e        (so the adapters' output is gated too)
        ...norm2...
        f = ff(cat[n_e, n_h])                       hook: f += mix_i(cat[n_e, n_h])
    with mix_i(x) = w_id[:, g] * A_id(x) + w_m[:, g] * A_m(x, c)

Adapters are per-token, so applying them to the text and visual tokens separately at the
attention place equals applying them to the concatenation (as the authors do), without
building it.

The per-forward state (timestep embedding, weights) lives on this module between the
patch-embedding hook and the blocks; with gradient checkpointing the blocks are recomputed
during backward from the same state, so run backward before the next forward.
"""

from __future__ import annotations

import logging
import weakref
from typing import Any

import torch
from torch import nn

from .._common.hooks import TransformerHooks, attention_inputs, transformer_dims
from .adapters import DIMENSIONS, BlockAdapters
from .config import PAPER_NUM_GROUPS, DualRealConfig
from .controller import StageBlenderController, block_groups

logger = logging.getLogger(__name__)

__all__ = ["DualRealModel", "resolve_num_groups"]

#: transformer -> the DualRealModel attached to it (one at a time)
_ATTACHED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def resolve_num_groups(config: DualRealConfig, num_blocks: int) -> int:
    """``n`` for a backbone with ``num_blocks`` blocks.

    An explicit ``num_groups`` must divide ``num_blocks`` (:class:`ConfigError` naming both
    numbers otherwise). Unset, it is the paper's 7 where that divides the block count, else
    the largest divisor below 7 (the 2-block tiny profile gets 2, the 30-block 2B gets 6).
    """
    if config.num_groups is not None:
        block_groups(num_blocks, config.num_groups)  # raises on a mismatch
        return config.num_groups
    n = max(d for d in range(1, PAPER_NUM_GROUPS + 1) if num_blocks % d == 0)
    if n != PAPER_NUM_GROUPS:
        logger.info(
            "dualreal: %d blocks, using %d weight groups (the paper's 7 does not divide them)",
            num_blocks,
            n,
        )
    return n


class DualRealModel(nn.Module):
    """All of DualReal's learned modules for one transformer, and the hooks that run them.

    Args:
        num_blocks, dim, time_dim: the transformer's block count, token width and
            timestep-embedding width (see :func:`transformer_dims`).
        config: the method's config (adapter width, skip, condition, controller, groups).
        zero_init_up: zero-initialise the adapters' up-projections (tests switch it off).
        device, dtype: where the learned parameters live (fp32 for training; ``meta`` to count).

    Runtime controls (set by the method, read by the hooks):
        ``condition``: ``(B_c, cond_dim)`` image embedding for the motion adapters or ``None``;
        ``active``: which of (identity, motion) run at all; a switched-off adapter is skipped;
        ``trace``: a list that receives ``w_id`` ``(B, n)`` of every forward, or ``None``.
    """

    def __init__(
        self,
        num_blocks: int,
        dim: int,
        time_dim: int,
        config: DualRealConfig,
        *,
        zero_init_up: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = torch.float32,
    ) -> None:
        super().__init__()
        self.config = config
        self.num_blocks = num_blocks
        self.dim = dim
        self.time_dim = time_dim
        self.num_groups = resolve_num_groups(config, num_blocks)
        self.groups = block_groups(num_blocks, self.num_groups)
        cond_dim = config.cond_dim if config.motion_condition else None
        self.blocks = nn.ModuleList(
            BlockAdapters(
                dim,
                config.adapter_dim,
                cond_dim,
                skip=config.adapter_skip,
                zero_init_up=zero_init_up,
                device=device,
                dtype=dtype,
            )
            for _ in range(num_blocks)
        )
        self.controller = (
            StageBlenderController(
                dim,
                time_dim,
                self.num_groups,
                config.controller_hidden,
                config.controller_scale,
                device=device,
                dtype=dtype,
            )
            if config.use_controller
            else None
        )
        self.condition: torch.Tensor | None = None
        self.active: tuple[bool, bool] = (True, True)
        self.trace: list[torch.Tensor] | None = None
        self._hooks = TransformerHooks("dualreal")
        self._temb: torch.Tensor | None = None
        self._weights: tuple[Any, Any] | None = None

    @classmethod
    def for_transformer(
        cls, transformer: nn.Module, config: DualRealConfig, **kwargs: Any
    ) -> DualRealModel:
        return cls(**transformer_dims(transformer), config=config, **kwargs)

    # ---- parameters -----------------------------------------------------------------------
    def dimension_parameters(self, dimension: str) -> list[nn.Parameter]:
        """Parameters of every ``identity`` or ``motion`` adapter (the latter with its ``W_cond``)."""
        if dimension not in DIMENSIONS:
            raise ValueError(f"unknown dimension {dimension!r}; expected one of {DIMENSIONS}")
        return [p for block in self.blocks for p in block.dimension_parameters(dimension)]

    def controller_parameters(self) -> list[nn.Parameter]:
        return list(self.controller.parameters()) if self.controller is not None else []

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """Learned parameters by component, for optimizers and ``inspect``."""
        groups = {
            "identity adapters": self.dimension_parameters("identity"),
            "motion adapters": self.dimension_parameters("motion"),
        }
        if self.controller is not None:
            groups["controller"] = self.controller_parameters()
        return groups

    # ---- attachment -----------------------------------------------------------------------
    @property
    def transformer(self) -> nn.Module | None:
        """The transformer the hooks are on, or ``None``."""
        return self._hooks.transformer

    @property
    def attached(self) -> bool:
        return self._hooks.attached

    def attach(self, transformer: nn.Module) -> None:
        """Register the hooks on ``transformer`` (a ``CogVideoXTransformer3DModel``)."""
        if self.attached:
            raise RuntimeError("DualRealModel is already attached; detach() first")
        if _ATTACHED.get(transformer) is not None:
            raise RuntimeError(
                "dualreal: another DualReal method is attached to this transformer; "
                "call its teardown() first"
            )
        self._hooks.attach(
            transformer,
            {"num_blocks": self.num_blocks, "dim": self.dim, "time_dim": self.time_dim},
            attention=self._on_attention,
            feed_forward=self._on_feed_forward,
            modules={
                "time_embedding": self._on_time_embedding,
                "patch_embed": self._on_patch_embed,
            },
        )
        _ATTACHED[transformer] = self

    def detach(self) -> None:
        """Remove every hook; the transformer computes exactly as before :meth:`attach`."""
        transformer = self.transformer
        self._hooks.detach()
        if transformer is not None and _ATTACHED.get(transformer) is self:
            del _ATTACHED[transformer]
        self._temb = None
        self._weights = None

    # ---- per-forward computation ----------------------------------------------------------
    def group_weights(self, t_emb: torch.Tensor | None, tokens: torch.Tensor) -> tuple[Any, Any]:
        """``(w_id, w_m)``: ``(B, n)`` tensors from the controller, or the fixed floats."""
        if self.controller is None:
            return tuple(float(w) for w in self.config.fixed_weights)
        if t_emb is None:
            raise RuntimeError(
                "dualreal: the time embedding did not run before the patch embedding"
            )
        return self.controller.weights(t_emb, tokens)

    def _on_time_embedding(self, module: nn.Module, args: Any, output: torch.Tensor) -> None:
        self._temb = output

    def _on_patch_embed(self, module: nn.Module, args: Any, output: torch.Tensor) -> None:
        w_id, w_m = self.group_weights(self._temb, output)
        self._temb = None
        self._weights = (w_id, w_m)
        if self.trace is not None:
            if isinstance(w_id, torch.Tensor):
                self.trace.append(w_id.detach().float().cpu())
            else:
                self.trace.append(torch.full((output.shape[0], self.num_groups), w_id))

    def block_weights(self, index: int) -> tuple[Any, Any]:
        """``(w_id, w_m)`` of block ``index`` for the current forward; ``None`` = switched off."""
        if self._weights is None:
            raise RuntimeError(
                "dualreal: a transformer block ran before the patch embedding of this forward"
            )
        g = self.groups[index]
        pair = tuple(w[:, g] if isinstance(w, torch.Tensor) else w for w in self._weights)
        return tuple(w if on else None for w, on in zip(pair, self.active, strict=True))

    def _on_attention(
        self, index: int, module: nn.Module, args: Any, kwargs: dict, output: Any
    ) -> Any:
        hidden, encoder = attention_inputs(args, kwargs)
        attn_hidden, attn_encoder = output
        place, weights = self.blocks[index].attn, self.block_weights(index)
        cond, lam = self.condition, self.config.cond_scale
        return (
            attn_hidden + place(hidden, weights, cond, lam),
            attn_encoder + place(encoder, weights, cond, lam),
        )

    def _on_feed_forward(
        self, index: int, module: nn.Module, args: Any, output: torch.Tensor
    ) -> torch.Tensor:
        place = self.blocks[index].ff
        return output + place(
            args[0], self.block_weights(index), self.condition, self.config.cond_scale
        )
