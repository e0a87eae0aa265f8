"""What ``dualreal-bench run`` does: :class:`RunConfig`, saved in ``run.json`` and (the part
that decides the results) in every record."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from .config import Config, check_seed
from .devices import check_device
from .errors import ConfigError
from .metrics import MOTION_BACKEND_CHOICES, resolved_motion_backend
from .spec import CUSTOM_SUITE
from .store import check_label

#: where cases execute (:mod:`dualreal_bench.executors`)
EXECUTORS = ("local", "ray")
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
    # motion fidelity's descriptor: "flow" (weight-free) | "videomae"; None: the metrics
    # profile's (tiny: flow, real: VideoMAE Kinetics-400)
    motion_backend: str | None = None
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
        for seed in self.seeds:
            check_seed(seed, "--seeds")
        if self.num_prompts is not None and self.num_prompts < 1:
            raise ConfigError(f"--num-prompts {self.num_prompts}: must be >= 1")
        if self.device is not None:
            check_device(self.device, "--device")
        if self.motion_backend is not None and self.motion_backend not in MOTION_BACKEND_CHOICES:
            raise ConfigError(
                f"--motion-backend {self.motion_backend!r}: choose one of "
                f"{', '.join(MOTION_BACKEND_CHOICES)}"
            )
        if self.name is not None:
            check_label(self.name)
        if self.run_id is not None:  # "" too: never a silent fall back to the default id
            check_label(self.run_id, "run id")
        if self.cases_file is not None and self.suite != CUSTOM_SUITE:
            raise ConfigError(
                f"--cases {self.cases_file} and --suite {self.suite} contradict: a cases file "
                "replaces the suite; give one of them"
            )
        if self.cases_file is None and self.suite == CUSTOM_SUITE:
            raise ConfigError(
                f"suite {CUSTOM_SUITE!r} needs --cases FILE (a CSV of identity,motion)"
            )
        self._validate_execution()

    def _validate_execution(self) -> None:
        """The executor and its Ray resources (Ray options with the local executor contradict)."""
        if self.executor not in EXECUTORS:
            raise ConfigError(
                f"--executor {self.executor!r}: must be one of {', '.join(EXECUTORS)}"
            )
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
        if self.executor == "local" and ray_only:
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
    def resolved_motion_backend(self) -> str:
        """``motion_backend``, else the metrics profile's (tiny: ``flow``, real: ``videomae``)."""
        return resolved_motion_backend(self.motion_backend, self.resolved_metrics_profile)

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
        try:
            return check_label(base)
        except ConfigError as exc:  # e.g. a --set value with spaces: the label is the user's
            raise ConfigError(
                f"{exc} (made from --set); name this variant with --name LABEL"
            ) from None

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
