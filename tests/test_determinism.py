"""Determinism: the same run with the same seeds gives identical records, to the last bit.

Two fresh runs of DualReal (2 training steps) on the smoke data (the smoke identity and the
smoke motion cut to one 9-frame clip, through ``--cases``), 1 prompt x 2 seeds: one in a
new ``dualreal-bench`` process (forked from a server with the heavy modules imported: its
own interpreter state, RNGs and hash seed), one in this process, each with its own store and its own
metric cache (so the reference scores are computed twice too). Different processes catch
hash-order and global-RNG dependence; the records must be equal except for when and where
they were made (timestamps, execution, git state, run id). Every record carries its seeds,
the torch determinism flags and the package versions.
"""

from __future__ import annotations

import json

import pytest
from test_resilience_helpers import (
    comparable,
    mini_data_root,
    shared_env,
    start_cli_process,
    torch_threads,
)

from dualreal_bench.runner import RunConfig, Runner
from dualreal_bench.store import ResultStore

OVERRIDES = ("max_train_steps=2",)
BACKBONE = ("num_inference_steps=2",)
SEEDS = (0, 1)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    base = tmp_path_factory.getbasetemp()
    root, cases = mini_data_root(base, 1)
    return {"root": root, "cases": cases, "env": shared_env(base)}


def _records(out) -> dict:
    return {
        (r["case_id"], r["prompt_index"], r["seed"]): r
        for r in ResultStore(out, "det").iter_records()
    }


def test_two_fresh_runs_give_identical_records(tmp_path, data):
    # run A: a new `dualreal-bench` process
    argv = [
        "-q",
        "run",
        "--method",
        "dualreal",
        "--cases",
        str(data["cases"]),
        "--data-root",
        str(data["root"]),
        "--num-prompts",
        "1",
        "--seeds",
        ",".join(map(str, SEEDS)),
        "--run-id",
        "det",
        "--output-dir",
        str(tmp_path / "a"),
        "--cache-dir",
        str(tmp_path / "cache_a"),
    ]
    for o in OVERRIDES:
        argv += ["--set", o]
    for o in BACKBONE:
        argv += ["--backbone-set", o]
    env = {"DUALREAL_BENCH_CACHE": data["env"]["DUALREAL_BENCH_CACHE"]}
    proc = start_cli_process(argv, cwd=tmp_path, env=env, log=tmp_path / "a.log")
    # run B, meanwhile: this process, its own store and metric cache
    cfg = RunConfig(
        suite="custom",
        cases_file=str(data["cases"]),
        data_root=str(data["root"]),
        method="dualreal",
        method_overrides=OVERRIDES,
        backbone_overrides=BACKBONE,
        num_prompts=1,
        seeds=SEEDS,
        run_id="det",
        output_dir=str(tmp_path / "b"),
        cache_dir=str(tmp_path / "cache_b"),
        progress=False,
    )
    with torch_threads(1):  # as the other process (records depend on the thread count)
        Runner(cfg).run()
    proc.join(timeout=600)
    assert proc.exitcode == 0, (tmp_path / "a.log").read_text()

    a, b = _records(tmp_path / "a"), _records(tmp_path / "b")
    assert sorted(a) == sorted(b) and len(a) == len(SEEDS)
    for key in a:
        assert a[key]["metrics"] == b[key]["metrics"], key  # float equality: the same bits
        assert json.dumps(comparable(a[key]), sort_keys=True) == json.dumps(
            comparable(b[key]), sort_keys=True
        )
    # the two seeds differ (the comparison above is not vacuous)
    assert a[(key[0], 0, 0)]["metrics"] != a[(key[0], 0, 1)]["metrics"]
    # the trained states are byte-identical too
    state = "dualreal[max_train_steps=2]/toy_0__mini_pendulum/state/weights.safetensors"
    assert (tmp_path / "a" / "det" / state).read_bytes() == (
        tmp_path / "b" / "det" / state
    ).read_bytes()

    rec = a[key]
    seeds = rec["seeds"]
    assert {k: seeds[k] for k in ("generation", "method", "backbone", "metrics")} == {
        "generation": key[2],
        "method": 0,
        "backbone": 0,
        "metrics": 0,
    }
    assert set(seeds["global_rngs"]) == {"method_init", "train", "generate"}
    assert rec["determinism"]["torch_deterministic_algorithms"] is True
    assert rec["determinism"]["cudnn_benchmark"] is False
    for package in (
        "torch",
        "diffusers",
        "transformers",
        "numpy",
        "av",
        "python",
        "dualreal-bench",
    ):
        assert rec["versions"][package], package
    assert (
        rec["configs"]["method"]["config"]["seed"] == 0
        and rec["configs"]["backbone"]["config"]["seed"] == 0
    )
    assert "output_dir" not in rec["run_config"] and rec["execution"]["torch_threads"] >= 1
