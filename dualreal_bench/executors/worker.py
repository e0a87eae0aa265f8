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

This module holds the worker itself: what it loads, the checks before a run writes anything,
which stages a case still needs, and running a case. The stages are their own modules:
:mod:`.resume` (which outputs are done; setting invalid ones aside), :mod:`.training`,
:mod:`.generation` and :mod:`.evaluation` (scoring and the record).
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import metrics
from ..cache import user_cache_dir
from ..checkpoint import check_state_files
from ..errors import ConfigError
from ..io import as_json
from ..method import Method, MethodConfig, get_method_class
from ..metrics.constants import scorable_problem
from ..provenance import execution_info
from ..run_config import METRICS_SEED, RunConfig
from ..spec import Case
from ..store import CaseDir, EventLog, ResultStore
from .evaluation import RecordContext, evaluate_videos
from .generation import generate_videos
from .resume import OutputChecks
from .seeding import apply_determinism, global_seed, seed_global_rngs
from .training import train_or_load

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
        #: which records and videos are done (each valid file version checked once)
        self.outputs = OutputChecks(self.label)
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

    def pending(self, case: Case) -> list[tuple[int, int]]:
        """The videos of ``case`` without a finished record (reads only)."""
        cdir = self.store.case_dir(self.label, case.case_id)
        return [
            k for k in self.wanted(case) if self.outputs.record_problem(cdir, case, k) is not None
        ]

    def needs(self, case: Case) -> set[str]:
        """Which components the case still needs: ``{"backbone", "evaluator"}`` or fewer."""
        cdir = self.store.case_dir(self.label, case.case_id)
        pending = self.pending(case)
        out = set()
        if any(self.outputs.video_problem(cdir, k) is not None for k in pending):
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
            pending = self.outputs.set_aside_invalid(
                case, cdir, self.wanted(case), self.events, counts
            )
            if not pending:
                counts["skipped_cases"] += 1
                return counts
            to_generate = [k for k in pending if not cdir.video(*k).is_file()]
            if to_generate:
                self._train_and_generate(case, cdir, to_generate, counts, progress)
            if self.config.evaluate:
                evaluate_videos(
                    self.evaluator,
                    case,
                    cdir,
                    pending,
                    self._record_context(),
                    events=self.events,
                    counts=counts,
                    progress=progress,
                )
        return counts

    def _train_and_generate(
        self,
        case: Case,
        cdir: CaseDir,
        items: list[tuple[int, int]],
        counts: Counter,
        progress: RunProgress | None,
    ) -> None:
        """Construct the case's method, train it (or load its saved state), generate the videos
        ``items``; the method leaves the shared backbone as it found it."""
        method = self._construct(case)
        try:
            train_or_load(
                method,
                case,
                cdir,
                method_seed=self.method_config.seed,
                memory_plan=self._memory_plan,
                events=self.events,
                counts=counts,
                progress=progress,
            )
            generate_videos(
                method,
                case,
                cdir,
                items,
                fps=getattr(getattr(self.backbone, "config", None), "fps", 8),
                method_seed=self.method_config.seed,
                backbone_info=self._backbone_description,
                events=self.events,
                counts=counts,
                progress=progress,
            )
        finally:
            method.teardown()

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

    def _record_context(self) -> RecordContext:
        """What every record of this worker shares (the execution info is taken once)."""
        if self._execution is None:
            cfg = self.config
            self._execution = {
                **execution_info(),
                "executor": cfg.executor,
                "shard": list(cfg.shard),
            }
        return RecordContext(
            config=self.config,
            store=self.store,
            label=self.label,
            method=self.description,
            method_seed=self.method_config.seed,
            backbone_seed=self._backbone_seed(),
            execution=self._execution,
            backbone=self._backbone_description,
        )
