"""Seeding: the global random generators (torch, numpy, Python) seeded per stage from stable
hashes, and torch's deterministic-kernel settings."""

from __future__ import annotations

import hashlib
import os
import random
from typing import Any

import numpy as np


def global_seed(*parts: Any) -> int:
    """A 31-bit seed derived from ``parts`` (stable across processes and platforms)."""
    digest = hashlib.sha256("/".join(map(str, parts)).encode("utf-8")).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def stage_seeds(method_seed: int, case_id: str, prompt_index: int, seed: int) -> dict[str, int]:
    """The global-generator seeds of the stages behind one video (stored in its record):
    building the method, training it, generating the video."""
    return {
        "method_init": global_seed(method_seed, case_id),
        "train": global_seed(method_seed, case_id, "train"),
        "generate": global_seed(method_seed, case_id, prompt_index, seed),
    }


def seed_global_rngs(seed: int) -> None:
    """Seed torch's (CPU and CUDA), numpy's and Python's global random generators.

    torch seeds its global generator from entropy in every new process, so a method that
    draws from it (a ``torch.nn.Linear`` initialised without a generator, say) would differ
    from run to run. The runner seeds the global generators before it builds a method,
    before training and before every generation, from the method seed, the case and the
    video, so results do not depend on the process, on earlier cases, or on where a run
    resumed."""
    import torch  # on use only: the runner and the CLI import the executors without torch

    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)


def apply_determinism(enabled: bool) -> None:
    """Ask torch for reproducible kernels: deterministic algorithms (warning, not failing,
    where an op has none), no cuDNN autotuning, and the cuBLAS workspace setting that makes
    CUDA matmuls deterministic (effective when set before CUDA starts)."""
    if not enabled:
        return
    import torch  # on use only (as seed_global_rngs)

    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True
