"""Contact sheets of a run, one PNG per case (:mod:`.contact_sheet` draws each).

:func:`sheets_for_report` finds the pixels for a run: the generated videos from the records,
the references under the data root (the run's, ``--data-root`` or ``$DUALREAL_BENCH_DATA``;
the smoke suite's sample data in the cache).
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError
from ..media import list_images, list_videos, read_images, read_video
from ..sample_data import default_sample_data_root
from .contact_sheet import contact_sheet
from .paper import row_order_key
from .tables import Report

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class SheetInfo:
    path: Path
    case_id: str
    prompt_index: int
    seed: int
    prompt: str
    videos: dict[str, Path]  # method label -> generated video for this prompt and seed
    references_found: bool
    title: str = ""  # the sheet's header line


def _candidate_roots(report: Report, data_root: str | Path | None) -> list[Path]:
    roots: list[Path] = []
    if data_root:
        roots.append(Path(data_root).expanduser())
    for rec in report.records[:1]:
        cfg_root = (rec.get("run_config") or {}).get("data_root")
        if cfg_root:
            roots.append(Path(cfg_root).expanduser())
    if os.environ.get("DUALREAL_BENCH_DATA"):
        roots.append(Path(os.environ["DUALREAL_BENCH_DATA"]).expanduser())
    # where the smoke suite's generated sample data lives (looked at, never generated here)
    roots.append(default_sample_data_root())
    out = []
    for root in roots:
        for cand in (root / "dualreal_benchmark", root):
            if cand.is_dir() and cand not in out:
                out.append(cand)
    return out


def find_references(
    identity: str, motion: str, roots: Sequence[Path]
) -> tuple[list[Path], list[Path]]:
    """(identity image paths, motion clip paths) from the first root holding each folder."""
    images: list[Path] = []
    clips: list[Path] = []
    for root in roots:
        if not images and (root / "identities" / identity / "images").is_dir():
            images = list(list_images(root / "identities" / identity / "images", allow_empty=True))
        if not clips and (root / "motions" / motion / "videos").is_dir():
            clips = list(list_videos(root / "motions" / motion / "videos", allow_empty=True))
    return images, clips


def choose_video(
    records: Sequence[Mapping[str, Any]],
    run_dir: Path,
    prompt_index: int | None = None,
    seed: int | None = None,
) -> tuple[int, int] | None:
    """The (prompt, seed) with a video from the most methods (then the smallest), or the one asked for."""
    counts: dict[tuple[int, int], set[str]] = {}
    for rec in records:
        key = (rec["prompt_index"], rec["seed"])
        if (prompt_index is not None and key[0] != prompt_index) or (
            seed is not None and key[1] != seed
        ):
            continue
        if rec.get("video") and (run_dir / rec["video"]).is_file():
            counts.setdefault(key, set()).add(rec["method"])
    if not counts:
        return None
    return min(counts, key=lambda k: (-len(counts[k]), k))


def sheets_for_report(
    report: Report,
    out_dir: str | Path,
    *,
    cases: Sequence[str] | None = None,
    data_root: str | Path | None = None,
    prompt_index: int | None = None,
    seed: int | None = None,
    limit: int | None = None,
    n_frames: int = 6,
) -> list[SheetInfo]:
    """A contact sheet per case of ``report`` (or the ``cases`` asked for) into ``out_dir``."""
    by_case: dict[str, list[Mapping[str, Any]]] = {}
    for rec in report.records:
        by_case.setdefault(rec["case_id"], []).append(rec)
    wanted = list(cases) if cases else sorted(by_case)
    unknown = [c for c in wanted if c not in by_case]
    if unknown:
        raise DataError(
            f"--case {unknown[0]!r}: no records in run {report.run_id!r} "
            f"(cases: {', '.join(sorted(by_case)[:5])}{' ...' if len(by_case) > 5 else ''})"
        )
    for option, value, field, what in (
        ("--prompt-index", prompt_index, "prompt_index", "prompt indices"),
        ("--seed", seed, "seed", "seeds"),
    ):
        have = sorted({r[field] for c in wanted for r in by_case[c]})
        if value is not None and value not in have:  # asked for explicitly: never a silent miss
            shown = ", ".join(map(str, have[:10])) + (" ..." if len(have) > 10 else "")
            raise DataError(
                f"{option} {value}: no record of run {report.run_id!r} has it (its {what}: {shown})"
            )
    if limit is not None:
        wanted = wanted[:limit]
    labels = sorted({r["method"] for r in report.records}, key=row_order_key(report.records))
    roots = _candidate_roots(report, data_root)
    out = []
    for case_id in wanted:
        chosen = choose_video(by_case[case_id], report.run_dir, prompt_index, seed)
        if chosen is None:
            logger.warning(
                "case %s: no generated video%s; no sheet",
                case_id,
                "" if prompt_index is None and seed is None else " for that prompt/seed",
            )
            continue
        out.append(
            _case_sheet(report, by_case[case_id], chosen, labels, roots, Path(out_dir), n_frames)
        )
    return out


def _method_frames(
    report: Report, at: Mapping[str, Mapping[str, Any]], labels: Sequence[str], n_frames: int
) -> tuple[dict[str, Path], dict[str, np.ndarray | None]]:
    """(label -> video path, label -> its frames or None) of the records ``at`` one prompt and
    seed, for every label in order."""
    videos: dict[str, Path] = {}
    frames: dict[str, np.ndarray | None] = {}
    for label in labels:
        rec = at.get(label)
        path = report.run_dir / rec["video"] if rec and rec.get("video") else None
        if path is not None and path.is_file():
            videos[label] = path
            frames[label] = read_video(path, num_frames=n_frames, sampling="uniform", pad="none")
        else:
            frames[label] = None
    return videos, frames


def _case_sheet(
    report: Report,
    recs: Sequence[Mapping[str, Any]],
    chosen: tuple[int, int],
    labels: Sequence[str],
    roots: Sequence[Path],
    out_dir: Path,
    n_frames: int,
) -> SheetInfo:
    """The sheet of one case at the ``chosen`` (prompt, seed)."""
    p, s = chosen
    case_id = recs[0]["case_id"]
    at = {r["method"]: r for r in recs if (r["prompt_index"], r["seed"]) == (p, s)}
    videos, frames = _method_frames(report, at, labels, n_frames)
    images, clips = find_references(recs[0]["identity"], recs[0]["motion"], roots)
    refs = read_images(images[:n_frames]) if images else None
    motion = (
        read_video(clips[0], num_frames=n_frames, sampling="uniform", pad="none") if clips else None
    )
    if refs is None or motion is None:
        logger.warning(
            "case %s: reference %s not found under %s (pass --data-root)",
            case_id,
            "images" if refs is None else "clips",
            ", ".join(map(str, roots)) or "no data root",
        )
    prompt = next(iter(at.values()))["prompt"]
    title = (
        f"{case_id} · prompt {p}, seed {s} · run {report.run_id} "
        f"(suite {report.suite}, profile {report.profile})"
    )
    path = contact_sheet(
        out_dir / f"{case_id}.png",
        title=title,
        subtitle=f"“{prompt}”",
        reference_images=refs,
        motion_frames=motion,
        method_frames=frames,
        n_frames=n_frames,
        motion_label=f"motion clip ({clips[0].name})" if clips else "motion clip",
    )
    found = refs is not None and motion is not None
    return SheetInfo(path, case_id, p, s, prompt, videos, found, title)
