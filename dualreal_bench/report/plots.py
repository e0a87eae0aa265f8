"""Plots of a run (PNG, matplotlib's Agg canvas; no pyplot state, no display needed).

* :func:`metric_bars_figure` — one panel per metric: a horizontal bar per method (the table's
  mean over cases) labelled with its value, error bars for the spread of the per-case means
  (std, or the inter-quartile range) only for methods with two cases or more; a panel whose
  values differ by little compared with their size is zoomed to the data (its title says so);
* :func:`fidelity_figure` — identity fidelity against motion quality, one colour per
  method: a small dot per case and a large marker for the method's mean;
* :func:`controller_figure` — the StageBlender identity weight ``w_id`` of every weight
  group over the denoising steps (the paper's Figure 7), from the controller traces DualReal
  saves beside each video (``videos/pNNN_sS.extras.npz``, key ``controller_w_id``, shape
  ``(num_denoising_steps, n_groups)``): the mean over a method's videos, with the min-max band.

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
import re
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..store import atomic_path
from .aggregate import per_case_means
from .columns import BAR_FIELDS, DIGITS, metric_meta
from .paper import row_order_key
from .tables import Report

logger = logging.getLogger(__name__)

CONTROLLER_KEY = "controller_w_id"  # DualReal's per-video trace: (num_denoising_steps, n_groups)
DPI = 100
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
#: method labels longer than this wrap onto several lines
LABEL_WIDTH = 28


def _figure(size_px: tuple[int, int], dpi: int = DPI):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    w, h = size_px
    fig = Figure(figsize=(w / dpi, h / dpi), dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)  # an Agg canvas of its own: drawable without pyplot or a display
    return fig


def save_figure(fig, path: str | Path, dpi: int = DPI) -> Path:
    """Write ``fig`` as a PNG (tight bounding box: nothing clipped), atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png", bbox_inches="tight", pad_inches=0.15)
    return path


def _suptitle(fig, text: str, fontsize: int = 10) -> None:
    """A figure title wrapped to the figure's width (a narrow figure gets two lines, not a cut)."""
    # about 0.6 em per character; a point is 1/72 inch
    chars = max(20, int(fig.get_figwidth() * 72 / (0.6 * fontsize)))
    fig.suptitle("\n".join(textwrap.wrap(text, chars)), fontsize=fontsize)


def _methods(records: Sequence[Mapping[str, Any]]) -> list[str]:
    return sorted({r["method"] for r in records}, key=row_order_key(records))


def _colors(n: int) -> list:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


def wrap_label(label: str, width: int = LABEL_WIDTH) -> str:
    """``label`` on lines of about ``width`` characters, broken after ``[`` and ``,`` (or at
    spaces); never shortened: joining the lines gives ``label`` back."""
    if len(label) <= width:
        return label
    lines, line = [], ""
    for token in re.split(r"(?<=[\[, ])", label):
        if line and len(line) + len(token) > width:
            lines.append(line)
            line = token
        else:
            line += token
    lines.append(line)
    return "\n".join(lines)


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


def bars_size_px(
    n_methods: int, n_fields: int = len(BAR_FIELDS), ncols: int = 4
) -> tuple[int, int]:
    """About the pixel size of :func:`metric_bars_figure`: rows of panels tall enough for a bar
    per method."""
    nrows = math.ceil(n_fields / min(ncols, max(1, n_fields)))
    return 1600, 90 + nrows * (80 + 30 * max(1, n_methods))


def metric_bars_figure(
    records: Sequence[Mapping[str, Any]],
    *,
    fields: Sequence[str] = BAR_FIELDS,
    spread: str = "std",
    size_px: tuple[int, int] | None = None,
    dpi: int = DPI,
):
    """Per-metric horizontal bars: the mean over cases of the per-case means (the tables'
    numbers), each labelled with its value; error bars across cases where a method has two
    cases or more (none at all with one case: a spread of one value is not a spread)."""
    methods = _methods(records)
    colors = _colors(len(methods))
    ncols = min(4, len(fields))
    nrows = math.ceil(len(fields) / ncols)
    fig = _figure(size_px or bars_size_px(len(methods), len(fields), ncols), dpi)
    axes = fig.subplots(nrows, ncols, sharey=True, squeeze=False).ravel()
    for ax in axes[len(fields) :]:
        ax.remove()
    y = np.arange(len(methods))
    any_spread = False
    for ax, field in zip(axes, fields, strict=False):
        means = per_case_means(records, field)
        per_method = [list(means.get(m, {}).values()) for m in methods]
        heights = np.array([np.mean(v) if v else np.nan for v in per_method])
        errs = np.array([spread_of(v, spread) if len(v) > 1 else (0.0, 0.0) for v in per_method])
        ax.barh(
            y, np.nan_to_num(heights), height=0.7, color=colors, edgecolor="black", linewidth=0.5
        )
        spread_rows = [i for i, v in enumerate(per_method) if len(v) > 1]
        if spread_rows:
            any_spread = True
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
        for i, h in enumerate(heights):
            if not np.isfinite(h):
                ax.annotate(
                    "no value",
                    (max(low, 0.0), y[i]),
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
                (end, y[i]),
                xytext=(3 * sign, 0),
                textcoords="offset points",
                ha="left" if sign > 0 else "right",
                va="center",
                fontsize=8,
                gid="value-label",
            )
        meta = metric_meta(field)
        arrow = "" if meta.higher_is_better is None else (" ↑" if meta.higher_is_better else " ↓")
        ax.set_title(meta.label + arrow + (" (zoomed)" if zoomed else ""), fontsize=10)
        ax.set_yticks(y, [wrap_label(m) for m in methods], fontsize=8)
        ax.tick_params(axis="x", labelsize=7)
        ax.grid(axis="x", alpha=0.3)
        ax.set_axisbelow(True)
    axes[0].invert_yaxis()  # shared: the first method on top, in every panel
    what = "± std" if spread == "std" else "inter-quartile range"
    errors = (
        f"error bars: {what} of the per-case means (methods with 2+ cases)"
        if any_spread
        else "one case per method: no error bars"
    )
    _suptitle(
        fig,
        f"mean over cases of each case's mean; {errors}; (zoomed): the axis does not start at 0",
    )
    return fig


def plot_metric_bars(
    records: Sequence[Mapping[str, Any]],
    path: str | Path,
    *,
    fields: Sequence[str] = BAR_FIELDS,
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
    colors = _colors(len(methods))
    fig = _figure(size_px, dpi)
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
    _suptitle(fig, "identity fidelity vs motion quality (dots: cases, large markers: method means)")
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


def extras_path(run_dir: str | Path, record: Mapping[str, Any]) -> Path:
    """``videos/pNNN_sS.extras.npz`` beside the record's video."""
    video = Path(run_dir) / record["video"]
    return video.with_name(video.name[: -len(video.suffix)] + ".extras.npz")


def load_controller_traces(
    run_dir: str | Path, records: Sequence[Mapping[str, Any]], key: str = CONTROLLER_KEY
) -> dict[str, np.ndarray]:
    """method label -> ``(videos, steps, groups)`` array of the saved ``w_id`` traces (labels with none omitted)."""
    traces: dict[str, list[np.ndarray]] = {}
    for rec in records:
        if not rec.get("video"):
            continue
        path = extras_path(run_dir, rec)
        if not path.is_file():
            continue
        try:
            with np.load(path) as data:
                if key not in data.files:
                    continue
                arr = np.asarray(data[key], dtype=np.float64)
        except (OSError, ValueError) as exc:
            logger.warning("%s: unreadable extras (%s); skipped", path, exc)
            continue
        if arr.ndim == 1:
            arr = arr[:, None]
        if arr.ndim != 2:
            logger.warning(
                "%s: %s has shape %s, expected (steps, groups); skipped", path, key, arr.shape
            )
            continue
        traces.setdefault(rec["method"], []).append(arr)
    out = {}
    for label, arrs in traces.items():
        shape = arrs[0].shape
        same = [a for a in arrs if a.shape == shape]
        if len(same) < len(arrs):
            logger.warning(
                "%s: %d controller traces differ in shape from %s; left out",
                label,
                len(arrs) - len(same),
                shape,
            )
        out[label] = np.stack(same)
    return out


def controller_size_px(
    n_methods: int, panel_px: tuple[int, int] = (520, 380), max_cols: int = 3
) -> tuple[int, int]:
    ncols = max(1, min(max_cols, n_methods))
    nrows = max(1, math.ceil(n_methods / ncols))
    return panel_px[0] * ncols, panel_px[1] * nrows


def controller_figure(
    traces: Mapping[str, np.ndarray],
    *,
    panel_px: tuple[int, int] = (520, 380),
    max_cols: int = 3,
    fixed_weight: float | None = 0.1,
    dpi: int = DPI,
):
    """``w_id`` per weight group over the denoising steps (Figure 7), one panel per method.

    ``traces``: label -> ``(videos, steps, groups)``. Lines: the mean over videos; bands: min-max.
    The dashed line is the fixed weight of the controller-free ablation. Each panel's legend
    sits below it, so no curve is hidden.
    """
    if not traces:
        raise ValueError("no controller traces to plot")
    from matplotlib import colormaps
    from matplotlib.ticker import MaxNLocator

    labels = list(traces)
    ncols = max(1, min(max_cols, len(labels)))
    nrows = math.ceil(len(labels) / ncols)
    fig = _figure(controller_size_px(len(labels), panel_px, max_cols), dpi)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax in axes[len(labels) :]:
        ax.remove()
    cmap = colormaps["viridis"]
    for ax, label in zip(axes, labels, strict=False):
        arr = np.asarray(traces[label], dtype=float)
        steps = np.arange(1, arr.shape[1] + 1)
        n_groups = arr.shape[2]
        for g in range(n_groups):
            color = cmap(g / max(1, n_groups - 1))
            ax.plot(steps, arr[:, :, g].mean(0), color=color, lw=1.4, label=f"group {g + 1}")
            if arr.shape[0] > 1:
                ax.fill_between(
                    steps, arr[:, :, g].min(0), arr[:, :, g].max(0), color=color, alpha=0.15, lw=0
                )
        if fixed_weight is not None:
            ax.axhline(fixed_weight, color="grey", ls="--", lw=0.8, label=f"fixed {fixed_weight:g}")
        what = f"({arr.shape[0]} videos, n = {n_groups})"
        title = (
            f"{label} {what}" if len(label) + len(what) < 48 else f"{wrap_label(label, 48)}\n{what}"
        )
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("denoising step (1 = noisiest)", fontsize=8)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel("identity weight w_id", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        if n_groups <= 14:
            ax.legend(
                fontsize=7,
                ncol=max(1, min(n_groups + 1, panel_px[0] // 110)),
                loc="upper center",
                bbox_to_anchor=(0.5, -0.2),
                frameon=False,
            )
    _suptitle(
        fig, "StageBlender identity weights per group over denoising (motion weight = scale − w_id)"
    )
    return fig


def plot_controller_curves(
    traces: Mapping[str, np.ndarray],
    path: str | Path,
    *,
    panel_px: tuple[int, int] = (520, 380),
    max_cols: int = 3,
    fixed_weight: float | None = 0.1,
    dpi: int = DPI,
) -> Path:
    """:func:`controller_figure` as a PNG at ``path``."""
    fig = controller_figure(
        traces, panel_px=panel_px, max_cols=max_cols, fixed_weight=fixed_weight, dpi=dpi
    )
    return save_figure(fig, path, dpi)


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
