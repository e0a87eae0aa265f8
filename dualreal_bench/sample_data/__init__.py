"""A tiny data root the project draws itself, for the ``smoke`` suite and for tests.

:func:`ensure_sample_data` makes (once, without any download) a data root with the standard
layout::

    <root>/identities/smoke_toy/images/00.png .. 03.png      4 photos of one toy, 256x256
    <root>/motions/smoke_pendulum/videos/clip_00.mp4 .. 02   3 clips of a person on a swing
    <root>/motions/smoke_pendulum/prompts.txt                "a person is swinging back and forth"
    <root>/motions/smoke_wave/videos/clip_00.mp4 .. 01       2 clips of a person waving an arm
    <root>/motions/smoke_wave/prompts.txt                    "a person is waving"
    <root>/SAMPLE_DATA_COMPLETE.json                          version + content hash

The toy is a round, red/yellow checkered creature with a blue belly band, green ears, and a
face (eyes, smile), seen at four poses (rotation, scale, position) on four backgrounds. The
clips show a person on a swing, ``theta(t) = A sin(2 pi t / P + phi)``, with a whole number
of frames per period ``P`` (12, 16 and 20 frames at 12 fps) and different amplitudes, phases
and backgrounds; the background is static, so frame ``t + P`` equals frame ``t`` up to
video compression. A second motion (a person standing on the grass, waving one arm with the
same kind of periodic angle) is not part of the smoke case: it is the root's "other motion",
what methods that train on unrelated videos (MotionBooth's video preservation) draw from. Everything is a pure function of fixed seeds, so two generations give
identical pixels (and identical bytes with the same FFmpeg/x264 build).

The identity has no ``eval_pro_50.txt``: the benchmark generates the smoke case's prompts.

Modules: :mod:`.drawing` (what the photos and clips show, rendered with numpy) and :mod:`.root`
(:func:`ensure_sample_data`: the root on disk, its marker and its atomic installation).
"""

from .drawing import (
    IMAGE_SIZE,
    SWING_CLIPS,
    TOY_POSES,
    VIDEO_FPS,
    VIDEO_FRAMES,
    VIDEO_SIZE,
    WAVE_CLIPS,
    render_swing_clip,
    render_toy_images,
    render_wave_clip,
)
from .root import (
    MARKER_NAME,
    OTHER_MOTION,
    OTHER_MOTION_PROMPT,
    SAMPLE_DATA_VERSION,
    SMOKE_IDENTITY,
    SMOKE_MOTION,
    SMOKE_MOTION_PROMPT,
    default_sample_data_root,
    ensure_sample_data,
)

__all__ = [
    "IMAGE_SIZE",
    "MARKER_NAME",
    "OTHER_MOTION",
    "OTHER_MOTION_PROMPT",
    "SAMPLE_DATA_VERSION",
    "SMOKE_IDENTITY",
    "SMOKE_MOTION",
    "SMOKE_MOTION_PROMPT",
    "SWING_CLIPS",
    "TOY_POSES",
    "VIDEO_FPS",
    "VIDEO_FRAMES",
    "VIDEO_SIZE",
    "WAVE_CLIPS",
    "default_sample_data_root",
    "ensure_sample_data",
    "render_swing_clip",
    "render_toy_images",
    "render_wave_clip",
]
