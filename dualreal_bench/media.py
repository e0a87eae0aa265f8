"""Image and video input/output: decoding, frame sampling, resizing, writing.

Everything that touches pixels on disk goes through this module, so every other part of the
benchmark sees one representation:

- an image is a ``np.ndarray`` of ``uint8``, shape ``(H, W, 3)``, RGB;
- a video is a ``np.ndarray`` of ``uint8``, shape ``(T, H, W, 3)``, RGB;
- sizes are ``(height, width)``, frame rates are frames per second (float).

Any file that cannot be read (missing, empty, truncated, not an image/video, a video with no
decodable frame, a clip shorter than requested) raises :class:`~dualreal_bench.errors.MediaError`
with a one-line message ``"<path>: <problem>"``.

Policies (also recorded in the docstrings of the functions that apply them):

Images
    Decoded with Pillow. The EXIF orientation is applied (``ImageOps.exif_transpose``).
    Transparency (RGBA, LA, PA, P with a ``transparency`` entry) is composited on white.
    16-bit images (``I;16*`` and ``I`` whose values lie in ``[0, 65535]``) are scaled by
    ``255 / 65535`` with rounding, so the full 16-bit range maps onto the full 8-bit range;
    other ``I`` and ``F`` images are min-max normalised (``F`` in ``[0, 1]`` is scaled by 255).
    CMYK goes through Pillow's conversion. Embedded ICC profiles are ignored, as the loaders
    of diffusers and CLIP ignore them. Multi-frame images (GIF, WebP) give their first frame.
Videos
    Decoded once with PyAV (FFmpeg); frames are converted to RGB by FFmpeg's swscale in its
    bit-exact mode (``POINT | BITEXACT | ACCURATE_RND``), which gives swscale's C reference
    result whatever SIMD the CPU has, so the same file gives the same pixels on every CPU.
    swscale's default fast path (and ``cv2.VideoCapture``, which uses it) does not: its SIMD
    code rounds differently from its C code. The two differ by at most 3 levels (mean 0.7)
    on the benchmark's AVIs. The decoded YUV itself (MPEG-4 part 2, H.264) is bit-exact
    with and without SIMD. Frame counts
    come from decoding, never from container metadata (which can be wrong for AVI). A display
    rotation (phone videos) is applied. The sample aspect ratio is ignored (as OpenCV and
    decord do). See :func:`sample_indices` for the frame sampling rules and the short-clip
    policy, :func:`resize_frames` for resizing.
Writing
    H.264 (libx264, yuv420p, BT.601 limited range, tagged as such) in MP4 through PyAV. The same
    frames give the same bytes whatever the process did before and on any x86-64 CPU with
    SSSE3 (see :data:`X264_PARAMS` for why: x264's macroblock-tree rate control reads
    uninitialised stack memory, and swscale's fast RGB->YUV path is CPU-dependent), with the
    same FFmpeg/x264 build. PNGs through Pillow. Every write is atomic: a temporary file in
    the destination directory, then ``os.replace``.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import ConfigError, MediaError
from .io import atomic_path

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".webp", ".bmp")
VIDEO_EXTENSIONS: tuple[str, ...] = (".avi", ".mp4", ".mov", ".mkv", ".webm")

Sampling = Literal["first", "uniform", "fps"]
PadPolicy = Literal["error", "repeat_last", "none"]
ResizeMode = Literal["crop", "stretch"]
SAMPLINGS: tuple[str, ...] = ("first", "uniform", "fps")
PAD_POLICIES: tuple[str, ...] = ("error", "repeat_last", "none")
RESIZE_MODES: tuple[str, ...] = ("crop", "stretch")

#: x264 settings of :func:`write_video`. ``crf`` 18 is visually lossless for generated
#: content; the thread count is fixed (not "auto") because x264's output depends on it.
DEFAULT_CRF = 18
DEFAULT_PRESET = "medium"
DEFAULT_X264_THREADS = 2

#: Extra x264 parameters of :func:`write_video`, chosen for reproducible bytes.
#:
#: ``mbtree=0``: x264's macroblock-tree rate control (on by default) reads uninitialised stack
#: memory. valgrind's memcheck reports "use of uninitialised value ... created by a stack
#: allocation" inside ``x264_encoder_encode`` with mbtree on, and nothing in x264, swscale or
#: libavcodec with it off. What is read is whatever an earlier call left on that stack, so the
#: bytes depended on the process's history: encoding the same frames after decoding other
#: clips gave several byte streams for widths 96, 112, 160 and 720 (CogVideoX's width) and one
#: for 64 and 128, i.e. where the half-resolution lookahead row is not a whole multiple of 4
#: macroblocks, consistent with SIMD loops over mbtree's per-row buffers reading past the row.
#: With mbtree off the bytes are the same after any history and in fresh processes
#: (``tests/test_media.py``). The price: crf 18 spends ~10% more bits.
#:
#: x264's CPU detection is left on: its output is identical for every instruction-set level
#: from SSSE3 to AVX-512 (tested by forcing x264's ``asm`` mask); only pre-SSSE3 CPUs and the
#: C fallback (``asm=0``, 4x slower and itself not valgrind-clean) encode differently.
X264_PARAMS: dict[str, str] = {"mbtree": "0"}

PathLike = str | os.PathLike


# ---- files and directories ---------------------------------------------------------------


def _natural_key(path: Path) -> tuple[list[object], str]:
    """Sort key that orders ``img2`` before ``img10`` (digits compare as numbers, letters
    case-insensitively; the exact name breaks ties so the order never depends on the OS)."""
    parts = [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", path.name)]
    return parts, path.name


def _list_files(
    directory: PathLike, extensions: tuple[str, ...], kind: str, allow_empty: bool
) -> list[Path]:
    d = Path(directory)
    if not d.exists():
        raise MediaError(f"{d}: no such directory")
    if not d.is_dir():
        raise MediaError(f"{d}: not a directory")
    files = [
        p
        for p in d.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in extensions
    ]
    if not files and not allow_empty:
        raise MediaError(f"{d}: no {kind} files (looked for {', '.join(extensions)})")
    return sorted(files, key=_natural_key)


def list_images(directory: PathLike, *, allow_empty: bool = False) -> list[Path]:
    """Image files (jpg, jpeg, png, webp, bmp; any case) directly in ``directory``.

    Sorted by name with numbers compared numerically; hidden files (``.*``) are skipped.
    Raises MediaError if the directory is missing or (unless ``allow_empty``) holds no image.
    """
    return _list_files(directory, IMAGE_EXTENSIONS, "image", allow_empty)


def list_videos(directory: PathLike, *, allow_empty: bool = False) -> list[Path]:
    """Video files (avi, mp4, mov, mkv, webm; any case) directly in ``directory``.

    Same ordering and errors as :func:`list_images`.
    """
    return _list_files(directory, VIDEO_EXTENSIONS, "video", allow_empty)


def _check_file(path: PathLike) -> Path:
    p = Path(path)
    if not p.exists():
        raise MediaError(f"{p}: no such file")
    if p.is_dir():
        raise MediaError(f"{p}: is a directory, not a file")
    if p.stat().st_size == 0:
        raise MediaError(f"{p}: empty file (0 bytes)")
    return p


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


# ---- images ------------------------------------------------------------------------------


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


@contextlib.contextmanager
def _strict_truncation() -> Iterator[None]:
    """Refuse truncated files even where another library flipped Pillow's global switch
    (VBench's AMT utilities set ``ImageFile.LOAD_TRUNCATED_IMAGES = True`` on import)."""
    from PIL import ImageFile

    previous = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        yield
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = previous


def read_image(path: PathLike) -> np.ndarray:
    """Read an image file as RGB ``uint8`` of shape ``(H, W, 3)``.

    Any Pillow mode is accepted (RGBA/LA/P-with-transparency composited on white, L, 1,
    I;16, I, F, CMYK, YCbCr); the EXIF orientation is applied, so ``H, W`` are the displayed
    height and width. Raises MediaError naming the file when it is missing, empty, truncated
    or not an image.
    """
    p = _check_file(path)
    try:
        with Image.open(p) as im, _strict_truncation():
            im.load()
            im = ImageOps.exif_transpose(im)
            rgb = _pil_to_rgb(im)
    except UnidentifiedImageError:
        raise MediaError(f"{p}: not a recognised image file") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise MediaError(f"{p}: cannot decode image ({_one_line(e)})") from None
    return np.ascontiguousarray(rgb, dtype=np.uint8)


def read_images(paths: Sequence[PathLike]) -> list[np.ndarray]:
    """:func:`read_image` for each path, in order."""
    return [read_image(p) for p in paths]


def write_image(path: PathLike, image: np.ndarray) -> Path:
    """Write an RGB ``uint8`` ``(H, W, 3)`` array atomically; the format follows the suffix."""
    arr = _as_frames(image[None] if np.ndim(image) == 3 else image, "image")[0]
    path = Path(path)
    with atomic_path(path) as tmp:
        Image.fromarray(arr, "RGB").save(
            tmp, format=Image.registered_extensions().get(path.suffix.lower())
        )
    return path


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


# ---- videos ------------------------------------------------------------------------------


@dataclass(frozen=True)
class VideoInfo:
    """What :func:`probe_video` reports. ``width``/``height`` are after the display rotation."""

    num_frames: int
    fps: float
    width: int
    height: int
    codec: str = ""

    @property
    def duration(self) -> float:
        """Seconds (``num_frames / fps``); 0 when the frame rate is unknown."""
        return self.num_frames / self.fps if self.fps > 0 else 0.0


def _av():
    try:
        import av
    except ImportError as e:  # pragma: no cover - av is a hard dependency
        raise ImportError("dualreal_bench.media needs PyAV: pip install av") from e
    return av


def _stream_fps(stream) -> float:
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate:
            value = float(rate)
            if value > 0 and math.isfinite(value):
                return value
    return 0.0


class _Decoded:
    """Frames kept while decoding once; ``count`` is how many frames the decoder produced."""

    def __init__(self) -> None:
        self.kept: dict[int, object] = {}  # index -> av.VideoFrame (still YUV: half the memory)
        self.count = 0
        self.fps = 0.0
        self.width = 0
        self.height = 0
        self.codec = ""
        self.rotation = 0


def _frames(container, stream, path: Path, out: _Decoded) -> Iterator:
    """Decoded frames of ``stream``; damaged data raises MediaError instead of ending quietly.

    A truncated file can decode "successfully" to fewer frames (the demuxer flags the cut
    packet as corrupt, and a threaded decoder may swallow the error), so corrupt packets are
    refused explicitly.
    """
    av = _av()
    try:
        for packet in container.demux(stream):
            if packet.is_corrupt:
                raise MediaError(
                    f"{path}: corrupt or truncated video (damaged data after {out.count} frames)"
                )
            yield from packet.decode()
    except av.error.FFmpegError as e:
        raise MediaError(
            f"{path}: corrupt or truncated video, decoding failed after {out.count} frames ({_one_line(e)})"
        ) from None


def _decode(path: Path, select=None) -> _Decoded:
    """Decode ``path`` front to back in one pass.

    ``select(fps)``, called once the stream's frame rate is known, returns ``(keep, stop)``:
    frame ``i`` is kept if ``keep(i)``, and decoding ends early once ``stop(number_kept)``.
    The default keeps every frame.
    """
    av = _av()
    out = _Decoded()
    try:
        container = av.open(str(path))
    except av.error.FFmpegError as e:
        raise MediaError(f"{path}: not a readable video ({_one_line(e)})") from None
    with container:
        if not container.streams.video:
            raise MediaError(f"{path}: contains no video stream")
        stream = container.streams.video[0]
        if stream.codec_context is None:  # FFmpeg knows no decoder for the stream's codec
            raise MediaError(f"{path}: unreadable video codec (FFmpeg has no decoder for it)")
        stream.thread_type = "AUTO"
        out.fps = _stream_fps(stream)
        out.codec = stream.codec_context.name
        out.width, out.height = stream.codec_context.width, stream.codec_context.height
        keep, stop = select(out.fps) if select is not None else (lambda i: True, lambda n: False)
        for frame in _frames(container, stream, path, out):
            if out.count == 0:
                out.width, out.height = frame.width, frame.height
                out.rotation = int(frame.rotation or 0)
            if keep(out.count):
                out.kept[out.count] = frame
            out.count += 1
            if stop(len(out.kept)):
                break
    if out.count == 0:
        raise MediaError(f"{path}: video has no decodable frames")
    if out.rotation % 180:
        out.width, out.height = out.height, out.width
    return out


def _exact_scaling(chroma: Literal["point", "bilinear"]):
    """swscale flags whose output does not depend on the CPU's SIMD (see the module docstring).

    ``"point"`` (decoding) repeats each chroma sample over its 2x2 pixels, as swscale's and
    OpenCV's default YUV->RGB path does; ``"bilinear"`` (encoding) averages the 2x2 pixels'
    colour into one chroma sample.
    """
    from av.video.reformatter import Interpolation

    kind = Interpolation.POINT if chroma == "point" else Interpolation.BILINEAR
    return kind | Interpolation.BITEXACT | Interpolation.ACCURATE_RND


def _frame_to_rgb(frame, rotation: int) -> np.ndarray:
    rgb = frame.reformat(format="rgb24", interpolation=_exact_scaling("point")).to_ndarray()
    k = round(rotation / 90) % 4  # counterclockwise quarter turns, as np.rot90
    return np.ascontiguousarray(np.rot90(rgb, k)) if k else rgb


def probe_video(path: PathLike) -> VideoInfo:
    """Frame count, frame rate, size and codec of a video.

    The frame count comes from decoding the whole stream (container metadata can be wrong,
    notably for AVI), so this costs one decode without the RGB conversion. Raises MediaError
    for a missing, empty, corrupt or frameless file.
    """
    p = _check_file(path)
    d = _decode(p, lambda fps: (lambda i: False, lambda n: False))
    return VideoInfo(num_frames=d.count, fps=d.fps, width=d.width, height=d.height, codec=d.codec)


def read_video(
    path: PathLike,
    *,
    num_frames: int | None = None,
    sampling: Sampling = "first",
    target_fps: float | None = None,
    size: tuple[int, int] | None = None,
    resize_mode: ResizeMode = "crop",
    pad: PadPolicy = "error",
) -> np.ndarray:
    """Decode a video once and return ``uint8`` frames of shape ``(T, H, W, 3)``, RGB.

    Args:
        num_frames: frames to return (``None``: all that ``sampling`` gives).
        sampling: ``"first"``, ``"uniform"`` or ``"fps"``; rules in :func:`sample_indices`.
        target_fps: the frame rate for ``sampling="fps"`` (e.g. 8, as VBench's Dynamic Degree).
        size: ``(H, W)`` to resize to (``None``: the source size); see :func:`resize_frames`.
        resize_mode: ``"crop"`` (cover, then centre crop) or ``"stretch"``.
        pad: what a clip shorter than ``num_frames`` does: ``"error"`` (MediaError naming the
            file and both counts), ``"repeat_last"`` or ``"none"``; see :func:`sample_indices`.

    ``"first"`` and ``"fps"`` stop decoding as soon as they have their frames; ``"uniform"``
    decodes the whole clip (it needs the true frame count) but converts only the chosen frames.
    """
    p = _check_file(path)
    # validate the options before decoding anything
    sample_indices(1, 1.0, num_frames_out=None, sampling=sampling, target_fps=target_fps, pad=pad)
    if num_frames is not None and (not isinstance(num_frames, int | np.integer) or num_frames < 1):
        raise ConfigError(f"num_frames must be a positive integer, got {num_frames!r}")
    if size is not None:
        _check_size(size)
    if resize_mode not in RESIZE_MODES:
        raise ConfigError(
            f"resize_mode must be one of {', '.join(RESIZE_MODES)}; got {resize_mode!r}"
        )

    def wanted(n_kept: int) -> bool:
        return num_frames is not None and n_kept >= num_frames

    if sampling == "first":
        d = _decode(p, lambda fps: (lambda i: True, wanted))
    elif sampling == "fps":

        def select(fps: float):
            if not fps:
                raise MediaError(f"{p}: frame rate unknown, cannot resample to {target_fps:g} fps")
            k = fps_interval(fps, target_fps)
            return (lambda i: i % k == 0), wanted

        d = _decode(p, select)
    else:
        d = _decode(p)
    try:
        indices = sample_indices(
            d.count,
            d.fps,
            num_frames_out=num_frames,
            sampling=sampling,
            target_fps=target_fps,
            pad=pad,
        )
    except MediaError as e:
        raise MediaError(f"{p}: {e}") from None
    frames = np.stack([_frame_to_rgb(d.kept[i], d.rotation) for i in indices])
    if size is not None:
        frames = resize_frames(frames, size, mode=resize_mode)
    return frames


# ---- resizing ----------------------------------------------------------------------------


def _check_size(size) -> tuple[int, int]:
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
    h, w = _check_size(size)
    if mode not in RESIZE_MODES:
        raise ConfigError(f"resize mode must be one of {', '.join(RESIZE_MODES)}; got {mode!r}")
    arr = np.asarray(frames)
    single = arr.ndim == 3
    arr = _as_frames(arr[None] if single else arr, "frames")
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


# ---- writing -----------------------------------------------------------------------------


def _as_frames(frames, what: str) -> np.ndarray:
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


def _rgb_to_yuv420p(frame):
    """RGB frame -> BT.601 limited-range yuv420p in swscale's bit-exact mode (CPU-independent)."""
    from av.video.reformatter import ColorRange, Colorspace

    return frame.reformat(
        format="yuv420p",
        interpolation=_exact_scaling("bilinear"),
        dst_colorspace=Colorspace.ITU601,
        dst_color_range=ColorRange.MPEG,
    )


def write_video(
    path: PathLike,
    frames: np.ndarray | Sequence[np.ndarray],
    fps: float = 8,
    *,
    crf: int = DEFAULT_CRF,
    preset: str = DEFAULT_PRESET,
    threads: int = DEFAULT_X264_THREADS,
    pad_odd: bool = False,
    x264_params: dict[str, str] | None = None,
) -> Path:
    """Write ``uint8`` RGB frames ``(T, H, W, 3)`` as an H.264 (yuv420p) MP4, atomically.

    yuv420p needs even ``H`` and ``W``: odd sizes raise ValueError unless ``pad_odd``, which
    repeats the last row/column. The same frames and settings give the same bytes, whatever
    the process did before and on any x86-64 CPU with SSSE3: RGB->YUV runs in swscale's
    bit-exact mode, x264 with a fixed thread count and :data:`X264_PARAMS`, and the MP4
    carries no timestamp. ``x264_params`` are added to (and override) :data:`X264_PARAMS`.
    Returns ``path``.
    """
    av = _av()
    arr = _as_frames(frames, "frames")
    h, w = arr.shape[1:3]
    if h % 2 or w % 2:
        if not pad_odd:
            raise ValueError(
                f"{path}: frames are {h}x{w} (HxW); H.264 yuv420p needs even height and width "
                "(crop the frames or pass pad_odd=True)"
            )
        arr = np.pad(arr, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), mode="edge")
        h, w = arr.shape[1:3]
    if not (fps > 0 and math.isfinite(fps)):
        raise ValueError(f"fps must be a positive number, got {fps!r}")
    rate = Fraction(fps).limit_denominator(1001)
    path = Path(path)
    with atomic_path(path) as tmp:
        with av.open(str(tmp), "w", format="mp4") as container:
            stream = container.add_stream("libx264", rate=rate)
            stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
            cc = stream.codec_context
            cc.color_range = 1  # AVCOL_RANGE_MPEG (limited)
            cc.colorspace = cc.color_primaries = cc.color_trc = 6  # SMPTE 170M (BT.601)
            params = {**X264_PARAMS, **(x264_params or {})}
            stream.options = {
                "crf": str(crf),
                "preset": preset,
                "threads": str(threads),
                "x264-params": ":".join(f"{k}={v}" for k, v in params.items()),
            }
            for i, rgb in enumerate(arr):
                frame = _rgb_to_yuv420p(av.VideoFrame.from_ndarray(rgb, format="rgb24"))
                frame.pts = i
                container.mux(stream.encode(frame))
            container.mux(stream.encode(None))
    return path


def write_frame_strip(
    path: PathLike,
    frames: np.ndarray | Sequence[np.ndarray],
    n: int = 8,
    height: int | None = None,
) -> Path:
    """Save ``n`` evenly spaced frames side by side as one PNG, atomically.

    Frames are chosen as in :func:`sample_indices` with ``sampling="uniform"`` (all frames if
    there are fewer than ``n``); ``height`` rescales each frame keeping its aspect ratio.
    The PNG is ``height`` (or H) tall and ``n`` frame widths wide.
    """
    arr = _as_frames(frames, "frames")
    if n < 1:
        raise ValueError(f"n must be positive, got {n}")
    idx = sample_indices(len(arr), num_frames_out=min(n, len(arr)), sampling="uniform")
    chosen = arr[idx]
    if height is not None and height != chosen.shape[1]:
        if height < 1:
            raise ValueError(f"height must be positive, got {height}")
        width = max(1, round(chosen.shape[2] * height / chosen.shape[1]))
        chosen = resize_frames(chosen, (height, width), mode="stretch")
    strip = np.concatenate(list(chosen), axis=1)
    return write_image(Path(path), strip)
