"""DualReal's training: data preparation, optimizer, and the gradient-masked joint loop.

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
* AdamW (8-bit from bitsandbytes on CUDA when installed), betas (0.9, 0.95), weight decay
  1e-4, lr 1e-3 with 200 linear warm-up steps and a cosine decay over 1,000 steps;
  timesteps uniform over the scheduler's 1,000 (:meth:`Backbone.training_loss`).

Differences from the authors' script, all deliberate: latents are encoded once per image or
clip (a seeded posterior sample) where the authors re-sample the cached VAE posterior every
step; a motion batch whose clips have different lengths (clips shorter than ``num_frames``
are cut to ``1 + 4k`` frames, as the authors do) is cropped to its shortest clip where the
authors' collate would fail; only the batch a step uses is drawn (the authors draw one of
each kind per step and discard the other); images and frames are resized to cover the
training size and centre-cropped (the backbone's preprocessing) where the authors' decord
reader stretches them to 480x720, and the condition frames go through the same CLIP
preprocessing as the generation reference image (see :mod:`.image_encoder`).

The ``dual_aware=false`` ablation trains the identity adapters alone on identity batches
(motion adapters switched off), then the motion adapters alone on motion batches, each phase
with its own optimizer and schedule and its share of the steps, as DreamVideo trains its
two adapters.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import random
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from dualreal_bench.errors import ConfigError, DataError

from .config import DualRealConfig
from .model import DualRealModel

if TYPE_CHECKING:
    from dualreal_bench.backbone import Backbone
    from dualreal_bench.spec import Case

    from .image_encoder import ImageEncoder

logger = logging.getLogger(__name__)

__all__ = [
    "TrainingData",
    "make_optimizer",
    "make_lr_scheduler",
    "motion_caption",
    "identity_caption",
    "prepare_training_data",
    "train_model",
    "trim_to_vae_length",
]


@dataclasses.dataclass
class TrainingData:
    """Everything the loop needs, encoded once.

    ``identity_latents``: one ``(1, 1, C, h, w)`` per reference image; ``motion_latents``: one
    ``(1, F, C, h, w)`` per clip; ``motion_conditions``: ``(num_clips, cond_dim)`` image
    embeddings (one frame of each clip); ``reference_embedding``: ``(1, cond_dim)`` of the
    identity's first image (the generation condition); prompt embeddings ``(1, L, D)``.
    """

    identity_latents: list[torch.Tensor]
    motion_latents: list[torch.Tensor]
    motion_conditions: torch.Tensor | None
    reference_embedding: torch.Tensor | None
    identity_prompt_embeds: torch.Tensor
    motion_prompt_embeds: torch.Tensor
    identity_prompt: str
    motion_prompt: str
    condition_frames: list[int]


def identity_caption(config: DualRealConfig, case: Case) -> str:
    """The caption of identity steps: ``identity_prompt`` with the class noun filled in."""
    return config.identity_prompt.format(
        class_noun=case.identity.class_noun, action=case.motion.action
    )


def motion_caption(config: DualRealConfig, case: Case) -> str:
    """The caption of motion steps: the motion folder's ``prompts.txt`` (the authors' caption
    file, "a person is shooting arrows") when present, else ``motion_prompt`` filled in."""
    from dualreal_bench.spec import MOTION_PROMPTS_FILE

    path = case.motion_dir / MOTION_PROMPTS_FILE if case.motion_dir is not None else None
    if path is not None and path.is_file():
        try:
            lines = [
                ln.strip() for ln in path.read_text(encoding="utf-8-sig").splitlines() if ln.strip()
            ]
        except (OSError, UnicodeDecodeError) as exc:
            raise DataError(f"{path}: cannot read the motion captions ({exc})") from None
        if lines:
            return lines[0]
    return config.motion_prompt.format(
        class_noun=case.identity.class_noun, action=case.motion.action
    )


def trim_to_vae_length(frames: np.ndarray, temporal_ratio: int = 4) -> np.ndarray:
    """Keep the first ``1 + k * temporal_ratio`` frames (what the VAE accepts), as the authors do."""
    n = frames.shape[0]
    keep = 1 + (n - 1) // temporal_ratio * temporal_ratio
    return frames[:keep]


def prepare_training_data(
    backbone: Backbone,
    case: Case,
    config: DualRealConfig,
    image_encoder: ImageEncoder | None,
    *,
    seed: int,
) -> TrainingData:
    """Read and encode the case's images and clips, captions and image conditions."""
    from dualreal_bench.media import read_images, read_video

    gen = torch.Generator(device="cpu").manual_seed(seed)
    rng = np.random.default_rng(seed)
    bcfg = backbone.config
    images = read_images(case.image_paths())
    identity_latents = [backbone.encode_images([im], generator=gen) for im in images]

    motion_latents, cond_frames, clips_for_cond = [], [], []
    for path in case.video_paths():
        frames = read_video(
            path,
            num_frames=bcfg.num_frames,
            sampling="first",
            size=(bcfg.height, bcfg.width),
            resize_mode="crop",
            pad="none",
        )
        frames = trim_to_vae_length(frames, backbone.vae_scale_factor_temporal)
        if frames.shape[0] < bcfg.num_frames:
            logger.info(
                "%s: %d frames, shorter than %d; training on them as they are",
                path,
                frames.shape[0],
                bcfg.num_frames,
            )
        video = backbone.preprocess_video(frames)[None]  # (1, 3, T, H, W)
        motion_latents.append(backbone.encode_video(video, generator=gen))
        index = int(rng.integers(frames.shape[0]))  # the frame whose embedding conditions this clip
        cond_frames.append(index)
        clips_for_cond.append(frames[index])

    conditions = reference = None
    if config.motion_condition:
        if image_encoder is None:
            raise ConfigError("dualreal: motion_condition=true needs an image encoder")
        conditions = image_encoder(clips_for_cond).float()  # (num_clips, cond_dim)
        reference = image_encoder([images[0]]).float()  # (1, cond_dim)

    id_prompt, m_prompt = identity_caption(config, case), motion_caption(config, case)
    embeds = backbone.encode_prompts([id_prompt, m_prompt])
    return TrainingData(
        identity_latents=identity_latents,
        motion_latents=motion_latents,
        motion_conditions=conditions,
        reference_embedding=reference,
        identity_prompt_embeds=embeds[:1],
        motion_prompt_embeds=embeds[1:],
        identity_prompt=id_prompt,
        motion_prompt=m_prompt,
        condition_frames=cond_frames,
    )


# ---- optimisation ----------------------------------------------------------------------------
def make_optimizer(
    params: Sequence[torch.nn.Parameter], config: DualRealConfig, device: torch.device
) -> torch.optim.Optimizer:
    """AdamW as configured: bitsandbytes' AdamW8bit for "adamw8bit" (or "auto" on CUDA with
    bitsandbytes installed), torch's AdamW otherwise."""
    kind = config.optimizer
    if kind == "auto":
        kind = "adamw"
        if device.type == "cuda":
            try:
                import bitsandbytes  # noqa: F401

                kind = "adamw8bit"
            except ImportError:
                logger.info(
                    "bitsandbytes is not installed: training with torch AdamW (32-bit states)"
                )
    kwargs = {
        "lr": config.learning_rate,
        "betas": tuple(config.adam_betas),
        "eps": config.adam_epsilon,
        "weight_decay": config.adam_weight_decay,
    }
    if kind == "adamw8bit":
        try:
            import bitsandbytes as bnb
        except ImportError:
            raise ConfigError(
                "dualreal: optimizer=adamw8bit needs bitsandbytes (pip install bitsandbytes)"
            ) from None
        return bnb.optim.AdamW8bit(list(params), **kwargs)
    return torch.optim.AdamW(list(params), **kwargs)


def make_lr_scheduler(
    optimizer: torch.optim.Optimizer, config: DualRealConfig, warmup: int, total: int
):
    """Linear warm-up then cosine decay to 0 (or constant), diffusers' schedules."""
    from diffusers.optimization import (
        get_constant_schedule_with_warmup,
        get_cosine_schedule_with_warmup,
    )

    if config.lr_scheduler == "constant":
        return get_constant_schedule_with_warmup(optimizer, num_warmup_steps=warmup)
    return get_cosine_schedule_with_warmup(
        optimizer, num_warmup_steps=warmup, num_training_steps=max(total, 1)
    )


class EpochLoader:
    """Shuffled batches of item indices that restart when exhausted (a DataLoader with
    ``shuffle=True, drop_last=False`` under the authors' ``next_or_restart``)."""

    def __init__(self, num_items: int, batch_size: int, rng: random.Random) -> None:
        if num_items < 1:
            raise DataError("dualreal: nothing to train on (no images or clips)")
        self.num_items, self.batch_size, self.rng = num_items, batch_size, rng
        self._batches: Iterator[list[int]] = iter(())

    def next(self) -> list[int]:
        batch = next(self._batches, None)
        if batch is None:
            order = list(range(self.num_items))
            self.rng.shuffle(order)
            self._batches = iter(
                [order[i : i + self.batch_size] for i in range(0, len(order), self.batch_size)]
            )
            batch = next(self._batches)
        return batch


def stack_batch(latents: list[torch.Tensor], indices: list[int]) -> torch.Tensor:
    frames = min(latents[i].shape[1] for i in indices)
    return torch.cat([latents[i][:, :frames] for i in indices])  # (B, F, C, h, w)


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


def train_model(
    model: DualRealModel,
    backbone: Backbone,
    data: TrainingData,
    config: DualRealConfig,
    *,
    seed: int,
    progress: Callable[[int, int, dict[str, Any]], None] | None = None,
    step_callback: Callable[[int, str], None] | None = None,
) -> dict[str, Any]:
    """Train ``model`` (attached to ``backbone.transformer``) on ``data``; returns statistics.

    ``step_callback(step, kind)`` runs after every optimizer step (tests use it to inspect
    gradients and weights); ``progress(step, total, info)`` drives progress bars.
    """
    rng = random.Random(seed)
    gen = torch.Generator(device="cpu").manual_seed(seed + 1)
    device = backbone.device
    id_loader = EpochLoader(len(data.identity_latents), config.identity_batch_size, rng)
    m_loader = EpochLoader(len(data.motion_latents), config.motion_batch_size, rng)
    masks = {
        "identity": model.dimension_parameters("motion"),
        "motion": model.dimension_parameters("identity"),
    }
    losses: list[float] = []
    kinds: list[str] = []
    total = config.total_steps
    start = time.perf_counter()
    step = 0
    model.train()
    try:
        for phase in _phases(model, config):
            if phase.steps == 0:
                continue
            for p in phase.params:
                p.requires_grad_(True)
            optimizer = make_optimizer(phase.params, config, device)
            warmup = round(config.warmup_steps * phase.steps / max(total, 1))
            scheduler = make_lr_scheduler(optimizer, config, warmup, phase.steps)
            model.active = phase.active
            for _ in range(phase.steps):
                if phase.name == "joint":
                    kind = "motion" if rng.random() < config.motion_ratio else "identity"
                else:
                    kind = phase.name
                if kind == "motion":
                    idx = m_loader.next()
                    latents, embeds = stack_batch(data.motion_latents, idx), data.motion_prompt_embeds
                    cond = None
                    if data.motion_conditions is not None:
                        cond = data.motion_conditions[idx].clone()
                        if config.p_image_zero > 0:
                            drop = torch.rand(len(idx), generator=gen) < config.p_image_zero
                            cond[drop] = 0.0
                        cond = cond.to(device)
                    model.condition = cond
                else:
                    idx = id_loader.next()
                    latents, embeds = (
                        stack_batch(data.identity_latents, idx),
                        data.identity_prompt_embeds,
                    )
                    model.condition = None
                loss = backbone.training_loss(latents, embeds, generator=gen)
                if not torch.isfinite(loss):
                    raise FloatingPointError(
                        f"dualreal: non-finite training loss at step {step} ({kind})"
                    )
                loss.backward()
                if phase.name == "joint" and config.grad_mask:
                    for p in masks[kind]:
                        p.grad = None  # AdamW skips parameters without a gradient
                with_grad = [p for p in phase.params if p.grad is not None]
                torch.nn.utils.clip_grad_norm_(with_grad, config.max_grad_norm)
                optimizer.step()
                scheduler.step()
                if step_callback is not None:
                    step_callback(step, kind)
                optimizer.zero_grad(set_to_none=True)
                losses.append(float(loss.detach()))
                kinds.append(kind)
                step += 1
                if progress is not None:
                    progress(step, total, {"loss": losses[-1], "kind": kind})
    finally:
        model.condition = None
        model.active = (True, True)
        model.eval()
        for p in model.parameters():
            p.grad = None
    seconds = time.perf_counter() - start
    return {
        "steps": step,
        "identity_steps": kinds.count("identity"),
        "motion_steps": kinds.count("motion"),
        "loss": losses,
        "step_kind": kinds,
        "seconds": seconds,
        "seconds_per_step": seconds / step if step else math.nan,
    }
