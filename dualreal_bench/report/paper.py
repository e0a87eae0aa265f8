"""The paper's published numbers and the shape of its tables (``benchmark/paper_results.json``).

The file says, for each of the paper's Tables 1-3, which rows it prints, each row as a
*variant key* (what :meth:`dualreal_bench.method.Method.variant_key` returns for the method and
configuration behind the row: ``lora``, ``dualreal``, ``dualreal[controller=false]``,
``dualreal[num_groups=1]``), with its published values. That is also what decides which
measured row lands in which table (:func:`dualreal_bench.report.table_split.split_tables`), so the
report itself knows no method's options:

* ``proposed``: the variant of the paper's own method as the paper runs it (``dualreal``);
* Table 2 lists the ablations of the proposed method beside it, each with the ``label`` the
  report prints;
* Table 3 is a ``sweep`` of one option of the proposed method (``num_groups``, the
  StageBlender group count ``n``): its ``reference_value`` is the proposed method's own (7), and
  ``row_label`` names a row (``"n = {value}"``); ``without_reference`` is Table 1's note when a
  run has the proposed method only with other values (the tiny backbone's 2 blocks cannot
  hold 7 groups), and Table 1 shows the one with the largest.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import DataError
from ..io import read_json
from ..spec import benchmark_dir
from .variants import Variant, method_variants, parse_variant_key

PAPER_RESULTS_FILE = "paper_results.json"
#: the file's table ids, in the paper's order
TABLE_IDS = ("table1", "table2", "table3")


@dataclasses.dataclass(frozen=True)
class Sweep:
    """A table of the proposed method over the values of one of its options (Table 3)."""

    option: str  # "num_groups"
    reference_value: Any  # the proposed method's own value (7)
    row_label: str  # "n = {value}"
    without_reference: str  # Table 1's note when the run lacks the reference value

    def label(self, value: Any) -> str:
        return self.row_label.format(value=value)


@dataclasses.dataclass(frozen=True)
class Layout:
    """Which variants make which table, read from the published-numbers file."""

    proposed: Variant  # the paper's method as the paper runs it (``dualreal``)
    baselines: tuple[str, ...]  # Table 1's other methods, in the paper's order
    ablations: tuple[tuple[Variant, str], ...]  # Table 2's ablation rows: (variant, label)
    full_label: str  # Table 2's name of the proposed method's row
    sweep: Sweep | None  # Table 3
    titles: dict[str, str]
    # method name -> what a table with a row of it must say (the published row's caption_note)
    method_notes: dict[str, str] = dataclasses.field(default_factory=dict)

    def sweep_value(self, variant: Variant) -> Any:
        """The swept option's value of a variant of the proposed method that is none of
        Table 2's ablations of other options (those extend one: ``dualreal[controller=false]``,
        ``dualreal[controller=false,num_groups=1]``); None for any other variant. Options
        neither table is about (``steps_scale=0.1`` on a shortened run) do not matter: the
        paper's tables compare only the options they list."""
        if self.sweep is None or variant.name != self.proposed.name:
            return None
        option = self.sweep.option
        for ablation, _ in self.ablations:
            if set(ablation.params) - {option} and variant.extends(ablation):
                return None
        return variant.params.get(option, self.sweep.reference_value)

    def order_key(self, label: str, variant: Variant) -> tuple:
        """Table 1's row order: the paper's baselines in its order, then other methods by
        name, the proposed method last (its sweep in increasing order); then by label."""
        if variant.name in self.baselines:
            return (0, self.baselines.index(variant.name), label)
        if variant.name != self.proposed.name:
            return (1, 0, variant.name, 0, label)
        value = self.sweep_value(variant)
        return (2, 0, variant.name, value if isinstance(value, int | float) else 0, label)


def row_order_key(
    records: Sequence[Mapping[str, Any]], layout: Layout | None = None
) -> Callable[[str], tuple]:
    """A sort key over the method labels of ``records`` (:meth:`Layout.order_key`; default:
    the shipped file's layout)."""
    layout = layout or shipped_layout()
    variants = method_variants(records)

    def key(label: str) -> tuple:
        return layout.order_key(label, variants.get(label) or parse_variant_key(label))

    return key


@dataclasses.dataclass
class PaperResults:
    status: str
    source: dict[str, Any]
    tables: dict[
        str, dict[str, Any]
    ]  # table id -> {"caption", "suite", "rows": [{"variant", "paper_name", "values"}]}
    path: Path
    layout: Layout

    @property
    def transcribed(self) -> bool:
        return self.status == "transcribed"

    def values(
        self, table_id: str, variant: str
    ) -> tuple[str | None, dict[str, float | None]] | None:
        """(paper's row name, field -> value in the benchmark's units), or None when the table
        has no published row of ``variant`` (a row with ``"values": null`` is one the paper
        does not print)."""
        row = self.row(table_id, variant)
        if row is None or row.get("values") is None:
            return None
        scale = (self.tables.get(table_id) or {}).get("scale") or {}
        vals = {
            f: (None if v is None else float(v) * float(scale.get(f, 1.0)))
            for f, v in row["values"].items()
        }
        return row.get("paper_name"), vals

    def row(self, table_id: str, variant: str) -> dict[str, Any] | None:
        """The file's row of ``variant`` in ``table_id`` (None: none)."""
        for row in (self.tables.get(table_id) or {}).get("rows", []):
            if row["variant"] == variant:
                return row
        return None

    def published_variants(self, table_id: str) -> list[str]:
        """The variant keys of the rows the paper prints in ``table_id``, in its order."""
        rows = (self.tables.get(table_id) or {}).get("rows", [])
        return [r["variant"] for r in rows if r.get("values") is not None]

    def dataset_dynamic_degree(self, table_id: str) -> float | None:
        """The dataset average dynamic degree the table's deviations are taken from (12.02)."""
        value = (self.tables.get(table_id) or {}).get("dataset_dynamic_degree")
        return None if value is None else float(value)


def paper_results_path() -> Path:
    return benchmark_dir() / PAPER_RESULTS_FILE


def _rows(path: Path, tables: dict[str, Any], table_id: str) -> list[dict[str, Any]]:
    rows = (tables.get(table_id) or {}).get("rows") or []
    for i, row in enumerate(rows):
        if not isinstance(row, dict) or not isinstance(row.get("variant"), str):
            raise DataError(f"{path}: {table_id} row {i}: needs a 'variant' key (text)")
    return rows


def _layout(path: Path, data: dict[str, Any]) -> Layout:
    tables = data["tables"]
    if not isinstance(data.get("proposed"), str):
        raise DataError(f"{path}: needs 'proposed', the variant key of the paper's method")
    proposed = parse_variant_key(data["proposed"])
    rows = {tid: _rows(path, tables, tid) for tid in TABLE_IDS}
    baselines = tuple(
        dict.fromkeys(
            parse_variant_key(r["variant"]).name
            for r in rows["table1"]
            if parse_variant_key(r["variant"]).name != proposed.name
        )
    )
    ablations = tuple(
        (parse_variant_key(r["variant"]), str(r.get("label") or r["variant"]))
        for r in rows["table2"]
        if r["variant"] != proposed.key
    )
    full = [r for r in rows["table2"] if r["variant"] == proposed.key]
    sweep = (tables.get("table3") or {}).get("sweep")
    fields = ("option", "reference_value", "row_label", "without_reference")
    if sweep is not None and not set(fields) <= set(sweep):
        raise DataError(f"{path}: table3 sweep needs {', '.join(fields)}")
    return Layout(
        proposed,
        baselines,
        ablations,
        str(full[0].get("label") or proposed.key) if full else proposed.key,
        Sweep(*(sweep[f] for f in fields)) if sweep else None,
        {tid: str((tables.get(tid) or {}).get("title") or tid) for tid in TABLE_IDS},
        {
            parse_variant_key(r["variant"]).name: str(r["caption_note"])
            for tid in TABLE_IDS
            for r in rows[tid]
            if r.get("caption_note")
        },
    )


def load_paper_results(path: str | Path | None = None) -> PaperResults:
    """The published numbers shipped in ``benchmark/paper_results.json`` (or ``path``)."""
    path = Path(path) if path is not None else paper_results_path()
    if not path.is_file():
        raise DataError(f"{path}: published results file not found")
    data = read_json(path)
    if not isinstance(data, dict) or "tables" not in data or "status" not in data:
        raise DataError(f"{path}: not a published-results file (needs 'status' and 'tables')")
    return PaperResults(
        str(data["status"]), data.get("source") or {}, data["tables"], path, _layout(path, data)
    )


@functools.lru_cache(maxsize=1)
def shipped_layout() -> Layout:
    """The table layout of the shipped published-numbers file (read once)."""
    return load_paper_results().layout
