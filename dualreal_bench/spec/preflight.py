"""The preflight check: every reference image and clip of a run's cases decoded before any
work, so one bad file fails the run in seconds with an error naming it, not hours in."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from pathlib import Path

from ..errors import DataError, MediaError
from ..media import probe_video, read_image, sample_indices
from .cases import Case


@functools.lru_cache(maxsize=4096)
def _check_image(path: str, size: int, mtime_ns: int) -> None:
    read_image(path)


@functools.lru_cache(maxsize=4096)
def _check_clip(path: str, size: int, mtime_ns: int, clip_fps: float | None) -> None:
    info = probe_video(path)
    if info.num_frames < 2:
        raise MediaError(
            f"{path}: video has {info.num_frames} frame; a motion clip needs at least 2"
        )
    if clip_fps is None:
        return
    if not info.fps:
        raise MediaError(f"{path}: frame rate unknown, cannot sample it at {clip_fps:g} fps")
    # the frames read_video(sampling="fps") keeps: the same rule, from the same function
    kept = len(
        sample_indices(
            info.num_frames, info.fps, num_frames_out=None, sampling="fps", target_fps=clip_fps
        )
    )
    if kept < 2:
        raise MediaError(
            f"{path}: {info.num_frames} frames at {info.fps:g} fps give {kept} when sampled at "
            f"about {clip_fps:g} fps; the dynamic degree of a reference clip needs at least 2 "
            "(use a longer clip)"
        )


def _stat_key(path: Path) -> tuple[str, int, int]:
    st = path.stat()
    return str(path), st.st_size, st.st_mtime_ns


def preflight(cases: Iterable[Case], *, clip_fps: float | None = None) -> None:
    """Decode every reference image and probe (decode) every reference clip of ``cases``
    before any work, so one bad file fails the run in seconds, not hours in (MediaError naming
    the file). ``clip_fps``: the clips are also sampled at about this frame rate, as the
    metrics sample them for the dynamic degree (``MetricConstants.dd_target_fps``), and must
    keep 2 frames. The clips of every motion beside a case's
    (:meth:`Case.motion_references`: motion fidelity ranks the intended motion among all of
    them) are probed too. Results are cached per file (path, size, mtime) in this process. Cases
    without data folders (test doubles) are skipped."""
    for case in cases:
        if not (hasattr(case, "image_paths") and hasattr(case, "video_paths")):
            continue
        if not case.prompts:
            raise DataError(f"case {case.case_id}: no prompts")
        for path in case.image_paths():
            _check_image(*_stat_key(path))
        for path in case.video_paths():
            _check_clip(*_stat_key(path), clip_fps)
        if hasattr(case, "motion_references"):
            for clips in case.motion_references().values():
                for path in clips:
                    _check_clip(*_stat_key(path), clip_fps)
