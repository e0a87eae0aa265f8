"""``dualreal-bench evaluate``: score videos made by any method, into the same result store.

One video per prompt, in ``--videos DIR`` (``.mp4 .avi .mov .mkv .webm``), named by the
0-based index of its prompt:

* ``<index>.<ext>`` or ``<index>_<anything>.<ext>`` -- e.g. ``000.mp4``, ``7_dog_guitar.mp4``
  (seed ``--seed``, default 0);
* ``p<index>_s<seed>.<ext>`` -- the store's own names (``p003_s42.mp4``), several seeds allowed.

Prompt ``i`` is line ``i`` of ``--prompts FILE`` (one per line), else prompt ``i`` of the case
exactly as ``dualreal-bench run`` builds it: the case of ``--suite``, else of the suite of the
run being added to (when it has the pair), else of the first suite that has the pair (paper,
ablation, full, smoke), else a case outside any suite (suite ``custom``). So scoring a run's
own videos gives the run's numbers. Records land in
``<output-dir>/<run-id>/<method-name>/<case>/records`` beside the runner's, so
``dualreal-bench report`` compares them with the built-in methods. A run that ``evaluate``
creates records the suite and, as its profile, the metrics profile (the generator is
unknown). Existing records are kept (the command resumes) unless ``--overwrite``; an invalid
one (truncated, an incomplete metric set) is moved aside into the case's ``invalid/`` folder and
scored again. Videos of different sizes and lengths may share the folder.

Everything is checked before the first byte is written: the options (``--fps``, ``--seed``,
``--batch``, ``--device`` as ``run`` checks them), the case, every video (it must decode and be
long enough to be scored), the case's reference images and clips, and the encoders' weights.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console

from .. import metrics  # through the module: tests swap its build_evaluator
from ..cache import user_cache_dir
from ..config import check_seed
from ..errors import ConfigError, DataError
from ..media import list_videos, probe_video, read_video
from ..provenance import now_iso, now_stamp
from ..records import Record, make_record, record_problem
from ..spec import (
    CUSTOM_SUITE,
    Case,
    build_case,
    build_cases,
    get_suite,
    load_suites,
    preflight,
)
from ..store import CaseDir, ResultStore
from .run import add_device_arg, add_motion_backend_arg

if TYPE_CHECKING:  # the evaluator module imports torch
    from ..metrics.evaluator import Evaluator

logger = logging.getLogger(__name__)

_STORE_NAME = re.compile(r"^p(\d+)_s(-?\d+)$")
_INDEX_NAME = re.compile(r"^(\d+)(?:[_\-. ].*)?$")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate", help="score externally generated videos (one per prompt) into the store"
    )
    p.add_argument(
        "--videos",
        required=True,
        help="folder of videos named <prompt index>[_*].mp4 or p<i>_s<seed>.mp4",
    )
    p.add_argument("--identity", required=True, help="identity (subject) folder name")
    p.add_argument("--motion", required=True, help="motion folder name")
    p.add_argument(
        "--suite",
        help="suite the case is taken from, prompts included, as `run` does "
        "(default: the run's suite if it has the pair, else the first suite that has it)",
    )
    p.add_argument(
        "--prompts",
        help="prompt file, one a line (default: the case's prompts, as `run` uses them)",
    )
    p.add_argument(
        "--data-root",
        help="benchmark data (default: $DUALREAL_BENCH_DATA; the smoke suite: "
        "its generated sample data)",
    )
    p.add_argument("--output-dir", default="results", help="results root (default: results)")
    p.add_argument("--run-id", default="external", help="run directory name (default: external)")
    p.add_argument(
        "--method-name",
        default="external",
        help="label of the method in the store (default: external)",
    )
    p.add_argument(
        "--metrics-profile",
        "--profile",
        dest="profile",
        choices=("tiny", "real"),
        default="real",
        help="metric encoders: real (the paper's weights; default) or tiny (pipeline check)",
    )
    p.add_argument("--weights-dir", help="folder holding the metric weights (see README)")
    add_device_arg(p)
    add_motion_backend_arg(p)
    p.add_argument(
        "--seed", type=int, default=0, help="seed recorded for <index>.mp4 names (default: 0)"
    )
    p.add_argument(
        "--fps", type=float, help="frame rate of the videos (default: read from each file)"
    )
    p.add_argument("--batch", type=int, default=4, help="videos scored together (default: 4)")
    p.add_argument(
        "--overwrite", action="store_true", help="score again videos that already have a record"
    )
    p.set_defaults(func=run)


def evaluation_case(
    identity: str,
    motion: str,
    *,
    suite: str | None = None,
    data_root: str | None = None,
    prompt_file: str | None = None,
    prefer: str | None = None,
) -> tuple[Any, str]:
    """``(case, suite name)`` of the pair, built as ``dualreal-bench run`` builds it.

    ``suite``: take the case from this suite (ConfigError if it has no such pair). Otherwise
    the first suite having the pair, trying ``prefer`` (the run's suite) first; none: a case
    outside any suite (:func:`~dualreal_bench.spec.build_case`, suite ``custom``).
    """
    pair = (identity, motion)
    if suite is not None:
        spec = get_suite(suite)
        if pair not in spec.pairs:
            raise ConfigError(
                f"--suite {suite}: has no case {identity}__{motion} (see `list suites`)"
            )
    elif prefer == CUSTOM_SUITE:
        spec = None
    else:
        suites = load_suites()
        names = ([prefer] if prefer in suites else []) + list(suites)
        spec = next((suites[n] for n in names if pair in suites[n].pairs), None)
    if spec is None:
        return build_case(
            identity, motion, data_root=data_root, prompt_file=prompt_file
        ), CUSTOM_SUITE
    # the suite's own definitions (the smoke suite's subject and motion), data and prompts
    one = dataclasses.replace(spec, pairs=(pair,))
    return build_cases(one, data_root=data_root, prompt_file=prompt_file)[0], spec.name


def parse_video_name(path: Path, default_seed: int) -> tuple[int, int]:
    """``(prompt_index, seed)`` from a file name; DataError naming the file otherwise."""

    m = _STORE_NAME.match(path.stem)
    if m:
        index, seed = int(m.group(1)), int(m.group(2))
        try:
            check_seed(seed, "seed")
        except ConfigError as exc:
            raise DataError(f"{path}: {exc}") from None
        return index, seed
    m = _INDEX_NAME.match(path.stem)
    if m:
        return int(m.group(1)), default_seed
    raise DataError(
        f"{path}: cannot tell which prompt this video is for; name videos <prompt index>.mp4 "
        "(0-based, e.g. 000.mp4 or 3_dog.mp4) or p<index>_s<seed>.mp4"
    )


def collect_videos(
    directory: Path, num_prompts: int, default_seed: int
) -> list[tuple[int, int, Path]]:
    """Sorted ``(prompt_index, seed, path)`` of the videos in ``directory``, checked."""

    items: dict[tuple[int, int], Path] = {}
    for path in list_videos(directory):
        key = parse_video_name(path, default_seed)
        if key[0] >= num_prompts:
            raise DataError(
                f"{path}: prompt index {key[0]} but the case has {num_prompts} prompt(s)"
            )
        if key in items:
            raise DataError(f"{path} and {items[key]} are both prompt {key[0]}, seed {key[1]}")
        items[key] = path
    return [(i, s, p) for (i, s), p in sorted(items.items())]


def check_args(args: argparse.Namespace) -> None:
    """The options, as ``run`` checks its own (ConfigError naming the option)."""

    if args.batch < 1:
        raise ConfigError(f"--batch {args.batch}: must be at least 1")
    check_seed(args.seed, "--seed")
    if args.fps is not None and not (math.isfinite(args.fps) and args.fps > 0):
        raise ConfigError(f"--fps {args.fps}: must be a positive number of frames per second")


def check_videos(videos: list[tuple[int, int, Path]], fps: float | None, evaluator: Any) -> None:
    """Decode (probe) every video before anything is written: each must read and be long
    and large enough for ``evaluator`` to score it (DataError naming the file)."""

    for _, _, path in videos:
        info = probe_video(path)
        problem = evaluator.scorable_problem(
            info.num_frames, fps or info.fps, (info.height, info.width)
        )
        if problem:
            raise DataError(f"{path}: {problem}")


@dataclass
class _Plan:
    """What ``evaluate`` will do, worked out (and checked) before anything is written."""

    store: ResultStore
    case: Case
    suite: str
    label: str
    description: dict[str, Any]
    info: dict[str, Any]
    videos: list[tuple[int, int, Path]]
    todo: list[tuple[int, int, Path]]
    device: str

    @property
    def cdir(self) -> CaseDir:
        return self.store.case_dir(self.label, self.case.case_id)

    def problem(self, prompt_index: int, seed: int) -> str | None:
        """Why the record of this video is not a finished one (None: it is)."""
        key = (self.label, self.case.case_id, prompt_index, seed)
        path = self.cdir.record(prompt_index, seed)
        return record_problem(path, fields=metrics.metric_fields(), key=key)


def run(args: argparse.Namespace) -> int:
    """Check everything (options, case, videos, reference media, encoders' weights), then
    write: a bad input leaves the store as it was."""
    plan = _plan(args)  # 1. everything that can fail on bad input, reading only
    evaluator = _evaluator(args, plan) if plan.todo else None
    _open_in_store(plan)  # 2. the store
    if evaluator is None:
        print(f"{plan.case.case_id}: all {len(plan.videos)} video(s) already scored in "
              f"{plan.store.run_dir / plan.label}")  # fmt: skip
        return 0
    with plan.cdir.lock():  # 3. the scores
        _set_aside_invalid(plan, overwrite=args.overwrite)
        extra = {"external": True, "metrics_profile": args.profile, "metrics_device": plan.device}
        means = _score_into_store(plan, evaluator, args.batch, args.fps, extra)
    means_text = "  ".join(f"{k}={v:.4f}" for k, v in means.items())
    print(f"{plan.label} on {plan.case.case_id}: scored {len(plan.todo)} video(s) -> "
          f"{plan.cdir.records}\n  mean {means_text}")  # fmt: skip
    return 0


def _plan(args: argparse.Namespace) -> _Plan:
    directory = Path(args.videos)
    if not directory.is_dir():
        raise DataError(f"{directory}: no such folder (--videos)")
    check_args(args)
    device = metrics.resolve_metrics_device(args.device, args.profile)
    store = ResultStore(args.output_dir, args.run_id)
    store.check_output_root()
    existing = store.run_info() if (store.run_dir / "run.json").is_file() else None
    case, suite = evaluation_case(
        args.identity,
        args.motion,
        suite=args.suite,
        data_root=args.data_root,
        prompt_file=args.prompts,
        prefer=(existing or {}).get("suite"),
    )
    videos = collect_videos(directory, len(case.prompts), args.seed)
    label = args.method_name
    store.case_dir(label, case.case_id)  # the label and the case fit the filesystem
    info = {
        "suite": suite,
        "metrics_profile": args.profile,
        "motion_backend": metrics.resolved_motion_backend(args.motion_backend, args.profile),
    }
    if existing is None:  # the generator is unknown: the metrics profile stands for it
        info["profile"] = args.profile
    store.check_run(info)
    description = {
        "name": label,
        "class": "external",
        "config": {"videos": str(directory.resolve())},
    }
    store.check_method(label, description)
    plan = _Plan(store, case, suite, label, description, info, videos, [], device)
    plan.todo = [v for v in videos if args.overwrite or plan.problem(v[0], v[1]) is not None]
    if plan.todo:
        preflight([case], clip_fps=metrics.MetricConstants().dd_target_fps)
    logger.info("%s (suite %s): %d video(s), %d to score (%s)",
                case.case_id, suite, len(videos), len(plan.todo), directory)  # fmt: skip
    if args.profile == "tiny":
        Console(stderr=True, quiet=args.quiet, soft_wrap=True).print(
            "[yellow]tiny metrics profile: random-initialised encoders; the numbers check the "
            "pipeline, they measure nothing[/]"
        )
    return plan


def _evaluator(args: argparse.Namespace, plan: _Plan) -> Evaluator:
    """The encoders (their weights are checked here, before any write), and every video to
    score checked against them."""
    logger.info("loading metric encoders (%s) on %s", args.profile, plan.device)
    evaluator = metrics.build_evaluator(
        args.profile,
        device=plan.device,
        cache_dir=user_cache_dir(),
        weights_dir=args.weights_dir,
        progress=not args.quiet,
        motion_backend=args.motion_backend,
    )
    check_videos(plan.todo, args.fps, evaluator)
    return evaluator


def _open_in_store(plan: _Plan) -> None:
    """Create the run and the method (if new) and raise the case's expected video count to the
    folder's (``report`` counts against it)."""
    store, label, case_id = plan.store, plan.label, plan.case.case_id
    store.init_run(plan.info)
    store.init_method(label, plan.description)
    expected = store.read_expected(label, (0, 1))
    count = max(len(plan.videos), expected.get(case_id, 0))
    store.write_expected(label, (0, 1), {**expected, case_id: count})


def _set_aside_invalid(plan: _Plan, *, overwrite: bool) -> None:
    """Move records that exist but are not finished ones into the case's ``invalid/`` folder."""
    stamp = f"{now_stamp()}-{os.getpid()}"
    for prompt_index, seed, _ in plan.todo:
        why = plan.problem(prompt_index, seed)
        if why not in (None, "missing") and not overwrite:
            moved = plan.cdir.set_aside([plan.cdir.record(prompt_index, seed)], stamp)
            logger.warning("%s; moved to %s, to be redone", why, moved[0])


def _score_into_store(
    plan: _Plan, evaluator: Evaluator, batch: int, fps: float | None, extra: dict[str, Any]
) -> dict[str, float]:
    """Score the videos to do, ``batch`` at a time, and write each one's record as soon as its
    batch is scored; the mean of every metric."""
    common = {"run_id": plan.store.run_id, "method_label": plan.label, "method": plan.description}
    common |= {"case": plan.case, "suite": plan.suite}
    sums = dict.fromkeys(metrics.metric_fields(), 0.0)
    for start in range(0, len(plan.todo), batch):
        chunk = plan.todo[start : start + batch]
        for record in _score_chunk(evaluator, chunk, plan.case, fps, common, extra):
            plan.store.write_record(plan.label, plan.case.case_id, record)
            for k in metrics.metric_fields():
                sums[k] += float(record.metrics[k])
    return {k: total / len(plan.todo) for k, total in sums.items()}


def _score_chunk(
    evaluator: Evaluator,
    chunk: list[tuple[int, int, Path]],
    case: Case,
    fps: float | None,
    common: dict[str, Any],
    extra: dict[str, Any],
) -> list[Record]:
    """Records of the ``(prompt_index, seed, path)`` videos of ``chunk``, in order of ``chunk``:
    videos of one frame rate (``fps``, else each file's own) are scored together."""
    frames = [read_video(path) for _, _, path in chunk]
    groups: dict[float, list[int]] = {}
    for j, (_, _, path) in enumerate(chunk):
        groups.setdefault(fps or probe_video(path).fps, []).append(j)
    records: dict[int, Record] = {}
    for group_fps, members in groups.items():
        scores = evaluator.evaluate_videos(
            [(frames[j], case.prompts[chunk[j][0]]) for j in members], case, fps=group_fps
        )
        for j, values in zip(members, scores, strict=True):
            prompt_index, seed, path = chunk[j]
            records[j] = make_record(
                **common,
                prompt_index=prompt_index,
                prompt=case.prompts[prompt_index],
                seed=seed,
                video=str(path.resolve()),
                metric_values={k: values.get(k) for k in metrics.metric_fields()},
                metric_versions=values.get("metric_versions", {}),
                metric_constants=values.get("metric_constants", {}),
                backbone=None,
                timestamps={"evaluated": now_iso()},
                extra={**extra, "fps": group_fps, **_details(values)},
            )
    return [records[j] for j in range(len(chunk))]


def _details(values: dict[str, Any]) -> dict[str, Any]:
    """The record's ``metric_details`` (motion fidelity's nearest motion), when the evaluator
    gave them."""
    return {"metric_details": values["metric_details"]} if "metric_details" in values else {}
