"""The run: one method over a suite's cases (or a cases file's), into the result store.

A run first checks everything it can without writing (the method config and its fit to the
backbone's shape, the cases and their prompts, every reference image and clip, the output
folder and the length of every name it will create, the store's earlier run and method
configs, the saved states it will load, and, for the local executor, the devices and that
the backbone and metric encoders load); a bad input stops it there, with the store
untouched. It then records the run and the method in
the store and hands its shard of the cases to an executor (:mod:`dualreal_bench.executors`):
in this process (``local``) or to Ray actors (``ray``), each of which runs whole cases through
its own :class:`~dualreal_bench.executors.worker.CaseWorker` (train -> generate -> evaluate,
resumable stage by stage). Both write the same store layout::

    from dualreal_bench.runner import RunConfig, Runner

    summary = Runner(RunConfig(method="dualreal", suite="smoke")).run()
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .cache import CACHE_ENV, user_cache_dir
from .executors.local import run_local
from .executors.ray_executor import run_ray
from .executors.worker import CaseWorker
from .io import check_output_dir
from .progress import make_progress
from .run_config import RunConfig
from .spec import Case, build_cases, preflight, read_cases_file, shard_cases

if TYPE_CHECKING:
    from .backbone import Backbone
    from .metrics.evaluator import Evaluator

logger = logging.getLogger(__name__)

__all__ = ["RunConfig", "RunSummary", "Runner"]


@dataclasses.dataclass
class RunSummary:
    run_dir: Path
    label: str
    cases: int
    counts: Counter  # trained / loaded / generated / evaluated / skipped_cases / ...
    seconds: float


class Runner:
    """Runs one method over one suite into a :class:`~dualreal_bench.store.ResultStore`.

    ``backbone``, ``evaluator`` and ``cases`` may be injected (tests, notebooks); otherwise
    they load lazily from ``config.profile`` / ``config.metrics_profile`` / ``config.suite``
    when a stage needs them. With ``executor="ray"`` every Ray worker builds its own backbone
    and evaluator (injected ones serve the local executor only); injected cases are used.
    """

    def __init__(
        self,
        config: RunConfig,
        *,
        backbone: Backbone | None = None,
        evaluator: Evaluator | None = None,
        cases: list[Case] | None = None,
    ) -> None:
        self.config = config.with_absolute_paths()
        self._cases = cases
        self.worker = CaseWorker(self.config, backbone=backbone, evaluator=evaluator)
        self.method_class = self.worker.method_class
        self.method_config = self.worker.method_config
        self.store = self.worker.store
        self.counts: Counter = Counter()

    @property
    def backbone(self) -> Backbone:
        return self.worker.backbone

    @property
    def evaluator(self) -> Evaluator:
        return self.worker.evaluator

    def cases(self) -> list[Case]:
        """This shard's cases (built from the suite or the cases file unless injected)."""
        cfg = self.config
        cases = self._cases
        if cases is None and cfg.cases_file is not None:
            cases = read_cases_file(
                cfg.cases_file,
                data_root=cfg.data_root,
                prompt_file=cfg.prompt_file,
                num_prompts=cfg.num_prompts,
            )
        elif cases is None:
            cases = build_cases(
                cfg.suite,
                data_root=cfg.data_root,
                prompt_file=cfg.prompt_file,
                num_prompts=cfg.num_prompts,
            )
        short = [c.case_id for c in cases if cfg.num_prompts and len(c.prompts) < cfg.num_prompts]
        if short:
            logger.warning(
                "--num-prompts %d: %d case(s) have fewer prompts (e.g. %s: %d); all of theirs "
                "are used",
                cfg.num_prompts,
                len(short),
                short[0],
                len(next(c for c in cases if c.case_id == short[0]).prompts),
            )
        return shard_cases(cases, *cfg.shard)

    # ---- the run -------------------------------------------------------------------------
    def run(self) -> RunSummary:
        cfg = self.config
        start = time.perf_counter()
        label = self.worker.label
        cases = self.cases()
        self._check(cases)  # 1. everything that can fail on bad input, before the first write
        self._init_store(cases)  # 2. the store
        self._execute(cases)  # 3. the cases
        seconds = time.perf_counter() - start
        self.worker.events.write(
            "run_finished",
            cases=len(cases),
            counts=dict(self.counts),
            seconds=round(seconds, 3),
            executor=cfg.executor,
            shard=list(cfg.shard),
        )
        logger.info(
            "run %s / %s: %d cases, %s in %.1f s",
            self.store.run_id,
            label,
            len(cases),
            dict(self.counts),
            seconds,
        )
        return RunSummary(self.store.run_dir, label, len(cases), self.counts, seconds)

    def _run_info(self) -> dict[str, Any]:
        cfg = self.config
        info = {
            "suite": cfg.suite,
            "profile": cfg.profile,
            "metrics_profile": cfg.resolved_metrics_profile,
            "motion_backend": cfg.resolved_motion_backend,
        }
        if cfg.cases_file:
            info["cases_file"] = cfg.cases_file
        return info

    def _check(self, cases: list[Case]) -> None:
        """Everything that can fail on bad input, reading only, cheapest first: the output
        folder and every folder name the store will make, the store's earlier run and method,
        the method's options against the backbone's shape, whether the backbone's videos can
        be scored, the reference media (clips sampled as the metrics sample them), the saved
        states a resumed case will load, and (local executor) the devices and the components
        the cases need."""
        cfg, worker = self.config, self.worker
        self.store.check_output_root()
        if cfg.evaluate:
            check_output_dir(
                cfg.cache_dir or user_cache_dir(),
                "--cache-dir" if cfg.cache_dir else f"the cache folder (${CACHE_ENV})",
            )
        for case in cases:
            self.store.case_dir(worker.label, case.case_id)  # each name fits the filesystem
        self.store.check_run(self._run_info())
        self.store.check_method(worker.label, worker.method_info)
        constants = worker.metric_constants() if cfg.evaluate else None
        worker.check_backbone(constants)
        if cfg.preflight:
            preflight(cases, clip_fps=constants.dd_target_fps if constants else None)
        needs = set().union(*(worker.check_case(c) for c in cases)) if cases else set()
        if cfg.executor == "local":
            worker.check_devices(needs)  # before anything loads onto them
            for component in sorted(needs):
                getattr(worker, component)  # loads it; missing weights fail here
            if "evaluator" in needs:
                worker.check_scorable()  # the frame size against the loaded optical flow

    def _init_store(self, cases: list[Case]) -> None:
        label = self.worker.label
        self.store.init_run(self._run_info())
        self.store.init_method(label, self.worker.method_info)
        self.store.write_expected(
            label, self.config.shard, {c.case_id: len(self.worker.wanted(c)) for c in cases}
        )

    def _execute(self, cases: list[Case]) -> None:
        cfg = self.config
        with make_progress(cfg.progress, self.worker.label) as progress:
            if cfg.executor == "local":
                self.counts.update(run_local(self.worker, cases, progress))
                return
            task = progress.add_task("cases (ray)", total=len(cases)) if progress else None

            def done(case: Case, counts: Counter, worker: int) -> None:
                logger.info("case %s done on worker %d: %s", case.case_id, worker, dict(counts))
                if progress:
                    progress.advance(task)

            self.counts.update(run_ray(cfg, cases, on_case_done=done))
