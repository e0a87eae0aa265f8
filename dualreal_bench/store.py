"""The results store: one directory per run, one JSON record per generated video.

Layout (``root`` is ``--output-dir``, ``results/`` by default)::

    <root>/<run_id>/
      run.json                                  suite, profile, creation time (first writer)
      <method_label>/
        method.json                             method name, class and resolved config
        <identity>__<motion>/
          state/                                Method.save() output; complete iff state/COMPLETE
          train.json                            training statistics
          videos/p007_s0.mp4                    prompt 7, seed 0 (written last: marks the video done)
          videos/p007_s0.json                   generation provenance (time, backbone) of that video
          videos/p007_s0.extras.npz             per-video extras (e.g. controller trace)
          records/p007_s0.json                  the record (metrics, configs, versions, seeds)
        expected/shard0of1.json                 case id -> videos each shard planned (``report``)
        events/<host>-<pid>-<time>.jsonl        what each process finished, one JSON line per stage

Every file is written atomically (a hidden temp file in the same directory, fsync,
``os.replace``), so a run killed at any moment leaves complete files or none, and a resumed
run redoes exactly the stages whose outputs are missing. Temp files are hidden (``.name...tmp``)
and never match the ``*.json`` globs readers use. Shared files (``run.json``, ``method.json``)
are created with an exclusive link, so two writers never interleave them; a case directory is
worked on under an advisory lock (``flock`` on the directory itself: no lock file), so two
processes given the same case (overlapping shards, a re-submitted job) do each stage once:
the second waits, then finds the outputs.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import functools
import json
import os
import platform
import re
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

from .errors import ConfigError, DataError

SCHEMA_VERSION = 1
_LABEL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.,=+\[\]-]*$")


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
        failpoint("store_write")
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    # the temp name ends in ".tmp" (not ".json"), so no reader's "*.json" glob can see it
    with atomic_path(path, suffix="") as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def create_exclusive_json(path: Path, obj: Any) -> bool:
    """Create ``path`` with ``obj`` unless it exists (atomic, race-free). True if created.

    An existing ``path`` is not touched at all (not even its directory: no temp file)."""
    if path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)  # fails if path exists: first writer wins
            return True
        except FileExistsError:
            return False
    finally:
        os.unlink(tmp)


# ---- fault injection (crash tests) ---------------------------------------------------------

FAILPOINT_ENV = "DUALREAL_BENCH_FAILPOINT"
_failpoint_hits: dict[str, int] = {}


def failpoint(name: str) -> None:
    """Crash-test hook: ``DUALREAL_BENCH_FAILPOINT="<name>:<n>"`` makes the process SIGKILL
    itself the ``n``-th time it reaches the point ``name`` (1-based). Points: ``train_step``
    (after each training step), ``generate`` (a video generated, not yet written),
    ``evaluate`` (a video scored, its record not yet written), ``store_write`` (an atomic
    write between its temp file and the rename). Unset (always, outside tests): a dict lookup."""
    spec = os.environ.get(FAILPOINT_ENV)
    if not spec:
        return
    target, _, count = spec.partition(":")
    if target != name:
        return
    _failpoint_hits[name] = _failpoint_hits.get(name, 0) + 1
    if _failpoint_hits[name] == int(count or 1):
        os.kill(os.getpid(), signal.SIGKILL)


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: unreadable JSON ({exc})") from None


def _json_default(obj: Any) -> Any:
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "item"):  # numpy / torch scalars
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


# ---- provenance -------------------------------------------------------------------------

_VERSIONED = (
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
    for name in _VERSIONED:
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
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=here,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=here,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": head, "dirty": bool(dirty)}


def determinism_flags() -> dict[str, Any]:
    """The torch settings that decide whether a rerun reproduces the same bits."""
    import torch

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
    import torch

    return {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "torch_threads": torch.get_num_threads(),
    }


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


# ---- the store ---------------------------------------------------------------------------


def video_key(prompt_index: int, seed: int) -> str:
    return f"p{prompt_index:03d}_s{seed}"


def check_label(label: str, what: str = "method label") -> str:
    if not _LABEL_RE.match(label) or ".." in label:
        raise ConfigError(f"invalid {what} {label!r}: use letters, digits and _ . , = + [ ] -")
    return label


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


class ResultStore:
    """Results of one run under ``root/run_id``."""

    def __init__(self, root: str | Path, run_id: str) -> None:
        self.root = Path(root)
        self.run_id = check_label(run_id, "run id")
        self.run_dir = self.root / run_id

    # run- and method-level metadata -------------------------------------------------------
    def check_run(self, info: dict[str, Any]) -> None:
        """Raise if ``run.json`` exists for another suite, profile or metrics profile (reads
        only). A key run.json does not hold (written before it was recorded) accepts any."""
        path = self.run_dir / "run.json"
        if not path.is_file():
            return
        existing = read_json(path)
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
            return read_json(path)
        return meta

    def run_info(self) -> dict[str, Any]:
        path = self.run_dir / "run.json"
        if not path.is_file():
            raise DataError(
                f"{path}: no such run (run `dualreal-bench run` first or pass --run-id)"
            )
        return read_json(path)

    def check_method(self, label: str, description: dict[str, Any]) -> None:
        """Raise if ``label`` exists in this run with another config or class (reads only)."""
        path = self.run_dir / check_label(label) / "method.json"
        if not path.is_file():
            return
        existing = read_json(path)
        config = json.loads(json.dumps(description.get("config"), default=_json_default))
        if existing.get("config") != config or existing.get("class") != description.get("class"):
            raise ConfigError(
                f"{path}: method {label!r} in run {self.run_id!r} was run with another config; "
                "pass --name to store this variant under its own label"
            )

    def init_method(self, label: str, description: dict[str, Any]) -> None:
        """Record the method's resolved config; refuse to mix two configs under one label."""
        path = self.run_dir / check_label(label) / "method.json"
        if not create_exclusive_json(path, {"label": label, **description}):
            self.check_method(label, description)

    def write_expected(self, label: str, shard: tuple[int, int], planned: dict[str, int]) -> None:
        """``<label>/expected/shard<i>of<N>.json``: case id -> videos this shard plans.

        Left untouched when it already holds the same plan (a resumed shard changes nothing)."""
        path = self._expected_path(label, shard)
        if path.is_file():
            try:
                if read_json(path) == planned:
                    return
            except DataError:
                pass  # unreadable: rewrite it
        atomic_write_json(path, planned)

    def read_expected(self, label: str, shard: tuple[int, int]) -> dict[str, int]:
        """The plan :meth:`write_expected` left for ``shard`` (empty if none)."""
        path = self._expected_path(label, shard)
        return read_json(path) if path.is_file() else {}

    def _expected_path(self, label: str, shard: tuple[int, int]) -> Path:
        index, count = shard
        return self.run_dir / check_label(label) / "expected" / f"shard{index}of{count}.json"

    def events(self, label: str) -> EventLog:
        """This process's event log of ``label`` (created on the first event)."""
        return EventLog(self.run_dir / check_label(label) / "events")

    def case_dir(self, label: str, case_id: str) -> CaseDir:
        return CaseDir(self.run_dir / check_label(label) / case_id)

    # records --------------------------------------------------------------------------------
    def write_record(self, label: str, case_id: str, record: dict[str, Any]) -> Path:
        path = self.case_dir(label, case_id).record(record["prompt_index"], record["seed"])
        atomic_write_json(path, record)
        return path

    def iter_records(self) -> Iterator[dict[str, Any]]:
        """Every record of the run (all methods, all shards), in a stable order."""
        if not self.run_dir.is_dir():
            raise DataError(f"{self.run_dir}: no such run directory")
        for path in sorted(self.run_dir.glob("*/*/records/*.json")):
            if not path.name.startswith("."):  # never a writer's temp file
                yield read_json(path)


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
            stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%S")
            self.path = (
                self.directory
                / f"{socket.gethostname()}-{os.getpid()}-{stamp}-{time.monotonic_ns() % 10**6}.jsonl"
            )
        line = json.dumps(
            {"event": event, "time": now_iso(), **fields}, sort_keys=True, default=_json_default
        )
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, (line + "\n").encode("utf-8"))
        finally:
            os.close(fd)


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
        for case_id, n in read_json(path).items():
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
            name = read_json(method_json).get("name")
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


def make_record(
    *,
    run_id: str,
    method_label: str,
    method: dict[str, Any],
    case: Any,
    prompt_index: int,
    prompt: str,
    seed: int,
    video: str,
    metrics: dict[str, Any],
    backbone: dict[str, Any] | None,
    suite: str | None,
    timestamps: dict[str, str],
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One result row: which video, which case and prompt, every metric, and its provenance."""
    from .metrics import METRIC_FIELDS

    values = {name: metrics.get(name) for name in METRIC_FIELDS}
    return {
        "schema": SCHEMA_VERSION,
        "run_id": run_id,
        "suite": suite,
        "method": method_label,
        "method_name": method.get("name"),
        "identity": case.identity.name,
        "motion": case.motion.name,
        "case_id": case.case_id,
        "prompt_index": prompt_index,
        "prompt": prompt,
        "prompt_source": case.prompt_source,
        "seed": seed,
        "video": video,
        "metrics": values,
        "metric_versions": metrics.get("metric_versions", {}),
        "metric_constants": metrics.get("metric_constants", {}),
        "configs": {"method": method, "backbone": backbone},
        "versions": package_versions(),
        "git": git_revision(),
        "timestamps": timestamps,
        **(extra or {}),
    }
