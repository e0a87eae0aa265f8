"""The :class:`ResultStore`: one run's folder, its ``run.json`` and ``method.json`` metadata,
each shard's plan (``expected/``) and the records."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from ..errors import ConfigError, DataError
from ..io import (
    as_json,
    atomic_write_json,
    check_output_dir,
    create_exclusive_json,
    read_json,
    read_json_object,
)
from ..provenance import now_iso
from ..records import SCHEMA_VERSION, Record, check_row
from .case_dir import CaseDir
from .events import EventLog
from .names import check_label, check_name_length, name_max


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
        """Raise if ``run.json`` exists for another suite, profile, metrics profile or motion
        backend (reads only). A key run.json does not hold (written before it was recorded)
        accepts any."""
        path = self.run_dir / "run.json"
        if not path.is_file():
            return
        existing = read_json_object(path)
        for key in ("suite", "profile", "metrics_profile", "motion_backend"):
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
