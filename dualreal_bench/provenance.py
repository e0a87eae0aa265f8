"""Provenance of a result: package versions, the git revision, torch's determinism settings,
where it was computed, and timestamps. Records (:mod:`.records`) store all of it."""

from __future__ import annotations

import datetime as _dt
import functools
import os
import platform
import socket
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

#: distributions whose versions every record stores (None where not installed)
VERSIONED_PACKAGES = (
    "dualreal-bench",
    "torch",
    "torchvision",
    "diffusers",
    "transformers",
    "peft",
    "open-clip-torch",
    "timm",
    "numpy",
    "av",
    "opencv-python-headless",
    "pillow",
)


@functools.lru_cache(maxsize=1)
def package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in VERSIONED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


@functools.lru_cache(maxsize=1)
def git_revision() -> dict[str, Any] | None:
    """The commit of the dualreal-bench checkout in use (None when installed from a wheel)."""
    here = Path(__file__).resolve().parent
    try:
        head = _git(here, "rev-parse", "HEAD")
        dirty = _git(here, "status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": head, "dirty": bool(dirty)}


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10, check=True
    ).stdout.strip()


def determinism_flags() -> dict[str, Any]:
    """The torch settings that decide whether a rerun reproduces the same bits."""
    import torch  # on use only: the core, and so the CLI, import this module without torch

    return {
        "torch_deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
        "torch_deterministic_warn_only": torch.is_deterministic_algorithms_warn_only_enabled(),
        "cudnn_deterministic": bool(torch.backends.cudnn.deterministic),
        "cudnn_benchmark": bool(torch.backends.cudnn.benchmark),
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
        "cublas_workspace_config": os.environ.get("CUBLAS_WORKSPACE_CONFIG"),
    }


def execution_info() -> dict[str, Any]:
    """Where and how a record was computed (differs between equivalent runs: compare without it)."""
    import torch  # on use only (as determinism_flags)

    return {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "torch_threads": torch.get_num_threads(),
    }


def now_iso() -> str:
    """The current UTC time, ISO 8601 to the second (``2026-01-01T12:00:00+00:00``)."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def now_stamp() -> str:
    """The current UTC time as a compact file-name part (``20260101T120000``)."""
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%S")
