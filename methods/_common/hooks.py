"""Forward hooks on a diffusers ``CogVideoXTransformer3DModel``, attached and removed together.

Adapter methods do not fork the transformer (as diffusers swaps behaviour through processors
and hooks): they register forward hooks on the places they adapt and remove them on
teardown, leaving the backbone exactly as it was. :class:`TransformerHooks` does the
bookkeeping once: the shape check, the registration on every block's attention (``attn1``,
with its keyword arguments) and feed-forward (``ff``) plus any top-level module
(``time_embedding``, ``patch_embed``), the handles, and a weak reference to the transformer
(a strong one would register it as a submodule of the adapter model that owns the hooks).

A CogVideoX block, and what each hook sees::

    n_h, n_e, gate, e_gate = norm1(h, e, emb)
    a_h, a_e = attn1(n_h, n_e)            attention(i, module, args, kwargs, (a_h, a_e))
    h, e = h + gate * a_h, e + e_gate * a_e
    ...norm2...
    f = ff(cat[n_e, n_h])                 feed_forward(i, module, (cat[n_e, n_h],), f)

so an adapter output added in a hook is gated by the block like the branch it joins.
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from dualreal_bench.errors import ConfigError

if TYPE_CHECKING:
    from dualreal_bench.backbone import Backbone

__all__ = [
    "TransformerHooks",
    "adapter_device",
    "attention_inputs",
    "training_device",
    "transformer_dims",
]

#: ``attention(block index, module, args, kwargs, output) -> new output or None``
AttentionHook = Callable[[int, nn.Module, Any, dict, Any], Any]
#: ``feed_forward(block index, module, args, output) -> new output or None``
FeedForwardHook = Callable[[int, nn.Module, Any, torch.Tensor], Any]


def transformer_dims(transformer: nn.Module) -> dict[str, int]:
    """Block count, token width and timestep-embedding width of a CogVideoX transformer."""
    cfg = transformer.config
    return {
        "num_blocks": len(transformer.transformer_blocks),
        "dim": int(cfg.num_attention_heads * cfg.attention_head_dim),
        "time_dim": int(cfg.time_embed_dim),
    }


def adapter_device(backbone: Backbone) -> torch.device:
    """Where an adapter model for ``backbone`` lives: ``meta`` when the transformer is on the
    meta device (shapes only, ``dualreal-bench inspect``), else the backbone's device."""
    param_device = next(backbone.transformer.parameters()).device
    return param_device if param_device.type == "meta" else backbone.device


def training_device(backbone: Backbone) -> torch.device:
    """The device training runs on: the backbone's; for the memory model's shape-only backbone
    (on the meta device), the device its estimates stand for (its ``target_device``)."""
    return getattr(backbone, "target_device", backbone.device)


def attention_inputs(args: Any, kwargs: Mapping[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
    """``(hidden_states, encoder_hidden_states)`` of a ``CogVideoXAttnProcessor`` call: the
    video tokens ``(B, N, D)`` and the text tokens ``(B, L, D)``."""
    hidden = kwargs["hidden_states"] if "hidden_states" in kwargs else args[0]
    encoder = kwargs.get("encoder_hidden_states")
    if encoder is None and len(args) > 1:
        encoder = args[1]
    return hidden, encoder


class TransformerHooks:
    """The forward hooks of one adapter model on one transformer.

    Args:
        owner: the method's name, for error messages ("dualreal: ...").
    """

    def __init__(self, owner: str) -> None:
        self.owner = owner
        self._handles: list[Any] = []
        self._transformer_ref: weakref.ref | None = None

    @property
    def transformer(self) -> nn.Module | None:
        """The transformer the hooks are on, or ``None``."""
        return self._transformer_ref() if self._transformer_ref is not None else None

    @property
    def attached(self) -> bool:
        return self._transformer_ref is not None

    def attach(
        self,
        transformer: nn.Module,
        expected: Mapping[str, int],
        *,
        attention: AttentionHook,
        feed_forward: FeedForwardHook,
        modules: Mapping[str, Callable[..., Any]] | None = None,
    ) -> None:
        """Register ``attention`` on every block's ``attn1``, ``feed_forward`` on every ``ff``
        (both called with the block index first) and ``modules[name]`` on the transformer's
        top-level module ``name``.

        ``expected`` holds the dimensions the adapters were built for (keys of
        :func:`transformer_dims`); a transformer of other dimensions is a
        :class:`ConfigError`, one that is not a CogVideoX transformer too.
        """
        if self.attached:
            raise RuntimeError(f"{self.owner}: the adapters are already attached; detach() first")
        modules = dict(modules or {})
        for name in ("transformer_blocks", *modules):
            if not hasattr(transformer, name):
                raise ConfigError(
                    f"{self.owner}: {type(transformer).__name__} has no {name!r}; "
                    "expected a CogVideoX transformer"
                )
        dims = transformer_dims(transformer)
        found = {k: dims[k] for k in expected}
        if found != dict(expected):
            raise ConfigError(
                f"{self.owner}: adapters built for {dict(expected)} cannot attach to a "
                f"transformer with {found}"
            )
        handles = [
            getattr(transformer, name).register_forward_hook(fn) for name, fn in modules.items()
        ]
        for i, block in enumerate(transformer.transformer_blocks):
            handles.append(
                block.attn1.register_forward_hook(functools.partial(attention, i), with_kwargs=True)
            )
            handles.append(block.ff.register_forward_hook(functools.partial(feed_forward, i)))
        self._handles = handles
        self._transformer_ref = weakref.ref(transformer)

    def detach(self) -> None:
        """Remove every hook; the transformer computes exactly as before :meth:`attach`."""
        for handle in self._handles:
            handle.remove()
        self._handles = []
        self._transformer_ref = None
