"""A self-contained static HTML page of one or more runs: tables, plots, contact sheets, videos.

Everything the page shows is inside the file (inline CSS, PNGs as base64 ``data:`` URIs,
no scripts, no external requests), so it can be opened from disk, mailed or published as is.
Generated videos are embedded the same way when they are small (``embed_video_bytes``) and
linked by a path relative to the page otherwise; each has a poster (its middle frame, so the
page shows pictures before anything plays) and a size fitted to :data:`VIDEO_BOX_PX`.

One section per run: its tables, each with the footnotes only it has, then the footnotes the
tables share, once; the plots, captioned; then one block per case with a heading, the prompt,
its contact sheet and the videos behind it.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as _dt
import html
import io
import logging
import os
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from ..io import atomic_write_text
from ..media import probe_video, read_video
from .plots import plot_report
from .render import footer, render_html_table
from .sheets import SheetInfo, sheets_for_report
from .tables import Report, run_notes

logger = logging.getLogger(__name__)

#: (width, height) box a video is fitted into on the page, keeping its aspect ratio
VIDEO_BOX_PX = (320, 240)
#: the poster frame is stored at most this wide (twice the box: sharp on high-DPI screens)
POSTER_MAX_WIDTH = 2 * VIDEO_BOX_PX[0]

PLOT_CAPTIONS = {
    "metric_bars": "Every metric per method: the mean over cases of each case's mean (the "
    "tables' numbers, written on the bars), with the spread across cases where a method has "
    "two cases or more. Panels marked (zoomed) do not start at 0.",
    "fidelity_vs_motion": "Identity fidelity against motion quality: a small dot per case, "
    "a large marker per method's mean.",
    "motion_confusion": "Motion fidelity (beyond the paper): for each method, how many videos "
    "of each intended motion (rows) were nearest to each motion's reference clips (columns); "
    "the diagonal is top-1 motion accuracy, colours are the share of the row.",
    "controller_w_id": "StageBlender identity weight w_id of every weight group over the "
    "denoising steps (the paper's Figure 7): mean over the method's videos, min-max band.",
}

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 24px; color: #1d1d1f;
       background: #ffffff; max-width: 1500px; }
h1 { font-size: 22px; } h2 { font-size: 19px; margin-top: 36px; border-bottom: 1px solid #ccc; }
h3 { font-size: 16px; margin-top: 24px; } h4 { font-size: 14px; margin: 18px 0 4px; }
h5 { font-size: 13px; margin: 10px 0 6px; color: #333; }
table.metrics { border-collapse: collapse; margin: 12px 0 4px; font-size: 13px; }
table.metrics caption { text-align: left; font-weight: 600; padding-bottom: 6px; }
table.metrics th, table.metrics td { border-bottom: 1px solid #ddd; padding: 3px 8px; }
table.metrics th { background: #f2f2f5; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.paper td, tr.delta td { color: #666; font-size: 12px; }
ul.notes { font-size: 12px; color: #555; margin-top: 2px; }
div.notes { margin-top: 12px; } div.notes h4 { font-size: 13px; margin: 0; }
figure { margin: 12px 0; } figcaption { font-size: 12px; color: #444; max-width: 1200px; }
img.plot, img.sheet { max-width: 100%; height: auto; border: 1px solid #ddd; }
section.case { margin-bottom: 28px; }
p.prompt { font-size: 13px; margin: 2px 0 6px; }
div.videos { display: flex; flex-wrap: wrap; gap: 12px; align-items: flex-start; }
div.videos figure { margin: 0; }
div.videos figcaption { overflow-wrap: anywhere; }
video { display: block; max-width: 100%; height: auto; border: 1px solid #ddd;
        background: #000; }
p.meta { font-size: 12px; color: #555; }
"""


def data_uri(path: str | Path, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(Path(path).read_bytes()).decode('ascii')}"


def _img(path: Path, cls: str, alt: str) -> str:
    with Image.open(path) as im:
        w, h = im.size
    return (
        f"<img class='{cls}' alt='{html.escape(alt)}' width='{w}' height='{h}' "
        f"src='{data_uri(path, 'image/png')}'>"
    )


def fit_box(width: int, height: int, box: tuple[int, int] = VIDEO_BOX_PX) -> tuple[int, int]:
    """(width, height) of a ``width`` x ``height`` picture scaled to fit ``box``, aspect kept."""
    scale = min(box[0] / width, box[1] / height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def poster_uri(path: Path) -> str:
    """The video's middle frame as a JPEG ``data:`` URI (at most :data:`POSTER_MAX_WIDTH` wide)."""
    frames = read_video(path, num_frames=3, sampling="uniform", pad="none")
    im = Image.fromarray(np.ascontiguousarray(frames[len(frames) // 2]))
    if im.width > POSTER_MAX_WIDTH:
        im = im.resize((POSTER_MAX_WIDTH, round(im.height * POSTER_MAX_WIDTH / im.width)))
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=88)
    return f"data:image/jpeg;base64,{base64.b64encode(buf.getvalue()).decode('ascii')}"


def _video(path: Path, page_dir: Path, embed_bytes: int, label: str) -> str:
    size = path.stat().st_size
    if size <= embed_bytes:
        src = data_uri(path, "video/mp4")
        note = ""
    else:
        src = html.escape(Path(os.path.relpath(path, page_dir)).as_posix())
        note = f" (linked, {size / 1e6:.1f} MB)"
    info = probe_video(path)
    w, h = fit_box(info.width, info.height)
    return (
        f"<figure><video controls loop muted playsinline preload='metadata' "
        f"width='{w}' height='{h}' poster='{poster_uri(path)}' src='{src}'></video>"
        f"<figcaption style='max-width: {w}px'>{breakable(label)}{note}</figcaption></figure>"
    )


def breakable(label: str) -> str:
    """``label`` escaped, with line-break opportunities after ``[`` and ``,`` (a long method
    label wraps between its options, not inside a number)."""
    return re.sub(r"([\[,])", r"\1<wbr>", html.escape(label))


def _anchor(*parts: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", "-".join(parts)).strip("-")


def section_notes(tables: Sequence) -> tuple[list[list[str]], list[str]]:
    """(each table's own footnotes, the footnotes two tables or more share): every footnote
    of a section is printed once. The tiny-profile note is left out (the section says it first)."""
    said = set(run_notes({"profile": "tiny"}))
    footers = [[n for n in footer(t) if n not in said] for t in tables]
    counts: dict[str, int] = {}
    for notes in footers:
        for n in dict.fromkeys(notes):
            counts[n] = counts.get(n, 0) + 1
    shared = [n for n in dict.fromkeys(n for notes in footers for n in notes) if counts[n] > 1]
    return [[n for n in notes if counts[n] == 1] for notes in footers], shared


def _tables_html(rep: Report) -> list[str]:
    own, shared = section_notes(rep.tables)
    parts = [render_html_table(t, notes) for t, notes in zip(rep.tables, own, strict=True)]
    if shared:
        parts.append(
            "<div class='notes'><h4>Notes</h4><ul class='notes'>"
            + "".join(f"<li>{html.escape(n)}</li>" for n in shared)
            + "</ul></div>"
        )
    return parts


@dataclasses.dataclass(frozen=True)
class PageOptions:
    """What the page shows of each run (the ``report --html`` options)."""

    cases: Sequence[str] | None = None
    data_root: str | Path | None = None
    prompt_index: int | None = None
    seed: int | None = None
    max_sheets: int = 12
    embed_video_bytes: int = 2_000_000
    spread: str = "std"


def _case_html(sheet: SheetInfo, run: str, page_dir: Path, embed_video_bytes: int) -> list[str]:
    """One case's block: heading, prompt, contact sheet, and the videos behind it."""
    parts = [
        f"<section class='case' id='{_anchor(run, sheet.case_id)}'>"
        f"<h4>{html.escape(sheet.case_id)}</h4>"
        f"<p class='prompt'>prompt {sheet.prompt_index}, seed {sheet.seed}: "
        f"“{html.escape(sheet.prompt)}”</p>"
    ]
    caption = (
        "reference images, a motion clip, then frames of each method's video"
        if sheet.references_found
        else "reference images/clips not found: pass --data-root"
    )
    parts.append(
        f"<figure>{_img(sheet.path, 'sheet', sheet.case_id)}"
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
    )
    if sheet.videos:
        parts.append(
            f"<h5>Videos ({len(sheet.videos)} methods)</h5><div class='videos'>"
            + "".join(
                _video(p, page_dir, embed_video_bytes, label) for label, p in sheet.videos.items()
            )
            + "</div>"
        )
    parts.append("</section>")
    return parts


def _run_html(rep: Report, k: int, page_dir: Path, work_dir: Path, opts: PageOptions) -> list[str]:
    """One run's section: its tables, plots, then a block per case."""
    run = _anchor("run", rep.run_id)
    parts = [
        f"<section class='run' id='{run}'>"
        f"<h2>Run {html.escape(rep.run_id)} — suite {html.escape(str(rep.suite))}, "
        f"profile {html.escape(str(rep.profile))}</h2>"
    ]
    if rep.profile == "tiny":
        parts.append(
            "<p class='meta'><b>tiny profile</b>: random-initialised models; these numbers check "
            "the pipeline and measure nothing.</p>"
        )
    parts.append(f"<h3 id='{run}-tables'>Tables</h3>")
    parts += _tables_html(rep)
    parts.append(f"<h3 id='{run}-plots'>Plots</h3>")
    for path in plot_report(rep, work_dir / f"plots{k}", spread=opts.spread):
        caption = PLOT_CAPTIONS.get(path.stem, path.stem)
        parts.append(
            f"<figure>{_img(path, 'plot', path.stem)}<figcaption>{html.escape(caption)}"
            "</figcaption></figure>"
        )
    sheets = sheets_for_report(
        rep,
        work_dir / f"sheets{k}",
        cases=opts.cases,
        data_root=opts.data_root,
        prompt_index=opts.prompt_index,
        seed=opts.seed,
        limit=None if opts.cases else opts.max_sheets,
    )
    n_cases = len({r["case_id"] for r in rep.records})
    parts.append(f"<h3 id='{run}-cases'>Cases: contact sheets and videos</h3>")
    if not opts.cases and n_cases > len(sheets):
        parts.append(
            f"<p class='meta'>{len(sheets)} of {n_cases} cases shown (--max-sheets, --case)</p>"
        )
    for sheet in sheets:
        parts += _case_html(sheet, run, page_dir, opts.embed_video_bytes)
    parts.append("</section>")
    return parts


def render_page(
    reports: Sequence[Report], out: Path, *, work_dir: Path, options: PageOptions
) -> str:
    """The page's HTML; plots and sheets are drawn into ``work_dir`` and embedded."""
    created = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    parts = [
        "<!DOCTYPE html>",
        "<html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        "<title>dualreal-bench report</title>",
        f"<style>{CSS}</style></head><body>",
        "<h1>dualreal-bench report</h1>",
        f"<p class='meta'>runs: {html.escape(', '.join(r.run_id for r in reports))} · generated {created}</p>",
    ]
    for k, rep in enumerate(reports):
        parts += _run_html(rep, k, out.parent, work_dir, options)
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def write_html_report(
    out: str | Path,
    reports: Sequence[Report],
    *,
    cases: Sequence[str] | None = None,
    data_root: str | Path | None = None,
    prompt_index: int | None = None,
    seed: int | None = None,
    max_sheets: int = 12,
    embed_video_bytes: int = 2_000_000,
    spread: str = "std",
) -> Path:
    """Write the page to ``out`` (atomically) and return its path."""
    out = Path(out).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="dualreal-report-") as tmp:
        options = PageOptions(
            cases, data_root, prompt_index, seed, max_sheets, embed_video_bytes, spread
        )
        page = render_page(reports, out, work_dir=Path(tmp), options=options)
    atomic_write_text(out, page)
    return out
