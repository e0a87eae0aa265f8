"""Bad input: each case exits with code 2, prints one line naming the file (or name) and the
problem, and leaves the results store exactly as it was (every file and folder: same bytes,
inode and mtime).

The commands run in-process through ``dualreal_bench.cli.main`` (the same code path as the
console script, minus interpreter start-up); ``test_one_case_through_the_console_script``
runs one of them as a real subprocess. Set ``DUALREAL_BENCH_BAD_INPUT_TABLE=path.md`` to write
the table (case | command | message) the module produces.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_resilience_helpers import MOTION, mini_data_root, shared_env

from dualreal_bench import cli
from dualreal_bench.store import read_events

TABLE: list[tuple[str, str, str]] = []


@pytest.fixture(scope="module", autouse=True)
def _table():
    yield
    if not TABLE:
        return
    lines = ["| case | command | message |", "| --- | --- | --- |"]
    lines += [f"| {case} | `{cmd}` | {msg} |" for case, cmd, msg in TABLE]
    text = "\n".join(lines) + "\n"
    target = os.environ.get("DUALREAL_BENCH_BAD_INPUT_TABLE")
    if target:
        Path(target).write_text(text, encoding="utf-8")
    print("\n" + text)


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    base = tmp_path_factory.getbasetemp()
    mini_data_root(base, 1, copy=True)
    return base


def _snapshot(root: Path) -> dict[str, tuple]:
    out = {}
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None
        out[str(path.relative_to(root))] = (
            path.is_dir(),
            st.st_size,
            st.st_mtime_ns,
            st.st_ino,
            digest,
        )
    return out


def _prior_store(out: Path) -> None:
    """A results store with an earlier run in it, which no failing command may touch."""
    from dualreal_bench.io import atomic_write_json
    from dualreal_bench.store import ResultStore

    store = ResultStore(out, "custom-tiny")
    store.init_run({"suite": "custom", "profile": "tiny"})
    atomic_write_json(
        out / "custom-tiny" / "base" / "toy_0__x" / "records" / "p000_s0.json", {"metrics": {}}
    )


def _write_zero_frame_avi(path: Path) -> None:
    import av

    with av.open(str(path), "w", format="avi") as container:
        stream = container.add_stream("mpeg4", rate=8)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        container.start_encoding()


def _set_clip(data: Path, make) -> Path:
    videos = data / "motions" / MOTION / "videos"
    src = videos / "clip_00.mp4"
    raw = src.read_bytes()
    src.unlink()
    return make(videos, raw)


def _make_case(name: str, data: Path, tmp: Path) -> tuple[list[str], str]:
    """Break one thing; return (extra argv, fragment the error line must contain)."""
    images = data / "identities" / "toy_0" / "images"
    first = sorted(images.iterdir())[0]
    cases = ["--cases", str(data / "cases.csv")]
    if name == "zero-byte image":
        first.write_bytes(b"")
        return cases, f"{first}: empty file (0 bytes)"
    if name == "truncated image":
        first.write_bytes(first.read_bytes()[:300])
        return cases, f"{first}: cannot decode image"
    if name == "not an image (text named .png)":
        first.write_text("hello, I am not a picture")
        return cases, f"{first}: not a recognised image file"
    if name == "identity folder with no images":
        for p in images.iterdir():
            p.unlink()
        (images / "notes.txt").write_text("no pictures here")
        return cases, f"{images}: no image files"
    if name == "video with 0 frames":
        path = _set_clip(data, lambda d, raw: d / "clip_00.avi")
        _write_zero_frame_avi(path)
        return cases, f"{path}: video has no decodable frames"
    if name == "video with 1 frame":
        from dualreal_bench.media import write_video

        path = _set_clip(data, lambda d, raw: d / "clip_00.mp4")
        write_video(path, np.zeros((1, 64, 64, 3), np.uint8))
        return cases, f"{path}: video has 1 frame; a motion clip needs at least 2"
    if name == "truncated video":
        path = data / "motions" / MOTION / "videos" / "clip_00.mp4"
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
        return cases, f"{path}: not a readable video"
    if name == "unreadable codec":

        def patch(d, raw):
            at = raw.find(b"avc1", raw.find(b"stsd"))
            (d / "clip_00.mp4").write_bytes(raw[:at] + b"zzzz" + raw[at + 4 :])
            return d / "clip_00.mp4"

        path = _set_clip(data, patch)
        return cases, f"{path}: unreadable video codec"
    if name == "cases file not UTF-8":
        path = tmp / "cases_latin1.csv"
        path.write_bytes("identity,motion\ntoy_0,m\xf6tion\n".encode("latin-1"))
        return ["--cases", str(path)], f"{path}: not UTF-8 text (invalid byte 0xf6"
    if name == "cases file with a wrong header":
        path = tmp / "pairs.csv"
        path.write_text("subject;motion\ntoy_0;x\n")
        return ["--cases", str(path)], f"{path}: header must be 'identity,motion'"
    if name == "prompt file not UTF-8":
        path = tmp / "prompts_latin1.txt"
        path.write_bytes("a toy * is swinging in the caf\xe9\n".encode("latin-1"))
        return [
            *cases,
            "--prompt-file",
            str(path),
        ], f"error: {path}: not UTF-8 text (invalid byte 0xe9"
    if name == "empty prompt line":
        path = tmp / "prompts.txt"
        path.write_text("a toy * is swinging\n\na toy * is swinging on a beach\n")
        return [*cases, "--prompt-file", str(path)], f"error: {path}, line 2: empty line"
    if name == "unknown method":
        return [*cases, "--method", "dualrael"], "unknown method 'dualrael'"
    if name == "unknown suite":
        return ["--suite", "papper"], "unknown suite 'papper'"
    if name == "unknown identity (cases file)":
        path = tmp / "unknown.csv"
        path.write_text(f"identity,motion\nno_such_toy,{MOTION}\n")
        return ["--cases", str(path)], f"{path}, line 2: identity 'no_such_toy' not found"
    if name == "path traversal in the cases file":
        path = tmp / "evil.csv"
        path.write_text(f"identity,motion\n../../x,{MOTION}\n")
        return ["--cases", str(path)], f"{path}, line 2: identity: invalid name '../../x'"
    if name == "contradictory method options":
        return [
            *cases,
            "--method",
            "dualreal",
            "--set",
            "controller=true",
            "--set",
            "dual_aware=false",
        ], ("controller=true contradicts dual_aware=false")
    if name == "contradictory run options (local executor, Ray address)":
        return [
            *cases,
            "--ray-address",
            "10.0.0.1:6379",
        ], "--ray-address contradict --executor local"
    if name == "contradictory run options (--cases and --suite)":
        return [*cases, "--suite", "smoke"], "contradict: a cases file replaces the suite"
    if name == "data root that does not exist":
        return [
            *cases,
            "--data-root",
            str(tmp / "no_such_root"),
        ], f"error: data root {tmp / 'no_such_root'} does not exist"
    raise AssertionError(name)


CASES = [
    "zero-byte image",
    "truncated image",
    "not an image (text named .png)",
    "identity folder with no images",
    "video with 0 frames",
    "video with 1 frame",
    "truncated video",
    "unreadable codec",
    "cases file not UTF-8",
    "cases file with a wrong header",
    "prompt file not UTF-8",
    "empty prompt line",
    "unknown method",
    "unknown suite",
    "unknown identity (cases file)",
    "path traversal in the cases file",
    "contradictory method options",
    "contradictory run options (local executor, Ray address)",
    "contradictory run options (--cases and --suite)",
    "data root that does not exist",
]


#: a warning logged on stderr before the error (e.g. while the encoders load); logs share stderr with the error line since issue 10
WARNING_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d WARNING [\w.]+: ")


def _run_cli(argv: list[str], capsys, command: str = "run") -> tuple[int, list[str]]:
    """Exit code and the non-empty stderr lines other than logged warnings (``-q``: no INFO).
    argparse's own errors exit through SystemExit: its code counts."""
    capsys.readouterr()
    try:
        code = cli.main(["-q", command, *argv])
    except SystemExit as exc:
        code = exc.code
    err = capsys.readouterr().err
    return code, [
        line for line in err.splitlines() if line.strip() and not WARNING_LINE.match(line)
    ]


def _shorten(text: str, tmp: Path) -> str:
    for root in (tmp, tmp.parent):  # the test's folder, then the session's (shared data)
        text = text.replace(str(root) + "/", "").replace(str(root), ".")
    return text


def _check(
    name: str,
    argv: list[str],
    fragment: str,
    out: Path,
    tmp: Path,
    capsys,
    command: str = "run",
    watch: Path | None = None,
) -> None:
    """``dualreal-bench <command> <argv> --output-dir <out>`` exits with 2 and one line holding
    ``fragment``, and leaves the store ``out`` and ``watch`` (an output it named) as they were."""
    watched = [out] if watch is None else [out, watch]
    before = [_snapshot(w) if w.is_dir() else _file_state(w) for w in watched]
    extra = [] if "--output-dir" in argv else ["--output-dir", str(out)]
    code, lines = _run_cli([*argv, *extra], capsys, command)
    assert code == 2, (name, code, lines)
    assert len(lines) == 1, (name, lines)
    assert re.match(r"^dualreal-bench( \w+)?: error: ", lines[0]) and fragment in lines[0], (
        name,
        fragment,
        lines[0],
    )
    after = [_snapshot(w) if w.is_dir() else _file_state(w) for w in watched]
    assert after == before, f"{name}: {watched} changed"
    shown = " ".join(_shorten(_abbreviate(a), tmp) for a in argv)
    message = re.sub(r"^dualreal-bench( \w+)?: error: ", "", lines[0])
    TABLE.append((name, f"dualreal-bench {command} {shown}", _shorten(_abbreviate(message), tmp)))


def _file_state(path: Path) -> tuple | None:
    """What ``_snapshot`` keeps of a single file (None if there is nothing there)."""
    if not (path.exists() or path.is_symlink()):
        return None
    st = path.lstat()
    return (st.st_size, st.st_mtime_ns, st.st_ino, path.read_bytes() if path.is_file() else None)


def _abbreviate(text: str) -> str:
    """Runs of one letter over 20 long (a 300-character --run-id) shown as ``r*300``."""
    return re.sub(r"([A-Za-z])\1{20,}", lambda m: f"{m.group(1)}*{len(m.group(0))}", text)


def _fresh(base: Path, tmp: Path, monkeypatch) -> tuple[Path, Path]:
    """``(data root, store)``: a copy of the one-case data root, and a store holding an
    earlier run."""
    monkeypatch.setenv("DUALREAL_BENCH_CACHE", shared_env(base)["DUALREAL_BENCH_CACHE"])
    data = tmp / "data"
    shutil.copytree(base / "mini_data_1_copy", data)
    (data / "cases.csv").write_text(f"identity,motion\ntoy_0,{MOTION}\n")
    out = tmp / "results"
    _prior_store(out)
    return data, out


@pytest.mark.parametrize("name", CASES)
def test_bad_input(name, base, tmp_path, capsys, monkeypatch):
    data, out = _fresh(base, tmp_path, monkeypatch)
    argv, fragment = _make_case(name, data, tmp_path)
    if "--data-root" not in argv and "--suite" not in argv[:1]:
        argv += ["--data-root", str(data)]
    _check(name, argv, fragment, out, tmp_path, capsys)


# ---- issue 14: hostile inputs, round two ----------------------------------------------------------
#
# Each case breaks one thing a careless (or hostile) user could break: an option, a name, a data
# folder, a store file, the machine. Same contract as above: exit code 2, one line naming the
# file or option, the store (and any output named) exactly as it was.

LONG = "r" * 300  # longer than any filesystem's file-name limit (255 bytes)


def _write_png_header(path: Path, width: int, height: int) -> None:
    """A PNG whose header claims ``width`` x ``height`` pixels (its data is a 1x1 image's): an
    image that would take gigabytes to decode, made in microseconds."""
    import struct
    import zlib

    from PIL import Image

    Image.new("RGB", (1, 1)).save(path)
    raw = bytearray(path.read_bytes())
    ihdr = raw.index(b"IHDR")
    raw[ihdr + 4 : ihdr + 12] = struct.pack(">II", width, height)
    crc = zlib.crc32(bytes(raw[ihdr : ihdr + 17])) & 0xFFFFFFFF
    raw[ihdr + 17 : ihdr + 21] = struct.pack(">I", crc)
    path.write_bytes(bytes(raw))


def _videos_dir(tmp: Path, data: Path, frames: np.ndarray | None = None) -> Path:
    """A folder of external videos for `evaluate`: the motion's clip as prompt 0, or ``frames``."""
    from dualreal_bench.media import write_video

    folder = tmp / "videos"
    folder.mkdir()
    if frames is None:
        shutil.copy(data / "motions" / MOTION / "videos" / "clip_00.mp4", folder / "000.mp4")
    else:
        write_video(folder / "000.mp4", frames, fps=8)
    return folder


def _report_store(out: Path) -> None:
    """A run with records of two methods (what `report` reads) beside the prior store."""
    from test_report import write_store

    write_store(
        out,
        [("base", "base", {}), ("lora", "lora", {"rank": 4})],
        [("idA", "moA")],
        {"idA__moA": 2},
        lambda label, case_id, p, field: 0.5 + 0.1 * p,
        run_id="rep",
    )


def _hostile_case(name: str, data: Path, tmp: Path, out: Path):
    """``(command, argv, fragment, watch)`` for one hostile case (``watch``: None = the store)."""
    cases = ["--cases", str(data / "cases.csv"), "--data-root", str(data)]
    images = data / "identities" / "toy_0" / "images"
    videos = data / "motions" / MOTION / "videos"
    if name == "--device cuda without a GPU":
        return "run", [*cases, "--device", "cuda"], "--device='cuda': CUDA is not available", None
    if name == "misspelt --device":
        return "run", [*cases, "--device", "cdua"], "--device='cdua': must be auto, cpu", None
    if name == "backbone on CUDA without a GPU":
        frag = "--backbone-set device='cuda': CUDA is not available"
        return "run", [*cases, "--backbone-set", "device=cuda"], frag, None
    if name == "--output-dir is a file":
        target = tmp / "results.txt"
        target.write_text("not a folder")
        argv = [*cases, "--output-dir", str(target)]
        return "run", argv, f"--output-dir {target}: is not a directory", target
    if name == "--output-dir inside a file":
        target = tmp / "results.txt"
        target.write_text("not a folder")
        argv = [*cases, "--output-dir", str(target / "sub")]
        return "run", argv, f"is inside {target}, which is not a directory", target
    if name == "absurd seed":
        frag = "--seeds 99999999999999999999999: seeds are integers from 0 to 4294967295"
        return "run", [*cases, "--seeds", "99999999999999999999999"], frag, None
    if name == "negative seed":
        return "run", [*cases, "--seeds", "-1"], "--seeds -1: seeds are integers", None
    if name == "absurd method seed":
        argv = [*cases, "--set", "seed=99999999999999999999"]
        return "run", argv, "--set seed 99999999999999999999: seeds are integers", None
    if name == "300-character --run-id":
        frag = "is 300 bytes long, but the filesystem of"
        return "run", [*cases, "--run-id", LONG], frag + f" {out} allows at most", None
    if name == "300-character --name":
        return "run", [*cases, "--name", LONG], "pass a shorter --name", None
    if name == "identity+motion folder names too long for one path component":
        ident, motion = "i" * 150, "m" * 120
        shutil.copytree(data / "identities" / "toy_0", data / "identities" / ident)
        shutil.copytree(data / "motions" / MOTION, data / "motions" / motion)
        path = tmp / "long.csv"
        path.write_text(f"identity,motion\n{ident},{motion}\n")
        argv = ["--cases", str(path), "--data-root", str(data)]
        return "run", argv, "use shorter identity or motion names", None
    if name == "empty --run-id":
        return "run", [*cases, "--run-id", ""], "invalid run id ''", None
    if name == "num_groups=5 on the 2-block backbone":
        argv = [*cases, "--method", "dualreal", "--set", "num_groups=5"]
        return "run", argv, "num_groups=5 does not divide the backbone's 2 transformer blocks", None
    if name == "num_groups=7 on the 2-block backbone":
        argv = [*cases, "--method", "dualreal", "--set", "num_groups=7"]
        return "run", argv, "num_groups=7 does not divide the backbone's 2 transformer blocks", None
    if name == "LoRA target module that does not exist":
        argv = [*cases, "--method", "lora", "--set", "target_modules=to_q,to_kk"]
        return "run", argv, "lora: target_modules to_kk match no layer", None
    if name == "backbone videos too short to score":
        argv = [*cases, "--backbone-set", "num_frames=1"]
        return "run", argv, "makes videos of 1 frame(s); a video needs at least 3", None
    if name == "reference clip with 1 frame at ~8 fps":
        from dualreal_bench.media import read_video, write_video

        clip = videos / "clip_00.mp4"
        write_video(clip, read_video(clip)[:3], fps=30)  # 3 frames at 30 fps: 1 at ~8 fps
        return "run", cases, f"{clip}: 3 frames at 30 fps give 1 when sampled at about 8 fps", None
    if name == "repeated --set key":
        argv = [
            *cases,
            "--method",
            "dualreal",
            "--set",
            "steps_scale=0.1",
            "--set",
            "steps_scale=0.2",
        ]
        return "run", argv, "--set steps_scale: given twice", None
    if name == "repeated --backbone-set key":
        argv = [*cases, "--backbone-set", "fps=8", "--backbone-set", "fps=16"]
        return "run", argv, "--backbone-set fps: given twice ('fps=8', then 'fps=16')", None
    if name == "--set value with spaces":
        argv = [*cases, "--method", "lora", "--set", "target_modules=to_q, to_k"]
        return "run", argv, "name this variant with --name LABEL", None
    if name == "broken symbolic link among the images":
        link = images / "99.png"
        link.symlink_to(tmp / "gone.png")
        return "run", cases, f"{link}: broken symbolic link", None
    if name == "symbolic link loop among the clips":
        link = videos / "loop.mp4"
        link.symlink_to(link)
        return "run", cases, f"{link}: symbolic link loop", None
    if name == "huge image (a 100 000 x 100 000 PNG header)":
        path = images / "00.png"
        _write_png_header(path, 100_000, 100_000)
        return "run", cases, f"{path}: image is 100000x100000 (10000 Mpixels)", None
    if name == "--cache-dir is a file":
        target = tmp / "cache.txt"
        target.write_text("x")
        return "run", [*cases, "--cache-dir", str(target)], f"--cache-dir {target}: is not", None
    if name == "--shard that is not i/N":
        frag = "argument --shard: --shard 'a/b': expected i/N"
        return "run", [*cases, "--shard", "a/b"], frag, None
    if name == "corrupt method.json in the store":
        (out / "custom-tiny" / "base" / "method.json").write_text("[1, 2]")
        frag = f"{out / 'custom-tiny' / 'base' / 'method.json'}: holds list JSON"
        return "run", cases, frag, None
    # evaluate: everything checked before run.json/method.json are written
    ev = ["--identity", "toy_0", "--motion", MOTION, "--data-root", str(data)]
    ev += ["--metrics-profile", "tiny"]
    bad_options = {  # evaluate's options, checked as run checks its own
        "evaluate: invalid --method-name": (["--method-name", "../x"], "invalid method label"),
        "evaluate: negative --fps": (["--fps", "-3"], "--fps -3.0: must be a positive number"),
        "evaluate: --fps nan": (["--fps", "nan"], "--fps nan: must be a positive number"),
        "evaluate: negative --seed": (["--seed", "-1"], "--seed -1: seeds are integers"),
        "evaluate: --device cuda without a GPU": (["--device", "cuda"], "CUDA is not available"),
    }
    if name in bad_options:
        options, frag = bad_options[name]
        return "evaluate", [*ev, "--videos", str(_videos_dir(tmp, data)), *options], frag, None
    if name == "evaluate: a video that does not decode":
        folder = _videos_dir(tmp, data)
        (folder / "001.mp4").write_bytes(b"\x00" * 300)
        return "evaluate", [*ev, "--videos", str(folder)], f"{folder / '001.mp4'}: not a", None
    if name == "evaluate: a 2-frame video":
        folder = _videos_dir(tmp, data, np.zeros((2, 64, 64, 3), np.uint8))
        frag = f"{folder / '000.mp4'}: 2 frame(s); a video needs at least 3"
        return "evaluate", [*ev, "--videos", str(folder)], frag, None
    if name == "evaluate: frames too small for the optical flow":
        folder = _videos_dir(tmp, data, np.zeros((9, 48, 80, 3), np.uint8))
        frag = f"{folder / '000.mp4'}: frames of 48x80 px; the optical flow"
        return "evaluate", [*ev, "--videos", str(folder)], frag, None
    if name == "evaluate: seed in a file name too large":
        folder = _videos_dir(tmp, data)
        (folder / "000.mp4").rename(folder / "p000_s99999999999.mp4")
        frag = f"{folder / 'p000_s99999999999.mp4'}: seed 99999999999"
        return "evaluate", [*ev, "--videos", str(folder)], frag, None
    # report: every output checked before any work; the store it reads never changes
    _report_store(out)
    rep = ["--run-id", "rep"]
    if name == "report --html into an existing directory":
        target = tmp / "site"
        target.mkdir()
        (target / "keep.txt").write_text("mine")
        frag = f"--html {target}: is a directory; give a file name"
        return "report", [*rep, "--html", str(target)], frag, target
    if name == "report --plots onto a file":
        target = tmp / "plots.png"
        target.write_text("x")
        return "report", [*rep, "--plots", str(target)], f"--plots {target}: is not", target
    if name == "report --sheets under a file":
        target = tmp / "plots.png"
        target.write_text("x")
        frag = f"is inside {target}, which is not a directory"
        return "report", [*rep, "--sheets", str(target / "sheets")], frag, target
    if name == "report --out into a directory":
        target = tmp / "tables"
        target.mkdir()
        return "report", [*rep, "--out", str(target)], f"--out {target}: is a directory", target
    if name == "report --prompt-index no record has":
        argv = [*rep, "--sheets", str(tmp / "sheets"), "--prompt-index", "999"]
        frag = "--prompt-index 999: no record of run 'rep' has it (its prompt indices: 0, 1)"
        return "report", argv, frag, None
    if name == "report --embed-video-mb nan":
        argv = [*rep, "--html", str(tmp / "r.html"), "--embed-video-mb", "nan"]
        return "report", argv, "--embed-video-mb nan: must be a size >= 0", None
    if name == "report the same run twice":
        return "report", ["--run-id", "rep,rep"], "--run-id rep,rep: rep given twice", None
    raise AssertionError(name)


HOSTILE = [
    "--device cuda without a GPU",
    "misspelt --device",
    "backbone on CUDA without a GPU",
    "--output-dir is a file",
    "--output-dir inside a file",
    "absurd seed",
    "negative seed",
    "absurd method seed",
    "300-character --run-id",
    "300-character --name",
    "identity+motion folder names too long for one path component",
    "empty --run-id",
    "num_groups=5 on the 2-block backbone",
    "num_groups=7 on the 2-block backbone",
    "LoRA target module that does not exist",
    "backbone videos too short to score",
    "reference clip with 1 frame at ~8 fps",
    "repeated --set key",
    "repeated --backbone-set key",
    "--set value with spaces",
    "broken symbolic link among the images",
    "symbolic link loop among the clips",
    "huge image (a 100 000 x 100 000 PNG header)",
    "--cache-dir is a file",
    "--shard that is not i/N",
    "corrupt method.json in the store",
    "evaluate: invalid --method-name",
    "evaluate: negative --fps",
    "evaluate: --fps nan",
    "evaluate: negative --seed",
    "evaluate: --device cuda without a GPU",
    "evaluate: a video that does not decode",
    "evaluate: a 2-frame video",
    "evaluate: frames too small for the optical flow",
    "evaluate: seed in a file name too large",
    "report --html into an existing directory",
    "report --plots onto a file",
    "report --sheets under a file",
    "report --out into a directory",
    "report --prompt-index no record has",
    "report --embed-video-mb nan",
    "report the same run twice",
]


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_input(name, base, tmp_path, capsys, monkeypatch):
    import torch

    if "without a GPU" in name and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    data, out = _fresh(base, tmp_path, monkeypatch)
    command, argv, fragment, watch = _hostile_case(name, data, tmp_path, out)
    if command == "run":
        argv += (
            ["--cache-dir", shared_env(base)["metric_cache"]] if "--cache-dir" not in argv else []
        )
    _check(name, argv, fragment, out, tmp_path, capsys, command=command, watch=watch)


def test_bad_checkpoints(base, tmp_path, capsys, monkeypatch):
    """A stored method state with a wrong-shaped tensor, or with NaNs: the resumed run refuses
    it (safetensors only, checked before use), names the file, and changes nothing."""
    import torch
    from dualreal_bench.methods.dualreal import DualRealConfig, DualRealMethod
    from safetensors.torch import load_file, save_file

    from dualreal_bench.backbone import load_backbone

    monkeypatch.setenv("DUALREAL_BENCH_CACHE", shared_env(base)["DUALREAL_BENCH_CACHE"])
    data = base / "mini_data_1_copy"
    out = tmp_path / "results"
    argv = [
        "--cases",
        str(data / "cases.csv"),
        "--data-root",
        str(data),
        "--method",
        "dualreal",
        "--set",
        "max_train_steps=1",
        "--num-prompts",
        "1",
        "--cache-dir",
        shared_env(base)["metric_cache"],
    ]
    state = out / "custom-tiny" / "dualreal[max_train_steps=1]" / f"toy_0__{MOTION}" / "state"
    method = DualRealMethod(
        load_backbone("tiny"), DualRealConfig().with_overrides(["max_train_steps=1"])
    )
    method.reference_embedding = torch.zeros(1, method.config.cond_dim)
    method.save(state)
    method.teardown()
    weights = state / "weights.safetensors"
    tensors = load_file(str(weights))
    name = sorted(k for k in tensors if k.endswith("up.weight"))[0]

    good = dict(tensors)
    bad = {**good, name: torch.zeros(3, 5)}
    save_file(bad, str(weights))
    code, lines = _run_cli([*argv, "--output-dir", str(out)], capsys)  # creates run.json etc.
    assert code == 2, lines
    _check(
        "checkpoint with a wrong-shaped tensor",
        argv,
        f"{state}: dualreal state: '{name}' has shape (3, 5)",
        out,
        tmp_path,
        capsys,
    )

    nan = {**good, name: torch.full_like(good[name], float("nan"))}
    save_file(nan, str(weights))
    _check(
        "checkpoint with NaN values",
        argv,
        f"{weights}: tensor '{name}' holds NaN or Inf values",
        out,
        tmp_path,
        capsys,
    )
    save_file(good, str(weights))

    # issue 14: a state whose files do not read is refused before the backbone loads
    import dualreal_bench.backbone

    def no_loading(*args, **kwargs):
        raise AssertionError("the backbone was loaded before the state's files were checked")

    monkeypatch.setattr(dualreal_bench.backbone, "load_backbone", no_loading)
    for label, path, content, fragment in [
        ("corrupt state/method.json (a list)", "method.json", "[1, 2]", "holds list JSON"),
        ("truncated state/method.json", "method.json", '{"method": "dual', "unreadable JSON"),
        ("state/config.json that is null", "config.json", "null", "holds NoneType JSON"),
        ("weights that are not safetensors", "weights.safetensors", "hi", "unreadable safetens"),
    ]:
        saved = (state / path).read_bytes()
        (state / path).write_text(content)
        _check(label, argv, f"{state / path}: {fragment}", out, tmp_path, capsys)
        (state / path).write_bytes(saved)


def test_one_case_through_the_console_script(base, tmp_path):
    """The same one-line error and exit code 2 from a real `dualreal-bench` process."""
    path = tmp_path / "evil.csv"
    path.write_text(f"identity,motion\n../../x,{MOTION}\n")
    env = {**os.environ, "DUALREAL_BENCH_CACHE": shared_env(base)["DUALREAL_BENCH_CACHE"]}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "dualreal_bench.cli",
            "run",
            "--cases",
            str(path),
            "--data-root",
            str(base / "mini_data_1_copy"),
            "--output-dir",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"dualreal-bench: error: {path}, line 2: identity: invalid name '../../x' (letters, digits, '_', '-', '.'; "
        "no path separators or '..')"
    ]
    assert not (tmp_path / "out").exists()


# ---- issue 14: a record counts as done only if it is valid (resume), one bad record never fails
# a report, a full disk, mixed sizes, and the CLI's one place for OS and library errors --------------


def _good_run(base: Path, tmp: Path, capsys, monkeypatch) -> tuple[list[str], Path, Path]:
    """A finished run of `base` on one case, two prompts: ``(argv, output dir, case folder)``."""
    monkeypatch.setenv("DUALREAL_BENCH_CACHE", shared_env(base)["DUALREAL_BENCH_CACHE"])
    data = base / "mini_data_1_copy"
    out = tmp / "results"
    argv = ["--cases", str(data / "cases.csv"), "--data-root", str(data), "--num-prompts", "2"]
    argv += ["--cache-dir", shared_env(base)["metric_cache"], "--output-dir", str(out)]
    code, lines = _run_cli(argv, capsys)
    assert code == 0, lines
    return argv, out, out / "custom-tiny" / "base" / f"toy_0__{MOTION}"


def _stats(paths) -> dict[str, tuple]:
    return {str(p): (p.stat().st_ino, p.stat().st_mtime_ns, p.read_bytes()) for p in paths}


@pytest.mark.parametrize(
    "name, damage",
    [
        ("truncated record", lambda path: path.write_bytes(path.read_bytes()[:300])),
        (
            "record with a metric that is not a number",
            lambda path: path.write_text(
                re.sub(r'"clip_t": [-0-9.e]+', '"clip_t": "high"', path.read_text())
            ),
        ),
        (
            "record of another video",
            lambda path: path.write_text(path.read_text().replace('"seed": 0', '"seed": 5')),
        ),
    ],
)
def test_resume_redoes_exactly_an_invalid_record(name, damage, base, tmp_path, capsys, monkeypatch):
    """The damaged record is moved aside (kept, named in a warning and the event log) and only it
    is evaluated again: the other record and both videos keep their bytes, inode and mtime."""
    argv, out, case = _good_run(base, tmp_path, capsys, monkeypatch)
    bad, good = case / "records" / "p001_s0.json", case / "records" / "p000_s0.json"
    damage(bad)
    damaged = bad.read_bytes()
    kept = _stats([good, *sorted((case / "videos").iterdir())])
    capsys.readouterr()
    code = cli.main(["run", *argv])  # INFO on: the summary counts what was done
    err = capsys.readouterr().err
    assert code == 0, err
    assert _stats([good, *sorted((case / "videos").iterdir())]) == kept
    from dualreal_bench.records import read_record

    assert read_record(bad).key == ("base", f"toy_0__{MOTION}", 1, 0)  # redone, valid
    aside = list((case / "invalid").rglob("p001_s0.json"))
    assert [a.read_bytes() for a in aside] == [damaged]
    assert aside[0].relative_to(case).parts[2:] == ("records", "p001_s0.json")
    warning = next(line for line in err.splitlines() if "WARNING" in line and str(bad) in line)
    assert "to be redone" in warning and "evaluated 1, set_aside 1" in err
    events = [e for e in read_events(out / "custom-tiny") if e["event"] == "set_aside"]
    assert len(events) == 1 and events[0]["moved"] == [str(aside[0].relative_to(case))]
    TABLE.append(
        (
            f"resume over a {name}",
            "dualreal-bench run (again) " + " ".join(_shorten(a, tmp_path) for a in argv),
            "exit 0: " + _shorten(warning.split(": ", 1)[1], tmp_path),
        )
    )


def test_resume_regenerates_a_video_that_does_not_decode(base, tmp_path, capsys, monkeypatch):
    argv, out, case = _good_run(base, tmp_path, capsys, monkeypatch)
    video, record = case / "videos" / "p001_s0.mp4", case / "records" / "p001_s0.json"
    record.unlink()
    video.write_bytes(video.read_bytes()[:200])
    kept = _stats([case / "records" / "p000_s0.json", case / "videos" / "p000_s0.mp4"])
    code, lines = _run_cli(argv, capsys)
    assert code == 0, lines
    assert _stats([case / "records" / "p000_s0.json", case / "videos" / "p000_s0.mp4"]) == kept
    from dualreal_bench.media import probe_video

    assert probe_video(video).num_frames == 9 and record.is_file()
    aside = sorted(p.name for p in (case / "invalid").rglob("*") if p.is_file())
    assert aside == ["p001_s0.json", "p001_s0.mp4"]  # the video and its provenance file


def test_report_renders_the_rest_of_a_run_with_one_bad_record(base, tmp_path, capsys, monkeypatch):
    """`report` names the bad record (a warning and a footnote), leaves it out, marks its cells
    incomplete, and renders everything else; exit 0."""
    out = tmp_path / "results"
    _report_store(out)
    bad = out / "rep" / "lora" / "idA__moA" / "records" / "p001_s0.json"
    bad.write_bytes(bad.read_bytes()[:300])
    before = _snapshot(out)
    capsys.readouterr()
    code = cli.main(["report", "--output-dir", str(out), "--run-id", "rep", "--format", "csv"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    import csv
    import io

    rows = {r["method"]: r for r in csv.DictReader(io.StringIO(captured.out))}
    assert set(rows) == {"base", "lora"}
    assert rows["base"]["clip_t_complete"] == "True" and rows["base"]["clip_t_n"] == "2"
    assert rows["lora"]["clip_t_complete"] == "False" and rows["lora"]["clip_t_n"] == "1"
    assert f"left out of the report: {bad}: unreadable JSON" in captured.err
    assert _snapshot(out) == before
    md = cli.main(
        ["-q", "report", "--output-dir", str(out), "--run-id", "rep", "--format", "markdown"]
    )
    text = capsys.readouterr().out
    assert md == 0 and f"1 invalid record(s) left out, their cells incomplete: {bad}" in text
    TABLE.append(
        (
            "report over a run with one truncated record",
            "dualreal-bench report --run-id rep --format markdown",
            "exit 0, the rest rendered; footnote: "
            + _shorten(
                next(line for line in text.splitlines() if "invalid record" in line), tmp_path
            ),
        )
    )


def test_a_full_disk_names_the_video_leaves_no_temp_file_and_resumes(
    base, tmp_path, capsys, monkeypatch
):
    """ENOSPC while the second video is written (a failpoint raising the OSError a full disk
    raises): exit 2, one line naming the video and saying the run resumes; no temp file; the
    same command then finishes the run without redoing the first video."""
    from dualreal_bench import io as dio

    monkeypatch.setenv("DUALREAL_BENCH_CACHE", shared_env(base)["DUALREAL_BENCH_CACHE"])
    data = base / "mini_data_1_copy"
    out = tmp_path / "results"
    argv = ["--cases", str(data / "cases.csv"), "--data-root", str(data), "--num-prompts", "2"]
    argv += ["--cache-dir", shared_env(base)["metric_cache"], "--output-dir", str(out)]
    monkeypatch.setenv(dio.FAILPOINT_ENV, "video_write:2:enospc")
    monkeypatch.setattr(dio, "_failpoint_hits", {})
    code, lines = _run_cli(argv, capsys)
    case = out / "custom-tiny" / "base" / f"toy_0__{MOTION}"
    video = case / "videos" / "p001_s0.mp4"
    assert code == 2 and len(lines) == 1, lines
    assert lines[0] == (
        f"dualreal-bench: error: {video}: no space left on the device; free some space, then "
        "rerun the same command: it resumes where it stopped (what was being written was not kept)"
    )
    assert not [p for p in out.rglob("*") if p.name.startswith(".")]  # no temp file
    assert not video.exists() and (case / "videos" / "p000_s0.mp4").is_file()
    first = _stats([case / "videos" / "p000_s0.mp4"])
    TABLE.append(
        (
            "a full disk while a video is written (ENOSPC)",
            "DUALREAL_BENCH_FAILPOINT=video_write:2:enospc dualreal-bench run "
            + " ".join(_shorten(a, tmp_path) for a in argv),
            _shorten(lines[0].removeprefix("dualreal-bench: error: "), tmp_path),
        )
    )
    monkeypatch.delenv(dio.FAILPOINT_ENV)
    code, lines = _run_cli(argv, capsys)
    assert code == 0, lines
    assert _stats([case / "videos" / "p000_s0.mp4"]) == first  # not generated again
    assert sorted(p.name for p in (case / "records").iterdir()) == ["p000_s0.json", "p001_s0.json"]


def test_evaluate_a_folder_of_mixed_sizes_equals_each_video_alone(
    base, tmp_path, capsys, monkeypatch
):
    """Videos of three sizes and lengths in one folder, scored in one batch, give the records
    each video gets scored alone."""
    from dualreal_bench.media import write_video
    from dualreal_bench.records import read_record

    monkeypatch.setenv("DUALREAL_BENCH_CACHE", shared_env(base)["DUALREAL_BENCH_CACHE"])
    data = base / "mini_data_1_copy"
    rng = np.random.default_rng(0)
    shapes = {0: (9, 64, 64), 1: (13, 72, 96), 2: (11, 64, 128)}
    folder = tmp_path / "mixed"
    for i, (t, h, w) in shapes.items():
        smooth = np.cumsum(rng.integers(0, 8, (t, h, w, 3)), axis=0) % 256
        write_video(folder / f"{i:03d}.mp4", smooth.astype(np.uint8), fps=8)
    common = ["--identity", "toy_0", "--motion", MOTION, "--data-root", str(data)]
    common += ["--metrics-profile", "tiny", "--output-dir", str(tmp_path / "out")]

    def metrics(run_id: str, videos: Path) -> dict[int, dict]:
        code, lines = _run_cli(
            [*common, "--videos", str(videos), "--run-id", run_id, "--batch", "3"],
            capsys,
            "evaluate",
        )
        assert code == 0, lines
        records = (
            tmp_path / "out" / run_id / "external" / f"toy_0__{MOTION}" / "records"
        ).iterdir()
        return {read_record(p).prompt_index: read_record(p).metrics for p in records}

    together = metrics("together", folder)
    assert sorted(together) == [0, 1, 2]
    for i in shapes:
        alone_dir = tmp_path / f"alone{i}"
        alone_dir.mkdir()
        shutil.copy(folder / f"{i:03d}.mp4", alone_dir)
        alone = metrics(f"alone{i}", alone_dir)[i]
        assert together[i].keys() == alone.keys()
        for key, value in alone.items():
            assert together[i][key] == pytest.approx(value, rel=1e-5, abs=1e-6), (i, key)


def _errors_table():
    """(what, exception, fragment of the one line the CLI prints)."""
    import errno
    import pickle

    from PIL import Image

    path = "/data/results/custom-tiny/base/toy_0__x/videos/p003_s0.mp4"

    def os_error(code):
        return OSError(code, os.strerror(code), path)

    return [
        (
            "full disk",
            os_error(errno.ENOSPC),
            f"{path}: no space left on the device; free some space, then rerun the same command: it resumes",
        ),
        ("quota", os_error(errno.EDQUOT), f"{path}: disk quota exceeded"),
        (
            "name too long",
            os_error(errno.ENAMETOOLONG),
            f"{path}: file name too long for the filesystem; use shorter names",
        ),
        (
            "a file where a folder goes",
            os_error(errno.ENOTDIR),
            f"{path}: a component of this path is a file",
        ),
        (
            "a folder where a file goes",
            os_error(errno.EISDIR),
            f"{path}: is a directory, expected a file",
        ),
        ("permission", os_error(errno.EACCES), f"{path}: permission denied"),
        ("read-only", os_error(errno.EROFS), f"{path}: read-only file system"),
        ("link loop", os_error(errno.ELOOP), f"{path}: too many levels of symbolic links"),
        ("rename", OSError(errno.EXDEV, "x", path, path + ".2"), None),  # not known: a bug
        (
            "no CUDA driver",
            RuntimeError("Found no NVIDIA driver on your system. Please check"),
            "CUDA is not available on this machine",
        ),
        (
            "torch without CUDA",
            AssertionError("Torch not compiled with CUDA enabled"),
            "CUDA is not available on this machine",
        ),
        (
            "weights_only refusal",
            pickle.UnpicklingError("Weights only load failed. This file can still be loaded"),
            "refused (weights_only)",
        ),
        (
            "decompression bomb",
            Image.DecompressionBombError("Image size (200000000 pixels) exceeds limit"),
            "image too large to decode safely",
        ),
        ("a bug", KeyError("oops"), None),
        ("another bug", FileNotFoundError(errno.ENOENT, "No such file", path), None),
    ]


@pytest.mark.parametrize(
    "what, exc, fragment",
    _errors_table(),
    ids=lambda v: v if isinstance(v, str) and len(v) < 40 else "",
)
def test_known_os_and_library_errors_become_one_line(what, exc, fragment, capsys, monkeypatch):
    """The CLI's one place (errors.user_error): a known OS or library error is exit 2 and one
    line naming the file (a full disk during `run`: that it resumes); anything else is a bug
    and keeps its traceback."""
    import dualreal_bench.commands.run as run_command

    def fail(args):
        raise exc

    monkeypatch.setattr(run_command, "run", fail)
    capsys.readouterr()
    if fragment is None:
        with pytest.raises(type(exc)):
            cli.main(["run"])
        return
    code = cli.main(["run"])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and fragment in lines[0], lines


def test_a_weights_file_weights_only_refuses_names_the_file(tmp_path):
    """A checkpoint holding pickled objects (code, with weights_only=False) is refused, naming
    the file, for every encoder that reads torch checkpoints; nothing in it runs."""
    import torch

    from dualreal_bench.errors import WeightsError
    from dualreal_bench.metrics import build_encoders

    ran = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (Path.touch, (ran,))

    evil = tmp_path / "raft_large.pth"
    torch.save({"x": Payload()}, evil)
    for role in ("flow", "interpolator", "image_clip"):
        with pytest.raises(WeightsError) as err:
            build_encoders("tiny", **{role: str(evil)})
        message = str(err.value)
        assert message.startswith(f"{evil}: ") and "weights_only loading refuses" in message
        assert "\n" not in message and len(message) < 300
    assert not ran.exists()


def test_one_damaged_run_is_left_out_of_listings_and_all_run_reports(tmp_path, capsys):
    """`list runs` and `report --all-runs` name a run whose run.json does not read (or that has
    no valid record) in a warning and show the others; exit 0."""
    out = tmp_path / "results"
    _prior_store(out)  # custom-tiny: its only record lacks every key
    _report_store(out)  # rep: two methods
    broken = out / "broken"
    shutil.copytree(out / "rep", broken)
    (broken / "run.json").write_text("[")
    capsys.readouterr()
    assert cli.main(["list", "runs", "--output-dir", str(out), "--format", "json"]) == 0
    captured = capsys.readouterr()
    assert sorted({row["run"] for row in json.loads(captured.out)}) == ["custom-tiny", "rep"]
    assert f"run broken left out: {broken / 'run.json'}: unreadable JSON" in captured.err
    assert cli.main(["report", "--output-dir", str(out), "--all-runs", "--format", "json"]) == 0
    captured = capsys.readouterr()
    assert {r["run_id"] for r in json.loads(captured.out)["runs"]} == {"rep"}
    assert "run broken left out of the report" in captured.err
    assert "run custom-tiny left out of the report" in captured.err
