"""The paper's dynamic-degree deviation: a row's mean dynamic degree minus the dataset's average.

The paper's Tables 1-2 print each row's dynamic degree with a deviation in parentheses: "The
motion datasets achieve an average Dynamic Degree of 12.02 [9.04 on the ablation subset], and
parenthetical values quantify the current method's deviation from this benchmark". The
deviation is signed and taken between averages (14.96 - 12.02 = +2.94), not a mean of
per-video differences. Here:

* the *dataset average* of a table is the mean dynamic degree of the reference clips of the
  motions of its cases, each clip once (a motion that several pairs share counts once), as
  the evaluator scored them: the same RAFT pass, sampling and size as the generated videos.
  Every record carries its motion's clip values (``metric_constants.dd_reference.clips``),
  so nothing is recomputed;
* a row's deviation (:data:`DATASET_DEV`) is its mean dynamic degree (mean over each case's
  videos, then over cases) minus that average; the tables rank it by its absolute value.

The records' own ``dynamic_degree_dev`` is another quantity: each video's absolute difference
from its own motion's reference mean, averaged (a secondary field of the JSON/CSV output).

A row's reference clips are the values its own records carry; motions it has no record of
yet take the values other rows' records carry. Rows whose videos were scored alike (one
metric profile, one video size: every run of the benchmark) therefore share one average; a
table whose rows disagree (videos of other sizes added with ``evaluate``) gives each row its
own and says so.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

#: the report's field of the paper's deviation (``benchmark/paper_results.json`` uses it too)
DATASET_DEV = "dynamic_degree_dataset_dev"
#: the field the deviation is taken of
DD_FIELD = "dynamic_degree"


@dataclasses.dataclass(frozen=True)
class DatasetDD:
    """The average dynamic degree of the reference clips of a set of motions."""

    mean: float | None
    n_clips: int
    motions: tuple[str, ...]  # motions whose clips make the mean
    missing: tuple[str, ...]  # motions of the cases no record has reference values of

    @property
    def complete(self) -> bool:
        return self.mean is not None and not self.missing

    def describe(self, digits: int = 2) -> str:
        """ "12.02 (48 reference clips of 21 motions)" ."""
        if self.mean is None:
            return "unknown (the records carry no reference-clip values)"
        clips = f"{self.n_clips} reference clip{'s' if self.n_clips != 1 else ''}"
        motions = f"{len(self.motions)} motion{'s' if len(self.motions) != 1 else ''}"
        text = f"{self.mean:.{digits}f} ({clips} of {motions}"
        if self.missing:
            text += f"; none yet for {', '.join(self.missing)}"
        return text + ")"


def record_references(record: Mapping[str, Any]) -> tuple[str, dict[str, float]] | None:
    """``(motion, {clip file name: dynamic degree})`` a record carries, or None."""
    ref = (record.get("metric_constants") or {}).get("dd_reference") or {}
    clips = ref.get("clips")
    if not isinstance(clips, Mapping) or not clips:
        return None
    values = {}
    for name, value in clips.items():
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            values[str(name)] = float(value)
    motion = ref.get("motion") or record.get("motion")
    return (str(motion), values) if values else None


def _references(records: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, float]]:
    """motion -> clip -> value, the first value seen of each clip."""
    out: dict[str, dict[str, float]] = {}
    for rec in records:
        found = record_references(rec)
        if found is None:
            continue
        motion, clips = found
        per = out.setdefault(motion, {})
        for name, value in clips.items():
            per.setdefault(name, value)
    return out


def dataset_average(
    references: Mapping[str, Mapping[str, float]], motions: Iterable[str]
) -> DatasetDD:
    """The mean over every clip of ``motions`` in ``references`` (motion -> clip -> value)."""
    motions = sorted(set(motions))
    values = [v for m in motions for v in (references.get(m) or {}).values()]
    have = tuple(m for m in motions if references.get(m))
    missing = tuple(m for m in motions if not references.get(m))
    mean = sum(values) / len(values) if values else None
    return DatasetDD(mean, len(values), have, missing)


def row_dataset_averages(
    records: Sequence[Mapping[str, Any]], rows: Iterable[str], motions: Iterable[str]
) -> dict[str, DatasetDD]:
    """method label -> the dataset average of ``motions`` as the row's records scored the
    clips (motions it has no records of: as the other rows' records did)."""
    pooled = _references(records)
    by_row: dict[str, list[Mapping[str, Any]]] = {}
    for rec in records:
        by_row.setdefault(rec["method"], []).append(rec)
    motions = list(motions)
    out = {}
    for row in rows:
        own = _references(by_row.get(row, []))
        merged = {m: own.get(m) or pooled.get(m) or {} for m in set(pooled) | set(own)}
        out[row] = dataset_average(merged, motions)
    return out


def case_motion(case_id: str, records_by_case: Mapping[str, Mapping[str, Any]]) -> str:
    """The motion of a case: its records', else the part of the id after ``__``."""
    rec = records_by_case.get(case_id)
    if rec is not None and rec.get("motion"):
        return str(rec["motion"])
    return case_id.partition("__")[2]


__all__ = [
    "DATASET_DEV",
    "DD_FIELD",
    "DatasetDD",
    "case_motion",
    "dataset_average",
    "record_references",
    "row_dataset_averages",
]
