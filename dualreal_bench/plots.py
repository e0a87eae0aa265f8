"""Plots of a run (PNG, matplotlib's Agg canvas; no pyplot state, no display needed).

* :func:`plot_metric_bars` — one panel per metric: a bar per method (the table's mean over
  cases) with the spread of the per-case means as error bars (std, or the inter-quartile range);
* :func:`plot_fidelity_vs_motion` — identity fidelity against motion quality, one colour per
  method: a small dot per case and a large marker for the method's mean;
* :func:`plot_controller_curves` — the StageBlender identity weight ``w_id`` of every weight
  group over the denoising steps (the paper's Figure 7), from the controller traces DualReal
  saves beside each video (``videos/pNNN_sS.extras.npz``, key ``controller_w_id``, shape
  ``(num_denoising_steps, n_groups)``): the mean over a method's videos, with the min-max band.

Every figure is drawn at a fixed pixel size (``size_px`` at ``dpi``, no tight bounding box),
so a PNG's size is known in advance, and written atomically.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .report import (
    PAIRED_FIELDS,
    TABLE_FIELDS,
    Report,
    _row_order_key,
    metric_meta,
    per_case_means,
)
from .store import atomic_path

logger = logging.getLogger(__name__)

CONTROLLER_KEY = "controller_w_id"  # DualReal's per-video trace: (num_denoising_steps, n_groups)
BAR_FIELDS = (*TABLE_FIELDS, *PAIRED_FIELDS.values())
DPI = 100


def _figure(size_px: tuple[int, int], dpi: int = DPI):
    from matplotlib.figure import Figure

    w, h = size_px
    return Figure(figsize=(w / dpi, h / dpi), dpi=dpi)


def _save(fig, path: str | Path, dpi: int = DPI) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")
    return path


def _methods(records: Sequence[Mapping[str, Any]]) -> list[str]:
    return sorted({r["method"] for r in records}, key=_row_order_key(records))


def _colors(n: int) -> list:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


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


def plot_metric_bars(
    records: Sequence[Mapping[str, Any]],
    path: str | Path,
    *,
    fields: Sequence[str] = BAR_FIELDS,
    spread: str = "std",
    size_px: tuple[int, int] = (1600, 800),
    dpi: int = DPI,
) -> Path:
    """Per-metric bars (mean over cases of the per-case means) with error bars across cases."""
    methods = _methods(records)
    colors = _colors(len(methods))
    ncols = min(4, len(fields))
    nrows = math.ceil(len(fields) / ncols)
    fig = _figure(size_px, dpi)
    for k, field in enumerate(fields):
        ax = fig.add_subplot(nrows, ncols, k + 1)
        means = per_case_means(records, field)
        heights, errs = [], [[], []]
        for m in methods:
            vals = list(means.get(m, {}).values())
            heights.append(float(np.mean(vals)) if vals else np.nan)
            lo, hi = spread_of(vals, spread)
            errs[0].append(lo)
            errs[1].append(hi)
        x = np.arange(len(methods))
        ax.bar(
            x,
            np.nan_to_num(heights),
            yerr=errs,
            color=colors,
            capsize=3,
            edgecolor="black",
            linewidth=0.5,
        )
        meta = metric_meta(field)
        arrow = "" if meta.higher_is_better is None else (" ↑" if meta.higher_is_better else " ↓")
        ax.set_title(meta.label + arrow, fontsize=10)
        ax.set_xticks(
            x,
            [m if len(m) <= 18 else m[:16] + "…" for m in methods],
            rotation=35,
            ha="right",
            fontsize=7,
        )
        ax.tick_params(axis="y", labelsize=7)
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(
        f"mean over cases, error bars: {'± std' if spread == 'std' else 'inter-quartile range'} "
        "of the per-case means",
        fontsize=10,
    )
    fig.subplots_adjust(left=0.05, right=0.99, top=0.9, bottom=0.2, hspace=0.75, wspace=0.3)
    return _save(fig, path, dpi)


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
    """Identity fidelity (y) against motion quality (x): a dot per case, a large marker per method mean."""
    methods = _methods(records)
    colors = _colors(len(methods))
    fig = _figure(size_px, dpi)
    for k, (xf, yf) in enumerate(pairs):
        ax = fig.add_subplot(1, len(pairs), k + 1)
        xs, ys = per_case_means(records, xf), per_case_means(records, yf)
        for m, color in zip(methods, colors, strict=True):
            cases = sorted(set(xs.get(m, {})) & set(ys.get(m, {})))
            if not cases:
                continue
            px = [xs[m][c] for c in cases]
            py = [ys[m][c] for c in cases]
            ax.scatter(px, py, s=14, color=color, alpha=0.45, linewidths=0)
            ax.scatter(
                [np.mean(px)],
                [np.mean(py)],
                s=110,
                color=color,
                edgecolors="black",
                label=m,
                zorder=3,
            )
        xm, ym = metric_meta(xf), metric_meta(yf)
        better = {True: " (higher is better)", False: " (lower is better)", None: ""}
        ax.set_xlabel(xm.label + better[xm.higher_is_better], fontsize=9)
        ax.set_ylabel(ym.label + better[ym.higher_is_better], fontsize=9)
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=8)
        if k == 0 and methods:
            ax.legend(fontsize=7, loc="best")
    fig.suptitle(
        "identity fidelity vs motion quality (dots: cases, large markers: method means)",
        fontsize=10,
    )
    fig.subplots_adjust(left=0.07, right=0.98, top=0.88, bottom=0.12, wspace=0.25)
    return _save(fig, path, dpi)


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


def plot_controller_curves(
    traces: Mapping[str, np.ndarray],
    path: str | Path,
    *,
    panel_px: tuple[int, int] = (520, 380),
    max_cols: int = 3,
    fixed_weight: float | None = 0.1,
    dpi: int = DPI,
) -> Path:
    """``w_id`` per weight group over the denoising steps (Figure 7), one panel per method.

    ``traces``: label -> ``(videos, steps, groups)``. Lines: the mean over videos; bands: min-max.
    The dashed line is the fixed weight of the controller-free ablation.
    """
    if not traces:
        raise ValueError("no controller traces to plot")
    from matplotlib import colormaps
    from matplotlib.ticker import MaxNLocator

    labels = list(traces)
    size = controller_size_px(len(labels), panel_px, max_cols)
    ncols = max(1, min(max_cols, len(labels)))
    nrows = math.ceil(len(labels) / ncols)
    fig = _figure(size, dpi)
    for k, label in enumerate(labels):
        arr = np.asarray(traces[label], dtype=float)
        ax = fig.add_subplot(nrows, ncols, k + 1)
        steps = np.arange(1, arr.shape[1] + 1)
        n_groups = arr.shape[2]
        cmap = colormaps["viridis"]
        for g in range(n_groups):
            color = cmap(g / max(1, n_groups - 1))
            ax.plot(steps, arr[:, :, g].mean(0), color=color, lw=1.4, label=f"group {g + 1}")
            if arr.shape[0] > 1:
                ax.fill_between(
                    steps, arr[:, :, g].min(0), arr[:, :, g].max(0), color=color, alpha=0.15, lw=0
                )
        if fixed_weight is not None:
            ax.axhline(fixed_weight, color="grey", ls="--", lw=0.8)
        ax.set_title(f"{label} ({arr.shape[0]} videos, n = {n_groups})", fontsize=9)
        ax.set_xlabel("denoising step (1 = noisiest)", fontsize=8)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel("identity weight w_id", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        if n_groups <= 8:
            ax.legend(fontsize=6, ncol=2, loc="best")
    fig.suptitle(
        "StageBlender identity weights per group over denoising (motion weight = scale − w_id)",
        fontsize=10,
    )
    fig.subplots_adjust(left=0.08, right=0.98, top=0.86, bottom=0.12, hspace=0.55, wspace=0.3)
    return _save(fig, path, dpi)


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
