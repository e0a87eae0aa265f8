"""Frames as arrays: the video array check, frame sampling (which frames of a clip) and
resizing. Sizes are ``(height, width)``, frame rates frames per second."""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from PIL import Image

from ..errors import ConfigError, MediaError

Sampling = Literal["first", "uniform", "fps"]
PadPolicy = Literal["error", "repeat_last", "none"]
ResizeMode = Literal["crop", "stretch"]
SAMPLINGS: tuple[str, ...] = ("first", "uniform", "fps")
PAD_POLICIES: tuple[str, ...] = ("error", "repeat_last", "none")
RESIZE_MODES: tuple[str, ...] = ("crop", "stretch")


def check_video_array(frames: object, what: str) -> np.ndarray:
    """``frames`` if it is a video as the benchmark passes them around (a ``numpy.uint8`` array
    of shape ``(T, H, W, 3)``); TypeError naming ``what`` (who produced it) otherwise."""
    if (
        not isinstance(frames, np.ndarray)
        or frames.dtype != np.uint8
        or frames.ndim != 4
        or frames.shape[-1] != 3
    ):
        got = (
            f"{type(frames).__name__} {getattr(frames, 'dtype', '')} {getattr(frames, 'shape', '')}"
        )
        raise TypeError(f"{what}: expected a uint8 (T, H, W, 3) array, got {got}")
    return frames


def as_frames(frames, what: str) -> np.ndarray:
    """``frames`` (an array or a list of frames) as one contiguous ``uint8`` ``(T, H, W, 3)``
    array; ValueError naming ``what`` otherwise."""
    arr = (
        np.asarray(frames)
        if not isinstance(frames, list | tuple)
        else np.stack([np.asarray(f) for f in frames])
    )
    if arr.ndim != 4 or arr.shape[-1] != 3 or 0 in arr.shape:
        raise ValueError(
            f"{what} must be a non-empty uint8 array (T, H, W, 3), got shape {arr.shape}"
        )
    if arr.dtype != np.uint8:
        raise ValueError(f"{what} must be uint8, got {arr.dtype}")
    return np.ascontiguousarray(arr)


# ---- frame sampling ----------------------------------------------------------------------


def fps_interval(fps: float, target_fps: float) -> int:
    """Frame step that resamples ``fps`` to about ``target_fps``: ``max(1, round(fps / target_fps))``.

    This is VBench's rule for Dynamic Degree (``interval = round(fps / 8)``), with Python's
    ``round`` (half to even) as VBench uses it; 25 fps -> every 3rd frame at 8 fps, 29.97 fps
    -> every 4th, 10 fps -> every frame. Frames are never duplicated, so a source slower than
    the target keeps every frame (interval 1).
    """
    if not (fps > 0 and math.isfinite(fps)):
        raise ConfigError(f"fps must be a positive number, got {fps!r}")
    if not (target_fps is not None and target_fps > 0 and math.isfinite(target_fps)):
        raise ConfigError(f"target_fps must be a positive number, got {target_fps!r}")
    return max(1, round(fps / target_fps))


def sample_indices(
    num_frames: int,
    fps: float | None = None,
    *,
    num_frames_out: int | None = None,
    sampling: Sampling = "first",
    target_fps: float | None = None,
    pad: PadPolicy = "error",
) -> list[int]:
    """Indices of the frames to take from a clip of ``num_frames`` frames at ``fps``.

    Sampling rules (``n = num_frames_out``; ``None`` means "as many as the rule gives"):

    - ``"first"``: ``0, 1, ..., n-1`` (the DualReal authors train on the first 49 frames).
    - ``"uniform"``: ``n`` indices spread evenly over the whole clip,
      ``floor(linspace(0, num_frames - 1, n) + 0.5)`` (first and last frame included).
    - ``"fps"``: every ``k``-th frame from frame 0 with ``k = fps_interval(fps, target_fps)``
      (VBench's Dynamic Degree rule), then the first ``n`` of those.

    Short clips (fewer frames available than ``n``, e.g. UCF Sports Kicking-Front: 23 frames
    against the 49 a backbone wants) follow ``pad``:

    - ``"error"`` (default): raise MediaError stating both counts;
    - ``"repeat_last"``: the available indices, then the last one repeated up to ``n``
      (the clip plays at its own speed, then holds its last frame);
    - ``"none"``: return the shorter list.

    A clip with no frames always raises MediaError.
    """
    _check_sampling(num_frames, fps, num_frames_out, sampling, target_fps, pad)
    if sampling == "first":
        available = list(range(num_frames))
        indices = available if num_frames_out is None else available[:num_frames_out]
    elif sampling == "fps":
        available = list(range(0, num_frames, fps_interval(float(fps), float(target_fps))))
        indices = available if num_frames_out is None else available[:num_frames_out]
    else:  # uniform
        available = list(range(num_frames))
        if num_frames_out is None:
            indices = available
        elif num_frames >= num_frames_out:
            grid = np.linspace(0, num_frames - 1, num_frames_out)
            indices = [int(i) for i in np.floor(grid + 0.5)]
        else:
            indices = available

    if num_frames_out is not None and len(indices) < num_frames_out:
        if pad == "error":
            what = (
                f"{len(indices)} frames at {target_fps:g} fps"
                if sampling == "fps"
                else f"{num_frames} frames"
            )
            raise MediaError(
                f"clip has {what}, fewer than the {num_frames_out} requested (sampling={sampling!r}); "
                "pass pad='repeat_last' to hold the last frame or pad='none' to accept a shorter clip"
            )
        if pad == "repeat_last":
            indices = indices + [indices[-1]] * (num_frames_out - len(indices))
    return indices


def _check_sampling(
    num_frames: int,
    fps: float | None,
    num_frames_out: int | None,
    sampling: str,
    target_fps: float | None,
    pad: str,
) -> None:
    """The arguments of :func:`sample_indices`: ConfigError for a bad option, MediaError for a
    clip that cannot be sampled (no frames; no frame rate to resample)."""
    if sampling not in SAMPLINGS:
        raise ConfigError(f"sampling must be one of {', '.join(SAMPLINGS)}; got {sampling!r}")
    if pad not in PAD_POLICIES:
        raise ConfigError(f"pad must be one of {', '.join(PAD_POLICIES)}; got {pad!r}")
    if num_frames_out is not None and (
        not isinstance(num_frames_out, int | np.integer) or num_frames_out < 1
    ):
        raise ConfigError(f"num_frames must be a positive integer, got {num_frames_out!r}")
    if sampling == "fps":
        if target_fps is None:
            raise ConfigError("sampling='fps' needs target_fps")
        if not fps:
            raise MediaError("frame rate unknown, cannot resample to target_fps")
    elif target_fps is not None:
        raise ConfigError(f"target_fps only applies to sampling='fps' (got sampling={sampling!r})")
    if num_frames < 1:
        raise MediaError("no decodable frames")


# ---- resizing ----------------------------------------------------------------------------


def check_size(size) -> tuple[int, int]:
    try:
        h, w = (int(s) for s in size)
    except (TypeError, ValueError):
        raise ConfigError(f"size must be (height, width), got {size!r}") from None
    if h < 1 or w < 1 or (h, w) != tuple(size):
        raise ConfigError(f"size must be two positive integers (height, width), got {size!r}")
    return h, w


def _resize_one(frame: np.ndarray, h: int, w: int) -> np.ndarray:
    src_h, src_w = frame.shape[:2]
    if (src_h, src_w) == (h, w):
        return frame
    if h <= src_h and w <= src_w:
        import cv2

        return cv2.resize(frame, (w, h), interpolation=cv2.INTER_AREA)
    # Enlarging: Pillow's bicubic (fixed-point integer arithmetic, the same on every CPU).
    # OpenCV's INTER_CUBIC is not: its SIMD and scalar paths differ by a level here and there.
    return np.asarray(Image.fromarray(frame).resize((w, h), Image.Resampling.BICUBIC))


def resize_frames(
    frames: np.ndarray, size: tuple[int, int], mode: ResizeMode = "crop"
) -> np.ndarray:
    """Resize ``(T, H, W, 3)`` (or one ``(H, W, 3)`` image) ``uint8`` frames to ``size = (H, W)``.

    - ``"crop"``: scale by ``max(H / h, W / w)`` so the target is covered (aspect kept, scaled
      side lengths rounded), then crop the centre (offset ``round((excess) / 2)``), as
      torchvision's ``Resize`` + ``CenterCrop``;
    - ``"stretch"``: resize to ``(H, W)`` directly, ignoring the aspect ratio.

    Interpolation is OpenCV's ``INTER_AREA`` when both sides shrink (anti-aliased) and
    Pillow's ``BICUBIC`` otherwise; both give the same pixels on every CPU. Frames already at ``size`` are returned unchanged.
    """
    h, w = check_size(size)
    if mode not in RESIZE_MODES:
        raise ConfigError(f"resize mode must be one of {', '.join(RESIZE_MODES)}; got {mode!r}")
    arr = np.asarray(frames)
    single = arr.ndim == 3
    arr = as_frames(arr[None] if single else arr, "frames")
    src_h, src_w = arr.shape[1:3]
    if (src_h, src_w) == (h, w):
        return arr[0] if single else arr
    if mode == "crop":
        scale = max(h / src_h, w / src_w)
        rh, rw = max(h, round(src_h * scale)), max(w, round(src_w * scale))
        top, left = round((rh - h) / 2), round((rw - w) / 2)
        out = np.stack([_resize_one(f, rh, rw)[top : top + h, left : left + w] for f in arr])
    else:
        out = np.stack([_resize_one(f, h, w) for f in arr])
    out = np.ascontiguousarray(out)
    return out[0] if single else out
