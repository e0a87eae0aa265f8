"""Crash-safe resume: a real `dualreal-bench run` is SIGKILLed at chosen points, then resumed.

The run: DualReal (3 training steps) on one smoke-data case (the sample identity, the sample
motion cut to one 9-frame clip, given by ``--cases``), 1 prompt x 2 seeds (2 videos).
Each attempt dies at a point picked by a seeded RNG through the ``DUALREAL_BENCH_FAILPOINT``
hook (the process SIGKILLs itself there: during training, between a store write's temp file
and its rename, after a generation, after an evaluation), so the test is exactly repeatable
while the positions are arbitrary. Then a last attempt runs to the end. Checked after every
attempt: every file readable (JSON parses, mp4 decodes, safetensors loads); after the end:
every record present once, finished stages never redone (their files keep inode and mtime,
and the per-process event logs count each stage exactly once across all attempts), and no
temp file left in the case directory.
"""

from __future__ import annotations

import json
import random
import signal
import time
from collections import Counter
from pathlib import Path

import pytest
from test_resilience_helpers import mini_data_root, run_cli_process, shared_env

SEED = 20250704
RUN = [
    "run",
    "--method",
    "dualreal",
    "--set",
    "max_train_steps=3",
    "--backbone-set",
    "num_inference_steps=2",
    "--num-prompts",
    "1",
    "--seeds",
    "0,1",
    "--run-id",
    "crash",
]
VIDEOS = 2


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    base = tmp_path_factory.getbasetemp()
    root, cases = mini_data_root(base, 1)
    return {**shared_env(base), "data": ["--cases", str(cases), "--data-root", str(root)]}


def _run(cwd: Path, shared: dict, failpoint: str | None = None) -> tuple[int, str]:
    """One attempt: a new `dualreal-bench run` process (see run_cli_process)."""
    env = {"DUALREAL_BENCH_CACHE": shared["DUALREAL_BENCH_CACHE"]}
    if failpoint:
        env["DUALREAL_BENCH_FAILPOINT"] = failpoint
    log = cwd / f"attempt-{len(list(cwd.glob('attempt-*.log')))}.log"
    argv = ["-q", *RUN, *shared["data"], "--cache-dir", shared["metric_cache"]]
    code = run_cli_process(argv, cwd=cwd, env=env, log=log)
    return code, log.read_text()


def _case_dir(cwd: Path) -> Path:
    return cwd / "results" / "crash" / "dualreal[max_train_steps=3]" / "toy_0__mini_pendulum"


def _check_readable(run_dir: Path) -> None:
    """No truncated file: every (non-hidden) JSON parses, mp4 decodes, safetensors loads."""
    from safetensors.torch import load_file

    from dualreal_bench.media import read_video

    for path in run_dir.rglob("*"):
        if path.name.startswith(".") or not path.is_file() or "/cache/" in str(path):
            continue
        if path.suffix == ".json":
            json.loads(path.read_text())
        elif path.suffix == ".mp4":
            assert read_video(path).shape[0] >= 1
        elif path.suffix == ".safetensors":
            load_file(str(path))
        elif path.suffix == ".jsonl":
            for line in path.read_text().splitlines():
                json.loads(line)


def _snapshot(case_dir: Path) -> dict[str, tuple[int, int]]:
    """Finished outputs: path -> (inode, mtime_ns)."""
    out = {}
    for pattern in ("state/weights.safetensors", "videos/*.mp4", "records/*.json"):
        for path in case_dir.glob(pattern):
            st = path.stat()
            out[str(path.relative_to(case_dir))] = (st.st_ino, st.st_mtime_ns)
    return out


def test_kill_anywhere_then_resume(tmp_path, shared):
    rng = random.Random(SEED)
    # a death in each stage, at a seeded position
    plan = [
        f"train_step:{rng.randint(1, 3)}",
        f"store_write:{rng.randint(1, 4)}",
        f"generate:{rng.randint(1, VIDEOS)}",
        f"evaluate:{rng.randint(1, VIDEOS)}",
    ]
    attempts = []
    finished: dict[str, tuple[int, int]] = {}
    case_dir = _case_dir(tmp_path)
    for failpoint in plan:
        t0 = time.perf_counter()
        code, err = _run(tmp_path, shared, failpoint)
        attempts.append((failpoint, code, round(time.perf_counter() - t0, 1)))
        assert code == -signal.SIGKILL, f"{failpoint}: expected to die, exit {code}\n{err}"
        _check_readable(tmp_path / "results" / "crash")
        now = _snapshot(case_dir)
        for name, ident in finished.items():  # finished outputs are never rewritten
            assert now.get(name) == ident, f"{name} was recomputed or lost after {attempts[-1][0]}"
        finished = now
    t0 = time.perf_counter()
    code, err = _run(tmp_path, shared)  # the final, uninterrupted resume
    attempts.append(("final resume", code, round(time.perf_counter() - t0, 1)))
    assert code == 0, err
    _check_readable(tmp_path / "results" / "crash")
    for name, ident in finished.items():
        assert _snapshot(case_dir).get(name) == ident, f"{name} was recomputed at the final resume"

    records = sorted(case_dir.glob("records/*.json"))
    assert [p.name for p in records] == [f"p000_s{s}.json" for s in range(VIDEOS)]
    recs = [json.loads(p.read_text()) for p in records]
    assert len({(r["case_id"], r["prompt_index"], r["seed"]) for r in recs}) == VIDEOS
    assert all(
        r["configs"]["backbone"] is not None and r["timestamps"].get("generated") for r in recs
    )
    leftovers = [p.name for p in case_dir.rglob(".*")]
    assert not leftovers, f"temp files left in the case: {leftovers}"

    from dualreal_bench.store import read_events

    events = read_events(tmp_path / "results" / "crash")
    done = Counter(
        (e["event"], e.get("prompt_index"), e.get("seed"))
        for e in events
        if e["event"] in ("trained", "generated", "evaluated")
    )
    stages = Counter(e for e, _, _ in done.elements())
    # each stage exactly once over all attempts: nothing lost, nothing redone
    assert all(n == 1 for n in done.values()), done
    assert stages == {"trained": 1, "generated": VIDEOS, "evaluated": VIDEOS}, stages
    summary = [f"{what}: exit {code} ({seconds} s)" for what, code, seconds in attempts]
    print(
        "\nkill/resume attempts:",
        "; ".join(summary),
        "| stages done once each:",
        dict(stages),
        "| runs finished:",
        sum(e["event"] == "run_finished" for e in events),
    )
