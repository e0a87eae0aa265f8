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

from .files import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, PathLike, list_images, list_videos
from .frames import (
    PAD_POLICIES,
    RESIZE_MODES,
    SAMPLINGS,
    PadPolicy,
    ResizeMode,
    Sampling,
    check_video_array,
    fps_interval,
    resize_frames,
    sample_indices,
)
from .images import read_image, read_images, write_image
from .video import (
    DEFAULT_CRF,
    DEFAULT_PRESET,
    DEFAULT_X264_THREADS,
    X264_PARAMS,
    VideoInfo,
    probe_video,
    read_video,
    write_frame_strip,
    write_video,
)

__all__ = [
    "DEFAULT_CRF",
    "DEFAULT_PRESET",
    "DEFAULT_X264_THREADS",
    "IMAGE_EXTENSIONS",
    "PAD_POLICIES",
    "RESIZE_MODES",
    "SAMPLINGS",
    "VIDEO_EXTENSIONS",
    "X264_PARAMS",
    "PadPolicy",
    "PathLike",
    "ResizeMode",
    "Sampling",
    "VideoInfo",
    "check_video_array",
    "fps_interval",
    "list_images",
    "list_videos",
    "probe_video",
    "read_image",
    "read_images",
    "read_video",
    "resize_frames",
    "sample_indices",
    "write_frame_strip",
    "write_image",
    "write_video",
]
