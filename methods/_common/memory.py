"""How a training method spends device memory: the settings it trains under and the backbone
set up for them.

A method's :class:`~dualreal_bench.method.MemorySettings` come from its config and its backbone
(``micro_batch``, ``optimizer``; the backbone's ``offload`` and ``gradient_checkpointing``), or,
under ``memory_budget``, from the plan :mod:`dualreal_bench.analysis.budget` makes, handed in
through :meth:`~dualreal_bench.method.Method.configure_memory`. None of them changes what is
computed: micro-batches accumulate the whole batch's gradient with the whole batch's random
draws, offloaded encoders are never used by the loop, checkpointed blocks recompute the same
values; the optimizer is what ``optimizer`` resolves to on the device.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

import torch
from torch.utils.checkpoint import checkpoint

from dualreal_bench.errors import ConfigError
from dualreal_bench.method import MemorySettings

from .optim import OPTIMIZERS, OptimizerSettings, resolve_optimizer

if TYPE_CHECKING:
    from dualreal_bench.backbone import Backbone

    from .config import TrainingConfig

__all__ = ["TrainingMemory", "checkpointed", "set_checkpointing"]


class TrainingMemory:
    """The memory side of a :class:`~dualreal_bench.method.Method` with a
    :class:`~.config.TrainingConfig` (mixed into the bundled training methods)."""

    config: TrainingConfig
    backbone: Backbone
    name: str
    _memory: MemorySettings | None = None

    def configure_memory(self, settings: MemorySettings) -> None:
        """Train with ``settings`` from here on (what ``memory_budget``'s plan chose)."""
        if settings.micro_batch is not None and settings.micro_batch < 1:
            raise ConfigError(f"{self.name}: micro_batch must be >= 1, got {settings.micro_batch}")
        if settings.optimizer not in OPTIMIZERS:
            raise ConfigError(
                f"{self.name}: optimizer {settings.optimizer!r}: must be one of "
                f"{', '.join(OPTIMIZERS)}"
            )
        self._memory = settings

    def memory_settings(self) -> MemorySettings:
        """The settings training uses: those given to :meth:`configure_memory`, else the
        config's and the backbone's (gradient checkpointing: the method's own
        ``gradient_checkpointing`` option where it has one and it is set, else the
        transformer's setting)."""
        if self._memory is not None:
            return self._memory
        cfg = self.config
        if cfg.memory_budget is not None:
            raise ConfigError(
                f"{self.name}: memory_budget={cfg.memory_budget} is resolved into settings by "
                "dualreal_bench.analysis.budget.apply_memory_budget(method) (the runner does it); "
                "call it before train()"
            )
        checkpointing = getattr(cfg, "gradient_checkpointing", None)  # a method's own option
        if checkpointing is None:
            transformer = self.backbone.transformer
            checkpointing = bool(getattr(transformer, "is_gradient_checkpointing", False))
        return MemorySettings(
            micro_batch=cfg.micro_batch,
            offload_encoders=self.backbone.config.offload == "encoders",
            gradient_checkpointing=checkpointing,
            optimizer=resolve_optimizer(cfg.optimizer, self.backbone.device),
        )

    def optimizer_settings(self, learning_rate: float) -> OptimizerSettings:
        """The config's AdamW settings at ``learning_rate``, with the optimizer the memory
        settings resolved ("auto" -> "adamw8bit" on CUDA, else "adamw")."""
        settings = OptimizerSettings.from_config(self.config, learning_rate)
        return dataclasses.replace(settings, optimizer=self.memory_settings().optimizer)

    @contextlib.contextmanager
    def memory_setup(self) -> Iterator[MemorySettings]:
        """The backbone set up for :meth:`memory_settings` while training: the encoders
        offloaded (and left so: generation brings them back when it needs them) and the
        transformer's checkpointing as chosen (restored afterwards)."""
        settings = self.memory_settings()
        backbone = self.backbone
        if settings.offload_encoders:
            backbone.set_offload("encoders")
        transformer = backbone.transformer
        before = bool(transformer.is_gradient_checkpointing)
        set_checkpointing(transformer, settings.gradient_checkpointing)
        try:
            yield settings
        finally:
            set_checkpointing(transformer, before)


def set_checkpointing(transformer, on: bool) -> None:
    """Switch a diffusers transformer's gradient checkpointing on or off."""
    if bool(transformer.is_gradient_checkpointing) != on:
        if on:
            transformer.enable_gradient_checkpointing()
        else:
            transformer.disable_gradient_checkpointing()


@contextlib.contextmanager
def checkpointed(layers: Iterable[torch.nn.Module]) -> Iterator[None]:
    """Gradient checkpointing of ``layers`` for the block (each keeps its inputs and recomputes
    its activations in backward; the values are the same): the text encoder's blocks while
    textual inversion backpropagates through them. Nothing else about the modules changes
    (no training mode, so no dropout)."""
    layers = list(layers)

    def wrap(forward):
        @functools.wraps(forward)
        def run(*args, **kwargs):
            if not torch.is_grad_enabled():
                return forward(*args, **kwargs)
            return checkpoint(forward, *args, use_reentrant=False, **kwargs)

        return run

    for layer in layers:
        layer.forward = wrap(layer.forward)
    try:
        yield
    finally:
        for layer in layers:
            del layer.forward  # the class's forward again
