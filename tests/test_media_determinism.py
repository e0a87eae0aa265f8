"""The same frames give the same MP4 bytes, and the same file the same pixels, whatever the
process did before and whatever SIMD the CPU has (see ``media.X264_PARAMS`` for the cause:
x264's macroblock-tree read uninitialised stack memory; swscale's fast paths are CPU-dependent).

"Another machine" is simulated two ways: x264's instruction-set mask is lowered (its ``asm``
parameter) and FFmpeg's SIMD is switched off (``av_force_cpu_flags(0)`` in a fresh process).
"""

from __future__ import annotations

import ctypes.util
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from dualreal_bench.media import read_video, resize_frames, write_video

WIDTHS = (64, 96, 112, 160, 720)
DATA = os.environ.get("DUALREAL_BENCH_DATA")

# x264 instruction-set masks, lowest first; a level is tested only where the CPU has it
# (asking x264 for an instruction the CPU lacks would crash the process).
X264_LEVELS = {
    "ssse3": ("ssse3", "MMX2,SSE,SSE2,SSE3,SSSE3"),
    "sse4.2": ("sse4_2", "MMX2,SSE,SSE2,SSE3,SSSE3,SSE4.1,SSE4.2"),
    "avx2": ("avx2", "MMX2,SSE,SSE2,SSE3,SSSE3,SSE4.1,SSE4.2,AVX,FMA3,BMI1,BMI2,AVX2"),
}


def _frames(width: int, seed: int = 0, t: int = 6, h: int = 48) -> np.ndarray:
    """Textured frames, each its own random field smoothed along rows (hard to predict, so
    x264's lookahead and rate control have real decisions to make)."""
    rng = np.random.default_rng(seed)
    return (np.cumsum(rng.integers(0, 256, (t, h, width, 3)), axis=2) // 7).astype(np.uint8)


def _sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _other_clips(tmp_path: Path) -> list[Path]:
    """Videos to decode between encodes: the real clips where present, else our own."""
    if DATA:
        clips = sorted(Path(DATA).glob("dualreal_benchmark/motions/*/videos/*.avi"))[:4]
        if clips:
            return clips
    rng = np.random.default_rng(1)
    return [
        write_video(
            tmp_path / f"other{i}.mp4", rng.integers(0, 256, (5, 40 + 8 * i, 72, 3), np.uint8)
        )
        for i in range(3)
    ]


def _cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


_SUBPROCESS = r"""
import ctypes, hashlib, json, sys
from pathlib import Path
import numpy as np
sys.path.insert(0, {tests!r})
from test_media_determinism import _frames
avutil = {avutil!r}
if avutil:
    ctypes.CDLL(avutil).av_force_cpu_flags(0)  # FFmpeg (swscale, decoders) without SIMD
from dualreal_bench.media import read_video, write_video
out = {{}}
for w in {widths!r}:
    p = write_video(Path({tmp!r}) / f"sub{{w}}.mp4", _frames(w))
    out[f"encode{{w}}"] = hashlib.sha256(p.read_bytes()).hexdigest()
for name in {decode!r}:
    out[name] = hashlib.sha256(read_video(name).tobytes()).hexdigest()
print(json.dumps(out))
"""


def _run_fresh(tmp_path: Path, *, avutil: str = "", decode: list[str] = ()) -> dict[str, str]:
    code = _SUBPROCESS.format(
        tests=str(Path(__file__).parent),
        avutil=avutil,
        widths=list(WIDTHS),
        tmp=str(tmp_path),
        decode=[str(p) for p in decode],
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def _fresh_dir(path: Path) -> Path:
    path.mkdir()
    return path


def _avutil_library() -> str:
    """The libavutil PyAV links (its wheel bundles one in ``av.libs``), or ''."""
    import av

    bundled = sorted(Path(av.__file__).parent.parent.glob("av.libs/libavutil*"))
    if bundled:
        return str(bundled[0])
    return ctypes.util.find_library("avutil") or ""


@pytest.mark.parametrize("width", WIDTHS)
def test_encoding_ignores_process_history(tmp_path, width):
    frames = _frames(width)
    others = _other_clips(tmp_path)
    hashes = set()
    for k in range(4):
        read_video(others[k % len(others)])  # leaves decoder state and freed buffers behind
        rng = np.random.default_rng(k)  # and allocations of other sizes
        write_video(
            tmp_path / f"noise{k}.mp4", rng.integers(0, 256, (3, 32, 16 * (k + 3), 3), np.uint8)
        )
        hashes.add(_sha(write_video(tmp_path / f"w{width}_{k}.mp4", frames)))
    assert len(hashes) == 1, f"width {width}: {len(hashes)} different byte streams"


def test_encoding_equal_in_fresh_processes(tmp_path):
    here = {w: _sha(write_video(tmp_path / f"here{w}.mp4", _frames(w))) for w in WIDTHS}
    first, second = (_run_fresh(_fresh_dir(tmp_path / name)) for name in ("a", "b"))
    for w in WIDTHS:
        assert first[f"encode{w}"] == second[f"encode{w}"] == here[w], f"width {w}"


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="x264 x86 masks")
@pytest.mark.parametrize("level", sorted(X264_LEVELS))
def test_encoding_independent_of_x264_instruction_set(tmp_path, level):
    flag, mask = X264_LEVELS[level]
    if flag not in _cpu_flags():
        pytest.skip(f"this CPU lacks {flag}")
    for w in (96, 720):
        frames = _frames(w)
        auto = write_video(tmp_path / f"auto{w}.mp4", frames)
        forced = write_video(tmp_path / f"{level}{w}.mp4", frames, x264_params={"asm": mask})
        assert _sha(forced) == _sha(auto), f"width {w}: x264 limited to {level} encodes differently"


def test_media_independent_of_ffmpeg_simd(tmp_path):
    """Encoding (RGB->YUV) and decoding (YUV->RGB) give the same bytes and pixels with
    FFmpeg's SIMD switched off, as on a CPU without those instructions."""
    avutil = _avutil_library()
    if not avutil:
        pytest.skip("PyAV's libavutil not found: cannot switch FFmpeg's SIMD off")
    videos = [write_video(tmp_path / "ours.mp4", _frames(720))]
    if DATA:
        videos += sorted(Path(DATA).glob("dualreal_benchmark/motions/*/videos/*.avi"))[:2]
    here = {str(v): hashlib.sha256(read_video(v).tobytes()).hexdigest() for v in videos}
    here.update(
        {f"encode{w}": _sha(write_video(tmp_path / f"h{w}.mp4", _frames(w))) for w in WIDTHS}
    )
    without = _run_fresh(_fresh_dir(tmp_path / "nosimd"), avutil=avutil, decode=videos)
    assert without == here


def test_resize_independent_of_opencv_simd():
    frames = _frames(160, t=2)
    outputs = []
    try:
        for optimised in (True, False):
            cv2.setUseOptimized(optimised)
            outputs.append(
                [resize_frames(frames, size) for size in ((480, 720), (24, 40), (100, 100))]
            )
    finally:
        cv2.setUseOptimized(True)
    for a, b in zip(*outputs, strict=True):
        assert (a == b).all()


_VALGRIND_SCRIPT = r"""
import sys
from pathlib import Path
sys.path.insert(0, {tests!r})
from test_media_determinism import _frames
from dualreal_bench.media import write_video
for w in (96, 720):
    write_video(Path({tmp!r}) / f"vg{{w}}.mp4", _frames(w))
"""
_FFMPEG_LIBS = ("libx264", "libswscale", "libavcodec", "libavutil", "libavformat")


def _memcheck_blocks(log: str) -> list[str]:
    """One string per memcheck report: the lines between ``==PID==`` separator lines."""
    blocks, current = [], []
    for line in log.splitlines():
        body = line.split("==", 2)[-1].strip() if line.startswith("==") else line
        if body:
            current.append(body)
        elif current:
            blocks.append("\n".join(current))
            current = []
    return blocks + (["\n".join(current)] if current else [])


@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind is not installed")
def test_encoder_reads_no_uninitialised_memory(tmp_path):
    """The cause, checked directly: memcheck finds no read of uninitialised memory inside
    FFmpeg or x264 while we encode (with x264's macroblock-tree on, it finds reads of
    uninitialised stack memory in ``x264_encoder_encode``). valgrind emulates up to AVX2,
    so this covers x264's AVX2 code paths, not its AVX-512 ones."""
    script = _VALGRIND_SCRIPT.format(tests=str(Path(__file__).parent), tmp=str(tmp_path))
    log = tmp_path / "memcheck.log"
    done = subprocess.run(
        [
            "valgrind",
            "--tool=memcheck",
            "--track-origins=yes",
            "--num-callers=30",
            f"--log-file={log}",
            sys.executable,
            "-c",
            script,
        ],
        env={**os.environ, "PYTHONMALLOC": "malloc"},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "vg720.mp4").stat().st_size > 0
    errors = [
        block
        for block in _memcheck_blocks(log.read_text())
        if ("uninitialised" in block or "Invalid read" in block)
        and any(lib in block for lib in _FFMPEG_LIBS)
    ]
    assert not errors, f"{len(errors)} memcheck errors in FFmpeg/x264, first:\n{errors[0]}"
