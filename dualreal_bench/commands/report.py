"""``dualreal-bench report``: tables, breakdowns, plots, contact sheets and an HTML page of runs."""

from __future__ import annotations

import argparse
import logging
import math
import sys
from pathlib import Path

from rich.console import Console

from ..errors import ConfigError, DataError
from ..io import atomic_write_text, check_output_dir, check_output_file
from ..report import FORMATS, Report, build_report, render_report
from ..report.export import leaderboard_text, per_video_rows, require_parquet, rows_text, write_rows
from ..report.html import write_html_report
from ..report.plots import plot_report
from ..report.sheets import sheets_for_report
from ..store import latest_run, list_runs

logger = logging.getLogger(__name__)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report",
        help="tables, plots, contact sheets and an HTML page of a run's results",
        description="Tables 1-3 of the paper (all methods, ablations, group cardinality) from a run, "
        "with best/second marks, video counts and incomplete cells flagged; optional "
        "published numbers, breakdowns, plots, contact sheets and a static HTML page.",
    )
    p.add_argument(
        "--table",
        action="store_true",
        help="print the tables (the default when nothing else is asked)",
    )
    p.add_argument(
        "--format",
        default="rich",
        choices=(*FORMATS, "parquet"),
        help="table format (default: rich); with --per-video: csv, json or parquet",
    )
    p.add_argument("--output-dir", default="results", help="results root (default: results)")
    p.add_argument(
        "--run-id",
        help="run(s) to report, comma-separated (default: the most recently modified run)",
    )
    p.add_argument("--all-runs", action="store_true", help="report every run under --output-dir")
    p.add_argument("--methods", help="comma-separated method labels to include")
    p.add_argument("--out", help="write the tables to this file instead of stdout")
    p.add_argument(
        "--compare-paper",
        action="store_true",
        help="add the published numbers (benchmark/paper_results.json) and the differences",
    )
    p.add_argument(
        "--paper-file", help="published numbers to compare with (default: the shipped file)"
    )
    p.add_argument("--per-case", action="store_true", help="add a breakdown per case")
    p.add_argument("--per-identity", action="store_true", help="add a breakdown per identity")
    p.add_argument("--per-motion", action="store_true", help="add a breakdown per motion")
    _add_picture_args(p)
    _add_export_args(p)
    p.set_defaults(func=run)


def _add_picture_args(p: argparse.ArgumentParser) -> None:
    """--plots, --sheets (and which video they show), --html."""
    p.add_argument(
        "--plots",
        metavar="DIR",
        help="write PNG plots (metric bars, fidelity/motion scatter, "
        "StageBlender w_id curves) into DIR",
    )
    p.add_argument(
        "--spread",
        default="std",
        choices=("std", "iqr"),
        help="error bars of the metric bars across cases (default: std)",
    )
    p.add_argument("--sheets", metavar="DIR", help="write one contact sheet PNG per case into DIR")
    p.add_argument("--case", help="contact sheets for these case ids only (comma-separated)")
    p.add_argument(
        "--prompt-index",
        type=int,
        help="contact sheets: this prompt (default: the first every method has)",
    )
    p.add_argument(
        "--seed", type=int, help="contact sheets: this seed (default: the first every method has)"
    )
    p.add_argument(
        "--data-root",
        help="where the identities' images and motions' clips are "
        "(default: the run's, else $DUALREAL_BENCH_DATA)",
    )
    p.add_argument(
        "--html",
        metavar="OUT",
        help="write a self-contained HTML page (tables, plots, sheets, videos)",
    )
    p.add_argument(
        "--max-sheets",
        type=int,
        default=12,
        help="HTML page: at most this many contact sheets (default 12)",
    )
    p.add_argument(
        "--embed-video-mb",
        type=float,
        default=2.0,
        help="HTML page: embed videos up to this size, link larger ones (default 2 MB; 0 links all)",
    )


def _add_export_args(p: argparse.ArgumentParser) -> None:
    """--per-video (--long), --leaderboard."""
    p.add_argument(
        "--per-video",
        action="store_true",
        help="instead of the tables, one row per video: every metric and the fields to filter "
        "on (run, method, variant, options, identity, motion, prompt, seed, profile, versions); "
        "--format csv|json|parquet (parquet: to --out)",
    )
    p.add_argument(
        "--long",
        action="store_true",
        help="with --per-video: one row per (video, metric), columns metric/value/higher_is_better",
    )
    p.add_argument(
        "--leaderboard",
        metavar="FILE",
        help="write a leaderboard JSON: one row per method variant per run with every metric's "
        "mean, spread, counts and rank, the run and the versions ('-': stdout)",
    )


def _default_run(output_dir: str) -> str:
    run_id = latest_run(output_dir)
    logger.info(
        "reporting run %r, the most recently modified under %s (choose with --run-id; "
        "see `dualreal-bench list runs`)",
        run_id,
        output_dir,
    )
    return run_id


def _runs(args: argparse.Namespace) -> list[str]:
    if args.all_runs:
        return list_runs(args.output_dir) or [latest_run(args.output_dir)]  # none: its error
    if args.run_id is not None:
        runs = [r for r in args.run_id.split(",") if r]
        twice = sorted({r for r in runs if runs.count(r) > 1})
        if twice:
            raise ConfigError(f"--run-id {args.run_id}: {', '.join(twice)} given twice")
        if not runs:
            raise ConfigError(f"--run-id {args.run_id!r}: no run id")
        return runs
    return [_default_run(args.output_dir)]


def _split(text: str | None) -> list[str] | None:
    return [x for x in (text or "").split(",") if x] or None


def _breakdowns(args: argparse.Namespace) -> list[str]:
    flags = (("case", args.per_case), ("identity", args.per_identity), ("motion", args.per_motion))
    return [kind for kind, flag in flags if flag]


def _check_outputs(args: argparse.Namespace) -> None:
    """Where each output goes, before any work: a file option naming a folder, a folder option
    naming a file, or a path through a file, is a ConfigError naming the option."""
    for option, value, example in (
        ("--html", args.html, "report.html"),
        ("--out", args.out, "table.txt"),
        ("--leaderboard", None if args.leaderboard == "-" else args.leaderboard, "board.json"),
    ):
        if value:
            check_output_file(value, option, example)
    for option, value in (("--plots", args.plots), ("--sheets", args.sheets)):
        if value:
            check_output_dir(value, option)
    if args.data_root and not Path(args.data_root).expanduser().is_dir():
        raise ConfigError(f"--data-root {args.data_root}: no such directory")
    if not (math.isfinite(args.embed_video_mb) and args.embed_video_mb >= 0):
        raise ConfigError(f"--embed-video-mb {args.embed_video_mb}: must be a size >= 0 (MB)")


def run(args: argparse.Namespace) -> int:
    if args.max_sheets < 1:
        raise ConfigError(f"--max-sheets {args.max_sheets}: must be >= 1")
    _check_export_args(args)
    _check_outputs(args)
    reports = []
    runs = _runs(args)
    for run_id in runs:
        try:
            reports.append(
                build_report(
                    args.output_dir,
                    run_id,
                    _split(args.methods),
                    compare_paper=args.compare_paper,
                    paper_file=args.paper_file,
                    breakdowns=_breakdowns(args),
                )
            )
        except DataError as exc:  # --all-runs: a damaged run is named and left out
            if not args.all_runs or (run_id == runs[-1] and not reports):
                raise
            logger.warning("run %s left out of the report: %s", run_id, exc)
    paper = reports[0].paper
    if args.compare_paper and paper is not None and not paper.transcribed:
        logger.warning("--compare-paper: the published numbers are %s", paper.status)
    for rep in reports:
        if args.plots:
            _write_plots(rep, _per_run_dir(args.plots, rep, reports), args.spread)
        if args.sheets:
            _write_sheets(rep, _per_run_dir(args.sheets, rep, reports), args)
    if args.html:
        _write_html(reports, args)
    if args.leaderboard:
        _write_leaderboard(reports, args.leaderboard)
    if args.per_video:
        _write_per_video(reports, args)
    elif args.table or not (args.plots or args.sheets or args.html or args.leaderboard):
        _emit(
            render_report(
                [t for r in reports for t in r.tables], args.format, _meta(reports, args)
            ),
            args,
        )
    return 0


def _per_run_dir(root: str, rep: Report, reports: list[Report]) -> Path:
    """``root``, or ``root/<run>`` when several runs are reported."""
    return Path(root) / rep.run_id if len(reports) > 1 else Path(root)


def _meta(reports: list[Report], args: argparse.Namespace) -> dict:
    meta: dict = {
        "runs": [{"run_id": r.run_id, "suite": r.suite, "profile": r.profile} for r in reports]
    }
    paper = reports[0].paper
    if args.compare_paper and paper is not None:
        meta["paper"] = {"status": paper.status, "source": paper.source}
    return meta


def _emit(out, args: argparse.Namespace) -> None:
    if args.format == "rich":
        console = Console(record=bool(args.out), width=None if sys.stdout.isatty() else 160)
        for table in out:
            console.print(table)
        if args.out:
            atomic_write_text(args.out, console.export_text())
    else:
        out = out if out.endswith("\n") else out + "\n"  # a text file ends with a newline
        if args.out:
            atomic_write_text(args.out, out)
        else:
            sys.stdout.write(out)


def _write_plots(rep: Report, out_dir: Path, spread: str) -> None:
    for path in plot_report(rep, out_dir, spread=spread):
        logger.info("wrote %s", path)


def _write_sheets(rep: Report, out_dir: Path, args: argparse.Namespace) -> None:
    for sheet in sheets_for_report(
        rep,
        out_dir,
        cases=_split(args.case),
        data_root=args.data_root,
        prompt_index=args.prompt_index,
        seed=args.seed,
    ):
        logger.info("wrote %s", sheet.path)


def _write_html(reports: list[Report], args: argparse.Namespace) -> None:
    path = write_html_report(
        args.html,
        reports,
        cases=_split(args.case),
        data_root=args.data_root,
        prompt_index=args.prompt_index,
        seed=args.seed,
        max_sheets=args.max_sheets,
        embed_video_bytes=int(args.embed_video_mb * 1e6),
        spread=args.spread,
    )
    logger.info("wrote %s", path)


def _check_export_args(args: argparse.Namespace) -> None:
    """--per-video / --long / --leaderboard / --format parquet: contradictions, before any work."""
    if args.format == "parquet" and not args.per_video:
        raise ConfigError("--format parquet: only with --per-video (the tables: csv or json)")
    if args.long and not args.per_video:
        raise ConfigError("--long: only with --per-video")
    if args.per_video:
        if args.format not in ("csv", "json", "parquet"):
            raise ConfigError(f"--per-video --format {args.format}: choose csv, json or parquet")
        if args.table:
            raise ConfigError("--per-video replaces the tables: drop --table")
        if args.format == "parquet":
            require_parquet()
            if not args.out:
                raise ConfigError("--format parquet is binary: pass --out FILE")
    stdout = args.table or (args.per_video and not args.out)
    if args.leaderboard == "-" and stdout:
        raise ConfigError("--leaderboard -: the tables also go to stdout; pass a file")


def _write_per_video(reports: list[Report], args: argparse.Namespace) -> None:
    rows = [row for rep in reports for row in per_video_rows(rep.records, long=args.long)]
    if args.out:
        logger.info("wrote %d rows to %s", len(rows), write_rows(rows, args.format, args.out))
    else:
        sys.stdout.write(rows_text(rows, args.format))


def _write_leaderboard(reports: list[Report], target: str) -> None:
    text = leaderboard_text(reports)
    if target == "-":
        sys.stdout.write(text)
    else:
        atomic_write_text(target, text)
        logger.info("wrote %s", target)
