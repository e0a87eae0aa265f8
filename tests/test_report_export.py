"""Data out: the per-video export (CSV / JSON / Parquet, wide and long) round-trips through
pandas to the records' values, and the leaderboard's rows are the tables' aggregates."""

from __future__ import annotations

import io
import json
import math

import pandas as pd
import pytest
from test_report import CASES, FIELDS, KNOWN, PROMPTS, TABLE1_METHODS, known_value, write_store

from dualreal_bench.cli import main
from dualreal_bench.report import build_report, method_variants
from dualreal_bench.report.export import leaderboard, per_video_rows, rows_text, write_rows
from dualreal_bench.store import ResultStore

METHODS = [
    ("base", "base", {"rank": "auto"}),  # "rank" is text here and a number for lora
    ("lora", "lora", {"rank": 4, "target_modules": ["to_q", "to_v"]}),
    ("dualreal", "dualreal", {"num_groups": 7, "controller": None, "dual_aware": True}),
]


def _value(label, case_id, p, field):
    # (a metric that failed for one video is no record since issue 14: nothing to export)
    return known_value(label, case_id, p, field) + (0.001 * p if field == "clip_t" else 0)


def _provenance(store: ResultStore, torch_for=lambda rec: "2.5.1") -> None:
    """Give every record the provenance fields the runner writes (write_store leaves them out)."""
    for rec in list(store.iter_records()):
        rec["versions"] = {"torch": torch_for(rec), "dualreal-bench": "0.1.0", "python": "3.11.7"}
        rec["metric_versions"] = {f: "1.0" for f in FIELDS}
        rec["metric_constants"] = {
            "encoders": {"flow": "tiny-raft-v1-seed4", "text_clip": "tiny-clip-v1-seed1"},
            "dd_reference": {"mean": 12.5, "motion": rec["motion"], "clips": {"a.mp4": 12.0}},
            "dd_top_fraction": 0.05,
        }
        rec["git"] = {"commit": "abc123", "dirty": False}
        rec["seeds"] = {"generation": rec["seed"], "method": 0, "global_rngs": {"train": 7}}
        rec["timestamps"] = {"evaluated": "2026-01-01T00:00:00+00:00"}
        rec["configs"]["backbone"] = {
            "profile": "cogvideox-5b",
            "config": {"num_inference_steps": 50, "height": 480},
            "transformer": {"num_layers": 42},
        }
        store.write_record(rec["method"], rec["case_id"], rec)


@pytest.fixture
def export_store(tmp_path):
    store = write_store(tmp_path, METHODS, CASES, PROMPTS, _value, seeds=(0, 1))
    _provenance(store)
    return tmp_path


def _key(row):
    return (row["method"], row["case_id"], int(row["prompt_index"]), int(row["seed"]))


def _same(a, b) -> bool:
    if b is None or (isinstance(b, float) and math.isnan(b)):
        return a is None or (isinstance(a, float) and math.isnan(a))
    return a == b


def _check_wide(frame: pd.DataFrame, records) -> None:
    assert len(frame) == len(records) == 2 * 3 * (3 + 1)  # seeds x methods x videos
    rows = {_key(r): r for r in frame.to_dict(orient="records")}
    variants = method_variants(records)
    for rec in records:
        row = rows[_key(rec)]
        for f in FIELDS:
            assert _same(row[f], rec["metrics"][f]), (f, row[f], rec["metrics"][f])
        for k in ("run_id", "suite", "profile", "identity", "motion", "prompt", "video"):
            assert row[k] == rec[k]
        assert row["variant"] == variants[rec["method"]].key
        assert row["method_name"] == rec["method_name"]
        assert row["versions.torch"] == "2.5.1" and row["git.commit"] == "abc123"
        assert str(row["metric_version.clip_i"]) == "1.0"  # CSV readers infer 1.0
        assert row["metric_constants.encoders.flow"] == "tiny-raft-v1-seed4"
        assert row["metric_constants.dd_reference.mean"] == 12.5
        assert row["backbone.config.num_inference_steps"] == 50
        assert int(row["seeds.global_rngs.train"]) == 7
    assert rows[("dualreal", "idA__moA", 0, 0)]["method_config.num_groups"] == 7
    assert _same(rows[("lora", "idA__moA", 0, 0)]["method_config.num_groups"], None)
    # an option of different kinds across methods becomes text; lists become JSON text
    assert rows[("lora", "idB__moB", 0, 1)]["method_config.rank"] == "4"
    assert rows[("base", "idB__moB", 0, 1)]["method_config.rank"] == "auto"
    assert json.loads(rows[("lora", "idA__moA", 0, 0)]["method_config.target_modules"]) == [
        "to_q",
        "to_v",
    ]
    # what is left out: per-clip reference values, the backbone's architecture
    assert not [c for c in frame.columns if c.startswith("metric_constants.dd_reference.clips")]
    assert not [c for c in frame.columns if c.startswith("backbone.transformer")]
    assert list(frame.columns[:4]) == ["run_id", "suite", "profile", "method"]


def test_per_video_csv_and_json_round_trip(export_store, tmp_path):
    rep = build_report(export_store, "r")
    rows = per_video_rows(rep.records)
    _check_wide(pd.read_csv(write_rows(rows, "csv", tmp_path / "v.csv")), rep.records)
    _check_wide(pd.read_csv(io.StringIO(rows_text(rows, "csv"))), rep.records)
    _check_wide(pd.DataFrame(json.loads(rows_text(rows, "json"))), rep.records)
    # rows come in the tables' method order, then case, prompt, seed
    assert [r["method"] for r in rows[:1]] == ["base"] and rows[-1]["method"] == "dualreal"
    assert [(r["prompt_index"], r["seed"]) for r in rows[:3]] == [(0, 0), (0, 1), (1, 0)]


def test_per_video_parquet_round_trip(export_store, tmp_path):
    pytest.importorskip("pyarrow")
    rep = build_report(export_store, "r")
    path = write_rows(per_video_rows(rep.records), "parquet", tmp_path / "v.parquet")
    frame = pd.read_parquet(path)
    _check_wide(frame, rep.records)
    assert frame["clip_i"].dtype == "float64" and frame["prompt_index"].dtype == "int64"
    assert frame["dynamic_degree_bool"].dtype == "float64"  # known_value gives 1.0


def test_per_video_long_format(export_store, tmp_path):
    rep = build_report(export_store, "r")
    rows = per_video_rows(rep.records, long=True)
    assert len(rows) == len(rep.records) * len(FIELDS)
    frame = pd.read_csv(write_rows(rows, "csv", tmp_path / "long.csv"))
    by = {(*_key(r), r["metric"]): r for r in frame.to_dict(orient="records")}
    for rec in rep.records:
        for f in FIELDS:
            row = by[(*_key(rec), f)]
            assert _same(row["value"], rec["metrics"][f])
            lower = ("dynamic_degree_dev", "motion_fidelity_rank")
            assert row["higher_is_better"] == (f not in lower)
    # the long form is the wide one melted
    wide = pd.DataFrame(per_video_rows(rep.records))
    melted = wide.melt(
        id_vars=["method", "case_id", "prompt_index", "seed"], value_vars=list(FIELDS)
    )
    assert melted["value"].sum() == pytest.approx(frame["value"].sum())


def _leaderboard_store(root, run_id="r", skip=()):
    store = write_store(root, TABLE1_METHODS, CASES, PROMPTS, known_value, run_id=run_id, skip=skip)
    _provenance(store, torch_for=lambda rec: "2.6.0" if rec["case_id"] == "idB__moB" else "2.5.1")
    return store


def test_leaderboard_rows_are_the_tables_aggregates(tmp_path):
    # lora misses case B's only video: incomplete, never ranked
    _leaderboard_store(tmp_path, skip={("lora", "idB__moB", 0)})
    rep = build_report(tmp_path, "r")
    board = json.loads(json.dumps(leaderboard([rep]), allow_nan=False))
    assert board["format"] == "dualreal-bench-leaderboard" and board["format_version"] == 1
    assert board["runs"] == [{"run_id": "r", "suite": "paper", "profile": "cogvideox-5b"}]
    rows = {r["method"]: r for r in board["rows"]}
    assert list(rows) == ["base", "lora", "dualreal"]
    (t1,) = rep.tables
    for label, row in rows.items():
        for col in t1.columns:
            for f in col.fields:
                cell = t1.cells[(label, f)]
                m = row["metrics"][f]
                assert (m["mean"], m["n_videos"], m["n_cases"], m["complete"]) == (
                    cell.mean,
                    cell.n_videos,
                    cell.n_cases,
                    cell.complete,
                )
                assert m["case_std"] == cell.case_std
        assert row["expected_videos"] == 4 and row["run_id"] == "r"
        assert row["paper_tables"] == ["table1"]
    # known answers: mean over each case's videos, then over cases
    assert rows["base"]["metrics"]["clip_i"]["mean"] == pytest.approx(0.55)
    assert rows["dualreal"]["metrics"]["clip_i"]["mean"] == pytest.approx(0.7)
    assert rows["lora"]["metrics"]["clip_i"]["mean"] == pytest.approx(
        sum(KNOWN["lora"]["idA__moA"]) / 3
    )
    assert (rows["lora"]["n_videos"], rows["lora"]["complete"]) == (3, False)
    # ranks among complete rows; dynamic degree ranked by |deviation from the dataset average|
    # (the reference clips _provenance writes average 12.0: base 0.8 - 12 = -11.2 is closer
    # than dualreal's -11.4); the per-video absolute deviation is not ranked
    assert [rows[m]["metrics"]["clip_i"]["rank"] for m in rows] == [2, None, 1]
    assert rows["dualreal"]["dynamic_degree_dataset_avg"] == pytest.approx(12.0)
    assert rows["base"]["metrics"]["dynamic_degree_dataset_dev"]["mean"] == pytest.approx(-11.2)
    assert [rows[m]["metrics"]["dynamic_degree_dataset_dev"]["rank"] for m in rows] == [1, None, 2]
    assert {rows[m]["metrics"]["dynamic_degree_dev"]["rank"] for m in rows} == {None}
    assert rows["base"]["metrics"]["dynamic_degree"]["rank"] is None
    assert [rows[m]["metrics"]["clip_t"]["rank"] for m in ("base", "dualreal")] == [1, 1]  # tie
    # provenance: what the records agree on, or every value they hold
    assert rows["base"]["versions"]["torch"] == ["2.5.1", "2.6.0"]
    assert rows["base"]["versions"]["dualreal-bench"] == "0.1.0"
    assert rows["dualreal"]["git"] == {"commit": "abc123", "dirty": False}
    assert rows["dualreal"]["method_config"] == {
        "num_groups": 7,
        "controller": None,
        "dual_aware": True,
    }
    assert rows["dualreal"]["encoders"]["flow"] == "tiny-raft-v1-seed4"
    fields = [m["field"] for m in board["metrics"]]
    assert fields[:3] == ["clip_t", "clip_i", "dino_i"] and "dynamic_degree_bool" in fields


def test_leaderboard_ranks_across_runs_of_one_suite(tmp_path):
    _leaderboard_store(tmp_path, "r1")
    _leaderboard_store(tmp_path, "r2", skip={("dualreal", "idB__moB", 0)})
    board = leaderboard([build_report(tmp_path, "r1"), build_report(tmp_path, "r2")])
    ranks = {(r["run_id"], r["method"]): r["metrics"]["clip_i"]["rank"] for r in board["rows"]}
    # r1: base .55, lora .6, dualreal .7; r2: base .55, lora .6 (dualreal incomplete)
    assert ranks == {
        ("r1", "base"): 4,
        ("r1", "lora"): 2,
        ("r1", "dualreal"): 1,
        ("r2", "base"): 4,
        ("r2", "lora"): 2,
        ("r2", "dualreal"): None,
    }


def test_cli_per_video_and_leaderboard(export_store, tmp_path, capsys, monkeypatch):
    base = ["report", "--output-dir", str(export_store), "--run-id", "r"]
    out = tmp_path / "v.csv"
    assert main([*base, "--per-video", "--format", "csv", "--out", str(out)]) == 0
    rep = build_report(export_store, "r")
    _check_wide(pd.read_csv(out), rep.records)
    capsys.readouterr()
    assert main([*base, "--per-video", "--format", "json"]) == 0
    _check_wide(pd.DataFrame(json.loads(capsys.readouterr().out)), rep.records)
    board = tmp_path / "lb.json"
    assert main([*base, "--leaderboard", str(board)]) == 0
    assert capsys.readouterr().out == ""  # a file asked for: no table printed
    rows = json.loads(board.read_text())["rows"]
    assert [r["method"] for r in rows] == ["base", "lora", "dualreal"]
    assert rows[2]["metrics"]["clip_i"]["mean"] == pytest.approx(0.7)
    assert main([*base, "--leaderboard", "-"]) == 0
    assert json.loads(capsys.readouterr().out)["rows"] == rows
    # bad combinations: one line, exit 2, nothing written
    for args, message in (
        (["--format", "parquet"], "only with --per-video"),
        (["--per-video", "--format", "parquet"], "pass --out"),
        (["--per-video"], "choose csv, json or parquet"),
        (["--long", "--format", "csv"], "--long: only with --per-video"),
        (["--per-video", "--format", "csv", "--table"], "drop --table"),
        (["--table", "--leaderboard", "-"], "pass a file"),
    ):
        assert main([*base, *args]) == 2, args
        assert message in capsys.readouterr().err, args
    # Parquet without pyarrow: says how to get it
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "pyarrow" else real(name, *a)
    )
    target = tmp_path / "v.parquet"
    assert main([*base, "--per-video", "--format", "parquet", "--out", str(target)]) == 2
    assert "pip install 'dualreal-bench[parquet]'" in capsys.readouterr().err
    assert not target.exists()
