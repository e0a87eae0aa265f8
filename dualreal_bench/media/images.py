"""Images: reading any Pillow mode as RGB ``uint8`` ``(H, W, 3)`` (policies in the package
docstring), writing them atomically."""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from ..errors import MediaError
from ..io import atomic_path
from .files import PathLike, check_file, one_line
from .frames import as_frames

logger = logging.getLogger(__name__)


def _scale_to_uint8(values: np.ndarray, mode: str) -> np.ndarray:
    """Map a single-channel integer/float image onto uint8 (see the module docstring)."""
    v = values.astype(np.float64)
    if mode.startswith("I;16") or (mode == "I" and v.size and v.min() >= 0 and v.max() <= 65535):
        out = v * (255.0 / 65535.0)
    elif mode == "F" and v.size and v.min() >= 0 and v.max() <= 1:
        out = v * 255.0
    else:  # an unknown range: stretch min..max over 0..255
        lo, hi = (float(v.min()), float(v.max())) if v.size else (0.0, 0.0)
        out = (v - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(v)
    return np.clip(np.floor(out + 0.5), 0, 255).astype(np.uint8)


def _composite_on_white(rgba: np.ndarray) -> np.ndarray:
    """(H, W, 4) uint8 straight alpha -> (H, W, 3) uint8 over a white background, rounded."""
    rgb = rgba[..., :3].astype(np.uint32)
    alpha = rgba[..., 3:4].astype(np.uint32)
    out = (rgb * alpha + 255 * (255 - alpha) + 127) // 255
    return out.astype(np.uint8)


def _pil_to_rgb(im: Image.Image) -> np.ndarray:
    mode = im.mode
    if mode in ("I", "F") or mode.startswith("I;16"):
        gray = _scale_to_uint8(np.asarray(im), mode)
        return np.repeat(gray[..., None], 3, axis=2)
    has_alpha = mode in ("RGBA", "LA", "PA", "La", "RGBa") or (
        mode in ("P", "L", "RGB") and "transparency" in im.info
    )
    if has_alpha:
        return _composite_on_white(np.asarray(im.convert("RGBA")))
    if mode != "RGB":
        im = im.convert("RGB")
    return np.asarray(im)


#: images with more pixels are decoded at a reduced size (no consumer needs more: CLIP and
#: DINO look at 224 px, CogVideoX-5B at 480x720): 4096 x 4096, 48 MB as RGB
MAX_IMAGE_PIXELS = 4096 * 4096
#: the most pixels decoded at once on the way (a PNG has no reduced decoding; a JPEG's
#: reduced decoding stops at 1/8): more is refused as too large, not decoded into gigabytes
MAX_DECODE_PIXELS = 8192 * 8192


@contextlib.contextmanager
def _strict_truncation() -> Iterator[None]:
    """Refuse truncated files even where another library flipped Pillow's global switch
    (VBench's AMT utilities set ``ImageFile.LOAD_TRUNCATED_IMAGES = True`` on import), and
    apply :data:`MAX_IMAGE_PIXELS` / :data:`MAX_DECODE_PIXELS` instead of Pillow's bomb
    check (which warns, then decodes 90-180 Mpixel images in full)."""
    previous = ImageFile.LOAD_TRUNCATED_IMAGES, Image.MAX_IMAGE_PIXELS
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    Image.MAX_IMAGE_PIXELS = None
    try:
        yield
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES, Image.MAX_IMAGE_PIXELS = previous


def _load_bounded(im: Image.Image, path: Path) -> Image.Image:
    """``im`` decoded with bounded memory: above :data:`MAX_IMAGE_PIXELS` a JPEG is decoded
    at 1/2, 1/4 or 1/8 scale (``draft``) and the result reduced (``reduce``, a box filter)
    below the limit; an image that would need more than :data:`MAX_DECODE_PIXELS` decoded at
    once is a MediaError naming the file, its size and the limit."""
    w, h = im.size
    if w * h > MAX_IMAGE_PIXELS:
        # the smallest JPEG scale that fits (Pillow picks scale w // requested width)
        scale = next((s for s in (1, 2, 4) if (w // s) * (h // s) <= MAX_IMAGE_PIXELS), 8)
        im.draft(None, (max(1, w // scale), max(1, h // scale)))
        if im.size[0] * im.size[1] > MAX_DECODE_PIXELS:
            raise MediaError(
                f"{path}: image is {w}x{h} ({w * h / 1e6:.0f} Mpixels); more than "
                f"{MAX_DECODE_PIXELS / 1e6:.0f} Mpixels are not decoded (memory): downscale it "
                f"(e.g. to {int(math.sqrt(MAX_IMAGE_PIXELS))} px on its longer side)"
            )
    im.load()
    dw, dh = im.size
    if dw * dh > MAX_IMAGE_PIXELS:
        im = im.reduce(math.ceil(math.sqrt(dw * dh / MAX_IMAGE_PIXELS)))
    if im.size != (w, h):
        logger.info("%s: %dx%d image decoded at %dx%d (bounded memory)", path, w, h, *im.size)
    return im


def read_image(path: PathLike) -> np.ndarray:
    """Read an image file as RGB ``uint8`` of shape ``(H, W, 3)``.

    Any Pillow mode is accepted (RGBA/LA/P-with-transparency composited on white, L, 1,
    I;16, I, F, CMYK, YCbCr); the EXIF orientation is applied, so ``H, W`` are the displayed
    height and width. An image of more than :data:`MAX_IMAGE_PIXELS` is decoded at a reduced
    size, with bounded memory (logged). Raises MediaError naming the file when it is missing,
    empty, truncated, not an image or too large to decode.
    """
    p = check_file(path)
    try:
        with _strict_truncation(), Image.open(p) as opened:
            im = _load_bounded(opened, p)
            im = ImageOps.exif_transpose(im)
            rgb = _pil_to_rgb(im)
    except UnidentifiedImageError:
        raise MediaError(f"{p}: not a recognised image file") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise MediaError(f"{p}: cannot decode image ({one_line(e)})") from None
    return np.ascontiguousarray(rgb, dtype=np.uint8)


def read_images(paths: Sequence[PathLike]) -> list[np.ndarray]:
    """:func:`read_image` for each path, in order."""
    return [read_image(p) for p in paths]


def write_image(path: PathLike, image: np.ndarray) -> Path:
    """Write an RGB ``uint8`` ``(H, W, 3)`` array atomically; the format follows the suffix."""
    arr = as_frames(image[None] if np.ndim(image) == 3 else image, "image")[0]
    path = Path(path)
    with atomic_path(path) as tmp:
        Image.fromarray(arr, "RGB").save(
            tmp, format=Image.registered_extensions().get(path.suffix.lower())
        )
    return path
