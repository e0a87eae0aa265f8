"""The case loop: train -> save state -> generate each prompt -> save video -> evaluate -> record.

Every stage writes its output (atomically) before the next starts, and every stage is
skipped when its output already exists, so a run that dies resumes where it stopped:

* a case whose records all exist is skipped without loading anything;
* a complete ``state/`` is loaded instead of training again;
* an existing video is evaluated without being generated again;
* an existing record is kept.

Heavy components (the backbone, the metric encoders) load only when some stage needs them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from .config import Config
from .errors import ConfigError
from .method import Method, MethodConfig, get_method_class
from .store import ResultStore, atomic_path, atomic_write_json, check_label, make_record, now_iso

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class RunConfig(Config):
    """What ``dualreal-bench run`` does. Saved in ``run.json`` and in every record."""

    suite: str = "smoke"
    method: str = "base"  # registered name or "module:Class"
    method_overrides: tuple[str, ...] = ()  # "key=value" for the method's config
    name: str | None = None  # store label; default: method name + overrides
    profile: str = "tiny"  # backbone profile
    backbone_overrides: tuple[str, ...] = ()  # "key=value" for BackboneConfig
    metrics_profile: str | None = None  # encoders: "tiny" for the tiny backbone, else "real"
    data_root: str | None = None
    prompt_file: str | None = None
    num_prompts: int | None = None  # first N prompts of each case (quick runs)
    seeds: tuple[int, ...] = (0,)
    output_dir: str = "results"
    run_id: str | None = None  # default: "<suite>-<profile>"
    shard: tuple[int, int] = (0, 1)  # (index, count): this process runs cases[index::count]
    evaluate: bool = True
    device: str | None = None  # for the metric encoders; the backbone's is in its config
    progress: bool = True

    def validate(self) -> None:
        index, count = self.shard
        if count < 1 or not 0 <= index < count:
            raise ConfigError(f"--shard {index}/{count}: need 0 <= i < N")
        if not self.seeds:
            raise ConfigError("--seeds: give at least one seed")
        if len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(f"--seeds {self.seeds}: seeds repeat")
        if self.num_prompts is not None and self.num_prompts < 1:
            raise ConfigError(f"--num-prompts {self.num_prompts}: must be >= 1")
        if self.name is not None:
            check_label(self.name)

    @property
    def resolved_run_id(self) -> str:
        return self.run_id or f"{self.suite}-{self.profile}"

    def label_for(self, method_name: str) -> str:
        """The store label: ``--name``, else the method's registry name plus its overrides."""
        if self.name:
            return self.name
        base = method_name
        if self.method_overrides:
            base += "[" + ",".join(sorted(self.method_overrides)) + "]"
        return check_label(base)


@dataclasses.dataclass
class RunSummary:
    run_dir: Path
    label: str
    cases: int
    counts: Counter  # trained / loaded / generated / evaluated / skipped_cases / ...
    seconds: float


def shard_cases(cases: list, index: int, count: int) -> list:
    """Deterministic split for job arrays: case ``k`` goes to shard ``k % count``."""
    return cases[index::count]


class Runner:
    """Runs one method over one suite into a :class:`ResultStore`.

    ``backbone``, ``evaluator`` and ``cases`` may be injected (tests, notebooks); otherwise
    they load lazily from ``config.profile`` / ``config.metrics_profile`` / ``config.suite``
    when a stage needs them.
    """

    def __init__(self, config: RunConfig, *, backbone: Any = None, evaluator: Any = None,
                 cases: list | None = None) -> None:
        self.config = config
        self._cases = cases
        self._backbone = backbone
        self._evaluator = evaluator
        self.method_class = get_method_class(config.method)
        # Build (and so validate) the method config before any heavy loading.
        self.method_config: MethodConfig = self.method_class.config_class().with_overrides(
            list(config.method_overrides)
        )
        self.store = ResultStore(config.output_dir, config.resolved_run_id)
        self.counts: Counter = Counter()

    # ---- lazily loaded components ------------------------------------------------------
    @property
    def backbone(self) -> Any:
        if self._backbone is None:
            from .backbone import load_backbone

            logger.info("loading backbone profile %r", self.config.profile)
            self._backbone = load_backbone(self.config.profile, list(self.config.backbone_overrides))
        return self._backbone

    @property
    def evaluator(self) -> Any:
        if self._evaluator is None:
            from .metrics import build_evaluator

            profile = self.config.metrics_profile or ("tiny" if self.config.profile == "tiny" else "real")
            logger.info("loading metric encoders (%s)", profile)
            self._evaluator = build_evaluator(
                profile,
                device=self.config.device or "cpu",
                cache_dir=self.store.run_dir / "cache",
                progress=self.config.progress,
            )
        return self._evaluator

    def _backbone_description(self) -> dict[str, Any] | None:
        if self._backbone is None:
            return None
        return self._backbone.describe() if hasattr(self._backbone, "describe") else None

    # ---- the loop ------------------------------------------------------------------------
    def run(self) -> RunSummary:
        cfg = self.config
        start = time.perf_counter()
        cases = self._cases
        if cases is None:
            from .spec import build_cases

            cases = build_cases(cfg.suite, data_root=cfg.data_root, prompt_file=cfg.prompt_file,
                                num_prompts=cfg.num_prompts)
        cases = shard_cases(cases, *cfg.shard)
        label = cfg.label_for(self.method_class.name)
        self.store.init_run({"suite": cfg.suite, "profile": cfg.profile})
        self.store.init_method(label, {
            "name": self.method_class.name,
            "class": f"{self.method_class.__module__}:{self.method_class.__qualname__}",
            "config": self.method_config.to_dict(),
            "backbone_overrides": list(cfg.backbone_overrides),
        })
        index, count = cfg.shard
        atomic_write_json(self.store.run_dir / label / "expected" / f"shard{index}of{count}.json",
                          {case.case_id: len(case.prompts) * len(cfg.seeds) for case in cases})
        with _progress(cfg.progress) as progress:
            case_task = progress.add_task(f"{label}: cases", total=len(cases)) if progress else None
            for case in cases:
                self._run_case(case, label, progress)
                if progress:
                    progress.advance(case_task)
        seconds = time.perf_counter() - start
        logger.info("run %s / %s: %d cases, %s in %.1f s", self.store.run_id, label, len(cases),
                    dict(self.counts), seconds)
        return RunSummary(self.store.run_dir, label, len(cases), self.counts, seconds)

    def _run_case(self, case: Any, label: str, progress: Any) -> None:
        cfg = self.config
        cdir = self.store.case_dir(label, case.case_id)
        wanted = [(i, s) for i in range(len(case.prompts)) for s in cfg.seeds]
        pending = [(i, s) for i, s in wanted if not cdir.record(i, s).is_file()]
        if not pending:
            self.counts["skipped_cases"] += 1
            return
        timestamps: dict[tuple[int, int], dict[str, str]] = {}
        to_generate = [(i, s) for i, s in pending if not cdir.video(i, s).is_file()]
        if to_generate:
            method = self.method_class(self.backbone, self.method_config)
            try:
                self._prepare(method, case, cdir, progress)
                self._generate(method, case, cdir, to_generate, timestamps, progress)
            finally:
                method.teardown()
        if cfg.evaluate:
            self._evaluate(case, label, cdir, pending, timestamps, progress)

    def _prepare(self, method: Method, case: Any, cdir: Any, progress: Any) -> None:
        if not method.trains:
            return
        if cdir.state_complete:
            method.load(cdir.state)
            self.counts["loaded"] += 1
            return
        task = progress.add_task(f"train {case.case_id}", total=None) if progress else None

        def on_progress(stage: str, step: int, total: int, info: dict[str, Any]) -> None:
            if progress:
                loss = info.get("loss")
                desc = f"{stage} {case.case_id}" + (f" loss {loss:.4f}" if loss is not None else "")
                progress.update(task, completed=step, total=total, description=desc)

        method.progress_callback = on_progress
        started = now_iso()
        t0 = time.perf_counter()
        stats = method.train(case) or {}
        method.save(cdir.state)
        atomic_write_json(cdir.train_stats, {"started": started, "finished": now_iso(),
                                             "seconds": time.perf_counter() - t0, **stats})
        self.counts["trained"] += 1
        if progress:
            progress.remove_task(task)

    def _generate(self, method: Method, case: Any, cdir: Any, items: list[tuple[int, int]],
                  timestamps: dict, progress: Any) -> None:
        from .media import write_video

        fps = getattr(getattr(self.backbone, "config", None), "fps", 8)
        task = progress.add_task(f"generate {case.case_id}", total=len(items)) if progress else None
        for prompt_index, seed in items:
            video = method.generate([case.prompts[prompt_index]], seed)
            if len(video) != 1:
                raise TypeError(f"{type(method).__name__}.generate returned {len(video)} videos for 1 prompt")
            frames = _check_video(video[0], method)
            extras = method.generation_extras()
            if extras and extras[0]:
                with atomic_path(cdir.extras(prompt_index, seed)) as tmp:
                    np.savez(tmp, **extras[0])
            # The video is written last: its existence marks the generation stage done.
            write_video(cdir.video(prompt_index, seed), frames, fps=fps)
            timestamps[(prompt_index, seed)] = {"generated": now_iso()}
            self.counts["generated"] += 1
            if progress:
                progress.advance(task)
        if progress:
            progress.remove_task(task)

    def _evaluate(self, case: Any, label: str, cdir: Any, items: list[tuple[int, int]],
                  timestamps: dict, progress: Any) -> None:
        from .media import read_video

        task = progress.add_task(f"evaluate {case.case_id}", total=len(items)) if progress else None
        description = {
            "name": self.method_class.name,
            "class": f"{self.method_class.__module__}:{self.method_class.__qualname__}",
            "config": self.method_config.to_dict(),
        }
        for prompt_index, seed in items:
            video_path = cdir.video(prompt_index, seed)
            # Metrics read the stored video, as the authors' evaluation reads the saved mp4s:
            # a resumed run and a fresh one score the same bytes.
            frames = read_video(video_path)
            prompt = case.prompts[prompt_index]
            metrics = self.evaluator.evaluate_video(frames, prompt=prompt, case=case)
            stamps = {**timestamps.get((prompt_index, seed), {}), "evaluated": now_iso()}
            record = make_record(
                run_id=self.store.run_id, method_label=label, method=description, case=case,
                prompt_index=prompt_index, prompt=prompt, seed=seed,
                video=str(video_path.relative_to(self.store.run_dir)), metrics=metrics,
                backbone=self._backbone_description(), suite=self.config.suite, timestamps=stamps,
                extra={"run_config": self.config.to_dict(), "profile": self.config.profile},
            )
            self.store.write_record(label, case.case_id, record)
            self.counts["evaluated"] += 1
            if progress:
                progress.advance(task)
        if progress:
            progress.remove_task(task)


def _check_video(frames: Any, method: Method) -> np.ndarray:
    if not isinstance(frames, np.ndarray) or frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        got = f"{type(frames).__name__} {getattr(frames, 'dtype', '')} {getattr(frames, 'shape', '')}"
        raise TypeError(f"{type(method).__name__}.generate must return uint8 (T, H, W, 3) arrays, got {got}")
    return frames


@contextlib.contextmanager
def _progress(enabled: bool) -> Iterator[Any]:
    if not enabled:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), transient=False) as progress:
        yield progress
