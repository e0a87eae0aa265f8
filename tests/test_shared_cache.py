"""The shared user cache of metric reference values (dualreal_bench.cache + the evaluator).

What must hold: a new evaluator, run id or process finds the reference-clip Dynamic Degrees
computed before (no RAFT call: a spy counts every call of the RAFT network) and gives the
same records; the key follows content and constants (a changed clip byte, top fraction,
iteration count or thread count misses; a moved or touched clip with the same bytes hits);
a corrupt entry is ignored with a warning and recomputed, never trusted; concurrent writers
never leave a torn entry.
"""

from __future__ import annotations

import json
import logging
import multiprocessing as mp
import os
import zipfile
from types import SimpleNamespace

import fake_components as fc
import numpy as np
import pytest
from test_resilience_helpers import comparable, mini_data_root, torch_threads

from dualreal_bench.cache import ArrayCache, file_sha256, user_cache_dir
from dualreal_bench.media import write_image, write_video
from dualreal_bench.metrics import MetricConstants, build_evaluator
from dualreal_bench.metrics.flow import RaftFlow

SIZE = (64, 64)


@pytest.fixture
def raft_calls(monkeypatch):
    """Counts every call of any RaftFlow (the network behind Dynamic Degree)."""
    calls = {"n": 0}
    original = RaftFlow.__call__

    def spy(self, frames):
        calls["n"] += 1
        return original(self, frames)

    monkeypatch.setattr(RaftFlow, "__call__", spy)
    return calls


def _clip(shift: int) -> np.ndarray:
    """9 frames of a textured 64x64 pattern translating ``shift`` px per frame."""
    rng = np.random.default_rng(3)
    base = rng.integers(0, 255, size=(64, 96, 3)).astype(np.uint8)
    return np.stack([base[:, shift * t : shift * t + 64] for t in range(9)])


def _case(tmp_path, clip_path):
    image = tmp_path / "ref.png"
    if not image.is_file():
        write_image(image, np.full((32, 32, 3), 128, dtype=np.uint8))
    return SimpleNamespace(
        identity=SimpleNamespace(name="subject"),
        motion=SimpleNamespace(name="motion"),
        image_paths=lambda: [image],
        video_paths=lambda: [clip_path],
        motion_references=lambda: {"motion": [clip_path]},
    )


def _evaluator(cache, **constants):
    return build_evaluator(
        "tiny", cache_dir=cache, progress=False, constants=MetricConstants(**constants)
    )


def test_user_cache_dir_resolution(monkeypatch, tmp_path):
    monkeypatch.setenv("DUALREAL_BENCH_CACHE", str(tmp_path / "c"))
    assert user_cache_dir() == tmp_path / "c"
    monkeypatch.delenv("DUALREAL_BENCH_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert user_cache_dir() == tmp_path / "xdg" / "dualreal-bench"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert user_cache_dir() == tmp_path / "home" / ".cache" / "dualreal-bench"


def test_reference_dd_is_shared_and_keyed_by_content_and_constants(tmp_path, raft_calls):
    cache = tmp_path / "cache"
    clip = tmp_path / "clips" / "clip.mp4"
    write_video(clip, _clip(2), fps=8)
    case = _case(tmp_path, clip)
    with torch_threads(1):
        first = _evaluator(cache).reference_dynamic_degrees(case, SIZE)
        assert raft_calls["n"] == 1 and first["clip.mp4"] > 0
        entries = list((cache / "metrics" / "reference_dd").glob("*.npz"))
        assert len(entries) == 1

        # another evaluator (a new run, a new run id): from disk, bit-equal, no RAFT call
        raft_calls["n"] = 0
        again = _evaluator(cache)
        assert again.reference_dynamic_degrees(case, SIZE) == first
        assert raft_calls["n"] == 0 and again.cache.hits["disk"] == 1

        # the same bytes elsewhere, or touched: still a hit (the key is the content, not the path)
        moved = tmp_path / "moved" / "clip.mp4"
        moved.parent.mkdir()
        moved.write_bytes(clip.read_bytes())
        os.utime(moved, (1, 1))
        assert _evaluator(cache).reference_dynamic_degrees(_case(tmp_path, moved), SIZE) == first
        assert raft_calls["n"] == 0

        # a constant that changes the value: a miss, and another value
        other = _evaluator(cache, dd_top_fraction=0.2).reference_dynamic_degrees(case, SIZE)
        assert raft_calls["n"] == 1 and other["clip.mp4"] != first["clip.mp4"]
        _evaluator(cache, raft_iters=3).reference_dynamic_degrees(case, SIZE)
        assert raft_calls["n"] == 2
        # a constant that does not enter Dynamic Degree: still a hit
        _evaluator(cache, prompt_max_chars=100).reference_dynamic_degrees(case, SIZE)
        assert raft_calls["n"] == 2
        # another size the clip is resized to: a miss
        _evaluator(cache).reference_dynamic_degrees(case, (64, 96))
        assert raft_calls["n"] == 3

        # the clip's bytes change (same name, same size on disk or not): a miss
        write_video(clip, _clip(3), fps=8)
        changed = _evaluator(cache).reference_dynamic_degrees(case, SIZE)
        assert raft_calls["n"] == 4 and changed["clip.mp4"] != first["clip.mp4"]

    # another CPU thread count (records are bit-identical only with equal counts): a miss
    with torch_threads(2):
        _evaluator(cache).reference_dynamic_degrees(case, SIZE)
    assert raft_calls["n"] == 5


def test_identity_and_prompt_embeddings_come_from_the_shared_cache(tmp_path, raft_calls):
    cache = tmp_path / "cache"
    clip = tmp_path / "clip.mp4"
    write_video(clip, _clip(2), fps=8)
    case = _case(tmp_path, clip)
    video = _clip(1)
    with torch_threads(1):
        a = _evaluator(cache).evaluate_video(video, prompt="toy * swinging", case=case)
        ev = _evaluator(cache)
        b = ev.evaluate_video(video, prompt="toy * swinging", case=case)
    assert a == b
    # the clip's DD, its chained tracks and its motion descriptor (issue 15), the prompt, the
    # image for CLIP and for DINO
    assert ev.cache.hits == {"memory": 0, "disk": 6, "miss": 0}
    assert raft_calls["n"] == 3  # clip + video, then the video only


def test_corrupt_entries_are_ignored_with_a_warning_and_recomputed(tmp_path, raft_calls, caplog):
    cache = tmp_path / "cache"
    clip = tmp_path / "clip.mp4"
    write_video(clip, _clip(2), fps=8)
    case = _case(tmp_path, clip)
    with torch_threads(1):
        good = _evaluator(cache).reference_dynamic_degrees(case, SIZE)
        (entry,) = (cache / "metrics" / "reference_dd").glob("*.npz")
        original = entry.read_bytes()

        def damaged(data: bytes) -> None:
            entry.write_bytes(data)
            raft_calls["n"] = 0
            caplog.clear()
            with caplog.at_level(logging.WARNING, logger="dualreal_bench.cache"):
                assert _evaluator(cache).reference_dynamic_degrees(case, SIZE) == good
            assert raft_calls["n"] == 1, "a damaged entry must be recomputed"
            assert any(
                "ignoring cache entry" in r.getMessage() and str(entry) in r.getMessage()
                for r in caplog.records
            )
            assert entry.read_bytes() == original  # rewritten, valid again

        damaged(original[: len(original) // 2])  # torn
        damaged(b"not a cache entry at all")  # garbage
        # a flipped byte inside the stored value: the zip member's CRC catches it
        with zipfile.ZipFile(entry) as zf:
            info = zf.getinfo("value.npy")
        value_end = (
            info.header_offset + 30 + len(info.filename) + len(info.extra) + info.compress_size
        )
        flipped = bytearray(original)
        flipped[value_end - 1] ^= 0xFF
        damaged(bytes(flipped))
        # a valid entry holding another key (copied over, or a digest collision)
        store = ArrayCache(tmp_path / "other")
        store.put("reference_dd", ["another", "key"], np.float64(1.5))
        damaged(store.path("reference_dd", ["another", "key"]).read_bytes())


def _hammer(root: str, worker: int, rounds: int, queue) -> None:
    cache = ArrayCache(root)
    bad = 0
    for r in range(rounds):
        k = (worker + r) % 5
        expected = np.arange(1000, dtype=np.float64) * k
        if r % 2:
            cache.put("x", ["key", k], expected)
        else:
            got = cache.get("x", ["key", k])
            bad += got is not None and not np.array_equal(got, expected)
    queue.put((bad, cache.hits["corrupt"]))


def test_concurrent_writers_never_leave_a_torn_entry(tmp_path):
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_hammer, args=(str(tmp_path), w, 200, queue)) for w in range(4)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert results == [(0, 0)] * 4  # no wrong value, no rejected entry
    assert sorted(p.name for p in (tmp_path / "x").iterdir()) == sorted(
        ArrayCache(tmp_path).path("x", ["key", k]).name for k in range(5)
    )  # and no temp file left behind


def test_file_sha256_is_the_content_hash(tmp_path):
    import hashlib

    f = tmp_path / "a.bin"
    f.write_bytes(b"abc" * 1000)
    assert file_sha256(f) == hashlib.sha256(b"abc" * 1000).hexdigest()
    f.write_bytes(b"abd" * 1001)  # rewritten: new size and mtime, not a stale memo
    assert file_sha256(f) == hashlib.sha256(b"abd" * 1001).hexdigest()


# ---- the runner: a second run id hits the shared cache ---------------------------------------------


def _run(tmp_path, data, run_id):
    from dualreal_bench.runner import RunConfig, Runner

    root, cases = data
    cfg = RunConfig(
        method="fake_components:MovingSquareMethod",
        suite="custom",
        cases_file=str(cases),
        data_root=str(root),
        metrics_profile="tiny",
        num_prompts=2,
        output_dir=str(tmp_path / "out"),
        run_id=run_id,
        progress=False,
    )
    with torch_threads(1):
        return Runner(cfg, backbone=fc.FakeBackbone()).run()


def _records(run_dir) -> dict:
    out = {}
    for path in sorted(run_dir.rglob("records/*.json")):
        rec = json.loads(path.read_text())
        rec = comparable(rec)
        rec["run_config"] = {k: v for k, v in rec["run_config"].items() if k != "run_id"}
        out[path.relative_to(run_dir).as_posix()] = rec
    return out


def test_second_run_id_hits_the_shared_cache_with_identical_records(
    tmp_path, monkeypatch, raft_calls
):
    data = mini_data_root(tmp_path, 1)  # one identity, the motion with one 9-frame clip
    monkeypatch.setenv("DUALREAL_BENCH_CACHE", str(tmp_path / "user-cache"))  # no --cache-dir
    _run(tmp_path, data, "first")
    assert raft_calls["n"] == 3  # the reference clip, then 2 videos
    assert list((tmp_path / "user-cache" / "metrics" / "reference_dd").glob("*.npz"))
    assert not (tmp_path / "out" / "first" / "cache").exists()  # no per-run cache any more

    raft_calls["n"] = 0
    _run(tmp_path, data, "second")
    assert raft_calls["n"] == 2  # the 2 videos only: the clip's DD came from the shared cache
    first, second = _records(tmp_path / "out" / "first"), _records(tmp_path / "out" / "second")
    assert len(first) == 2 and sorted(first) == sorted(second)
    for key, rec in first.items():
        assert rec["metrics"] == second[key]["metrics"]  # the same bits
        assert json.dumps(rec, sort_keys=True) == json.dumps(second[key], sort_keys=True)
