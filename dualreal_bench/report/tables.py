"""A run's report: the paper's Tables 1-3, breakdowns, and the published numbers beside them.

Which table a row lands in is read from its variant key (:mod:`.variants`) and the paper's
table layout (:mod:`.paper`), never parsed from its label nor from a method's options:

* Table 1, all methods: every variant that is neither one of Table 2's ablations nor a
  non-reference point of Table 3's sweep, and the proposed method as the paper runs it
  (DualReal: dual-aware training, StageBlender controller, n = 7 weight groups; a backbone on
  which n = 7 cannot run shows the run with the largest n, and says so);
* Table 2, ablations: each variant that is a published ablation, or one with more options
  set (``dualreal[controller=false,steps_scale=0.1]`` is the controller ablation of a
  shortened run), beside the reference;
* Table 3, the sweep (group cardinality): every other variant of the proposed method, at the
  value of the swept option its key carries (``dualreal[num_groups=2]`` is n = 2, whatever the
  backbone; ``dualreal`` and ``dualreal[steps_scale=0.1]`` are the paper's n = 7), when the
  run has more than one value.

Every row is printed under its variant key (:func:`.variants.row_name`), so a reader can tell
from the table which config produced it. Published numbers attach to rows by equal variant
keys: ``lora[fusion=delta_sum]`` or a shortened ``dualreal[steps_scale=0.1]`` is never paired
with the paper's row; with ``--compare-paper`` a published row the run has no measured row of
(MotionBooth before it has run) is shown with empty measured cells.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import ConfigError, DataError
from ..store import ResultStore, expected_videos
from .aggregate import Cell, Table, aggregate, load_records, planned_cases
from .columns import Column, column_fields, metric_columns
from .paper import Layout, PaperResults, load_paper_results, row_order_key, shipped_layout
from .variants import Variant, method_variants, parse_variant_key, row_name

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


# ---- which rows make which table ----------------------------------------------------------------


def _sortable(value: Any) -> tuple:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return (0, value, "")
    return (1, 0, json.dumps(value, sort_keys=True))


def _reference_rows(
    labels: Sequence[str], variants: Mapping[str, Variant], layout: Layout
) -> tuple[list[str], Any]:
    """The rows standing for the proposed method as the paper runs it, and their sweep value:
    the paper's value where the run has it, else the largest the run has."""
    values = {lb: layout.sweep_value(variants[lb]) for lb in labels}
    swept = sorted({v for v in values.values() if v is not None}, key=_sortable)
    if layout.sweep is None or not swept:
        return [lb for lb in labels if variants[lb].key == layout.proposed.key], None
    ref = layout.sweep.reference_value if layout.sweep.reference_value in swept else swept[-1]
    return [lb for lb in labels if values[lb] == ref], ref


def _ablation_rows(
    labels: Sequence[str], variants: Mapping[str, Variant], layout: Layout, exclude: set[str]
) -> list[tuple[str, str]]:
    """(label, shown name) of Table 2's ablations, in the paper's row order: the first
    published ablation each variant is (or extends with more options set)."""
    found: list[tuple[int, int, str, str]] = []
    for pos, lb in enumerate(labels):
        if lb in exclude:
            continue
        for i, (ablation, name) in enumerate(layout.ablations):
            if variants[lb].extends(ablation):
                found.append((i, pos, lb, f"{name}: {row_name(lb, variants[lb])}"))
                break
    return [(lb, shown) for _, _, lb, shown in sorted(found)]


def split_tables(
    records: Sequence[Mapping[str, Any]], layout: Layout | None = None
) -> dict[str, list[tuple[str, str]]]:
    """table id -> [(method label, shown name)] for Tables 1-3 (empty lists: not applicable)."""
    layout = layout or shipped_layout()
    variants = method_variants(records)
    labels = sorted(variants, key=row_order_key(records, layout))
    reference, _ = _reference_rows(labels, variants, layout)
    t2 = _ablation_rows(labels, variants, layout, set(reference))
    if t2:
        t2 += [(lb, f"{layout.full_label}: {row_name(lb, variants[lb])}") for lb in reference]
    swept = {lb: layout.sweep_value(variants[lb]) for lb in labels}
    swept = {lb: v for lb, v in swept.items() if v is not None}
    t3: list[tuple[str, str]] = []
    if layout.sweep is not None and len({json.dumps(v) for v in swept.values()}) > 1:
        t3 = [
            (lb, f"{layout.sweep.label(swept[lb])}: {row_name(lb, variants[lb])}")
            for lb in sorted(swept, key=lambda lb: (_sortable(swept[lb]), lb))
        ]
    ablations = {lb for lb, _ in t2}
    t1 = [
        (lb, row_name(lb, variants[lb]))
        for lb in labels
        if lb in reference or (lb not in swept and lb not in ablations)
    ]
    return {"table1": t1, "table2": t2, "table3": t3}


def _method_notes(table: Table, layout: Layout) -> list[str]:
    """What the published file says a table with a row of a method must say (DreamVideo: the
    paper's ran on another backbone), once per method."""
    names = dict.fromkeys(parse_variant_key(table.variants[r]).name for r in table.rows)
    return [f"{name}: {layout.method_notes[name]}" for name in names if name in layout.method_notes]


def _reference_note(records: Sequence[Mapping[str, Any]], layout: Layout) -> str | None:
    """Table 1's note when the run has the proposed method only with another sweep value."""
    variants = method_variants(records)
    labels = sorted(variants, key=row_order_key(records, layout))
    _, value = _reference_rows(labels, variants, layout)
    if layout.sweep is None or value is None or value == layout.sweep.reference_value:
        return None
    return layout.sweep.without_reference


# ---- the published numbers --------------------------------------------------------------------


def attach_paper(
    table: Table,
    paper: PaperResults,
    suite: str | None,
    profile: str | None,
    layout: Layout | None = None,
) -> None:
    """Put the published values beside ``table``'s rows (by variant key), add the published
    rows the run has no measured row of (empty measured cells), and say what they are."""
    table.paper = {}
    if not paper.transcribed:
        table.notes.append(
            f"published numbers: {paper.status} ({paper.path.name}); no comparison made"
        )
        return
    spec = paper.tables.get(table.id) or {}
    for row in table.rows:
        found = paper.values(table.id, table.variants.get(row, row))
        if found is not None:
            table.paper_names[row], table.paper[row] = found
    known = set(table.notes)
    _add_unmeasured(table, paper, layout or paper.layout)
    table.notes += [n for n in _method_notes(table, layout or paper.layout) if n not in known]
    table.paper_dataset_dd = paper.dataset_dynamic_degree(table.id)
    where = f"{paper.source.get('citation', 'the paper')}, {spec.get('source_table', table.id)}"
    table.notes.append(f"paper: published values ({where}); Δ = measured − paper")
    if spec.get("caption"):
        table.notes.append(f"paper's caption: {spec['caption']}")
    for row in table.rows:
        published = paper.row(table.id, table.variants.get(row, row)) or {}
        for field, note in (published.get("notes") or {}).items():
            table.notes.append(f"paper, {published.get('paper_name')}, {field}: {note}")
    if spec.get("suite") and suite and spec["suite"] != suite:
        table.notes.append(
            f"measured on suite {suite!r}, published on suite {spec['suite']!r}: "
            "different cases, so Δ is not a reproduction check"
        )
    if profile == "tiny":
        table.notes.append(
            "tiny profile: Δ against the paper is meaningless (random-initialised models)"
        )
    missing = [table.label(r) for r in table.rows if r not in table.paper]
    if missing:
        table.notes.append(f"no published row of the same variant for: {', '.join(missing)}")
    if table.unmeasured:
        names = [table.label(r) for r in table.rows if r in table.unmeasured]
        table.notes.append(
            f"published rows not run here (empty measured cells): {', '.join(names)}"
        )


def _add_unmeasured(table: Table, paper: PaperResults, layout: Layout) -> None:
    """A row for each published variant of the table that no measured row is: empty measured
    cells beside the published values. Table 1 keeps the paper's row order."""
    have = set(table.variants.values())
    fields = [*column_fields(table.columns), *table.extra_fields]
    for key in paper.published_variants(table.id):
        if key in have:
            continue
        row = f"paper:{key}"
        table.rows.append(row)
        table.unmeasured.add(row)
        table.display[row] = key
        table.methods[row] = None
        table.variants[row] = key
        table.expected_rows[row] = 0
        for f in fields:
            table.cells[(row, f)] = Cell(None, 0, 0, False)
        table.paper_names[row], table.paper[row] = paper.values(table.id, key)
    if table.id == "table1" and table.unmeasured:
        position = {r: i for i, r in enumerate(table.rows)}
        table.rows.sort(
            key=lambda r: (
                layout.order_key(
                    table.methods.get(r) or table.variants[r],
                    parse_variant_key(table.variants[r]),
                ),
                position[r],
            )
        )


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
        )
        table.id = table_id
        table.display = dict(rows)
        table.variants = {r: variants[r].key for r, _ in rows}
        table.notes += run_notes(info)
        note = _reference_note(records, layout) if table_id == "table1" else None
        if note:
            table.notes.append(note)
        table.notes += _method_notes(table, layout)
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
    for group in sorted(groups):
        sub = aggregate(records, columns, expected, rows=labels, cases=groups[group])
        for label in labels:
            row = f"{group} | {label}"
            out.rows.append(row)
            out.display[row] = row_name(label, variants[label])
            if label in sub.dataset_dd:
                out.dataset_dd[row] = sub.dataset_dd[label]
            out.methods[row] = label
            out.variants[row] = variants[label].key
            out.groups[row] = group
            out.expected_rows[row] = sub.expected_videos
            for f in column_fields(list(columns)) + sub.extra_fields:
                out.cells[(row, f)] = sub.cells[(label, f)]
        out.extra_fields = sub.extra_fields
        out.notes += [n for n in sub.notes if n not in out.notes]  # motion fidelity's
    out.notes.append(f"one block per {by}; best/second marked within each block")
    return out
