"""One declaration per metric field: everything the rest of the benchmark knows about it.

The evaluator's output fields, the records' metric fields, the versions stored with every
record and the report's columns (labels, directions, digits, which fields the printed tables
show) are all read from :data:`DECLARATIONS`. Adding a metric is one declaration here plus its
computation in :meth:`~dualreal_bench.metrics.evaluator.Evaluator.evaluate_videos` (which
refuses to score a video while a declared field has no computation).

Functions read :data:`DECLARATIONS` when called, so a declaration added at run time (a plug-in,
a test) is seen everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..errors import ConfigError
from ..registry import unknown_name_error

__all__ = [
    "DECLARATIONS",
    "DEFAULT_DIGITS",
    "MetricDeclaration",
    "declared",
    "get_metric",
    "metric_fields",
]

#: digits a table prints (and ranks) a metric at unless its declaration says otherwise
DEFAULT_DIGITS = 4


@dataclass(frozen=True)
class MetricDeclaration:
    """What a metric field is, for the evaluator, the records and the report."""

    #: the field in every record (``record["metrics"][name]``) and in the evaluator's output
    name: str
    #: short column header ("CLIP-T")
    label: str
    #: direction: True if a larger value is better (the report ranks by it)
    higher_is_better: bool
    #: version of the definition, stored with every record
    version: str
    #: ``"text"``, ``"identity"`` or ``"motion"``
    group: Literal["text", "identity", "motion"]
    #: one line: what is computed, from which network
    description: str
    #: True for the measures the DualReal paper reports; others are labelled additions
    in_paper: bool = True
    #: how the report's tables show it: its own ``"column"``; ``"paren"``: in parentheses in
    #: the column of the declaration whose ``paren`` names it; ``"hidden"``: aggregated into
    #: JSON/CSV exports but not printed
    table: Literal["column", "paren", "hidden"] = "column"
    #: a field shown in parentheses in this column, which also ranks it ("0.5120 (0.0340)")
    paren: str | None = None
    #: digits a table prints and ranks the value at
    digits: int = DEFAULT_DIGITS
    #: False for a field the report derives from a table row's averages (the paper's signed
    #: dynamic-degree deviation): the evaluator does not output it and records do not hold it
    per_video: bool = True
    #: a signed deviation: printed with its sign ("+2.94") and ranked by its absolute value
    signed: bool = False

    def __post_init__(self) -> None:
        if self.group not in ("text", "identity", "motion"):
            raise ConfigError(
                f"metric {self.name!r}: group {self.group!r} is not text/identity/motion"
            )
        if self.table not in ("column", "paren", "hidden"):
            raise ConfigError(f"metric {self.name!r}: table={self.table!r}")
        if self.paren is not None and self.table != "column":
            raise ConfigError(f"metric {self.name!r}: only a column can show a paren field")


#: the paper's seven metrics (nine fields), in Table 1's order
DECLARATIONS: tuple[MetricDeclaration, ...] = (
    MetricDeclaration(
        "clip_t",
        "CLIP-T",
        True,
        "1.0",
        "text",
        "mean cos(prompt, frame), OpenAI CLIP ViT-B/32",
    ),
    MetricDeclaration(
        "clip_i",
        "CLIP-I",
        True,
        "1.0",
        "identity",
        "mean cos(frame, reference image), open_clip ViT-B-32-quickgelu laion400m_e32",
    ),
    MetricDeclaration(
        "dino_i",
        "DINO-I",
        True,
        "1.0",
        "identity",
        "mean cos(frame, reference image), DINO ViT-S/16 CLS token",
    ),
    MetricDeclaration(
        "temporal_flickering",
        "T-Flicker",
        True,
        "vbench-0.1.5",
        "motion",
        "(255 - mean MAE of consecutive frames) / 255",
    ),
    MetricDeclaration(
        "temporal_consistency",
        "T-Cons",
        True,
        "1.0",
        "motion",
        "mean cos of consecutive frames, laion400m CLIP",
    ),
    MetricDeclaration(
        "motion_smoothness",
        "Motion Smooth.",
        True,
        "vbench-0.1.5",
        "motion",
        "(255 - MAE of odd frames vs AMT-S midpoints) / 255",
    ),
    MetricDeclaration(
        "dynamic_degree",
        "DD",
        True,
        "1.0",
        "motion",
        "mean over ~8 fps frame pairs of the top-5% RAFT flow magnitude (px)",
        paren="dynamic_degree_dataset_dev",
        digits=2,  # as the paper prints it: "14.96 (+2.94)"
    ),
    MetricDeclaration(
        "dynamic_degree_dataset_dev",
        "DD dev.",
        False,
        "1.0",
        "motion",
        "the paper's deviation: a row's mean DD minus the average DD of the suite's motion "
        "clips (signed, between averages; computed by the report, report/dynamics.py)",
        table="paren",
        per_video=False,
        signed=True,
    ),
    MetricDeclaration(
        "dynamic_degree_dev",
        "DD abs. dev. per video",
        False,
        "1.0",
        "motion",
        "per video: |DD - mean DD of its motion's reference clips| (px); not the paper's "
        "deviation, which the report computes between averages (dynamic_degree_dataset_dev)",
        table="hidden",
    ),
    MetricDeclaration(
        "dynamic_degree_bool",
        "DD (VBench)",
        True,
        "vbench-0.1.5",
        "motion",
        "VBench's moving/static decision (share of moving videos when averaged)",
        in_paper=False,
        table="hidden",
    ),
)


def declared() -> dict[str, MetricDeclaration]:
    """``{field: declaration}`` in declaration order, as :data:`DECLARATIONS` is now."""
    return {d.name: d for d in DECLARATIONS}


def metric_fields() -> tuple[str, ...]:
    """Every per-video field, in declaration order: what the evaluator outputs and records hold
    (fields the report derives from averages, ``per_video=False``, are not among them)."""
    return tuple(d.name for d in DECLARATIONS if d.per_video)


def get_metric(name: str) -> MetricDeclaration:
    """The declaration of a metric field; RegistryError with a "did you mean" otherwise."""
    declarations = declared()
    if name not in declarations:
        raise unknown_name_error("metric", name, declarations)
    return declarations[name]
