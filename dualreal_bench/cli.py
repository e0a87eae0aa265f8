"""The ``dualreal-bench`` command line.

One module per subcommand in :mod:`dualreal_bench.commands`; each exposes
``add_parser(subparsers)`` (which sets ``func``) and ``run(args) -> int``.
User errors (:class:`~dualreal_bench.errors.BenchmarkError`) print one line and exit 2;
``--debug`` shows the traceback. Known OS and library errors a user's input or machine causes
(a full disk, a name too long for the filesystem, a file where a folder goes, no CUDA, a
weights file refused by ``weights_only``) are turned into such errors here, in one place
(:func:`~dualreal_bench.errors.user_error`), naming the file.

Streams: stdout carries only what a command was asked for (tables, JSON, CSV), so
``dualreal-bench report --format json > table.json`` gives a valid file; logs, warnings and
progress bars go to stderr. The package's own loggers (``dualreal_bench.*``, bundled methods
included) log from INFO (WARNING with ``-q``); third-party libraries only from WARNING
(open_clip, for one, logs six INFO lines per tokenizer it builds), unless ``--debug``.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import sys
from collections.abc import Iterator
from typing import NoReturn

import rich
from rich.console import Console
from rich.logging import RichHandler

from ._version import __version__
from .errors import user_error

COMMANDS = ("run", "evaluate", "report", "list", "inspect", "estimate")
#: commands that resume where they stopped when rerun (a full disk says so)
RESUMABLE = ("run", "evaluate")
#: loggers shown from INFO; every other logger (third-party libraries) from WARNING
OWN_LOGGERS = ("dualreal_bench",)
#: log line format when stderr is not a terminal (cluster job logs, pipes)
PLAIN_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def _add_global_flags(parser: argparse.ArgumentParser, *, subcommand: bool) -> None:
    # On a subcommand the flags default to SUPPRESS, so that `dualreal-bench -q run` is not
    # undone by the subparser's own default: either position works.
    default = {"default": argparse.SUPPRESS} if subcommand else {}
    parser.add_argument(
        "--debug", action="store_true", help="show tracebacks and debug logs", **default
    )
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="no progress bars, warnings only", **default
    )


class _Parser(argparse.ArgumentParser):
    """argparse's parser whose errors are one line, like every other error of the command
    (argparse prints the whole usage first), pointing at ``--help``. Subcommands' parsers
    are of this class too (argparse makes them of the parent's class)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="dualreal-bench",
        description="Benchmark subject+motion customisation of text-to-video diffusion transformers.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    _add_global_flags(parser, subcommand=False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"dualreal_bench.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"dualreal_bench.commands.{name}":
                continue  # subcommand not built yet
            raise
        module.add_parser(sub)
    for subparser in sub.choices.values():
        _add_global_flags(subparser, subcommand=True)
    return parser


def _is_own(name: str) -> bool:
    return any(name == own or name.startswith(own + ".") for own in OWN_LOGGERS)


class _ThirdPartyFilter(logging.Filter):
    """Our own records from the loggers' levels; third-party ones from ``min_level``.

    Without it, a library that sets its own logger to INFO would reach the root handler
    despite the root's level (propagation does not check ancestors' levels)."""

    def __init__(self, min_level: int) -> None:
        super().__init__()
        self.min_level = min_level

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= self.min_level or _is_own(record.name)


@contextlib.contextmanager
def cli_logging(*, debug: bool = False, quiet: bool = False) -> Iterator[None]:
    """Logs (and rich's progress bars) on stderr while a command runs; restored afterwards.

    Third-party loggers are shown from WARNING (from INFO with ``debug``), so their INFO
    chatter stays hidden; :data:`OWN_LOGGERS` from INFO (WARNING when ``quiet``, DEBUG when
    ``debug``). On a terminal the lines are rich's; otherwise plain timestamped lines (no
    wrapping), which read well in job logs.
    """
    root = logging.getLogger()
    own = [logging.getLogger(name) for name in OWN_LOGGERS]
    saved_levels = (root.level, [lg.level for lg in own])
    # rich's global console is what progress bars draw on: point it at stderr too
    console = rich.get_console()
    saved_console = console.__dict__.copy()
    console.__dict__ = Console(stderr=True).__dict__
    if console.is_terminal:
        handler: logging.Handler = RichHandler(console=console, show_path=False)
        handler.setFormatter(logging.Formatter("%(message)s"))
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(PLAIN_FORMAT, "%Y-%m-%d %H:%M:%S"))
    # --debug: our DEBUG lines, third-party INFO (their DEBUG is byte-level chatter: PIL's
    # PNG chunks, matplotlib's font search)
    handler.addFilter(_ThirdPartyFilter(logging.INFO if debug else logging.WARNING))
    root.addHandler(handler)
    root.setLevel(logging.INFO if debug else logging.WARNING)
    own_level = logging.DEBUG if debug else (logging.WARNING if quiet else logging.INFO)
    for lg in own:
        lg.setLevel(own_level)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(saved_levels[0])
        for lg, level in zip(own, saved_levels[1], strict=True):
            lg.setLevel(level)
        console.__dict__ = saved_console


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
    with cli_logging(debug=args.debug, quiet=args.quiet):
        try:
            return int(args.func(args) or 0)
        except Exception as exc:
            error = user_error(exc, resumable=args.command in RESUMABLE)
            if error is None or args.debug:
                raise
            msg = " ".join(str(error).split())
            print(f"dualreal-bench: error: {msg}", file=sys.stderr)
            return error.exit_code
        except KeyboardInterrupt:
            print("dualreal-bench: interrupted", file=sys.stderr)
            return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
