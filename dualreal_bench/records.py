"""The result record: one JSON file per generated video, its schema as a typed class.

A record says which video it scores (run, method label, case, prompt, seed), every metric
value, and the provenance needed to compare or reproduce it (metric versions and constants,
the method's and backbone's resolved configs, package versions, git revision, timestamps).
:func:`make_record` builds one from values the caller computed: this module imports no metric
and no method, only :mod:`.provenance` for the package versions and git revision.

:class:`Record` validates itself: every schema key present with the declared type, every
metric value a finite number (``bool`` for decisions such as VBench's dynamic degree). A NaN,
an infinity, a string or a null is an error naming the field, never written and never silently
dropped: a metric that could not be computed leaves no record, so a table never averages a
metric over fewer videos than its row counts. :func:`record_problem` says why a stored record
is not a finished one (what a resumed run redoes). Keys beyond the schema (the
runner's ``run_config``, ``seeds``, ``determinism``...) are kept in :attr:`Record.extra` and
written at the top level, so ``Record.from_dict(d).to_dict() == d``.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import types
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import DataError
from .io import read_json
from .provenance import git_revision, package_versions

if TYPE_CHECKING:
    from .spec import Case

#: version of the record layout (and of ``run.json``); bump on an incompatible change
SCHEMA_VERSION = 1
#: the keys every result row has, whoever wrote it: what a table groups and averages by
ROW_KEYS = ("method", "case_id", "prompt_index", "seed", "metrics")

MetricValue = float | int | bool


@dataclasses.dataclass(frozen=True)
class Record:
    """One result row (see the module docstring). ``method`` is the store label of the method
    variant (its folder); ``configs["method"]`` is what the constructed method described of
    itself (:meth:`~dualreal_bench.method.Method.describe`), ``configs["backbone"]`` the
    backbone's description (None when unknown, e.g. external videos)."""

    schema: int
    run_id: str
    suite: str | None
    method: str
    method_name: str | None
    identity: str
    motion: str
    case_id: str
    prompt_index: int
    prompt: str
    prompt_source: str | None
    seed: int
    video: str
    metrics: dict[str, MetricValue]
    metric_versions: dict[str, Any]
    metric_constants: dict[str, Any]
    configs: dict[str, Any]
    versions: dict[str, Any]
    git: dict[str, Any] | None
    timestamps: dict[str, Any]
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, hint in _field_types().items():
            _check_type(name, getattr(self, name), hint)
        check_metrics(self.metrics)
        clash = sorted(set(self.extra) & set(schema_keys()))
        if clash:
            raise DataError(f"extra key(s) {', '.join(clash)} shadow the record's own fields")

    @property
    def method_description(self) -> dict[str, Any]:
        """``configs["method"]``: the method's own description (empty if none was stored)."""
        return dict(self.configs.get("method") or {})

    @property
    def key(self) -> tuple[str, str, int, int]:
        """``(method label, case id, prompt index, seed)``: unique within a run."""
        return (self.method, self.case_id, self.prompt_index, self.seed)

    def to_dict(self) -> dict[str, Any]:
        """The JSON document of the record (extras at the top level)."""
        out = {name: getattr(self, name) for name in schema_keys()}
        return {**out, **self.extra}

    @classmethod
    def from_dict(cls, data: Any, *, source: str = "record") -> Record:
        """Parse and validate a record document; DataError naming ``source`` and the field."""
        if not isinstance(data, Mapping):
            raise DataError(f"{source}: a record is a JSON object, found {type(data).__name__}")
        missing = [k for k in schema_keys() if k not in data]
        if missing:
            raise DataError(f"{source}: record lacks the key(s) {', '.join(missing)}")
        known = {k: data[k] for k in schema_keys()}
        extra = {k: v for k, v in data.items() if k not in known}
        try:
            return cls(**known, extra=extra)
        except DataError as exc:
            raise DataError(f"{source}: {exc}") from None


@functools.cache
def schema_keys() -> tuple[str, ...]:
    """The record's own keys, in schema order (everything but :attr:`Record.extra`)."""
    return tuple(f.name for f in dataclasses.fields(Record) if f.name != "extra")


@functools.cache
def _field_types() -> dict[str, Any]:
    return typing.get_type_hints(Record)


def _check_type(name: str, value: Any, hint: Any) -> None:
    """Raise DataError unless ``value`` is of the field's declared type (the container's type
    for ``dict[...]``; an ``int`` field takes no ``bool``)."""
    union = typing.get_origin(hint) in (typing.Union, types.UnionType)
    for tp in typing.get_args(hint) if union else (hint,):
        if tp is type(None):
            if value is None:
                return
            continue
        base = typing.get_origin(tp) or tp
        if isinstance(value, base) and not (base is int and isinstance(value, bool)):
            return
    raise DataError(f"field {name!r} is {value!r} ({type(value).__name__}), expected {hint}")


def check_metrics(metrics: Any) -> None:
    """Raise DataError unless ``metrics`` maps names to finite numbers or booleans."""
    if not isinstance(metrics, Mapping):
        raise DataError(f"field 'metrics' is {metrics!r}, expected an object of metric values")
    for name, value in metrics.items():
        if isinstance(value, bool):
            continue
        if isinstance(value, int | float) and math.isfinite(value):
            continue
        raise DataError(f"metrics.{name} = {_short(value)}: not a finite number or a boolean")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check_row(data: Any, *, source: str = "record") -> dict[str, Any]:
    """The light check readers apply to every stored row (records written by hand or by older
    versions included): a JSON object with the :data:`ROW_KEYS` and valid metric values.
    Returns ``data``; DataError naming ``source`` and the field otherwise."""
    if not isinstance(data, dict):
        raise DataError(f"{source}: a record is a JSON object, found {type(data).__name__}")
    missing = [k for k in ROW_KEYS if k not in data]
    if missing:
        raise DataError(f"{source}: record lacks the key(s) {', '.join(missing)}")
    try:
        check_metrics(data["metrics"])
    except DataError as exc:
        raise DataError(f"{source}: {exc}") from None
    return data


def read_record(path: str | Path) -> Record:
    """The record stored at ``path``, parsed and validated (DataError naming the file)."""
    return Record.from_dict(read_json(Path(path)), source=str(path))


def record_problem(
    path: str | Path,
    *,
    fields: Iterable[str] = (),
    key: tuple[str, str, int, int] | None = None,
) -> str | None:
    """Why the record at ``path`` is not a finished one, or None if it is: it parses, it is a
    valid :class:`Record`, it holds every metric of ``fields`` (the evaluator's) and, with
    ``key``, it is the record of that ``(method label, case id, prompt index, seed)``. A
    missing file is ``"missing"``. The message names the file."""
    path = Path(path)
    if not path.is_file():
        return "missing"
    try:
        record = read_record(path)
    except DataError as exc:
        return str(exc)
    lacking = [f for f in fields if f not in record.metrics]
    if lacking:
        return f"{path}: record lacks the metric(s) {', '.join(lacking)}"
    if key is not None and record.key != tuple(key):
        return f"{path}: holds the record of {record.key}, not of {tuple(key)}"
    return None


def make_record(
    *,
    run_id: str,
    method_label: str,
    method: Mapping[str, Any],
    case: Case,
    prompt_index: int,
    prompt: str,
    seed: int,
    video: str,
    metric_values: Mapping[str, MetricValue],
    metric_versions: Mapping[str, Any] | None = None,
    metric_constants: Mapping[str, Any] | None = None,
    backbone: Mapping[str, Any] | None,
    suite: str | None,
    timestamps: Mapping[str, str],
    extra: Mapping[str, Any] | None = None,
) -> Record:
    """One result row: which video, which case and prompt, every metric, and its provenance.

    ``method``: the method's description (:meth:`~dualreal_bench.method.Method.describe`);
    ``metric_values``: field -> value, every field the evaluator declares (a value that could
    not be computed is an error, not a record); ``metric_versions`` / ``metric_constants``:
    what the evaluator reports of its definitions; ``extra``: further top-level keys.
    """
    return Record(
        schema=SCHEMA_VERSION,
        run_id=run_id,
        suite=suite,
        method=method_label,
        method_name=method.get("name"),
        identity=case.identity.name,
        motion=case.motion.name,
        case_id=case.case_id,
        prompt_index=prompt_index,
        prompt=prompt,
        prompt_source=case.prompt_source,
        seed=seed,
        video=video,
        metrics=dict(metric_values),
        metric_versions=dict(metric_versions or {}),
        metric_constants=dict(metric_constants or {}),
        configs={"method": dict(method), "backbone": None if backbone is None else dict(backbone)},
        versions=package_versions(),
        git=git_revision(),
        timestamps=dict(timestamps),
        extra=dict(extra or {}),
    )
