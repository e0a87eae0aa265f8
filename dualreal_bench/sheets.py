"""Qualitative contact sheets (the paper's Figure 5 layout), one PNG per case.

A sheet shows, top to bottom: a title (case and prompt), the identity's reference images,
frames of one of the motion's reference clips, then one strip of frames per method for the
same prompt and seed, each row labelled on the left. Frames are spread evenly over each video
(first and last included) and letterboxed into equal cells, so the sheet's size depends only
on the number of rows and the cell size (:func:`sheet_size`).

:func:`contact_sheet` takes the pixels explicitly; :func:`sheets_for_report` finds them for a
run: the generated videos from the records, the references under the data root (the run's,
``--data-root`` or ``$DUALREAL_BENCH_DATA``; the smoke suite's sample data in the cache).
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont, ImageOps

from .errors import DataError
from .report import Report, _row_order_key
from .store import atomic_path

logger = logging.getLogger(__name__)

TITLE_PX = 44
GAP_PX = 4
BACKGROUND = (255, 255, 255)
MISSING = (225, 225, 225)


def sheet_size(
    n_rows: int, n_frames: int = 6, cell_px: tuple[int, int] = (120, 180), label_px: int = 190
) -> tuple[int, int]:
    """(width, height) in pixels of a sheet with ``n_rows`` image rows."""
    h, w = cell_px
    return (label_px + n_frames * (w + GAP_PX) + GAP_PX, TITLE_PX + n_rows * (h + GAP_PX) + GAP_PX)


def sample_frames(frames: np.ndarray, n: int) -> np.ndarray:
    """``n`` frames spread evenly over ``frames`` (T, H, W, 3), first and last included."""
    t = len(frames)
    if t <= n:
        return frames
    idx = np.floor(np.linspace(0, t - 1, n) + 0.5).astype(int)
    return frames[idx]


def _font():
    return ImageFont.load_default()


def _fit_text(draw: ImageDraw.ImageDraw, text: str, width: int, max_lines: int) -> list[str]:
    """Wrap into at most ``max_lines`` lines of ``width`` pixels: at spaces, and inside a word
    too long for one line (method labels such as ``dualreal[num_groups=2,steps_scale=0.1]``);
    an ellipsis marks a cut."""
    font = _font()

    def fits(t: str) -> bool:
        return draw.textlength(t, font=font) <= width

    lines: list[str] = []
    line = ""
    for word in text.split():
        trial = f"{line} {word}".strip()
        if fits(trial):
            line = trial
            continue
        if line:
            lines.append(line)
        line = ""
        if fits(word):
            line = word
            continue
        for ch in word:  # the word alone does not fit either: break it by characters
            if fits(line + ch) or not line:
                line += ch
            else:
                lines.append(line)
                line = ch
    if line:
        lines.append(line)
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        last = lines[-1]
        while last and not fits(last + "…"):
            last = last[:-1]
        lines[-1] = last + "…"
    return lines


def contact_sheet(
    path: str | Path,
    *,
    title: str,
    reference_images: Sequence[np.ndarray] | None,
    motion_frames: np.ndarray | None,
    method_frames: Mapping[str, np.ndarray | None],
    subtitle: str = "",
    n_frames: int = 6,
    cell_px: tuple[int, int] = (120, 180),
    label_px: int = 190,
    motion_label: str = "motion clip",
    identity_label: str = "identity references",
) -> Path:
    """Write a contact sheet PNG and return its path.

    Args:
        reference_images: the identity's photos, uint8 (H, W, 3) each (``None``: a grey row
            saying they were not found); the first ``n_frames`` are shown.
        motion_frames: a motion reference clip, uint8 (T, H, W, 3), or ``None``.
        method_frames: method label -> its video for the sheet's prompt and seed (or ``None``
            when that method has no such video), in display order.
        cell_px: (height, width) of every cell; images are letterboxed into it.
    """
    rows: list[tuple[str, list[np.ndarray] | None]] = [
        (identity_label, None if reference_images is None else list(reference_images)[:n_frames]),
        (
            motion_label,
            None if motion_frames is None else list(sample_frames(motion_frames, n_frames)),
        ),
    ]
    rows += [
        (label, None if v is None else list(sample_frames(v, n_frames)))
        for label, v in method_frames.items()
    ]
    width, height = sheet_size(len(rows), n_frames, cell_px, label_px)
    ch, cw = cell_px
    sheet = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    font = _font()
    draw.text(
        (GAP_PX, 4), _fit_text(draw, title, width - 2 * GAP_PX, 1)[0], fill=(0, 0, 0), font=font
    )
    for i, line in enumerate(_fit_text(draw, subtitle, width - 2 * GAP_PX, 2) if subtitle else []):
        draw.text((GAP_PX, 18 + 12 * i), line, fill=(60, 60, 60), font=font)
    for r, (label, images) in enumerate(rows):
        y = TITLE_PX + GAP_PX + r * (ch + GAP_PX)
        for i, line in enumerate(
            _fit_text(draw, label, label_px - 2 * GAP_PX, max(1, ch // 12 - 1))
        ):
            draw.text((GAP_PX, y + 4 + 12 * i), line, fill=(0, 0, 0), font=font)
        if images is None:
            draw.rectangle([label_px, y, width - GAP_PX - 1, y + ch - 1], fill=MISSING)
            draw.text(
                (label_px + 8, y + ch // 2 - 6), "not available", fill=(90, 90, 90), font=font
            )
            continue
        for j, img in enumerate(images[:n_frames]):
            tile = ImageOps.pad(
                Image.fromarray(np.asarray(img, dtype=np.uint8)).convert("RGB"),
                (cw, ch),
                color=BACKGROUND,
            )
            sheet.paste(tile, (label_px + j * (cw + GAP_PX), y))
    path = Path(path)
    with atomic_path(path) as tmp:
        sheet.save(tmp, format="PNG")
    return path


# ---- from a run --------------------------------------------------------------------------------


@dataclasses.dataclass
class SheetInfo:
    path: Path
    case_id: str
    prompt_index: int
    seed: int
    prompt: str
    videos: dict[str, Path]  # method label -> generated video for this prompt and seed
    references_found: bool


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
    try:  # where the smoke suite's generated sample data lives (looked at, never generated here)
        from .sample_data import default_sample_data_root

        roots.append(default_sample_data_root())
    except (ImportError, AttributeError):  # pragma: no cover - part of the package
        pass
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
    from .media import list_images, list_videos

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
    from .media import read_images, read_video

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
    if limit is not None:
        wanted = wanted[:limit]
    labels = sorted({r["method"] for r in report.records}, key=_row_order_key(report.records))
    roots = _candidate_roots(report, data_root)
    out_dir = Path(out_dir)
    out = []
    for case_id in wanted:
        recs = by_case[case_id]
        chosen = choose_video(recs, report.run_dir, prompt_index, seed)
        if chosen is None:
            logger.warning(
                "case %s: no generated video%s; no sheet",
                case_id,
                "" if prompt_index is None and seed is None else " for that prompt/seed",
            )
            continue
        p, s = chosen
        at = {r["method"]: r for r in recs if (r["prompt_index"], r["seed"]) == (p, s)}
        videos: dict[str, Path] = {}
        frames: dict[str, np.ndarray | None] = {}
        for label in labels:
            rec = at.get(label)
            path = report.run_dir / rec["video"] if rec and rec.get("video") else None
            if path is not None and path.is_file():
                videos[label] = path
                frames[label] = read_video(
                    path, num_frames=n_frames, sampling="uniform", pad="none"
                )
            else:
                frames[label] = None
        first = recs[0]
        images, clips = find_references(first["identity"], first["motion"], roots)
        refs = read_images(images[:n_frames]) if images else None
        motion = (
            read_video(clips[0], num_frames=n_frames, sampling="uniform", pad="none")
            if clips
            else None
        )
        if refs is None or motion is None:
            logger.warning(
                "case %s: reference %s not found under %s (pass --data-root)",
                case_id,
                "images" if refs is None else "clips",
                ", ".join(map(str, roots)) or "no data root",
            )
        prompt = next(iter(at.values()))["prompt"]
        path = contact_sheet(
            out_dir / f"{case_id}.png",
            title=f"{case_id} | prompt {p}, seed {s} | run "
            f"{report.run_id} ({report.suite}, {report.profile})",
            subtitle=prompt,
            reference_images=refs,
            motion_frames=motion,
            method_frames=frames,
            n_frames=n_frames,
            motion_label=f"motion clip ({clips[0].name})" if clips else "motion clip",
        )
        out.append(
            SheetInfo(path, case_id, p, s, prompt, videos, refs is not None and motion is not None)
        )
    return out
