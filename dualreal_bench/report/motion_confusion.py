"""Which motion the videos show: the confusion matrix of intended vs nearest motion.

Motion fidelity (a measure beyond the paper, :mod:`dualreal_bench.metrics.motion`) records per
video, besides its metric values, the motion whose reference clips are nearest to the video
(``record["metric_details"]["motion_fidelity"]``: ``nearest``, ``rank`` and the cosine to every
motion's centroid). :func:`confusion_counts` counts, per method, how many videos of each
intended motion (rows) were nearest to each motion (columns) -- the diagonal is top-1 accuracy;
:func:`confusion_figure` draws it, one panel per method (21 x 21 on the paper's data; the smoke
data has 2 motions). :func:`motion_count_note` is the tables' footnote on how many motions the
ranks are taken among.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError
from .figures import DPI, new_figure, save_figure, suptitle, wrap_label
from .paper import row_order_key

#: where a record keeps motion fidelity's per-video details
DETAILS_KEY = "metric_details"
MOTION_KEY = "motion_fidelity"


def motion_details(record: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The record's motion-fidelity details (None when it has none: older records, external
    evaluators). DataError naming the video when they are there but malformed."""
    details = ((record.get(DETAILS_KEY) or {}) or {}).get(MOTION_KEY)
    if details is None:
        return None
    where = record.get("video") or record.get("case_id") or "record"
    if not isinstance(details, Mapping) or not isinstance(details.get("nearest"), str):
        raise DataError(f"{where}: {DETAILS_KEY}.{MOTION_KEY}.nearest is not a motion name")
    sims = details.get("similarities")
    if sims is not None and not isinstance(sims, Mapping):
        raise DataError(f"{where}: {DETAILS_KEY}.{MOTION_KEY}.similarities is not an object")
    return details


@dataclasses.dataclass
class Confusion:
    """Counts of one method's videos: ``counts[i, j]`` videos of intended motion ``labels[i]``
    whose nearest motion is ``labels[j]``."""

    labels: list[str]
    counts: np.ndarray  # (n, n) int

    @property
    def videos(self) -> int:
        return int(self.counts.sum())

    @property
    def top1(self) -> float | None:
        """Share of videos whose nearest motion is the intended one (over all videos)."""
        return float(np.trace(self.counts) / self.videos) if self.videos else None


def _sort_key(name: str) -> tuple[str, str]:
    return (name.lower(), name)


def confusion_counts(records: Sequence[Mapping[str, Any]]) -> dict[str, Confusion]:
    """method label -> :class:`Confusion` over every motion any record ranked among (the union
    of the motions in their details, intended and nearest included), in name order; methods
    without details are left out."""
    per_method: dict[str, list[tuple[str, str]]] = {}
    labels: set[str] = set()
    for rec in records:
        details = motion_details(rec)
        if details is None:
            continue
        intended, nearest = str(rec["motion"]), details["nearest"]
        per_method.setdefault(rec["method"], []).append((intended, nearest))
        labels |= {intended, nearest, *(details.get("similarities") or {})}
    order = sorted(labels, key=_sort_key)
    index = {m: i for i, m in enumerate(order)}
    out = {}
    for method in sorted(per_method, key=row_order_key(records)):
        counts = np.zeros((len(order), len(order)), dtype=np.int64)
        for intended, nearest in per_method[method]:
            counts[index[intended], index[nearest]] += 1
        out[method] = Confusion(order, counts)
    return out


def ranked_motions(records: Sequence[Mapping[str, Any]]) -> set[int]:
    """How many motions the records' ranks are taken among (one number per data root)."""
    found = set()
    for rec in records:
        refs = (rec.get("metric_constants") or {}).get("motion_references") or {}
        if isinstance(refs.get("motions"), int):
            found.add(refs["motions"])
    return found


def motion_count_note(records: Sequence[Mapping[str, Any]]) -> str | None:
    """The footnote on what top-1/top-5 are measured against (None without motion records)."""
    counts = sorted(ranked_motions(records))
    if not counts:
        return None
    if len(counts) > 1:
        listed = ", ".join(str(n) for n in counts)
        return (
            f"motion ranks are taken among different numbers of motions ({listed}): "
            "top-1/top-5 of such rows do not compare"
        )
    n = counts[0]
    return (
        f"motion fidelity ranks the intended motion among the {n} motions of the data root "
        f"(chance: top-1 {1 / n:.3f}, top-5 {min(5, n) / n:.3f}, mean rank {(n + 1) / 2:g})"
    )


def confusion_figure(
    records: Sequence[Mapping[str, Any]],
    *,
    panel_px: int = 620,
    dpi: int = DPI,
):
    """One panel per method: intended motion (rows) against nearest motion (columns), each
    row coloured by its share of the intended motion's videos (grey: no video of that motion),
    non-zero counts written in the cells. DataError when no record carries motion-fidelity
    details."""
    confusions = confusion_counts(records)
    if not confusions:
        raise DataError("no record carries motion fidelity's nearest motion: nothing to plot")
    ncols = min(3, len(confusions))
    nrows = -(-len(confusions) // ncols)
    fig = new_figure((panel_px * ncols + 120, panel_px * nrows + 80), dpi)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax in axes[len(confusions) :]:
        ax.remove()
    image = None
    for ax, (method, conf) in zip(axes, confusions.items(), strict=False):
        from matplotlib import colormaps

        rows = conf.counts.sum(axis=1, keepdims=True)
        share = np.divide(conf.counts, rows, out=np.zeros(conf.counts.shape), where=rows > 0)
        cmap = colormaps["viridis"].with_extremes(bad="#e6e6e6")  # grey: no video of that motion
        masked = np.ma.masked_where(np.broadcast_to(rows == 0, share.shape), share)
        image = ax.imshow(masked, vmin=0.0, vmax=1.0, cmap=cmap, aspect="equal")
        n = len(conf.labels)
        font = 9 if n <= 8 else (6 if n <= 16 else 5)
        for i, j in zip(*np.nonzero(conf.counts), strict=True):
            ax.text(
                j,
                i,
                str(conf.counts[i, j]),
                ha="center",
                va="center",
                fontsize=font,
                color="black" if share[i, j] > 0.6 else "white",
                gid="count",
            )
        ticks = np.arange(n)
        ax.set_xticks(ticks, conf.labels, rotation=90, fontsize=font + 1)
        ax.set_yticks(ticks, conf.labels, fontsize=font + 1)
        ax.set_xlabel("nearest motion", fontsize=9)
        ax.set_ylabel("intended motion", fontsize=9)
        top1 = conf.top1
        ax.set_title(f"{wrap_label(method)}\ntop-1 {top1:.3f} ({conf.videos} videos)", fontsize=9)
    if image is not None:
        fig.colorbar(image, ax=list(axes[: len(confusions)]), shrink=0.6, label="share of row")
    suptitle(
        fig,
        "motion fidelity (beyond the paper): intended vs nearest motion per video; "
        "the diagonal is top-1 accuracy",
    )
    return fig


def plot_motion_confusion(
    records: Sequence[Mapping[str, Any]], path: str | Path, *, dpi: int = DPI
) -> Path:
    """:func:`confusion_figure` as a PNG at ``path``."""
    return save_figure(confusion_figure(records, dpi=dpi), path, dpi)


def has_motion_details(records: Sequence[Mapping[str, Any]]) -> bool:
    return any(motion_details(r) is not None for r in records)
