"""The evaluation stage of a case: score each stored video and write its record.

Metrics read the stored video, as the authors' evaluation reads the saved mp4s: a resumed run
and a fresh one score the same bytes. The record (:func:`video_record`) holds the scores, the
method's description, the backbone's, the run config, every seed and where it was computed.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import metrics
from ..io import failpoint, read_json
from ..media import probe_video, read_video
from ..provenance import determinism_flags, now_iso
from ..records import Record, make_record
from ..run_config import METRICS_SEED, RunConfig
from ..spec import Case
from ..store import CaseDir, EventLog, ResultStore
from .seeding import stage_seeds

if TYPE_CHECKING:
    from ..metrics.evaluator import Evaluator
    from ..progress import RunProgress


@dataclasses.dataclass(frozen=True)
class RecordContext:
    """What every record a worker writes shares.

    Attributes:
        config: the run's config (stored whole in each record).
        store: the run's store (its id, the videos' relative paths; records are written there).
        label: the method label (variant) the records go under.
        method: the method's description (:meth:`~dualreal_bench.method.Method.describe`).
        method_seed: the method config's seed.
        backbone_seed: the backbone's seed (None for a test double without one).
        execution: where the records are computed (host, pid, threads, executor, shard).
        backbone: the loaded backbone's description, for a video whose provenance has none.
    """

    config: RunConfig
    store: ResultStore
    label: str
    method: dict[str, Any]
    method_seed: int
    backbone_seed: int | None
    execution: dict[str, Any]
    backbone: Callable[[], dict[str, Any] | None]


def evaluate_videos(
    evaluator: Evaluator,
    case: Case,
    cdir: CaseDir,
    items: list[tuple[int, int]],
    context: RecordContext,
    *,
    events: EventLog,
    counts: Counter,
    progress: RunProgress | None,
) -> None:
    """Score the stored videos ``items`` (prompt index, seed) of ``case``; write their records."""
    with _reference_progress(evaluator, progress):
        task = progress.add_task("evaluate", total=len(items)) if progress else None
        for prompt_index, seed in items:
            video_path = cdir.video(prompt_index, seed)
            frames = read_video(video_path)
            # the stored frame rate sets Dynamic Degree's ~8 fps sampling step
            fps = probe_video(video_path).fps
            prompt = case.prompts[prompt_index]
            result = evaluator.evaluate_video(frames, prompt=prompt, case=case, fps=fps)
            failpoint("evaluate")
            info_path = cdir.generation_info(prompt_index, seed)
            info = read_json(info_path) if info_path.is_file() else {}
            record = video_record(context, case, video_path, prompt_index, seed, result, info)
            context.store.write_record(context.label, case.case_id, record)
            counts["evaluated"] += 1
            events.write("evaluated", case=case.case_id, prompt_index=prompt_index, seed=seed)
            if progress:
                progress.advance(task)
        if progress:
            progress.remove_task(task)


def video_record(
    context: RecordContext,
    case: Case,
    video_path: Path,
    prompt_index: int,
    seed: int,
    result: dict[str, Any],
    info: dict[str, Any],
) -> Record:
    """The record of one scored video (``result``: the evaluator's; ``info``: what the
    generation stage wrote beside the video)."""
    cfg, store = context.config, context.store
    stamps = {"generated": info["generated"]} if "generated" in info else {}
    stamps["evaluated"] = now_iso()
    # per-video results that are no metric value (motion fidelity's nearest motion)
    details = {"metric_details": result["metric_details"]} if "metric_details" in result else {}
    return make_record(
        run_id=store.run_id,
        method_label=context.label,
        method=context.method,
        case=case,
        prompt_index=prompt_index,
        prompt=case.prompts[prompt_index],
        seed=seed,
        video=str(video_path.relative_to(store.run_dir)),
        metric_values={name: result.get(name) for name in metrics.metric_fields()},
        metric_versions=result.get("metric_versions", {}),
        metric_constants=result.get("metric_constants", {}),
        backbone=info.get("backbone") or context.backbone(),
        suite=cfg.suite,
        timestamps=stamps,
        extra={
            "run_config": cfg.record_dict(),
            "profile": cfg.profile,
            "seeds": _seeds(context, case, prompt_index, seed),
            "determinism": determinism_flags(),
            "execution": context.execution,
            **details,
        },
    )


def _seeds(context: RecordContext, case: Case, prompt_index: int, seed: int) -> dict[str, Any]:
    return {
        "generation": seed,
        "method": context.method_seed,
        "backbone": context.backbone_seed,
        "metrics": METRICS_SEED,
        # torch/numpy/random global generators, seeded per stage (seed_global_rngs)
        "global_rngs": stage_seeds(context.method_seed, case.case_id, prompt_index, seed),
    }


@contextlib.contextmanager
def _reference_progress(evaluator: Evaluator, progress: RunProgress | None) -> Iterator[None]:
    """While the block runs, a progress row for the reference clips the evaluator scores (the
    slow part of a cold first run: the case's motion clips, and once per machine every motion's
    clips for motion fidelity; none when they come from the cache)."""
    if not progress:
        yield
        return
    task = None

    def on_reference(stage: str, step: int, total: int) -> None:
        nonlocal task
        if task is None:
            task = progress.add_task(stage, total=total)
        progress.update(task, completed=step, total=total)
        if step >= total:
            progress.remove_task(task)
            task = None

    evaluator.progress_callback = on_reference
    try:
        yield
    finally:
        evaluator.progress_callback = None
