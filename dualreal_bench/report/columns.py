"""The report's metric columns: which metric fields the tables show, in which order, how.

Everything the tables, plots and exports know about the metrics' columns comes from the
metric declarations (:mod:`dualreal_bench.metrics.declarations`: labels, directions, digits,
which fields are columns, shown in parentheses, or only exported), read when called, so a
declared metric shows up here without an edit.
"""

from __future__ import annotations

import dataclasses

from ..metrics.declarations import DEFAULT_DIGITS, MetricDeclaration, declared, get_metric

#: digits a table cell is printed (and ranked) at unless the metric's declaration says otherwise
DIGITS = DEFAULT_DIGITS


def table_fields() -> tuple[str, ...]:
    """Table 1's metric columns, in declaration (the paper's) order."""
    return tuple(d.name for d in declared().values() if d.table == "column")


def paired_fields() -> dict[str, str]:
    """``{field shown: field in parentheses, used for ranking}`` (dynamic degree: its deviation)."""
    return {d.name: d.paren for d in declared().values() if d.paren}


def extra_fields() -> tuple[str, ...]:
    """Fields aggregated into JSON/CSV but not shown in the printed tables (VBench's boolean
    dynamic degree: averaged, the share of videos VBench calls moving)."""
    return tuple(d.name for d in declared().values() if d.table == "hidden")


def bar_fields() -> tuple[str, ...]:
    """Every field the plots draw a bar for: the table's columns and their paired fields."""
    return (*table_fields(), *paired_fields().values())


#: the built-in declarations' fields (the functions above read the current declarations)
TABLE_FIELDS = table_fields()
PAIRED_FIELDS = paired_fields()
EXTRA_FIELDS = extra_fields()
BAR_FIELDS = bar_fields()


@dataclasses.dataclass(frozen=True)
class MetricMeta:
    label: str
    higher_is_better: bool | None


def metric_meta(field: str) -> MetricMeta:
    """Label and direction of ``field`` from its declaration (:func:`get_metric` raises
    RegistryError with a "did you mean" for an unknown name)."""
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
    in_paper: bool = True  # False: a measure the paper does not report (an addition)
    rank_abs: bool = False  # rank by the absolute value of the rank field (a signed deviation)
    paren_signed: bool = False  # the value in parentheses printed with its sign ("+2.94")

    @property
    def rank_field(self) -> str:
        return self.rank_by or self.field

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(f for f in (self.field, self.paren, self.rank_by) if f))


def _column(d: MetricDeclaration) -> Column:
    if d.paren is None:
        return Column(d.name, d.label, d.higher_is_better, d.digits, in_paper=d.in_paper)
    dev = get_metric(d.paren)
    short = dev.label.removeprefix(d.label + " ")  # "DD" + "DD dev." -> "DD (dev.)"
    return Column(
        d.name,
        f"{d.label} ({short})",
        dev.higher_is_better,
        d.digits,
        paren=dev.name,
        rank_by=dev.name,
        in_paper=d.in_paper,
        rank_abs=dev.signed,
        paren_signed=dev.signed,
    )


def metric_columns() -> list[Column]:
    """Table 1's columns in the paper's order, directions from the declarations.

    Dynamic degree is one column showing the degree with the paper's signed deviation from
    the dataset average in parentheses ("14.96 (+2.94)"), ranked by the deviation's absolute
    value, printed at the paper's two digits.
    """
    return [_column(d) for d in declared().values() if d.table == "column"]


def column_fields(columns: list[Column] | tuple[Column, ...]) -> list[str]:
    """Every field the columns show or rank by, once, in column order."""
    return list(dict.fromkeys(f for c in columns for f in c.fields))
