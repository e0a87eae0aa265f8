"""``dualreal-bench report``: tables from a results store."""

from __future__ import annotations

import argparse
import sys

from ..report import FORMATS


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="tables of a run's results")
    p.add_argument("--table", action="store_true", help="print the metrics table (the default)")
    p.add_argument("--format", default="rich", choices=FORMATS, help="output format (default: rich)")
    p.add_argument("--output-dir", default="results", help="results root (default: results)")
    p.add_argument("--run-id", help="run to report (default: the only or most recent run)")
    p.add_argument("--methods", help="comma-separated method labels to include")
    p.add_argument("--out", help="write the table to this file instead of stdout")
    p.set_defaults(func=run)


def _default_run(output_dir: str) -> str:
    from ..errors import DataError
    from ..store import ResultStore, list_runs

    runs = list_runs(output_dir)
    if not runs:
        raise DataError(f"{output_dir}: no runs found (run `dualreal-bench run` first, or pass --output-dir)")
    return max(runs, key=lambda r: ResultStore(output_dir, r).run_info().get("created", ""))


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from ..report import build_table, render
    from ..store import atomic_write_text

    run_id = args.run_id or _default_run(args.output_dir)
    methods = [m for m in (args.methods or "").split(",") if m] or None
    table = build_table(args.output_dir, run_id, methods)
    out = render(table, args.format)
    if args.format == "rich":
        console = Console(record=bool(args.out), width=None if sys.stdout.isatty() else 160)
        console.print(out)
        if args.out:
            atomic_write_text(args.out, console.export_text())
    elif args.out:
        atomic_write_text(args.out, out)
    else:
        sys.stdout.write(out)
    return 0
