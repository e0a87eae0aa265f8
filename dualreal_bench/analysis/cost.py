"""What a whole run would cost: unit costs measured on this machine, projected onto a suite.

Times one training step, one generation and one evaluation of the method with the profile's
backbone, and projects them onto the suite before anyone commits a cluster to it::

    device-hours = cases  x (data preparation + planned steps x step time)
                 + videos x generation time
                 + videos x evaluation time + motions x reference-clip scoring
                 + describing every motion's clips once (motion fidelity)
    disk         = cases  x state size + videos x (mp4 + record + provenance + extras)

``videos = cases x prompts per case x seeds``. The planned steps come from the method
(:meth:`~dualreal_bench.method.Method.planned_train_steps`); under ``memory_budget`` the same
steps (the budget changes no schedule), each timed with the micro-batches, offloaded encoders
and checkpointing the budget's plan chooses (:mod:`.budget`), as a run would train. Training is timed on the
suite's first case when its data is there, else on the smoke suite's sample case (a step
costs the same on any case of the same shapes); the timed training is stopped after
``steps`` steps. With a real profile whose weights are missing, nothing can be timed: the
estimate says so, and still gives the planned counts and the state size (counted on the meta
device).
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..config import parse_size
from ..devices import check_device
from ..errors import ConfigError, DataError, WeightsError
from ..media import read_video, write_video
from ..method import Method, MethodConfig, get_method_class
from ..metrics import build_evaluator, metric_fields, resolve_metrics_device
from ..records import make_record
from ..spec import Case, build_cases, get_suite, read_cases_file


class _StopTraining(Exception):
    """Raised from the progress callback once enough steps were timed."""


def plan_suite(
    suite: str | None,
    cases_file: str | None,
    data_root: str | None,
    num_prompts: int | None,
    seeds: tuple[int, ...],
) -> dict[str, Any]:
    """Cases, prompts and videos of the suite (or cases file), and a case to time on (the
    suite's first, or the smoke sample case where the suite's data is missing)."""
    stand_in = None
    if cases_file:
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


def time_training(method: Method, case: Case, steps: int) -> dict[str, Any]:
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


def meta_state_bytes(
    method_class: type[Method], method_config: MethodConfig, profile: str, overrides: list[str]
) -> dict[str, Any]:
    """Planned steps and fp32 state size of the method attached to the profile's transformer
    on the meta device (no weights needed)."""
    from .budget import plan_memory
    from .params import build_meta_backbone  # torch and diffusers: on use only

    backbone = build_meta_backbone(profile, overrides)
    method = method_class(backbone, method_config)
    try:
        groups = method.parameter_groups()
        params = {id(p): p for ps in groups.values() for p in ps}.values()
        out = {
            "planned_steps": method.planned_train_steps(),
            # what save() writes: each learned tensor in its dtype as it trains on the target
            # device (adapters fp32, DualReal's bf16 on CUDA; a fully fine-tuned transformer in
            # its own dtype, bf16 for CogVideoX-5B)
            "state_bytes": sum(p.numel() * p.element_size() for p in params),
            "state_note": "learned parameters in their dtype, counted on the meta device",
        }
        budget = getattr(method_config, "memory_budget", None)
        if budget is not None and method.trains:
            out["memory_plan"] = plan_memory(
                method, backbone, parse_size(budget, "memory_budget")
            ).summary()
        return out
    finally:
        method.teardown()


def _measure_method(
    method: Method, backbone: Any, case: Case, steps: int, tmp: Path, out: dict[str, Any]
) -> np.ndarray:
    """Into ``out``: planned steps, timed training, state size, one generation's time and its
    extras' size. Returns the generated video."""
    out["planned_steps"] = method.planned_train_steps()
    if method.trains:
        if getattr(method.config, "memory_budget", None) is not None:
            # the budget's settings, as a run trains (the memory model: only under a budget)
            from .budget import apply_memory_budget

            out["memory_plan"] = apply_memory_budget(method).summary()
        out["training"] = time_training(method, case, steps)
        if out["training"]["step_seconds"] is None:
            out["unmeasured"].append("training step time: the method reported no training steps")
        method.save(tmp / "state")
        out["state_bytes"] = _dir_bytes(tmp / "state")
    else:
        out["training"] = {"step_seconds": 0.0, "prepare_seconds": 0.0}
        out["state_bytes"] = 0
    t0 = time.perf_counter()
    try:
        video = method.generate([case.prompts[0]], 0)[0]
    except Exception as exc:  # noqa: BLE001 - a method may not generate after a stopped training
        out["unmeasured"].append(
            f"generation with the method ({type(exc).__name__}: {exc}); timed the backbone alone"
        )
        t0 = time.perf_counter()
        video = backbone.sample([case.prompts[0]], 0)[0]
    out["generation_seconds"] = time.perf_counter() - t0
    extras = method.generation_extras()
    out["extras_bytes"] = (
        sum(getattr(a, "nbytes", 0) for a in extras[0].values()) if extras and extras[0] else 0
    )
    return video


def _measure_evaluation(
    mp4: Path, case: Case, device: str | None, metrics_profile: str, tmp: Path, out: dict[str, Any]
) -> dict[str, Any]:
    """Into ``out``: the evaluator's load time, one video's evaluation time (warm) and the
    reference clips' scoring (the first video of a motion pays it). Returns the metrics."""
    try:
        out["metrics_device"] = resolve_metrics_device(device, metrics_profile)
        t0 = time.perf_counter()
        evaluator = build_evaluator(
            metrics_profile, device=out["metrics_device"], cache_dir=tmp / "cache", progress=False
        )
        out["evaluator_load_seconds"] = time.perf_counter() - t0
        # motion fidelity describes every clip of every motion once (then the user cache has it)
        t0 = time.perf_counter()
        evaluator.motion_reference_descriptors(case)
        out["motion_references_seconds"] = time.perf_counter() - t0
        frames = read_video(mp4)
        t0 = time.perf_counter()
        evaluator.evaluate_video(frames, prompt=case.prompts[0], case=case)
        first = time.perf_counter() - t0
        t0 = time.perf_counter()
        metrics = evaluator.evaluate_video(frames, prompt=case.prompts[0], case=case)
        out["evaluation_seconds"] = time.perf_counter() - t0
        out["reference_seconds_per_motion"] = max(0.0, first - out["evaluation_seconds"])
        return metrics
    except WeightsError as exc:
        out["unmeasured"].append(f"evaluation: metric encoder weights missing ({exc})")
        return {}


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
    from ..backbone import load_backbone  # torch: loaded when an estimate runs

    if steps < 2:
        raise ConfigError(f"--steps {steps}: need at least 2 to time a step")
    if device is not None:
        check_device(device, "--device")
    method_class = get_method_class(method)
    method_config = method_class.config_class().with_overrides(list(method_overrides or []))
    plan = plan_suite(suite, cases_file, data_root, num_prompts, seeds)
    case = plan.pop("timing_case")
    out: dict[str, Any] = {
        "method": method_class.name,
        "profile": profile,
        **plan,
        "timing_case": case.case_id,
        "unmeasured": [],
    }
    t0 = time.perf_counter()
    try:
        backbone = load_backbone(profile, list(backbone_overrides or []))
    except WeightsError as exc:  # missing real weights: nothing can be timed
        out["unmeasured"].append(
            f"training, generation and evaluation: backbone weights missing ({exc})"
        )
        out.update(
            meta_state_bytes(method_class, method_config, profile, list(backbone_overrides or []))
        )
        out["device"] = None
        return project(out)
    out["backbone_load_seconds"] = time.perf_counter() - t0
    out["device"] = str(backbone.device)
    metrics_profile = metrics_profile or ("tiny" if profile == "tiny" else "real")
    _measure_here(method_class, method_config, backbone, case, steps, device, metrics_profile, out)
    return project(out)


def _measure_here(
    method_class: type[Method],
    method_config: MethodConfig,
    backbone: Any,
    case: Case,
    steps: int,
    device: str | None,
    metrics_profile: str,
    out: dict[str, Any],
) -> None:
    """Into ``out``, in a temporary directory: the method's unit costs on the loaded backbone
    (:func:`_measure_method`), the video's size, its evaluation (:func:`_measure_evaluation`)
    and its record's size."""
    with tempfile.TemporaryDirectory(prefix="dualreal-estimate-") as tmp_dir:
        tmp = Path(tmp_dir)
        method = method_class(backbone, method_config)
        try:
            video = _measure_method(method, backbone, case, steps, tmp, out)
            description = method.describe()
        finally:
            method.teardown()
        mp4 = write_video(tmp / "video.mp4", video, fps=backbone.config.fps)
        out["mp4_bytes"] = mp4.stat().st_size
        out["video_shape"] = list(video.shape)
        metrics = _measure_evaluation(mp4, case, device, metrics_profile, tmp, out)
        out["record_bytes"] = _record_bytes(description, case, metrics, backbone, out["suite"])


def _record_bytes(
    description: dict[str, Any], case: Case, metrics: dict[str, Any], backbone: Any, suite: str
) -> int:
    """Size of one video's record as the runner writes it (plus room for provenance)."""
    record = make_record(
        run_id="estimate",
        method_label=description["name"],
        method=description,
        case=case,
        prompt_index=0,
        prompt=case.prompts[0],
        seed=0,
        video="x.mp4",
        # a stand-in where the metrics were not measured: only the record's size matters
        metric_values={name: _or_zero(metrics.get(name)) for name in metric_fields()},
        metric_versions=metrics.get("metric_versions", {}),
        metric_constants=metrics.get("metric_constants", {}),
        backbone=backbone.describe(),
        suite=suite,
        timestamps={},
    )
    return len(json.dumps(record.to_dict(), indent=2, sort_keys=True, default=str)) + 2048


def _or_zero(value: Any) -> Any:
    return 0.0 if value is None else value


def project(out: dict[str, Any]) -> dict[str, Any]:
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
            + out.get("motion_references_seconds", 0.0)
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
