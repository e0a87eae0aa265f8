"""A table as tidy rows (one per table row, every cell's mean, count, completeness, spread and
rank as its own field) and its metadata: what the CSV and JSON renderers write."""

from __future__ import annotations

import dataclasses
from typing import Any

from ..aggregate import Cell, Table
from ..dynamics import DD_FIELD
from .common import caption, footer


def table_meta(table: Table) -> dict[str, Any]:
    return {
        "id": table.id,
        "title": table.title,
        "group_kind": table.group_kind,
        "caption": caption(table) or None,
        "columns": [dataclasses.asdict(c) for c in table.columns],
        "notes": footer(table),
    }


def _cell_fields(field: str, cell: Cell) -> dict[str, Any]:
    return {
        field: cell.mean,
        f"{field}_n": cell.n_videos,
        f"{field}_complete": cell.complete,
        f"{field}_case_std": cell.case_std,
    }


def _paper_fields(table: Table, row: str, fields: tuple[str, ...]) -> dict[str, Any]:
    published = (table.paper or {}).get(row, {})
    out: dict[str, Any] = {}
    for f in fields:
        p = published.get(f)
        m = table.cells[(row, f)].mean
        out[f"{f}_paper"] = p
        out[f"{f}_delta"] = None if p is None or m is None else m - p
    return out


def flat_rows(table: Table) -> list[dict[str, Any]]:
    """One dict per row of ``table``: its cells' figures, the published values and
    differences (when compared), then the row's table, name, variant and group."""
    marks = table.rank_marks()
    rows = []
    for row in table.rows:
        out: dict[str, Any] = {"method": table.methods.get(row, row)}
        for c in table.columns:
            for f in c.fields:
                out.update(_cell_fields(f, table.cells[(row, f)]))
            out[f"{c.field}_rank"] = marks.get((row, c.field))
            if table.paper is not None:
                out.update(_paper_fields(table, row, c.fields))
        for f in table.extra_fields:
            out.update(_cell_fields(f, table.cells[(row, f)]))
        if row in table.dataset_dd:  # what the dynamic-degree deviation is taken from
            out[f"{DD_FIELD}_dataset_avg"] = table.dataset_dd[row].mean
            out[f"{DD_FIELD}_dataset_clips"] = table.dataset_dd[row].n_clips
        if table.paper is not None:
            out[f"{DD_FIELD}_dataset_avg_paper"] = table.paper_dataset_dd
        out["n_cases"] = max(table.cells[(row, f)].n_cases for c in table.columns for f in c.fields)
        out["expected_videos"] = table.expected(row)
        out["table"] = table.id
        out["name"] = table.label(row)
        out["variant"] = table.variants.get(row)
        if table.group_kind:
            out["group"] = table.groups.get(row)
        if table.paper is not None:
            out["paper_name"] = table.paper_names.get(row)
        rows.append(out)
    return rows
