"""The case worker: train -> save state -> generate each prompt -> save video -> evaluate ->
record, for whole cases of one method, into the store. Both executors run cases through it.

Every stage writes its output (atomically) before the next starts, and every stage is
skipped when its output already exists and is valid, so a run that dies resumes where it
stopped:

* a case whose records are all valid (:func:`~dualreal_bench.records.record_problem`: they
  parse, validate, hold every metric and are the records of their video) is skipped without
  loading anything;
* a complete ``state/`` is loaded instead of training again (a state that does not read is
  an error naming the file: training is too costly to redo behind the user's back);
* an existing video that decodes is evaluated without being generated again;
* a valid record is kept.

An invalid output (a truncated record, a video that does not decode) is not "done": it is
moved into the case's ``invalid/<time>/`` folder (kept, named in a warning and in the event
log) and its stage is redone.

A case directory is worked on under a lock, so overlapping shards never do a stage twice.
Heavy components (the backbone, the metric encoders) load only when some stage needs them,
and are kept across the cases a worker runs. The global random generators are seeded per
stage (:mod:`.seeding`), so results do not depend on the process or on where a run resumed.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import metrics
from ..cache import user_cache_dir
from ..checkpoint import check_state_files
from ..errors import ConfigError, DataError, MediaError, WeightsError
from ..io import as_json, atomic_path, atomic_write_json, failpoint, read_json
from ..media import check_video_array, probe_video, read_video, write_video
from ..method import Method, MethodConfig, get_method_class
from ..metrics.constants import scorable_problem
from ..provenance import determinism_flags, execution_info, now_iso, now_stamp
from ..records import Record, make_record, record_problem
from ..run_config import METRICS_SEED, RunConfig
from ..spec import Case
from ..store import CaseDir, EventLog, ResultStore
from .seeding import apply_determinism, global_seed, seed_global_rngs, stage_seeds

if TYPE_CHECKING:
    from ..backbone import Backbone, BackboneConfig
    from ..metrics import MetricConstants
    from ..metrics.evaluator import Evaluator
    from ..progress import RunProgress

logger = logging.getLogger(__name__)


# ---- the worker --------------------------------------------------------------------------------


class CaseWorker:
    """Runs cases of one method into the store; keeps the backbone and evaluator across cases.

    The local executor has one; each Ray actor has its own. ``backbone`` and ``evaluator``
    may be injected (tests); otherwise they load lazily when a stage needs them.
    """

    def __init__(
        self,
        config: RunConfig,
        *,
        backbone: Backbone | None = None,
        evaluator: Evaluator | None = None,
    ) -> None:
        self.config = config
        self._backbone = backbone
        self._evaluator = evaluator
        self.method_class = get_method_class(config.method)
        # Build (and so validate) the method config before any heavy loading.
        self.method_config: MethodConfig = self.method_class.config_class().with_overrides(
            list(config.method_overrides)
        )
        self.store = ResultStore(config.output_dir, config.resolved_run_id)
        self.label = config.label_for(self.method_class.name)
        #: what ``method.json`` holds before any method is constructed: the method as asked
        self.method_info: dict[str, Any] = {
            "name": self.method_class.name,
            "class": f"{self.method_class.__module__}:{self.method_class.__qualname__}",
            "config": self.method_config.to_dict(),
            "backbone_overrides": list(config.backbone_overrides),
        }
        self._description: dict[str, Any] | None = None
        #: under memory_budget: the settings chosen to fit it, planned once per process
        self._memory_plan: Any = None
        self._events: EventLog | None = None
        #: (path, size, mtime) of records and videos found valid (checked once per version)
        self._good_files: set[tuple[str, int, int]] = set()
        self._execution: dict[str, Any] | None = None
        apply_determinism(config.deterministic)

    # ---- lazily loaded components ------------------------------------------------------
    @property
    def backbone(self) -> Backbone:
        if self._backbone is None:
            from ..backbone import load_backbone  # torch and diffusers

            logger.info("loading backbone profile %r", self.config.profile)
            self._backbone = load_backbone(
                self.config.profile, list(self.config.backbone_overrides)
            )
        return self._backbone

    @property
    def evaluator(self) -> Evaluator:
        if self._evaluator is None:
            cfg = self.config
            profile = cfg.resolved_metrics_profile
            device = metrics.resolve_metrics_device(cfg.device, profile)
            logger.info("loading metric encoders (%s) on %s", profile, device)
            self._evaluator = metrics.build_evaluator(
                profile,
                device=device,
                # reference values are shared by every run on the machine (content-keyed)
                cache_dir=Path(cfg.cache_dir) if cfg.cache_dir else user_cache_dir(),
                progress=cfg.progress,
                seed=METRICS_SEED,
                motion_backend=cfg.motion_backend,
            )
        return self._evaluator

    @property
    def events(self) -> EventLog:
        if self._events is None:
            self._events = self.store.events(self.label)
        return self._events

    @property
    def description(self) -> dict[str, Any]:
        """What records store of the method (``configs["method"]``): the constructed method's
        :meth:`~dualreal_bench.method.Method.describe` -- this process's, else the one
        ``method.json`` holds (a resumed run that generates nothing constructs no method),
        else (a store of an older version) the method as asked."""
        if self._description is None:
            stored = self.store.method_info(self.label).get("description")
            if stored is None:
                return {k: self.method_info[k] for k in ("name", "class", "config")}
            self._description = stored
        return self._description

    def _backbone_description(self) -> dict[str, Any] | None:
        if self._backbone is None:
            return None
        return self._backbone.describe() if hasattr(self._backbone, "describe") else None

    def _backbone_seed(self) -> int | None:
        if self._backbone is not None:
            return getattr(getattr(self._backbone, "config", None), "seed", None)
        from ..backbone import BackboneConfig  # torch and diffusers

        return BackboneConfig.for_profile(
            self.config.profile, list(self.config.backbone_overrides)
        ).seed

    # ---- checks before the first write (reads only) -----------------------------------------
    def backbone_config(self) -> BackboneConfig | None:
        """The backbone's config, from the profile and ``--backbone-set`` (validated here,
        before any weight loads), or the injected backbone's (None for a test double)."""
        from ..backbone import BackboneConfig  # torch and diffusers

        if self._backbone is not None:
            config = getattr(self._backbone, "config", None)
            return config if isinstance(config, BackboneConfig) else None
        return BackboneConfig.for_profile(self.config.profile, list(self.config.backbone_overrides))

    def metric_constants(self) -> MetricConstants | None:
        """The constants the evaluator will score with (None for an injected test double
        without them)."""
        if self._evaluator is not None:
            return getattr(self._evaluator, "constants", None)
        return metrics.MetricConstants()

    def check_backbone(self, constants: MetricConstants | None) -> None:
        """The method's options against the backbone's shape
        (:meth:`~dualreal_bench.method.Method.check_backbone`), and, with ``constants``
        (the run evaluates), that the backbone's videos can be scored: a contradiction fails
        here, in a second, not after the backbone loaded and the store was written."""
        config = self.backbone_config()
        if config is None:
            return
        self.method_class.check_backbone(self.method_config, config)
        problem = constants and scorable_problem(config.num_frames, config.fps, constants)
        if problem:
            raise ConfigError(
                f"backbone {config.profile} with num_frames={config.num_frames}, "
                f"fps={config.fps} makes videos of {problem}; change --backbone-set"
            )

    def check_scorable(self) -> None:
        """With the evaluator loaded: the backbone's videos (frame count, rate and size) can
        be scored by it (its optical flow has a minimum frame size)."""
        config = self.backbone_config()
        check = getattr(self.evaluator, "scorable_problem", None)
        if config is None or check is None:
            return
        problem = check(config.num_frames, config.fps, (config.height, config.width))
        if problem:
            raise ConfigError(
                f"backbone {config.profile} with num_frames={config.num_frames}, "
                f"fps={config.fps}, {config.height}x{config.width} px makes videos of "
                f"{problem}; change --backbone-set"
            )

    def check_devices(self, needs: set[str]) -> None:
        """Resolve the devices of the components ``needs`` lists (ResourceError for a device
        this machine does not have) before anything loads onto them."""
        from ..devices import resolve_device

        if "evaluator" in needs and self._evaluator is None:
            cfg = self.config
            metrics.resolve_metrics_device(cfg.device, cfg.resolved_metrics_profile)
        if "backbone" in needs and self._backbone is None:
            config = self.backbone_config()
            if config is not None:
                resolve_device(config.device, "--backbone-set device")

    # ---- planning (reads only) -----------------------------------------------------------
    def wanted(self, case: Case) -> list[tuple[int, int]]:
        return [(i, s) for i in range(len(case.prompts)) for s in self.config.seeds]

    def record_problem(self, cdir: CaseDir, case: Case, key: tuple[int, int]) -> str | None:
        """None if the record of ``key`` is done (valid and complete), else why not
        (``"missing"`` or a message naming the file). A valid record is parsed once per file
        version in a process (a resumed run asks twice: while checking, then per case)."""
        path = cdir.record(*key)
        try:
            st = path.stat()
        except FileNotFoundError:
            return "missing"
        stamp = (str(path), st.st_size, st.st_mtime_ns)
        if stamp in self._good_files:
            return None
        problem = record_problem(
            path, fields=metrics.METRIC_FIELDS, key=(self.label, case.case_id, *key)
        )
        if problem is None:
            self._good_files.add(stamp)
        return problem

    def video_problem(self, cdir: CaseDir, key: tuple[int, int]) -> str | None:
        """None if the generated video of ``key`` is done (it decodes, with at least one frame,
        and its provenance file, if any, reads), else why not (``"missing"`` or a message
        naming the file). Decoding a video is checked once per file version in a process."""
        path = cdir.video(*key)
        if not path.is_file():
            return "missing"
        st = path.stat()
        stamp = (str(path), st.st_size, st.st_mtime_ns)
        if stamp not in self._good_files:
            try:
                probe_video(path)
            except MediaError as exc:
                return str(exc)
            self._good_files.add(stamp)
        info = cdir.generation_info(*key)
        if info.is_file():
            try:
                doc = read_json(info)
            except DataError as exc:
                return str(exc)
            if not isinstance(doc, dict):
                return f"{info}: holds {type(doc).__name__} JSON, not an object"
        return None

    def pending(self, case: Case) -> list[tuple[int, int]]:
        """The videos of ``case`` without a finished record (reads only)."""
        cdir = self.store.case_dir(self.label, case.case_id)
        return [k for k in self.wanted(case) if self.record_problem(cdir, case, k) is not None]

    def needs(self, case: Case) -> set[str]:
        """Which components the case still needs: ``{"backbone", "evaluator"}`` or fewer."""
        cdir = self.store.case_dir(self.label, case.case_id)
        pending = self.pending(case)
        out = set()
        if any(self.video_problem(cdir, k) is not None for k in pending):
            out.add("backbone")
        if pending and self.config.evaluate:
            out.add("evaluator")
        return out

    def check_case(self, case: Case) -> set[str]:
        """What :meth:`needs` says, after checking (reading only) the outputs a resumed case
        will load: a saved state must read (WeightsError naming the file), since it is loaded
        rather than trained again."""
        needs = self.needs(case)
        cdir = self.store.case_dir(self.label, case.case_id)
        if "backbone" in needs and self.method_class.trains and cdir.state_complete:
            check_state_files(cdir.state)
        return needs

    # ---- one case --------------------------------------------------------------------------
    def run_case(self, case: Case, progress: RunProgress | None = None) -> Counter:
        """Do whatever the case still needs; returns the stage counts of this call."""
        counts: Counter = Counter()
        cdir = self.store.case_dir(self.label, case.case_id)
        if not self.pending(case):
            counts["skipped_cases"] += 1
            return counts
        if progress is not None and hasattr(progress, "set_case"):
            progress.set_case(case.case_id)
        with cdir.lock():  # another process on the same case: wait, then see what it left
            cdir.remove_stale_temps()
            pending = self._set_aside_invalid(case, cdir, counts)
            if not pending:
                counts["skipped_cases"] += 1
                return counts
            to_generate = [k for k in pending if not cdir.video(*k).is_file()]
            if to_generate:
                method = self._construct(case)
                try:
                    self._prepare(method, case, cdir, counts, progress)
                    self._generate(method, case, cdir, to_generate, counts, progress)
                finally:
                    method.teardown()
            if self.config.evaluate:
                with _reference_progress(self.evaluator, progress):
                    self._evaluate(case, cdir, pending, counts, progress)
        return counts

    def _set_aside_invalid(
        self, case: Case, cdir: CaseDir, counts: Counter
    ) -> list[tuple[int, int]]:
        """The keys still to do; their invalid records and videos moved aside first (under
        the case's lock), so that the stages redo them."""
        stamp = f"{now_stamp()}-{os.getpid()}"
        pending = []
        for key in self.wanted(case):
            problem = self.record_problem(cdir, case, key)
            if problem is None:
                continue
            pending.append(key)
            if problem != "missing":
                self._set_aside(case, cdir, [cdir.record(*key)], problem, stamp, counts)
            problem = self.video_problem(cdir, key)
            if problem not in (None, "missing"):
                self._set_aside(case, cdir, cdir.video_files(*key), problem, stamp, counts)
        return pending

    def _set_aside(
        self,
        case: Case,
        cdir: CaseDir,
        paths: list[Path],
        problem: str,
        stamp: str,
        counts: Counter,
    ) -> None:
        moved = cdir.set_aside(paths, stamp)
        if not moved:
            return
        logger.warning(
            "%s; moved to %s, to be redone",
            problem,
            ", ".join(str(p.relative_to(cdir.root)) for p in moved),
        )
        counts["set_aside"] += len(moved)
        self.events.write(
            "set_aside",
            case=case.case_id,
            problem=problem,
            moved=[str(p.relative_to(cdir.root)) for p in moved],
        )

    def _construct(self, case: Case) -> Method:
        """The method for ``case``, built on the shared backbone; the first one built in this
        process adds its description to ``method.json``."""
        backbone = self.backbone
        seed_global_rngs(global_seed(self.method_config.seed, case.case_id))
        method = self.method_class(backbone, self.method_config)
        self._plan_memory(method)
        if self._description is None:
            description = as_json(method.describe())
            self.store.describe_method(self.label, self.method_info, description)
            self._description = description
        return method

    def _plan_memory(self, method: Method) -> None:
        """Under ``memory_budget``, the settings that fit it (micro-batches, offloaded encoders,
        checkpointing), planned with the memory model once and given to every case's method."""
        if not method.trains or getattr(self.method_config, "memory_budget", None) is None:
            return
        if self._memory_plan is None:
            # the memory model loads diffusers' models on the meta device: only under a budget
            from ..analysis.budget import apply_memory_budget

            self._memory_plan = apply_memory_budget(method)
            logger.info("memory_budget: %s", self._memory_plan.summary()["settings"])
        else:
            method.configure_memory(self._memory_plan.settings)

    def _prepare(
        self,
        method: Method,
        case: Case,
        cdir: CaseDir,
        counts: Counter,
        progress: RunProgress | None,
    ) -> None:
        """Train the method on ``case`` and save its state, or load the state a run saved."""
        if not method.trains:
            return
        if cdir.state_complete:
            try:
                method.load(cdir.state)
            except WeightsError as exc:
                msg = str(exc)
                raise WeightsError(
                    msg if str(cdir.state) in msg else f"{cdir.state}: {msg}"
                ) from None
            counts["loaded"] += 1
            self.events.write("loaded", case=case.case_id)
            return
        task = progress.add_task("train", total=None) if progress else None

        def on_progress(stage: str, step: int, total: int, info: dict[str, Any]) -> None:
            if progress:  # the loss has its own column; the variant and case are in the header
                loss = info.get("loss")
                progress.update(
                    task,
                    completed=step,
                    total=total,
                    description=stage,
                    loss=None if loss is None else float(loss),
                )
            if stage.startswith("train"):
                failpoint("train_step")

        method.progress_callback = on_progress
        seed_global_rngs(global_seed(self.method_config.seed, case.case_id, "train"))
        started = now_iso()
        t0 = time.perf_counter()
        stats = method.train(case) or {}
        seconds = time.perf_counter() - t0
        if self._memory_plan is not None:
            stats["memory_plan"] = self._memory_plan.summary()
        atomic_write_json(
            cdir.train_stats,
            {"started": started, "finished": now_iso(), "seconds": seconds, **stats},
        )
        method.save(cdir.state)  # the complete state marks the training stage done
        counts["trained"] += 1
        self.events.write("trained", case=case.case_id, seconds=round(seconds, 3))
        if progress:
            progress.remove_task(task)

    def _generate(
        self,
        method: Method,
        case: Case,
        cdir: CaseDir,
        items: list[tuple[int, int]],
        counts: Counter,
        progress: RunProgress | None,
    ) -> None:
        fps = getattr(getattr(self.backbone, "config", None), "fps", 8)
        task = progress.add_task("generate", total=len(items)) if progress else None
        for prompt_index, seed in items:
            seed_global_rngs(global_seed(self.method_config.seed, case.case_id, prompt_index, seed))
            t0 = time.perf_counter()
            video = method.generate([case.prompts[prompt_index]], seed)
            if len(video) != 1:
                raise TypeError(
                    f"{type(method).__name__}.generate returned {len(video)} videos for 1 prompt"
                )
            frames = check_video_array(video[0], f"{type(method).__name__}.generate")
            seconds = time.perf_counter() - t0
            failpoint("generate")
            extras = method.generation_extras()
            if extras and extras[0]:
                with atomic_path(cdir.extras(prompt_index, seed)) as tmp:
                    np.savez(tmp, **extras[0])
            atomic_write_json(
                cdir.generation_info(prompt_index, seed),
                {
                    "generated": now_iso(),
                    "seconds": seconds,
                    "backbone": self._backbone_description(),
                },
            )
            # The video is written last: its existence marks the generation stage done.
            write_video(cdir.video(prompt_index, seed), frames, fps=fps)
            counts["generated"] += 1
            self.events.write(
                "generated",
                case=case.case_id,
                prompt_index=prompt_index,
                seed=seed,
                seconds=round(seconds, 3),
            )
            if progress:
                progress.advance(task)
        if progress:
            progress.remove_task(task)

    def _evaluate(
        self,
        case: Case,
        cdir: CaseDir,
        items: list[tuple[int, int]],
        counts: Counter,
        progress: RunProgress | None,
    ) -> None:
        task = progress.add_task("evaluate", total=len(items)) if progress else None
        if self._execution is None:
            cfg = self.config
            self._execution = {
                **execution_info(),
                "executor": cfg.executor,
                "shard": list(cfg.shard),
            }
        for prompt_index, seed in items:
            video_path = cdir.video(prompt_index, seed)
            # Metrics read the stored video, as the authors' evaluation reads the saved mp4s:
            # a resumed run and a fresh one score the same bytes.
            frames = read_video(video_path)
            prompt = case.prompts[prompt_index]
            # the stored frame rate sets Dynamic Degree's ~8 fps sampling step
            fps = probe_video(video_path).fps
            result = self.evaluator.evaluate_video(frames, prompt=prompt, case=case, fps=fps)
            failpoint("evaluate")
            info_path = cdir.generation_info(prompt_index, seed)
            info = read_json(info_path) if info_path.is_file() else {}
            record = self._record(case, video_path, prompt_index, seed, result, info)
            self.store.write_record(self.label, case.case_id, record)
            counts["evaluated"] += 1
            self.events.write("evaluated", case=case.case_id, prompt_index=prompt_index, seed=seed)
            if progress:
                progress.advance(task)
        if progress:
            progress.remove_task(task)

    def _record(
        self,
        case: Case,
        video_path: Path,
        prompt_index: int,
        seed: int,
        result: dict[str, Any],
        info: dict[str, Any],
    ) -> Record:
        """The record of one scored video (``result``: the evaluator's; ``info``: what the
        generation stage wrote beside the video)."""
        cfg = self.config
        stamps = {"generated": info["generated"]} if "generated" in info else {}
        stamps["evaluated"] = now_iso()
        # per-video results that are no metric value (motion fidelity's nearest motion)
        details = {"metric_details": result["metric_details"]} if "metric_details" in result else {}
        return make_record(
            run_id=self.store.run_id,
            method_label=self.label,
            method=self.description,
            case=case,
            prompt_index=prompt_index,
            prompt=case.prompts[prompt_index],
            seed=seed,
            video=str(video_path.relative_to(self.store.run_dir)),
            metric_values={name: result.get(name) for name in metrics.metric_fields()},
            metric_versions=result.get("metric_versions", {}),
            metric_constants=result.get("metric_constants", {}),
            backbone=info.get("backbone") or self._backbone_description(),
            suite=cfg.suite,
            timestamps=stamps,
            extra={
                "run_config": cfg.record_dict(),
                "profile": cfg.profile,
                "seeds": self._seeds(case, prompt_index, seed),
                "determinism": determinism_flags(),
                "execution": self._execution,
                **details,
            },
        )

    def _seeds(self, case: Case, prompt_index: int, seed: int) -> dict[str, Any]:
        method_seed = self.method_config.seed
        return {
            "generation": seed,
            "method": method_seed,
            "backbone": self._backbone_seed(),
            "metrics": METRICS_SEED,
            # torch/numpy/random global generators, seeded per stage (seed_global_rngs)
            "global_rngs": stage_seeds(method_seed, case.case_id, prompt_index, seed),
        }


# ---- helpers -----------------------------------------------------------------------------------


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
