"""``dualreal-bench list identities|motions|suites|methods|runs``.

``list methods --options NAME`` prints a method's options (every field of its config class,
with type, default and help): what ``run --set key=value`` accepts. ``list runs`` shows every
run's methods and variants with their completeness (records written / expected) and when the
run was last written to. ``--format json`` prints the same rows as JSON.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .. import spec
from ..config import describe_options, format_value
from ..errors import ConfigError, DataError
from ..method import METHODS, get_method_class
from ..store import ResultStore, list_runs, run_modified, run_status

logger = logging.getLogger(__name__)

WHAT = ("identities", "motions", "suites", "methods", "runs")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "list",
        help="list identities, motions, suites, methods (and a method's options) or runs",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
    )
    p.add_argument("what", choices=WHAT)
    p.add_argument(
        "--options",
        metavar="METHOD",
        help="with `methods`: this method's options (name or module:Class): type, default, help",
    )
    p.add_argument("--output-dir", default="results", help="results root, for `list runs`")
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.set_defaults(func=run)


def method_options(method: str) -> tuple[str, list[dict[str, Any]]]:
    """The config class name of ``method`` and one row per option."""
    cls = get_method_class(method)
    rows = [
        {"option": o.name, "type": o.type, "default": o.default, "help": o.help}
        for o in describe_options(cls.config_class)
    ]
    return f"{cls.name or method} ({cls.config_class.__name__})", rows


def _run_rows(output_dir: str) -> list[dict[str, Any]]:
    rows = []
    for run_id in list_runs(output_dir):
        try:  # one damaged run is named and left out, never the end of the listing
            info = ResultStore(output_dir, run_id).run_info()
            status = run_status(output_dir, run_id)
        except DataError as exc:
            logger.warning("run %s left out: %s", run_id, exc)
            continue
        modified = dt.datetime.fromtimestamp(run_modified(Path(output_dir) / run_id))
        common = {
            "run": run_id,
            "suite": info.get("suite"),
            "profile": info.get("profile"),
            "metrics_profile": info.get("metrics_profile"),
            "modified": modified.astimezone().isoformat(timespec="seconds"),
        }
        status = status or [
            {"label": None, "method": None, "records": 0, "expected": None, "cases": None}
        ]
        for s in status:
            rows.append(
                {
                    **common,
                    "method": s["method"],
                    "variant": s["label"],
                    "cases": s["cases"],
                    "records": s["records"],
                    "expected": s["expected"],
                    "complete": s["expected"] is not None and s["records"] >= s["expected"],
                }
            )
    return rows


def _rows(what: str, output_dir: str) -> list[dict[str, Any]]:
    if what == "methods":
        return [{"method": n, "target": t} for n, t in METHODS.targets().items()]
    if what == "runs":
        return _run_rows(output_dir)
    return {
        "identities": spec.describe_identities,
        "motions": spec.describe_motions,
        "suites": spec.describe_suites,
    }[what]()


def _cell(column: str, value: Any, row: dict[str, Any]) -> str:
    if column == "default":
        return format_value(value)
    if column == "records":  # runs: done / expected
        expected = "?" if row["expected"] is None else str(row["expected"])
        return f"{value}/{expected}"
    return "" if value is None else str(value)


def run(args: argparse.Namespace) -> int:
    if args.options and args.what != "methods":
        raise ConfigError(f"--options {args.options}: only with `list methods`")
    if args.options:
        title, rows = method_options(args.options)
        title = f"options of {title}: run --set key=value"
    else:
        rows = _rows(args.what, args.output_dir)
        title = f"{args.what} ({len(rows)})"
    if args.format == "json":
        sys.stdout.write(json.dumps(rows, indent=2, default=str) + "\n")
        return 0
    _print_table(title, rows, args.what)
    return 0


def _print_table(title: str, rows: list[dict[str, Any]], what: str) -> None:
    hidden = {"expected", "complete"} if what == "runs" else set()
    columns = [c for c in (rows[0].keys() if rows else [what]) if c not in hidden]
    table = Table(title=escape(title))
    for column in columns:
        table.add_column(str(column), overflow="fold")
    for row in rows:
        cells = [_cell(c, row[c], row) for c in columns]
        if what == "runs" and row["expected"] is not None and not row["complete"]:
            cells[columns.index("records")] += " (incomplete)"
        table.add_row(*map(escape, cells))  # "tuple[float, float]" is text, not markup
    console = Console()
    Console(width=200 if not console.is_terminal else None).print(table)
