"""Preparing a case for MotionBooth's training (:meth:`~.method.MotionBoothMethod.prepare`).

The subject's images, VAE-encoded once; their masks (:mod:`.masks`) and the attention targets
at latent resolution; the caption with the unique token (:func:`with_unique_token`) and the
positions of the subject's tokens in it; the pool of unrelated captioned clips (:mod:`.data`).
Everything that is not used (the masks without the masked region loss or the cross-attention
loss, the clips without the preservation loss) is neither read nor loaded.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from dualreal_bench.errors import ConfigError
from dualreal_bench.media import read_images
from dualreal_bench.spec import PLACEHOLDER

from .._common.data import identity_caption
from .config import MotionBoothConfig
from .data import (
    MotionBoothData,
    PreservationPool,
    folder_clips,
    masks_to_targets,
    other_motion_clips,
    subject_token_positions,
)
from .masks import SubjectMask, sam_segmenter, subject_masks

if TYPE_CHECKING:
    from dualreal_bench.backbone import Backbone
    from dualreal_bench.spec import Case

logger = logging.getLogger(__name__)

__all__ = ["prepare_case", "with_unique_token"]

_PLACEHOLDER_RE = re.compile(r"\s*" + re.escape(PLACEHOLDER))


def with_unique_token(prompt: str, token: str) -> str:
    """``"dog * is surfing"`` -> ``"dog sks is surfing"``: every placeholder ``" *"`` becomes
    ``" <token>"`` (``token="*"`` leaves the prompt as it is)."""
    replaced = _PLACEHOLDER_RE.sub(lambda _: f" {token}", prompt)
    return " ".join(replaced.split())


def prepare_case(
    case: Case, config: MotionBoothConfig, backbone: Backbone, mask_fallback: str
) -> MotionBoothData:
    """The subject's images (encoded once), their masks, the caption and its subject tokens,
    and the pool of unrelated clips; ``mask_fallback`` (``"sam"`` or ``"full_frame"``) is
    where a mask comes from for an image without a mask file or alpha channel."""
    cfg = config
    paths = case.image_paths()
    images = read_images(paths)
    gen = torch.Generator(device="cpu").manual_seed(cfg.seed)
    latents = [backbone.encode_images([im], generator=gen) for im in images]
    masks = _subject_masks(case, cfg, backbone, paths, images, mask_fallback)
    regions, targets = masks_to_targets(backbone, [m.mask for m in masks])

    caption = identity_caption(cfg.identity_prompt, case)
    prompt = with_unique_token(caption, cfg.unique_token)
    positions: list[int] = []
    if cfg.cross_attn_loss_weight > 0:
        phrase = with_unique_token(f"{case.identity.class_noun} {PLACEHOLDER}", cfg.unique_token)
        positions = subject_token_positions(
            backbone.tokenizer, prompt, phrase, backbone.config.max_sequence_length
        )
    videos = _preservation_pool(case, cfg, backbone) if cfg.video_loss_weight > 0 else None
    return MotionBoothData(
        image_latents=latents,
        region_masks=regions,
        attention_targets=targets,
        image_prompt_embeds=backbone.encode_prompts([prompt]),
        image_prompt=prompt,
        subject_positions=torch.tensor(positions, dtype=torch.long),
        videos=videos,
        masks={p.name: m.source for p, m in zip(paths, masks, strict=True)},
        mask_coverage={p.name: round(m.coverage, 4) for p, m in zip(paths, masks, strict=True)},
        subject_tokens=[
            backbone.tokenizer.decode([i]) for i in _ids_at(backbone, prompt, positions)
        ],
    )


def _subject_masks(
    case: Case,
    cfg: MotionBoothConfig,
    backbone: Backbone,
    paths: Sequence[Path],
    images: Sequence[np.ndarray],
    mask_fallback: str,
) -> list[SubjectMask]:
    """Each image's subject mask. The masks feed the masked region loss and the
    cross-attention targets; unused, no segmentation model is loaded for them."""
    used = (cfg.mask_region_loss and cfg.region_loss_weight > 0) or cfg.cross_attn_loss_weight > 0
    fallback = mask_fallback if used else "full_frame"
    masks = subject_masks(
        paths,
        images,
        fallback=fallback,
        segmenter=lambda: sam_segmenter(cfg.mask_model, cfg.mask_model_path, backbone.device),
    )
    if used and fallback == "full_frame" and any(m.source == "full_frame" for m in masks):
        logger.warning(
            "motionbooth: %s: full-frame subject masks for images without a mask file or "
            "alpha channel (mask_fallback=%s on profile %s): the region loss is the plain loss",
            case.identity.name,
            cfg.mask_fallback,
            backbone.profile.name,
        )
    return masks


def _preservation_pool(case: Case, cfg: MotionBoothConfig, backbone: Backbone) -> PreservationPool:
    """The unrelated clips of the video preservation loss: the user's folder, else every clip
    of the case's other motions."""
    if cfg.preservation_videos:
        clips = folder_clips(cfg.preservation_videos)
    else:
        clips = other_motion_clips(case.motion_dir.parent, case.motion.name, cfg.motion_prompt)
        if not clips:
            raise ConfigError(
                f"motionbooth: no clips of motions other than {case.motion.name!r} in "
                f"{case.motion_dir.parent}; the video preservation loss needs unrelated "
                "clips: --set preservation_videos=DIR (clips + captions.json) or "
                "--set video_loss_weight=0"
            )
    return PreservationPool.from_clips(backbone, clips, seed=cfg.seed)


def _ids_at(backbone: Backbone, prompt: str, positions: list[int]) -> list[int]:
    ids = backbone.tokenizer(prompt, add_special_tokens=False).input_ids
    return [ids[i] for i in positions]
