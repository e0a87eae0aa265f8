"""``dualreal-bench inspect --method M --profile P``: trainable parameters, training memory per
kind of step, and the generation peak.

Everything is computed on PyTorch's ``meta`` device: the profile's transformer is built
without weights, the method attaches to it as it would to the real backbone, parameters are
counted, and the backbone's training loss runs on meta tensors of each step's shape to measure
which activations autograd keeps (the VAE and the sampling forward likewise, for what they
allocate). So ``inspect`` works for ``cogvideox-5b`` on a laptop, without downloading
anything. ``--set memory_budget=24GiB`` prints the settings chosen to fit 24 GiB and their
estimates (or the smallest estimate, when nothing fits).

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
    return f"{n / GIB:,.2f} GiB" if n >= GIB / 10 or n == 0 else f"{n / 1024**2:,.2f} MiB"


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
        console.print(_generation_table(result["generation"]))
        if "budget" in result:
            console.print(_budget_text(result["budget"], memory), highlight=False)
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


def _settings_text(settings: dict[str, Any]) -> str:
    return ", ".join(
        [
            f"micro-batch {settings['micro_batch'] or 'none'}",
            "text encoder + VAE offloaded" if settings["offload_encoders"] else "resident encoders",
            f"checkpointing {'on' if settings['gradient_checkpointing'] else 'off'}",
            settings["optimizer"],
        ]
    )


def _memory_table(memory: dict[str, Any]) -> Table:
    stages = memory["stages"]
    table = Table(
        title=f"Training memory, one step at its peak ({_settings_text(memory['settings'])})"
    )
    table.add_column("item")
    for stage in stages:
        marker = " (peak)" if stage["name"] == memory["peak_stage"] else ""
        micro = (
            f", micro {stage['micro_batch']}" if stage["micro_batch"] != stage["batch_size"] else ""
        )
        table.add_column(
            f"{stage['name']}{marker}\n{stage['batch_size']} x {stage['frames']} frames{micro}",
            justify="right",
        )
    for row in stages[0]["bytes"]:
        values = [stage["bytes"][row] for stage in stages]
        if any(values):
            table.add_row(row, *(_fmt_bytes(v) for v in values))
    table.add_row("[bold]total", *(f"[bold]{_fmt_bytes(s['total_bytes'])}" for s in stages))
    table.add_row(
        "before the loop: encoding a clip", _fmt_bytes(memory["encoding_bytes"]),
        *([""] * (len(stages) - 1)),
    )  # fmt: skip
    return table


def _generation_table(generation: dict[str, Any]) -> Table:
    table = Table(
        title=f"Generation peak: one video, batch {generation['batch_size']} "
        f"({'classifier-free guidance' if generation['batch_size'] == 2 else 'no guidance'}), "
        + (
            "text encoder + VAE offloaded"
            if generation["offload_encoders"]
            else "resident encoders"
        )
    )
    table.add_column("phase")
    table.add_column("allocates", justify="right")
    table.add_column("total on the device", justify="right")
    for phase, total in generation["phase_totals"].items():
        marker = " (peak)" if phase == generation["peak_phase"] else ""
        table.add_row(
            phase + marker, _fmt_bytes(generation["phase_bytes"][phase]), _fmt_bytes(total)
        )
    return table


def _budget_text(budget: dict[str, Any], memory: dict[str, Any]) -> str:
    gib = 1024**3
    head = (
        f"memory_budget {budget['budget_bytes'] / gib:.1f} GiB - {budget['headroom_bytes'] / gib:.1f}"
        f" GiB headroom = {budget['limit_bytes'] / gib:.1f} GiB: "
    )
    if budget["fits"]:
        return (
            head + f"fits with {_settings_text(budget['settings'])}: training "
            f"{budget['training_bytes'] / gib:.2f} GiB, generation "
            f"{budget['generation_bytes'] / gib:.2f} GiB (the same method: same batches, steps "
            "and draws)"
        )
    return (
        head + "[red]does not fit[/red]: the smallest training estimate is "
        f"{budget['training_bytes'] / gib:.2f} GiB ({memory['peak_stage']} step, "
        f"{_settings_text(budget['settings'])}); generation {budget['generation_bytes'] / gib:.2f} GiB"
    )
