"""Runner bookkeeping and the store: stages, resume after a crash, atomic writes, report tables."""

from __future__ import annotations

import json
import os

import fake_components as fc
import numpy as np
import pytest

from dualreal_bench.errors import ConfigError, WeightsError
from dualreal_bench.io import atomic_path, atomic_write_text
from dualreal_bench.report import aggregate, build_table, metric_columns, render
from dualreal_bench.runner import RunConfig, Runner
from dualreal_bench.spec import shard_cases
from dualreal_bench.store import ResultStore


@pytest.fixture(autouse=True)
def _reset_counters():
    for k in fc.CALLS:
        fc.CALLS[k] = 0
    fc.FAIL_AFTER_GENERATIONS["n"] = -1
    yield
    fc.FAIL_AFTER_GENERATIONS["n"] = -1


def _runner(tmp_path, cases, **kw):
    cfg = RunConfig(
        method="fake_components:CountingMethod",
        output_dir=str(tmp_path),
        progress=False,
        run_id="r",
        **kw,
    )
    return Runner(cfg, backbone=fc.FakeBackbone(), evaluator=fc.FakeEvaluator(), cases=cases)


def test_full_run_writes_one_record_per_video(tmp_path):
    cases = fc.make_cases(2, 3)
    summary = _runner(tmp_path, cases, seeds=(0, 1)).run()
    assert summary.counts == {"trained": 2, "generated": 12, "evaluated": 12}
    recs = list(ResultStore(tmp_path, "r").iter_records())
    assert len(recs) == 12
    keys = {(r["case_id"], r["prompt_index"], r["seed"]) for r in recs}
    assert len(keys) == 12
    rec = recs[0]
    for field in (
        "run_id",
        "method",
        "identity",
        "motion",
        "prompt",
        "seed",
        "metrics",
        "configs",
        "versions",
        "git",
        "timestamps",
        "metric_versions",
    ):
        assert field in rec
    assert rec["versions"]["torch"] and rec["configs"]["method"]["config"]["seed"] == 0
    assert set(rec["timestamps"]) == {"generated", "evaluated"}
    case_dir = tmp_path / "r" / "counting" / cases[0].case_id
    assert (case_dir / "state" / "COMPLETE").is_file() and (case_dir / "train.json").is_file()
    extras = np.load(case_dir / "videos" / "p000_s0.extras.npz")
    assert extras["trace"].shape == (2, 3)
    # nothing left behind by atomic writes
    assert not [p for p in tmp_path.rglob("*") if ".tmp" in p.name]


def test_resume_after_crash_redoes_only_missing_stages(tmp_path):
    cases = fc.make_cases(2, 3)
    fc.FAIL_AFTER_GENERATIONS["n"] = 4  # dies in the second case, after its training
    with pytest.raises(RuntimeError, match="simulated crash"):
        _runner(tmp_path, cases).run()
    assert fc.CALLS == {"train": 2, "generate": 4, "evaluate": 3}
    first = {p.name: p.read_bytes() for p in (tmp_path / "r").rglob("records/*.json")}
    fc.FAIL_AFTER_GENERATIONS["n"] = -1
    summary = _runner(tmp_path, cases).run()
    # case 0 complete -> skipped; case 1: state loaded, 2 videos generated, 3 evaluated
    assert summary.counts == {"skipped_cases": 1, "loaded": 1, "generated": 2, "evaluated": 3}
    assert fc.CALLS == {"train": 2, "generate": 6, "evaluate": 6}
    recs = list(ResultStore(tmp_path, "r").iter_records())
    assert len(recs) == 6 and len({(r["case_id"], r["prompt_index"]) for r in recs}) == 6
    after = {
        p.name: p.read_bytes()
        for p in (tmp_path / "r" / "counting" / cases[0].case_id).rglob("records/*.json")
    }
    assert all(first[k] == v for k, v in after.items())  # finished records untouched
    # a third run does nothing at all
    summary = _runner(tmp_path, cases).run()
    assert summary.counts == {"skipped_cases": 2}


def test_resumed_and_fresh_runs_give_identical_metrics(tmp_path):
    cases = fc.make_cases(2, 2)
    fc.FAIL_AFTER_GENERATIONS["n"] = 3
    with pytest.raises(RuntimeError):
        _runner(tmp_path / "a", cases).run()
    fc.FAIL_AFTER_GENERATIONS["n"] = -1
    _runner(tmp_path / "a", cases).run()
    _runner(tmp_path / "b", cases).run()

    def metrics(root):
        return sorted(
            (r["case_id"], r["prompt_index"], json.dumps(r["metrics"], sort_keys=True))
            for r in ResultStore(root, "r").iter_records()
        )

    assert metrics(tmp_path / "a") == metrics(tmp_path / "b")


def test_other_config_under_same_label_is_refused(tmp_path):
    cases = fc.make_cases(1, 1)
    _runner(tmp_path, cases, name="counting").run()
    with pytest.raises(ConfigError, match="another config"):
        _runner(tmp_path, cases, name="counting", method_overrides=("scale=2",)).run()
    # the default label includes the overrides, so the variant lands beside the original
    summary = _runner(tmp_path, cases, method_overrides=("scale=2",)).run()
    assert summary.label == "counting[scale=2]"


def test_corrupt_state_is_a_clear_error(tmp_path):
    cases = fc.make_cases(1, 2)
    _runner(tmp_path, cases).run()
    case_dir = tmp_path / "r" / "counting" / cases[0].case_id
    for p in (case_dir / "records").glob("*"):
        p.unlink()
    for p in (case_dir / "videos").glob("*"):
        p.unlink()
    (case_dir / "state" / "weights.safetensors").write_bytes(b"garbage")
    with pytest.raises(WeightsError, match="weights.safetensors"):
        _runner(tmp_path, cases).run()


def test_shards_partition_the_cases():
    cases = list(range(10))
    parts = [shard_cases(cases, i, 3) for i in range(3)]
    assert sorted(sum(parts, [])) == cases and all(len(p) >= 3 for p in parts)
    with pytest.raises(ConfigError, match="--shard"):
        RunConfig(shard=(3, 3))


def test_atomic_write_leaves_old_file_on_failure(tmp_path):
    target = tmp_path / "x.json"
    atomic_write_text(target, "old")
    with pytest.raises(ZeroDivisionError), atomic_path(target) as tmp:
        tmp.write_text("half")
        1 / 0  # noqa: B018
    assert target.read_text() == "old" and os.listdir(tmp_path) == ["x.json"]


def _rec(method, case, idx, **metrics):
    from dualreal_bench.metrics import METRIC_FIELDS

    vals = {f: None for f in METRIC_FIELDS}
    vals.update(metrics)
    return {"method": method, "case_id": case, "prompt_index": idx, "seed": 0, "metrics": vals}


def test_aggregation_means_over_videos_then_cases_and_marks():
    # case A has 2 videos, case B 1: mean over cases must weight cases, not videos
    recs = [
        _rec("m1", "A", 0, clip_t=0.1),
        _rec("m1", "A", 1, clip_t=0.3),
        _rec("m1", "B", 0, clip_t=0.5),
        _rec("m2", "A", 0, clip_t=0.0),
        _rec("m2", "A", 1, clip_t=0.0),
        _rec("m2", "B", 0, clip_t=0.1),
        _rec("m3", "A", 0, clip_t=0.9),
    ]  # m3 incomplete: its high value must not be ranked
    cols = [c for c in metric_columns() if c.field in ("clip_t", "temporal_flickering")]
    table = aggregate(recs, cols)
    cell = table.cells[("m1", "clip_t")]
    assert cell.mean == pytest.approx((0.2 + 0.5) / 2) and cell.n_videos == 3 and cell.complete
    assert not table.cells[("m3", "clip_t")].complete
    marks = table.rank_marks()
    assert marks[("m1", "clip_t")] == "best" and marks[("m2", "clip_t")] == "second"
    assert ("m3", "clip_t") not in marks
    md = render(table, "markdown")
    assert "**0.3500**" in md and "<u>0.0500</u>" in md and "0.9000†" in md
    rows = json.loads(render(table, "json"))["rows"]
    assert {r["method"]: r["clip_t_complete"] for r in rows} == {
        "m1": True,
        "m2": True,
        "m3": False,
    }
    csv_text = render(table, "csv")
    assert csv_text.splitlines()[0].startswith("method,clip_t,clip_t_n")
    tex = render(table, "latex")
    assert "\\textbf{0.3500}" in tex and tex.count("\\\\") == 4


def test_build_table_from_a_run(tmp_path):
    _runner(tmp_path, fc.make_cases(2, 2)).run()
    table = build_table(tmp_path, "r")
    assert table.rows == ["counting"] and table.expected_videos == 4
    assert all(table.cells[("counting", c.field)].complete for c in table.columns)
