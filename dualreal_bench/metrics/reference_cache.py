"""Where the evaluator keeps reference values: in memory for its life and, with a root, in the
shared :class:`~dualreal_bench.cache.ArrayCache` under ``<root>/metrics``.

The runner and the CLI pass the user cache (:func:`~dualreal_bench.cache.user_cache_dir`), so
another run, another run id or another process on the machine does not recompute them. A key
names all a value depends on: the file's bytes (SHA-256, not its path or time), the encoder's
identity (a tiny encoder's architecture version and seed, a real one's weights hash), the
device and CPU thread count (:func:`numerics`), the constants and metric version that matter,
the size a clip is resized to (the caller's part of the key), the versions of the packages on
the way, and :data:`~.constants.CACHE_VERSION` (added here).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..cache import ArrayCache, key_digest
from ..provenance import package_versions
from .constants import CACHE_VERSION


def numerics(encoder: Any) -> list[Any]:
    """What changes an encoder's output bits besides its weights: the device type and, on CPU,
    torch's thread count (the records are bit-identical only with equal thread counts)."""
    device = torch.device(getattr(encoder, "device", "cpu"))
    return [device.type, torch.get_num_threads() if device.type == "cpu" else None]


class ReferenceCache:
    """The evaluator's reference values: in memory for its life, and in the shared
    :class:`~dualreal_bench.cache.ArrayCache` (``<root>/metrics``) when ``root`` is set.

    Keys name everything a value depends on; values of encoders without an identity (injected
    callables) stay in memory only (``persistent=False``).
    """

    def __init__(self, root: Path | None) -> None:
        self.disk = ArrayCache(Path(root) / "metrics") if root is not None else None
        self.root = self.disk.root if self.disk is not None else None
        self.memory: dict[str, np.ndarray] = {}
        self.hits = {"memory": 0, "disk": 0, "miss": 0}
        # the packages a value passes through (decoding, resizing, the networks' code)
        self._context = [CACHE_VERSION, package_versions()]

    def _full(self, kind: str, key: list[Any]) -> list[Any]:
        return [kind, *self._context, *key]

    def get(self, kind: str, key: list[Any], persistent: bool) -> np.ndarray | None:
        full = self._full(kind, key)
        d = key_digest(full)
        if d in self.memory:
            self.hits["memory"] += 1
            return self.memory[d]
        if persistent and self.disk is not None:
            value = self.disk.get(kind, full)
            if value is not None:
                self.memory[d] = value
                self.hits["disk"] += 1
                return value
        self.hits["miss"] += 1
        return None

    def put(self, kind: str, key: list[Any], value: np.ndarray, persistent: bool) -> np.ndarray:
        full = self._full(kind, key)
        value = np.asarray(value)
        self.memory[key_digest(full)] = value
        if persistent and self.disk is not None:
            self.disk.put(kind, full, value)
        return value
