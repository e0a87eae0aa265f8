"""The StageBlender controller's identity weights over denoising (the paper's Figure 7).

:func:`controller_figure` draws the identity weight ``w_id`` of every weight group over the
denoising steps from the controller traces DualReal saves beside each video
(``videos/pNNN_sS.extras.npz``, key ``controller_w_id``, shape ``(num_denoising_steps,
n_groups)``): the mean over a method's videos, with the min-max band.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .figures import DPI, new_figure, save_figure, suptitle, wrap_label

logger = logging.getLogger(__name__)

CONTROLLER_KEY = "controller_w_id"  # DualReal's per-video trace: (num_denoising_steps, n_groups)


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


def _controller_panel(
    ax, label: str, arr: np.ndarray, fixed_weight: float | None, panel_px: tuple[int, int]
) -> None:
    """One method's panel: ``arr`` is ``(videos, steps, groups)``; a line per group (the mean
    over videos) with its min-max band, the fixed weight dashed, the legend below."""
    from matplotlib import colormaps
    from matplotlib.ticker import MaxNLocator

    cmap = colormaps["viridis"]
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
    title = f"{label} {what}" if len(label) + len(what) < 48 else f"{wrap_label(label, 48)}\n{what}"
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
    labels = list(traces)
    ncols = max(1, min(max_cols, len(labels)))
    nrows = math.ceil(len(labels) / ncols)
    fig = new_figure(controller_size_px(len(labels), panel_px, max_cols), dpi)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax in axes[len(labels) :]:
        ax.remove()
    for ax, label in zip(axes, labels, strict=False):
        _controller_panel(ax, label, np.asarray(traces[label], dtype=float), fixed_weight, panel_px)
    suptitle(
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
