"""Reports of a run: the paper's Tables 1-3, breakdowns, published numbers, plots, contact
sheets, a static HTML page and data exports.

* :mod:`.columns` — the metric columns (fields, labels, directions, digits), read from the
  metric declarations (:mod:`dualreal_bench.metrics.declarations`);
* :mod:`.aggregate` — records -> cells: the mean over each case's videos, then over cases;
* :mod:`.variants` — which variant of which method a row is (from the records);
* :mod:`.paper` — the published numbers and the paper's table layout;
* :mod:`.tables` — Tables 1-3 and breakdowns of a run (:func:`build_report`);
* :mod:`.table_split` — which rows make which of Tables 1-3 (by variant key);
* :mod:`.paper_compare` — the published numbers beside the measured rows;
* :mod:`.render` — one renderer per format (rich, Markdown, LaTeX, CSV, JSON, HTML);
* :mod:`.plots` (with :mod:`.figures`, :mod:`.controller_plot`), :mod:`.sheets` (with
  :mod:`.contact_sheet`), :mod:`.html`, :mod:`.export` — pictures, contact sheets, the HTML
  page, per-video rows and the leaderboard (import them from their modules: they load
  matplotlib, Pillow or pandas).
"""

from __future__ import annotations

from ..store import expected_videos
from .aggregate import Cell, Table, aggregate, load_records, per_case_means
from .columns import (
    EXTRA_FIELDS,
    PAIRED_FIELDS,
    TABLE_FIELDS,
    Column,
    MetricMeta,
    bar_fields,
    extra_fields,
    metric_columns,
    metric_meta,
    paired_fields,
    table_fields,
)
from .paper import PaperResults, load_paper_results, paper_results_path, row_order_key
from .render import FORMATS, latex_escape, render, render_html_table, render_report
from .tables import (
    BREAKDOWNS,
    Report,
    attach_paper,
    breakdown,
    build_report,
    build_table,
    split_tables,
)
from .variants import Variant, legacy_variant, method_variants, parse_variant_key, record_variant

__all__ = [
    "BREAKDOWNS",
    "EXTRA_FIELDS",
    "FORMATS",
    "PAIRED_FIELDS",
    "TABLE_FIELDS",
    "Cell",
    "Column",
    "MetricMeta",
    "PaperResults",
    "Report",
    "Table",
    "Variant",
    "aggregate",
    "attach_paper",
    "bar_fields",
    "breakdown",
    "build_report",
    "build_table",
    "expected_videos",
    "extra_fields",
    "latex_escape",
    "legacy_variant",
    "load_paper_results",
    "load_records",
    "method_variants",
    "metric_columns",
    "metric_meta",
    "paired_fields",
    "paper_results_path",
    "parse_variant_key",
    "per_case_means",
    "record_variant",
    "render",
    "render_html_table",
    "render_report",
    "row_order_key",
    "split_tables",
    "table_fields",
]
