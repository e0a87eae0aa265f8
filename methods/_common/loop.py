"""The training loop the methods share: one optimizer step, one stage, a sequence of stages.

* :class:`StepBatch`, :func:`draw_batch` and :func:`backward` -- one step's batch with every
  random draw made for the whole batch (timesteps, noise, dropped conditions), then forward and
  backward in micro-batches of ``micro_batch`` items, each micro-batch's loss scaled by its
  share of the batch so that the accumulated gradient is the whole batch's (exact micro-batching:
  the same draws, the same gradient up to float rounding, a fraction of the activations);
* :func:`apply_update` -- the update every method makes after backward (DualReal's joint loop
  included): drop the gradients of parameters that must not move this step, clip to
  ``max_grad_norm``, AdamW step, schedule step; :func:`optimizer_step` is backward of one loss
  + :func:`apply_update`;
* :class:`Stage` and :func:`run_stage` -- one optimisation stage (one kind of data, one set
  of parameters, its own optimizer and schedule), as the baselines train: LoRA and sequential
  fine-tuning run an identity then a motion stage, DreamVideo textual inversion, identity,
  motion;
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


@dataclasses.dataclass
class StepBatch:
    """One optimizer step's batch with every random draw made for the whole batch.

    :func:`backward` computes it in micro-batches: item ``i`` gets the same timestep, noise and
    condition whatever the micro-batch size, so micro-batching changes no draw.

    Attributes:
        backbone: whose :meth:`~dualreal_bench.backbone.Backbone.training_loss` is the loss.
        latents: ``(B, F, C, h, w)`` clean latents.
        prompt_embeds: ``(B, L, D)`` or ``(1, L, D)`` (shared), or a function returning them,
            called once per micro-batch (a graph through the text encoder, e.g. textual
            inversion, cannot be reused by a second backward).
        timesteps: ``(B,)``; noise: ``(B, F, C, h, w)`` (:func:`draw_batch` draws both).
        condition: ``(B, cond_dim)`` per-item condition of the adapters, or ``None``.
        set_condition: gives the adapters a micro-batch's rows of ``condition`` before its
            forward (``None`` when there is no condition).
        objective: the method's own loss, ``objective(part, latents, prompt_embeds, timesteps,
            noise) -> contribution`` for the items ``part`` (a slice of the batch; the other
            arguments already sliced): that micro-batch's share of the batch's loss, so that
            the contributions of all micro-batches sum to it (e.g. a masked mean divides by the
            whole batch's mask count). ``None``: the backbone's training loss, the mean over
            the items, each micro-batch weighted by its share of the items.
    """

    backbone: Any
    latents: torch.Tensor
    prompt_embeds: torch.Tensor | Callable[[], torch.Tensor]
    timesteps: torch.Tensor
    noise: torch.Tensor
    condition: torch.Tensor | None = None
    set_condition: Callable[[torch.Tensor | None], None] | None = None
    objective: Objective | None = None

    @property
    def size(self) -> int:
        return int(self.latents.shape[0])


#: ``objective(part, latents, prompt_embeds, timesteps, noise) -> scalar``: a micro-batch's
#: contribution to its batch's loss (:attr:`StepBatch.objective`)
Objective = Callable[[slice, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
#: ``loss_fn(indices, latents (B, F, C, h, w), generator) -> StepBatch | scalar``: a
#: :class:`StepBatch` (the loop computes the loss, in micro-batches when asked) or the loss
#: itself (computed in one piece; such a stage cannot be micro-batched)
LossFn = Callable[[list[int], torch.Tensor, torch.Generator], "StepBatch | torch.Tensor"]
#: ``step_callback(stage name, step)``: after every optimizer step, before gradients are cleared
StepCallback = Callable[[str, int], None]
#: ``report(stage, step, total, **info)``: :meth:`Method.report_progress`
Report = Callable[..., None]


def draw_batch(
    backbone: Any,
    latents: torch.Tensor,
    prompt_embeds: torch.Tensor | Callable[[], torch.Tensor],
    generator: torch.Generator,
    *,
    condition: torch.Tensor | None = None,
    set_condition: Callable[[torch.Tensor | None], None] | None = None,
    objective: Objective | None = None,
) -> StepBatch:
    """A :class:`StepBatch` of ``latents`` with the timesteps and noise drawn for the whole batch
    from ``generator``, as one :meth:`~dualreal_bench.backbone.Backbone.training_loss` (or
    :meth:`~dualreal_bench.backbone.Backbone.denoising_error`) call would draw them (so an
    unsplit batch computes exactly what it did before micro-batching)."""
    timesteps, noise = backbone.draw_training_noise(latents, generator)
    return StepBatch(
        backbone, latents, prompt_embeds, timesteps, noise, condition, set_condition, objective
    )


def micro_batches(size: int, micro_batch: int | None) -> list[slice]:
    """Consecutive slices of ``size`` items, ``micro_batch`` each (the last may be smaller);
    one slice for ``micro_batch`` None or >= ``size``."""
    step = size if not micro_batch or micro_batch >= size else int(micro_batch)
    return [slice(i, min(i + step, size)) for i in range(0, size, step)]


def backward(
    batch: StepBatch,
    *,
    micro_batch: int | None,
    where: str,
    autocast: Callable[[], contextlib.AbstractContextManager] | None = None,
    scale: float = 1.0,
) -> float:
    """Forward and backward of ``batch`` in micro-batches; returns the batch's loss.

    The loss of a batch of ``B`` is the mean of its items' losses, so micro-batch ``k`` of
    ``b_k`` items contributes ``(b_k / B) * loss_k`` and the accumulated gradient is the whole
    batch's (an unsplit batch is not rescaled at all); a batch with its own
    :attr:`~StepBatch.objective` gives each micro-batch's contribution itself. What is
    backpropagated is ``scale`` times the contribution (MotionBooth halves each of its two
    losses; the returned loss is not scaled). Gradients accumulate into ``.grad`` (the caller
    clears them); a non-finite micro-batch loss raises :class:`FloatingPointError` naming
    ``where`` before its backward. ``autocast()``: entered around each forward.
    """
    total = 0.0
    size = batch.size
    for part in micro_batches(size, micro_batch):
        share = (part.stop - part.start) / size
        embeds = batch.prompt_embeds() if callable(batch.prompt_embeds) else batch.prompt_embeds
        if embeds.shape[0] != 1:
            embeds = embeds[part]
        if batch.set_condition is not None:
            batch.set_condition(None if batch.condition is None else batch.condition[part])
        args = (batch.latents[part], embeds, batch.timesteps[part], batch.noise[part])
        with autocast() if autocast is not None else contextlib.nullcontext():
            if batch.objective is not None:
                loss = batch.objective(part, *args)
            else:
                latents, embeds, timesteps, noise = args
                loss = batch.backbone.training_loss(
                    latents, embeds, timesteps=timesteps, noise=noise
                )
                loss = loss if share == 1.0 else loss * share
        if not torch.isfinite(loss):
            raise FloatingPointError(f"non-finite training loss at {where}")
        (loss if scale == 1.0 else loss * scale).backward()
        total += float(loss.detach())
    return total


def apply_update(
    *,
    params: Sequence[torch.nn.Parameter],
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    max_grad_norm: float,
    drop_grads: Sequence[torch.nn.Parameter] = (),
) -> None:
    """One update from the accumulated gradients; they are left in place (the caller clears
    them). ``drop_grads``: parameters whose gradient is set to ``None`` first, so AdamW skips
    them entirely (no moment update, no weight decay): DualReal's gradient mask."""
    for p in drop_grads:
        p.grad = None
    torch.nn.utils.clip_grad_norm_([p for p in params if p.grad is not None], max_grad_norm)
    optimizer.step()
    scheduler.step()


def optimizer_step(
    loss: torch.Tensor,
    *,
    params: Sequence[torch.nn.Parameter],
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    max_grad_norm: float,
    where: str,
    drop_grads: Sequence[torch.nn.Parameter] = (),
) -> None:
    """One update from ``loss`` computed in one piece: refuse a non-finite loss (naming
    ``where``), backward, then :func:`apply_update`."""
    if not torch.isfinite(loss):
        raise FloatingPointError(f"non-finite training loss at {where}")
    loss.backward()
    apply_update(
        params=params,
        optimizer=optimizer,
        scheduler=scheduler,
        max_grad_norm=max_grad_norm,
        drop_grads=drop_grads,
    )


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
    if not stage.params:
        raise ConfigError(f"stage {stage.name!r} has no parameters to train")
    if stage.micro_batch is not None and stage.micro_batch < 1:
        raise ConfigError(
            f"stage {stage.name!r}: micro_batch must be >= 1, got {stage.micro_batch}"
        )
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
            where = f"step {step} of stage {stage.name}"
            with _autocast(device, autocast_dtype):
                out = stage.loss_fn(indices, latents, gen)
            if isinstance(out, StepBatch):
                loss = backward(
                    out,
                    micro_batch=stage.micro_batch,
                    where=where,
                    autocast=lambda: _autocast(device, autocast_dtype),
                )
                apply_update(
                    params=stage.params,
                    optimizer=optimizer,
                    scheduler=scheduler,
                    max_grad_norm=max_grad_norm,
                )
            else:
                if len(micro_batches(len(indices), stage.micro_batch)) > 1:
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
                loss = float(out.detach())
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


def _autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


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
