"""Subject masks of an identity's images, first match wins:

1. a mask file ``masks/<image stem>.png`` beside the image (in the images folder or beside
   it: ``<identity>/images/masks/`` or ``<identity>/masks/``; both at once is an error), any
   Pillow mode, white (>= 128) = subject, the image's size;
2. the image's alpha channel (opaque = subject) when it has one that is not opaque everywhere
   (a uniformly opaque alpha carries no mask: the DualReal sample's RGBA photos are like that);
3. the fallback: a segmentation model (transformers' SAM with the whole image as the box
   prompt, weights from a local directory or the Hugging Face cache, never downloaded), or an
   explicitly named full-frame mask (every pixel; the tiny profile's fallback, where no
   segmentation model exists): the region loss is then the plain loss.

Where each mask came from goes into the training statistics (``subject_masks`` in the case's
``train.json``). Segmented masks are computed once per image and kept in the user cache
(:mod:`dualreal_bench.cache`), keyed by the image's bytes and the segmenter's weights.

The weights lookup here is the method's own (a local directory, else the Hugging Face cache);
when the project's weights table exists it belongs there.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from dualreal_bench.cache import ArrayCache, file_sha256, user_cache_dir
from dualreal_bench.errors import DataError, WeightsError
from dualreal_bench.weights import find_weights

logger = logging.getLogger(__name__)

__all__ = [
    "MASK_DIR",
    "Segmenter",
    "SubjectMask",
    "alpha_mask",
    "find_mask_file",
    "read_mask_file",
    "sam_parameter_count",
    "sam_segmenter",
    "subject_masks",
]

#: the folder of mask files (``masks/<image stem>.png``)
MASK_DIR = "masks"
#: bump when segmented masks would come out differently: cached ones are then recomputed
MASK_FORMAT = 1
#: the user-cache kind of segmented masks
CACHE_KIND = "motionbooth_masks"
#: published vision-encoder shapes of the SAM checkpoints (their config.json): hidden size,
#: layers, heads, global-attention layers
SAM_VISION = {
    "facebook/sam-vit-base": (768, 12, 12, (2, 5, 8, 11)),
    "facebook/sam-vit-large": (1024, 24, 16, (5, 11, 17, 23)),
    "facebook/sam-vit-huge": (1280, 32, 16, (7, 15, 23, 31)),
}


@dataclasses.dataclass(frozen=True)
class SubjectMask:
    """One image's mask: bool ``(H, W)`` at the image's displayed size, and its source
    (``"file:<path>"``, ``"alpha"``, ``"sam:<model>"`` or ``"full_frame"``)."""

    mask: np.ndarray
    source: str

    @property
    def coverage(self) -> float:
        """The fraction of the image inside the mask."""
        return float(self.mask.mean())


@dataclasses.dataclass
class Segmenter:
    """A segmentation model, loaded on first use.

    ``name`` goes into the records (``"sam:facebook/sam-vit-huge"``); ``key`` is what its
    masks depend on (model, weights) for the cache; ``load()`` returns a function from a uint8
    ``(H, W, 3)`` image to a bool ``(H, W)`` mask."""

    name: str
    key: dict[str, Any]
    load: Callable[[], Callable[[np.ndarray], np.ndarray]]
    _fn: Callable[[np.ndarray], np.ndarray] | None = None

    def __call__(self, image: np.ndarray) -> np.ndarray:
        if self._fn is None:
            self._fn = self.load()
        return self._fn(image)


# ---- the sources, in order -------------------------------------------------------------------
def find_mask_file(image_path: Path) -> Path | None:
    """``masks/<stem>.png`` in the image's folder or beside it; None if neither exists."""
    image_path = Path(image_path)
    candidates = [
        image_path.parent / MASK_DIR / f"{image_path.stem}.png",
        image_path.parent.parent / MASK_DIR / f"{image_path.stem}.png",
    ]
    found = [c for c in candidates if c.is_file()]
    if len(found) > 1:
        raise DataError(
            f"{image_path}: two mask files ({found[0]} and {found[1]}); keep one of them"
        )
    return found[0] if found else None


def _open(path: Path, what: str) -> Image.Image:
    try:
        im = Image.open(path)
        im.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise DataError(f"{path}: cannot read the {what} ({exc})") from None
    return ImageOps.exif_transpose(im)


def read_mask_file(path: Path, shape: tuple[int, int]) -> np.ndarray:
    """A mask file as bool ``(H, W)`` (grey level >= 128 = subject); DataError when it is not
    ``shape`` or holds no subject pixel."""
    gray = np.asarray(_open(path, "subject mask").convert("L"))
    if gray.shape != tuple(shape):
        raise DataError(
            f"{path}: the mask is {gray.shape[1]}x{gray.shape[0]} but its image is "
            f"{shape[1]}x{shape[0]} (width x height); masks must have their image's size"
        )
    mask = gray >= 128
    if not mask.any():
        raise DataError(f"{path}: the mask is empty (no pixel >= 128)")
    return mask


def alpha_mask(image_path: Path) -> np.ndarray | None:
    """The image's alpha channel as a bool mask (alpha >= 128), or None when the image has no
    alpha or an alpha that is opaque everywhere."""
    im = _open(Path(image_path), "image")
    has_alpha = im.mode in ("RGBA", "LA", "PA", "La", "RGBa") or (
        im.mode in ("P", "L", "RGB") and "transparency" in im.info
    )
    if not has_alpha:
        return None
    alpha = np.asarray(im.convert("RGBA"))[..., 3]
    if alpha.min() == 255:
        return None
    mask = alpha >= 128
    if not mask.any():
        raise DataError(f"{image_path}: the alpha channel is transparent everywhere")
    return mask


def subject_masks(
    image_paths: Sequence[Path],
    images: Sequence[np.ndarray],
    *,
    fallback: str,
    segmenter: Callable[[], Segmenter] | None = None,
    cache: ArrayCache | None = None,
) -> list[SubjectMask]:
    """The mask of each image (module docstring for the order).

    Args:
        image_paths, images: the identity's images and their pixels (uint8 ``(H, W, 3)``).
        fallback: ``"sam"`` (``segmenter``) or ``"full_frame"``.
        segmenter: builds the :class:`Segmenter`; called at most once, and only when an image
            needs it (so missing weights matter only then).
        cache: where segmented masks are kept (default: the user cache).
    """
    if fallback not in ("sam", "full_frame"):
        raise ValueError(f"fallback must be sam or full_frame, got {fallback!r}")
    out: list[SubjectMask] = []
    model: Segmenter | None = None
    for path, image in zip(image_paths, images, strict=True):
        path = Path(path)
        shape = image.shape[:2]
        mask_file = find_mask_file(path)
        if mask_file is not None:
            out.append(SubjectMask(read_mask_file(mask_file, shape), f"file:{mask_file}"))
            continue
        alpha = alpha_mask(path)
        if alpha is not None:
            out.append(SubjectMask(alpha, "alpha"))
            continue
        if fallback == "full_frame":
            out.append(SubjectMask(np.ones(shape, dtype=bool), "full_frame"))
            continue
        if segmenter is None:
            raise ValueError("fallback='sam' needs a segmenter")
        if model is None:
            model = segmenter()
        out.append(SubjectMask(_segmented(path, image, model, cache), model.name))
    return out


def _segmented(path: Path, image: np.ndarray, model: Segmenter, cache: ArrayCache | None):
    cache = cache if cache is not None else ArrayCache(user_cache_dir())
    key = {
        "format": MASK_FORMAT,
        "image": file_sha256(path),
        "segmenter": model.key,
        "prompt": "whole-image box",
    }
    stored = cache.get(CACHE_KIND, key)
    if stored is not None and stored.shape == image.shape[:2]:
        return stored.astype(bool)
    logger.info("segmenting %s with %s", path, model.name)
    mask = np.asarray(model(image), dtype=bool)
    if mask.shape != image.shape[:2]:
        raise WeightsError(
            f"{model.name}: returned a {mask.shape} mask for the {image.shape[:2]} image {path}"
        )
    if not mask.any():
        raise DataError(
            f"{path}: {model.name} found no subject; put a mask file "
            f"{path.parent / MASK_DIR / (path.stem + '.png')} beside the image"
        )
    cache.put(CACHE_KIND, key, mask.astype(np.uint8))
    return mask


# ---- SAM ---------------------------------------------------------------------------------------
def _sam_location(model_id: str, path: str) -> tuple[Path, dict[str, Any]]:
    """Where the checkpoint is (the weights table's ``sam-vit-huge`` entry: ``path``, else
    the Hugging Face cache of ``model_id``) and what identifies its weights (the cache key)."""
    where = find_weights("sam-vit-huge", path=path or None, hf_repo=model_id)
    if path:
        return where, {"model": model_id, "weights_sha256": file_sha256(where)}
    return where, {"model": model_id, "revision": where.name}


def sam_segmenter(model_id: str, path: str = "", device: Any = "cpu") -> Segmenter:
    """SAM (transformers ``SamModel``) from ``path`` or the Hugging Face cache; the whole image
    is the box prompt, one mask (``multimask_output=False``, SAM's setting for box prompts).
    WeightsError naming the checkpoint when it is missing."""
    where, key = _sam_location(model_id, path)

    def load() -> Callable[[np.ndarray], np.ndarray]:
        from transformers import SamModel, SamProcessor

        try:
            model = SamModel.from_pretrained(str(where), local_files_only=True)
            processor = SamProcessor.from_pretrained(str(where), local_files_only=True)
        except (OSError, ValueError) as exc:
            raise WeightsError(f"{where}: cannot load SAM ({exc})") from None
        model = model.to(device).eval()
        return lambda image: segment_whole_image(model, processor, image)

    return Segmenter(name=f"sam:{model_id}", key=key, load=load)


def segment_whole_image(model: Any, processor: Any, image: np.ndarray) -> np.ndarray:
    """SAM's mask for the box covering the whole image: bool ``(H, W)``."""
    import torch

    h, w = image.shape[:2]
    inputs = processor(images=image, input_boxes=[[[0, 0, w, h]]], return_tensors="pt")
    device = next(model.parameters()).device
    with torch.no_grad():
        out = model(
            pixel_values=inputs["pixel_values"].to(device),
            input_boxes=inputs["input_boxes"].to(device),
            multimask_output=False,
        )
    masks = processor.image_processor.post_process_masks(
        out.pred_masks.cpu(), inputs["original_sizes"].cpu(), inputs["reshaped_input_sizes"].cpu()
    )
    return masks[0][0, 0].numpy().astype(bool)


def sam_parameter_count(model_id: str) -> int | None:
    """Parameters of a published SAM checkpoint, counted on the meta device (None if the id is
    not one of :data:`SAM_VISION`)."""
    import torch
    from transformers import SamConfig, SamModel

    if model_id not in SAM_VISION:
        return None
    hidden, layers, heads, global_attn = SAM_VISION[model_id]
    config = SamConfig(
        vision_config={
            "hidden_size": hidden,
            "num_hidden_layers": layers,
            "num_attention_heads": heads,
            "global_attn_indexes": list(global_attn),
        }
    )
    with torch.device("meta"):
        return sum(p.numel() for p in SamModel(config).parameters())
