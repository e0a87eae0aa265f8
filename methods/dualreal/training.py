"""DualReal's training: the gradient-masked joint loop (data preparation, the optimizer and
the loaders are :mod:`dualreal_bench.methods._common`'s, shared with the baselines).

As the authors' ``train/train_adapter.py`` (wenc-k/DualReal) runs it:

* every step draws a motion batch with probability ``motion_ratio`` (0.5), else an identity
  batch; identity batches are the subject's images as 1-frame videos (batch 1), motion
  batches the first ``num_frames`` frames of clips of the motion (batch 3); both loaders
  are shuffled and restart when exhausted (the last batch of an epoch may be smaller);
* both kinds of adapter run in every forward; motion steps condition the motion adapters on
  the image embedding of one frame of each clip (a random frame, drawn once per clip as the
  authors' dataset does), optionally zeroed with probability ``p_image_zero`` (drawn per
  step and sample; the authors draw it once per clip at load time, which looks unintended);
  identity steps run the motion adapters without a condition;
* after ``backward`` the non-active dimension's adapter gradients are set to ``None``, so
  AdamW skips those parameters entirely (no moment update, no weight decay); the controller
  trains on every step; gradients are clipped to norm 1.0 after the mask;
* AdamW (8-bit from bitsandbytes on CUDA, an error when it is missing), betas (0.9, 0.95),
  weight decay 1e-4, lr 1e-3 with 200 linear warm-up steps and a cosine decay over 1,000 steps;
  timesteps uniform over the scheduler's 1,000 (:meth:`Backbone.training_loss`).

As the authors' data loader: the clips' first 49 frames stretched to 480x720
(``clip_resize="crop"`` covers and centre-crops instead); the condition frames stretched to
224x224 and scaled to [-1, 1], the generation reference stretched and CLIP-normalised
(``condition_preprocess="clip"``: open_clip's preprocessing for both; see
:mod:`.._common.image_encoder`); the trained parameters in the backbone's dtype on CUDA (bf16,
``trainable_dtype="float32"`` keeps fp32 master weights).

Differences from the authors' script, all deliberate: latents are encoded once per image or
clip (a seeded posterior sample) where the authors re-sample the cached VAE posterior every
step; a motion batch whose clips have different lengths (clips shorter than ``num_frames``
are cut to ``1 + 4k`` frames, as the authors do) is cropped to its shortest clip where the
authors' collate would fail; only the batch a step uses is drawn (the authors draw one of
each kind per step and discard the other); identity images are resized to cover the
training size and centre-cropped (the backbone's preprocessing; the authors' crop and LANCZOS
resize, then an mp4v re-encode, are not reproduced bit for bit).

The ``dual_aware=false`` ablation trains the identity adapters alone on identity batches
(motion adapters switched off), then the motion adapters alone on motion batches, each phase
with its own optimizer and schedule and its share of the steps (``motion_ratio`` of them for
the motion phase: 500 + 500 of 1,000), as DreamVideo trains its two adapters; generation
blends them at ``fixed_weights`` (see :class:`.config.DualRealConfig`).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch

from dualreal_bench.errors import ConfigError
from dualreal_bench.method import MemorySettings

from .._common.data import (
    EpochLoader,
    TrainingData,
    encode_case,
    identity_caption,
    motion_caption,
    stack_batch,
)
from .._common.loop import StepBatch, apply_update, backward, draw_batch
from .._common.optim import (
    OptimizerSettings,
    make_lr_scheduler,
    make_optimizer,
    resolve_optimizer,
)
from .config import DualRealConfig
from .model import DualRealModel

if TYPE_CHECKING:
    from dualreal_bench.backbone import Backbone
    from dualreal_bench.spec import Case

    from .._common.image_encoder import ImageEncoder

logger = logging.getLogger(__name__)

__all__ = ["prepare_training_data", "train_model"]


def prepare_training_data(
    backbone: Backbone,
    case: Case,
    config: DualRealConfig,
    image_encoder: ImageEncoder | None,
    *,
    seed: int,
) -> TrainingData:
    """Read and encode the case's images and clips, the captions of ``config`` and, with
    ``motion_condition``, the image conditions (see :func:`.._common.data.encode_case`)."""
    if config.motion_condition and image_encoder is None:
        raise ConfigError("dualreal: motion_condition=true needs an image encoder")
    return encode_case(
        backbone,
        case,
        identity_prompt=identity_caption(config.identity_prompt, case),
        motion_prompt=motion_caption(config.motion_prompt, case),
        image_encoder=image_encoder if config.motion_condition else None,
        seed=seed,
        clip_frames=config.clip_frames,
        clip_resize=config.clip_resize,
        condition_preprocess=config.condition_preprocess,
    )


@dataclasses.dataclass
class _Phase:
    name: str  # "joint", "identity" or "motion"
    steps: int
    params: list[torch.nn.Parameter]
    active: tuple[bool, bool]


def _phases(model: DualRealModel, config: DualRealConfig) -> list[_Phase]:
    total = config.total_steps
    if config.dual_aware:
        params = model.dimension_parameters("identity") + model.dimension_parameters("motion")
        params += model.controller_parameters()
        return [_Phase("joint", total, params, (True, True))]
    motion_steps = round(total * config.motion_ratio)
    return [
        _Phase(
            "identity", total - motion_steps, model.dimension_parameters("identity"), (True, False)
        ),
        _Phase("motion", motion_steps, model.dimension_parameters("motion"), (False, True)),
    ]


class _Batches:
    """The batches of the loop, drawn in the authors' order: a step's kind (motion with
    probability ``motion_ratio`` in the joint phase), then its items, then the dropped image
    conditions, then (in the backbone's loss) the timesteps and the noise."""

    def __init__(self, data: TrainingData, config: DualRealConfig, seed: int, device) -> None:
        self.data, self.config, self.device = data, config, device
        self.rng = random.Random(seed)
        self.gen = torch.Generator(device="cpu").manual_seed(seed + 1)
        self.identity = EpochLoader(
            len(data.identity_latents), config.identity_batch_size, self.rng
        )
        self.motion = EpochLoader(len(data.motion_latents), config.motion_batch_size, self.rng)

    def kind(self, phase: str) -> str:
        if phase != "joint":
            return phase
        return "motion" if self.rng.random() < self.config.motion_ratio else "identity"

    def draw(self, kind: str, backbone: Backbone, model: DualRealModel) -> StepBatch:
        """The step's batch with all its draws: items, dropped image conditions, then the
        timesteps and the noise (the motion condition is ``(B, cond_dim)``, or ``None``)."""
        data = self.data

        def set_condition(cond: torch.Tensor | None) -> None:
            model.condition = cond

        if kind == "identity":
            idx = self.identity.next()
            latents, embeds, cond = (
                stack_batch(data.identity_latents, idx),
                data.identity_prompt_embeds,
                None,
            )
        else:
            idx = self.motion.next()
            latents, embeds, cond = (
                stack_batch(data.motion_latents, idx),
                data.motion_prompt_embeds,
                None,
            )
            if data.motion_conditions is not None:
                cond = data.motion_conditions[idx].clone()
                if self.config.p_image_zero > 0:
                    cond[torch.rand(len(idx), generator=self.gen) < self.config.p_image_zero] = 0.0
                cond = cond.to(self.device)
        return draw_batch(
            backbone, latents, embeds, self.gen, condition=cond, set_condition=set_condition
        )


def train_model(
    model: DualRealModel,
    backbone: Backbone,
    data: TrainingData,
    config: DualRealConfig,
    *,
    seed: int,
    progress: Callable[[int, int, dict[str, Any]], None] | None = None,
    step_callback: Callable[[int, str], None] | None = None,
    memory: MemorySettings | None = None,
) -> dict[str, Any]:
    """Train ``model`` (attached to ``backbone.transformer``) on ``data``; returns statistics.

    ``step_callback(step, kind)`` runs after every optimizer step (tests use it to inspect
    gradients and weights); ``progress(step, total, info)`` drives progress bars. ``memory``:
    the micro-batch size and the resolved optimizer (default: ``config.micro_batch`` and
    ``config.optimizer`` as it resolves on the backbone's device).
    """
    if memory is None:
        memory = MemorySettings(
            micro_batch=config.micro_batch,
            optimizer=resolve_optimizer(config.optimizer, backbone.device),
        )
    batches = _Batches(data, config, seed, backbone.device)
    log: dict[str, list] = {"loss": [], "kind": []}
    start = time.perf_counter()
    model.train()
    try:
        for phase in _phases(model, config):
            if phase.steps:
                _run_phase(model, backbone, phase, batches, log, progress, step_callback, memory)
    finally:
        model.condition = None
        model.active = (True, True)
        model.eval()
        for p in model.parameters():
            p.grad = None
    seconds = time.perf_counter() - start
    step = len(log["loss"])
    return {
        "steps": step,
        "identity_steps": log["kind"].count("identity"),
        "motion_steps": log["kind"].count("motion"),
        "loss": log["loss"],
        "step_kind": log["kind"],
        "seconds": seconds,
        "seconds_per_step": seconds / step if step else math.nan,
    }


def _run_phase(
    model: DualRealModel,
    backbone: Backbone,
    phase: _Phase,
    batches: _Batches,
    log: dict[str, list],
    progress: Callable[[int, int, dict[str, Any]], None] | None,
    step_callback: Callable[[int, str], None] | None,
    memory: MemorySettings,
) -> None:
    """One phase with its own optimizer and schedule (its share of the warm-up)."""
    config = batches.config
    total = config.total_steps
    settings = OptimizerSettings.from_config(config, config.learning_rate)
    settings = dataclasses.replace(settings, optimizer=memory.optimizer)
    for p in phase.params:
        p.requires_grad_(True)
    optimizer = make_optimizer(phase.params, settings, backbone.device)
    warmup = round(config.warmup_steps * phase.steps / max(total, 1))
    scheduler = make_lr_scheduler(optimizer, settings, warmup, phase.steps)
    masks = {  # the non-active dimension of each kind of step
        "identity": model.dimension_parameters("motion"),
        "motion": model.dimension_parameters("identity"),
    }
    model.active = phase.active
    for _ in range(phase.steps):
        step = len(log["loss"])
        kind = batches.kind(phase.name)
        batch = batches.draw(kind, backbone, model)
        loss = backward(
            batch, micro_batch=memory.micro_batch, where=f"dualreal step {step} ({kind})"
        )
        apply_update(
            params=phase.params,
            optimizer=optimizer,
            scheduler=scheduler,
            max_grad_norm=config.max_grad_norm,
            drop_grads=masks[kind] if phase.name == "joint" and config.grad_mask else (),
        )
        if step_callback is not None:
            step_callback(step, kind)
        optimizer.zero_grad(set_to_none=True)
        log["loss"].append(loss)
        log["kind"].append(kind)
        if progress is not None:
            progress(step + 1, total, {"loss": log["loss"][-1], "kind": kind})
