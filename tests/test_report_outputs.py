"""Plots, contact sheets and the static HTML page of a report: PNGs of the expected size and
not blank, sheets laid out as documented, a self-contained page that renders in Chromium."""

from __future__ import annotations

import html.parser
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_report import CASES, DD, PROMPTS, TABLE1_METHODS, known_value, write_store

from dualreal_bench.media import write_image, write_video
from dualreal_bench.metrics import METRIC_FIELDS as FIELDS
from dualreal_bench.report import build_report, metric_columns
from dualreal_bench.report.contact_sheet import contact_sheet, sheet_layout, sheet_size
from dualreal_bench.report.controller_plot import (
    controller_size_px,
    load_controller_traces,
    plot_controller_curves,
)
from dualreal_bench.report.plots import plot_metric_bars, plot_report, spread_of
from dualreal_bench.report.sheets import sheets_for_report


def _png(path: Path) -> np.ndarray:
    assert path.is_file() and path.stat().st_size > 0
    with Image.open(path) as im:
        assert im.format == "PNG"
        return np.asarray(im.convert("RGB"))


def _not_blank(pixels: np.ndarray) -> None:
    assert pixels.std() > 5, "image is (almost) one colour"


def _traces(n_groups: int, steps: int = 6) -> np.ndarray:
    t = np.linspace(0, 1, steps)[:, None]
    return 0.1 + 0.08 * np.sin(t * 3 + np.arange(n_groups)[None, :])


@pytest.fixture(scope="module")
def video_store(tmp_path_factory):
    """A run with videos, DualReal controller traces, and a data root with the references
    (built once: the tests only read it)."""
    tmp_path = tmp_path_factory.mktemp("video_store")
    data = tmp_path / "data"
    for k, (ident, motion) in enumerate(CASES):
        for i in range(3):
            img = np.zeros((40, 40, 3), np.uint8)
            img[..., k] = 200
            img[: 10 * (i + 1)] = 255
            write_image(data / "identities" / ident / "images" / f"{i:02d}.png", img)
        clip = np.zeros((12, 24, 32, 3), np.uint8)
        for t in range(12):
            clip[t, :, : 2 * t + 2] = (0, 180, 90)
        write_video(data / "motions" / motion / "videos" / "clip0.mp4", clip, fps=8)
    methods = [*TABLE1_METHODS, ("dualreal[num_groups=2]", "dualreal", {"num_groups": 2})]
    traces = {"dualreal": _traces(7), "dualreal[num_groups=2]": _traces(2)}

    def value(label, case_id, p, field):
        return known_value(label if label in DD else "dualreal", case_id, p, field) + (
            0.05 if "2" in label else 0
        )

    write_store(
        tmp_path / "results",
        methods,
        CASES,
        PROMPTS,
        value,
        videos=True,
        traces=traces,
        data_root=data,
        skip={("lora", "idB__moB", 0)},
    )
    return tmp_path / "results", data


def _close(shape, size_px, tol=60):
    """A PNG saved with a tight bounding box is about the figure's size (margins trimmed/added)."""
    h, w = shape[:2]
    assert abs(w - size_px[0]) <= tol and abs(h - size_px[1]) <= tol, (shape, size_px)


def _texts_inside(fig):
    """Nothing drawn on ``fig`` (titles, tick labels, value labels, legends) extends past the
    figure: the layout fits before the tight bounding box has anything to rescue."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    tight = fig.get_tightbbox(renderer)  # inches, drawn artists only (what bbox_inches uses)
    w, h = fig.get_size_inches()
    tol = 0.02
    assert tight.x0 >= -tol and tight.y0 >= -tol, (tight, (w, h))
    assert tight.x1 <= w + tol and tight.y1 <= h + tol, (tight, (w, h))
    texts = [fig._suptitle] + [t for ax in fig.axes for t in [ax.title, *ax.texts]]
    texts += [
        t
        for leg in [*fig.legends, *(ax.get_legend() for ax in fig.axes)]
        if leg
        for t in leg.get_texts()
    ]
    texts = [t for t in texts if t is not None and t.get_text().strip()]
    for t in texts:
        ext = t.get_window_extent(renderer)
        assert fig.bbox.x0 - 1 <= ext.x0 and ext.x1 <= fig.bbox.x1 + 1, t.get_text()
        assert fig.bbox.y0 - 1 <= ext.y0 and ext.y1 <= fig.bbox.y1 + 1, t.get_text()
    assert len(texts) > 3


def test_plots_have_the_expected_size_and_content(video_store, tmp_path):
    from dualreal_bench.report.plots import bars_size_px

    results, _ = video_store
    rep = build_report(results, "r")
    bars = _png(plot_metric_bars(rep.records, tmp_path / "bars.png", size_px=(1200, 700)))
    _close(bars.shape, (1200, 700))
    _not_blank(bars)
    paths = plot_report(rep, tmp_path / "all", spread="iqr")
    assert [p.name for p in paths] == [
        "metric_bars.png",
        "fidelity_vs_motion.png",
        "controller_w_id.png",
    ]
    _close(_png(paths[0]).shape, bars_size_px(4))  # the defaults: 4 methods, 8 panels
    scatter = _png(paths[1])
    _close(scatter.shape, (1200, 560))
    _not_blank(scatter)
    curves = _png(paths[2])
    _close(curves.shape, controller_size_px(2))  # two DualReal variants with traces
    _not_blank(curves)


def test_controller_traces_are_averaged_per_method(video_store, tmp_path):
    results, _ = video_store
    rep = build_report(results, "r")
    traces = load_controller_traces(rep.run_dir, rep.records)
    assert set(traces) == {"dualreal", "dualreal[num_groups=2]"}
    assert traces["dualreal"].shape == (4, 6, 7)  # 4 videos, 6 denoising steps, 7 groups
    # write_store offsets each prompt's trace by 0.001 * prompt index
    np.testing.assert_allclose(
        traces["dualreal"][:, 0, 0] - _traces(7)[0, 0], [0, 0.001, 0.002, 0], atol=1e-12
    )
    path = plot_controller_curves(
        {"a": traces["dualreal"]}, tmp_path / "one.png", panel_px=(400, 300)
    )
    _close(_png(path).shape, (400, 300))
    with pytest.raises(ValueError, match="no controller traces"):
        plot_controller_curves({}, tmp_path / "none.png")
    assert spread_of([1.0, 2.0, 3.0, 4.0], "iqr") == pytest.approx((0.75, 0.75))
    assert spread_of([], "std") == (0.0, 0.0)


def _bar_records(values, field="clip_i"):
    """label -> case -> per-video values of ``field`` (every other metric 0.5), as records."""
    return [
        {
            "method": label,
            "method_name": label.split("[")[0],
            "case_id": case_id,
            "prompt_index": p,
            "seed": 0,
            "metrics": {f: (v if f == field else 0.5) for f in FIELDS},
        }
        for label, per_case in values.items()
        for case_id, vals in per_case.items()
        for p, v in enumerate(vals)
    ]


def _value_labels(ax):
    return [t.get_text() for t in ax.texts if t.get_gid() == "value-label"]


def _errorbars(ax):
    from matplotlib.container import ErrorbarContainer

    return [c for c in ax.containers if isinstance(c, ErrorbarContainer)]


def test_metric_bars_read_back_from_the_figure(video_store):
    """Bars are the tables' means, labelled with them; error bars only where a method has two
    cases; full method names; an axis starts at 0 unless the values are close."""
    from dualreal_bench.report.columns import BAR_FIELDS
    from dualreal_bench.report.plots import metric_bars_figure

    results, _ = video_store
    rep = build_report(results, "r")
    cells = {(row, f): t.cells[(row, f)] for t in rep.tables for row in t.rows for f in BAR_FIELDS}
    labels = ["base", "lora", "dualreal[num_groups=2]", "dualreal"]  # the tables' row order
    fig = metric_bars_figure(rep.records)
    axes = fig.axes
    assert len(axes) == len(BAR_FIELDS) == 8
    for ax, field in zip(axes, BAR_FIELDS, strict=True):
        means = [cells[(lb, field)].mean for lb in labels]
        widths = [bar.get_width() for bar in ax.containers[0]]
        np.testing.assert_allclose(widths, means, rtol=0, atol=1e-12)
        assert _value_labels(ax) == [f"{m:.4f}" for m in means]
        if ax.get_subplotspec().is_first_col():  # shared y axis: names in the first column
            assert [t.get_text() for t in ax.get_yticklabels()] == labels
        # lora has one case (its case-B video is missing): no error bar; the others have two
        (errs,) = _errorbars(ax)
        ys = sorted(seg[0][1] for seg in errs.lines[2][0].get_segments())
        assert ys == [0, 2, 3]
        low, high = ax.get_xlim()
        assert all(low <= m < high for m in means)
    clip_i = axes[BAR_FIELDS.index("clip_i")]  # 0.55, 0.5, 0.75, 0.7: far apart, from 0
    assert clip_i.get_xlim()[0] == 0 and clip_i.get_title() == "CLIP-I ↑"
    clip_t = axes[BAR_FIELDS.index("clip_t")]  # 0.255 .. 0.305: zoomed, and says so
    assert 0.2 < clip_t.get_xlim()[0] < 0.25 and clip_t.get_title() == "CLIP-T ↑ (zoomed)"
    assert "error bars: ± std" in fig._suptitle.get_text()
    _texts_inside(fig)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    for ax in axes:  # value labels inside their panel, beside the bars
        box = ax.get_window_extent(renderer)
        for t in ax.texts:
            ext = t.get_window_extent(renderer)
            assert box.x0 <= ext.x0 and ext.x1 <= box.x1, (ax.get_title(), t.get_text())


def test_metric_bars_one_case_close_values_long_label():
    """CLIP-I 0.96 vs 0.98 from one case each: no error bars, a zoomed axis on which the
    difference is visible, and a long method label wrapped, not cut."""
    from dualreal_bench.report.plots import metric_bars_figure

    long = "lora[lora_alpha=128.0,rank=128,steps_scale=0.1,target_modules=to_q+to_v]"
    fig = metric_bars_figure(_bar_records({"base": {"c": [0.96]}, long: {"c": [0.98]}}))
    ax = fig.axes[1]
    assert ax.get_title() == "CLIP-I ↑ (zoomed)"
    low, high = ax.get_xlim()
    assert 0.9 < low < 0.96 and (0.98 - 0.96) / (high - low) > 0.3  # 0-1 axis: 0.02 of it
    assert _value_labels(ax) == ["0.9600", "0.9800"]
    assert all(not _errorbars(a) for a in fig.axes)
    assert "no error bars" in fig._suptitle.get_text()
    ticks = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert "\n" in ticks[1] and ticks[1].replace("\n", "") == long
    assert ax.get_xlim() != fig.axes[0].get_xlim()  # every metric is 0.5: a panel from 0
    assert fig.axes[0].get_xlim()[0] == 0
    _texts_inside(fig)


def test_value_axis_limits_known_answers():
    from dualreal_bench.report.plots import LABEL_ROOM, MIN_ZOOM_WINDOW, value_axis_limits

    room = LABEL_ROOM / (1 - LABEL_ROOM)
    low, high, zoomed = value_axis_limits([0.96, 0.98])
    assert zoomed and low == pytest.approx(0.956) and high == pytest.approx(0.98 + room * 0.024)
    assert value_axis_limits([0.3, 0.05]) == pytest.approx((0.0, 0.3 * (1 + room), False))
    assert value_axis_limits([0.5]) == pytest.approx((0.0, 0.5 * (1 + room), False))
    assert value_axis_limits([0.5, 0.5]) == pytest.approx((0.0, 0.5 * (1 + room), False))
    # both signs: 0 inside, room for labels on both sides
    assert value_axis_limits([-0.08, 0.07]) == pytest.approx(
        (-0.08 - room * 0.15, 0.07 + room * 0.15, False)
    )
    # error bars count: 0.5 ± 0.3 and 0.52 are not close
    assert value_axis_limits([0.5, 0.52], [0.3, 0.0], [0.3, 0.0])[2] is False
    # the 4th decimal is not blown up to the panel's width
    low, high, zoomed = value_axis_limits([0.9966, 0.9967])
    assert zoomed and (0.9967 - low) >= MIN_ZOOM_WINDOW * 0.9967 / 2
    low, high, zoomed = value_axis_limits([-0.5, -0.52])  # negative bars grow to the left
    assert zoomed and high <= 0 and low < -0.52
    assert value_axis_limits([float("nan")]) == (0.0, 1.0, False)


def test_wrap_label_never_cuts():
    from dualreal_bench.report.figures import wrap_label

    for label in ["base", "dualreal[num_groups=2,steps_scale=0.1]", "x" * 60, "a b " * 12]:
        wrapped = wrap_label(label, 20)
        assert wrapped.replace("\n", "") == label
        assert all(len(line) <= 20 for line in wrapped.split("\n")) or "x" * 21 in label
    assert wrap_label("dualreal[num_groups=2,steps_scale=0.1]", 24) == (
        "dualreal[num_groups=2,\nsteps_scale=0.1]"
    )


def test_controller_and_scatter_texts_not_clipped(video_store):
    from dualreal_bench.report.controller_plot import controller_figure
    from dualreal_bench.report.plots import fidelity_figure

    results, _ = video_store
    rep = build_report(results, "r")
    long = "dualreal[controller_hidden=256,num_groups=2,steps_scale=0.01]"
    traces = load_controller_traces(rep.run_dir, rep.records)
    fig = controller_figure({long: traces["dualreal[num_groups=2]"], **traces})
    assert long in fig.axes[0].get_title().replace("\n", "")
    assert all(ax.get_legend() is not None for ax in fig.axes)
    _texts_inside(fig)
    scatter = fidelity_figure(rep.records)
    legend = scatter.legends[0]
    assert [t.get_text() for t in legend.get_texts()] == [
        "base",
        "lora",
        "dualreal[num_groups=2]",
        "dualreal",
    ]
    _texts_inside(scatter)


def test_contact_sheet_layout(tmp_path):
    refs = [np.full((50, 50, 3), (255, 0, 0), np.uint8)] * 2
    motion = np.zeros((30, 20, 30, 3), np.uint8)
    motion[..., 1] = np.arange(30)[:, None, None] * 8  # brightness grows with time
    methods = {"base": np.full((9, 24, 36, 3), (0, 0, 255), np.uint8), "lora": None}
    path = contact_sheet(
        tmp_path / "s.png",
        title="case",
        subtitle="a toy * swinging " * 20,
        reference_images=refs,
        motion_frames=motion,
        method_frames=methods,
        n_frames=4,
        cell_px=(60, 90),
        label_px=120,
    )
    px = _png(path)
    layout = sheet_layout(4, 4, (60, 90), 120, title="case", subtitle="a toy * swinging " * 20)
    assert px.shape == (layout.height, layout.width, 3)
    assert (layout.width, layout.height) == sheet_size(
        4,
        n_frames=4,
        cell_px=(60, 90),
        label_px=120,
        title="case",
        subtitle="a toy * swinging " * 20,
    )

    def cell_centre(row, col):
        x0, y0, x1, y1 = layout.cell_box(row, col)
        return px[(y0 + y1) // 2, (x0 + x1) // 2]

    assert tuple(cell_centre(0, 0)) == (255, 0, 0)  # identity references
    assert tuple(cell_centre(0, 3)) == (
        255,
        255,
        255,
    )  # only two references: empty cells stay white
    green = [int(cell_centre(1, j)[1]) for j in range(4)]
    assert (
        green == sorted(green) and green[0] < 10 < 200 < green[-1]
    )  # first .. last frame of the clip
    assert tuple(cell_centre(2, 1)) == (0, 0, 255)  # the method's frames
    assert tuple(cell_centre(3, 0)) == (225, 225, 225)  # a method without this video: grey


def _ink(px, box):
    left, top, right, bottom = box
    return int(px[top:bottom, left:right].min())


def test_contact_sheet_header_text_within_its_box(tmp_path):
    """The header's lines (title, then the prompt) are wrapped to the sheet's width, stacked
    without overlapping, inside the header above its rule; row labels inside their boxes."""
    from dualreal_bench.report.contact_sheet import GAP_PX, SUBTITLE_LINES, TITLE_LINES

    title = (
        "black_poodle__Kicking-Front · prompt 12, seed 0 · run paper-cogvideox-5b "
        "(suite paper, profile cogvideox-5b)"
    )
    prompt = "dog * wearing a cowboy hat is playing guitar on desert highway"
    label = "dualreal[controller_hidden=256,num_groups=2,steps_scale=0.1]"
    layout = sheet_layout(4, 4, (60, 90), 120, title=title, subtitle=prompt)
    lines = layout.header
    assert 2 < len(lines) <= TITLE_LINES + SUBTITLE_LINES
    # nothing cut: the lines give the title and the prompt back, word for word
    assert " ".join(line.text for line in lines) == f"{title} {prompt}"
    boxes = [line.bbox() for line in lines]
    for left, top, right, bottom in boxes:
        assert GAP_PX <= left and right <= layout.width - GAP_PX
        assert 0 <= top and bottom < layout.header_px - 1  # above the rule
    for upper, lower in zip(boxes, boxes[1:], strict=False):
        assert upper[3] <= lower[1], "header lines overlap"
    assert layout.row_top(0) > layout.header_px
    # row labels, at the default cell size: wrapped after "[" and ",", centred in their box
    default = sheet_layout(4, title=title, subtitle=prompt)
    label_lines = default.label_lines(3, label)
    assert len(label_lines) > 1 and "".join(line.text for line in label_lines) == label
    lb = default.label_box(3)
    for left, top, right, bottom in (line.bbox() for line in label_lines):
        assert lb[0] <= left and right <= lb[2] and lb[1] <= top and bottom <= lb[3]
    small = layout.label_lines(3, label)  # a 60-pixel row: as many lines as fit, then "…"
    assert len(small) == 3 and small[-1].text.endswith("…")

    refs = [np.full((50, 50, 3), (255, 0, 0), np.uint8)]
    path = contact_sheet(
        tmp_path / "s.png",
        title=title,
        subtitle=prompt,
        reference_images=refs,
        motion_frames=None,
        method_frames={"base": None, label: None},
    )
    px = _png(path).min(axis=2)
    layout = default
    assert px.shape == (layout.height, layout.width)
    boxes = [line.bbox() for line in layout.header]
    assert len(boxes) == 2  # at this width the title and the prompt take a line each
    for box in boxes:  # every line is drawn where the layout put it
        assert _ink(px, box) < 100
    header = px[: layout.header_px - 2]
    ink_rows = np.flatnonzero(header.min(axis=1) < 160)  # no ink outside the lines (1 px: AA)
    assert ink_rows.min() >= boxes[0][1] - 1 and ink_rows.max() <= boxes[-1][3]
    assert (px[layout.header_px - 1, GAP_PX : layout.width - GAP_PX] < 255).all()  # the rule
    assert (px[layout.header_px : layout.row_top(0)] == 255).all()  # then a clear gap
    for line in label_lines:
        assert _ink(px, line.bbox()) < 100

    # a prompt longer than the header's lines: cut, and the cut is marked
    long = sheet_layout(4, 4, (60, 90), 120, title="case", subtitle="a toy * swinging " * 20)
    assert len(long.header) == 1 + SUBTITLE_LINES and long.header[-1].text.endswith("…")
    assert long.header_px > sheet_layout(4, 4, (60, 90), 120, title="case").header_px


def test_sheets_from_a_run_find_videos_and_references(video_store, tmp_path):
    results, data = video_store
    rep = build_report(results, "r")
    sheets = sheets_for_report(rep, tmp_path / "sheets")
    assert [s.case_id for s in sheets] == ["idA__moA", "idB__moB"]
    a, b = sheets
    assert (a.prompt_index, a.seed) == (0, 0) and a.references_found
    assert set(a.videos) == {"base", "lora", "dualreal", "dualreal[num_groups=2]"}
    assert "lora" not in b.videos  # its only video of case B is missing
    px = _png(a.path)
    assert a.title == "idA__moA · prompt 0, seed 0 · run r (suite paper, profile cogvideox-5b)"
    assert px.shape[1::-1] == sheet_size(2 + 4, title=a.title, subtitle=f"“{a.prompt}”")
    _not_blank(px)
    only = sheets_for_report(rep, tmp_path / "one", cases=["idA__moA"], prompt_index=2)
    assert len(only) == 1 and only[0].prompt_index == 2
    from dualreal_bench.errors import DataError

    with pytest.raises(DataError, match="nope"):
        sheets_for_report(rep, tmp_path / "x", cases=["nope"])


def test_sheet_from_real_references(tmp_path):
    root = os.environ.get("DUALREAL_BENCH_DATA")
    if not root:
        pytest.skip("DUALREAL_BENCH_DATA is not set (real identity photos and UCF clips)")
    from dualreal_bench.media import read_images, read_video
    from dualreal_bench.report.sheets import find_references

    roots = [Path(root) / "dualreal_benchmark", Path(root)]
    images, clips = find_references(
        "black_poodle", "Kicking-Front", roots
    )  # RGBA PNGs; a 23-frame clip
    assert images and clips
    path = contact_sheet(
        tmp_path / "real.png",
        title="black_poodle__Kicking-Front",
        reference_images=read_images(images),
        method_frames={},
        motion_frames=read_video(clips[0], num_frames=6, sampling="uniform", pad="none"),
    )
    px = _png(path)
    assert px.shape[1::-1] == sheet_size(2, title="black_poodle__Kicking-Front")
    _not_blank(px)


class _Tags(html.parser.HTMLParser):
    VOID = {"meta", "img", "br", "hr", "link", "input", "source", "wbr"}

    def __init__(self):
        super().__init__()
        self.stack, self.errors, self.srcs = [], [], []

    def handle_starttag(self, tag, attrs):
        self.srcs += [v for k, v in attrs if k in ("src", "href")]
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack.pop() != tag:
            self.errors.append(tag)


def _html(results, out, **kw):
    from dualreal_bench.report.html import write_html_report

    return write_html_report(out, [build_report(results, "r", breakdowns=("identity",))], **kw)


def test_html_page_is_self_contained(video_store, tmp_path):
    results, _ = video_store
    page = _html(results, tmp_path / "site" / "index.html")
    text = page.read_text()
    parser = _Tags()
    parser.feed(text)
    assert not parser.errors and parser.stack == []
    # Tables 1 and 3 (n = 2 and 7) and the per-identity breakdown
    assert text.count("<table class='metrics'") == 3
    assert text.count("data:image/png;base64,") == 3 + 2  # three plots, two sheets
    assert text.count("data:video/mp4;base64,") == 7  # the sheets' videos, all small
    external = [s for s in parser.srcs if not s.startswith("data:")]
    assert not external, "external resource in a self-contained page"
    # large videos are linked relative to the page instead
    site = tmp_path / "site2"
    linked = _html(
        results, site / "index.html", embed_video_bytes=0, cases=["idA__moA"]
    ).read_text()
    video = results / "r" / "base" / "idA__moA" / "videos" / "p000_s0.mp4"
    assert "data:video/mp4" not in linked
    assert f"src='{Path(os.path.relpath(video, site)).as_posix()}'" in linked


class _Page(html.parser.HTMLParser):
    """Videos (their attributes), headings (level, text) and footnote items per run section."""

    def __init__(self):
        super().__init__()
        self.videos, self.headings, self.sections = [], [], []
        self._heading = None
        self._li = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "video":
            self.videos.append(attrs)
        elif tag in ("h2", "h3", "h4", "h5"):
            self._heading = [tag, ""]
        elif tag == "section" and attrs.get("class") == "run":
            self.sections.append([])
        elif tag == "li":
            self._li = ""

    def handle_data(self, data):
        if self._heading is not None:
            self._heading[1] += data
        if self._li is not None:
            self._li += data

    def handle_endtag(self, tag):
        if tag in ("h2", "h3", "h4", "h5") and self._heading is not None:
            self.headings.append(tuple(self._heading))
            self._heading = None
        elif tag == "li" and self._li is not None:
            self.sections[-1].append(self._li)
            self._li = None


def test_html_videos_have_posters_sizes_and_headings_and_notes_appear_once(video_store, tmp_path):
    import base64
    import io

    from dualreal_bench.media import read_video
    from dualreal_bench.report.html import VIDEO_BOX_PX

    results, _ = video_store
    page = _html(results, tmp_path / "index.html")
    parsed = _Page()
    parsed.feed(page.read_text())
    assert len(parsed.videos) == 7
    for video in parsed.videos:
        # the fixture's videos are 48 x 32: fitted into the 320 x 240 box, aspect kept
        assert (int(video["width"]), int(video["height"])) == (320, 213)
        assert int(video["width"]) <= VIDEO_BOX_PX[0] and int(video["height"]) <= VIDEO_BOX_PX[1]
        assert video["poster"].startswith("data:image/jpeg;base64,")
    # the poster is the video's middle frame
    first = parsed.videos[0]
    with Image.open(io.BytesIO(base64.b64decode(first["poster"].split(",", 1)[1]))) as im:
        poster = np.asarray(im.convert("RGB"), dtype=float)
    video = results / "r" / "base" / "idA__moA" / "videos" / "p000_s0.mp4"
    frames = read_video(video, num_frames=3, sampling="uniform", pad="none")
    assert poster.shape == frames[1].shape
    assert np.abs(poster - frames[1]).mean() < 6  # JPEG
    assert first["src"].startswith("data:video/mp4;base64,")
    # captions break a long label between its options, not inside a number
    assert "<figcaption style='max-width: 320px'>dualreal[<wbr>num_groups=2]</figcaption>" in (
        page.read_text()
    )
    # headings: the run, its parts, one per case and one over each case's videos
    assert ("h2", "Run r — suite paper, profile cogvideox-5b") in parsed.headings
    for h3 in ("Tables", "Plots", "Cases: contact sheets and videos"):
        assert ("h3", h3) in parsed.headings
    h4 = [text for level, text in parsed.headings if level == "h4"]
    assert h4 == ["Notes", "idA__moA", "idB__moB"]
    h5 = [text for level, text in parsed.headings if level == "h5"]
    assert h5 == ["Videos (4 methods)", "Videos (3 methods)"]  # lora lacks case B's video
    # footnotes once per section: the three tables share most of theirs
    (notes,) = parsed.sections
    assert len(notes) == len(set(notes)), [n for n in notes if notes.count(n) > 1]
    assert any(n.startswith("best in bold") for n in notes)
    assert "one block per identity; best/second marked within each block" in notes


def test_html_notes_shared_by_tables_are_listed_once():
    from dualreal_bench.report import Table
    from dualreal_bench.report.html import section_notes

    def table(notes):
        return Table("t", metric_columns(), [], {}, 0, notes=list(notes))

    own, shared = section_notes([table(["a", "b"]), table(["b", "c"]), table([])])
    assert own == [["a"], ["c"], []]
    assert shared[-1] == "b" and shared[0].startswith("best in bold")  # the renderers' own notes
    tiny = "tiny profile: random-initialised models; a pipeline check, not a measurement"
    own, shared = section_notes([table([tiny])])
    assert tiny not in own[0] + shared  # the section's header says it


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def test_html_page_renders_in_headless_chromium(video_store, tmp_path):
    browser = _chromium()
    if browser is None:
        pytest.skip("Chromium is not installed (Debian: apt-get install -y chromium)")
    results, _ = video_store
    page = _html(results, tmp_path / "index.html")
    shot = tmp_path / "shot.png"
    cmd = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
        f"--screenshot={shot}",
        "--window-size=1280,2000",
        "--hide-scrollbars",
        page.as_uri(),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert shot.is_file(), f"no screenshot (exit {proc.returncode}): {proc.stderr[-2000:]}"
    px = _png(shot)
    assert px.shape == (2000, 1280, 3)
    _not_blank(px)
    dark = (px.sum(axis=2) < 200).mean()
    assert dark > 0.002, "no text or images drawn"


def test_cli_writes_plots_sheets_and_html(video_store, tmp_path, capsys):
    from dualreal_bench.cli import main

    results, data = video_store
    args = [
        "report",
        "--output-dir",
        str(results),
        "--run-id",
        "r",
        "--data-root",
        str(data),
        "--plots",
        str(tmp_path / "p"),
        "--sheets",
        str(tmp_path / "s"),
        "--case",
        "idB__moB",
        "--html",
        str(tmp_path / "page.html"),
        "--compare-paper",
        "--per-case",
    ]
    assert main(args) == 0
    assert capsys.readouterr().out == ""  # files asked for, no table printed without --table
    assert sorted(p.name for p in (tmp_path / "p").iterdir()) == [
        "controller_w_id.png",
        "fidelity_vs_motion.png",
        "metric_bars.png",
    ]
    assert [p.name for p in (tmp_path / "s").iterdir()] == ["idB__moB.png"]
    page = (tmp_path / "page.html").read_text()
    assert "per_case" in page and "paper: published values" in page
    assert "↳ paper (DualReal (Ours))" in page  # the shipped numbers beside the measured row
    assert (
        main(
            [
                "report",
                "--output-dir",
                str(results),
                "--sheets",
                str(tmp_path / "x"),
                "--case",
                "zz",
            ]
        )
        == 2
    )
    assert "zz" in capsys.readouterr().err
