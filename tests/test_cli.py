"""The command line end to end on the smoke suite (tiny profile, project-generated data)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

CLI = [sys.executable, "-m", "dualreal_bench.cli"]


def _cli(*args, cwd, env_extra=None, check=True):
    env = {**os.environ, "DUALREAL_BENCH_CACHE": str(cwd / "cache"), **(env_extra or {})}
    proc = subprocess.run(
        [*CLI, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
        )
    return proc


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    """`run --method base --suite smoke` once; later tests read its store."""
    cwd = tmp_path_factory.mktemp("cli")
    proc = _cli("--quiet", "run", "--method", "base", "--suite", "smoke", cwd=cwd)
    return cwd, proc


def test_smoke_run_writes_records_and_videos(smoke_run):
    cwd, _ = smoke_run
    run_dir = cwd / "results" / "smoke-tiny"
    records = sorted(run_dir.glob("base/*/records/*.json"))
    assert len(records) == 2  # the smoke suite: 1 case x 2 prompts x 1 seed
    rec = json.loads(records[0].read_text())
    assert (
        rec["method"] == "base"
        and rec["identity"] == "smoke_toy"
        and rec["motion"] == "smoke_pendulum"
    )
    assert " *" in rec["prompt"] and rec["seed"] == 0
    assert (run_dir / rec["video"]).stat().st_size > 0
    metrics = rec["metrics"]
    assert set(metrics) >= {
        "clip_t",
        "clip_i",
        "dino_i",
        "temporal_flickering",
        "temporal_consistency",
        "motion_smoothness",
        "dynamic_degree",
        "dynamic_degree_dev",
    }
    assert all(metrics[k] is not None for k in metrics), metrics


def test_rerun_does_nothing(smoke_run):
    cwd, _ = smoke_run
    proc = _cli("run", "--method", "base", "--suite", "smoke", cwd=cwd)
    assert "skipped_cases 1" in proc.stderr


def test_report_table_formats(smoke_run):
    cwd, _ = smoke_run
    out = _cli("report", "--table", "--format", "json", cwd=cwd).stdout
    rows = json.loads(out)["rows"]
    assert [r["method"] for r in rows] == ["base"] and rows[0]["clip_t_n"] == 2
    md = _cli("report", "--table", "--format", "markdown", cwd=cwd).stdout
    assert "| base |" in md
    rich = _cli("report", "--table", cwd=cwd).stdout
    assert "base" in rich and "CLIP-T" in rich


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["run", "--method", "nosuch"], "unknown method 'nosuch'"),
        (["run", "--suite", "nosuch"], "nosuch"),
        (["run", "--method", "base", "--set", "nope=1"], "no option 'nope'"),
        (["run", "--shard", "2/2"], "--shard"),
        (["report", "--run-id", "missing-run"], "missing-run"),
        (["run", "--suite", "paper", "--data-root", "/nonexistent/root"], "/nonexistent/root"),
    ],
)
def test_bad_input_is_one_line_exit_2(tmp_path, args, fragment):
    proc = _cli(*args, cwd=tmp_path, check=False)
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert (
        len(lines) == 1 and lines[0].startswith("dualreal-bench: error:") and fragment in lines[0]
    ), proc.stderr
    assert "Traceback" not in proc.stderr


def test_list_commands(tmp_path):
    for what, expected in (
        ("identities", "plushie_teddybear"),
        ("motions", "Kicking-Front"),
        ("suites", "ablation"),
        ("methods", "base"),
    ):
        out = _cli("list", what, cwd=tmp_path).stdout
        assert expected in out, out
