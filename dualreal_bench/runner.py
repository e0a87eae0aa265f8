"""The case loop: train -> save state -> generate each prompt -> save video -> evaluate -> record.

Every stage writes its output (atomically) before the next starts, and every stage is
skipped when its output already exists, so a run that dies resumes where it stopped:

* a case whose records all exist is skipped without loading anything;
* a complete ``state/`` is loaded instead of training again;
* an existing video is evaluated without being generated again;
* an existing record is kept.

A run first checks everything it can without writing (the method config, the cases and
their prompts, every reference image and clip, the store's earlier run and method
configs, and, for the local executor, that the backbone and metric encoders load); a bad
input stops it there, with the store untouched. Cases then go to an executor
(:mod:`dualreal_bench.executors`): in this process (``local``) or to Ray actors (``ray``),
each of which holds its own backbone and evaluator across cases. Both write the same store
layout; a case directory is worked on under a lock, so overlapping shards never do a stage
twice.

Heavy components (the backbone, the metric encoders) load only when some stage needs them.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import functools
import hashlib
import io
import logging
import os
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from .cache import user_cache_dir
from .config import Config
from .devices import check_device
from .errors import BenchmarkError, ConfigError, DataError, MediaError, WeightsError
from .method import Method, MethodConfig, get_method_class
from .store import (
    CaseDir,
    ResultStore,
    atomic_path,
    atomic_write_json,
    check_label,
    determinism_flags,
    execution_info,
    failpoint,
    make_record,
    now_iso,
    read_json,
)

logger = logging.getLogger(__name__)

EXECUTORS = ("local", "ray")
#: the suite name of a run whose cases come from ``--cases FILE``
CUSTOM_SUITE = "custom"
#: header of a ``--cases`` file (the layout of the authors' paper_cases.csv)
CASES_COLUMNS = ("identity", "motion")
#: seed of the tiny metric encoders' random initialisation (recorded in every record)
METRICS_SEED = 0
#: RunConfig fields that say how a run executes, not what it computes: kept out of the
#: record's ``run_config`` (so a Ray run, a sharded run and a local run give equal records)
EXECUTION_FIELDS = (
    "executor",
    "ray_address",
    "ray_num_workers",
    "gpus_per_case",
    "cpus_per_case",
    "shard",
    "output_dir",
    "cache_dir",
    "progress",
    "preflight",
)
#: RunConfig fields holding paths, made absolute once (workers may run in other directories)
PATH_FIELDS = ("data_root", "prompt_file", "cases_file", "output_dir", "cache_dir")


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
    cases_file: str | None = None  # CSV "identity,motion" instead of a suite (suite "custom")
    num_prompts: int | None = None  # first N prompts of each case (quick runs)
    seeds: tuple[int, ...] = (0,)
    output_dir: str = "results"
    run_id: str | None = None  # default: "<suite>-<profile>"
    shard: tuple[int, int] = (0, 1)  # (index, count): this process runs cases[index::count]
    evaluate: bool = True
    # metric encoders: auto | cpu | cuda[:N] | mps; None: the metrics profile's default (real:
    # auto, CUDA when present; tiny: cpu). The backbone's device is in its config.
    device: str | None = None
    progress: bool = True
    executor: str = "local"  # "local" (this process) | "ray"
    ray_address: str | None = None  # an existing Ray cluster; None: start a local one
    ray_num_workers: int | None = None  # actors (local cluster: its size); None: as resources allow
    gpus_per_case: float | None = None  # Ray resources of each worker (default 0 GPUs, 1 CPU)
    cpus_per_case: float | None = None
    cache_dir: str | None = None  # root of the shared metric cache; default: user_cache_dir()
    deterministic: bool = True  # torch deterministic algorithms, no cuDNN autotuning
    preflight: bool = True  # decode every reference image and clip before any work

    def validate(self) -> None:
        index, count = self.shard
        if count < 1 or not 0 <= index < count:
            raise ConfigError(f"--shard {index}/{count}: need 0 <= i < N")
        if not self.seeds:
            raise ConfigError("--seeds: give at least one seed")
        if len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(f"--seeds {self.seeds}: seeds repeat")
        if any(not isinstance(s, int) or s < 0 for s in self.seeds):
            raise ConfigError(f"--seeds {self.seeds}: seeds must be integers >= 0")
        if self.num_prompts is not None and self.num_prompts < 1:
            raise ConfigError(f"--num-prompts {self.num_prompts}: must be >= 1")
        if self.device is not None:
            check_device(self.device, "--device")
        if self.name is not None:
            check_label(self.name)
        if self.cases_file is not None and self.suite != CUSTOM_SUITE:
            raise ConfigError(
                f"--cases {self.cases_file} and --suite {self.suite} contradict: a cases file "
                "replaces the suite; give one of them"
            )
        if self.cases_file is None and self.suite == CUSTOM_SUITE:
            raise ConfigError(
                f"suite {CUSTOM_SUITE!r} needs --cases FILE (a CSV of identity,motion)"
            )
        if self.executor not in EXECUTORS:
            raise ConfigError(
                f"--executor {self.executor!r}: must be one of {', '.join(EXECUTORS)}"
            )
        if self.executor == "local":
            ray_only = [
                flag
                for flag, value in (
                    ("--ray-address", self.ray_address),
                    ("--ray-num-workers", self.ray_num_workers),
                    ("--gpus-per-case", self.gpus_per_case),
                    ("--cpus-per-case", self.cpus_per_case),
                )
                if value is not None
            ]
            if ray_only:
                raise ConfigError(
                    f"{', '.join(ray_only)} contradict --executor local: "
                    "they configure the Ray executor (add --executor ray)"
                )
        if self.ray_num_workers is not None and self.ray_num_workers < 1:
            raise ConfigError(f"--ray-num-workers {self.ray_num_workers}: must be >= 1")
        if self.cpus_per_case is not None and not self.cpus_per_case > 0:
            raise ConfigError(f"--cpus-per-case {self.cpus_per_case}: must be > 0")
        if self.gpus_per_case is not None and not self.gpus_per_case >= 0:
            raise ConfigError(f"--gpus-per-case {self.gpus_per_case}: must be >= 0")

    @property
    def resolved_metrics_profile(self) -> str:
        """``metrics_profile``, else tiny encoders with the tiny backbone and real ones otherwise."""
        return self.metrics_profile or ("tiny" if self.profile == "tiny" else "real")

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

    def with_absolute_paths(self) -> RunConfig:
        """A copy whose path fields are absolute (as the driver's working directory sees them)."""
        changes = {
            f: str(Path(getattr(self, f)).expanduser().absolute())
            for f in PATH_FIELDS
            if getattr(self, f)
        }
        return dataclasses.replace(self, **changes)

    def record_dict(self) -> dict[str, Any]:
        """What records store of the run config: everything that decides the results."""
        return {k: v for k, v in self.to_dict().items() if k not in EXECUTION_FIELDS}


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


# ---- inputs: cases files and the preflight check ------------------------------------------------


def read_cases_file(
    path: str | Path,
    *,
    data_root: str | Path | None = None,
    prompt_file: str | Path | None = None,
    num_prompts: int | None = None,
) -> list:
    """The cases of a CSV file with the header ``identity,motion`` (one pair a line, the
    layout of the authors' ``paper_cases.csv``), each found in ``data_root``.

    Errors name the file and line: not UTF-8, a wrong header, a path-like or unknown name, a
    duplicate pair, no pairs.
    """
    from .spec import build_case, check_name, read_prompt_file, resolve_data_root

    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: cases file not found") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a directory, expected a CSV file of identity,motion") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{path}: not UTF-8 text (invalid byte 0x{data[exc.start]:02x} at offset {exc.start})"
        ) from None
    # what every line shares is checked once, so its errors name it rather than a line
    resolve_data_root(data_root)
    if prompt_file is not None:
        read_prompt_file(prompt_file)
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if header is None or [h.strip().lower() for h in header] != list(CASES_COLUMNS):
        raise DataError(f"{path}: header must be {','.join(CASES_COLUMNS)!r}, found {header!r}")
    cases, seen = [], {}
    for values in reader:
        where = f"{path}, line {reader.line_num}"
        if not any(v.strip() for v in values):
            continue
        if len(values) != len(CASES_COLUMNS):
            raise DataError(f"{where}: expected 2 fields (identity,motion), found {len(values)}")
        identity, motion = (v.strip() for v in values)
        check_name(identity, f"{where}: identity", error=DataError)
        check_name(motion, f"{where}: motion", error=DataError)
        if (identity, motion) in seen:
            raise DataError(
                f"{where}: duplicate pair {identity},{motion} (first on line {seen[identity, motion]})"
            )
        seen[identity, motion] = reader.line_num
        try:
            cases.append(build_case(identity, motion, data_root, prompt_file, num_prompts))
        except BenchmarkError as exc:
            raise type(exc)(f"{where}: {exc}") from None
    if not cases:
        raise DataError(f"{path}: no identity,motion pairs")
    return cases


@functools.lru_cache(maxsize=4096)
def _check_image(path: str, size: int, mtime_ns: int) -> None:
    from .media import read_image

    read_image(path)


@functools.lru_cache(maxsize=4096)
def _check_clip(path: str, size: int, mtime_ns: int) -> None:
    from .media import probe_video

    info = probe_video(path)
    if info.num_frames < 2:
        raise MediaError(
            f"{path}: video has {info.num_frames} frame; a motion clip needs at least 2"
        )


def _stat_key(path: Path) -> tuple[str, int, int]:
    st = path.stat()
    return str(path), st.st_size, st.st_mtime_ns


def preflight(cases: list) -> None:
    """Decode every reference image and probe (decode) every reference clip of ``cases``
    before any work, so one bad file fails the run in seconds, not hours in (MediaError naming
    the file). Results are cached per file (path, size, mtime) in this process. Cases without
    data folders (test doubles) are skipped."""
    for case in cases:
        if not (hasattr(case, "image_paths") and hasattr(case, "video_paths")):
            continue
        if not case.prompts:
            raise DataError(f"case {case.case_id}: no prompts")
        for path in case.image_paths():
            _check_image(*_stat_key(path))
        for path in case.video_paths():
            _check_clip(*_stat_key(path))


def global_seed(*parts: Any) -> int:
    """A 31-bit seed derived from ``parts`` (stable across processes and platforms)."""
    digest = hashlib.sha256("/".join(map(str, parts)).encode("utf-8")).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def seed_global_rngs(seed: int) -> None:
    """Seed torch's (CPU and CUDA), numpy's and Python's global random generators.

    torch seeds its global generator from entropy in every new process, so a method that
    draws from it (a ``torch.nn.Linear`` initialised without a generator, say) would differ
    from run to run. The runner seeds the global generators before it builds a method,
    before training and before every generation, from the method seed, the case and the
    video, so results do not depend on the process, on earlier cases, or on where a run
    resumed."""
    import random

    import torch

    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)


def apply_determinism(enabled: bool) -> None:
    """Ask torch for reproducible kernels: deterministic algorithms (warning, not failing,
    where an op has none), no cuDNN autotuning, and the cuBLAS workspace setting that makes
    CUDA matmuls deterministic (effective when set before CUDA starts)."""
    if not enabled:
        return
    import torch

    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True


# ---- one process's worker: runs whole cases -------------------------------------------------------


class CaseWorker:
    """Runs cases of one method into the store; keeps the backbone and evaluator across cases.

    The local executor has one; each Ray actor has its own. ``backbone`` and ``evaluator``
    may be injected (tests); otherwise they load lazily when a stage needs them.
    """

    def __init__(self, config: RunConfig, *, backbone: Any = None, evaluator: Any = None) -> None:
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
        self.description = {
            "name": self.method_class.name,
            "class": f"{self.method_class.__module__}:{self.method_class.__qualname__}",
            "config": self.method_config.to_dict(),
        }
        self._events = None
        self._execution = None
        apply_determinism(config.deterministic)

    # ---- lazily loaded components ------------------------------------------------------
    @property
    def backbone(self) -> Any:
        if self._backbone is None:
            from .backbone import load_backbone

            logger.info("loading backbone profile %r", self.config.profile)
            self._backbone = load_backbone(
                self.config.profile, list(self.config.backbone_overrides)
            )
        return self._backbone

    @property
    def evaluator(self) -> Any:
        if self._evaluator is None:
            from .metrics import build_evaluator, resolve_metrics_device

            cfg = self.config
            profile = cfg.resolved_metrics_profile
            device = resolve_metrics_device(cfg.device, profile)
            logger.info("loading metric encoders (%s) on %s", profile, device)
            self._evaluator = build_evaluator(
                profile,
                device=device,
                # reference values are shared by every run on the machine (content-keyed)
                cache_dir=Path(cfg.cache_dir) if cfg.cache_dir else user_cache_dir(),
                progress=cfg.progress,
                seed=METRICS_SEED,
            )
        return self._evaluator

    @property
    def events(self) -> Any:
        if self._events is None:
            self._events = self.store.events(self.label)
        return self._events

    def _backbone_description(self) -> dict[str, Any] | None:
        if self._backbone is None:
            return None
        return self._backbone.describe() if hasattr(self._backbone, "describe") else None

    def _backbone_seed(self) -> int | None:
        if self._backbone is not None:
            return getattr(getattr(self._backbone, "config", None), "seed", None)
        from .backbone import BackboneConfig

        return BackboneConfig.for_profile(
            self.config.profile, list(self.config.backbone_overrides)
        ).seed

    # ---- planning (reads only) -----------------------------------------------------------
    def wanted(self, case: Any) -> list[tuple[int, int]]:
        return [(i, s) for i in range(len(case.prompts)) for s in self.config.seeds]

    def needs(self, case: Any) -> set[str]:
        """Which components the case still needs: ``{"backbone", "evaluator"}`` or fewer."""
        cdir = self.store.case_dir(self.label, case.case_id)
        pending = [k for k in self.wanted(case) if not cdir.record(*k).is_file()]
        out = set()
        if any(not cdir.video(*k).is_file() for k in pending):
            out.add("backbone")
        if pending and self.config.evaluate:
            out.add("evaluator")
        return out

    # ---- one case --------------------------------------------------------------------------
    def run_case(self, case: Any, progress: Any = None) -> Counter:
        """Do whatever the case still needs; returns the stage counts of this call."""
        counts: Counter = Counter()
        cdir = self.store.case_dir(self.label, case.case_id)
        if all(cdir.record(*k).is_file() for k in self.wanted(case)):
            counts["skipped_cases"] += 1
            return counts
        if progress is not None and hasattr(progress, "set_case"):
            progress.set_case(case.case_id)
        with cdir.lock():  # another process on the same case: wait, then see what it left
            _remove_stale_temps(cdir)
            pending = [k for k in self.wanted(case) if not cdir.record(*k).is_file()]
            if not pending:
                counts["skipped_cases"] += 1
                return counts
            to_generate = [k for k in pending if not cdir.video(*k).is_file()]
            if to_generate:
                backbone = self.backbone
                seed_global_rngs(global_seed(self.method_config.seed, case.case_id))
                method = self.method_class(backbone, self.method_config)
                try:
                    self._prepare(method, case, cdir, counts, progress)
                    self._generate(method, case, cdir, to_generate, counts, progress)
                finally:
                    method.teardown()
            if self.config.evaluate:
                with _reference_progress(self.evaluator, progress):
                    self._evaluate(case, cdir, pending, counts, progress)
        return counts

    def _prepare(
        self, method: Method, case: Any, cdir: CaseDir, counts: Counter, progress: Any
    ) -> None:
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
        case: Any,
        cdir: CaseDir,
        items: list[tuple[int, int]],
        counts: Counter,
        progress: Any,
    ) -> None:
        from .media import write_video

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
            frames = _check_video(video[0], method)
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
        self, case: Any, cdir: CaseDir, items: list[tuple[int, int]], counts: Counter, progress: Any
    ) -> None:
        from .media import probe_video, read_video

        cfg = self.config
        task = progress.add_task("evaluate", total=len(items)) if progress else None
        determinism = determinism_flags()
        if self._execution is None:
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
            metrics = self.evaluator.evaluate_video(frames, prompt=prompt, case=case, fps=fps)
            failpoint("evaluate")
            info_path = cdir.generation_info(prompt_index, seed)
            info = read_json(info_path) if info_path.is_file() else {}
            stamps = {"generated": info["generated"]} if "generated" in info else {}
            stamps["evaluated"] = now_iso()
            record = make_record(
                run_id=self.store.run_id,
                method_label=self.label,
                method=self.description,
                case=case,
                prompt_index=prompt_index,
                prompt=prompt,
                seed=seed,
                video=str(video_path.relative_to(self.store.run_dir)),
                metrics=metrics,
                backbone=info.get("backbone") or self._backbone_description(),
                suite=cfg.suite,
                timestamps=stamps,
                extra={
                    "run_config": cfg.record_dict(),
                    "profile": cfg.profile,
                    "seeds": {
                        "generation": seed,
                        "method": self.method_config.seed,
                        "backbone": self._backbone_seed(),
                        "metrics": METRICS_SEED,
                        # torch/numpy/random global generators, seeded per stage (seed_global_rngs)
                        "global_rngs": {
                            "method_init": global_seed(self.method_config.seed, case.case_id),
                            "train": global_seed(self.method_config.seed, case.case_id, "train"),
                            "generate": global_seed(
                                self.method_config.seed, case.case_id, prompt_index, seed
                            ),
                        },
                    },
                    "determinism": determinism,
                    "execution": self._execution,
                },
            )
            self.store.write_record(self.label, case.case_id, record)
            counts["evaluated"] += 1
            self.events.write("evaluated", case=case.case_id, prompt_index=prompt_index, seed=seed)
            if progress:
                progress.advance(task)
        if progress:
            progress.remove_task(task)


def _remove_stale_temps(cdir: CaseDir) -> None:
    """Temp files and directories killed writers left in a case (called under its lock, when
    no other writer can be inside): hidden ``.name...tmp*`` files and ``.state.*`` dirs."""
    import shutil

    for folder in (cdir.root, cdir.videos, cdir.records):
        if not folder.is_dir():
            continue
        for entry in folder.iterdir():
            name = entry.name
            if not name.startswith("."):
                continue
            if entry.is_dir() and name.startswith(f".{cdir.state.name}."):
                shutil.rmtree(entry, ignore_errors=True)
            elif entry.is_file() and ".tmp" in name:
                entry.unlink(missing_ok=True)


class Runner:
    """Runs one method over one suite into a :class:`ResultStore`.

    ``backbone``, ``evaluator`` and ``cases`` may be injected (tests, notebooks); otherwise
    they load lazily from ``config.profile`` / ``config.metrics_profile`` / ``config.suite``
    when a stage needs them. With ``executor="ray"`` every Ray worker builds its own backbone
    and evaluator (injected ones serve the local executor only); injected cases are used.
    """

    def __init__(
        self,
        config: RunConfig,
        *,
        backbone: Any = None,
        evaluator: Any = None,
        cases: list | None = None,
    ) -> None:
        self.config = config.with_absolute_paths()
        self._cases = cases
        self.worker = CaseWorker(self.config, backbone=backbone, evaluator=evaluator)
        self.method_class = self.worker.method_class
        self.method_config = self.worker.method_config
        self.store = self.worker.store
        self.counts: Counter = Counter()

    @property
    def backbone(self) -> Any:
        return self.worker.backbone

    @property
    def evaluator(self) -> Any:
        return self.worker.evaluator

    def cases(self) -> list:
        """This shard's cases (built from the suite or the cases file unless injected)."""
        cfg = self.config
        cases = self._cases
        if cases is None:
            if cfg.cases_file is not None:
                cases = read_cases_file(
                    cfg.cases_file,
                    data_root=cfg.data_root,
                    prompt_file=cfg.prompt_file,
                    num_prompts=cfg.num_prompts,
                )
            else:
                from .spec import build_cases

                cases = build_cases(
                    cfg.suite,
                    data_root=cfg.data_root,
                    prompt_file=cfg.prompt_file,
                    num_prompts=cfg.num_prompts,
                )
        return shard_cases(cases, *cfg.shard)

    # ---- the loop ------------------------------------------------------------------------
    def run(self) -> RunSummary:
        cfg = self.config
        start = time.perf_counter()
        label = self.worker.label
        cases = self.cases()
        run_info = {
            "suite": cfg.suite,
            "profile": cfg.profile,
            "metrics_profile": cfg.resolved_metrics_profile,
        }
        if cfg.cases_file:
            run_info["cases_file"] = cfg.cases_file
        method_info = {
            **self.worker.description,
            "backbone_overrides": list(cfg.backbone_overrides),
        }
        # 1. everything that can fail on bad input, before the first write
        self.store.check_run(run_info)
        self.store.check_method(label, method_info)
        if cfg.preflight:
            preflight(cases)
        if cfg.executor == "local":
            needs = set().union(*(self.worker.needs(c) for c in cases)) if cases else set()
            for component in sorted(needs):
                getattr(self.worker, component)  # loads it; missing weights fail here
        # 2. the store
        self.store.init_run(run_info)
        self.store.init_method(label, method_info)
        self.store.write_expected(
            label, cfg.shard, {c.case_id: len(self.worker.wanted(c)) for c in cases}
        )
        # 3. the cases
        from .progress import make_progress

        if cfg.executor == "ray":
            from .executors.ray_executor import run_ray

            with make_progress(cfg.progress, label) as progress:
                task = progress.add_task("cases (ray)", total=len(cases)) if progress else None

                def done(case: Any, counts: Counter, worker: int) -> None:
                    logger.info("case %s done on worker %d: %s", case.case_id, worker, dict(counts))
                    if progress:
                        progress.advance(task)

                self.counts.update(run_ray(cfg, cases, on_case_done=done))
        else:
            from .executors.local import run_local

            with make_progress(cfg.progress, label) as progress:
                self.counts.update(run_local(self.worker, cases, progress))
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


def _check_video(frames: Any, method: Method) -> np.ndarray:
    if (
        not isinstance(frames, np.ndarray)
        or frames.dtype != np.uint8
        or frames.ndim != 4
        or frames.shape[-1] != 3
    ):
        got = (
            f"{type(frames).__name__} {getattr(frames, 'dtype', '')} {getattr(frames, 'shape', '')}"
        )
        raise TypeError(
            f"{type(method).__name__}.generate must return uint8 (T, H, W, 3) arrays, got {got}"
        )
    return frames


@contextlib.contextmanager
def _reference_progress(evaluator: Any, progress: Any) -> Iterator[None]:
    """While the block runs, a progress row for the reference clips the evaluator scores (the
    slow part of a cold first run; none when they come from the cache)."""
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
