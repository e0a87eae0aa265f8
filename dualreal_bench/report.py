"""Tables from a results store.

Aggregation follows the authors: the mean over a case's videos, then the mean over cases.
Every cell carries the number of videos behind it; a cell whose method has not finished
every expected video (the union of what every shard of the run planned) or whose values are
missing is marked incomplete, never silently averaged as if it were complete.
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from .errors import ConfigError, DataError
from .store import ResultStore, read_json

FORMATS = ("rich", "markdown", "latex", "csv", "json")


@dataclasses.dataclass(frozen=True)
class Column:
    field: str
    label: str
    higher_is_better: bool | None  # None: closeness to the reference is what counts (shown, not ranked)
    digits: int = 4


def metric_columns() -> list[Column]:
    """Table 1's columns, in the paper's order, with directions from the metric registry."""
    from .metrics import METRIC_INFO

    order = ("clip_t", "clip_i", "dino_i", "temporal_flickering", "temporal_consistency",
             "motion_smoothness", "dynamic_degree", "dynamic_degree_dev")
    return [Column(f, METRIC_INFO[f].label, METRIC_INFO[f].higher_is_better) for f in order]


@dataclasses.dataclass
class Cell:
    mean: float | None
    n_videos: int
    n_cases: int
    complete: bool


@dataclasses.dataclass
class Table:
    title: str
    columns: list[Column]
    rows: list[str]  # method labels
    cells: dict[tuple[str, str], Cell]  # (row, field) -> cell
    expected_videos: int
    notes: list[str] = dataclasses.field(default_factory=list)

    def rank_marks(self) -> dict[tuple[str, str], str]:
        """'best' / 'second' per column among complete cells, by the metric's direction."""
        marks: dict[tuple[str, str], str] = {}
        for col in self.columns:
            if col.higher_is_better is None:
                continue
            vals = sorted({round(c.mean, 12) for r in self.rows if (c := self.cells[(r, col.field)]).complete
                           and c.mean is not None}, reverse=col.higher_is_better)
            for r in self.rows:
                c = self.cells[(r, col.field)]
                if not c.complete or c.mean is None:
                    continue
                if vals and round(c.mean, 12) == vals[0]:
                    marks[(r, col.field)] = "best"
                elif len(vals) > 1 and round(c.mean, 12) == vals[1]:
                    marks[(r, col.field)] = "second"
        return marks


def load_records(output_dir: str | Path, run_id: str) -> list[dict[str, Any]]:
    store = ResultStore(output_dir, run_id)
    store.run_info()  # clear error when the run does not exist
    return list(store.iter_records())


def expected_videos(output_dir: str | Path, run_id: str) -> dict[str, dict[str, int]]:
    """method label -> case id -> number of videos every shard planned for it."""
    run_dir = Path(output_dir) / run_id
    out: dict[str, dict[str, int]] = {}
    for path in sorted(run_dir.glob("*/expected/*.json")):
        label = path.parent.parent.name
        for case_id, n in read_json(path).items():
            out.setdefault(label, {})[case_id] = max(n, out.get(label, {}).get(case_id, 0))
    return out


def aggregate(records: Sequence[dict[str, Any]], columns: Sequence[Column],
              expected: dict[str, dict[str, int]] | None = None, title: str = "") -> Table:
    """Mean over each case's videos, then over cases; count and completeness per cell."""
    by_method: dict[str, dict[str, list[dict]]] = {}
    for rec in records:
        by_method.setdefault(rec["method"], {}).setdefault(rec["case_id"], []).append(rec)
    expected = expected or {}
    all_cases: dict[str, int] = {}
    for per_case in expected.values():
        for case_id, n in per_case.items():
            all_cases[case_id] = max(n, all_cases.get(case_id, 0))
    for per_case in by_method.values():
        for case_id, recs in per_case.items():
            all_cases[case_id] = max(len(recs), all_cases.get(case_id, 0))
    total_expected = sum(all_cases.values())
    rows = sorted(by_method, key=lambda m: (m != "base", m))
    cells: dict[tuple[str, str], Cell] = {}
    for method in rows:
        per_case = by_method[method]
        for col in columns:
            case_means, n_videos, complete = [], 0, True
            for case_id, n_exp in all_cases.items():
                vals = [r["metrics"].get(col.field) for r in per_case.get(case_id, [])]
                finite = [float(v) for v in vals if v is not None and math.isfinite(float(v))]
                n_videos += len(finite)
                if len(finite) < n_exp:
                    complete = False
                if finite:
                    case_means.append(sum(finite) / len(finite))
            mean = sum(case_means) / len(case_means) if case_means else None
            cells[(method, col.field)] = Cell(mean, n_videos, len(case_means), complete and mean is not None)
    return Table(title, list(columns), rows, cells, total_expected)


# ---- rendering ------------------------------------------------------------------------------


def _fmt(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def render(table: Table, fmt: str) -> str | Any:
    if fmt not in FORMATS:
        raise ConfigError(f"--format {fmt!r}: choose one of {', '.join(FORMATS)}")
    return {"rich": _render_rich, "markdown": _render_markdown, "latex": _render_latex,
            "csv": _render_csv, "json": _render_json}[fmt](table)


def _cell_text(table: Table, row: str, col: Column, marks: dict, style: str) -> str:
    cell = table.cells[(row, col.field)]
    text = _fmt(cell.mean, col.digits)
    mark = marks.get((row, col.field))
    if style == "markdown":
        text = f"**{text}**" if mark == "best" else f"<u>{text}</u>" if mark == "second" else text
    elif style == "latex":
        text = f"\\textbf{{{text}}}" if mark == "best" else f"\\underline{{{text}}}" if mark == "second" else text
    elif style == "rich":
        text = f"[bold green]{text}[/]" if mark == "best" else f"[underline]{text}[/]" if mark == "second" else text
    if not cell.complete and cell.mean is not None:
        text += "†"
    return text


def _n_videos(table: Table, row: str) -> str:
    counts = {table.cells[(row, c.field)].n_videos for c in table.columns}
    return f"{max(counts)}/{table.expected_videos}"


def _header(col: Column) -> str:
    arrow = "" if col.higher_is_better is None else (" ↑" if col.higher_is_better else " ↓")
    return col.label + arrow


def _footer(table: Table) -> list[str]:
    notes = ["best in bold, second underlined; † incomplete (fewer videos than expected): not ranked",
             "mean over each case's videos, then over cases; n = videos behind the row"]
    return notes + table.notes


def _render_rich(table: Table) -> Any:
    from rich.table import Table as RichTable

    marks = table.rank_marks()
    out = RichTable(title=table.title, caption="\n".join(_footer(table)))
    out.add_column("method")
    for col in table.columns:
        out.add_column(_header(col), justify="right")
    out.add_column("n", justify="right")
    for row in table.rows:
        out.add_row(row, *(_cell_text(table, row, c, marks, "rich") for c in table.columns), _n_videos(table, row))
    return out


def _render_markdown(table: Table) -> str:
    marks = table.rank_marks()
    head = ["method", *(_header(c) for c in table.columns), "n"]
    lines = [f"**{table.title}**", "", "| " + " | ".join(head) + " |",
             "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|"]
    for row in table.rows:
        cells = [row.replace("|", "\\|"), *(_cell_text(table, row, c, marks, "markdown") for c in table.columns),
                 _n_videos(table, row)]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [""] + [f"_{n}_" for n in _footer(table)]
    return "\n".join(lines) + "\n"


def _latex_escape(text: str) -> str:
    for a, b in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("_", r"\_"), ("#", r"\#"),
                 ("[", "{[}"), ("]", "{]}"), ("↑", r"$\uparrow$"), ("↓", r"$\downarrow$"), ("†", r"$^\dagger$")):
        text = text.replace(a, b)
    return text


def _render_latex(table: Table) -> str:
    marks = table.rank_marks()
    cols = "l" + "r" * (len(table.columns) + 1)
    lines = ["\\begin{table}[t]", "\\centering", f"\\caption{{{_latex_escape(table.title)}}}",
             f"\\begin{{tabular}}{{{cols}}}", "\\toprule",
             " & ".join(["Method", *(_latex_escape(_header(c)) for c in table.columns), "n"]) + " \\\\",
             "\\midrule"]
    for row in table.rows:
        cells = [_latex_escape(row)]
        for c in table.columns:
            text = _cell_text(table, row, c, marks, "latex")
            cells.append(text.replace("†", "$^\\dagger$"))
        cells.append(_n_videos(table, row))
        lines.append(" & ".join(cells) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}", "\\end{table}"]
    return "\n".join(lines) + "\n"


def _flat_rows(table: Table) -> list[dict[str, Any]]:
    marks = table.rank_marks()
    rows = []
    for row in table.rows:
        out: dict[str, Any] = {"method": row}
        for c in table.columns:
            cell = table.cells[(row, c.field)]
            out[c.field] = cell.mean
            out[f"{c.field}_n"] = cell.n_videos
            out[f"{c.field}_complete"] = cell.complete
            out[f"{c.field}_rank"] = marks.get((row, c.field))
        out["expected_videos"] = table.expected_videos
        rows.append(out)
    return rows


def _render_csv(table: Table) -> str:
    import csv

    rows = _flat_rows(table)
    buf = io.StringIO()
    if rows:
        writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return buf.getvalue()


def _render_json(table: Table) -> str:
    columns = [dataclasses.asdict(c) for c in table.columns]
    return json.dumps({"title": table.title, "columns": columns, "rows": _flat_rows(table),
                       "notes": _footer(table)}, indent=2) + "\n"


def build_table(output_dir: str | Path, run_id: str, methods: Iterable[str] | None = None) -> Table:
    records = load_records(output_dir, run_id)
    if not records:
        raise DataError(f"{Path(output_dir) / run_id}: no records yet (has `dualreal-bench run` evaluated anything?)")
    if methods:
        wanted = set(methods)
        records = [r for r in records if r["method"] in wanted]
    info = ResultStore(output_dir, run_id).run_info()
    table = aggregate(records, metric_columns(), expected_videos(output_dir, run_id),
                      title=f"{run_id}: suite {info.get('suite')}, profile {info.get('profile')}")
    if info.get("profile") == "tiny":
        table.notes.append("tiny profile: random-initialised models; a pipeline check, not a measurement")
    return table
