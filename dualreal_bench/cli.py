"""The ``dualreal-bench`` command line.

One module per subcommand in :mod:`dualreal_bench.commands`; each exposes
``add_parser(subparsers)`` (which sets ``func``) and ``run(args) -> int``.
User errors (:class:`~dualreal_bench.errors.BenchmarkError`) print one line and exit 2;
``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

from .errors import BenchmarkError

COMMANDS = ("run", "evaluate", "report", "list", "inspect", "estimate")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dualreal-bench",
        description="Benchmark subject+motion customisation of text-to-video diffusion transformers.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars, warnings only")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"dualreal_bench.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"dualreal_bench.commands.{name}":
                continue  # subcommand not built yet
            raise
        module.add_parser(sub)
    return parser


def quiet_openmp_waits() -> None:
    """Let idle OpenMP threads sleep instead of spinning (``OMP_WAIT_POLICY=PASSIVE``) unless
    the user set a policy. torch's default spinning makes every small parallel op (RAFT runs
    tens of thousands) wait for a preempted thread whenever other processes busy the cores: on
    a 2-core machine at load 2-3 the smoke run took 12-90 s instead of 10 s. The policy does
    not change how work is split between threads, so results stay bit-identical. libgomp reads
    it when torch loads, so this runs before any command is imported."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def main(argv: list[str] | None = None) -> int:
    quiet_openmp_waits()
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.DEBUG if args.debug else (logging.WARNING if args.quiet else logging.INFO)
    from rich.logging import RichHandler

    logging.basicConfig(level=level, format="%(message)s", handlers=[RichHandler(show_path=False)])
    for noisy in ("urllib3", "PIL", "matplotlib", "httpx", "filelock"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        return int(args.func(args) or 0)
    except BenchmarkError as exc:
        if args.debug:
            raise
        msg = " ".join(str(exc).split())
        print(f"dualreal-bench: error: {msg}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("dualreal-bench: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
