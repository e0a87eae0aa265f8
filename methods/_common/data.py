"""A case's training data, read and encoded once, and the loaders that draw batches from it.

As DualReal's authors prepare it (wenc-k/DualReal ``train/train_adapter.py``): identity items
are the subject's images as 1-frame videos (resized to cover the training size and
centre-cropped, as the authors' ``convert_img2video.py`` crops them); motion items the first
``num_frames`` frames of each clip (``clip_frames="first"``; "stride" samples as the official
CogVideoX LoRA script), stretched to the training size as the authors' decord reader does
(``clip_resize="stretch"``; "crop" covers and centre-crops), cut to ``1 + 4k`` frames (what the
VAE accepts); each clip is conditioned on the image embedding of one random frame, drawn once
per clip, preprocessed as ``condition_preprocess`` says (:func:`.image_encoder.encode_condition`:
"authors" stretches the clip's own frame to the encoder's size, "clip" takes the frame at the
training size); the generation condition is the embedding of the identity's first image.
Latents are encoded once per image or clip (a seeded posterior sample) where the authors
re-sample the cached VAE posterior every step.

Both loaders are shuffled and restart when exhausted (the last batch of an epoch may be
smaller); a motion batch whose clips differ in length is cropped to its shortest clip.
"""

from __future__ import annotations

import dataclasses
import logging
import random
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from dualreal_bench.errors import ConfigError, DataError
from dualreal_bench.media import read_images, read_video, resize_frames
from dualreal_bench.spec import MOTION_PROMPTS_FILE, strip_placeholder

from .image_encoder import encode_condition

if TYPE_CHECKING:
    from dualreal_bench.backbone import Backbone
    from dualreal_bench.spec import Case

    from .image_encoder import ImageEncoder

logger = logging.getLogger(__name__)

__all__ = [
    "EpochLoader",
    "TrainingData",
    "apply_placeholder",
    "clip_indices",
    "encode_case",
    "identity_caption",
    "motion_caption",
    "prepare_case_data",
    "read_clip",
    "read_motion_caption",
    "stack_batch",
    "trim_to_vae_length",
]


@dataclasses.dataclass
class TrainingData:
    """Everything a training loop needs, encoded once.

    ``identity_latents``: one ``(1, 1, C, h, w)`` per reference image; ``motion_latents``: one
    ``(1, F, C, h, w)`` per clip; ``motion_conditions``: ``(num_clips, cond_dim)`` image
    embeddings (one frame of each clip); ``reference_embedding``: ``(1, cond_dim)`` of the
    identity's first image (the generation condition); prompt embeddings ``(1, L, D)``;
    ``class_noun``: the subject's class word ("toy"; DreamVideo starts its token from it).
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
    class_noun: str = ""

    def items(self, dimension: str) -> tuple[list[torch.Tensor], torch.Tensor]:
        """``(latents, prompt embeddings)`` of the ``"identity"`` or ``"motion"`` items."""
        if dimension == "identity":
            return self.identity_latents, self.identity_prompt_embeds
        if dimension == "motion":
            return self.motion_latents, self.motion_prompt_embeds
        raise ValueError(f"unknown dimension {dimension!r}; expected identity or motion")


# ---- captions ------------------------------------------------------------------------------
def identity_caption(template: str, case: Case) -> str:
    """The caption of identity steps: ``template`` with the class noun filled in."""
    return template.format(class_noun=case.identity.class_noun, action=case.motion.action)


def motion_caption(template: str, case: Case) -> str:
    """The caption of motion steps: the motion folder's ``prompts.txt`` (the authors' caption
    file, "a person is shooting arrows") when present, else ``template`` filled in."""
    caption = read_motion_caption(case.motion_dir) if case.motion_dir is not None else None
    if caption is not None:
        return caption
    return template.format(class_noun=case.identity.class_noun, action=case.motion.action)


def read_motion_caption(motion_dir: Path) -> str | None:
    """The first non-blank line of ``<motion_dir>/prompts.txt``, or None without one."""
    path = Path(motion_dir) / MOTION_PROMPTS_FILE
    if not path.is_file():
        return None
    try:
        lines = [
            ln.strip() for ln in path.read_text(encoding="utf-8-sig").splitlines() if ln.strip()
        ]
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read the motion captions ({exc})") from None
    return lines[0] if lines else None


def apply_placeholder(prompt: str, mode: str) -> str:
    """The prompt a method without a learned token feeds its text encoder
    (see :data:`~.config.PlaceholderMode`)."""
    if mode == "strip":
        return strip_placeholder(prompt)
    if mode == "keep":
        return prompt
    raise ConfigError(f"placeholder={mode!r}: must be keep or strip")


# ---- encoding ------------------------------------------------------------------------------
def trim_to_vae_length(frames: np.ndarray, temporal_ratio: int = 4) -> np.ndarray:
    """Keep the first ``1 + k * temporal_ratio`` frames (what the VAE accepts), as the authors do."""
    n = frames.shape[0]
    keep = 1 + (n - 1) // temporal_ratio * temporal_ratio
    return frames[:keep]


def encode_case(
    backbone: Backbone,
    case: Case,
    *,
    identity_prompt: str,
    motion_prompt: str,
    image_encoder: ImageEncoder | None,
    seed: int,
    clip_frames: str = "first",
    clip_resize: str = "stretch",
    condition_preprocess: str = "clip",
) -> TrainingData:
    """Read and encode the case's images and clips, the two captions (as given) and, with an
    ``image_encoder``, the per-clip image conditions and the reference embedding (else
    ``None``). The VAE samples and the condition frames are drawn from ``seed``.
    ``clip_frames``, ``clip_resize``: see :data:`.config.ClipSampling`, :data:`.config.ClipResize`;
    ``condition_preprocess``: see :func:`.image_encoder.encode_condition`."""
    gen = torch.Generator(device="cpu").manual_seed(seed)
    rng = np.random.default_rng(seed)
    images = read_images(case.image_paths())
    identity_latents = [backbone.encode_images([im], generator=gen) for im in images]

    motion_latents, cond_frames, clips_for_cond = [], [], []
    for path in case.video_paths():
        raw, frames = read_clip(backbone, path, clip_frames, clip_resize)
        video = backbone.preprocess_video(frames)[None]  # (1, 3, T, H, W)
        motion_latents.append(backbone.encode_video(video, generator=gen))
        index = int(rng.integers(frames.shape[0]))  # the frame whose embedding conditions this clip
        cond_frames.append(index)
        # the authors read the condition frame from the clip itself at the encoder's size;
        # the "clip" preprocessing takes it as the model trains on it
        clips_for_cond.append(raw[index] if condition_preprocess == "authors" else frames[index])

    conditions = reference = None
    if image_encoder is not None:
        # (num_clips, cond_dim), (1, cond_dim)
        conditions = encode_condition(
            image_encoder, clips_for_cond, preprocess=condition_preprocess, stage="train"
        ).float()
        reference = encode_condition(
            image_encoder, [images[0]], preprocess=condition_preprocess, stage="generate"
        ).float()

    embeds = backbone.encode_prompts([identity_prompt, motion_prompt])
    return TrainingData(
        identity_latents=identity_latents,
        motion_latents=motion_latents,
        motion_conditions=conditions,
        reference_embedding=reference,
        identity_prompt_embeds=embeds[:1],
        motion_prompt_embeds=embeds[1:],
        identity_prompt=identity_prompt,
        motion_prompt=motion_prompt,
        condition_frames=cond_frames,
        class_noun=case.identity.class_noun,
    )


def clip_indices(total: int, num_frames: int, sampling: str) -> list[int]:
    """The frames of a ``total``-frame clip a training item takes: "first": ``0 .. n-1``;
    "stride": ``range(0, total, total // n)`` cut to ``n`` (all frames when ``total <= n``), as
    the official CogVideoX LoRA script's VideoDataset (THUDM finetune/train_cogvideox_lora.py)."""
    if sampling == "first" or total <= num_frames:
        return list(range(min(total, num_frames)))
    if sampling == "stride":
        return list(range(0, total, total // num_frames))[:num_frames]
    raise ConfigError(f"clip_frames={sampling!r}: must be first or stride")


def read_clip(
    backbone: Backbone, path: Path, sampling: str = "first", resize: str = "stretch"
) -> tuple[np.ndarray, np.ndarray]:
    """``(frames at the clip's own size, frames at the training size)`` of the ``num_frames``
    frames ``sampling`` picks, cut to a VAE length (``1 + 4k``)."""
    bcfg = backbone.config
    if resize not in ("stretch", "crop"):
        raise ConfigError(f"clip_resize={resize!r}: must be stretch or crop")
    if sampling == "first":  # stops decoding after the frames it needs
        raw = read_video(path, num_frames=bcfg.num_frames, sampling="first", pad="none")
    else:
        clip = read_video(path)
        raw = clip[clip_indices(clip.shape[0], bcfg.num_frames, sampling)]
    raw = trim_to_vae_length(raw, backbone.vae_scale_factor_temporal)
    frames = resize_frames(raw, (bcfg.height, bcfg.width), mode=resize)
    if frames.shape[0] < bcfg.num_frames:
        logger.info(
            "%s: %d frames, shorter than %d; training on them as they are",
            path,
            frames.shape[0],
            bcfg.num_frames,
        )
    return raw, frames


def prepare_case_data(
    backbone: Backbone,
    case: Case,
    *,
    identity_prompt: str,
    motion_prompt: str,
    placeholder: str,
    image_encoder: ImageEncoder | None = None,
    seed: int,
    clip_frames: str = "first",
    clip_resize: str = "stretch",
    condition_preprocess: str = "clip",
) -> TrainingData:
    """:func:`encode_case` with a config's caption templates (``{class_noun}``, ``{action}``).

    The motion caption is the motion folder's ``prompts.txt`` when present.
    ``placeholder="strip"`` removes ``" *"`` from both captions. An ``image_encoder`` adds the
    per-clip image conditions and the reference embedding; without one they are ``None``.
    """
    ident = identity_caption(identity_prompt, case)
    motion = motion_caption(motion_prompt, case)
    return encode_case(
        backbone,
        case,
        identity_prompt=apply_placeholder(ident, placeholder),
        motion_prompt=apply_placeholder(motion, placeholder),
        image_encoder=image_encoder,
        seed=seed,
        clip_frames=clip_frames,
        clip_resize=clip_resize,
        condition_preprocess=condition_preprocess,
    )


# ---- batches -------------------------------------------------------------------------------
class EpochLoader:
    """Shuffled batches of item indices that restart when exhausted (a DataLoader with
    ``shuffle=True, drop_last=False`` under the authors' ``next_or_restart``)."""

    def __init__(self, num_items: int, batch_size: int, rng: random.Random) -> None:
        if num_items < 1:
            raise DataError("nothing to train on (no images or clips)")
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
    """The items ``indices`` as one batch ``(B, F, C, h, w)``, cropped to the shortest."""
    frames = min(latents[i].shape[1] for i in indices)
    return torch.cat([latents[i][:, :frames] for i in indices])  # (B, F, C, h, w)
