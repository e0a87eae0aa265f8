"""Renderers: one module per format (rich text, Markdown, LaTeX, CSV, JSON, HTML)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ...errors import ConfigError
from ..aggregate import Table
from .common import footer
from .csv import csv_text, render_csv
from .html import render_html_table
from .json import render_json, render_json_report
from .latex import latex_escape, render_latex
from .markdown import render_markdown
from .rows import flat_rows
from .text import render_rich

#: the formats of ``dualreal-bench report --format``
FORMATS = ("rich", "markdown", "latex", "csv", "json")
RENDERERS = {
    "rich": render_rich,
    "markdown": render_markdown,
    "latex": render_latex,
    "csv": render_csv,
    "json": render_json,
}


def _check(fmt: str) -> None:
    if fmt not in FORMATS:
        raise ConfigError(f"--format {fmt!r}: choose one of {', '.join(FORMATS)}")


def render(table: Table, fmt: str) -> str | Any:
    """One table as ``fmt`` (a rich Table object for "rich", text otherwise)."""
    _check(fmt)
    return RENDERERS[fmt](table)


def render_report(
    tables: Sequence[Table], fmt: str, meta: Mapping[str, Any] | None = None
) -> str | list:
    """Several tables as one document: rich -> list of rich Tables; JSON/CSV -> one tidy document
    whose rows carry a ``table`` field; Markdown/LaTeX -> the tables one after another."""
    _check(fmt)
    if fmt == "rich":
        return [render_rich(t) for t in tables]
    if fmt in ("markdown", "latex"):
        return "\n".join(RENDERERS[fmt](t) for t in tables)
    if fmt == "csv":
        return csv_text([row for t in tables for row in flat_rows(t)])
    return render_json_report(tables, meta)


__all__ = [
    "FORMATS",
    "flat_rows",
    "footer",
    "latex_escape",
    "render",
    "render_html_table",
    "render_report",
]
