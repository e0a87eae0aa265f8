"""Data out of a run: every video as a row, and a leaderboard a website or a paper script reads.

* :func:`per_video_rows` — one flat row per record (per generated video): who made it (run,
  method label, its registered name and variant key, the method's options), what it shows
  (identity, motion, case, prompt index and text, seed, video path), every metric, and what
  it was made and measured with (suite, profile, backbone settings, seeds, metric versions and
  constants, package versions, git commit, timestamps). Nested record fields become dotted
  columns (``method_config.num_groups``, ``versions.torch``, ``metric_constants.encoders.flow``);
  lists become JSON text. ``long=True`` gives one row per (video, metric) instead, with
  ``metric``, ``value`` and ``higher_is_better`` columns (seaborn's and ggplot's shape).
* :func:`write_rows` — those rows as CSV, JSON or Parquet (through pandas; Parquet needs
  pyarrow: ``pip install 'dualreal-bench[parquet]'``).
* :func:`leaderboard` — one row per method label (variant) per run: every metric's
  aggregate exactly as the tables compute it (mean over each case's videos, then over cases),
  its spread over cases, counts, completeness and rank, with the run, suite, profile and the
  versions behind it. Schema: :data:`LEADERBOARD_FORMAT` version :data:`LEADERBOARD_VERSION`.
"""

from __future__ import annotations

import datetime as _dt
import importlib.util
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .._version import __version__
from ..errors import ConfigError, RegistryError
from ..io import atomic_path, atomic_write_text
from ..metrics import metric_fields
from ..store import expected_videos
from .aggregate import Cell, aggregate
from .columns import DIGITS, Column, column_fields, extra_fields, metric_columns, metric_meta
from .paper import row_order_key
from .tables import Report, split_tables
from .variants import method_variants

EXPORT_FORMATS = ("csv", "json", "parquet")

#: the record's identifying fields, first in every row, in this order
ID_COLUMNS = (
    "run_id",
    "suite",
    "profile",
    "method",
    "method_name",
    "variant",
    "identity",
    "motion",
    "case_id",
    "prompt_index",
    "prompt",
    "prompt_source",
    "seed",
    "video",
)
#: nested record fields flattened into dotted columns: (path in the record, column prefix)
NESTED = (
    (("configs", "method", "config"), "method_config"),
    (("configs", "backbone"), "backbone"),
    (("run_config",), "run_config"),
    (("seeds",), "seeds"),
    (("metric_versions",), "metric_version"),
    (("metric_constants",), "metric_constants"),
    (("metric_details",), "metric_details"),
    (("versions",), "versions"),
    (("git",), "git"),
    (("timestamps",), "timestamps"),
)
#: flattened subtrees left out: the backbone's full architecture and scheduler configs, each
#: reference clip's dynamic degree (their mean stays: ``metric_constants.dd_reference.mean``)
#: and a video's cosine to every motion (its nearest motion and rank stay)
EXCLUDED = (
    "backbone.transformer",
    "backbone.scheduler",
    "metric_constants.dd_reference.clips",
    "metric_details.motion_fidelity.similarities",
)

LEADERBOARD_FORMAT = "dualreal-bench-leaderboard"
LEADERBOARD_VERSION = 1
#: digits at which two means tie for a rank (the tables' precision)
RANK_DIGITS = DIGITS


# ---- per video ----------------------------------------------------------------------------


def _get(record: Mapping[str, Any], path: Sequence[str]) -> Any:
    node: Any = record
    for key in path:
        if not isinstance(node, Mapping):
            return None
        node = node.get(key)
    return node


def _flatten(value: Any, prefix: str, out: dict[str, Any]) -> None:
    if prefix in EXCLUDED:
        return
    if isinstance(value, Mapping):
        for key in sorted(value):
            _flatten(value[key], f"{prefix}.{key}", out)
    elif isinstance(value, list | tuple):
        out[prefix] = json.dumps(value, sort_keys=True)
    else:
        out[prefix] = value


def metric_names(records: Iterable[Mapping[str, Any]]) -> list[str]:
    """The registry's metric fields in their order, then any other metric the records carry."""
    seen = {k for r in records for k in (r.get("metrics") or {})}
    fields = metric_fields()
    return [*fields, *sorted(seen - set(fields))]


def per_video_rows(
    records: Sequence[Mapping[str, Any]], *, long: bool = False
) -> list[dict[str, Any]]:
    """One flat row per record (see the module's docstring), in the tables' method order, then
    by case, prompt and seed. ``long``: one row per (record, metric) instead."""
    variants = method_variants(records)
    order = row_order_key(records)
    metrics = metric_names(records)
    rows = []
    for rec in sorted(
        records,
        key=lambda r: (order(r["method"]), r["case_id"], r["prompt_index"], r["seed"]),
    ):
        ids = {k: rec.get(k) for k in ID_COLUMNS}
        ids["variant"] = variants[rec["method"]].key
        values = {m: (rec.get("metrics") or {}).get(m) for m in metrics}
        extra: dict[str, Any] = {}
        for path, prefix in NESTED:
            node = _get(rec, path)
            if node is not None:
                _flatten(node, prefix, extra)
        if not long:
            rows.append({**ids, **values, **extra})
            continue
        for m in metrics:
            value = values[m]
            rows.append(
                {
                    **ids,
                    "metric": m,
                    "value": None if value is None else float(value),
                    "higher_is_better": _direction(m),
                    **extra,
                }
            )
    return _uniform_columns(rows)


def _direction(field: str) -> bool | None:
    try:
        return metric_meta(field).higher_is_better
    except RegistryError:
        return None


def _uniform_columns(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Columns holding values of different kinds across methods (an option that is a number for
    one method and text for another) become text, so every column has one type (Parquet needs it)."""
    kinds: dict[str, set[str]] = {}
    for row in rows:
        for k, v in row.items():
            if v is not None:
                kind = "number" if isinstance(v, int | float) and not isinstance(v, bool) else None
                kinds.setdefault(k, set()).add(kind or type(v).__name__)
    mixed = {k for k, ks in kinds.items() if len(ks) > 1}
    if mixed:
        for row in rows:
            for k in mixed & row.keys():
                if row[k] is not None and not isinstance(row[k], str):
                    row[k] = json.dumps(row[k])
    return rows


def _columns(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    return list(dict.fromkeys(k for r in rows for k in r))


def require_parquet() -> None:
    if importlib.util.find_spec("pyarrow") is None:
        raise ConfigError(
            "--format parquet needs pyarrow, which is not installed: "
            "pip install 'dualreal-bench[parquet]' (or pip install pyarrow)"
        )


def rows_frame(rows: Sequence[Mapping[str, Any]]):
    """``rows`` as a pandas DataFrame, every column present in every row (missing: None/NaN)."""
    import pandas as pd

    return pd.DataFrame(list(rows), columns=_columns(rows))


def rows_text(rows: Sequence[Mapping[str, Any]], fmt: str) -> str:
    """``rows`` as CSV (pandas, full float precision) or JSON (a list of objects) text."""
    if fmt == "json":
        return json.dumps(list(rows), indent=1, default=str) + "\n"
    if fmt == "csv":
        return rows_frame(rows).to_csv(index=False, lineterminator="\n")
    raise ConfigError(f"--format {fmt!r}: as text, choose csv or json")


def write_rows(rows: Sequence[Mapping[str, Any]], fmt: str, path: str | Path) -> Path:
    """Write ``rows`` to ``path`` as ``fmt`` (csv, json, parquet), atomically."""
    if fmt not in EXPORT_FORMATS:
        raise ConfigError(f"--format {fmt!r}: choose one of {', '.join(EXPORT_FORMATS)}")
    path = Path(path)
    if fmt == "parquet":
        require_parquet()
        with atomic_path(path) as tmp:
            rows_frame(rows).to_parquet(tmp, engine="pyarrow", index=False)
        return path
    atomic_write_text(path, rows_text(rows, fmt))
    return path


# ---- leaderboard -----------------------------------------------------------------------------


def _agreed(dicts: Iterable[Mapping[str, Any] | None]) -> dict[str, Any]:
    """key -> the value every dict agrees on, or the sorted list of its distinct values."""
    seen: dict[str, list[Any]] = {}
    for d in dicts:
        for k, v in (d or {}).items():
            vals = seen.setdefault(k, [])
            if v not in vals:
                vals.append(v)
    return {
        k: vals[0] if len(vals) == 1 else sorted(vals, key=lambda v: json.dumps(v, sort_keys=True))
        for k, vals in sorted(seen.items())
    }


def _ranks(
    rows: list[dict[str, Any]], field: str, higher_is_better: bool, absolute: bool = False
) -> None:
    """Competition ranks (1 = best; equal at :data:`RANK_DIGITS` share a rank) of ``field``
    (of its absolute value with ``absolute``) among the complete rows of each (suite,
    profile, metric version of ``field``): rows measured by different definitions or encoders
    are not ranked against each other; other rows get None."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for row in rows:
        version = json.dumps((row.get("metric_versions") or {}).get(field), sort_keys=True)
        groups.setdefault((row["suite"], row["profile"], version), []).append(row)
    for group in groups.values():
        ok = [
            r
            for r in group
            if r["metrics"][field]["complete"] and r["metrics"][field]["mean"] is not None
        ]
        values = [round(r["metrics"][field]["mean"], RANK_DIGITS) for r in ok]
        if absolute:
            values = [abs(v) for v in values]
        for r, v in zip(ok, values, strict=True):
            better = sum(1 for w in values if (w > v if higher_is_better else w < v))
            r["metrics"][field]["rank"] = better + 1


def _cell_dict(cell: Cell) -> dict[str, Any]:
    return {
        "mean": cell.mean,
        "case_std": cell.case_std,
        "n_videos": cell.n_videos,
        "n_cases": cell.n_cases,
        "complete": cell.complete,
        "rank": None,
    }


def _board_rows(rep: Report, columns: Sequence[Column]) -> list[dict[str, Any]]:
    """The leaderboard's rows of one run: one per method label, in the tables' order."""
    table = aggregate(rep.records, columns, expected_videos(rep.run_dir.parent, rep.run_id))
    shown = column_fields(list(columns))
    variants = method_variants(rep.records)
    tables = {tid: dict(r) for tid, r in split_tables(rep.records).items()}
    by_label: dict[str, list[Mapping[str, Any]]] = {}
    for rec in rep.records:
        by_label.setdefault(rec["method"], []).append(rec)
    rows = []
    for label in table.rows:
        recs = by_label[label]
        cells = {f: table.cells[(label, f)] for f in [*shown, *table.extra_fields]}
        configs = recs[0].get("configs") or {}
        backbone = configs.get("backbone") or {}
        rows.append(
            {
                "run_id": rep.run_id,
                "suite": rep.suite,
                "profile": rep.profile,
                "method": label,
                "method_name": variants[label].name,
                "variant": variants[label].key,
                "paper_tables": [tid for tid, labels in tables.items() if label in labels],
                "metrics": {f: _cell_dict(c) for f, c in cells.items()},
                # as the tables' "n" column: the videos behind the row / expected
                "n_videos": max(cells[f].n_videos for f in shown),
                "expected_videos": table.expected(label),
                "n_cases": max(cells[f].n_cases for f in shown),
                # the average the dynamic-degree deviation is taken from
                "dynamic_degree_dataset_avg": (
                    table.dataset_dd[label].mean if label in table.dataset_dd else None
                ),
                "complete": all(cells[f].complete for f in shown),
                "method_config": (configs.get("method") or {}).get("config"),
                "backbone": {
                    k: backbone.get(k)
                    for k in ("profile", "description", "model_dir", "random_init")
                    if k in backbone
                },
                "metric_versions": _agreed(r.get("metric_versions") for r in recs),
                "encoders": _agreed(
                    (r.get("metric_constants") or {}).get("encoders") for r in recs
                ),
                "versions": _agreed(r.get("versions") for r in recs),
                "git": _agreed(r.get("git") for r in recs),
            }
        )
    return rows


def _metric_entries(columns: Sequence[Column]) -> list[dict[str, Any]]:
    """The leaderboard's metrics: field, label, direction, whether ranked, whether extra."""
    extra = extra_fields()
    return [
        {
            "field": f,
            "label": metric_meta(f).label,
            "higher_is_better": metric_meta(f).higher_is_better,
            "ranked": any(c.higher_is_better is not None and c.rank_field == f for c in columns),
            "extra": f in extra,
        }
        for f in dict.fromkeys([*column_fields(list(columns)), *extra])
    ]


def leaderboard(reports: Sequence[Report]) -> dict[str, Any]:
    """One row per method label per run (see the module's docstring) as a JSON-ready dict."""
    columns = metric_columns()
    rows = [row for rep in reports for row in _board_rows(rep, columns)]
    for col in columns:
        if col.higher_is_better is not None:
            _ranks(rows, col.rank_field, col.higher_is_better, col.rank_abs)
    return {
        "format": LEADERBOARD_FORMAT,
        "format_version": LEADERBOARD_VERSION,
        "generated": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "generator": {"dualreal-bench": __version__},
        "aggregation": "mean over each case's videos, then over cases; case_std: population "
        "std of the per-case means; rank: 1 = best among the complete rows of the same suite, "
        f"profile and metric version, equal at {RANK_DIGITS} digits share a rank, dynamic degree ranked by "
        "the absolute value of its deviation from the dataset average (the paper's: the row's "
        "mean dynamic degree minus the mean of the reference clips of the run's motions)",
        "metrics": _metric_entries(columns),
        "runs": [{"run_id": r.run_id, "suite": r.suite, "profile": r.profile} for r in reports],
        "rows": rows,
    }


def leaderboard_text(reports: Sequence[Report]) -> str:
    return json.dumps(leaderboard(reports), indent=2, allow_nan=False) + "\n"


__all__ = [
    "EXPORT_FORMATS",
    "LEADERBOARD_FORMAT",
    "LEADERBOARD_VERSION",
    "leaderboard",
    "leaderboard_text",
    "per_video_rows",
    "rows_frame",
    "rows_text",
    "write_rows",
]
