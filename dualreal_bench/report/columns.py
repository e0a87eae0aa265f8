"""The report's metric columns: which metric fields the tables show, in which order, how.

Everything the tables, plots and exports know about the metrics' columns is defined here
(fields, labels, directions, digits), so a metric declaration table can replace it in one edit.
Labels and directions come from the metric registry (:func:`dualreal_bench.metrics.get_metric`).
"""

from __future__ import annotations

import dataclasses

from ..metrics import get_metric

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
#: (field shown, field in parentheses and used for ranking)
PAIRED_FIELDS = {"dynamic_degree": "dynamic_degree_dev"}
#: fields aggregated into JSON/CSV but not shown in the printed tables (VBench's boolean
#: dynamic degree: averaged, the share of videos VBench calls moving)
EXTRA_FIELDS = ("dynamic_degree_bool",)
#: digits every table cell is printed (and ranked) at
DIGITS = 4


@dataclasses.dataclass(frozen=True)
class MetricMeta:
    label: str
    higher_is_better: bool | None


def metric_meta(field: str) -> MetricMeta:
    """Label and direction of ``field`` from the metric registry (:func:`dualreal_bench.metrics.get_metric`,
    which raises RegistryError with a "did you mean" for an unknown name)."""
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

    @property
    def rank_field(self) -> str:
        return self.rank_by or self.field

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(f for f in (self.field, self.paren, self.rank_by) if f))


def metric_columns() -> list[Column]:
    """Table 1's columns in the paper's order, directions from the metric registry.

    Dynamic degree is one column showing the degree with its deviation from the motion's
    reference clips in parentheses, ranked by the deviation.
    """
    cols = []
    for f in TABLE_FIELDS:
        meta = metric_meta(f)
        if f in PAIRED_FIELDS:
            dev = PAIRED_FIELDS[f]
            dmeta = metric_meta(dev)
            short = dmeta.label.removeprefix(meta.label + " ")  # "DD" + "DD dev." -> "DD (dev.)"
            cols.append(
                Column(
                    f,
                    f"{meta.label} ({short})",
                    dmeta.higher_is_better,
                    paren=dev,
                    rank_by=dev,
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
