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


def _run_cli(argv: list[str], capsys) -> tuple[int, list[str]]:
    """Exit code and the non-empty stderr lines other than logged warnings (``-q``: no INFO)."""
    capsys.readouterr()
    code = cli.main(["-q", "run", *argv])
    err = capsys.readouterr().err
    return code, [
        line for line in err.splitlines() if line.strip() and not WARNING_LINE.match(line)
    ]


def _shorten(text: str, tmp: Path) -> str:
    for root in (tmp, tmp.parent):  # the test's folder, then the session's (shared data)
        text = text.replace(str(root) + "/", "").replace(str(root), ".")
    return text


def _check(name: str, argv: list[str], fragment: str, out: Path, tmp: Path, capsys) -> None:
    before = _snapshot(out)
    code, lines = _run_cli([*argv, "--output-dir", str(out)], capsys)
    assert code == 2, (name, code, lines)
    assert len(lines) == 1, (name, lines)
    assert lines[0].startswith("dualreal-bench: error: ") and fragment in lines[0], (
        name,
        fragment,
        lines[0],
    )
    assert _snapshot(out) == before, f"{name}: the store changed"
    command = "dualreal-bench run " + " ".join(_shorten(a, tmp) for a in argv)
    TABLE.append((name, command, _shorten(lines[0].removeprefix("dualreal-bench: error: "), tmp)))


@pytest.mark.parametrize("name", CASES)
def test_bad_input(name, base, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("DUALREAL_BENCH_CACHE", shared_env(base)["DUALREAL_BENCH_CACHE"])
    data = tmp_path / "data"
    shutil.copytree(base / "mini_data_1_copy", data)
    (data / "cases.csv").write_text(f"identity,motion\ntoy_0,{MOTION}\n")
    out = tmp_path / "results"
    _prior_store(out)
    argv, fragment = _make_case(name, data, tmp_path)
    if "--data-root" not in argv and "--suite" not in argv[:1]:
        argv += ["--data-root", str(data)]
    _check(name, argv, fragment, out, tmp_path, capsys)


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
