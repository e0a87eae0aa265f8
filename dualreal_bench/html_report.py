"""A self-contained static HTML page of one or more runs: tables, plots, contact sheets, videos.

Everything the page shows is inside the file (inline CSS, PNGs as base64 ``data:`` URIs,
no scripts, no external requests), so it can be opened from disk, mailed or published as is.
Generated videos are embedded the same way when they are small (``embed_video_bytes``) and
linked by a path relative to the page otherwise.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import logging
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from .report import Report, render_html_table
from .store import atomic_write_text

logger = logging.getLogger(__name__)

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 24px; color: #1d1d1f;
       background: #ffffff; }
h1 { font-size: 22px; } h2 { font-size: 18px; margin-top: 32px; border-bottom: 1px solid #ccc; }
h3 { font-size: 15px; }
table.metrics { border-collapse: collapse; margin: 12px 0 4px; font-size: 13px; }
table.metrics caption { text-align: left; font-weight: 600; padding-bottom: 6px; }
table.metrics th, table.metrics td { border-bottom: 1px solid #ddd; padding: 3px 8px; }
table.metrics th { background: #f2f2f5; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.paper td, tr.delta td { color: #666; font-size: 12px; }
ul.notes { font-size: 12px; color: #555; margin-top: 2px; }
figure { margin: 12px 0; } figcaption { font-size: 12px; color: #444; }
img.plot, img.sheet { max-width: 100%; border: 1px solid #ddd; }
div.videos { display: flex; flex-wrap: wrap; gap: 10px; }
div.videos figure { margin: 0; } video { max-width: 300px; border: 1px solid #ddd; }
p.meta { font-size: 12px; color: #555; }
"""


def data_uri(path: str | Path, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(Path(path).read_bytes()).decode('ascii')}"


def _img(path: Path, cls: str, alt: str) -> str:
    return f"<img class='{cls}' alt='{html.escape(alt)}' src='{data_uri(path, 'image/png')}'>"


def _video(path: Path, page_dir: Path, embed_bytes: int, label: str) -> str:
    size = path.stat().st_size
    if size <= embed_bytes:
        src = data_uri(path, "video/mp4")
        note = ""
    else:
        src = html.escape(Path(os.path.relpath(path, page_dir)).as_posix())
        note = f" (linked, {size / 1e6:.1f} MB)"
    return (
        f"<figure><video controls loop muted playsinline preload='metadata' src='{src}'></video>"
        f"<figcaption>{html.escape(label)}{note}</figcaption></figure>"
    )


def render_page(
    reports: Sequence[Report],
    out: Path,
    *,
    work_dir: Path,
    cases: Sequence[str] | None,
    data_root: str | Path | None,
    prompt_index: int | None,
    seed: int | None,
    max_sheets: int,
    embed_video_bytes: int,
    spread: str,
) -> str:
    from .plots import plot_report
    from .sheets import sheets_for_report

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
        parts.append(
            f"<h2>Run {html.escape(rep.run_id)} — suite {html.escape(str(rep.suite))}, "
            f"profile {html.escape(str(rep.profile))}</h2>"
        )
        if rep.profile == "tiny":
            parts.append(
                "<p class='meta'><b>tiny profile</b>: random-initialised models; these numbers check "
                "the pipeline and measure nothing.</p>"
            )
        if rep.paper is not None and not rep.paper.transcribed:
            parts.append(f"<p class='meta'>published numbers: {html.escape(rep.paper.status)}</p>")
        parts.append("<h3>Tables</h3>")
        parts += [render_html_table(t) for t in rep.tables]
        parts.append("<h3>Plots</h3>")
        for path in plot_report(rep, work_dir / f"plots{k}", spread=spread):
            parts.append(
                f"<figure>{_img(path, 'plot', path.stem)}<figcaption>{html.escape(path.stem)}"
                "</figcaption></figure>"
            )
        sheets = sheets_for_report(
            rep,
            work_dir / f"sheets{k}",
            cases=cases,
            data_root=data_root,
            prompt_index=prompt_index,
            seed=seed,
            limit=None if cases else max_sheets,
        )
        n_cases = len({r["case_id"] for r in rep.records})
        parts.append("<h3>Contact sheets</h3>")
        if not cases and n_cases > len(sheets):
            parts.append(
                f"<p class='meta'>{len(sheets)} of {n_cases} cases shown (--max-sheets, --case)</p>"
            )
        for sheet in sheets:
            caption = (
                f"{sheet.case_id}: prompt {sheet.prompt_index}, seed {sheet.seed} — {sheet.prompt}"
            )
            if not sheet.references_found:
                caption += " (reference images/clips not found: pass --data-root)"
            parts.append(
                f"<figure>{_img(sheet.path, 'sheet', sheet.case_id)}"
                f"<figcaption>{html.escape(caption)}</figcaption></figure>"
            )
            if sheet.videos:
                parts.append(
                    "<div class='videos'>"
                    + "".join(
                        _video(p, out.parent, embed_video_bytes, f"{label} · {sheet.case_id}")
                        for label, p in sheet.videos.items()
                    )
                    + "</div>"
                )
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
        page = render_page(
            reports,
            out,
            work_dir=Path(tmp),
            cases=cases,
            data_root=data_root,
            prompt_index=prompt_index,
            seed=seed,
            max_sheets=max_sheets,
            embed_video_bytes=embed_video_bytes,
            spread=spread,
        )
    atomic_write_text(out, page)
    return out
