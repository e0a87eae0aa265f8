"""The report's metric columns: which metric fields the tables show, in which order, how.

Everything the tables, plots and exports know about the metrics' columns is defined here
(fields, labels, directions, digits), so a metric declaration table can replace it in one edit.
Labels and directions come from the metric registry (:func:`dualreal_bench.metrics.get_metric`).
"""

from __future__ import annotations

import dataclasses

from ..metrics import get_metric
from .dynamics import DATASET_DEV

#: Table 1's metric columns, in the paper's order; dynamic degree carries its deviation.
TABLE_FIELDS = (
    "clip_t",
    "clip_i",
    "dino_i",
    "temporal_flickering",
    "temporal_consistency",
    "motion_smoothness",
    "dynamic_degree",
)
#: (field shown, field in parentheses and used for ranking): the dynamic degree with the
#: paper's signed deviation from the dataset average (:mod:`.dynamics`), ranked by |deviation|
PAIRED_FIELDS = {"dynamic_degree": DATASET_DEV}
#: fields aggregated into JSON/CSV but not shown in the printed tables: VBench's boolean
#: dynamic degree (averaged: the share of videos VBench calls moving) and the per-video
#: absolute deviation from the video's own motion's reference clips (averaged)
EXTRA_FIELDS = ("dynamic_degree_bool", "dynamic_degree_dev")
#: digits every table cell is printed (and ranked) at
DIGITS = 4
#: digits of the dynamic-degree column, as the paper prints it ("14.96 (+2.94)")
DD_DIGITS = 2
#: fields the report computes that are no metric of the registry: label, higher_is_better
#: (None: ranked by the absolute value, the closer to 0 the better)
DERIVED_FIELDS = {DATASET_DEV: ("DD dev. vs dataset", False)}


@dataclasses.dataclass(frozen=True)
class MetricMeta:
    label: str
    higher_is_better: bool | None


def metric_meta(field: str) -> MetricMeta:
    """Label and direction of ``field`` from the metric registry (:func:`dualreal_bench.metrics.get_metric`,
    which raises RegistryError with a "did you mean" for an unknown name), or of a field the
    report computes (:data:`DERIVED_FIELDS`)."""
    if field in DERIVED_FIELDS:
        return MetricMeta(*DERIVED_FIELDS[field])
    spec = get_metric(field)
    return MetricMeta(spec.label, spec.higher_is_better)


@dataclasses.dataclass(frozen=True)
class Column:
    field: str
    label: str
    higher_is_better: bool | None  # None: shown, not ranked
    digits: int = DIGITS
    paren: str | None = None  # a second field shown in parentheses ("0.5120 (0.0340)")
    rank_by: str | None = None  # the field whose direction ranks the column (default: field)
    rank_abs: bool = False  # rank by the absolute value of the rank field (a signed deviation)
    paren_signed: bool = False  # the value in parentheses printed with its sign ("+2.94")

    @property
    def rank_field(self) -> str:
        return self.rank_by or self.field

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(f for f in (self.field, self.paren, self.rank_by) if f))


def metric_columns() -> list[Column]:
    """Table 1's columns in the paper's order, directions from the metric registry.

    Dynamic degree is one column showing the degree with the paper's signed deviation from
    the dataset average in parentheses ("14.96 (+2.94)"), ranked by the deviation's absolute
    value, printed at the paper's two digits.
    """
    cols = []
    for f in TABLE_FIELDS:
        meta = metric_meta(f)
        if f in PAIRED_FIELDS:
            dev = PAIRED_FIELDS[f]
            cols.append(
                Column(
                    f,
                    f"{meta.label} (dev.)",
                    metric_meta(dev).higher_is_better,
                    digits=DD_DIGITS,
                    paren=dev,
                    rank_by=dev,
                    rank_abs=True,
                    paren_signed=True,
                )
            )
        else:
            cols.append(Column(f, meta.label, meta.higher_is_better))
    return cols


def column_fields(columns: list[Column] | tuple[Column, ...]) -> list[str]:
    """Every field the columns show or rank by, once, in column order."""
    return list(dict.fromkeys(f for c in columns for f in c.fields))


#: every field the plots draw a bar for: the table's columns and their paired fields
BAR_FIELDS = (*TABLE_FIELDS, *PAIRED_FIELDS.values())
