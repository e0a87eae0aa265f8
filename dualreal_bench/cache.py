"""The user cache: what is worth computing once per machine, not once per run.

It lives in ``$DUALREAL_BENCH_CACHE``, else ``$XDG_CACHE_HOME/dualreal-bench``, else
``~/.cache/dualreal-bench`` (:func:`user_cache_dir`) and holds the generated sample data
(``sample_data/``) and the metrics' reference values (``metrics/``: reference-clip Dynamic
Degrees, identity-image and prompt embeddings). Deleting the folder is always safe: everything
in it is recomputed on demand.

:class:`ArrayCache` stores numpy arrays under a key that names *everything* the value depends
on (file contents by hash, encoder identity, constants, software versions, numerics); the key
is hashed into the file name and also stored inside the entry and checked on every read. An
entry is written atomically (temp file + fsync + rename), so concurrent runs and processes
see a complete entry or none; an entry that fails to load or does not match its key is
ignored with a warning (the caller recomputes it and overwrites it), never trusted.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from .io import atomic_write_bytes

logger = logging.getLogger(__name__)

#: Environment variable naming the cache folder (CI points it at a temporary directory).
CACHE_ENV = "DUALREAL_BENCH_CACHE"
#: Bump when the entry format changes: older entries then miss (and are overwritten).
ENTRY_FORMAT = 1


def user_cache_dir() -> Path:
    """``$DUALREAL_BENCH_CACHE``, else ``$XDG_CACHE_HOME/dualreal-bench``, else
    ``~/.cache/dualreal-bench``. Not created here."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "dualreal-bench"


_FILE_DIGESTS: dict[tuple[str, int, int, int], str] = {}


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file's bytes (hex). Files and directories of files (hashed by relative
    name and content, in sorted order) are accepted. Memoised for this process by path, size,
    inode and modification time, so a file is read once per run."""
    path = Path(path)
    if path.is_dir():
        h = hashlib.sha256()
        for f in sorted(p for p in path.rglob("*") if p.is_file()):
            h.update(
                f.relative_to(path).as_posix().encode() + b"\0" + file_sha256(f).encode() + b"\0"
            )
        return h.hexdigest()
    st = path.stat()
    memo = (str(path.resolve()), st.st_size, st.st_ino, st.st_mtime_ns)
    if memo not in _FILE_DIGESTS:
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        _FILE_DIGESTS[memo] = h.hexdigest()
    return _FILE_DIGESTS[memo]


def key_digest(key: Any) -> str:
    """The hex SHA-256 of a JSON-able key (dict keys sorted)."""
    return hashlib.sha256(_key_text(key).encode()).hexdigest()


def _key_text(key: Any) -> str:
    return json.dumps(key, sort_keys=True, separators=(",", ":"))


class ArrayCache:
    """Numpy arrays keyed by JSON-able keys: ``<root>/<kind>/<sha256 of key>.npz``.

    Each entry holds the value, its key and the entry format; :meth:`get` returns None
    (a miss) when there is no entry, and also when the entry is unreadable, truncated, fails
    its CRC, or holds another key -- with a warning naming the file. ``hits`` counts what
    the disk gave (``"disk"``), what it did not (``"miss"``) and the entries it rejected
    (``"corrupt"``, also counted as misses).
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.hits = {"disk": 0, "miss": 0, "corrupt": 0}

    def path(self, kind: str, key: Any) -> Path:
        return self.root / kind / f"{key_digest(key)}.npz"

    def get(self, kind: str, key: Any) -> np.ndarray | None:
        path = self.path(kind, key)
        try:
            with np.load(path, allow_pickle=False) as entry:
                stored_key = str(entry["key"])
                version = int(entry["format"])
                value = np.array(entry["value"])  # reads (and CRC-checks) the member
        except FileNotFoundError:
            self.hits["miss"] += 1
            return None
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
            return self._reject(path, f"unreadable ({type(exc).__name__}: {exc})")
        if version != ENTRY_FORMAT:
            self.hits["miss"] += 1  # another format: not corrupt, just not ours to read
            return None
        if stored_key != _key_text(key):
            return self._reject(path, "it holds another key")
        self.hits["disk"] += 1
        return value

    def _reject(self, path: Path, why: str) -> None:
        logger.warning(
            "ignoring cache entry %s: %s; recomputing it", path, " ".join(why.split())[:300]
        )
        self.hits["corrupt"] += 1
        self.hits["miss"] += 1
        return None

    def put(self, kind: str, key: Any, value: np.ndarray) -> None:
        """Write (or overwrite) the entry atomically. A cache that cannot be written (read-only
        or full disk) is a warning, not an error: the value is still returned to the caller."""
        buf = io.BytesIO()
        np.savez(
            buf,
            value=np.asarray(value),
            key=np.array(_key_text(key)),
            format=np.array(ENTRY_FORMAT),
        )
        path = self.path(kind, key)
        try:
            atomic_write_bytes(path, buf.getvalue())
        except OSError as exc:
            logger.warning("cannot write cache entry %s (%s); continuing without it", path, exc)
