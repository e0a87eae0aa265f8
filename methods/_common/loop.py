"""The training loop the methods share: one stage, a sequence of stages.

* :class:`Stage` and :func:`run_stage` -- one optimisation stage (one kind of data, one set
  of parameters, its own optimizer and schedule), as the baselines train: LoRA and sequential
  fine-tuning run an identity then a motion stage, DreamVideo textual inversion, identity,
  motion; each of its steps is :mod:`.step`'s (a :class:`~.step.StepBatch` drawn for the whole
  batch, :func:`~.step.backward` in micro-batches, :func:`~.step.apply_update`), whose names
  this module re-exports;
* :func:`run_stages` -- stages in order, each built just before it runs (so it can use what
  the previous one learned), with the per-stage seeds, progress and statistics;
* :func:`check_state` -- the name/shape/value check before a state dict is loaded.

Timesteps are uniform over the scheduler's 1,000 (:meth:`Backbone.training_loss`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import random
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch

from dualreal_bench.errors import ConfigError, WeightsError

from .data import EpochLoader, stack_batch
from .optim import OptimizerSettings, make_lr_scheduler, make_optimizer
from .step import (
    StepBatch,
    apply_update,
    autocast_context,
    backward,
    draw_batch,
    micro_batches,
    optimizer_step,
)

logger = logging.getLogger(__name__)

__all__ = [
    "LossFn",
    "Stage",
    "StepBatch",
    "apply_update",
    "backward",
    "check_state",
    "draw_batch",
    "micro_batches",
    "optimizer_step",
    "run_stage",
    "run_stages",
]


#: ``loss_fn(indices, latents (B, F, C, h, w), generator) -> StepBatch | scalar``: a
#: :class:`StepBatch` (the loop computes the loss, in micro-batches when asked) or the loss
#: itself (computed in one piece; such a stage cannot be micro-batched)
LossFn = Callable[[list[int], torch.Tensor, torch.Generator], "StepBatch | torch.Tensor"]
#: ``step_callback(stage name, step)``: after every optimizer step, before gradients are cleared
StepCallback = Callable[[str, int], None]
#: ``report(stage, step, total, **info)``: :meth:`Method.report_progress`
Report = Callable[..., None]


@dataclasses.dataclass
class Stage:
    """One optimisation stage.

    Attributes:
        name: "identity", "motion", "textual_inversion", ... (records and progress bars).
        steps: optimizer steps (already scaled).
        params: the parameters this stage trains (and only these reach the optimizer).
        latents: the stage's items, one ``(1, F, C, h, w)`` tensor each.
        batch_size: items per step (a batch is cropped to its shortest clip).
        loss_fn: ``loss_fn(indices, latents (B, F, C, h, w), generator)`` -> a
            :class:`StepBatch` (micro-batchable) or the loss (one piece); see :data:`LossFn`.
        settings: optimizer and schedule of the stage.
        warmup: linear warm-up steps of the stage.
        micro_batch: items per forward/backward pass (``None``: the whole batch at once);
            the gradient is the whole batch's either way (:func:`backward`).
    """

    name: str
    steps: int
    params: list[torch.nn.Parameter]
    latents: list[torch.Tensor]
    batch_size: int
    loss_fn: LossFn
    settings: OptimizerSettings
    warmup: int = 0
    micro_batch: int | None = None


def run_stage(
    stage: Stage,
    *,
    device: torch.device,
    seed: int,
    max_grad_norm: float,
    autocast_dtype: torch.dtype | None = None,
    progress: Callable[[int, int, dict[str, Any]], None] | None = None,
    step_callback: StepCallback | None = None,
) -> dict[str, Any]:
    """Run ``stage`` and return ``{"loss": [...], "steps": n, "seconds": s}``.

    Each step: draw a batch from a shuffled loader that restarts when exhausted, call
    ``stage.loss_fn``, run forward and backward (in micro-batches of ``stage.micro_batch``,
    each forward under ``torch.autocast(autocast_dtype)`` when given), then
    :func:`apply_update`. The random draws (batch order, timesteps, noise, dropout draws
    inside ``loss_fn``) come from ``seed``. ``step_callback(stage_name, step)`` runs after
    every optimizer step, before the gradients are cleared.
    """
    if stage.steps == 0:
        return {"loss": [], "steps": 0, "seconds": 0.0}
    _check_stage(stage)
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
            with autocast_context(device, autocast_dtype):
                out = stage.loss_fn(indices, latents, gen)
            loss = _take_step(
                stage,
                out,
                len(indices),
                optimizer,
                scheduler,
                max_grad_norm=max_grad_norm,
                where=f"step {step} of stage {stage.name}",
                autocast=lambda: autocast_context(device, autocast_dtype),
            )
            if step_callback is not None:
                step_callback(stage.name, step)
            optimizer.zero_grad(set_to_none=True)
            losses.append(loss)
            if progress is not None:
                progress(step + 1, stage.steps, {"loss": losses[-1]})
    finally:
        for p in stage.params:
            p.grad = None
            p.requires_grad_(False)
    seconds = time.perf_counter() - start
    return {"loss": losses, "steps": len(losses), "seconds": seconds}


def _check_stage(stage: Stage) -> None:
    if not stage.params:
        raise ConfigError(f"stage {stage.name!r} has no parameters to train")
    if stage.micro_batch is not None and stage.micro_batch < 1:
        raise ConfigError(
            f"stage {stage.name!r}: micro_batch must be >= 1, got {stage.micro_batch}"
        )


def _take_step(
    stage: Stage,
    out: StepBatch | torch.Tensor,
    size: int,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    *,
    max_grad_norm: float,
    where: str,
    autocast: Callable[[], contextlib.AbstractContextManager],
) -> float:
    """Backward of what ``stage.loss_fn`` returned for ``size`` items (a :class:`StepBatch` in
    micro-batches, a loss in one piece), then the update; returns the step's loss."""
    if isinstance(out, StepBatch):
        loss = backward(out, micro_batch=stage.micro_batch, where=where, autocast=autocast)
        apply_update(
            params=stage.params,
            optimizer=optimizer,
            scheduler=scheduler,
            max_grad_norm=max_grad_norm,
        )
        return loss
    if len(micro_batches(size, stage.micro_batch)) > 1:
        raise ConfigError(
            f"stage {stage.name!r} computes its loss in one piece and cannot be "
            f"micro-batched (micro_batch={stage.micro_batch}); its loss_fn must "
            "return a StepBatch"
        )
    optimizer_step(
        out,
        params=stage.params,
        optimizer=optimizer,
        scheduler=scheduler,
        max_grad_norm=max_grad_norm,
        where=where,
    )
    return float(out.detach())


def run_stages(
    stages: Sequence[Callable[[], Stage]],
    *,
    device: torch.device,
    seed: int,
    max_grad_norm: float,
    report: Report,
    autocast_dtype: torch.dtype | None = None,
    step_callback: StepCallback | None = None,
    stage_callback: Callable[[str, str], None] | None = None,
) -> dict[str, Any]:
    """Run the stages in order; return ``{<name>_steps, <name>_loss, <name>_seconds}`` of each.

    Each entry of ``stages`` builds its :class:`Stage` right before it runs (activating its
    adapters, encoding prompts with what earlier stages learned). Stage ``k`` draws from
    ``seed + 1000 * k``; its progress goes to ``report("train <name>", step, total, loss=...)``.
    ``stage_callback(name, "start" | "end")`` runs around each stage.
    """
    stats: dict[str, Any] = {}
    for offset, build in enumerate(stages):
        stage = build()
        if stage_callback is not None:
            stage_callback(stage.name, "start")

        def progress(step: int, total: int, info: dict[str, Any], _name: str = stage.name) -> None:
            report(f"train {_name}", step, total, **info)

        result = run_stage(
            stage,
            device=device,
            seed=seed + 1000 * offset,
            max_grad_norm=max_grad_norm,
            autocast_dtype=autocast_dtype,
            progress=progress,
            step_callback=step_callback,
        )
        stats[f"{stage.name}_steps"] = result["steps"]
        stats[f"{stage.name}_loss"] = result["loss"]
        stats[f"{stage.name}_seconds"] = result["seconds"]
        if stage_callback is not None:
            stage_callback(stage.name, "end")
    return stats


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
