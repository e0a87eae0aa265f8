"""Videos: decoding with PyAV (once per file, frame-exact on every CPU), probing, and writing
reproducible H.264 MP4s (policies in the package docstring)."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Literal

import numpy as np

from ..errors import ConfigError, MediaError
from ..io import atomic_path, failpoint
from .files import PathLike, check_file, one_line
from .frames import (
    RESIZE_MODES,
    PadPolicy,
    ResizeMode,
    Sampling,
    as_frames,
    check_size,
    fps_interval,
    resize_frames,
    sample_indices,
)
from .images import write_image

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
            f"{path}: corrupt or truncated video, decoding failed after {out.count} frames ({one_line(e)})"
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
        raise MediaError(f"{path}: not a readable video ({one_line(e)})") from None
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
    p = check_file(path)
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
    p = check_file(path)
    _check_read_options(num_frames, sampling, target_fps, size, resize_mode, pad)

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


def _check_read_options(
    num_frames: int | None,
    sampling: str,
    target_fps: float | None,
    size: tuple[int, int] | None,
    resize_mode: str,
    pad: str,
) -> None:
    """:func:`read_video`'s options, checked before anything is decoded (ConfigError)."""
    sample_indices(1, 1.0, num_frames_out=None, sampling=sampling, target_fps=target_fps, pad=pad)
    if num_frames is not None and (not isinstance(num_frames, int | np.integer) or num_frames < 1):
        raise ConfigError(f"num_frames must be a positive integer, got {num_frames!r}")
    if size is not None:
        check_size(size)
    if resize_mode not in RESIZE_MODES:
        raise ConfigError(
            f"resize_mode must be one of {', '.join(RESIZE_MODES)}; got {resize_mode!r}"
        )


# ---- writing -----------------------------------------------------------------------------


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
    arr = as_frames(frames, "frames")
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
            failpoint("video_write", tmp)  # crash tests: a full disk while the video is written
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
    arr = as_frames(frames, "frames")
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
