"""Shared helpers of the scale/resilience tests (imported by them; holds no tests).

``mini_data_root`` builds a small multi-case data root from the project's sample data: the
smoke identity's images under several names and the smoke motion with one short clip (9
frames), so that scoring the reference clip costs a few flow pairs instead of ~90. Cases are
given to ``run`` through ``--cases FILE``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

MOTION = "mini_pendulum"


def shared_env(base: Path) -> dict[str, str]:
    """Cache folders every test of the session shares (sample data, metric references)."""
    return {
        "DUALREAL_BENCH_CACHE": str(base / "shared-cache"),
        "metric_cache": str(base / "metric-cache"),
    }


def sample_root(base: Path) -> Path:
    from dualreal_bench.sample_data import ensure_sample_data

    return ensure_sample_data(base / "shared-cache" / "sample_data")


def mini_data_root(base: Path, n_identities: int, *, copy: bool = False) -> tuple[Path, Path]:
    """``(data_root, cases_csv)``: identities ``toy_0..toy_{n-1}`` x motion ``mini_pendulum``.

    ``copy``: real copies (tests that corrupt files) instead of symlinks to the sample images."""
    from dualreal_bench.media import read_video, write_video

    sample = sample_root(base.parent if copy else base)
    root = base / f"mini_data_{n_identities}{'_copy' if copy else ''}"
    cases = root / "cases.csv"
    if cases.is_file():
        return root, cases
    tmp = root.with_name(root.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    images = sample / "identities" / "smoke_toy" / "images"
    for k in range(n_identities):
        ident = tmp / "identities" / f"toy_{k}"
        ident.mkdir(parents=True)
        if copy:
            shutil.copytree(images, ident / "images")
        else:
            (ident / "images").symlink_to(images)
        (ident / "class.txt").write_text("toy\n")
    clip = read_video(
        sample / "motions" / "smoke_pendulum" / "videos" / "clip_00.mp4", num_frames=9
    )
    motion = tmp / "motions" / MOTION
    write_video(motion / "videos" / "clip_00.mp4", clip, fps=8)
    (motion / "prompts.txt").write_text("a person is swinging back and forth\n")
    lines = ["identity,motion"] + [f"toy_{k},{MOTION}" for k in range(n_identities)]
    (tmp / "cases.csv").write_text("\n".join(lines) + "\n")
    os.rename(tmp, root)
    return root, cases


def comparable(record: dict) -> dict:
    """A record without what legitimately differs between equivalent runs: when (timestamps),
    where and how (execution: host, pid, threads, executor, shard), the checkout's git state
    (other work lands in the repository while tests run) and the run id."""
    return {
        k: v for k, v in record.items() if k not in ("timestamps", "execution", "git", "run_id")
    }


# ---- a real `dualreal-bench` process without paying the interpreter's imports every time ----
#: modules the fork server imports once; its children start with them loaded. Importing them
#: starts no thread (nothing has run a torch op), so forking the server is safe.
PRELOAD = [
    "dualreal_bench.cli",
    "dualreal_bench.runner",
    "torch",
    "diffusers",
    "transformers",
    "open_clip",
    "av",
]


@contextlib.contextmanager
def torch_threads(n: int = 1):
    """Run torch with ``n`` threads inside the block. The heavy tests use 1: two runs side by
    side then fit two cores, and on a busy machine OpenMP's spinning threads do not make an
    oversubscribed run ten times slower (records do depend on the thread count, so the runs
    a test compares use the same one)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _cli_child(argv: list[str], cwd: str, env: dict[str, str], log: str) -> None:
    import sys

    import torch

    torch.set_num_threads(1)  # see torch_threads

    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 2)
    os.dup2(fd, 1)
    os.chdir(cwd)
    os.environ.update(env)
    for key in [k for k in os.environ if k not in env and k.startswith("DUALREAL_BENCH_FAILPOINT")]:
        del os.environ[key]
    # tqdm's multiprocessing lock registers a semaphore with the parent's resource tracker; a
    # child killed on purpose cannot unregister it, which only makes the tracker complain
    from multiprocessing import resource_tracker

    resource_tracker.register = lambda *args, **kwargs: None
    from dualreal_bench import cli

    sys.exit(cli.main(argv))


def start_cli_process(argv: list[str], *, cwd: Path, env: dict[str, str], log: Path):
    """Start ``dualreal-bench <argv>`` in a new process forked from a fork server that has the
    heavy modules imported (a fresh process in every other respect: its own globals, RNGs
    and pid; killed with SIGKILL it dies like the console script would). stdout and stderr
    go to ``log``. Returns the ``multiprocessing.Process``."""
    import multiprocessing as mp

    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(PRELOAD)
    proc = ctx.Process(target=_cli_child, args=(argv, str(cwd), env, str(log)))
    proc.start()
    return proc


def run_cli_process(argv: list[str], *, cwd: Path, env: dict[str, str], log: Path) -> int:
    """:func:`start_cli_process` and wait; the exit code (``-9`` when SIGKILLed)."""
    proc = start_cli_process(argv, cwd=cwd, env=env, log=log)
    proc.join(timeout=600)
    return proc.exitcode
