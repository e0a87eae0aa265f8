"""Concurrent writers: several processes write one store at once and never corrupt it.

Four processes start together (a barrier after their imports) on one store: shard 0/2,
shard 1/2 and two unsharded runs that overlap both shards. Cheap stand-in components
(``fake_components``) keep it fast; the store, the runner and the case locks are real.
Afterwards: every record is there once and parses, no temp file is left, every stage ran
exactly once over all processes (the case lock makes the later process wait and then find the
outputs), and ``report`` merges what every shard planned and wrote.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import time
from collections import Counter

import fake_components as fc

from dualreal_bench.report import build_table, expected_videos
from dualreal_bench.runner import RunConfig, Runner
from dualreal_bench.store import ResultStore, read_events

N_CASES, N_PROMPTS, SEEDS = 6, 3, (0, 1)


class SlowCounting(fc.CountingMethod):
    """CountingMethod whose stages take a little time, so that the writers overlap."""

    def train(self, case):
        time.sleep(0.05)
        return super().train(case)

    def generate(self, prompts, seed):
        time.sleep(0.01)
        return super().generate(prompts, seed)


def _writer(out: str, shard: tuple[int, int], barrier) -> None:
    cfg = RunConfig(
        method="test_resilience_concurrency:SlowCounting",
        output_dir=out,
        run_id="r",
        progress=False,
        shard=shard,
        seeds=SEEDS,
    )
    runner = Runner(
        cfg,
        backbone=fc.FakeBackbone(),
        evaluator=fc.FakeEvaluator(),
        cases=fc.make_cases(N_CASES, N_PROMPTS),
    )
    barrier.wait(timeout=300)
    runner.run()


def test_concurrent_shards_and_overlapping_runs_never_corrupt_the_store(tmp_path):
    ctx = mp.get_context("spawn")
    shards = [(0, 2), (1, 2), (0, 1), (0, 1)]
    barrier = ctx.Barrier(len(shards))
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), s, barrier)) for s in shards]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=300)
    assert [p.exitcode for p in procs] == [0] * len(shards)

    run_dir = tmp_path / "r"
    records = list(ResultStore(tmp_path, "r").iter_records())
    keys = [(r["case_id"], r["prompt_index"], r["seed"]) for r in records]
    assert len(keys) == len(set(keys)) == N_CASES * N_PROMPTS * len(SEEDS)
    for path in run_dir.rglob("*.json"):
        json.loads(path.read_text())
    assert not [p for p in run_dir.rglob(".*")], "temp files left behind"

    events = read_events(run_dir)
    stages = Counter(
        (e["event"], e["case"], e.get("prompt_index"), e.get("seed"))
        for e in events
        if e["event"] in ("trained", "generated", "evaluated")
    )
    assert all(n == 1 for n in stages.values()), [k for k, n in stages.items() if n > 1]
    per_stage = Counter(k[0] for k in stages)
    assert per_stage == {"trained": N_CASES, "generated": len(keys), "evaluated": len(keys)}
    assert len({e["log"] for e in events}) == len(shards)  # one log per process

    # report merges the shards: the union of every shard's plan, every record
    planned = expected_videos(tmp_path, "r")["counting"]
    assert len(planned) == N_CASES and set(planned.values()) == {N_PROMPTS * len(SEEDS)}
    assert sorted(p.name for p in (run_dir / "counting" / "expected").iterdir()) == [
        "shard0of1.json",
        "shard0of2.json",
        "shard1of2.json",
    ]
    table = build_table(tmp_path, "r")
    assert table.expected_videos == len(keys)
    assert all(table.cells[("counting", c.field)].complete for c in table.columns)
