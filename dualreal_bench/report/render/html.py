"""A table as an HTML ``<table>`` (for the static HTML report), followed by its footnotes."""

from __future__ import annotations

import html
from collections.abc import Sequence

from ..aggregate import Table
from .common import Style, body, caption, footer, head, n_lead

STYLE = Style(best="<b>{}</b>", second="<u>{}</u>")


def _html_cell(text: str) -> str:
    # the only markup in a cell is the best/second mark of STYLE
    for tag in ("b", "u"):
        if text.startswith(f"<{tag}>"):
            inner, _, rest = text[len(tag) + 2 :].partition(f"</{tag}>")
            return f"<{tag}>{html.escape(inner)}</{tag}>{html.escape(rest)}"
    return html.escape(text)


def render_html_table(table: Table, notes: Sequence[str] | None = None) -> str:
    """``table`` as an HTML ``<table>`` (used by the static HTML report), followed by its
    footnotes: ``notes`` (default: all of them; the HTML page passes only those no other
    table of its section has, and lists the shared ones once)."""
    lead = n_lead(table)
    parts = [
        f"<table class='metrics' id='{html.escape(table.id)}'>",
        f"<caption>{html.escape(table.title)}"
        + (f"<br><small>{html.escape(caption(table))}</small>" if caption(table) else "")
        + "</caption>",
        "<thead><tr>",
    ]
    parts += [f"<th>{html.escape(h)}</th>" for h in head(table)]
    parts.append("</tr></thead><tbody>")
    for cells, kind in body(table, STYLE):
        tds = [f"<td class='name'>{html.escape(c)}</td>" for c in cells[:lead]]
        tds += [f"<td class='num'>{_html_cell(c)}</td>" for c in cells[lead:]]
        parts.append(f"<tr class='{kind}'>" + "".join(tds) + "</tr>")
    parts.append("</tbody></table>")
    notes = footer(table) if notes is None else list(notes)
    if notes:
        parts.append(
            "<ul class='notes'>" + "".join(f"<li>{html.escape(n)}</li>" for n in notes) + "</ul>"
        )
    return "\n".join(parts)
