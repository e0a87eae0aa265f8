"""AdamW and its learning-rate schedule, as the methods' sources configure them.

AdamW is torch's, or bitsandbytes' ``AdamW8bit`` (2 bytes of state per parameter instead of
8) for ``optimizer="adamw8bit"`` and for ``"auto"`` on CUDA (DualReal's code:
``--use_8bit_adam``); bitsandbytes is an optional extra (``pip install -e ".[bnb]"``), and
"auto" on CUDA without it is an error saying so rather than a quiet switch to another
optimizer (``--set optimizer=adamw`` chooses torch's, and says so in the variant key). The
schedules are diffusers': a linear warm-up, then constant or a cosine decay to 0 (DualReal's
``cosine_with_restarts`` with one cycle is the same curve).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch

from dualreal_bench.errors import ConfigError

if TYPE_CHECKING:
    from .config import TrainingConfig

logger = logging.getLogger(__name__)

__all__ = [
    "OPTIMIZERS",
    "OptimizerSettings",
    "make_lr_scheduler",
    "make_optimizer",
    "resolve_optimizer",
]

#: what ``optimizer`` resolves to
OPTIMIZERS = ("adamw", "adamw8bit")


@dataclasses.dataclass
class OptimizerSettings:
    """What :func:`make_optimizer` and :func:`make_lr_scheduler` read, for one stage."""

    learning_rate: float
    optimizer: str = "auto"
    adam_betas: tuple[float, float] = (0.9, 0.95)
    adam_epsilon: float = 1e-8
    adam_weight_decay: float = 1e-4
    lr_scheduler: str = "constant"

    @classmethod
    def from_config(cls, config: TrainingConfig, learning_rate: float) -> OptimizerSettings:
        """The settings of a :class:`~.config.TrainingConfig`, at ``learning_rate``."""
        return cls(
            learning_rate=learning_rate,
            optimizer=config.optimizer,
            adam_betas=tuple(config.adam_betas),
            adam_epsilon=config.adam_epsilon,
            adam_weight_decay=config.adam_weight_decay,
            lr_scheduler=config.lr_scheduler,
        )


def make_optimizer(
    params: Sequence[torch.nn.Parameter], settings: OptimizerSettings, device: torch.device
) -> torch.optim.Optimizer:
    """AdamW as configured: bitsandbytes' AdamW8bit for "adamw8bit" (and "auto" on CUDA, see
    :func:`resolve_optimizer`), torch's AdamW otherwise; a :class:`ConfigError` with the install
    command when AdamW8bit is asked for and bitsandbytes is missing."""
    kind = resolve_optimizer(settings.optimizer, device)
    kwargs = {
        "lr": settings.learning_rate,
        "betas": tuple(settings.adam_betas),
        "eps": settings.adam_epsilon,
        "weight_decay": settings.adam_weight_decay,
    }
    if kind == "adamw8bit":
        try:
            import bitsandbytes as bnb
        except ImportError:
            raise ConfigError(
                f"optimizer={settings.optimizer}: bitsandbytes' AdamW8bit (as the authors trained, "
                "--use_8bit_adam) needs bitsandbytes, which is not installed: "
                'pip install -e ".[bnb]", or --set optimizer=adamw for torch\'s AdamW'
            ) from None
        return bnb.optim.AdamW8bit(list(params), **kwargs)
    return torch.optim.AdamW(list(params), **kwargs)


def resolve_optimizer(kind: str, device: torch.device) -> str:
    """What ``optimizer=kind`` trains with on ``device``: "adamw8bit" for "auto" on CUDA (as
    the authors trained; :func:`make_optimizer` says how to install bitsandbytes when it is
    missing rather than switching optimizer), "adamw" for "auto" elsewhere; an explicit choice
    as it is."""
    if kind != "auto":
        return kind
    return "adamw8bit" if torch.device(device).type == "cuda" else "adamw"


def make_lr_scheduler(
    optimizer: torch.optim.Optimizer, settings: OptimizerSettings, warmup: int, total: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up over ``warmup`` steps, then constant or a cosine decay to 0 at ``total``."""
    from diffusers.optimization import (
        get_constant_schedule_with_warmup,
        get_cosine_schedule_with_warmup,
    )

    if settings.lr_scheduler == "constant":
        return get_constant_schedule_with_warmup(optimizer, num_warmup_steps=warmup)
    return get_cosine_schedule_with_warmup(
        optimizer, num_warmup_steps=warmup, num_training_steps=max(total, 1)
    )
