"""A table (or several) as JSON: its metadata and :func:`~.rows.flat_rows`."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from ..aggregate import Table
from .rows import flat_rows, table_meta


def render_json(table: Table) -> str:
    return json.dumps({**table_meta(table), "rows": flat_rows(table)}, indent=2) + "\n"


def render_json_report(tables: Sequence[Table], meta: Mapping[str, Any] | None = None) -> str:
    """One document: ``meta``, every table's metadata, and all their rows (each with its
    ``table`` field)."""
    rows = [row for t in tables for row in flat_rows(t)]
    doc = {**(meta or {}), "tables": [table_meta(t) for t in tables], "rows": rows}
    return json.dumps(doc, indent=2) + "\n"
