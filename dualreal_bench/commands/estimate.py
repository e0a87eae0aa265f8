"""``dualreal-bench estimate --suite S --method M --profile P``: what a whole run would cost.

Times, on this machine, one training step, one generation and one evaluation of the method
with the profile's backbone, and projects device-hours and disk onto the suite before anyone
commits a cluster to it.

The model and the measurements are :mod:`dualreal_bench.analysis.cost`, whose
:func:`~dualreal_bench.analysis.cost.estimate` returns the same figures as a dict; this
command parses the options and prints them. With a real profile whose weights are missing,
nothing can be timed: it says so, and still prints the planned counts and the state size.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from rich.console import Console
from rich.table import Table

from ..analysis import GIB
from ..analysis.cost import estimate
from ..errors import ConfigError
from .run import add_device_arg, add_method_args, parse_seeds


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "estimate",
        help="time one training step, generation and evaluation here; project device-hours and disk",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
    )
    p.add_argument("--suite", default=None, help="paper | ablation | full | smoke (default: smoke)")
    p.add_argument(
        "--cases",
        dest="cases_file",
        metavar="FILE",
        help="CSV of identity,motion pairs instead of a suite",
    )
    add_method_args(p, method_default="base")
    p.add_argument("--data-root", help="benchmark data (default: $DUALREAL_BENCH_DATA)")
    p.add_argument("--num-prompts", type=int, help="prompts per case (default: the suite's)")
    p.add_argument("--seeds", default="0", help="comma-separated seeds (default: 0)")
    p.add_argument("--steps", type=int, default=3, help="training steps to time (default 3, >= 2)")
    add_device_arg(p)
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.set_defaults(func=run)


def _s(x: float | None) -> str:
    return "not measured" if x is None else f"{x:,.2f} s"


def _h(x: float | None) -> str:
    return "unknown" if x is None else f"{x:,.2f} h"


def _b(x: float | None) -> str:
    if x is None:
        return "unknown"
    return f"{x / GIB:,.2f} GiB" if x >= GIB / 10 else f"{x / 1024**2:,.2f} MiB"


def run(args: argparse.Namespace) -> int:
    if args.cases_file and args.suite:
        raise ConfigError(
            f"--cases {args.cases_file} and --suite {args.suite} contradict; give one"
        )
    result = estimate(
        suite=args.suite,
        cases_file=args.cases_file,
        method=args.method,
        method_overrides=args.method_overrides,
        profile=args.profile,
        backbone_overrides=args.backbone_overrides,
        metrics_profile=args.metrics_profile,
        data_root=args.data_root,
        num_prompts=args.num_prompts,
        seeds=parse_seeds(args.seeds),
        steps=args.steps,
        device=args.device,
    )
    if args.format == "json":
        print(json.dumps(result, indent=2, default=str))
        return 0
    console = Console()
    console.print(_unit_table(result))
    console.print(_projection_table(result))
    if result.get("timing_case_note"):
        console.print(f"[yellow]note: {result['timing_case_note']}")
    for item in result["unmeasured"]:
        console.print(f"[yellow]cannot measure: {item}")
    if result["profile"] == "tiny":
        console.print(
            "[yellow]tiny profile: toy-sized random models; these times check the pipeline, "
            "they are not the cost of a real run (use --profile cogvideox-5b with its weights)"
        )
    return 0


def _unit_table(result: dict[str, Any]) -> Table:
    training = result.get("training") or {}
    steps = result.get("planned_steps")
    table = Table(
        title=f"Measured here: {result['method']} on {result['profile']} (case {result['timing_case']})"
    )
    table.add_column("item")
    table.add_column("value", justify="right")
    for item, value in (
        ("backbone load (once per worker)", _s(result.get("backbone_load_seconds"))),
        ("training: data preparation per case", _s(training.get("prepare_seconds"))),
        ("training: one step", _s(training.get("step_seconds"))),
        ("training: planned steps per case", "unknown" if steps is None else f"{steps:,}"),
        ("training: memory settings (memory_budget)", _plan_text(result.get("memory_plan"))),
        ("generation: one video", _s(result.get("generation_seconds"))),
        ("evaluation: one video", _s(result.get("evaluation_seconds"))),
        ("evaluation: metric encoders on", result.get("metrics_device") or "n/a"),
        ("evaluation: reference clips per motion", _s(result.get("reference_seconds_per_motion"))),
        (
            "evaluation: every motion's clips (once)",
            _s(result.get("motion_references_seconds")),
        ),
        ("state per case", _b(result.get("state_bytes"))),
        ("mp4 per video", _b(result.get("mp4_bytes"))),
        ("record per video", _b(result.get("record_bytes"))),
    ):
        table.add_row(item, value)
    return table


def _plan_text(plan: dict[str, Any] | None) -> str:
    if plan is None:
        return "as configured"
    settings = plan["settings"]
    text = (
        f"micro-batch {settings['micro_batch'] or 'none'}, "
        f"{'encoders offloaded' if settings['offload_encoders'] else 'encoders resident'}, "
        f"checkpointing {'on' if settings['gradient_checkpointing'] else 'off'}, "
        f"{settings['optimizer']}"
    )
    return text if plan["fits"] else f"does not fit ({_b(plan['training_bytes'])} at least)"


def _projection_table(result: dict[str, Any]) -> Table:
    device = result.get("device") or "n/a"
    hours = "GPU-hours" if device.startswith("cuda") else f"device-hours ({device})"
    table = Table(
        title=f"Projected for {result['suite']}: {result['cases']:,} cases, {result['videos']:,} videos "
        f"({result['prompts']:,} prompts x {result['seeds']} seed(s))"
    )
    table.add_column("stage")
    table.add_column(hours, justify="right")
    for stage in ("training", "generation", "evaluation", "total"):
        table.add_row(
            f"[bold]{stage}" if stage == "total" else stage, _h(result["projected_hours"][stage])
        )
    table.add_row("disk: method states", _b(result["projected_bytes"]["states"]))
    table.add_row("disk: videos + records", _b(result["projected_bytes"]["videos_and_records"]))
    table.add_row("[bold]disk: total", _b(result["projected_bytes"]["total"]))
    return table
