"""Where the benchmark's images and clips are: the data root and its layout.

Data root layout (the images, clips and the authors' prompt files are not shipped)::

    <root>/identities/<name>/images/*          reference photos of the subject
    <root>/identities/<name>/eval_pro_50.txt   the authors' 50 prompts (optional)
    <root>/motions/<name>/videos/*             reference clips of the motion

A root that holds a ``dualreal_benchmark/`` folder is used through it. The root comes from the
``data_root`` argument (``--data-root``), else ``$DUALREAL_BENCH_DATA``. Suites on sample data
(``smoke``) use the data :mod:`dualreal_bench.sample_data` generates instead.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from .. import media, sample_data
from ..errors import DataError

DATA_ROOT_ENV = "DUALREAL_BENCH_DATA"
BENCHMARK_SUBDIR = "dualreal_benchmark"  # a root holding this folder is used through it
AUTHORS_PROMPT_FILE = "eval_pro_50.txt"
MOTION_PROMPTS_FILE = "prompts.txt"  # "a person is playing guitar", one a line (custom motions)
CLASS_NOUN_FILE = "class.txt"  # optional class noun of a custom identity


def _through_subdir(root: Path) -> Path:
    sub = root / BENCHMARK_SUBDIR
    return sub if sub.is_dir() else root


def resolve_data_root(data_root: str | Path | None = None) -> Path:
    """The data root: ``data_root`` if given, else ``$DUALREAL_BENCH_DATA``; used through its
    ``dualreal_benchmark/`` folder when it has one. DataError if unset or not a directory."""
    return resolve_roots(data_root)[0]


def resolve_roots(data_root: str | Path | None) -> tuple[Path, Path]:
    """(root used for the benchmark, root as given); DataError as :func:`resolve_data_root`."""
    origin = "data root"
    if data_root is None or str(data_root) == "":
        data_root = os.environ.get(DATA_ROOT_ENV) or None
        origin = f"data root (from ${DATA_ROOT_ENV})"
    if data_root is None:
        raise DataError(f"no data root: pass --data-root or set {DATA_ROOT_ENV}")
    raw = Path(data_root).expanduser()
    if not raw.exists():
        raise DataError(f"{origin} {raw} does not exist")
    if not raw.is_dir():
        raise DataError(f"{origin} {raw} is not a directory")
    return _through_subdir(raw), raw


def sample_data_root(data_root: str | Path | None) -> Path:
    """The root of the generated sample data: ``data_root``, else its cache folder (generated
    there on first use)."""
    target = Path(data_root).expanduser() if data_root else None  # None: its cache default
    return _through_subdir(Path(sample_data.ensure_sample_data(target)))


def locate(kind: str, name: str, roots: Sequence[Path]) -> Path:
    """``<root>/<kind>/<name>`` in the first root that has its images/videos folder."""
    sub = "images" if kind == "identities" else "videos"
    for root in roots:
        if (root / kind / name / sub).is_dir():
            return root / kind / name
    what = "identity" if kind == "identities" else "motion"
    raise DataError(
        f"{what} {name!r} not found: expected the folder {roots[0] / kind / name / sub}"
    )


def list_media(folder: Path, kind: str, *, allow_empty: bool = False) -> list[Path]:
    """Sorted media files of ``folder`` (MediaError, a DataError, if missing or empty)."""
    lister = media.list_images if kind == "images" else media.list_videos
    return list(lister(folder, allow_empty=allow_empty))


def motion_clips(motions_dir: Path) -> dict[str, list[Path]]:
    """Every motion of a data root's ``motions/`` folder: ``{name: its sorted clips}``, names
    sorted case-insensitively (``Archery`` .. ``playingGuitar``). A folder without a
    ``videos/`` folder, or whose ``videos/`` holds no clip, is not a motion and is left out."""
    motions_dir = Path(motions_dir)
    if not motions_dir.is_dir():
        raise DataError(f"{motions_dir}: no such motions folder")
    out: dict[str, list[Path]] = {}
    for folder in sorted(motions_dir.iterdir(), key=lambda p: (p.name.lower(), p.name)):
        if (folder / "videos").is_dir():
            clips = list_media(folder / "videos", "videos", allow_empty=True)
            if clips:
                out[folder.name] = clips
    return out


def search_roots(data_root: str | Path | None) -> tuple[Path, ...]:
    """Where identity and motion folders are looked up: the resolved root, then the root as
    given when it differs (``/work/shared/data`` finds ``black_poodle`` in its own
    ``identities/`` and ``Archery`` in ``dualreal_benchmark/``)."""
    root, raw = resolve_roots(data_root)
    return (root,) if raw == root else (root, raw)
