"""The sample data root on disk: written once (atomically, a temporary sibling renamed into
place), marked with its version and content hash, and checked before it is used."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import uuid
from pathlib import Path

from ..cache import user_cache_dir
from ..errors import DataError
from ..media import write_image, write_video
from .drawing import (
    SWING_CLIPS,
    VIDEO_FPS,
    WAVE_CLIPS,
    render_swing_clip,
    render_toy_images,
    render_wave_clip,
)

logger = logging.getLogger(__package__)  # dualreal_bench.sample_data, as before the split

#: Bump whenever the generated content changes: a root with another version is regenerated.
SAMPLE_DATA_VERSION = 2
SMOKE_IDENTITY = "smoke_toy"
SMOKE_MOTION = "smoke_pendulum"
SMOKE_MOTION_PROMPT = "a person is swinging back and forth"
#: a motion of the root that no smoke case uses (the unrelated clips some methods train on)
OTHER_MOTION = "smoke_wave"
OTHER_MOTION_PROMPT = "a person is waving"
MARKER_NAME = "SAMPLE_DATA_COMPLETE.json"


def default_sample_data_root() -> Path:
    """``sample_data`` in the user cache (:func:`~dualreal_bench.cache.user_cache_dir`):
    ``$DUALREAL_BENCH_CACHE/sample_data``, else ``$XDG_CACHE_HOME`` (or ``~/.cache``)
    ``/dualreal-bench/sample_data``."""
    return user_cache_dir() / "sample_data"


def _content_hash(root: Path, files: list[str]) -> str:
    h = hashlib.sha256()
    for rel in files:
        h.update(rel.encode() + b"\0")
        h.update((root / rel).read_bytes())
        h.update(b"\0")
    return h.hexdigest()


def _is_complete(root: Path) -> bool:
    """True if ``root`` holds this version's sample data, every file matching the marker's hash."""
    marker = root / MARKER_NAME
    try:
        info = json.loads(marker.read_text())
        return info.get("version") == SAMPLE_DATA_VERSION and info.get("sha256") == _content_hash(
            root, list(info["files"])
        )
    except (OSError, ValueError, KeyError, TypeError):
        return False


def _generate(root: Path) -> None:
    """Write the whole sample data root into the (new, empty) directory ``root``."""
    files: list[str] = []
    image_dir = Path("identities") / SMOKE_IDENTITY / "images"
    for i, image in enumerate(render_toy_images()):
        rel = image_dir / f"{i:02d}.png"
        write_image(root / rel, image)
        files.append(rel.as_posix())
    motions = (
        (SMOKE_MOTION, SMOKE_MOTION_PROMPT, SWING_CLIPS, render_swing_clip),
        (OTHER_MOTION, OTHER_MOTION_PROMPT, WAVE_CLIPS, render_wave_clip),
    )
    for name, prompt, clips, render in motions:
        motion_dir = Path("motions") / name
        for i, clip in enumerate(clips):
            rel = motion_dir / "videos" / f"clip_{i:02d}.mp4"
            write_video(root / rel, render(clip), fps=VIDEO_FPS)
            files.append(rel.as_posix())
        rel = motion_dir / "prompts.txt"
        (root / rel).write_text("".join(f"{prompt}\n" for _ in clips))
        files.append(rel.as_posix())
    marker = {
        "version": SAMPLE_DATA_VERSION,
        "identity": SMOKE_IDENTITY,
        "motion": SMOKE_MOTION,
        "files": files,
        "sha256": _content_hash(root, files),
    }
    (root / MARKER_NAME).write_text(json.dumps(marker, indent=2) + "\n")


def _is_ours(root: Path) -> bool:
    """May ``root`` be replaced? Only if it is empty or holds (some version of) sample data."""
    if not root.is_dir():
        return False
    names = {p.name for p in root.iterdir()}
    return not names or MARKER_NAME in names


def ensure_sample_data(root: str | os.PathLike | None = None) -> Path:
    """Return a data root holding the smoke suite's sample data, generating it if needed.

    ``root`` defaults to :func:`default_sample_data_root`. If ``root`` already holds this
    version's complete data (marker present, content hash matching) nothing is written.
    Otherwise the data is generated in a temporary sibling directory and renamed into place,
    so concurrent callers (threads or processes) never see a half-written root; an outdated
    or damaged sample-data root is replaced. A non-empty directory that is not sample data
    raises DataError rather than being touched.
    """
    root = Path(root).expanduser() if root is not None else default_sample_data_root()
    if _is_complete(root):
        return root
    if root.exists() and not _is_ours(root):
        raise DataError(
            f"{root}: exists and is not a sample-data directory (no {MARKER_NAME}); choose another root"
        )
    root.parent.mkdir(parents=True, exist_ok=True)
    token = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp = root.parent / f".{root.name}.tmp-{token}"
    tmp.mkdir()
    try:
        logger.info("generating sample data in %s", root)
        _generate(tmp)
        for _ in range(5):
            try:
                os.rename(tmp, root)  # atomic; fails if another caller's root is already there
                return root
            except OSError:
                if _is_complete(root):
                    return root
                if root.exists() and not _is_ours(root):
                    raise DataError(f"{root}: exists and is not a sample-data directory") from None
                old = root.parent / f".{root.name}.old-{token}"
                try:
                    os.rename(root, old)  # move the stale root aside, then retry
                except FileNotFoundError:
                    continue
                shutil.rmtree(old, ignore_errors=True)
        raise DataError(f"{root}: could not install the sample data (concurrent writers?)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
