"""`dualreal-bench estimate`: measured unit costs, and projections that follow from them."""

from __future__ import annotations

import json

import pytest
from test_resilience_helpers import mini_data_root, shared_env, torch_threads

from dualreal_bench import cli
from dualreal_bench.analysis.cost import estimate


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    base = tmp_path_factory.getbasetemp()
    root, cases = mini_data_root(base, 1)
    return root, cases, base


def test_estimate_measures_and_projects(data, monkeypatch, tmp_path):
    root, cases, base = data
    monkeypatch.setenv("DUALREAL_BENCH_CACHE", shared_env(base)["DUALREAL_BENCH_CACHE"])
    monkeypatch.chdir(tmp_path)
    with torch_threads(1):
        out = estimate(
            cases_file=str(cases),
            data_root=str(root),
            method="dualreal",
            method_overrides=["max_train_steps=40"],
            backbone_overrides=["num_inference_steps=2"],
            num_prompts=2,
            seeds=(0, 1, 2),
            steps=3,
        )
    assert (out["cases"], out["prompts"], out["videos"], out["motions"]) == (1, 2, 6, 1)
    assert out["planned_steps"] == 40 and out["unmeasured"] == []
    training = out["training"]
    assert (
        training["timed_steps"] == 3
        and training["step_seconds"] > 0
        and training["prepare_seconds"] >= 0
    )
    for key in (
        "generation_seconds",
        "evaluation_seconds",
        "state_bytes",
        "mp4_bytes",
        "record_bytes",
    ):
        assert out[key] > 0, key
    hours = out["projected_hours"]
    expected_train = (training["prepare_seconds"] + 40 * training["step_seconds"]) / 3600
    assert hours["training"] == pytest.approx(expected_train)
    assert hours["generation"] == pytest.approx(6 * out["generation_seconds"] / 3600)
    assert hours["total"] == pytest.approx(
        hours["training"] + hours["generation"] + hours["evaluation"]
    )
    disk = out["projected_bytes"]
    assert disk["states"] == out["state_bytes"] and disk["total"] > 6 * out["mp4_bytes"]
    assert list(tmp_path.iterdir()) == []  # measuring writes nothing where it runs


def test_estimate_real_profile_without_weights_says_what_it_cannot_measure(
    capsys, monkeypatch, tmp_path
):
    """cogvideox-5b without weights: no timings, but the plan (50 cases x 50 prompts, 1,000
    steps) and the state size counted on the meta device; the table says what is missing."""
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # an empty cache: the weights are missing
    monkeypatch.setenv("DUALREAL_BENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("DUALREAL_BENCH_DATA", raising=False)
    capsys.readouterr()
    assert (
        cli.main(
            [
                "-q",
                "estimate",
                "--suite",
                "paper",
                "--method",
                "dualreal",
                "--profile",
                "cogvideox-5b",
                "--format",
                "json",
            ]
        )
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert (out["cases"], out["videos"], out["planned_steps"]) == (50, 2500, 1000)
    assert out["state_bytes"] > 100 * 2**20  # ~330 M fp32 adapter parameters
    assert (
        out["projected_hours"]["total"] is None
        and out["projected_bytes"]["states"] == 50 * out["state_bytes"]
    )
    assert any("weights missing" in item for item in out["unmeasured"])
    assert (
        cli.main(
            [
                "-q",
                "estimate",
                "--suite",
                "paper",
                "--method",
                "dualreal",
                "--profile",
                "cogvideox-5b",
            ]
        )
        == 0
    )
    table = capsys.readouterr().out
    assert "cannot measure" in table and "not measured" in table and "GiB" in table
