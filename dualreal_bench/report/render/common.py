"""What every text renderer prints of a table: the header, the rows (measured, then the
published values and the differences beneath), and the footnotes. A renderer gives its
:class:`Style` (how it marks best/second and incomplete cells) and escapes the text."""

from __future__ import annotations

import dataclasses

from ..aggregate import Table
from ..columns import Column
from ..dynamics import DATASET_DEV


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
    paren = table.cells[(row, col.paren)].mean if col.paren else None
    if col.paren and (cell.mean is not None or paren is not None):
        text += f" ({fmt(paren, col.digits, col.paren_signed)})"
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
            return fmt(published, col.digits, col.paren_signed and field == col.paren)
        measured = table.cells[(row, field)].mean
        return fmt(
            None if published is None or measured is None else measured - published,
            col.digits,
            True,
        )

    text = one(col.field)
    if col.paren and not (text == "-" and one(col.paren) == "-"):
        text += f" ({one(col.paren)})"
    return text


def _n_videos(table: Table, row: str) -> str:
    if row in table.unmeasured:
        return "not run"
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
    return notes + table.notes


def caption(table: Table) -> str:
    """The table's caption line on the dynamic-degree deviation, as the paper's captions put it:
    the dataset average the deviations are taken from (and the paper's, when compared)."""
    if not any(c.paren == DATASET_DEV for c in table.columns):
        return ""
    averages = {r: table.dataset_dd[r] for r in table.rows if r in table.dataset_dd}
    if not averages:
        return ""
    tail = (
        "; parenthetical values are each row's mean Dynamic Degree minus it (signed, between "
        "averages, as the paper's), ranked by their absolute value"
    )
    paper = f" (paper: {table.paper_dataset_dd:.2f})" if table.paper_dataset_dd is not None else ""
    distinct = {(a.mean, a.n_clips, a.missing) for a in averages.values()}
    if len(distinct) == 1:
        first = next(iter(averages.values()))
        return (
            f"The motion clips of these cases average a Dynamic Degree of {first.describe()}"
            + paper
            + tail
        )
    if table.group_kind:
        per_group = {table.groups.get(r, ""): a for r, a in averages.items()}
        listed = "; ".join(f"{g}: {a.describe()}" for g, a in per_group.items())
        return (
            f"Each {table.group_kind}'s motion clips average a Dynamic Degree of: {listed}" + tail
        )
    listed = "; ".join(f"{table.label(r)}: {a.describe()}" for r, a in averages.items())
    return (
        "The rows' videos were scored at different sizes or settings, so each row's motion "
        f"clips have their own average Dynamic Degree ({listed})" + paper + tail
    )


def head(table: Table) -> list[str]:
    """The header cells: the group column of a breakdown, the method, the metrics, n."""
    lead = [table.group_kind] if table.group_kind else []
    return lead + ["method", *(_header(c) for c in table.columns), "n"]


def n_lead(table: Table) -> int:
    """How many of a row's first cells are names (left-aligned, escaped as text)."""
    return 2 if table.group_kind else 1


def body(table: Table, style: Style) -> list[tuple[list[str], str]]:
    """[(cells, kind)] with kind "row" / "paper" / "delta": the rows every text renderer prints
    (a published row the run did not measure has no "delta")."""
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
            if row not in table.unmeasured:  # nothing measured to take a difference of
                out.append((lead + ["↳ Δ", *deltas, ""], "delta"))
    return out
