"""A run's report: the paper's Tables 1-3, breakdowns, and the published numbers beside them.

:func:`build_report` reads the run's records (leaving out, and saying so, those that do not
read or validate), splits the rows into Tables 1-3 by variant (:mod:`.table_split`),
aggregates each (:mod:`.aggregate`), attaches the published numbers with ``compare_paper``
(:mod:`.paper_compare`) and adds the breakdowns asked for (one block of rows per case,
identity or motion). :func:`build_table` is every method in one table.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import ConfigError, DataError
from ..store import ResultStore, expected_videos
from .aggregate import Table, aggregate, load_records, planned_cases
from .columns import Column, column_fields, metric_columns
from .paper import Layout, PaperResults, load_paper_results, row_order_key, shipped_layout
from .paper_compare import attach_paper
from .table_split import method_notes, reference_note, split_tables
from .variants import method_variants, row_name

logger = logging.getLogger(__name__)

BREAKDOWNS = ("case", "identity", "motion")


@dataclasses.dataclass
class Report:
    run_id: str
    suite: str | None
    profile: str | None
    tables: list[Table]
    records: list[dict[str, Any]]
    run_dir: Path
    paper: PaperResults | None = None
    #: records left out because they do not read or validate: (path, message)
    invalid: list[tuple[Path, str]] = dataclasses.field(default_factory=list)


# ---- building a run's report ------------------------------------------------------------------


def run_records(
    output_dir: str | Path,
    run_id: str,
    methods: Iterable[str] | None,
    invalid: list[tuple[Path, str]] | None = None,
) -> list[dict[str, Any]]:
    """The run's records (of ``methods`` only, when given); a clear error when there are none.

    With ``invalid`` (a list), a record that does not read or validate is named in a warning,
    appended to it and left out, so that one bad file never fails the whole report."""
    seen: list[tuple[Path, str]] = []
    records = load_records(output_dir, run_id, seen if invalid is not None else None)
    for _, message in seen:
        logger.warning("left out of the report: %s", message)
    if invalid is not None:
        invalid += seen
    if not records:
        bad = f" ({len(seen)} invalid, e.g. {seen[0][1]})" if seen else ""
        raise DataError(
            f"{Path(output_dir) / run_id}: no valid records yet{bad} (has `dualreal-bench run` "
            "evaluated anything?)"
        )
    if methods:
        wanted = set(methods)
        unknown = wanted - {r["method"] for r in records}
        if unknown:
            raise ConfigError(
                f"--methods: no records of {', '.join(sorted(unknown))} in run {run_id!r}"
            )
        records = [r for r in records if r["method"] in wanted]
    return records


def run_notes(info: Mapping[str, Any]) -> list[str]:
    if info.get("profile") == "tiny":
        return ["tiny profile: random-initialised models; a pipeline check, not a measurement"]
    return []


def build_table(output_dir: str | Path, run_id: str, methods: Iterable[str] | None = None) -> Table:
    """Every method of the run in one table (Table 1's columns)."""
    invalid: list[tuple[Path, str]] = []
    records = run_records(output_dir, run_id, methods, invalid)
    info = ResultStore(output_dir, run_id).run_info()
    table = aggregate(
        records,
        metric_columns(),
        with_invalid(expected_videos(output_dir, run_id), records, invalid),
        title=f"{run_id}: suite {info.get('suite')}, profile {info.get('profile')}",
    )
    table.notes += run_notes(info) + invalid_notes(invalid, table.rows)
    return table


def _paper_tables(
    records: Sequence[Mapping[str, Any]],
    expected: Mapping[str, Mapping[str, int]],
    info: Mapping[str, Any],
    where: str,
    layout: Layout,
) -> list[Table]:
    """Tables 1-3 (those with rows)."""
    variants = method_variants(records)
    columns = metric_columns()
    tables = []
    for table_id, rows in split_tables(records, layout).items():
        if not rows:
            continue
        table = aggregate(
            records,
            columns,
            expected,
            rows=[r for r, _ in rows],
            title=f"{layout.titles[table_id]} — {where}",
            display=dict(rows),
        )
        table.id = table_id
        table.variants = {r: variants[r].key for r, _ in rows}
        table.notes += run_notes(info)
        note = reference_note(records, layout) if table_id == "table1" else None
        if note:
            table.notes.append(note)
        table.notes += method_notes(table, layout)
        tables.append(table)
    return tables


def build_report(
    output_dir: str | Path,
    run_id: str,
    methods: Iterable[str] | None = None,
    *,
    compare_paper: bool = False,
    paper_file: str | Path | None = None,
    breakdowns: Sequence[str] = (),
) -> Report:
    """Tables 1-3 of one run (those that apply), optional breakdowns and published numbers.

    The tables' layout is the published-numbers file's: ``paper_file`` with ``compare_paper``,
    else the shipped one."""
    invalid: list[tuple[Path, str]] = []
    records = run_records(output_dir, run_id, methods, invalid)
    info = ResultStore(output_dir, run_id).run_info()
    suite, profile = info.get("suite"), info.get("profile")
    expected = with_invalid(expected_videos(output_dir, run_id), records, invalid)
    paper = load_paper_results(paper_file) if compare_paper else None
    where = f"run {run_id}, suite {suite}, profile {profile}"
    tables = _paper_tables(
        records, expected, info, where, paper.layout if paper else shipped_layout()
    )
    for table in tables:
        table.notes += invalid_notes(invalid, table.rows)
    if paper is not None:
        for table in tables:
            attach_paper(table, paper, suite, profile)
    columns = metric_columns()
    for kind in breakdowns:
        tables.append(breakdown(records, columns, expected, kind, title=f"Per {kind} — {where}"))
    return Report(
        run_id, suite, profile, tables, records, Path(output_dir) / run_id, paper, invalid
    )


def _invalid_place(path: Path) -> tuple[str, str]:
    """``(method label, case id)`` of a record file ``<label>/<case>/records/<name>.json``."""
    return path.parent.parent.parent.name, path.parent.parent.name


def with_invalid(
    expected: Mapping[str, Mapping[str, int]],
    records: Sequence[Mapping[str, Any]],
    invalid: Sequence[tuple[Path, str]],
) -> dict[str, dict[str, int]]:
    """``expected`` (label -> case -> videos) counting every left-out record as expected, so
    that its cell shows fewer videos than expected (incomplete, never ranked) even in a run
    without a written plan."""
    out = {label: dict(cases) for label, cases in expected.items()}
    found: dict[tuple[str, str], int] = {}
    for rec in records:
        found[(rec["method"], rec["case_id"])] = found.get((rec["method"], rec["case_id"]), 0) + 1
    for path, _ in invalid:
        label, case_id = _invalid_place(path)
        found[(label, case_id)] = found.get((label, case_id), 0) + 1
        per = out.setdefault(label, {})
        per[case_id] = max(per.get(case_id, 0), found[(label, case_id)])
    return out


def invalid_notes(invalid: Sequence[tuple[Path, str]], rows: Sequence[str]) -> list[str]:
    """A footnote naming the left-out records of the table's rows (method labels)."""
    mine = [(p, m) for p, m in invalid if _invalid_place(p)[0] in set(rows)]
    if not mine:
        return []
    names = "; ".join(m for _, m in mine[:5]) + ("; ..." if len(mine) > 5 else "")
    return [f"{len(mine)} invalid record(s) left out, their cells incomplete: {names}"]


def breakdown(
    records: Sequence[Mapping[str, Any]],
    columns: Sequence[Column],
    expected: Mapping[str, Mapping[str, int]] | None,
    by: str,
    title: str = "",
) -> Table:
    """One block of rows per case / identity / motion (means over that group's cases), ranked within it."""
    if by not in BREAKDOWNS:
        raise ConfigError(f"breakdown by {by!r}: choose one of {', '.join(BREAKDOWNS)}")
    planned = planned_cases(records, expected)
    case_info = {r["case_id"]: r for r in records}

    def group_of(case_id: str) -> str:
        if by == "case":
            return case_id
        rec = case_info.get(case_id)
        if rec is not None:
            return rec[by]
        ident, _, motion = case_id.partition("__")
        return ident if by == "identity" else motion

    groups: dict[str, list[str]] = {}
    for case_id in planned:
        groups.setdefault(group_of(case_id), []).append(case_id)
    labels = sorted({r["method"] for r in records}, key=row_order_key(records))
    variants = method_variants(records)
    out = Table(title, list(columns), [], {}, sum(planned.values()), id=f"per_{by}", group_kind=by)
    names = {label: row_name(label, variants[label]) for label in labels}
    for group in sorted(groups):
        sub = aggregate(records, columns, expected, rows=labels, cases=groups[group], display=names)
        for label in labels:
            row = f"{group} | {label}"
            out.rows.append(row)
            out.display[row] = names[label]
            if label in sub.dataset_dd:
                out.dataset_dd[row] = sub.dataset_dd[label]
            out.methods[row] = label
            out.variants[row] = variants[label].key
            out.groups[row] = group
            out.expected_rows[row] = sub.expected_videos
            for f in column_fields(list(columns)) + sub.extra_fields:
                out.cells[(row, f)] = sub.cells[(label, f)]
        out.extra_fields = sub.extra_fields
        out.mixed_versions = sub.mixed_versions  # of every case's records: the same each block
        out.notes += [n for n in sub.notes if n not in out.notes]  # motion fidelity's, versions
    out.notes.append(f"one block per {by}; best/second marked within each block")
    return out
