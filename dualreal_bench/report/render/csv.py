"""A table (or several) as CSV: :func:`~.rows.flat_rows`, one line per row."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any

from ..aggregate import Table
from .rows import flat_rows


def csv_text(rows: Sequence[dict[str, Any]]) -> str:
    """``rows`` as CSV text, every field any row has as a column (in first-seen order)."""
    buf = io.StringIO()
    if rows:
        fields = list(dict.fromkeys(k for r in rows for k in r))
        writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return buf.getvalue()


def render_csv(table: Table) -> str:
    return csv_text(flat_rows(table))
