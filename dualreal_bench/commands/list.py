"""``dualreal-bench list identities|motions|suites|methods|runs``."""

from __future__ import annotations

import argparse

WHAT = ("identities", "motions", "suites", "methods", "runs")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("list", help="list identities, motions, suites, methods or runs")
    p.add_argument("what", choices=WHAT)
    p.add_argument("--output-dir", default="results", help="results root, for `list runs`")
    p.set_defaults(func=run)


def _rows(what: str, output_dir: str) -> list[dict]:
    if what == "methods":
        from ..method import BUILTIN_METHODS, _entry_point_methods, available_methods

        eps = _entry_point_methods()
        return [{"method": n, "target": BUILTIN_METHODS.get(n) or eps[n].value} for n in available_methods()]
    if what == "runs":
        from ..store import ResultStore, list_runs

        rows = []
        for run_id in list_runs(output_dir):
            info = ResultStore(output_dir, run_id).run_info()
            rows.append({"run": run_id, "suite": info.get("suite"), "profile": info.get("profile"),
                         "created": info.get("created")})
        return rows
    from .. import spec

    return {"identities": spec.describe_identities, "motions": spec.describe_motions,
            "suites": spec.describe_suites}[what]()


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    rows = _rows(args.what, args.output_dir)
    table = Table(title=f"{args.what} ({len(rows)})")
    for column in (rows[0].keys() if rows else [args.what]):
        table.add_column(str(column))
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row.values()))
    Console(width=200 if not Console().is_terminal else None).print(table)
    return 0
