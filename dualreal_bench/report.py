"""Tables from a results store: the paper's Tables 1-3, breakdowns, and the published numbers.

Aggregation follows the authors: the mean over a case's videos, then the mean over cases.
Every cell carries the number of videos behind it; a cell whose method has not finished
every expected video (the union of what every shard of the run planned) or whose values are
missing is marked incomplete (†) and is never ranked as if it were complete.

Which table a method lands in is read from the records' resolved configs
(``configs.method.name`` / ``configs.method.config``), not parsed from its label:

* Table 1, all methods: every non-DualReal method, and DualReal as the paper runs it
  (dual-aware training, StageBlender controller, n = 7 weight groups);
* Table 2, ablations: ``dual_aware=false``, ``controller=false``, ``num_groups=1``, beside
  the full DualReal;
* Table 3, group cardinality: the full DualReal for every ``num_groups`` in the run.

Published numbers (``benchmark/paper_results.json``) attach to rows by the same variant key
(``dualreal``, ``dualreal[controller=false]``, ``lora``, ...).
"""

from __future__ import annotations

import dataclasses
import html
import io
import json
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .errors import ConfigError, DataError
from .io import read_json
from .store import ResultStore, expected_videos

logger = logging.getLogger(__name__)

FORMATS = ("rich", "markdown", "latex", "csv", "json")

#: Table 1's metric columns, in the paper's order; dynamic degree carries its deviation.
TABLE_FIELDS = (
    "clip_t",
    "clip_i",
    "dino_i",
    "temporal_flickering",
    "temporal_consistency",
    "motion_smoothness",
    "dynamic_degree",
)
#: (field shown, field in parentheses and used for ranking)
PAIRED_FIELDS = {"dynamic_degree": "dynamic_degree_dev"}
#: the paper's number of StageBlender weight groups (n = 7 for CogVideoX-5B's 42 blocks)
PAPER_NUM_GROUPS = 7
#: Table 1's row order for the bundled methods (others follow alphabetically, DualReal last)
METHOD_ORDER = ("base", "lora", "sequential", "dreamvideo")
PAPER_RESULTS_FILE = "paper_results.json"
#: fields aggregated into JSON/CSV but not shown in the printed tables (VBench's boolean
#: dynamic degree: averaged, the share of videos VBench calls moving)
EXTRA_FIELDS = ("dynamic_degree_bool",)


# ---- metric metadata ------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class MetricMeta:
    label: str
    higher_is_better: bool | None


def metric_meta(field: str) -> MetricMeta:
    """Label and direction of ``field`` from the metric registry (:func:`dualreal_bench.metrics.get_metric`,
    which raises RegistryError with a "did you mean" for an unknown name)."""
    from .metrics import get_metric

    spec = get_metric(field)
    return MetricMeta(spec.label, spec.higher_is_better)


# ---- tables -------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Column:
    field: str
    label: str
    higher_is_better: bool | None  # None: shown, not ranked
    digits: int = 4
    paren: str | None = None  # a second field shown in parentheses ("0.5120 (0.0340)")
    rank_by: str | None = None  # the field whose direction ranks the column (default: field)

    @property
    def rank_field(self) -> str:
        return self.rank_by or self.field

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(f for f in (self.field, self.paren, self.rank_by) if f))


def metric_columns() -> list[Column]:
    """Table 1's columns in the paper's order, directions from the metric registry.

    Dynamic degree is one column showing the degree with its deviation from the motion's
    reference clips in parentheses, ranked by the deviation.
    """
    cols = []
    for f in TABLE_FIELDS:
        meta = metric_meta(f)
        if f in PAIRED_FIELDS:
            dev = PAIRED_FIELDS[f]
            dmeta = metric_meta(dev)
            short = dmeta.label.removeprefix(meta.label + " ")  # "DD" + "DD dev." -> "DD (dev.)"
            cols.append(
                Column(
                    f,
                    f"{meta.label} ({short})",
                    dmeta.higher_is_better,
                    paren=dev,
                    rank_by=dev,
                )
            )
        else:
            cols.append(Column(f, meta.label, meta.higher_is_better))
    return cols


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
    methods: dict[str, str] = dataclasses.field(default_factory=dict)  # row -> method label
    variants: dict[str, str] = dataclasses.field(default_factory=dict)  # row -> variant key
    groups: dict[str, str] = dataclasses.field(default_factory=dict)  # row -> group (ranked within)
    group_kind: str | None = None  # "case" / "identity" / "motion"
    expected_rows: dict[str, int] = dataclasses.field(
        default_factory=dict
    )  # row -> expected videos
    paper: dict[str, dict[str, float | None]] | None = None  # row -> field -> published value
    paper_names: dict[str, str] = dataclasses.field(default_factory=dict)  # row -> paper's row name
    extra_fields: list[str] = dataclasses.field(default_factory=list)  # in JSON/CSV only

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
                if col.higher_is_better is None:
                    continue
                rank_cells = {r: self.cells[(r, col.rank_field)] for r in rows}
                ok = {
                    r: round(c.mean, col.digits)
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


def load_records(output_dir: str | Path, run_id: str) -> list[dict[str, Any]]:
    store = ResultStore(output_dir, run_id)
    store.run_info()  # clear error when the run does not exist
    return list(store.iter_records())


def _planned_cases(
    records: Sequence[dict[str, Any]], expected: Mapping[str, Mapping[str, int]] | None
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


def _finite(values: Iterable[Any]) -> list[float]:
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


def per_case_means(records: Sequence[dict[str, Any]], field: str) -> dict[str, dict[str, float]]:
    """method label -> case id -> mean of ``field`` over that case's videos (finite values only)."""
    acc: dict[str, dict[str, list[float]]] = {}
    for rec in records:
        acc.setdefault(rec["method"], {}).setdefault(rec["case_id"], []).extend(
            _finite([rec.get("metrics", {}).get(field)])
        )
    return {m: {c: sum(v) / len(v) for c, v in per.items() if v} for m, per in acc.items()}


def _cell(per_case: Mapping[str, list[dict]], field: str, cases: Mapping[str, int]) -> Cell:
    case_means, n_videos, complete = [], 0, True
    for case_id, n_exp in cases.items():
        finite = _finite(r.get("metrics", {}).get(field) for r in per_case.get(case_id, []))
        n_videos += len(finite)
        if len(finite) < n_exp:
            complete = False
        if finite:
            case_means.append(sum(finite) / len(finite))
    if not case_means:
        return Cell(None, n_videos, 0, False)
    mean = sum(case_means) / len(case_means)
    std = math.sqrt(sum((m - mean) ** 2 for m in case_means) / len(case_means))
    return Cell(mean, n_videos, len(case_means), complete, std)


def _fields(columns: Sequence[Column]) -> list[str]:
    return list(dict.fromkeys(f for c in columns for f in c.fields))


def aggregate(
    records: Sequence[dict[str, Any]],
    columns: Sequence[Column],
    expected: dict[str, dict[str, int]] | None = None,
    title: str = "",
    rows: Sequence[str] | None = None,
    cases: Iterable[str] | None = None,
) -> Table:
    """Mean over each case's videos, then over cases; count and completeness per cell.

    ``rows``: method labels to show, in this order (default: every label in ``records``).
    ``cases``: restrict to these case ids (default: every case planned or recorded).
    """
    by_method: dict[str, dict[str, list[dict]]] = {}
    for rec in records:
        by_method.setdefault(rec["method"], {}).setdefault(rec["case_id"], []).append(rec)
    planned = _planned_cases(records, expected)
    if cases is not None:
        wanted = set(cases)
        planned = {c: n for c, n in planned.items() if c in wanted}
    rows = list(rows) if rows is not None else sorted(by_method, key=_row_order_key(records))
    shown = _fields(columns)
    extra = [
        f
        for f in EXTRA_FIELDS
        if f not in shown and any(f in r.get("metrics", {}) for r in records)
    ]
    cells = {(m, f): _cell(by_method.get(m, {}), f, planned) for m in rows for f in shown + extra}
    return Table(
        title,
        list(columns),
        rows,
        cells,
        sum(planned.values()),
        methods={m: m for m in rows},
        extra_fields=extra,
    )


# ---- variants: which table a method belongs to ----------------------------------------------


@dataclasses.dataclass(frozen=True)
class Variant:
    key: str  # "lora", "dualreal", "dualreal[controller=false]", "dualreal[num_groups=2]", ...
    name: str  # the method's registered name ("dualreal")
    ablation: str | None = None  # "dual_aware" / "controller" / None
    num_groups: int | None = None  # full DualReal only


def variant_of(method_name: str | None, config: Mapping[str, Any] | None, label: str,
               resolved: Mapping[str, Any] | None = None) -> Variant:
    """The paper variant a method's resolved config is (DualReal ablations read from its config).

    ``resolved`` holds what the method resolved on its backbone (``Method.describe()``): an
    unset ``num_groups`` means "7 where it divides the block count", so only the method knows.
    """
    name = method_name or label
    if name != "dualreal":
        return Variant(name, name)
    config = {**(config or {}), **{k: v for k, v in (resolved or {}).items() if v is not None}}
    dual_aware = bool(config.get("dual_aware", True))
    controller = config.get("controller")
    use_controller = dual_aware if controller is None else bool(controller)
    if not dual_aware:
        return Variant("dualreal[dual_aware=false]", name, "dual_aware")
    if not use_controller:
        return Variant("dualreal[controller=false]", name, "controller")
    n = int(config.get("num_groups") or PAPER_NUM_GROUPS)
    return Variant(
        "dualreal" if n == PAPER_NUM_GROUPS else f"dualreal[num_groups={n}]", name, None, n
    )


def method_variants(records: Sequence[dict[str, Any]]) -> dict[str, Variant]:
    """method label -> its variant, from the first record of each label."""
    out: dict[str, Variant] = {}
    for rec in records:
        label = rec["method"]
        if label not in out:
            method = (rec.get("configs") or {}).get("method") or {}
            out[label] = variant_of(
                rec.get("method_name") or method.get("name"), method.get("config"), label,
                method.get("resolved"),
            )
    return out


def _row_order_key(records: Sequence[dict[str, Any]]):
    variants = method_variants(records)

    def key(label: str) -> tuple:
        v = variants.get(label, Variant(label, label))
        if v.name in METHOD_ORDER:
            return (0, METHOD_ORDER.index(v.name), label)
        return (2 if v.name == "dualreal" else 1, 0, v.name, v.num_groups or 0, label)

    return key


ABLATION_NAMES = {
    "dual_aware": "w/o dual-aware adaptation",
    "controller": "w/o StageBlender controller",
    "groups": "w/o weight groups (n = 1)",
    "full": "DualReal (full)",
}


def split_tables(records: Sequence[dict[str, Any]]) -> dict[str, list[tuple[str, str]]]:
    """table id -> [(method label, shown name)] for Tables 1-3 (empty lists: not applicable)."""
    variants = method_variants(records)
    labels = sorted(variants, key=_row_order_key(records))
    full = [
        lb for lb in labels if variants[lb].name == "dualreal" and variants[lb].ablation is None
    ]
    ns = sorted({variants[lb].num_groups for lb in full})
    ref_n = PAPER_NUM_GROUPS if PAPER_NUM_GROUPS in ns else (max(ns) if ns else None)
    reference = [lb for lb in full if variants[lb].num_groups == ref_n]
    t1 = [(lb, lb) for lb in labels if variants[lb].name != "dualreal" or lb in reference]
    t2: list[tuple[str, str]] = []
    for kind in ("dual_aware", "controller"):
        t2 += [
            (lb, f"{ABLATION_NAMES[kind]} ({lb})") for lb in labels if variants[lb].ablation == kind
        ]
    if ref_n != 1:
        t2 += [
            (lb, f"{ABLATION_NAMES['groups']} ({lb})")
            for lb in full
            if variants[lb].num_groups == 1
        ]
    if t2:
        t2 += [(lb, f"{ABLATION_NAMES['full']} ({lb})") for lb in reference]
    t3 = []
    if len(ns) > 1:
        t3 = [
            (lb, f"n = {variants[lb].num_groups} ({lb})")
            for lb in sorted(full, key=lambda lb: (variants[lb].num_groups, lb))
        ]
    return {"table1": t1, "table2": t2, "table3": t3}


TABLE_TITLES = {
    "table1": "Table 1: all methods",
    "table2": "Table 2: ablations",
    "table3": "Table 3: StageBlender group cardinality n",
}


# ---- the published numbers -------------------------------------------------------------------


@dataclasses.dataclass
class PaperResults:
    status: str
    source: dict[str, Any]
    tables: dict[
        str, dict[str, Any]
    ]  # table id -> {"caption", "suite", "rows": [{"key", "paper_name", "values"}]}
    path: Path

    @property
    def transcribed(self) -> bool:
        return self.status == "transcribed"

    def values(
        self, table_id: str, variant: str
    ) -> tuple[str | None, dict[str, float | None]] | None:
        """(paper's row name, field -> value in the benchmark's units) or None when absent."""
        table = self.tables.get(table_id) or {}
        scale = table.get("scale") or {}
        for row in table.get("rows", []):
            if row.get("key") == variant:
                vals = {
                    f: (None if v is None else float(v) * float(scale.get(f, 1.0)))
                    for f, v in (row.get("values") or {}).items()
                }
                return row.get("paper_name"), vals
        return None


def paper_results_path() -> Path:
    from .spec import benchmark_dir

    return benchmark_dir() / PAPER_RESULTS_FILE


def load_paper_results(path: str | Path | None = None) -> PaperResults:
    """The published numbers shipped in ``benchmark/paper_results.json`` (or ``path``)."""
    path = Path(path) if path is not None else paper_results_path()
    if not path.is_file():
        raise DataError(f"{path}: published results file not found")
    data = read_json(path)
    if not isinstance(data, dict) or "tables" not in data or "status" not in data:
        raise DataError(f"{path}: not a published-results file (needs 'status' and 'tables')")
    return PaperResults(str(data["status"]), data.get("source") or {}, data["tables"], path)


def attach_paper(table: Table, paper: PaperResults, suite: str | None, profile: str | None) -> None:
    """Put the published values beside ``table``'s rows (by variant key) and say what they are."""
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
    where = f"{paper.source.get('citation', 'the paper')}, {spec.get('source_table', table.id)}"
    table.notes.append(f"paper: published values ({where}); Δ = measured − paper")
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
        table.notes.append(f"no published row for: {', '.join(missing)}")


# ---- building a run's report ------------------------------------------------------------------


@dataclasses.dataclass
class Report:
    run_id: str
    suite: str | None
    profile: str | None
    tables: list[Table]
    records: list[dict[str, Any]]
    run_dir: Path
    paper: PaperResults | None = None


def _run_records(
    output_dir: str | Path, run_id: str, methods: Iterable[str] | None
) -> list[dict[str, Any]]:
    records = load_records(output_dir, run_id)
    if not records:
        raise DataError(
            f"{Path(output_dir) / run_id}: no records yet (has `dualreal-bench run` evaluated anything?)"
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


def build_table(output_dir: str | Path, run_id: str, methods: Iterable[str] | None = None) -> Table:
    """Every method of the run in one table (Table 1's columns)."""
    records = _run_records(output_dir, run_id, methods)
    info = ResultStore(output_dir, run_id).run_info()
    table = aggregate(
        records,
        metric_columns(),
        expected_videos(output_dir, run_id),
        title=f"{run_id}: suite {info.get('suite')}, profile {info.get('profile')}",
    )
    table.notes += _run_notes(info)
    return table


def _run_notes(info: Mapping[str, Any]) -> list[str]:
    if info.get("profile") == "tiny":
        return ["tiny profile: random-initialised models; a pipeline check, not a measurement"]
    return []


BREAKDOWNS = ("case", "identity", "motion")


def build_report(
    output_dir: str | Path,
    run_id: str,
    methods: Iterable[str] | None = None,
    *,
    compare_paper: bool = False,
    paper_file: str | Path | None = None,
    breakdowns: Sequence[str] = (),
) -> Report:
    """Tables 1-3 of one run (those that apply), optional breakdowns and published numbers."""
    records = _run_records(output_dir, run_id, methods)
    info = ResultStore(output_dir, run_id).run_info()
    suite, profile = info.get("suite"), info.get("profile")
    expected = expected_videos(output_dir, run_id)
    columns = metric_columns()
    variants = method_variants(records)
    paper = load_paper_results(paper_file) if compare_paper else None
    tables = []
    for table_id, rows in split_tables(records).items():
        if not rows:
            continue
        table = aggregate(
            records,
            columns,
            expected,
            rows=[r for r, _ in rows],
            title=f"{TABLE_TITLES[table_id]} — run {run_id}, suite {suite}, profile {profile}",
        )
        table.id = table_id
        table.display = dict(rows)
        table.variants = {r: variants[r].key for r, _ in rows}
        table.notes += _run_notes(info)
        if table_id == "table1" and any(
            variants[r].name == "dualreal"
            and variants[r].num_groups not in (None, PAPER_NUM_GROUPS)
            for r, _ in rows
        ):
            table.notes.append(
                f"no DualReal run with the paper's n = {PAPER_NUM_GROUPS} weight groups; "
                "showing the run with the most groups"
            )
        if paper is not None:
            attach_paper(table, paper, suite, profile)
        tables.append(table)
    for kind in breakdowns:
        tables.append(
            breakdown(
                records,
                columns,
                expected,
                kind,
                title=f"Per {kind} — run {run_id}, suite {suite}, profile {profile}",
            )
        )
    return Report(run_id, suite, profile, tables, records, Path(output_dir) / run_id, paper)


def breakdown(
    records: Sequence[dict[str, Any]],
    columns: Sequence[Column],
    expected: dict[str, dict[str, int]] | None,
    by: str,
    title: str = "",
) -> Table:
    """One block of rows per case / identity / motion (means over that group's cases), ranked within it."""
    if by not in BREAKDOWNS:
        raise ConfigError(f"breakdown by {by!r}: choose one of {', '.join(BREAKDOWNS)}")
    planned = _planned_cases(records, expected)
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
    labels = sorted({r["method"] for r in records}, key=_row_order_key(records))
    variants = method_variants(records)
    out = Table(title, list(columns), [], {}, sum(planned.values()), id=f"per_{by}", group_kind=by)
    for group in sorted(groups):
        sub = aggregate(records, columns, expected, rows=labels, cases=groups[group])
        for label in labels:
            row = f"{group} | {label}"
            out.rows.append(row)
            out.display[row] = label
            out.methods[row] = label
            out.variants[row] = variants[label].key
            out.groups[row] = group
            out.expected_rows[row] = sub.expected_videos
            for f in _fields(columns) + sub.extra_fields:
                out.cells[(row, f)] = sub.cells[(label, f)]
        out.extra_fields = sub.extra_fields
    out.notes.append(f"one block per {by}; best/second marked within each block")
    return out


# ---- rendering -----------------------------------------------------------------------------


def _fmt(value: float | None, digits: int, signed: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def render(table: Table, fmt: str) -> str | Any:
    """One table as ``fmt`` (a rich Table object for "rich", text otherwise)."""
    if fmt not in FORMATS:
        raise ConfigError(f"--format {fmt!r}: choose one of {', '.join(FORMATS)}")
    return {
        "rich": _render_rich,
        "markdown": _render_markdown,
        "latex": _render_latex,
        "csv": _render_csv,
        "json": _render_json,
    }[fmt](table)


def render_report(
    tables: Sequence[Table], fmt: str, meta: Mapping[str, Any] | None = None
) -> str | list:
    """Several tables as one document: rich -> list of rich Tables; JSON/CSV -> one tidy document
    whose rows carry a ``table`` field; Markdown/LaTeX -> the tables one after another."""
    if fmt not in FORMATS:
        raise ConfigError(f"--format {fmt!r}: choose one of {', '.join(FORMATS)}")
    if fmt == "rich":
        return [_render_rich(t) for t in tables]
    if fmt in ("markdown", "latex"):
        return "\n".join(render(t, fmt) for t in tables)
    rows = [row for t in tables for row in _flat_rows(t)]
    if fmt == "csv":
        return _csv_text(rows)
    doc = {**(meta or {}), "tables": [_table_meta(t) for t in tables], "rows": rows}
    return json.dumps(doc, indent=2) + "\n"


def _mark(text: str, mark: str | None, style: str) -> str:
    if not mark:
        return text
    best = mark == "best"
    if style == "markdown":
        return f"**{text}**" if best else f"<u>{text}</u>"
    if style == "latex":
        return f"\\textbf{{{text}}}" if best else f"\\underline{{{text}}}"
    if style == "rich":
        return f"[bold green]{text}[/]" if best else f"[underline]{text}[/]"
    if style == "html":
        return f"<b>{text}</b>" if best else f"<u>{text}</u>"
    return text


def _value_text(table: Table, row: str, col: Column) -> str:
    cell = table.cells[(row, col.field)]
    text = _fmt(cell.mean, col.digits)
    if col.paren:
        text += f" ({_fmt(table.cells[(row, col.paren)].mean, col.digits)})"
    return text


def _cell_text(table: Table, row: str, col: Column, marks: dict, style: str) -> str:
    cell = table.cells[(row, col.field)]
    text = _mark(_value_text(table, row, col), marks.get((row, col.field)), style)
    incomplete = (not cell.complete and cell.mean is not None) or (
        col.paren is not None
        and not table.cells[(row, col.paren)].complete
        and table.cells[(row, col.paren)].mean is not None
    )
    if incomplete:
        text += "$^\\dagger$" if style == "latex" else "†"
    return text


def _paper_text(table: Table, row: str, col: Column, delta: bool) -> str:
    values = (table.paper or {}).get(row)
    if values is None:
        return "-"

    def one(field: str) -> str:
        published = values.get(field)
        if not delta:
            return _fmt(published, col.digits)
        measured = table.cells[(row, field)].mean
        return _fmt(
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


def _footer(table: Table) -> list[str]:
    notes = [
        "best in bold, second underlined; † incomplete (fewer videos than expected): not ranked",
        "mean over each case's videos, then over cases; n = videos behind the row / expected",
    ]
    if any(c.paren for c in table.columns):
        notes.append(
            "dynamic degree: mean (deviation from the motion's reference clips), ranked by the deviation"
        )
    return notes + table.notes


def _body(table: Table, style: str) -> list[tuple[list[str], str]]:
    """[(cells, kind)] with kind "row" / "paper" / "delta": the rows every text renderer prints."""
    marks = table.rank_marks()
    out = []
    for row in table.rows:
        lead = [table.groups.get(row, "")] if table.group_kind else []
        out.append(
            (
                lead
                + [
                    table.label(row),
                    *(_cell_text(table, row, c, marks, style) for c in table.columns),
                    _n_videos(table, row),
                ],
                "row",
            )
        )
        if table.paper and row in table.paper:
            name = table.paper_names.get(row)
            out.append(
                (
                    lead
                    + [
                        "↳ paper" + (f" ({name})" if name else ""),
                        *(_paper_text(table, row, c, False) for c in table.columns),
                        "",
                    ],
                    "paper",
                )
            )
            out.append(
                (
                    lead + ["↳ Δ", *(_paper_text(table, row, c, True) for c in table.columns), ""],
                    "delta",
                )
            )
    return out


def _head(table: Table) -> list[str]:
    lead = [table.group_kind] if table.group_kind else []
    return lead + ["method", *(_header(c) for c in table.columns), "n"]


def _render_rich(table: Table) -> Any:
    from rich.markup import escape
    from rich.table import Table as RichTable

    out = RichTable(title=escape(table.title), caption=escape("\n".join(_footer(table))))
    head = _head(table)
    n_lead = len(head) - len(table.columns) - 1
    for i, name in enumerate(head):
        out.add_column(escape(name), justify="left" if i < n_lead else "right")
    for cells, kind in _body(table, "rich"):
        cells = [escape(c) for c in cells[:n_lead]] + cells[n_lead:]
        out.add_row(*cells, style="dim" if kind != "row" else None)
    return out


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|")


def _render_markdown(table: Table) -> str:
    head = _head(table)
    n_lead = len(head) - len(table.columns) - 1
    lines = [
        f"**{table.title}**",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "|".join(["---"] * n_lead + ["---:"] * (len(head) - n_lead)) + "|",
    ]
    for cells, _ in _body(table, "markdown"):
        cells = [_md_escape(c) for c in cells[:n_lead]] + cells[n_lead:]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [""] + [f"_{n}_" for n in _footer(table)]
    return "\n".join(lines) + "\n"


def latex_escape(text: str) -> str:
    out = []
    for ch in text:
        out.append(
            {
                "\\": r"\textbackslash{}",
                "&": r"\&",
                "%": r"\%",
                "_": r"\_",
                "#": r"\#",
                "$": r"\$",
                "{": r"\{",
                "}": r"\}",
                "~": r"\textasciitilde{}",
                "^": r"\^{}",
                "[": "{[}",
                "]": "{]}",
                "↑": r"$\uparrow$",
                "↓": r"$\downarrow$",
                "†": r"$^\dagger$",
                "↳": r"$\hookrightarrow$",
                "Δ": r"$\Delta$",
                "−": "-",
                "—": "---",
                "·": r"$\cdot$",
            }.get(ch, ch)
        )
    return "".join(out)


def _render_latex(table: Table) -> str:
    head = _head(table)
    n_lead = len(head) - len(table.columns) - 1
    cols = "l" * n_lead + "r" * (len(head) - n_lead)
    lines = [
        "\\begin{table}[t]",
        "\\centering",
        f"\\caption{{{latex_escape(table.title)}}}",
        f"\\begin{{tabular}}{{{cols}}}",
        "\\toprule",
        " & ".join(latex_escape(h) for h in head) + " \\\\",
        "\\midrule",
    ]
    for cells, _ in _body(table, "latex"):
        lead = [latex_escape(c) for c in cells[:n_lead]]
        rest = [c if "\\" in c else latex_escape(c) for c in cells[n_lead:]]
        lines.append(" & ".join(lead + rest) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}", "\\end{table}"]
    lines += [f"% {n}" for n in _footer(table)]
    return "\n".join(lines) + "\n"


def render_html_table(table: Table, notes: Sequence[str] | None = None) -> str:
    """``table`` as an HTML ``<table>`` (used by the static HTML report), followed by its
    footnotes: ``notes`` (default: all of them; the HTML page passes only those no other
    table of its section has, and lists the shared ones once)."""
    head = _head(table)
    n_lead = len(head) - len(table.columns) - 1
    parts = [
        f"<table class='metrics' id='{html.escape(table.id)}'>",
        f"<caption>{html.escape(table.title)}</caption>",
        "<thead><tr>",
    ]
    parts += [f"<th>{html.escape(h)}</th>" for h in head]
    parts.append("</tr></thead><tbody>")
    for cells, kind in _body(table, "html"):
        tds = [f"<td class='name'>{html.escape(c)}</td>" for c in cells[:n_lead]]
        tds += [f"<td class='num'>{_html_cell(c)}</td>" for c in cells[n_lead:]]
        parts.append(f"<tr class='{kind}'>" + "".join(tds) + "</tr>")
    parts.append("</tbody></table>")
    notes = _footer(table) if notes is None else list(notes)
    if notes:
        parts.append(
            "<ul class='notes'>" + "".join(f"<li>{html.escape(n)}</li>" for n in notes) + "</ul>"
        )
    return "\n".join(parts)


def _html_cell(text: str) -> str:
    # the only markup in a cell is the best/second mark added by _mark(style="html")
    for tag in ("b", "u"):
        if text.startswith(f"<{tag}>"):
            inner, _, rest = text[len(tag) + 2 :].partition(f"</{tag}>")
            return f"<{tag}>{html.escape(inner)}</{tag}>{html.escape(rest)}"
    return html.escape(text)


def _table_meta(table: Table) -> dict[str, Any]:
    return {
        "id": table.id,
        "title": table.title,
        "group_kind": table.group_kind,
        "columns": [dataclasses.asdict(c) for c in table.columns],
        "notes": _footer(table),
    }


def _flat_rows(table: Table) -> list[dict[str, Any]]:
    marks = table.rank_marks()
    rows = []
    for row in table.rows:
        out: dict[str, Any] = {"method": table.methods.get(row, row)}
        for c in table.columns:
            for f in c.fields:
                cell = table.cells[(row, f)]
                out[f] = cell.mean
                out[f"{f}_n"] = cell.n_videos
                out[f"{f}_complete"] = cell.complete
                out[f"{f}_case_std"] = cell.case_std
            out[f"{c.field}_rank"] = marks.get((row, c.field))
            if table.paper is not None:
                published = table.paper.get(row, {})
                for f in c.fields:
                    p = published.get(f)
                    m = table.cells[(row, f)].mean
                    out[f"{f}_paper"] = p
                    out[f"{f}_delta"] = None if p is None or m is None else m - p
        for f in table.extra_fields:
            cell = table.cells[(row, f)]
            out.update(
                {
                    f: cell.mean,
                    f"{f}_n": cell.n_videos,
                    f"{f}_complete": cell.complete,
                    f"{f}_case_std": cell.case_std,
                }
            )
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


def _csv_text(rows: list[dict[str, Any]]) -> str:
    import csv

    buf = io.StringIO()
    if rows:
        fields = list(dict.fromkeys(k for r in rows for k in r))
        writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return buf.getvalue()


def _render_csv(table: Table) -> str:
    return _csv_text(_flat_rows(table))


def _render_json(table: Table) -> str:
    return json.dumps({**_table_meta(table), "rows": _flat_rows(table)}, indent=2) + "\n"
