"""A table as a :class:`rich.table.Table` (the terminal's default format)."""

from __future__ import annotations

from typing import Any

from rich.markup import escape
from rich.table import Table as RichTable

from ..aggregate import Table
from .common import Style, body, caption, footer, head, n_lead

STYLE = Style(best="[bold green]{}[/]", second="[underline]{}[/]")


def render_rich(table: Table) -> Any:
    lines = [caption(table), *footer(table)]
    out = RichTable(title=escape(table.title), caption=escape("\n".join(ln for ln in lines if ln)))
    lead = n_lead(table)
    for i, name in enumerate(head(table)):
        out.add_column(escape(name), justify="left" if i < lead else "right")
    for cells, kind in body(table, STYLE):
        cells = [escape(c) for c in cells[:lead]] + cells[lead:]
        out.add_row(*cells, style="dim" if kind != "row" else None)
    return out
