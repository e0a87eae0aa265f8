"""Pieces the baselines (``lora``, ``sequential``, ``dreamvideo``) share.

What is generic already lives in :mod:`dualreal_bench.methods.dualreal.training` and is
imported from there, not copied: reading and encoding a case (``prepare_training_data``:
identity images as 1-frame latents, the first ``num_frames`` frames of each clip, one
image embedding of a random frame per clip), the shuffled restartable loaders, AdamW
(8-bit from bitsandbytes on CUDA when installed) and the warm-up schedules.

This module adds what the baselines need on top:

* :func:`scaled_steps` -- every schedule times ``steps_scale`` (``--set steps_scale=0.01``);
* :func:`apply_placeholder` -- what a method that learns no token does with ``" *"``;
* :class:`Stage` and :func:`run_stage` -- one optimisation stage (one kind of data, one set
  of parameters, its own optimizer and schedule): the loop the three baselines run, the same
  step as DualReal's (:meth:`Backbone.training_loss`, timesteps uniform over 1,000, clip to
  ``max_grad_norm``, AdamW step, schedule step) without DualReal's gradient mask;
* :class:`OptimizerSettings` -- what ``make_optimizer`` / ``make_lr_scheduler`` read.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import random
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal

import torch
from dualreal_bench.methods.dualreal.training import (
    EpochLoader,
    TrainingData,
    make_lr_scheduler,
    make_optimizer,
    motion_caption,
    prepare_training_data,
    stack_batch,
)

from dualreal_bench.errors import ConfigError, WeightsError
from dualreal_bench.spec import strip_placeholder

if TYPE_CHECKING:
    from dualreal_bench.backbone import Backbone
    from dualreal_bench.spec import Case

logger = logging.getLogger(__name__)

__all__ = [
    "OptimizerSettings",
    "PlaceholderMode",
    "Stage",
    "TrainingData",
    "apply_placeholder",
    "check_common",
    "check_state",
    "prepare_case_data",
    "run_stage",
    "scaled_steps",
]

#: "keep": the benchmark's ``"<class> *"`` goes to the text encoder as written, so ``" *"`` is
#: the rare identifier token of DreamBooth's "a [V] dog" (the subject is bound to it during
#: training and the class noun keeps its prior); "strip": ``" *"`` is removed everywhere
#: ("a toy", "toy is swinging"), as the ``base`` method does.
PlaceholderMode = Literal["keep", "strip"]


def scaled_steps(steps: int, scale: float) -> int:
    """``steps * scale`` rounded, at least 1 unless ``steps`` is 0."""
    if steps <= 0:
        return 0
    return max(1, round(steps * scale))


def apply_placeholder(prompt: str, mode: str) -> str:
    """The prompt a method without a learned token feeds its text encoder."""
    if mode == "strip":
        return strip_placeholder(prompt)
    if mode == "keep":
        return prompt
    raise ConfigError(f"placeholder={mode!r}: must be keep or strip")


def check_common(name: str, config: Any, step_fields: Sequence[str]) -> None:
    """Validation shared by the baseline configs (fields they all declare)."""
    for field in step_fields:
        value = getattr(config, field)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ConfigError(f"{name}: {field} must be an integer >= 0, got {value!r}")
    if all(getattr(config, f) == 0 for f in step_fields):
        raise ConfigError(f"{name}: {', '.join(step_fields)} are all 0; nothing would be trained")
    if not (
        isinstance(config.steps_scale, (int, float))
        and config.steps_scale > 0
        and math.isfinite(config.steps_scale)
    ):
        raise ConfigError(
            f"{name}: steps_scale must be a positive number, got {config.steps_scale!r}"
        )
    for field in ("identity_batch_size", "motion_batch_size"):
        if getattr(config, field) < 1:
            raise ConfigError(f"{name}: {field} must be >= 1, got {getattr(config, field)}")
    if config.lr_warmup_steps < 0:
        raise ConfigError(f"{name}: lr_warmup_steps must be >= 0, got {config.lr_warmup_steps}")
    if len(config.adam_betas) != 2 or not all(0.0 <= b < 1.0 for b in config.adam_betas):
        raise ConfigError(
            f"{name}: adam_betas must be two numbers in [0, 1), got {config.adam_betas}"
        )
    if config.adam_weight_decay < 0 or config.adam_epsilon <= 0:
        raise ConfigError(f"{name}: adam_weight_decay must be >= 0 and adam_epsilon > 0")
    if not config.max_grad_norm > 0:
        raise ConfigError(f"{name}: max_grad_norm must be > 0, got {config.max_grad_norm}")
    if config.placeholder not in ("keep", "strip"):
        raise ConfigError(f"{name}: placeholder={config.placeholder!r}: must be keep or strip")
    for field, placeholder in (("identity_prompt", "{class_noun}"), ("motion_prompt", "{action}")):
        template = getattr(config, field)
        try:
            template.format(class_noun="x", action="x")
        except (KeyError, IndexError, ValueError) as exc:
            raise ConfigError(
                f"{name}: {field}={template!r} is not a valid template (fields: {placeholder}): {exc}"
            ) from None


@dataclasses.dataclass
class OptimizerSettings:
    """The fields :func:`make_optimizer` and :func:`make_lr_scheduler` read, for one stage."""

    learning_rate: float
    optimizer: str = "auto"
    adam_betas: tuple[float, float] = (0.9, 0.95)
    adam_epsilon: float = 1e-8
    adam_weight_decay: float = 1e-4
    lr_scheduler: str = "constant"

    @classmethod
    def from_config(cls, config: Any, learning_rate: float) -> OptimizerSettings:
        return cls(
            learning_rate=learning_rate,
            optimizer=config.optimizer,
            adam_betas=tuple(config.adam_betas),
            adam_epsilon=config.adam_epsilon,
            adam_weight_decay=config.adam_weight_decay,
            lr_scheduler=config.lr_scheduler,
        )


@dataclasses.dataclass
class _DataSpec:
    """What :func:`prepare_training_data` reads from a config (a DualRealConfig has these too)."""

    motion_condition: bool
    identity_prompt: str
    motion_prompt: str


def prepare_case_data(
    backbone: Backbone,
    case: Case,
    *,
    identity_prompt: str,
    motion_prompt: str,
    placeholder: str,
    image_encoder: Any = None,
    seed: int,
) -> TrainingData:
    """Encode ``case`` once (DualReal's data preparation), with the captions of a baseline.

    ``identity_prompt`` / ``motion_prompt`` are templates (``{class_noun}``, ``{action}``);
    the motion caption is the motion folder's ``prompts.txt`` when present, as for DualReal.
    ``placeholder="strip"`` removes ``" *"`` from both captions. An ``image_encoder`` adds the
    per-clip image conditions and the reference embedding (DreamVideo); without one they are
    ``None``.
    """
    spec = _DataSpec(image_encoder is not None, identity_prompt, motion_prompt)
    if placeholder == "strip":
        ident = identity_prompt.format(
            class_noun=case.identity.class_noun, action=case.motion.action
        )
        spec.identity_prompt = strip_placeholder(ident).replace("{", "{{").replace("}", "}}")
        spec.motion_prompt = (
            strip_placeholder(motion_caption(spec, case)).replace("{", "{{").replace("}", "}}")
        )
    return prepare_training_data(backbone, case, spec, image_encoder, seed=seed)


# ---- the loop ------------------------------------------------------------------------------
LossFn = Callable[[list[int], torch.Tensor, torch.Generator], torch.Tensor]


@dataclasses.dataclass
class Stage:
    """One optimisation stage.

    Attributes:
        name: "identity", "motion", "textual_inversion", ... (records and progress bars).
        steps: optimizer steps (already scaled).
        params: the parameters this stage trains (and only these reach the optimizer).
        latents: the stage's items, one ``(1, F, C, h, w)`` tensor each.
        batch_size: items per step (a batch is cropped to its shortest clip).
        loss_fn: ``loss_fn(indices, latents (B, F, C, h, w), generator) -> scalar``.
        settings: optimizer and schedule of the stage.
        warmup: linear warm-up steps of the stage.
    """

    name: str
    steps: int
    params: list[torch.nn.Parameter]
    latents: list[torch.Tensor]
    batch_size: int
    loss_fn: LossFn
    settings: OptimizerSettings
    warmup: int = 0


def run_stage(
    stage: Stage,
    *,
    device: torch.device,
    seed: int,
    max_grad_norm: float,
    autocast_dtype: torch.dtype | None = None,
    progress: Callable[[int, int, dict[str, Any]], None] | None = None,
    step_callback: Callable[[str, int], None] | None = None,
) -> dict[str, Any]:
    """Run ``stage`` and return ``{"loss": [...], "steps": n, "seconds": s}``.

    Each step: draw a batch from a shuffled loader that restarts when exhausted, compute
    ``stage.loss_fn`` (under ``torch.autocast(autocast_dtype)`` when given), backward, clip
    the stage's gradients to ``max_grad_norm``, AdamW step, schedule step. The random draws
    (batch order, timesteps, noise, dropout draws inside ``loss_fn``) come from ``seed``.
    ``step_callback(stage_name, step)`` runs after every optimizer step, before the gradients
    are cleared.
    """
    if stage.steps == 0:
        return {"loss": [], "steps": 0, "seconds": 0.0}
    if not stage.params:
        raise ConfigError(f"stage {stage.name!r} has no parameters to train")
    rng = random.Random(seed)
    gen = torch.Generator(device="cpu").manual_seed(seed + 1)
    loader = EpochLoader(len(stage.latents), stage.batch_size, rng)
    for p in stage.params:
        p.requires_grad_(True)
    optimizer = make_optimizer(stage.params, stage.settings, device)
    scheduler = make_lr_scheduler(optimizer, stage.settings, stage.warmup, stage.steps)
    losses: list[float] = []
    start = time.perf_counter()
    try:
        for step in range(stage.steps):
            indices = loader.next()
            latents = stack_batch(stage.latents, indices)
            cast = (
                torch.autocast(device_type=device.type, dtype=autocast_dtype)
                if autocast_dtype is not None
                else contextlib.nullcontext()
            )
            with cast:
                loss = stage.loss_fn(indices, latents, gen)
            if not torch.isfinite(loss):
                raise FloatingPointError(
                    f"non-finite training loss at step {step} of stage {stage.name}"
                )
            loss.backward()
            torch.nn.utils.clip_grad_norm_(
                [p for p in stage.params if p.grad is not None], max_grad_norm
            )
            optimizer.step()
            scheduler.step()
            if step_callback is not None:
                step_callback(stage.name, step)
            optimizer.zero_grad(set_to_none=True)
            losses.append(float(loss.detach()))
            if progress is not None:
                progress(step + 1, stage.steps, {"loss": losses[-1]})
    finally:
        for p in stage.params:
            p.grad = None
            p.requires_grad_(False)
    seconds = time.perf_counter() - start
    return {"loss": losses, "steps": len(losses), "seconds": seconds}


def check_state(name: str, state: dict[str, Any], expected: dict[str, tuple[int, ...]]) -> None:
    """Raise :class:`WeightsError` unless ``state`` has exactly ``expected``'s names and shapes
    and finite floating-point values."""
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        parts = []
        for label, keys in (("missing", missing), ("unexpected", unexpected)):
            if keys:
                more = ", ..." if len(keys) > 3 else ""
                parts.append(f"{label} {len(keys)} tensor(s) ({', '.join(keys[:3])}{more})")
        raise WeightsError(f"{name} state does not fit this config/backbone: {'; '.join(parts)}")
    for key, shape in expected.items():
        tensor = state[key]
        if not isinstance(tensor, torch.Tensor):
            raise WeightsError(f"{name} state: {key!r} is not a tensor")
        if tuple(tensor.shape) != shape:
            raise WeightsError(
                f"{name} state: {key!r} has shape {tuple(tensor.shape)}, expected {shape}"
            )
        if not tensor.is_floating_point():
            raise WeightsError(
                f"{name} state: {key!r} has dtype {tensor.dtype}, expected floating point"
            )
        if not bool(torch.isfinite(tensor).all()):
            raise WeightsError(f"{name} state: {key!r} holds NaN or Inf values")
