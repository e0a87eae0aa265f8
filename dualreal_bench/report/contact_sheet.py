"""One contact sheet (the paper's Figure 5 layout) drawn from pixels.

A sheet shows, top to bottom: a header (the case, prompt index, seed and run, then the
prompt, each wrapped onto as many lines as it needs up to a limit, above a rule), the
identity's reference images, frames of one of the motion's reference clips, then one strip of
frames per method for the same prompt and seed, each row labelled on the left (wrapped,
centred on its row). Frames are spread evenly over each video (first and last included) and
letterboxed into equal cells. :func:`sheet_layout` computes where everything goes (the
header's height follows its text), so the sheet's size is known before it is drawn
(:func:`sheet_size`); :func:`contact_sheet` draws it.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont, ImageOps

from ..io import atomic_path

GAP_PX = 4
BACKGROUND = (255, 255, 255)
MISSING = (225, 225, 225)
RULE = (200, 200, 200)
#: font sizes (pixels) of the title, the prompt below it, and the row labels
TITLE_FONT_PX = 16
TEXT_FONT_PX = 14
LABEL_FONT_PX = 13
LINE_GAP_PX = 4
HEADER_PAD_PX = 8
#: most lines the title and the prompt may take (an ellipsis marks a cut beyond)
TITLE_LINES = 2
SUBTITLE_LINES = 3


@functools.lru_cache(maxsize=8)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """Pillow's bundled font at ``size`` pixels (its bitmap font where FreeType is missing)."""
    return ImageFont.load_default(size=size)


def _line_px(font) -> int:
    ascent, descent = font.getmetrics()
    return ascent + descent + LINE_GAP_PX


@dataclasses.dataclass(frozen=True)
class TextLine:
    text: str
    xy: tuple[int, int]  # top-left corner (Pillow's anchor "la")
    size: int  # font size in pixels
    fill: tuple[int, int, int]

    def bbox(self) -> tuple[int, int, int, int]:
        """(left, top, right, bottom) of the inked text on the sheet."""
        left, top, right, bottom = _font(self.size).getbbox(self.text, anchor="la")
        x, y = self.xy
        return (x + int(left), y + int(top), x + int(right), y + int(bottom))


@dataclasses.dataclass(frozen=True)
class SheetLayout:
    """Where everything of a sheet goes: a header (title, then the prompt, wrapped), then
    ``n_rows`` rows of a label column and ``n_frames`` cells of ``cell_px`` (height, width)."""

    width: int
    height: int
    header_px: int  # the header's height; a rule is drawn at its bottom
    header: tuple[TextLine, ...]
    n_rows: int
    n_frames: int
    cell_px: tuple[int, int]
    label_px: int

    def row_top(self, row: int) -> int:
        return self.header_px + GAP_PX + row * (self.cell_px[0] + GAP_PX)

    def cell_box(self, row: int, col: int) -> tuple[int, int, int, int]:
        """(left, top, right, bottom), right/bottom exclusive."""
        h, w = self.cell_px
        x, y = self.label_px + col * (w + GAP_PX), self.row_top(row)
        return (x, y, x + w, y + h)

    def label_box(self, row: int) -> tuple[int, int, int, int]:
        y = self.row_top(row)
        return (GAP_PX, y, self.label_px - GAP_PX, y + self.cell_px[0])

    def label_lines(self, row: int, label: str) -> list[TextLine]:
        """``label`` wrapped into its box, centred vertically (an ellipsis marks a cut)."""
        font = _font(LABEL_FONT_PX)
        left, top, right, bottom = self.label_box(row)
        line_px = _line_px(font)
        lines = fit_text(label, right - left, max(1, (bottom - top) // line_px), font)
        y = top + max(0, (bottom - top - len(lines) * line_px + LINE_GAP_PX) // 2)
        return [
            TextLine(t, (left, y + i * line_px), LABEL_FONT_PX, (0, 0, 0))
            for i, t in enumerate(lines)
        ]


def header_lines(title: str, subtitle: str, width: int) -> tuple[list[TextLine], int]:
    """The header's lines (title, then the prompt, each wrapped to ``width`` minus the margins)
    and the header's height: as tall as its lines need."""
    lines: list[TextLine] = []
    y = HEADER_PAD_PX
    for text, size, fill, max_lines in (
        (title, TITLE_FONT_PX, (0, 0, 0), TITLE_LINES),
        (subtitle, TEXT_FONT_PX, (70, 70, 70), SUBTITLE_LINES),
    ):
        if not text:
            continue
        font = _font(size)
        for line in fit_text(text, width - 2 * GAP_PX, max_lines, font):
            lines.append(TextLine(line, (GAP_PX, y), size, fill))
            y += _line_px(font)
    return lines, y - LINE_GAP_PX + HEADER_PAD_PX


def sheet_layout(
    n_rows: int,
    n_frames: int = 6,
    cell_px: tuple[int, int] = (120, 180),
    label_px: int = 190,
    *,
    title: str = "",
    subtitle: str = "",
) -> SheetLayout:
    h, w = cell_px
    width = label_px + n_frames * (w + GAP_PX) + GAP_PX
    header, header_px = header_lines(title, subtitle, width)
    height = header_px + n_rows * (h + GAP_PX) + GAP_PX
    return SheetLayout(width, height, header_px, tuple(header), n_rows, n_frames, cell_px, label_px)


def sheet_size(
    n_rows: int,
    n_frames: int = 6,
    cell_px: tuple[int, int] = (120, 180),
    label_px: int = 190,
    *,
    title: str = "",
    subtitle: str = "",
) -> tuple[int, int]:
    """(width, height) in pixels of a sheet with ``n_rows`` image rows and this header text."""
    layout = sheet_layout(n_rows, n_frames, cell_px, label_px, title=title, subtitle=subtitle)
    return layout.width, layout.height


def sample_frames(frames: np.ndarray, n: int) -> np.ndarray:
    """``n`` frames spread evenly over ``frames`` (T, H, W, 3), first and last included."""
    t = len(frames)
    if t <= n:
        return frames
    idx = np.floor(np.linspace(0, t - 1, n) + 0.5).astype(int)
    return frames[idx]


def fit_text(text: str, width: int, max_lines: int, font=None) -> list[str]:
    """Wrap into at most ``max_lines`` lines of ``width`` pixels: at spaces, and inside a word
    too long for one line (method labels such as ``dualreal[num_groups=2,steps_scale=0.1]``,
    after a ``[`` or ``,`` where one fits); an ellipsis marks a cut."""
    font = font or _font(TEXT_FONT_PX)

    def fits(t: str) -> bool:
        return font.getlength(t) <= width

    lines: list[str] = []
    line = ""
    for word in text.split():
        trial = f"{line} {word}".strip()
        if fits(trial):
            line = trial
            continue
        if line:
            lines.append(line)
        line = ""
        if fits(word):
            line = word
            continue
        # the word alone does not fit either: break it, after "[" or "," where possible
        for part in re.split(r"(?<=[\[,])", word):
            if fits(line + part):
                line += part
                continue
            if line:
                lines.append(line)
                line = ""
            for ch in part:
                if fits(line + ch) or not line:
                    line += ch
                else:
                    lines.append(line)
                    line = ch
    if line:
        lines.append(line)
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        last = lines[-1]
        while last and not fits(last + "…"):
            last = last[:-1]
        lines[-1] = last + "…"
    return lines


def _draw(draw: ImageDraw.ImageDraw, line: TextLine) -> None:
    draw.text(line.xy, line.text, fill=line.fill, font=_font(line.size), anchor="la")


def contact_sheet(
    path: str | Path,
    *,
    title: str,
    reference_images: Sequence[np.ndarray] | None,
    motion_frames: np.ndarray | None,
    method_frames: Mapping[str, np.ndarray | None],
    subtitle: str = "",
    n_frames: int = 6,
    cell_px: tuple[int, int] = (120, 180),
    label_px: int = 190,
    motion_label: str = "motion clip",
    identity_label: str = "identity references",
) -> Path:
    """Write a contact sheet PNG (laid out by :func:`sheet_layout`) and return its path.

    Args:
        title: the header's first line(s) (the case, prompt index, seed, run);
        subtitle: below it, in grey (the prompt), wrapped onto up to three lines;
        reference_images: the identity's photos, uint8 (H, W, 3) each (``None``: a grey row
            saying they were not found); the first ``n_frames`` are shown.
        motion_frames: a motion reference clip, uint8 (T, H, W, 3), or ``None``.
        method_frames: method label -> its video for the sheet's prompt and seed (or ``None``
            when that method has no such video), in display order.
        cell_px: (height, width) of every cell; images are letterboxed into it.
    """
    rows: list[tuple[str, list[np.ndarray] | None]] = [
        (identity_label, None if reference_images is None else list(reference_images)[:n_frames]),
        (
            motion_label,
            None if motion_frames is None else list(sample_frames(motion_frames, n_frames)),
        ),
    ]
    rows += [
        (label, None if v is None else list(sample_frames(v, n_frames)))
        for label, v in method_frames.items()
    ]
    layout = sheet_layout(len(rows), n_frames, cell_px, label_px, title=title, subtitle=subtitle)
    sheet = Image.new("RGB", (layout.width, layout.height), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    for line in layout.header:
        _draw(draw, line)
    draw.line(
        [(GAP_PX, layout.header_px - 1), (layout.width - GAP_PX - 1, layout.header_px - 1)],
        fill=RULE,
    )
    for r, (label, images) in enumerate(rows):
        _draw_row(sheet, draw, layout, r, label, images)
    path = Path(path)
    with atomic_path(path) as tmp:
        sheet.save(tmp, format="PNG")
    return path


def _draw_row(
    sheet: Image.Image,
    draw: ImageDraw.ImageDraw,
    layout: SheetLayout,
    r: int,
    label: str,
    images: list[np.ndarray] | None,
) -> None:
    """Row ``r``: its label, then its images letterboxed into the cells (``None``: a grey bar
    saying "not available")."""
    for line in layout.label_lines(r, label):
        _draw(draw, line)
    if images is None:
        x0, y0, _, y1 = layout.cell_box(r, 0)
        x1 = layout.cell_box(r, layout.n_frames - 1)[2]
        draw.rectangle([x0, y0, x1 - 1, y1 - 1], fill=MISSING)
        draw.text(
            ((x0 + x1) // 2, (y0 + y1) // 2),
            "not available",
            fill=(90, 90, 90),
            font=_font(LABEL_FONT_PX),
            anchor="mm",
        )
        return
    ch, cw = layout.cell_px
    for j, img in enumerate(images[: layout.n_frames]):
        tile = ImageOps.pad(
            Image.fromarray(np.asarray(img, dtype=np.uint8)).convert("RGB"),
            (cw, ch),
            color=BACKGROUND,
        )
        sheet.paste(tile, layout.cell_box(r, j)[:2])
