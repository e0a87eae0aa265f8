"""Atomic file writes, JSON reading and writing, and the crash-test failpoints.

Every file the benchmark writes goes through :func:`atomic_path` (a hidden temp file in the
same directory, fsync, ``os.replace``), so a process killed at any moment leaves complete files
or none. Temp files are hidden (``.name...tmp``) and never match the ``*.json`` globs readers
use. Shared files two processes may both create (``run.json``, ``method.json``) are made with
:func:`create_exclusive_json`: an exclusive link, the first writer wins.

This module is the bottom of the package: it imports nothing of it but the errors.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import signal
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .errors import ConfigError, DataError

# ---- atomic writes ---------------------------------------------------------------------


@contextlib.contextmanager
def atomic_path(path: str | Path, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is renamed onto ``path``.

    The temp file keeps ``path``'s suffix (writers that pick a format by extension, such as
    video encoders and numpy, keep working). On an exception the temp file is removed and
    ``path`` is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Not created here: the writer creates it with the usual (umask) permissions, where
    # mkstemp would leave results readable by their owner only.
    tail = ".tmp" + (suffix if suffix is not None else path.suffix)
    tmp_path = path.parent / f".{path.stem}.{os.getpid()}-{uuid.uuid4().hex[:12]}{tail}"
    try:
        yield tmp_path
        with open(tmp_path, "rb") as fh:
            os.fsync(fh.fileno())
        failpoint("store_write", tmp_path)
        os.replace(tmp_path, path)
    except OSError as exc:
        raise named_os_error(exc, path, tmp_path) from exc
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def named_os_error(exc: OSError, path: Path, *aliases: Path) -> OSError:
    """``exc`` naming ``path``: a writer's error that names no file (``write()`` on a full
    disk) or names a temp file standing in for ``path``. Other errors are returned as they
    are."""
    if exc.errno is None or exc.filename not in (None, *map(str, aliases), *aliases):
        return exc
    # OSError(errno, ...) is the errno's subclass (FileNotFoundError...); a library's own
    # subclass (PyAV's) may not take these arguments
    return OSError(exc.errno, exc.strerror or os.strerror(exc.errno), str(path))


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    # the temp name ends in ".tmp" (not ".json"), so no reader's "*.json" glob can see it
    with atomic_path(path, suffix="") as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, dumps_json(obj, indent=2) + "\n")


def create_exclusive_json(path: Path, obj: Any) -> bool:
    """Create ``path`` with ``obj`` unless it exists (atomic, race-free). True if created.

    An existing ``path`` is not touched at all (not even its directory: no temp file)."""
    if path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(dumps_json(obj, indent=2) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)  # fails if path exists: first writer wins
            return True
        except FileExistsError:
            return False
    except OSError as exc:
        raise named_os_error(exc, path, Path(tmp)) from exc
    finally:
        os.unlink(tmp)


# ---- where outputs go (checked before any work) ----------------------------------------------


def check_output_dir(path: str | Path, option: str) -> Path:
    """``path`` as a Path if it is a directory or can be made one; ConfigError naming
    ``option`` if it, or a folder on its way, is a file (or a broken link). Reads only."""
    path = Path(path)
    for folder in (path, *path.parents):
        if folder.is_dir():
            return path
        if folder.exists() or folder.is_symlink():
            what = "is" if folder == path else f"is inside {folder}, which is"
            raise ConfigError(
                f"{option} {path}: {what} not a directory (a file or a broken link); "
                "choose a folder"
            )
    return path


def check_output_file(path: str | Path, option: str, example: str = "out") -> Path:
    """``path`` as a Path if a file can be written there (it is not a directory, and its
    folder is or can be one); ConfigError naming ``option`` otherwise. Reads only."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(
            f"{option} {path}: is a directory; give a file name (e.g. {path / example})"
        )
    check_output_dir(path.parent, f"{option} {path}: its folder")
    return path


# ---- JSON ---------------------------------------------------------------------------------


def read_json(path: Path) -> Any:
    """The JSON document of ``path``; DataError naming the file if it is missing or invalid
    (a truncated file, bytes that are not UTF-8)."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: unreadable JSON ({exc})") from None


def read_json_object(path: Path) -> dict[str, Any]:
    """:func:`read_json` of a file that must hold a JSON object (a store's ``run.json``,
    ``method.json``, a plan): DataError naming the file if it holds anything else."""
    doc = read_json(path)
    if not isinstance(doc, dict):
        raise DataError(f"{path}: holds {type(doc).__name__} JSON, expected an object")
    return doc


def json_default(obj: Any) -> Any:
    """``json.dumps(default=...)`` for the values results hold: paths, numpy/torch scalars and
    arrays, sets (sorted)."""
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "item"):  # numpy / torch scalars
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def dumps_json(obj: Any, *, indent: int | None = None) -> str:
    """``obj`` as JSON text with sorted keys (the form every file of the store has)."""
    return json.dumps(obj, indent=indent, sort_keys=True, default=json_default)


def as_json(obj: Any) -> Any:
    """``obj`` as it reads back from a JSON file (tuples become lists, paths strings): what to
    compare with a document read from disk."""
    return json.loads(dumps_json(obj))


# ---- fault injection (crash tests) ---------------------------------------------------------

FAILPOINT_ENV = "DUALREAL_BENCH_FAILPOINT"
_failpoint_hits: dict[str, int] = {}


#: failpoint actions besides the default SIGKILL: an OSError of this errno, as the OS raises it
FAILPOINT_ERRORS = {"enospc": errno.ENOSPC, "edquot": errno.EDQUOT, "eio": errno.EIO}


def failpoint(name: str, path: str | Path | None = None) -> None:
    """Crash-test hook: ``DUALREAL_BENCH_FAILPOINT="<name>:<n>"`` makes the process SIGKILL
    itself the ``n``-th time it reaches the point ``name`` (1-based);
    ``"<name>:<n>:enospc"`` (or ``edquot``, ``eio``) raises that ``OSError`` there instead, as
    a full disk would, naming ``path`` (the file being written) like the OS does. Points:
    ``train_step`` (after each training step), ``generate`` (a video generated, not yet
    written), ``evaluate`` (a video scored, its record not yet written), ``store_write`` (an
    atomic write between its temp file and the rename), ``video_write`` (a video encoded into
    its temp file, not yet renamed). Unset (always, outside tests): a dict lookup."""
    spec = os.environ.get(FAILPOINT_ENV)
    if not spec:
        return
    target, _, rest = spec.partition(":")
    if target != name:
        return
    count, _, action = rest.partition(":")
    _failpoint_hits[name] = _failpoint_hits.get(name, 0) + 1
    if _failpoint_hits[name] != int(count or 1):
        return
    if action:
        code = FAILPOINT_ERRORS[action.lower()]
        raise OSError(code, os.strerror(code), None if path is None else str(path))
    os.kill(os.getpid(), signal.SIGKILL)
