"""MotionBooth's training data: the subject images with their masks and caption, and the pool
of unrelated captioned clips the preservation loss draws from.

MotionBooth learns no motion from the case's reference clips (its motion comes from the
prompt), so the case's own clips are never read. The unrelated clips are, by default, every
clip of every *other* motion of the case's data root (the benchmark's 20 other motions for a
paper case), each captioned by its motion's ``prompts.txt`` ("a person is <action>") -- the
stand-in for MotionBooth's random Panda-70M subset with its captions -- or a user's folder of
clips with a ``captions.json``. Clips are read (the first ``num_frames`` frames at the training
size, as every method here reads clips) and VAE-encoded once, only those the loop will draw
(the draws are planned from the seed before it starts, and encoded then: an offloaded VAE
never comes back during the loop), then kept: a run encodes at most ``min(steps, clips)``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from dualreal_bench.errors import DataError
from dualreal_bench.media import list_videos
from dualreal_bench.spec import default_action, load_motions

from .._common.data import read_clip, read_motion_caption

if TYPE_CHECKING:
    from dualreal_bench.backbone import Backbone

logger = logging.getLogger(__name__)

__all__ = [
    "CAPTIONS_FILE",
    "MotionBoothData",
    "PreservationClip",
    "PreservationPool",
    "folder_clips",
    "other_motion_clips",
    "subject_token_positions",
]

#: the captions of a user's folder of unrelated clips: {"<file name>": "<caption>", ...}
CAPTIONS_FILE = "captions.json"


@dataclasses.dataclass(frozen=True)
class PreservationClip:
    """An unrelated clip: its file, caption and the motion (folder) it belongs to."""

    path: Path
    caption: str
    motion: str


def other_motion_clips(motions_dir: Path, exclude: str, template: str) -> list[PreservationClip]:
    """Every clip of every motion folder in ``motions_dir`` except ``exclude``, captioned by
    the folder's ``prompts.txt`` (else ``template`` with the motion's action), in name order."""
    manifest = load_motions()
    clips: list[PreservationClip] = []
    folders = (
        sorted(p for p in Path(motions_dir).iterdir() if p.is_dir()) if motions_dir.is_dir() else []
    )
    for folder in folders:
        if folder.name == exclude or not (folder / "videos").is_dir():
            continue
        caption = read_motion_caption(folder)
        if caption is None:
            motion = manifest.get(folder.name)
            action = motion.action if motion is not None else default_action(folder.name)
            caption = template.format(action=action, class_noun="")
        for path in list_videos(folder / "videos", allow_empty=True):
            clips.append(PreservationClip(path, caption, folder.name))
    return clips


def folder_clips(folder: str | Path) -> list[PreservationClip]:
    """The clips of a user's folder, captioned by its ``captions.json`` (every clip needs one;
    every caption needs its clip)."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise DataError(f"preservation_videos={folder}: no such directory")
    captions_path = folder / CAPTIONS_FILE
    if not captions_path.is_file():
        raise DataError(
            f"preservation_videos={folder}: no {CAPTIONS_FILE} "
            '({"clip.mp4": "a caption", ...} for every clip)'
        )
    try:
        captions = json.loads(captions_path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{captions_path}: not a readable JSON file ({exc})") from None
    if not isinstance(captions, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and v.strip() for k, v in captions.items()
    ):
        raise DataError(f"{captions_path}: expected an object of file name -> non-empty caption")
    videos = list_videos(folder)
    names = {p.name for p in videos}
    missing = [p.name for p in videos if p.name not in captions]
    if missing:
        raise DataError(f"{captions_path}: no caption for {', '.join(missing[:3])}")
    unknown = sorted(set(captions) - names)
    if unknown:
        raise DataError(
            f"{captions_path}: captions of clips that are not in {folder}: {unknown[:3]}"
        )
    return [PreservationClip(p, captions[p.name].strip(), folder.name) for p in videos]


class PreservationPool:
    """Unrelated clips, their caption embeddings, and their latents, encoded once.

    Build it with :meth:`from_clips` (the clips are read and VAE-encoded by :meth:`encode`, or
    the first time :meth:`latents` asks for one) or :meth:`from_tensors` (ready latents: tests and benchmarks on synthetic data).

    Args:
        embeds: one ``(1, L, D)`` caption embedding per clip.
        captions: one caption per clip (statistics).
        clips: the clips behind them (empty for ready latents).
        latents: ready ``(1, F, C, h, w)`` latents by clip index.
        backbone: encodes the clips that have no latents yet.
        seed: seeds each clip's VAE posterior sample (``seed`` + the clip's index), so a clip's
            latent does not depend on when it is first drawn.
    """

    def __init__(
        self,
        embeds: Sequence[torch.Tensor],
        captions: Sequence[str],
        *,
        clips: Sequence[PreservationClip] = (),
        latents: dict[int, torch.Tensor] | None = None,
        backbone: Backbone | None = None,
        seed: int = 0,
    ) -> None:
        if not embeds:
            raise DataError("no unrelated clips to preserve the motion prior with")
        if len(captions) != len(embeds) or (clips and len(clips) != len(embeds)):
            raise ValueError("PreservationPool: one caption (and clip) per embedding")
        self._embeds = list(embeds)
        self.captions = list(captions)
        self.clips = list(clips)
        self._latents = dict(latents or {})
        self.backbone = backbone
        self.seed = seed
        self.encoded = 0  # clips encoded so far (statistics)

    @classmethod
    def from_clips(
        cls, backbone: Backbone, clips: Sequence[PreservationClip], *, seed: int = 0
    ) -> PreservationPool:
        """A pool of ``clips``; each distinct caption is encoded once, here."""
        if not clips:
            raise DataError("no unrelated clips to preserve the motion prior with")
        captions = [c.caption for c in clips]
        distinct = sorted(set(captions))
        encoded = backbone.encode_prompts(distinct)
        by_caption = {c: encoded[i : i + 1] for i, c in enumerate(distinct)}
        embeds = [by_caption[c] for c in captions]
        return cls(embeds, captions, clips=clips, backbone=backbone, seed=seed)

    @classmethod
    def from_tensors(
        cls, latents: Sequence[torch.Tensor], embeds: Sequence[torch.Tensor]
    ) -> PreservationPool:
        """A pool of ready ``(1, F, C, h, w)`` latents with ``(1, L, D)`` caption embeddings."""
        captions = [f"<embedding {i}>" for i in range(len(embeds))]
        return cls(embeds, captions, latents=dict(enumerate(latents)))

    def __len__(self) -> int:
        return len(self.captions)

    def latents(self, index: int) -> torch.Tensor:
        """``(1, F, C, h, w)`` of clip ``index`` (read and encoded the first time)."""
        if index not in self._latents:
            self._encode(index)
        return self._latents[index]

    def encode(self, indices: Iterable[int]) -> None:
        """Encode the clips ``indices`` not encoded yet, with the VAE on the device for all of
        them at once (before the training loop, so that an offloaded VAE never comes back
        during it); the latents are those :meth:`latents` would give."""
        missing = sorted(set(indices) - set(self._latents))
        if not missing:
            return
        with self._backbone("encode").on_device("vae"):
            for index in missing:
                self._encode(index)

    def _encode(self, index: int) -> None:
        backbone = self._backbone(f"clip {index}")
        clip = self.clips[index]
        _, frames = read_clip(backbone, clip.path)  # the first frames, stretched
        video = backbone.preprocess_video(frames)[None]  # (1, 3, T, H, W)
        gen = torch.Generator(device="cpu").manual_seed(self.seed + index)
        self._latents[index] = backbone.encode_video(video, generator=gen).cpu()
        self.encoded += 1

    def _backbone(self, what: str) -> Backbone:
        if self.backbone is None:
            raise ValueError(f"PreservationPool: no latent and no backbone for {what}")
        return self.backbone

    def embeds(self, index: int) -> torch.Tensor:
        """``(1, L, D)`` caption embedding of clip ``index``."""
        return self._embeds[index]

    def describe(self) -> dict[str, Any]:
        """What the records keep: how many clips of which motions, with which captions."""
        by_motion: dict[str, int] = {}
        for clip in self.clips:
            by_motion[clip.motion] = by_motion.get(clip.motion, 0) + 1
        return {
            "clips": len(self),
            "clips_per_motion": by_motion,
            "captions": sorted(set(self.captions)),
            "encoded": self.encoded,
        }


@dataclasses.dataclass
class MotionBoothData:
    """A case as MotionBooth trains on it.

    ``image_latents``: one ``(1, 1, C, h, w)`` per subject image; ``region_masks``: one
    ``(1, 1, 1, h, w)`` (1 = subject) each; ``attention_targets``: one ``(1, N)`` each (the
    fraction of each video token's pixels inside the subject); ``image_prompt_embeds``:
    ``(1, L, D)`` of ``image_prompt`` ("a toy sks"); ``subject_positions``: the text-token
    indices of the subject phrase ("toy sks") in it; ``videos``: the unrelated clips (None
    when the preservation loss is off); ``masks``: ``{image name: source}``.
    """

    image_latents: list[torch.Tensor]
    region_masks: list[torch.Tensor]
    attention_targets: list[torch.Tensor]
    image_prompt_embeds: torch.Tensor
    image_prompt: str
    subject_positions: torch.Tensor
    videos: PreservationPool | None
    masks: dict[str, str] = dataclasses.field(default_factory=dict)
    mask_coverage: dict[str, float] = dataclasses.field(default_factory=dict)
    subject_tokens: list[str] = dataclasses.field(default_factory=list)


def subject_token_positions(tokenizer: Any, prompt: str, phrase: str, max_length: int) -> list[int]:
    """Indices of ``phrase``'s tokens in ``prompt`` as the backbone tokenises it (every token
    of the phrase, as MotionBooth's ``get_phrase_indices``; whitespace-only tokens left out).

    The prompt is tokenised up to the phrase's start and end; DataError when the phrase is
    missing, truncated away, or does not tokenise the same inside the prompt.
    """
    start = prompt.find(phrase)
    if start < 0:
        raise DataError(f"the subject phrase {phrase!r} is not in the caption {prompt!r}")
    end = start + len(phrase)

    def ids(text: str) -> list[int]:
        return list(tokenizer(text, add_special_tokens=False).input_ids)

    full = ids(prompt)
    before, through = ids(prompt[:start].rstrip()), ids(prompt[:end])
    if full[: len(through)] != through or through[: len(before)] != before:
        raise DataError(
            f"the subject phrase {phrase!r} does not tokenise the same inside {prompt!r}"
        )
    positions = [
        i for i in range(len(before), len(through)) if tokenizer.decode([through[i]]).strip()
    ]
    if not positions:
        raise DataError(f"the subject phrase {phrase!r} has no tokens in {prompt!r}")
    if positions[-1] >= max_length:
        raise DataError(
            f"the subject phrase {phrase!r} lies beyond the {max_length} text tokens of {prompt!r}"
        )
    return positions


def masks_to_targets(
    backbone: Backbone, masks: Sequence[np.ndarray]
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Bool ``(H, W)`` masks -> (latent region masks ``(1, 1, 1, h, w)``, attention targets
    ``(1, N)``), after the very resize and crop the images get."""
    from .losses import attention_target, latent_region_mask

    spatial = backbone.vae_scale_factor_spatial
    patch = int(backbone.transformer.config.patch_size)
    regions, targets = [], []
    for mask in masks:
        rgb = np.repeat((np.asarray(mask, dtype=np.uint8) * 255)[..., None], 3, axis=2)
        pixels = backbone.preprocess_images([rgb])[:, 0, 0]  # (1, H, W) in [-1, 1]
        binary = (pixels > 0).float()[:, None]  # (1, 1, H, W)
        regions.append(latent_region_mask(binary, spatial)[:, None])  # (1, 1, 1, h, w)
        targets.append(attention_target(binary, spatial * patch))  # (1, N)
    return regions, targets
