"""Aggregation of a run's records into table cells.

Aggregation follows the authors: the mean over a case's videos, then the mean over cases.
Every cell carries the number of videos behind it; a cell whose method has not finished
every expected video (the union of what every shard of the run planned) or whose values are
missing is marked incomplete (†) and is never ranked as if it were complete.

Rows are the store's method labels (``record["method"]``: the run's folder per method).

The paper's dynamic-degree deviation (:data:`~.dynamics.DATASET_DEV`) is no record field: it is
a row's mean dynamic degree minus the average of the reference clips of the table's motions
(:mod:`.dynamics`), computed here whenever a column asks for it.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..store import ResultStore
from .columns import Column, column_fields, extra_fields
from .dynamics import DATASET_DEV, DD_FIELD, DatasetDD, case_motion, row_dataset_averages
from .motion_confusion import motion_count_note
from .paper import row_order_key


@dataclasses.dataclass
class Cell:
    mean: float | None
    n_videos: int
    n_cases: int
    complete: bool
    case_std: float | None = None  # spread of the per-case means (population std)


@dataclasses.dataclass
class Table:
    title: str
    columns: list[Column]
    rows: list[str]  # row keys: method labels (breakdowns: "<group> | <label>")
    cells: dict[tuple[str, str], Cell]  # (row, field) -> cell
    expected_videos: int
    notes: list[str] = dataclasses.field(default_factory=list)
    id: str = "table"
    display: dict[str, str] = dataclasses.field(default_factory=dict)  # row -> shown name
    methods: dict[str, str | None] = dataclasses.field(default_factory=dict)  # row -> label
    variants: dict[str, str] = dataclasses.field(default_factory=dict)  # row -> variant key
    groups: dict[str, str] = dataclasses.field(default_factory=dict)  # row -> group (ranked within)
    group_kind: str | None = None  # "case" / "identity" / "motion"
    expected_rows: dict[str, int] = dataclasses.field(
        default_factory=dict
    )  # row -> expected videos
    paper: dict[str, dict[str, float | None]] | None = None  # row -> field -> published value
    paper_names: dict[str, str] = dataclasses.field(default_factory=dict)  # row -> paper's row name
    extra_fields: list[str] = dataclasses.field(default_factory=list)  # in JSON/CSV only
    # row -> the dataset average its dynamic-degree deviation is taken from (.dynamics)
    dataset_dd: dict[str, DatasetDD] = dataclasses.field(default_factory=dict)
    # the published dataset average of the table (paper_results.json), when compared
    paper_dataset_dd: float | None = None
    # rows of published values the run has no measured row for (empty measured cells)
    unmeasured: set[str] = dataclasses.field(default_factory=set)
    # field -> metric version -> the method labels computed by it, for the fields whose rows
    # disagree (a changed definition or encoder): shown, never ranked
    mixed_versions: dict[str, dict[str, list[str]]] = dataclasses.field(default_factory=dict)

    @property
    def unranked(self) -> set[str]:
        """The fields whose rows were computed by different metric versions."""
        return set(self.mixed_versions)

    def label(self, row: str) -> str:
        return self.display.get(row, row)

    def expected(self, row: str) -> int:
        return self.expected_rows.get(row, self.expected_videos)

    def rank_marks(self) -> dict[tuple[str, str], str]:
        """'best' / 'second' per column (within each group) among complete cells; values equal at
        the shown precision share a mark."""
        marks: dict[tuple[str, str], str] = {}
        by_group: dict[str, list[str]] = {}
        for r in self.rows:
            by_group.setdefault(self.groups.get(r, ""), []).append(r)
        for rows in by_group.values():
            for col in self.columns:
                if col.higher_is_better is None or col.field in self.unranked:
                    continue
                rank_cells = {r: self.cells[(r, col.rank_field)] for r in rows}
                ok = {
                    r: abs(round(c.mean, col.digits)) if col.rank_abs else round(c.mean, col.digits)
                    for r, c in rank_cells.items()
                    if c.complete and c.mean is not None and self.cells[(r, col.field)].complete
                }
                vals = sorted(set(ok.values()), reverse=bool(col.higher_is_better))
                for r, v in ok.items():
                    if v == vals[0]:
                        marks[(r, col.field)] = "best"
                    elif len(vals) > 1 and v == vals[1]:
                        marks[(r, col.field)] = "second"
        return marks


def load_records(
    output_dir: str | Path, run_id: str, invalid: list[tuple[Path, str]] | None = None
) -> list[dict[str, Any]]:
    """The run's records. A record that does not read or validate is a DataError naming it,
    or, given an ``invalid`` list, is appended to it as ``(path, message)`` and left out."""
    store = ResultStore(output_dir, run_id)
    store.run_info()  # clear error when the run does not exist
    on_invalid = None if invalid is None else (lambda path, msg: invalid.append((path, msg)))
    return list(store.iter_records(on_invalid))


def planned_cases(
    records: Sequence[Mapping[str, Any]], expected: Mapping[str, Mapping[str, int]] | None
) -> dict[str, int]:
    """case id -> videos expected per method: the most any method planned or produced."""
    cases: dict[str, int] = {}
    for per_case in (expected or {}).values():
        for case_id, n in per_case.items():
            cases[case_id] = max(n, cases.get(case_id, 0))
    counts: dict[tuple[str, str], int] = {}
    for rec in records:
        key = (rec["method"], rec["case_id"])
        counts[key] = counts.get(key, 0) + 1
    for (_, case_id), n in counts.items():
        cases[case_id] = max(n, cases.get(case_id, 0))
    return cases


def finite(values: Iterable[Any]) -> list[float]:
    """The values that are finite numbers, as floats (None, NaN, text left out)."""
    out = []
    for v in values:
        if v is None:
            continue
        try:
            f = float(v)
        except (TypeError, ValueError):
            continue
        if math.isfinite(f):
            out.append(f)
    return out


def per_case_means(records: Sequence[Mapping[str, Any]], field: str) -> dict[str, dict[str, float]]:
    """method label -> case id -> mean of ``field`` over that case's videos (finite values only).

    :data:`~.dynamics.DATASET_DEV`: the case's mean dynamic degree minus the row's dataset
    average over every motion of ``records`` (their mean over cases is the tables' value)."""
    if field == DATASET_DEV:
        dd = per_case_means(records, DD_FIELD)
        motions = {str(r.get("motion") or case_motion(r["case_id"], {})) for r in records}
        averages = row_dataset_averages(records, dd, motions)
        return {
            m: {c: v - averages[m].mean for c, v in per.items()}
            for m, per in dd.items()
            if averages[m].mean is not None
        }
    acc: dict[str, dict[str, list[float]]] = {}
    for rec in records:
        acc.setdefault(rec["method"], {}).setdefault(rec["case_id"], []).extend(
            finite([rec.get("metrics", {}).get(field)])
        )
    return {m: {c: sum(v) / len(v) for c, v in per.items() if v} for m, per in acc.items()}


def _cell(per_case: Mapping[str, list[Mapping]], field: str, cases: Mapping[str, int]) -> Cell:
    case_means, n_videos, complete = [], 0, True
    for case_id, n_exp in cases.items():
        values = finite(r.get("metrics", {}).get(field) for r in per_case.get(case_id, []))
        n_videos += len(values)
        if len(values) < n_exp:
            complete = False
        if values:
            case_means.append(sum(values) / len(values))
    if not case_means:
        return Cell(None, n_videos, 0, False)
    mean = sum(case_means) / len(case_means)
    std = math.sqrt(sum((m - mean) ** 2 for m in case_means) / len(case_means))
    return Cell(mean, n_videos, len(case_means), complete, std)


def aggregate(
    records: Sequence[Mapping[str, Any]],
    columns: Sequence[Column],
    expected: Mapping[str, Mapping[str, int]] | None = None,
    title: str = "",
    rows: Sequence[str] | None = None,
    cases: Iterable[str] | None = None,
    display: Mapping[str, str] | None = None,
) -> Table:
    """Mean over each case's videos, then over cases; count and completeness per cell.

    ``rows``: method labels to show, in this order (default: every label in ``records``, in
    the tables' order: :func:`~dualreal_bench.report.variants.row_order_key`).
    ``cases``: restrict to these case ids (default: every case planned or recorded).
    ``display``: the shown name of a row (default: its label).
    """
    by_method: dict[str, dict[str, list[Mapping]]] = {}
    for rec in records:
        by_method.setdefault(rec["method"], {}).setdefault(rec["case_id"], []).append(rec)
    planned = planned_cases(records, expected)
    if cases is not None:
        wanted = set(cases)
        planned = {c: n for c, n in planned.items() if c in wanted}
    rows = list(rows) if rows is not None else sorted(by_method, key=row_order_key(records))
    shown = column_fields(list(columns))
    extra = [
        f
        for f in extra_fields()
        if f not in shown and any(f in r.get("metrics", {}) for r in records)
    ]
    measured = [f for f in shown + extra if f != DATASET_DEV]
    if DATASET_DEV in shown and DD_FIELD not in measured:
        measured.append(DD_FIELD)
    cells = {(m, f): _cell(by_method.get(m, {}), f, planned) for m in rows for f in measured}
    table = Table(
        title,
        list(columns),
        rows,
        cells,
        sum(planned.values()),
        display=dict(display or {}),
        methods={m: m for m in rows},
        extra_fields=extra,
    )
    shown_records = [r for r in records if r["method"] in set(rows)]
    note = motion_count_note(shown_records) if not all(c.in_paper for c in columns) else None
    if note:
        table.notes.append(note)
    table.mixed_versions = mixed_versions(shown_records, columns)
    table.notes += [
        mixed_versions_note(table, col) for col in columns if col.field in table.mixed_versions
    ]
    if DATASET_DEV in shown:
        by_case = {r["case_id"]: r for r in records}
        motions = {case_motion(c, by_case) for c in planned}
        table.dataset_dd = row_dataset_averages(records, rows, motions)
        for m in rows:
            cells[(m, DATASET_DEV)] = deviation_cell(cells[(m, DD_FIELD)], table.dataset_dd[m])
    return table


def mixed_versions(
    records: Sequence[Mapping[str, Any]], columns: Sequence[Column]
) -> dict[str, dict[str, list[str]]]:
    """field -> metric version -> method labels, for the columns whose records were computed
    by more than one metric version (a changed definition or encoder, e.g. motion fidelity by
    the flow and the VideoMAE descriptor: not comparable). Records without versions (written
    before they were recorded) agree with any."""
    out: dict[str, dict[str, list[str]]] = {}
    for col in columns:
        by_version: dict[str, set[str]] = {}
        for r in records:
            version = (r.get("metric_versions") or {}).get(col.field)
            if version is not None:
                by_version.setdefault(str(version), set()).add(r["method"])
        if len(by_version) > 1:
            out[col.field] = {v: sorted(labels) for v, labels in sorted(by_version.items())}
    return out


def mixed_versions_note(table: Table, col: Column) -> str:
    """The footnote of a column left unranked for its rows' different metric versions."""
    which = "; ".join(
        f"{version} ({', '.join(sorted(table.label(m) for m in labels))})"
        for version, labels in table.mixed_versions[col.field].items()
    )
    return (
        f"{col.label}: rows computed by different metric versions, {which}: not comparable, "
        "not ranked"
    )


def deviation_cell(dd: Cell, average: DatasetDD) -> Cell:
    """The paper's deviation of a row whose dynamic-degree cell is ``dd``: its mean minus the
    dataset average; complete when both are (the spread across cases is the DD cell's)."""
    mean = None if dd.mean is None or average.mean is None else dd.mean - average.mean
    return Cell(mean, dd.n_videos, dd.n_cases, dd.complete and average.complete, dd.case_std)
