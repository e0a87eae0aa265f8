"""What every text renderer prints of a table: the header, the rows (measured, then the
published values and the differences beneath), and the footnotes. A renderer gives its
:class:`Style` (how it marks best/second and incomplete cells) and escapes the text."""

from __future__ import annotations

import dataclasses

from ..aggregate import Table
from ..columns import Column


@dataclasses.dataclass(frozen=True)
class Style:
    best: str  # format of a best value ("**{}**")
    second: str  # format of a second-best value ("<u>{}</u>")
    dagger: str = "†"  # appended to an incomplete cell

    def mark(self, text: str, mark: str | None) -> str:
        if not mark:
            return text
        return (self.best if mark == "best" else self.second).format(text)


def fmt(value: float | None, digits: int, signed: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def _value_text(table: Table, row: str, col: Column) -> str:
    cell = table.cells[(row, col.field)]
    text = fmt(cell.mean, col.digits)
    if col.paren:
        text += f" ({fmt(table.cells[(row, col.paren)].mean, col.digits)})"
    return text


def _cell_text(table: Table, row: str, col: Column, marks: dict, style: Style) -> str:
    cell = table.cells[(row, col.field)]
    text = style.mark(_value_text(table, row, col), marks.get((row, col.field)))
    incomplete = (not cell.complete and cell.mean is not None) or (
        col.paren is not None
        and not table.cells[(row, col.paren)].complete
        and table.cells[(row, col.paren)].mean is not None
    )
    if incomplete:
        text += style.dagger
    return text


def _paper_text(table: Table, row: str, col: Column, delta: bool) -> str:
    values = (table.paper or {}).get(row)
    if values is None:
        return "-"

    def one(field: str) -> str:
        published = values.get(field)
        if not delta:
            return fmt(published, col.digits)
        measured = table.cells[(row, field)].mean
        return fmt(
            None if published is None or measured is None else measured - published,
            col.digits,
            True,
        )

    text = one(col.field)
    if col.paren:
        text += f" ({one(col.paren)})"
    return text


def _n_videos(table: Table, row: str) -> str:
    counts = {table.cells[(row, f)].n_videos for c in table.columns for f in c.fields}
    return f"{max(counts)}/{table.expected(row)}"


def _header(col: Column) -> str:
    arrow = "" if col.higher_is_better is None else (" ↑" if col.higher_is_better else " ↓")
    return col.label + arrow


def footer(table: Table) -> list[str]:
    """The table's footnotes: how to read it, then its own notes."""
    notes = [
        "best in bold, second underlined; † incomplete (fewer videos than expected): not ranked",
        "mean over each case's videos, then over cases; n = videos behind the row / expected",
    ]
    if any(c.paren for c in table.columns):
        notes.append(
            "dynamic degree: mean (deviation from the motion's reference clips), ranked by the deviation"
        )
    return notes + table.notes


def head(table: Table) -> list[str]:
    """The header cells: the group column of a breakdown, the method, the metrics, n."""
    lead = [table.group_kind] if table.group_kind else []
    return lead + ["method", *(_header(c) for c in table.columns), "n"]


def n_lead(table: Table) -> int:
    """How many of a row's first cells are names (left-aligned, escaped as text)."""
    return 2 if table.group_kind else 1


def body(table: Table, style: Style) -> list[tuple[list[str], str]]:
    """[(cells, kind)] with kind "row" / "paper" / "delta": the rows every text renderer prints."""
    marks = table.rank_marks()
    out = []
    for row in table.rows:
        lead = [table.groups.get(row, "")] if table.group_kind else []
        cells = [_cell_text(table, row, c, marks, style) for c in table.columns]
        out.append((lead + [table.label(row), *cells, _n_videos(table, row)], "row"))
        if table.paper and row in table.paper:
            name = table.paper_names.get(row)
            published = [_paper_text(table, row, c, False) for c in table.columns]
            deltas = [_paper_text(table, row, c, True) for c in table.columns]
            out.append(
                (lead + ["↳ paper" + (f" ({name})" if name else ""), *published, ""], "paper")
            )
            out.append((lead + ["↳ Δ", *deltas, ""], "delta"))
    return out
