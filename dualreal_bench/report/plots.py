"""Plots of a run (PNG, matplotlib's Agg canvas; no pyplot state, no display needed).

* :func:`metric_bars_figure` — one panel per metric: a horizontal bar per method (the table's
  mean over cases) labelled with its value, error bars for the spread of the per-case means
  (std, or the inter-quartile range) only for methods with two cases or more; a panel whose
  values differ by little compared with their size is zoomed to the data (its title says so);
* :func:`fidelity_figure` — identity fidelity against motion quality, one colour per
  method: a small dot per case and a large marker for the method's mean;
* :func:`~.controller_plot.controller_figure` — the StageBlender identity weight ``w_id`` of
  every weight group over the denoising steps (the paper's Figure 7), from the controller
  traces DualReal saves beside each video (:mod:`.controller_plot`).

Each ``*_figure`` function returns the :class:`matplotlib.figure.Figure` (what the tests read
back: axis limits, value labels, tick labels); each ``plot_*`` function draws it and writes
the PNG atomically. Figures are laid out by matplotlib's constrained layout at about
``size_px`` and saved with a tight bounding box, so no title, label or legend is clipped
(the PNG can differ from ``size_px`` by the margins that box trims or adds). Method labels
are never cut: long ones (``dualreal[num_groups=2,steps_scale=0.1]``) wrap at ``[`` and ``,``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .aggregate import per_case_means
from .columns import DIGITS, bar_fields, metric_meta
from .controller_plot import CONTROLLER_KEY, load_controller_traces, plot_controller_curves
from .figures import DPI, method_colors, new_figure, save_figure, suptitle, wrap_label
from .paper import row_order_key
from .tables import Report

logger = logging.getLogger(__name__)

#: a bar panel's axis starts at 0 unless its values' range is below this share of their size
#: (CLIP-I 0.96 vs 0.98 on a 0-1 axis would be two equal bars)
ZOOM_BELOW = 0.25
#: a zoomed axis still spans at least this share of the values' magnitude, so that differences
#: in the 4th decimal (T-Cons 0.9962 vs 0.9963) are not blown up to the panel's width
MIN_ZOOM_WINDOW = 0.01
#: share of a bar panel's axis kept free beside the longest bar for its value label
LABEL_ROOM = 0.24
#: digits of the value labels (the tables' precision)
VALUE_DIGITS = DIGITS


def _methods(records: Sequence[Mapping[str, Any]]) -> list[str]:
    return sorted({r["method"] for r in records}, key=row_order_key(records))


def spread_of(values: Sequence[float], kind: str = "std") -> tuple[float, float]:
    """(below, above) error-bar lengths around the mean of ``values``: ±std, or the IQR's ends."""
    if not values:
        return (0.0, 0.0)
    arr = np.asarray(values, dtype=float)
    mean = float(arr.mean())
    if kind == "std":
        s = float(arr.std())
        return (s, s)
    if kind == "iqr":
        q1, q3 = np.percentile(arr, [25, 75])
        return (max(0.0, mean - float(q1)), max(0.0, float(q3) - mean))
    raise ValueError(f"spread {kind!r}: use 'std' or 'iqr'")


def value_axis_limits(
    values: Sequence[float], below: Sequence[float] = (), above: Sequence[float] = ()
) -> tuple[float, float, bool]:
    """(low, high, zoomed): the value axis of a bar panel with bars from 0 to each of ``values``
    and error bars ``below`` / ``above`` them.

    The axis includes 0 unless the values (all of one sign, at least two, not all equal) differ
    by less than :data:`ZOOM_BELOW` of their magnitude; then it is zoomed to them, with a
    margin (and a window of at least :data:`MIN_ZOOM_WINDOW` of their magnitude). Either way
    :data:`LABEL_ROOM` of it is left free beyond the bars' ends for the value labels.
    """
    vals = np.asarray(values, dtype=float)
    ok = np.isfinite(vals)
    if not ok.any():
        return (0.0, 1.0, False)
    lo_err = np.asarray(below, dtype=float) if len(below) else np.zeros_like(vals)
    hi_err = np.asarray(above, dtype=float) if len(above) else np.zeros_like(vals)
    v = vals[ok]
    lo = float(np.min(np.minimum(v, v - np.nan_to_num(lo_err[ok]))))
    hi = float(np.max(np.maximum(v, v + np.nan_to_num(hi_err[ok]))))
    size = max(abs(lo), abs(hi))
    if size == 0:
        return (-1.0, 1.0, False)
    zoom = len(v) > 1 and (lo > 0 or hi < 0) and 0 < (hi - lo) < ZOOM_BELOW * size
    room = LABEL_ROOM / (1 - LABEL_ROOM)
    if zoom:
        margin = max(0.2 * (hi - lo), (MIN_ZOOM_WINDOW * size - (hi - lo)) / 2)
        if lo > 0:  # bars grow to the right: margin on the left, labels on the right
            start = max(0.0, lo - margin)
            return (start, hi + room * (hi - start), True)
        end = min(0.0, hi + margin)
        return (lo - room * (end - lo), end, True)
    a, b = min(lo, 0.0), max(hi, 0.0)
    return (a - (room * (b - a) if a < 0 else 0.0), b + (room * (b - a) if b > 0 else 0.0), False)


def bars_size_px(n_methods: int, n_fields: int | None = None, ncols: int = 4) -> tuple[int, int]:
    """About the pixel size of :func:`metric_bars_figure`: rows of panels tall enough for a bar
    per method (``n_fields``: default, every bar field)."""
    n_fields = len(bar_fields()) if n_fields is None else n_fields
    nrows = math.ceil(n_fields / min(ncols, max(1, n_fields)))
    return 1600, 90 + nrows * (80 + 30 * max(1, n_methods))


def _value_labels(ax, heights: np.ndarray, errs: np.ndarray, low: float) -> None:
    """Each bar's value beyond its end (and its error bar); "no value" where it has none."""
    for i, h in enumerate(heights):
        if not np.isfinite(h):
            ax.annotate(
                "no value",
                (max(low, 0.0), i),
                xytext=(3, 0),
                textcoords="offset points",
                va="center",
                fontsize=8,
                color="grey",
            )
            continue
        end, sign = (h + errs[i, 1], 1) if h >= 0 else (h - errs[i, 0], -1)
        ax.annotate(
            f"{h:.{VALUE_DIGITS}f}",
            (end, i),
            xytext=(3 * sign, 0),
            textcoords="offset points",
            ha="left" if sign > 0 else "right",
            va="center",
            fontsize=8,
            gid="value-label",
        )


def _bar_panel(ax, field: str, per_method: list[list[float]], spread: str, colors: list) -> bool:
    """One metric's panel: a bar per method at ``y = 0, 1, ...`` (the mean of its per-case
    means), error bars where a method has two cases or more, value labels, the title.
    Returns whether any error bar was drawn."""
    y = np.arange(len(per_method))
    heights = np.array([np.mean(v) if v else np.nan for v in per_method])
    errs = np.array([spread_of(v, spread) if len(v) > 1 else (0.0, 0.0) for v in per_method])
    ax.barh(y, np.nan_to_num(heights), height=0.7, color=colors, edgecolor="black", linewidth=0.5)
    spread_rows = [i for i, v in enumerate(per_method) if len(v) > 1]
    if spread_rows:
        ax.errorbar(
            heights[spread_rows],
            y[spread_rows],
            xerr=errs[spread_rows].T,
            fmt="none",
            ecolor="black",
            elinewidth=1,
            capsize=3,
        )
    low, high, zoomed = value_axis_limits(heights, errs[:, 0], errs[:, 1])
    ax.set_xlim(low, high)
    _value_labels(ax, heights, errs, low)
    meta = metric_meta(field)
    arrow = "" if meta.higher_is_better is None else (" ↑" if meta.higher_is_better else " ↓")
    ax.set_title(meta.label + arrow + (" (zoomed)" if zoomed else ""), fontsize=10)
    ax.tick_params(axis="x", labelsize=7)
    ax.grid(axis="x", alpha=0.3)
    ax.set_axisbelow(True)
    return bool(spread_rows)


def metric_bars_figure(
    records: Sequence[Mapping[str, Any]],
    *,
    fields: Sequence[str] | None = None,
    spread: str = "std",
    size_px: tuple[int, int] | None = None,
    dpi: int = DPI,
):
    """Per-metric horizontal bars: the mean over cases of the per-case means (the tables'
    numbers), each labelled with its value; error bars across cases where a method has two
    cases or more (none at all with one case: a spread of one value is not a spread).
    ``fields``: default, :func:`~.columns.bar_fields`."""
    fields = bar_fields() if fields is None else fields
    methods = _methods(records)
    colors = method_colors(len(methods))
    ncols = min(4, len(fields))
    nrows = math.ceil(len(fields) / ncols)
    fig = new_figure(size_px or bars_size_px(len(methods), len(fields), ncols), dpi)
    axes = fig.subplots(nrows, ncols, sharey=True, squeeze=False).ravel()
    for ax in axes[len(fields) :]:
        ax.remove()
    y = np.arange(len(methods))
    any_spread = False
    for ax, field in zip(axes, fields, strict=False):
        means = per_case_means(records, field)
        per_method = [list(means.get(m, {}).values()) for m in methods]
        any_spread |= _bar_panel(ax, field, per_method, spread, colors)
        ax.set_yticks(y, [wrap_label(m) for m in methods], fontsize=8)
    axes[0].invert_yaxis()  # shared: the first method on top, in every panel
    what = "± std" if spread == "std" else "inter-quartile range"
    errors = (
        f"error bars: {what} of the per-case means (methods with 2+ cases)"
        if any_spread
        else "one case per method: no error bars"
    )
    suptitle(
        fig,
        f"mean over cases of each case's mean; {errors}; (zoomed): the axis does not start at 0",
    )
    return fig


def plot_metric_bars(
    records: Sequence[Mapping[str, Any]],
    path: str | Path,
    *,
    fields: Sequence[str] | None = None,
    spread: str = "std",
    size_px: tuple[int, int] | None = None,
    dpi: int = DPI,
) -> Path:
    """:func:`metric_bars_figure` as a PNG at ``path``."""
    fig = metric_bars_figure(records, fields=fields, spread=spread, size_px=size_px, dpi=dpi)
    return save_figure(fig, path, dpi)


def fidelity_figure(
    records: Sequence[Mapping[str, Any]],
    *,
    pairs: Sequence[tuple[str, str]] = (
        ("dynamic_degree_dev", "dino_i"),
        ("motion_smoothness", "clip_i"),
    ),
    size_px: tuple[int, int] = (1200, 560),
    dpi: int = DPI,
):
    """Identity fidelity (y) against motion quality (x): a dot per case, a large marker per
    method mean; one legend beside the panels."""
    methods = _methods(records)
    colors = method_colors(len(methods))
    fig = new_figure(size_px, dpi)
    axes = fig.subplots(1, len(pairs), squeeze=False).ravel()
    handles = {}
    for ax, (xf, yf) in zip(axes, pairs, strict=True):
        xs, ys = per_case_means(records, xf), per_case_means(records, yf)
        for m, color in zip(methods, colors, strict=True):
            cases = sorted(set(xs.get(m, {})) & set(ys.get(m, {})))
            if not cases:
                continue
            px = [xs[m][c] for c in cases]
            py = [ys[m][c] for c in cases]
            ax.scatter(px, py, s=16, color=color, alpha=0.5, linewidths=0)
            handles[m] = ax.scatter(
                [np.mean(px)], [np.mean(py)], s=110, color=color, edgecolors="black", zorder=3
            )
        xm, ym = metric_meta(xf), metric_meta(yf)
        better = {True: " (higher is better)", False: " (lower is better)", None: ""}
        ax.set_xlabel(xm.label + better[xm.higher_is_better], fontsize=9)
        ax.set_ylabel(ym.label + better[ym.higher_is_better], fontsize=9)
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=8)
    if handles:
        fig.legend(
            list(handles.values()),
            [wrap_label(m) for m in handles],
            loc="outside right upper",
            fontsize=8,
            title="method (mean)",
            title_fontsize=8,
        )
    suptitle(fig, "identity fidelity vs motion quality (dots: cases, large markers: method means)")
    return fig


def plot_fidelity_vs_motion(
    records: Sequence[Mapping[str, Any]],
    path: str | Path,
    *,
    pairs: Sequence[tuple[str, str]] = (
        ("dynamic_degree_dev", "dino_i"),
        ("motion_smoothness", "clip_i"),
    ),
    size_px: tuple[int, int] = (1200, 560),
    dpi: int = DPI,
) -> Path:
    """:func:`fidelity_figure` as a PNG at ``path``."""
    return save_figure(fidelity_figure(records, pairs=pairs, size_px=size_px, dpi=dpi), path, dpi)


def plot_report(report: Report, out_dir: str | Path, *, spread: str = "std") -> list[Path]:
    """Every plot of a run into ``out_dir``; the controller curves only when traces exist."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [
        plot_metric_bars(report.records, out_dir / "metric_bars.png", spread=spread),
        plot_fidelity_vs_motion(report.records, out_dir / "fidelity_vs_motion.png"),
    ]
    traces = load_controller_traces(report.run_dir, report.records)
    if traces:
        paths.append(plot_controller_curves(traces, out_dir / "controller_w_id.png"))
    else:
        logger.info(
            "no controller traces (%s) in run %s: no StageBlender plot",
            CONTROLLER_KEY,
            report.run_id,
        )
    return paths
