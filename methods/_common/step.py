"""One optimizer step, as every bundled method takes it.

* :class:`StepBatch` and :func:`draw_batch` -- one step's batch with every random draw made for
  the whole batch (timesteps, noise, dropped conditions);
* :func:`backward` -- forward and backward in micro-batches of ``micro_batch`` items
  (:func:`micro_batches`), each micro-batch's loss scaled by its share of the batch so that the
  accumulated gradient is the whole batch's (exact micro-batching: the same draws, the same
  gradient up to float rounding, a fraction of the activations);
* :func:`apply_update` -- the update after backward (DualReal's joint loop included): drop the
  gradients of parameters that must not move this step, clip to ``max_grad_norm``, AdamW step,
  schedule step; :func:`optimizer_step` is backward of one loss + :func:`apply_update`;
* :func:`autocast_context` -- ``torch.autocast`` to a dtype, or nothing.

The stages built from these steps are in :mod:`.loop`.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import torch

__all__ = [
    "Objective",
    "StepBatch",
    "apply_update",
    "autocast_context",
    "backward",
    "draw_batch",
    "micro_batches",
    "optimizer_step",
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


def autocast_context(
    device: torch.device, dtype: torch.dtype | None
) -> contextlib.AbstractContextManager:
    """``torch.autocast`` on ``device`` to ``dtype`` (mixed precision), or nothing for ``None``."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)
