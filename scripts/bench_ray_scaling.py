"""Ray executor scaling: the same multi-case smoke workload with 1 and with 2 workers.

Workload: ``--cases`` N cases (the smoke identity under N names x the smoke motion), the
``base`` method (or ``--method``), ``--prompts`` prompts per case, tiny profile. Each worker
is one Ray actor with 1 CPU (so torch runs 1 thread in it); each configuration writes a fresh
store. The metric reference cache is warmed first (shared by both configurations), so both
time the same work. Reported per configuration: the wall time of the run (actor start-up,
backbone and encoder loading per actor, every case) and, separately, the local Ray cluster's
start-up; the figure is the ratio of the 1-worker to the 2-worker run time.

    python scripts/bench_ray_scaling.py --cases 6 --prompts 1 [--json out.json]

Needs the ray extra (``pip install -e ".[ray]"``). On a machine shared with other work the
ratio shows the contention too: the load average is printed beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

MOTION = "bench_pendulum"


def make_workload(root: Path, n_cases: int) -> Path:
    """A data root with ``n_cases`` identities (the smoke toy's images) x one short smoke clip;
    returns the cases CSV."""
    from dualreal_bench.media import read_video, write_video
    from dualreal_bench.sample_data import ensure_sample_data

    sample = ensure_sample_data(root / "sample_data")
    images = sample / "identities" / "smoke_toy" / "images"
    for k in range(n_cases):
        ident = root / "identities" / f"toy_{k}"
        ident.mkdir(parents=True)
        (ident / "images").symlink_to(images)
        (ident / "class.txt").write_text("toy\n")
    clip = read_video(
        sample / "motions" / "smoke_pendulum" / "videos" / "clip_00.mp4", num_frames=9
    )
    write_video(root / "motions" / MOTION / "videos" / "clip_00.mp4", clip, fps=8)
    cases = root / "cases.csv"
    cases.write_text("identity,motion\n" + "".join(f"toy_{k},{MOTION}\n" for k in range(n_cases)))
    return cases


def _burn(n: int) -> float:
    t0 = time.perf_counter()
    x = 0
    for i in range(n):
        x += i * i
    return time.perf_counter() - t0


def machine_parallel_speedup(n: int = 10_000_000) -> float:
    """What this machine gives two CPU-bound processes over one right now (2.0 on two idle
    cores): the ceiling of the 2-worker figure."""
    import multiprocessing as mp

    t0 = time.perf_counter()
    _burn(n)
    one = time.perf_counter() - t0
    with mp.get_context("spawn").Pool(2) as pool:
        pool.map(_burn, [1000, 1000])  # start-up outside the timing
        t0 = time.perf_counter()
        pool.map(_burn, [n, n])
        two = time.perf_counter() - t0
    return 2 * one / two


def _stage_times(run_dir: Path) -> dict:
    """Mean seconds per training and per generation, from the workers' event logs."""
    from dualreal_bench.store import read_events

    events = read_events(run_dir)
    out = {}
    for stage in ("trained", "generated"):
        secs = [e["seconds"] for e in events if e["event"] == stage]
        if secs:
            out[f"mean_{stage}_seconds"] = round(sum(secs) / len(secs), 3)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=6, help="cases in the workload (default 6)")
    parser.add_argument("--prompts", type=int, default=1, help="prompts per case (default 1)")
    parser.add_argument("--method", default="base")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--workers", default="1,2", help="worker counts to compare (default 1,2)")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()

    ceiling_before = machine_parallel_speedup()
    import ray

    from dualreal_bench.runner import RunConfig, Runner

    work = Path(tempfile.mkdtemp(prefix="bench-ray-"))
    try:
        cases = make_workload(work / "data", args.cases)
        cache = work / "metric-cache"

        def config(out: Path, **kw) -> RunConfig:
            return RunConfig(
                suite="custom",
                cases_file=str(cases),
                data_root=str(work / "data"),
                method=args.method,
                method_overrides=tuple(args.overrides),
                num_prompts=args.prompts,
                output_dir=str(out),
                run_id="bench",
                cache_dir=str(cache),
                progress=False,
                **kw,
            )

        # warm the reference cache (reference-clip scores are computed once per motion)
        one = work / "one.csv"
        one.write_text("identity,motion\n" + cases.read_text().splitlines()[1] + "\n")
        Runner(RunConfig(**{**config(work / "warm").to_dict(), "cases_file": str(one)})).run()

        results = []
        for workers in (int(w) for w in args.workers.split(",")):
            t0 = time.perf_counter()
            ray.init(num_cpus=workers, include_dashboard=False, logging_level="WARNING")
            startup = time.perf_counter() - t0
            try:
                t0 = time.perf_counter()
                summary = Runner(
                    config(
                        work / f"w{workers}",
                        executor="ray",
                        ray_num_workers=workers,
                        cpus_per_case=1,
                    )
                ).run()
                seconds = time.perf_counter() - t0
            finally:
                ray.shutdown()
            results.append(
                {
                    "workers": workers,
                    "run_seconds": round(seconds, 2),
                    "cluster_startup_seconds": round(startup, 2),
                    "counts": dict(summary.counts),
                    **_stage_times(work / f"w{workers}" / "bench"),
                }
            )
            print(
                f"{workers} worker(s): {seconds:.1f} s for {args.cases} cases "
                f"(+ {startup:.1f} s Ray start-up) {results[-1]}",
                flush=True,
            )
        base = results[0]["run_seconds"]
        for r in results:
            r["speedup_vs_first"] = round(base / r["run_seconds"], 3)
        ceiling_after = machine_parallel_speedup()
        figure = {
            "machine_parallel_speedup": [round(ceiling_before, 2), round(ceiling_after, 2)],
            "workload": {
                "cases": args.cases,
                "prompts_per_case": args.prompts,
                "method": args.method,
                "overrides": args.overrides,
                "profile": "tiny",
            },
            "cpu_count": os.cpu_count(),
            "load_average_after": list(os.getloadavg()),
            "results": results,
        }
        print(
            f"ratio {results[0]['workers']} vs {results[-1]['workers']} workers: "
            f"{results[-1]['speedup_vs_first']:.2f}x (load average {os.getloadavg()[0]:.1f} "
            f"on {os.cpu_count()} CPUs; two plain CPU-bound processes got "
            f"{ceiling_before:.2f}x / {ceiling_after:.2f}x before / after)"
        )
        if args.json:
            Path(args.json).write_text(json.dumps(figure, indent=2) + "\n")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
