"""What every plot of a report shares: an Agg figure of a given pixel size, a wrapped title,
method colours and labels that wrap instead of being cut, and the atomic PNG writer."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

from ..io import atomic_path

DPI = 100
#: method labels longer than this wrap onto several lines
LABEL_WIDTH = 28


def new_figure(size_px: tuple[int, int], dpi: int = DPI):
    """A matplotlib Figure of about ``size_px`` pixels, constrained layout, on an Agg canvas of
    its own (no pyplot state, no display)."""
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


def suptitle(fig, text: str, fontsize: int = 10) -> None:
    """A figure title wrapped to the figure's width (a narrow figure gets two lines, not a cut)."""
    # about 0.6 em per character; a point is 1/72 inch
    chars = max(20, int(fig.get_figwidth() * 72 / (0.6 * fontsize)))
    fig.suptitle("\n".join(textwrap.wrap(text, chars)), fontsize=fontsize)


def method_colors(n: int) -> list:
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
