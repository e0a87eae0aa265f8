"""A table as GitHub-flavoured Markdown (bold best, underlined second, footnotes in italics)."""

from __future__ import annotations

from ..aggregate import Table
from .common import Style, body, caption, footer, head, n_lead

STYLE = Style(best="**{}**", second="<u>{}</u>")


def md_escape(text: str) -> str:
    return text.replace("|", "\\|")


def render_markdown(table: Table) -> str:
    cols = head(table)
    lead = n_lead(table)
    lines = [f"**{table.title}**", ""]
    if caption(table):
        lines += [md_escape(caption(table)), ""]
    lines += [
        "| " + " | ".join(cols) + " |",
        "|" + "|".join(["---"] * lead + ["---:"] * (len(cols) - lead)) + "|",
    ]
    for cells, _ in body(table, STYLE):
        cells = [md_escape(c) for c in cells[:lead]] + cells[lead:]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [""] + [f"_{n}_" for n in footer(table)]
    return "\n".join(lines) + "\n"
