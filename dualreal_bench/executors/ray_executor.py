"""The Ray executor: cases run on Ray actors, one actor per worker.

Each actor builds its own :class:`~.worker.CaseWorker` (method config, backbone,
metric encoders) once and keeps it across the cases it is given, so the backbone loads once
per worker, not once per case. The driver hands out cases one at a time to whichever actor is
free (long and short cases balance themselves), shows progress as cases finish, and sums the
stage counts. Every actor writes into the same store layout as the local executor, so a Ray
run, a sharded run and a local run resume one another.

Resources: each actor reserves ``cpus_per_case`` CPUs and ``gpus_per_case`` GPUs (Ray sets
``CUDA_VISIBLE_DEVICES`` and ``OMP_NUM_THREADS`` for it). Without ``ray_address`` a local
cluster is started with ``ray_num_workers x cpus_per_case`` CPUs; with it, the existing
cluster is joined and, unless ``ray_num_workers`` is given, as many actors start as its
resources allow. An actor that dies (a node lost, the OOM killer) is restarted and its case
retried: stages already written are not redone.

A case that fails stops the handing-out of new cases; cases in flight finish (their results
are kept), then the first error is raised in the driver: a user error (bad data) as the same
:class:`~dualreal_bench.errors.BenchmarkError`, anything else with the worker's traceback.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import sys
import traceback
from collections import Counter, deque
from collections.abc import Callable, Sequence
from typing import Any

from .. import errors
from ..errors import ConfigError
from ..run_config import RunConfig
from ..spec import Case
from .worker import CaseWorker

logger = logging.getLogger(__name__)

#: actor restarts / task retries after a worker process dies
MAX_RESTARTS = 2


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ConfigError(
            "--executor ray needs Ray, which is not installed: pip install 'dualreal-bench[ray]'"
        ) from None
    return ray


class CaseActor:
    """Body of the Ray actor (wrapped with ``ray.remote`` at run time, so importing this
    module does not need Ray). ``sys_path`` / ``cwd``: the driver's, on a local cluster, so
    ``--method path/file.py:Class`` and test modules import the same way in the workers."""

    def __init__(
        self, config: RunConfig, sys_path: list[str] | None = None, cwd: str | None = None
    ) -> None:
        for entry in sys_path or ():
            if entry not in sys.path:
                sys.path.append(entry)
        if cwd and os.path.isdir(cwd):
            os.chdir(cwd)
        self.worker = CaseWorker(config)

    def run_case(self, case: Case) -> dict[str, Any]:
        try:
            return {"counts": dict(self.worker.run_case(case))}
        except errors.BenchmarkError as exc:
            return {"error": type(exc).__name__, "message": str(exc), "user": True}
        except Exception as exc:  # noqa: BLE001 - reported to the driver with its traceback
            return {
                "error": type(exc).__name__,
                "message": str(exc),
                "user": False,
                "traceback": traceback.format_exc(),
            }

    def pid(self) -> int:
        return os.getpid()


def _num_workers(ray: Any, config: RunConfig, cpus: float, gpus: float, n_cases: int) -> int:
    resources = ray.cluster_resources()
    have_cpu, have_gpu = resources.get("CPU", 0.0), resources.get("GPU", 0.0)
    if gpus > 0 and have_gpu < gpus:
        raise ConfigError(f"--gpus-per-case {gpus:g}: the Ray cluster has {have_gpu:g} GPU(s)")
    if have_cpu < cpus:
        raise ConfigError(f"--cpus-per-case {cpus:g}: the Ray cluster has {have_cpu:g} CPU(s)")
    if config.ray_num_workers is not None:
        n = config.ray_num_workers
    else:
        n = int(have_cpu // cpus)
        if gpus > 0:
            n = min(n, int(have_gpu // gpus))
    return max(1, min(n, n_cases))


def run_ray(
    config: RunConfig,
    cases: Sequence[Case],
    *,
    on_case_done: Callable[[Case, Counter, int], None] | None = None,
) -> Counter:
    """Run ``cases`` on Ray actors (see the module docstring); the summed stage counts.

    ``config``: the :class:`~dualreal_bench.run_config.RunConfig` (paths absolute).
    ``on_case_done(case, counts, worker_index)`` is called in the driver as each case finishes.
    """
    if not cases:
        return Counter()
    ray = import_ray()
    cpus = config.cpus_per_case if config.cpus_per_case is not None else 1.0
    gpus = config.gpus_per_case if config.gpus_per_case is not None else 0.0
    started_here = not ray.is_initialized()
    if started_here:
        _init_ray(ray, config, cpus, len(cases))
    try:
        actors = _start_actors(ray, config, cpus, gpus, len(cases))
        try:
            counts, first_error = _dispatch(ray, actors, cases, on_case_done)
        finally:
            for actor in actors:
                ray.kill(actor)
    finally:
        if started_here:
            ray.shutdown()
    if first_error is not None:
        _raise(first_error)
    return counts


def _init_ray(ray: Any, config: RunConfig, cpus: float, n_cases: int) -> None:
    """Join ``config.ray_address``, else start a local cluster sized for the workers."""
    if config.ray_address:
        logger.info("joining the Ray cluster at %s", config.ray_address)
        ray.init(address=config.ray_address, logging_level=logging.WARNING)
        return
    size = config.ray_num_workers or max(1, int((os.cpu_count() or 1) // cpus))
    size = min(size, n_cases)
    logger.info("starting a local Ray cluster: %d worker(s) x %g CPU", size, cpus)
    ray.init(
        num_cpus=math.ceil(size * cpus),
        include_dashboard=False,
        logging_level=logging.WARNING,
    )


def _start_actors(ray: Any, config: RunConfig, cpus: float, gpus: float, n_cases: int) -> list:
    n_workers = _num_workers(ray, config, cpus, gpus, n_cases)
    local = not config.ray_address
    worker_config = dataclasses.replace(config, progress=False)
    actor_class = ray.remote(CaseActor).options(
        num_cpus=cpus, num_gpus=gpus, max_restarts=MAX_RESTARTS, max_task_retries=MAX_RESTARTS
    )
    logger.info("%d Ray worker(s) for %d case(s)", n_workers, n_cases)
    return [
        actor_class.remote(
            worker_config, list(sys.path) if local else None, os.getcwd() if local else None
        )
        for _ in range(n_workers)
    ]


def _dispatch(
    ray: Any,
    actors: list,
    cases: Sequence[Case],
    on_case_done: Callable[[Case, Counter, int], None] | None,
) -> tuple[Counter, dict[str, Any] | None]:
    """Hand out cases one at a time to whichever actor is free; the summed counts and the
    first error (after it, no new case is handed out; cases in flight finish)."""
    counts: Counter = Counter()
    queue = deque(cases)
    in_flight: dict[Any, tuple[int, Case]] = {}

    def submit(worker: int) -> None:
        case = queue.popleft()
        in_flight[actors[worker].run_case.remote(case)] = (worker, case)

    for worker in range(min(len(actors), len(queue))):
        submit(worker)
    first_error: dict[str, Any] | None = None
    while in_flight:
        done, _ = ray.wait(list(in_flight), num_returns=1)
        worker, case = in_flight.pop(done[0])
        result = ray.get(done[0])
        if "error" in result:
            logger.error(
                "case %s failed on worker %d: %s: %s",
                case.case_id,
                worker,
                result["error"],
                result["message"],
            )
            if first_error is None:
                first_error = {**result, "case": case.case_id}
        else:
            case_counts = Counter(result["counts"])
            counts.update(case_counts)
            if on_case_done is not None:
                on_case_done(case, case_counts, worker)
        if queue and first_error is None:
            submit(worker)
    return counts, first_error


def _raise(error: dict[str, Any]) -> None:
    if error["user"]:
        cls = getattr(errors, error["error"], None)
        if not (isinstance(cls, type) and issubclass(cls, errors.BenchmarkError)):
            cls = errors.BenchmarkError
        raise cls(error["message"])
    raise RuntimeError(
        f"case {error['case']} failed on a Ray worker: {error['error']}: "
        f"{error['message']}\n{error.get('traceback', '')}"
    )
