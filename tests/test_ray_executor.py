"""The Ray executor on a local 2-worker cluster gives the same records as a local run.

Workload: 2 cases (the smoke identity under two names x a one-clip smoke motion, from
``--cases``), 1 prompt, the ``base`` method. Ray workers get ``OMP_NUM_THREADS`` = their CPUs
(1 here); CPU float reductions depend on the thread count, so the local run is made with 1
torch thread too, and then every record matches to the last bit (timestamps, host/pid and
the run id aside). Skipped when Ray is not installed (``pip install -e ".[ray]"``).
"""

from __future__ import annotations

import shutil

import pytest
from test_resilience_helpers import comparable, mini_data_root, shared_env, torch_threads

ray = pytest.importorskip(
    "ray", reason="the Ray executor needs the ray extra: pip install -e '.[ray]'"
)

from dualreal_bench.errors import MediaError  # noqa: E402
from dualreal_bench.runner import RunConfig, Runner  # noqa: E402
from dualreal_bench.store import ResultStore  # noqa: E402


@pytest.fixture(scope="module")
def cluster():
    """One local Ray cluster of 2 CPUs for the module (the executor reuses a running one)."""
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def workload(tmp_path_factory):
    base = tmp_path_factory.getbasetemp()
    root, cases = mini_data_root(base, 2)
    return {
        "data_root": str(root),
        "cases_file": str(cases),
        "cache_dir": shared_env(base)["metric_cache"],
    }


def _config(out, workload, **kw) -> RunConfig:
    kw = {"method": "base", **workload, **kw}
    return RunConfig(
        suite="custom", num_prompts=1, output_dir=str(out), run_id="r", progress=False, **kw
    )


def _records(out) -> dict:
    return {
        (r["case_id"], r["prompt_index"], r["seed"]): r
        for r in ResultStore(out, "r").iter_records()
    }


def test_ray_two_workers_equal_local(tmp_path, workload, cluster):
    summary = Runner(
        _config(tmp_path / "ray", workload, executor="ray", ray_num_workers=2, cpus_per_case=1)
    ).run()
    assert summary.counts == {"generated": 2, "evaluated": 2}
    with torch_threads(1):
        Runner(_config(tmp_path / "local", workload)).run()
    by_ray, by_local = _records(tmp_path / "ray"), _records(tmp_path / "local")
    assert sorted(by_ray) == sorted(by_local) and len(by_ray) == 2
    for key, rec in by_ray.items():
        other = by_local[key]
        assert rec["execution"]["executor"] == "ray" and other["execution"]["executor"] == "local"
        assert rec["metrics"] == other["metrics"], (
            key,
            rec["execution"],
            other["execution"],
        )  # bits
        assert comparable(rec) == comparable(other), key
    # the two cases ran in two different worker processes
    assert len({rec["execution"]["pid"] for rec in by_ray.values()}) == 2, [
        rec["execution"] for rec in by_ray.values()
    ]
    # a rerun through Ray finds everything done
    again = Runner(
        _config(tmp_path / "ray", workload, executor="ray", ray_num_workers=2, cpus_per_case=1)
    ).run()
    assert again.counts == {"skipped_cases": 2}


def test_ray_worker_error_reaches_the_driver(tmp_path, workload, cluster):
    """A bad file met by a worker (preflight off) fails the run with the same one-line error."""
    root = tmp_path / "data"
    shutil.copytree(workload["data_root"], root, symlinks=False)
    bad = sorted((root / "identities" / "toy_0" / "images").iterdir())[0]
    bad.write_bytes(b"not an image")
    one_case = tmp_path / "one.csv"
    one_case.write_text("identity,motion\ntoy_0,mini_pendulum\n")
    data = {**workload, "data_root": str(root), "cases_file": str(one_case)}
    cfg = _config(
        tmp_path / "out",
        data,
        executor="ray",
        ray_num_workers=1,
        preflight=False,
        method="dualreal",
        method_overrides=("max_train_steps=1",),
    )
    with pytest.raises(MediaError, match=bad.name):
        Runner(cfg).run()
    assert not list((tmp_path / "out").rglob("records/*.json"))


def test_ray_missing_is_a_clear_error(tmp_path, workload, monkeypatch):
    """Without Ray installed, --executor ray is a one-line ConfigError with the install hint."""
    import builtins

    from dualreal_bench.errors import ConfigError
    from dualreal_bench.executors import ray_executor

    real_import = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray":
            raise ImportError("no ray")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    with pytest.raises(ConfigError, match=r"pip install 'dualreal-bench\[ray\]'"):
        ray_executor.import_ray()
