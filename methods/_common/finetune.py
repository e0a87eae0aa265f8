"""Fine-tuning the shared transformer's own weights, and giving them back afterwards.

The methods that train the backbone's parameters themselves (sequential fine-tuning, MotionBooth)
share what that takes: :class:`FineTunedTransformer` keeps a CPU copy of the original weights
from the first change on and copies them back in :meth:`~FineTunedTransformer.teardown` (so the
next case or method starts from the published model bit for bit); its state is the fine-tuned
tensors (``transformer.<name>``); :func:`training_setup` puts the transformer in training mode
with fp32 master weights under bf16 autocast and gradient checkpointing as asked, and undoes
all of it afterwards.

Memory (the real profiles): fp32 master weights under ``torch.autocast(bfloat16)`` are
accelerate's ``--mixed_precision bf16``; for CogVideoX-5B (5.57 B parameters) that is 22 GB of
weights + 22 GB of gradients + 11 GB of 8-bit AdamW states, plus activations, and another
~11 GB of CPU memory for the copy of the original bf16 weights.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from .loop import check_state
from .memory import set_checkpointing

if TYPE_CHECKING:
    from dualreal_bench.backbone import Backbone

__all__ = ["FineTunedTransformer", "resolve_mixed_precision", "training_setup"]

#: the prefix of the transformer's tensors in a saved state
PREFIX = "transformer."


def resolve_mixed_precision(setting: str, backbone: Backbone) -> str:
    """``"bf16"`` or ``"no"``: ``setting`` itself, or for ``"auto"`` bf16 when the backbone runs
    in bf16/fp16."""
    if setting != "auto":
        return setting
    return "bf16" if backbone.dtype in (torch.bfloat16, torch.float16) else "no"


class FineTunedTransformer:
    """A mixin for :class:`~dualreal_bench.method.Method` subclasses that fine-tune
    ``self.backbone.transformer`` in place.

    Subclasses set ``self._original = None`` and ``self._trained = False`` in ``__init__`` and
    may narrow :meth:`trained_names` (default: every tensor of the transformer's state).
    """

    backbone: Backbone
    name: str
    _original: dict[str, torch.Tensor] | None
    _trained: bool

    def trained_names(self) -> list[str]:
        """The transformer's state entries this method changes (default: all of them)."""
        return list(self.backbone.transformer.state_dict())

    def trained_parameters(self) -> list[nn.Parameter]:
        """The parameters among :meth:`trained_names`, in the transformer's order."""
        names = set(self.trained_names())
        return [p for n, p in self.backbone.transformer.named_parameters() if n in names]

    def keep_original(self) -> None:
        """Copy the original values of :meth:`trained_names` to the CPU (once, before the first
        change)."""
        if self._original is None:
            state = self.backbone.transformer.state_dict()
            self._original = {
                k: state[k].detach().to("cpu", copy=True) for k in self.trained_names()
            }

    def teardown(self) -> None:
        """Copy the original weights back (bit for bit) and free the copy."""
        transformer = self.backbone.transformer
        if self._original is not None:
            with torch.no_grad():
                current = transformer.state_dict()
                for key, value in self._original.items():
                    current[key].copy_(value)
            self._original = None
        transformer.requires_grad_(False)
        transformer.eval()

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The fine-tuned tensors, ``transformer.<name>``, in the transformer's dtype."""
        state = self.backbone.transformer.state_dict()
        return {PREFIX + k: state[k].detach().cpu() for k in self.trained_names()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Load fine-tuned tensors after checking names, shapes and values; the original
        weights are kept for :meth:`teardown` (nothing changes on a mismatch)."""
        current = self.backbone.transformer.state_dict()
        expected = {PREFIX + k: tuple(current[k].shape) for k in self.trained_names()}
        check_state(self.name, state, expected)
        self.keep_original()
        with torch.no_grad():
            for key in expected:
                target = current[key[len(PREFIX) :]]
                target.copy_(state[key].to(device=target.device, dtype=target.dtype))
        self._trained = True


@contextlib.contextmanager
def training_setup(transformer: nn.Module, *, fp32: bool, checkpointing: bool) -> Iterator[None]:
    """The transformer in training mode, in fp32 (master weights for bf16 autocast) when
    ``fp32``, with gradient checkpointing as asked; its dtype, checkpointing and eval mode
    restored afterwards (the weights are :meth:`FineTunedTransformer.teardown`'s business)."""
    dtype_before = transformer.dtype
    checkpointing_before = bool(transformer.is_gradient_checkpointing)
    try:
        if fp32 and dtype_before != torch.float32:
            transformer.to(dtype=torch.float32)
        set_checkpointing(transformer, checkpointing)
        transformer.train()
        yield
    finally:
        transformer.eval()
        transformer.requires_grad_(False)
        if transformer.dtype != dtype_before:
            transformer.to(dtype=dtype_before)
        set_checkpointing(transformer, checkpointing_before)
