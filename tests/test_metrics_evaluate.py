"""``dualreal-bench evaluate``: external videos scored into the result store."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from dualreal_bench.cli import main
from dualreal_bench.commands.evaluate import collect_videos, parse_video_name
from dualreal_bench.errors import DataError

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest.py


def test_video_names():
    assert parse_video_name(Path("000.mp4"), 0) == (0, 0)
    assert parse_video_name(Path("12_dog_guitar.mp4"), 5) == (12, 5)
    assert parse_video_name(Path("p003_s42.mp4"), 0) == (3, 42)
    with pytest.raises(DataError, match="cannot tell which prompt"):
        parse_video_name(Path("dog.mp4"), 0)


def test_collect_videos_checks_indices_and_duplicates(tmp_path):
    for name in ("000.mp4", "1_b.mp4"):
        (tmp_path / name).write_bytes(b"")
    assert [(i, s) for i, s, _ in collect_videos(tmp_path, 2, 0)] == [(0, 0), (1, 0)]
    with pytest.raises(DataError, match="has 1 prompt"):
        collect_videos(tmp_path, 1, 0)
    (tmp_path / "p000_s0.mp4").write_bytes(b"")
    with pytest.raises(DataError, match="both prompt 0, seed 0"):
        collect_videos(tmp_path, 2, 0)


def test_evaluate_command_writes_records_and_resumes(tmp_path, capsys):
    root = os.environ.get("DUALREAL_BENCH_DATA")
    if not root:
        pytest.skip("DUALREAL_BENCH_DATA is not set")
    from dualreal_bench.media import write_video

    videos = tmp_path / "videos"
    rng = np.random.default_rng(0)
    tex = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    for name, step in (("000.mp4", 1), ("1_second.mp4", 3)):
        write_video(
            videos / name, np.stack([np.roll(tex, t * step, axis=1) for t in range(9)]), fps=8
        )
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("cat * kicking a ball\ncat * doing a front kick in a park\n")
    argv = [
        "-q",
        "evaluate",
        "--videos",
        str(videos),
        "--identity",
        "cat",
        "--motion",
        "Kicking-Front",
        "--prompts",
        str(prompts),
        "--data-root",
        root,
        "--output-dir",
        str(tmp_path / "results"),
        "--run-id",
        "ext",
        "--method-name",
        "mymethod",
        "--profile",
        "tiny",
    ]
    assert main(argv) == 0
    records = sorted(
        (tmp_path / "results" / "ext" / "mymethod" / "cat__Kicking-Front" / "records").glob(
            "*.json"
        )
    )
    assert [r.name for r in records] == ["p000_s0.json", "p001_s0.json"]
    rec = json.loads(records[1].read_text())
    assert rec["prompt"] == "cat * doing a front kick in a park" and rec["method"] == "mymethod"
    assert set(rec["metrics"]) >= {"clip_t", "dynamic_degree_dev", "dynamic_degree_bool"}
    assert all(v is not None for v in rec["metrics"].values())
    assert rec["metric_constants"]["dd_sampling"]["fps"] == pytest.approx(8.0)
    assert rec["metric_versions"]["clip_t"] == "1.0"
    capsys.readouterr()
    assert main(argv) == 0  # resumed: nothing to do
    assert "already scored" in capsys.readouterr().out


def test_evaluate_command_errors_are_one_line(tmp_path, capsys):
    code = main(
        ["evaluate", "--videos", str(tmp_path / "missing"), "--identity", "cat", "--motion", "x"]
    )
    err = capsys.readouterr().err
    assert code == 2 and "no such folder" in err and len(err.strip().splitlines()) == 1
