"""Tests of dualreal_bench.sample_data: layout, determinism, real periodic motion, atomicity."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from dualreal_bench.errors import DataError
from dualreal_bench.media import list_images, list_videos, probe_video, read_image, read_video
from dualreal_bench.sample_data import (
    MARKER_NAME,
    SAMPLE_DATA_VERSION,
    SMOKE_IDENTITY,
    SMOKE_MOTION,
    SMOKE_MOTION_PROMPT,
    SWING_CLIPS,
    VIDEO_FPS,
    default_sample_data_root,
    ensure_sample_data,
)


def _files(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def sample_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("sd") / "sample_data"
    start = time.perf_counter()
    assert ensure_sample_data(root) == root
    elapsed = time.perf_counter() - start
    # the brief asks for < 3 s; a loaded 2-core CI box gets some slack
    assert elapsed < 6.0, f"generation took {elapsed:.1f} s"
    return root


def test_layout(sample_root):
    ident = sample_root / "identities" / SMOKE_IDENTITY
    motion = sample_root / "motions" / SMOKE_MOTION
    assert [p.name for p in list_images(ident / "images")] == [
        "00.png",
        "01.png",
        "02.png",
        "03.png",
    ]
    assert not (ident / "eval_pro_50.txt").exists()  # the benchmark writes the smoke prompts
    videos = list_videos(motion / "videos")
    assert [p.name for p in videos] == ["clip_00.mp4", "clip_01.mp4", "clip_02.mp4"]
    lines = (motion / "prompts.txt").read_text().splitlines()
    assert lines == [SMOKE_MOTION_PROMPT] * 3
    assert SMOKE_MOTION_PROMPT == "a person is swinging back and forth"
    marker = json.loads((sample_root / MARKER_NAME).read_text())
    assert marker["version"] == SAMPLE_DATA_VERSION
    assert len(marker["sha256"]) == 64
    assert sorted(marker["files"]) == sorted(k for k in _files(sample_root) if k != MARKER_NAME)
    assert not [
        p for p in sample_root.parent.iterdir() if p.name.startswith(".")
    ]  # no temp dirs left


def test_images_show_one_toy_in_different_views(sample_root):
    images = [
        read_image(p) for p in list_images(sample_root / "identities" / SMOKE_IDENTITY / "images")
    ]
    for img in images:
        assert img.shape == (256, 256, 3) and img.dtype == np.uint8
        # the toy's red and yellow checks are present in every view
        red = (img[..., 0] > 200) & (img[..., 1] < 80) & (img[..., 2] < 80)
        yellow = (img[..., 0] > 230) & (img[..., 1] > 180) & (img[..., 2] < 80)
        assert red.mean() > 0.03 and yellow.mean() > 0.03
    for i in range(len(images)):
        for j in range(i + 1, len(images)):
            assert np.abs(images[i].astype(int) - images[j]).mean() > 10  # different views


def test_videos_have_real_periodic_motion(sample_root):
    videos = list_videos(sample_root / "motions" / SMOKE_MOTION / "videos")
    for path, clip in zip(videos, SWING_CLIPS, strict=True):
        info = probe_video(path)
        assert info.num_frames >= 49 and info.fps == VIDEO_FPS
        assert (info.height, info.width) == (120, 160) and info.codec == "h264"
        frames = read_video(path).astype(np.int16)
        period = clip.period

        def changed(a: int, b: int, frames: np.ndarray = frames) -> float:
            """Fraction of pixels that really changed (any channel by more than 40 levels)."""
            return float((np.abs(frames[a] - frames[b]).max(axis=-1) > 40).mean())

        steps = [np.abs(frames[t] - frames[t + 1]).mean() for t in range(len(frames) - 1)]
        assert min(steps) > 0.5, "the swing must move between every two frames"
        within = [changed(0, k) for k in range(1, period)]
        assert np.mean(within) > 0.03 and max(within) > 0.05  # the figure sweeps a real area
        # one period later the picture repeats, up to compression noise
        for t in range(len(frames) - period):
            assert changed(t, t + period) < 0.002, (path.name, t)
    # the clips differ from each other (speed, phase, background)
    firsts = [read_video(p, num_frames=1)[0].astype(int) for p in videos]
    assert np.abs(firsts[0] - firsts[1]).mean() > 10 and np.abs(firsts[1] - firsts[2]).mean() > 10


def test_deterministic(sample_root, tmp_path):
    other = ensure_sample_data(tmp_path / "again")
    a, b = _files(sample_root), _files(other)
    assert a.keys() == b.keys()
    for name in a:
        # PNGs, prompts and marker are byte-identical; so are the MP4s (x264 with a fixed
        # thread count is deterministic for one FFmpeg build)
        assert a[name] == b[name], name


def test_idempotent_and_repairs(sample_root, tmp_path):
    root = ensure_sample_data(tmp_path / "sd")
    stamp = {p: p.stat().st_mtime_ns for p in root.rglob("*")}
    start = time.perf_counter()
    assert ensure_sample_data(root) == root
    assert time.perf_counter() - start < 0.5
    assert {p: p.stat().st_mtime_ns for p in root.rglob("*")} == stamp  # nothing rewritten

    # a damaged file or an outdated marker makes the root get regenerated
    png = root / "identities" / SMOKE_IDENTITY / "images" / "01.png"
    png.write_bytes(b"broken")
    ensure_sample_data(root)
    assert _files(root) == _files(sample_root)
    marker = root / MARKER_NAME
    info = json.loads(marker.read_text())
    marker.write_text(json.dumps({**info, "version": SAMPLE_DATA_VERSION - 1}))
    ensure_sample_data(root)
    assert json.loads(marker.read_text())["version"] == SAMPLE_DATA_VERSION
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_existing_empty_dir_is_filled_but_foreign_dir_is_refused(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    ensure_sample_data(empty)
    assert (empty / MARKER_NAME).exists()
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("precious")
    with pytest.raises(DataError, match="not a sample-data directory"):
        ensure_sample_data(foreign)
    assert (foreign / "thesis.tex").read_text() == "precious"


def test_default_root(monkeypatch, tmp_path):
    monkeypatch.setenv("DUALREAL_BENCH_CACHE", str(tmp_path / "cache"))
    assert default_sample_data_root() == tmp_path / "cache" / "sample_data"
    monkeypatch.delenv("DUALREAL_BENCH_CACHE")
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert (
        default_sample_data_root()
        == tmp_path / "home" / ".cache" / "dualreal-bench" / "sample_data"
    )


def test_concurrent_processes(tmp_path, sample_root):
    root = tmp_path / "shared"
    code = (
        "import sys; from dualreal_bench.sample_data import ensure_sample_data; "
        "print(ensure_sample_data(sys.argv[1]))"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(root)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for _ in range(2)
    ]
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err.decode()
        assert out.decode().strip() == str(root)
    assert _files(root) == _files(sample_root)
    assert [p.name for p in tmp_path.iterdir()] == ["shared"]  # the loser's temp dir is gone
