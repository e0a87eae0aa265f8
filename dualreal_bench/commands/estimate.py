"""``dualreal-bench estimate --suite S --method M --profile P``: what a whole run would cost.

Times, on this machine, one training step, one generation and one evaluation of the method
with the profile's backbone, and projects them onto the suite before anyone commits a
cluster to it::

    device-hours = cases  x (data preparation + planned steps x step time)
                 + videos x generation time
                 + videos x evaluation time + motions x reference-clip scoring
    disk         = cases  x state size + videos x (mp4 + record + provenance + extras)

``videos = cases x prompts per case x seeds``. The planned steps come from the method
(:meth:`~dualreal_bench.method.Method.planned_train_steps`). Training is timed on the
suite's first case when its data is there, else on the smoke suite's sample case (a step
costs the same on any case of the same shapes); the timed training is stopped after
``--steps`` steps. With a real profile whose weights are missing, nothing can be timed:
the command says so, and still prints the planned counts and the state size (counted on
the meta device).

Library use: :func:`estimate` returns the same figures as a dict.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

GIB = 1024**3


class _StopTraining(Exception):
    """Raised from the progress callback once enough steps were timed."""


def add_parser(sub: argparse._SubParsersAction) -> None:
    from .run import add_device_arg, add_method_args

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


# ---- measuring ---------------------------------------------------------------------------------


def _plan(
    suite: str | None,
    cases_file: str | None,
    data_root: str | None,
    num_prompts: int | None,
    seeds: tuple[int, ...],
) -> dict[str, Any]:
    """Cases, prompts and videos of the suite, and a case to time on (data or not)."""
    from ..errors import DataError
    from ..spec import build_cases, get_suite

    stand_in = None
    if cases_file:
        from ..runner import read_cases_file

        cases = read_cases_file(cases_file, data_root=data_root, num_prompts=num_prompts)
        name = f"cases file {cases_file}"
        per_case = [len(c.prompts) for c in cases]
        motions = {c.motion.name for c in cases}
        timing_case = cases[0]
    else:
        spec = get_suite(suite or "smoke")
        name = spec.name
        n_prompts = min(num_prompts or spec.prompts_per_case, spec.prompts_per_case)
        per_case = [n_prompts] * spec.num_cases
        motions = {m for _, m in spec.pairs}
        try:
            timing_case = build_cases(spec, data_root=data_root, num_prompts=1)[0]
        except DataError as exc:
            stand_in = f"the suite's data is not available ({exc}); timed on the smoke sample case"
            timing_case = build_cases("smoke", num_prompts=1)[0]
    return {
        "suite": name,
        "cases": len(per_case),
        "prompts": sum(per_case),
        "seeds": len(seeds),
        "videos": sum(per_case) * len(seeds),
        "motions": len(motions),
        "timing_case": timing_case,
        "timing_case_note": stand_in,
    }


def _dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


def _time_training(method: Any, case: Any, steps: int) -> dict[str, Any]:
    """Run ``method.train(case)`` until ``steps`` steps reported progress; seconds to the first
    step (data preparation + one step) and per step after it."""
    marks: list[float] = []

    def on_progress(stage: str, step: int, total: int, info: dict[str, Any]) -> None:
        if stage.startswith("train"):
            marks.append(time.perf_counter())
            if len(marks) >= steps:
                raise _StopTraining

    method.progress_callback = on_progress
    t0 = time.perf_counter()
    finished = False
    try:
        method.train(case)
        finished = True
    except _StopTraining:
        pass
    if len(marks) >= 2:
        step = statistics.median(b - a for a, b in zip(marks, marks[1:], strict=False))
        return {
            "step_seconds": step,
            "prepare_seconds": max(0.0, marks[0] - t0 - step),
            "timed_steps": len(marks),
            "finished": finished,
        }
    if finished:
        return {
            "step_seconds": None,
            "prepare_seconds": time.perf_counter() - t0,
            "timed_steps": len(marks),
            "finished": True,
            "note": "the method reported fewer than 2 training steps",
        }
    return {
        "step_seconds": None,
        "prepare_seconds": None,
        "timed_steps": len(marks),
        "finished": False,
    }


def _meta_state_bytes(
    method_class: Any, method_config: Any, profile: str, overrides: list[str]
) -> dict[str, Any]:
    """Planned steps and fp32 state size of the method attached to the profile's transformer
    on the meta device (no weights needed)."""
    from .inspect import build_meta_backbone

    backbone = build_meta_backbone(profile, overrides)
    method = method_class(backbone, method_config)
    try:
        groups = method.parameter_groups()
        n = sum(
            p.numel() for params in groups.values() for p in {id(p): p for p in params}.values()
        )
        return {
            "planned_steps": method.planned_train_steps(),
            "state_bytes": 4 * n,
            "state_note": "fp32 trainable parameters counted on the meta device",
        }
    finally:
        method.teardown()


def estimate(
    *,
    suite: str | None = None,
    cases_file: str | None = None,
    method: str = "base",
    method_overrides: list[str] | None = None,
    profile: str = "tiny",
    backbone_overrides: list[str] | None = None,
    metrics_profile: str | None = None,
    data_root: str | None = None,
    num_prompts: int | None = None,
    seeds: tuple[int, ...] = (0,),
    steps: int = 3,
    device: str | None = None,
) -> dict[str, Any]:
    """Measure here and project onto the whole suite (see the module docstring)."""
    from ..devices import check_device
    from ..errors import ConfigError, WeightsError
    from ..method import get_method_class
    from ..store import make_record

    if steps < 2:
        raise ConfigError(f"--steps {steps}: need at least 2 to time a step")
    if device is not None:
        check_device(device, "--device")
    method_class = get_method_class(method)
    method_config = method_class.config_class().with_overrides(list(method_overrides or []))
    plan = _plan(suite, cases_file, data_root, num_prompts, seeds)
    case = plan.pop("timing_case")
    out: dict[str, Any] = {
        "method": method_class.name,
        "profile": profile,
        **plan,
        "timing_case": case.case_id,
        "unmeasured": [],
    }
    metrics_profile = metrics_profile or ("tiny" if profile == "tiny" else "real")

    # 1. the backbone (missing real weights: nothing can be timed)
    from ..backbone import load_backbone

    t0 = time.perf_counter()
    try:
        backbone = load_backbone(profile, list(backbone_overrides or []))
    except WeightsError as exc:
        out["unmeasured"].append(
            f"training, generation and evaluation: backbone weights missing ({exc})"
        )
        out.update(
            _meta_state_bytes(method_class, method_config, profile, list(backbone_overrides or []))
        )
        out["device"] = None
        return _project(out)
    out["backbone_load_seconds"] = time.perf_counter() - t0
    out["device"] = str(backbone.device)

    with tempfile.TemporaryDirectory(prefix="dualreal-estimate-") as tmp:
        tmp = Path(tmp)
        # 2. one training run stopped after `steps` steps
        instance = method_class(backbone, method_config)
        try:
            out["planned_steps"] = instance.planned_train_steps()
            if instance.trains:
                out["training"] = _time_training(instance, case, steps)
                if out["training"]["step_seconds"] is None:
                    out["unmeasured"].append(
                        "training step time: the method reported no training steps"
                    )
                instance.save(tmp / "state")
                out["state_bytes"] = _dir_bytes(tmp / "state")
            else:
                out["training"] = {"step_seconds": 0.0, "prepare_seconds": 0.0}
                out["state_bytes"] = 0
            # 3. one generation
            from ..media import write_video

            t0 = time.perf_counter()
            try:
                video = instance.generate([case.prompts[0]], 0)[0]
            except Exception as exc:  # noqa: BLE001 - a method may not generate after a stopped training
                out["unmeasured"].append(
                    f"generation with the method ({type(exc).__name__}: {exc}); "
                    "timed the backbone alone"
                )
                t0 = time.perf_counter()
                video = backbone.sample([case.prompts[0]], 0)[0]
            out["generation_seconds"] = time.perf_counter() - t0
            extras = instance.generation_extras()
            extras_bytes = (
                sum(getattr(a, "nbytes", 0) for a in extras[0].values())
                if extras and extras[0]
                else 0
            )
        finally:
            instance.teardown()
        mp4 = write_video(tmp / "video.mp4", video, fps=backbone.config.fps)
        out["mp4_bytes"] = mp4.stat().st_size
        out["extras_bytes"] = extras_bytes
        out["video_shape"] = list(video.shape)
        # 4. evaluation: first video of a motion (scores its reference clips too), then warm
        from ..media import read_video

        metrics: dict[str, Any] = {}
        try:
            from ..metrics import build_evaluator, resolve_metrics_device

            out["metrics_device"] = resolve_metrics_device(device, metrics_profile)
            t0 = time.perf_counter()
            evaluator = build_evaluator(
                metrics_profile,
                device=out["metrics_device"],
                cache_dir=tmp / "cache",
                progress=False,
            )
            out["evaluator_load_seconds"] = time.perf_counter() - t0
            frames = read_video(mp4)
            t0 = time.perf_counter()
            evaluator.evaluate_video(frames, prompt=case.prompts[0], case=case)
            first = time.perf_counter() - t0
            t0 = time.perf_counter()
            metrics = evaluator.evaluate_video(frames, prompt=case.prompts[0], case=case)
            out["evaluation_seconds"] = time.perf_counter() - t0
            out["reference_seconds_per_motion"] = max(0.0, first - out["evaluation_seconds"])
        except WeightsError as exc:
            out["unmeasured"].append(f"evaluation: metric encoder weights missing ({exc})")
        record = make_record(
            run_id="estimate",
            method_label=method_class.name,
            method={"name": method_class.name, "config": method_config.to_dict()},
            case=case,
            prompt_index=0,
            prompt=case.prompts[0],
            seed=0,
            video="x.mp4",
            metrics=metrics,
            backbone=backbone.describe(),
            suite=out["suite"],
            timestamps={},
        )
        out["record_bytes"] = len(json.dumps(record, indent=2, sort_keys=True, default=str)) + 2048
    return _project(out)


def _project(out: dict[str, Any]) -> dict[str, Any]:
    """Totals from the per-unit figures (None where a figure is missing)."""
    cases, videos = out["cases"], out["videos"]
    training = out.get("training") or {}
    steps = out.get("planned_steps")
    step, prep = training.get("step_seconds"), training.get("prepare_seconds")
    train = None
    if steps == 0:
        train = 0.0
    elif steps is not None and step is not None and prep is not None:
        train = cases * (prep + steps * step)
    gen = videos * out["generation_seconds"] if "generation_seconds" in out else None
    evaluation = None
    if "evaluation_seconds" in out:
        evaluation = (
            videos * out["evaluation_seconds"]
            + out["motions"] * out["reference_seconds_per_motion"]
        )
    parts = {"training": train, "generation": gen, "evaluation": evaluation}
    known = [v for v in parts.values() if v is not None]
    out["projected_hours"] = {k: (v / 3600 if v is not None else None) for k, v in parts.items()}
    out["projected_hours"]["total"] = sum(known) / 3600 if len(known) == len(parts) else None
    state = out.get("state_bytes")
    per_video = None
    if "mp4_bytes" in out:
        per_video = (
            out["mp4_bytes"] + out.get("record_bytes", 0) + out.get("extras_bytes", 0) + 1024
        )
    disk = {
        "states": cases * state if state is not None else None,
        "videos_and_records": videos * per_video if per_video is not None else None,
    }
    disk["total"] = sum(disk.values()) if all(v is not None for v in disk.values()) else None
    out["projected_bytes"] = disk
    return out


# ---- printing ----------------------------------------------------------------------------------


def _s(x: float | None) -> str:
    return "not measured" if x is None else f"{x:,.2f} s"


def _h(x: float | None) -> str:
    return "unknown" if x is None else f"{x:,.2f} h"


def _b(x: float | None) -> str:
    if x is None:
        return "unknown"
    return f"{x / GIB:,.2f} GiB" if x >= GIB / 10 else f"{x / 1024**2:,.2f} MiB"


def run(args: argparse.Namespace) -> int:
    from ..errors import ConfigError
    from .run import parse_seeds

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
    from rich.console import Console
    from rich.table import Table

    console = Console()
    device = result.get("device") or "n/a"
    hours = "GPU-hours" if device.startswith("cuda") else f"device-hours ({device})"
    training = result.get("training") or {}
    unit = Table(
        title=f"Measured here: {result['method']} on {result['profile']} (case {result['timing_case']})"
    )
    unit.add_column("item")
    unit.add_column("value", justify="right")
    unit.add_row("backbone load (once per worker)", _s(result.get("backbone_load_seconds")))
    unit.add_row("training: data preparation per case", _s(training.get("prepare_seconds")))
    unit.add_row("training: one step", _s(training.get("step_seconds")))
    unit.add_row(
        "training: planned steps per case",
        "unknown" if result.get("planned_steps") is None else f"{result['planned_steps']:,}",
    )
    unit.add_row("generation: one video", _s(result.get("generation_seconds")))
    unit.add_row("evaluation: one video", _s(result.get("evaluation_seconds")))
    unit.add_row("evaluation: metric encoders on", result.get("metrics_device") or "n/a")
    unit.add_row(
        "evaluation: reference clips per motion", _s(result.get("reference_seconds_per_motion"))
    )
    unit.add_row("state per case", _b(result.get("state_bytes")))
    unit.add_row("mp4 per video", _b(result.get("mp4_bytes")))
    unit.add_row("record per video", _b(result.get("record_bytes")))
    console.print(unit)
    total = Table(
        title=f"Projected for {result['suite']}: {result['cases']:,} cases, {result['videos']:,} videos "
        f"({result['prompts']:,} prompts x {result['seeds']} seed(s))"
    )
    total.add_column("stage")
    total.add_column(hours, justify="right")
    for stage in ("training", "generation", "evaluation", "total"):
        total.add_row(
            f"[bold]{stage}" if stage == "total" else stage, _h(result["projected_hours"][stage])
        )
    total.add_row("disk: method states", _b(result["projected_bytes"]["states"]))
    total.add_row("disk: videos + records", _b(result["projected_bytes"]["videos_and_records"]))
    total.add_row("[bold]disk: total", _b(result["projected_bytes"]["total"]))
    console.print(total)
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
