"""``dualreal-bench inspect --method M --profile P``: trainable parameters and training memory.

Everything is computed on PyTorch's ``meta`` device: the profile's transformer is built
without weights, the method attaches to it as it would to the real backbone, parameters are
counted, and one transformer block is run forward on meta tensors of the real training
shape to measure which activations autograd keeps. So ``inspect`` works for
``cogvideox-5b`` on a laptop, without downloading anything.

The figures come from :func:`dualreal_bench.analysis.inspection.inspect_method`; this command
parses the options and prints them.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from rich.console import Console
from rich.table import Table

from ..analysis import GIB
from ..errors import ConfigError
from .run import add_method_args


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "inspect",
        help="trainable parameters and training memory of a method (meta device, no weights needed)",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
    )
    add_method_args(
        p,
        method_default=None,
        profile_default="cogvideox-5b",
        overrides_dest="overrides",
        metrics_profile=False,
    )
    p.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="clips per training step (default: the method's)",
    )
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.set_defaults(func=run)


def _fmt_bytes(n: float) -> str:
    return f"{n / GIB:,.2f} GiB"


def _fmt_count(n: int) -> str:
    return f"{n:,}" if n < 1e6 else f"{n:,} ({n / 1e6:,.1f} M)"


def run(args: argparse.Namespace) -> int:
    # torch and diffusers load here, not when the CLI parses (it sets OMP_WAIT_POLICY first)
    from ..analysis.inspection import inspect_method

    if args.batch_size is not None and args.batch_size < 1:
        raise ConfigError(f"--batch-size must be >= 1, got {args.batch_size}")
    result = inspect_method(
        args.method,
        args.profile,
        args.overrides,
        backbone_overrides=args.backbone_overrides,
        batch_size=args.batch_size,
    )
    if args.format == "json":
        print(json.dumps(result, indent=2, default=str))
        return 0
    console = Console()
    console.print(_parameters_table(result))
    memory = result.get("memory")
    if memory:
        console.print(_memory_table(memory))
        for line in memory["assumptions"]:
            console.print(f"- {line}", highlight=False)
    return 0


def _parameters_table(result: dict[str, Any]) -> Table:
    title = f"{result['method']} on {result['profile']}"
    if result.get("resolved"):
        title += " (" + ", ".join(f"{k}={v}" for k, v in result["resolved"].items()) + ")"
    table = Table(title=f"Parameters: {title}")
    table.add_column("component")
    table.add_column("parameters", justify="right")
    table.add_column("share of transformer", justify="right")
    base = result["frozen_transformer_parameters"]
    for name, n in result["trainable_parameters"].items():
        table.add_row(f"trainable: {name}", _fmt_count(n), f"{100 * n / base:.2f}%" if base else "")
    table.add_row(
        "[bold]trainable total",
        f"[bold]{_fmt_count(result['trainable_total'])}",
        f"{100 * result['trainable_total'] / base:.2f}%" if base else "",
    )
    table.add_row("frozen transformer", _fmt_count(base), "100%")
    for name, n in result["frozen_helper_parameters"].items():
        table.add_row(f"frozen {name}", _fmt_count(n), "")
    for name, n in result.get("auxiliary_models", {}).items():
        table.add_row(f"frozen {name}", _fmt_count(n), "")
    return table


def _memory_table(memory: dict[str, Any]) -> Table:
    table = Table(title="Training memory estimate (one step, peak)")
    table.add_column("item")
    table.add_column("size", justify="right")
    for name, n in memory["bytes"].items():
        table.add_row(name, _fmt_bytes(n))
    for name, n in memory["total_bytes"].items():
        table.add_row(f"[bold]total with {name}", f"[bold]{_fmt_bytes(n)}")
    for name, n in memory["total_bytes_without_text_encoder_vae"].items():
        table.add_row(f"total with {name}, text encoder + VAE offloaded", _fmt_bytes(n))
    per_block = memory["activations_per_block"]
    table.add_row(
        "saved activations of one block: base transformer",
        _fmt_bytes(per_block["base transformer"]),
    )
    table.add_row(
        "saved activations of one block: with the method", _fmt_bytes(per_block["with method"])
    )
    return table
