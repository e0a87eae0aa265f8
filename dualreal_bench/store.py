"""The results store: one directory per run, one JSON record per generated video.

Layout (``root`` is ``--output-dir``, ``results/`` by default)::

    <root>/<run_id>/
      run.json                                  suite, profile, creation time (first writer)
      <method_label>/
        method.json                             method name, class, config as asked, and the
                                                constructed method's describe() ("description")
        <identity>__<motion>/
          state/                                Method.save() output; complete iff state/COMPLETE
          train.json                            training statistics
          videos/p007_s0.mp4                    prompt 7, seed 0 (written last: marks the video done)
          videos/p007_s0.json                   generation provenance (time, backbone) of that video
          videos/p007_s0.extras.npz             per-video extras (e.g. controller trace)
          records/p007_s0.json                  the record (metrics, configs, versions, seeds)
          invalid/<time>/records/p007_s0.json   an invalid output a resumed run set aside
        expected/shard0of1.json                 case id -> videos each shard planned (``report``)
        events/<host>-<pid>-<time>.jsonl        what each process finished, one JSON line per stage

Every file is written atomically (a hidden temp file in the same directory, fsync,
``os.replace``), so a run killed at any moment leaves complete files or none, and a resumed
run redoes exactly the stages whose outputs are missing or invalid (an invalid one, say a
record truncated by hand or a video that does not decode, is moved aside into the case's
``invalid/`` folder, kept and logged, never deleted). Temp files are hidden (``.name...tmp``)
and never match the ``*.json`` globs readers use. Shared files (``run.json``, ``method.json``)
are created with an exclusive link, so two writers never interleave them; a case directory is
worked on under an advisory lock (``flock`` on the directory itself: no lock file), so two
processes given the same case (overlapping shards, a re-submitted job) do each stage once:
the second waits, then finds the outputs.

The writing itself is :mod:`dualreal_bench.io`'s; the record's schema is
:mod:`dualreal_bench.records`'s.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from .errors import ConfigError, DataError
from .io import (
    as_json,
    atomic_write_json,
    check_output_dir,
    create_exclusive_json,
    dumps_json,
    named_os_error,
    read_json,
    read_json_object,
)
from .provenance import now_iso, now_stamp
from .records import SCHEMA_VERSION, Record, check_row

_LABEL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.,=+\[\]-]*$")


# ---- the store ---------------------------------------------------------------------------


def video_key(prompt_index: int, seed: int) -> str:
    return f"p{prompt_index:03d}_s{seed}"


def check_label(label: str, what: str = "method label") -> str:
    if not _LABEL_RE.match(label) or ".." in label:
        raise ConfigError(f"invalid {what} {label!r}: use letters, digits and _ . , = + [ ] -")
    return label


#: NAME_MAX where the filesystem does not say (ext4, xfs, btrfs, tmpfs, NFS: 255 bytes)
DEFAULT_NAME_MAX = 255


def name_max(path: Path) -> int:
    """The longest file or folder name (bytes) the filesystem holding ``path`` (or its nearest
    existing ancestor) allows."""
    for folder in (path, *path.parents):
        try:
            if folder.is_dir():
                return int(os.pathconf(folder, "PC_NAME_MAX"))
        except (OSError, ValueError, AttributeError):  # no pathconf (Windows), a long name
            continue
    return DEFAULT_NAME_MAX


def check_name_length(name: str, what: str, root: Path, hint: str, limit: int) -> str:
    """``name`` if it fits in one path component under ``root`` (``limit`` bytes), else a
    ConfigError saying which name, how long, the limit and ``hint`` (what to shorten)."""
    size = len(name.encode("utf-8"))
    if size > limit:
        shown = name if len(name) <= 48 else name[:45] + "..."
        raise ConfigError(
            f"{what} {shown!r} is {size} bytes long, but the filesystem of {root} allows at "
            f"most {limit} per file or folder name; {hint}"
        )
    return name


class CaseDir:
    """Paths of one (method, case) inside a run."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.state = root / "state"
        self.videos = root / "videos"
        self.records = root / "records"
        self.train_stats = root / "train.json"

    @property
    def state_complete(self) -> bool:
        return (self.state / "COMPLETE").is_file()

    def video(self, prompt_index: int, seed: int) -> Path:
        return self.videos / f"{video_key(prompt_index, seed)}.mp4"

    def extras(self, prompt_index: int, seed: int) -> Path:
        return self.videos / f"{video_key(prompt_index, seed)}.extras.npz"

    def generation_info(self, prompt_index: int, seed: int) -> Path:
        """Provenance of a generated video (when, on which backbone), kept for its record."""
        return self.videos / f"{video_key(prompt_index, seed)}.json"

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold an exclusive advisory lock on the case (waits while another process has it).

        The lock is ``flock`` on the case directory itself, so it leaves no file behind, and
        the kernel releases it when its holder dies: a killed run never leaves a stale lock.
        Where ``fcntl`` is missing (Windows) this is a no-op.
        """
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows
            yield
            return
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.root, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock

    def record(self, prompt_index: int, seed: int) -> Path:
        return self.records / f"{video_key(prompt_index, seed)}.json"

    def video_files(self, prompt_index: int, seed: int) -> list[Path]:
        """Every file the generation stage writes for one video (sidecars first)."""
        return [
            self.extras(prompt_index, seed),
            self.generation_info(prompt_index, seed),
            self.video(prompt_index, seed),
        ]

    def set_aside(self, paths: list[Path], stamp: str) -> list[Path]:
        """Move ``paths`` (files of this case) that exist into ``invalid/<stamp>/``, keeping
        their place in the case (``records/p000_s0.json`` -> ``invalid/<stamp>/records/
        p000_s0.json``); return where they went. Readers' globs never look there, and a
        resumed run redoes what was moved. Call it under :meth:`lock`."""
        moved = []
        for path in paths:
            if not (path.is_file() or path.is_symlink()):
                continue
            target = self.root / "invalid" / stamp / path.relative_to(self.root)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, target)
            moved.append(target)
        return moved

    def remove_stale_temps(self) -> None:
        """Remove the temp files and directories killed writers left in the case: hidden
        ``.name...tmp*`` files and ``.state.*`` directories. Call it under :meth:`lock`, when
        no other writer can be inside."""
        for folder in (self.root, self.videos, self.records):
            if not folder.is_dir():
                continue
            for entry in folder.iterdir():
                name = entry.name
                if not name.startswith("."):
                    continue
                if entry.is_dir() and name.startswith(f".{self.state.name}."):
                    shutil.rmtree(entry, ignore_errors=True)
                elif entry.is_file() and ".tmp" in name:
                    entry.unlink(missing_ok=True)


class ResultStore:
    """Results of one run under ``root/run_id``."""

    def __init__(self, root: str | Path, run_id: str) -> None:
        self.root = Path(root)
        self._name_max: int | None = None
        self.run_id = self._component(run_id, "run id", "pass a shorter --run-id")
        self.run_dir = self.root / run_id

    def _component(self, name: str, what: str, hint: str) -> str:
        """``name`` checked as a folder name of the store: its characters, and its length
        against what the filesystem of the root allows (before any path with it is used)."""
        check_label(name, what)
        if self._name_max is None:
            self._name_max = name_max(self.root)
        return check_name_length(name, what, self.root, hint, self._name_max)

    def _label(self, label: str) -> str:
        return self._component(
            label, "method label", "pass a shorter --name (the label of this method variant)"
        )

    def check_output_root(self) -> None:
        """ConfigError unless the store's root is a directory or can be made one (reads only):
        ``--output-dir`` naming a file, or a path through a file, is refused before any work."""
        check_output_dir(self.root, "--output-dir")

    # run- and method-level metadata -------------------------------------------------------
    def check_run(self, info: dict[str, Any]) -> None:
        """Raise if ``run.json`` exists for another suite, profile or metrics profile (reads
        only). A key run.json does not hold (written before it was recorded) accepts any."""
        path = self.run_dir / "run.json"
        if not path.is_file():
            return
        existing = read_json_object(path)
        for key in ("suite", "profile", "metrics_profile"):
            if key in info and key in existing and existing[key] != info[key]:
                raise ConfigError(
                    f"{path}: run {self.run_id!r} was made with {key}={existing.get(key)!r}, "
                    f"not {info[key]!r}; pass another --run-id"
                )

    def init_run(self, info: dict[str, Any]) -> dict[str, Any]:
        """Create ``run.json`` on first use; later writers check they run the same suite/profile."""
        path = self.run_dir / "run.json"
        meta = {"schema": SCHEMA_VERSION, "run_id": self.run_id, "created": now_iso(), **info}
        if not create_exclusive_json(path, meta):
            self.check_run(info)
            return read_json_object(path)
        return meta

    def run_info(self) -> dict[str, Any]:
        path = self.run_dir / "run.json"
        if not path.is_file():
            raise DataError(
                f"{path}: no such run (run `dualreal-bench run` first or pass --run-id)"
            )
        return read_json_object(path)

    def check_method(self, label: str, info: Mapping[str, Any]) -> None:
        """Raise if ``label`` exists in this run with another config or class (reads only).

        ``info``: the method's name, class and ``config`` as the run asks for it (the
        description of the constructed method, with its resolved values, is added later by
        :meth:`describe_method`)."""
        path = self._method_path(label)
        if not path.is_file():
            return
        existing = read_json_object(path)
        asked = (as_json(info.get("config")), info.get("class"))
        if (existing.get("config"), existing.get("class")) != asked:
            raise ConfigError(
                f"{path}: method {label!r} in run {self.run_id!r} was run with another config; "
                "pass --name to store this variant under its own label"
            )

    def init_method(self, label: str, info: Mapping[str, Any]) -> None:
        """Record the method's config in ``method.json``; refuse to mix two configs under one
        label."""
        if not create_exclusive_json(self._method_path(label), {"label": label, **info}):
            self.check_method(label, info)

    def describe_method(
        self, label: str, info: Mapping[str, Any], description: Mapping[str, Any]
    ) -> None:
        """Add ``description`` (what the constructed method says of itself:
        :meth:`~dualreal_bench.method.Method.describe`) to ``method.json`` as
        ``"description"``; ``info`` creates the file where :meth:`init_method` did not.

        Processes that construct the same method write the same description (a benign race:
        each replace is atomic); a different one under the label is a ConfigError."""
        path = self._method_path(label)
        described = as_json(description)
        if create_exclusive_json(path, {"label": label, **info, "description": described}):
            return
        existing = read_json_object(path)
        if existing.get("description") == described:
            return
        if "description" in existing:
            raise ConfigError(
                f"{path}: method {label!r} in run {self.run_id!r} was constructed as "
                f"{_variant(existing['description'])}, now as {_variant(described)} (another "
                "backbone?); pass --name to store this variant under its own label"
            )
        self.check_method(label, info)
        atomic_write_json(path, {**existing, "description": described})

    def method_info(self, label: str) -> dict[str, Any]:
        """``method.json`` of ``label`` (empty if the label has none yet)."""
        path = self._method_path(label)
        return read_json_object(path) if path.is_file() else {}

    def _method_path(self, label: str) -> Path:
        return self.run_dir / self._label(label) / "method.json"

    def write_expected(self, label: str, shard: tuple[int, int], planned: dict[str, int]) -> None:
        """``<label>/expected/shard<i>of<N>.json``: case id -> videos this shard plans.

        Left untouched when it already holds the same plan (a resumed shard changes nothing)."""
        path = self._expected_path(label, shard)
        if path.is_file():
            try:
                if read_json_object(path) == planned:
                    return
            except DataError:
                pass  # unreadable: rewrite it
        atomic_write_json(path, planned)

    def read_expected(self, label: str, shard: tuple[int, int]) -> dict[str, int]:
        """The plan :meth:`write_expected` left for ``shard`` (empty if none)."""
        path = self._expected_path(label, shard)
        return read_json_object(path) if path.is_file() else {}

    def _expected_path(self, label: str, shard: tuple[int, int]) -> Path:
        index, count = shard
        return self.run_dir / self._label(label) / "expected" / f"shard{index}of{count}.json"

    def events(self, label: str) -> EventLog:
        """This process's event log of ``label`` (created on the first event)."""
        return EventLog(self.run_dir / self._label(label) / "events")

    def case_dir(self, label: str, case_id: str) -> CaseDir:
        case_id = self._component(
            case_id,
            "case id",
            "the case's folder is <identity>__<motion>: use shorter identity or motion names",
        )
        return CaseDir(self.run_dir / self._label(label) / case_id)

    # records --------------------------------------------------------------------------------
    def write_record(self, label: str, case_id: str, record: Record | dict[str, Any]) -> Path:
        """Write ``record`` atomically into the case's ``records/``. A :class:`Record` was
        validated when built; a plain dict (a hand-made row) gets the readers' check."""
        row = record.to_dict() if isinstance(record, Record) else record
        path = self.case_dir(label, case_id).record(row["prompt_index"], row["seed"])
        check_row(row, source=str(path))
        atomic_write_json(path, row)
        return path

    def iter_records(
        self, on_invalid: Callable[[Path, str], None] | None = None
    ) -> Iterator[dict[str, Any]]:
        """Every record of the run (all methods, all shards), in a stable order.

        A record that is unreadable or has an invalid metric value (a string, a NaN, a null)
        is a DataError naming the file, or, with ``on_invalid``, is passed to
        ``on_invalid(path, message)`` and left out (a report renders the rest)."""
        if not self.run_dir.is_dir():
            raise DataError(f"{self.run_dir}: no such run directory")
        for path in sorted(self.run_dir.glob("*/*/records/*.json")):
            if path.name.startswith("."):  # never a writer's temp file
                continue
            try:
                yield check_row(read_json(path), source=str(path))
            except DataError as exc:
                if on_invalid is None:
                    raise
                on_invalid(path, str(exc))


def _variant(description: Mapping[str, Any]) -> str:
    return repr(description.get("variant") or description.get("config"))


class EventLog:
    """Append-only JSON lines of finished stages, one file per process (no two writers share a
    file). Each line is written with one ``write`` call on an ``O_APPEND`` descriptor, so a
    killed process leaves whole lines. :func:`read_events` reads every process's log."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.path: Path | None = None

    def write(self, event: str, **fields: Any) -> None:
        if self.path is None:
            self.directory.mkdir(parents=True, exist_ok=True)
            stamp = now_stamp()
            self.path = (
                self.directory
                / f"{socket.gethostname()}-{os.getpid()}-{stamp}-{time.monotonic_ns() % 10**6}.jsonl"
            )
        line = dumps_json({"event": event, "time": now_iso(), **fields})
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, (line + "\n").encode("utf-8"))
            finally:
                os.close(fd)
        except OSError as exc:  # a full disk: name the log
            raise named_os_error(exc, self.path) from exc


def read_events(run_dir: str | Path, label: str | None = None) -> list[dict[str, Any]]:
    """Every event of a run (or of one method label), each with its log file as ``"log"``."""
    events = []
    for path in sorted(Path(run_dir).glob(f"{label or '*'}/events/*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                events.append({**json.loads(line), "log": path.name})
    return events


def list_runs(root: str | Path) -> list[str]:
    root = Path(root)
    return sorted(p.parent.name for p in root.glob("*/run.json"))


def run_modified(run_dir: str | Path) -> float:
    """When a run was last written to (seconds since the epoch): the newest modification time
    of ``run.json`` and of the run's folders. Every store write creates or replaces a file
    (atomically, or as a new per-process event log), which updates its folder's time, so
    folders suffice and a run of 50,000 videos costs a few thousand ``stat`` calls."""
    run_dir = Path(run_dir)
    newest = (run_dir / "run.json").stat().st_mtime
    for folder, _, _ in os.walk(run_dir):
        newest = max(newest, os.stat(folder).st_mtime)
    return newest


def latest_run(root: str | Path) -> str:
    """The run under ``root`` written to most recently (:func:`run_modified`); DataError if
    there is none."""
    runs = list_runs(root)
    if not runs:
        raise DataError(
            f"{root}: no runs found (run `dualreal-bench run` first, or pass --output-dir)"
        )
    return max(runs, key=lambda run_id: (run_modified(Path(root) / run_id), run_id))


def expected_videos(output_dir: str | Path, run_id: str) -> dict[str, dict[str, int]]:
    """method label -> case id -> number of videos every shard planned for it."""
    run_dir = Path(output_dir) / run_id
    out: dict[str, dict[str, int]] = {}
    for path in sorted(run_dir.glob("*/expected/*.json")):
        label = path.parent.parent.name
        for case_id, n in read_json_object(path).items():
            out.setdefault(label, {})[case_id] = max(n, out.get(label, {}).get(case_id, 0))
    return out


def run_status(output_dir: str | Path, run_id: str) -> list[dict[str, Any]]:
    """One row per method label (variant) of a run: its method name, the records written and
    the records expected (every shard's plan; None when no plan was written), in label order."""
    run_dir = Path(output_dir) / run_id
    expected = expected_videos(output_dir, run_id)
    rows = []
    for method_json in sorted(run_dir.glob("*/method.json")):
        label = method_json.parent.name
        try:
            name = read_json_object(method_json).get("name")
        except DataError:
            name = None
        records = sum(
            1 for p in (run_dir / label).glob("*/records/*.json") if not p.name.startswith(".")
        )
        plan = expected.get(label)
        rows.append(
            {
                "label": label,
                "method": name,
                "records": records,
                "expected": sum(plan.values()) if plan is not None else None,
                "cases": len(plan) if plan is not None else None,
            }
        )
    return rows
