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
from test_report import CASES, DEV, PROMPTS, TABLE1_METHODS, known_value, write_store

from dualreal_bench.media import write_image, write_video
from dualreal_bench.plots import (
    controller_size_px,
    load_controller_traces,
    plot_controller_curves,
    plot_metric_bars,
    plot_report,
    spread_of,
)
from dualreal_bench.report import build_report
from dualreal_bench.sheets import contact_sheet, sheet_size, sheets_for_report


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
        return known_value(label if label in DEV else "dualreal", case_id, p, field) + (
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


def test_plots_have_the_expected_size_and_content(video_store, tmp_path):
    results, _ = video_store
    rep = build_report(results, "r")
    bars = _png(plot_metric_bars(rep.records, tmp_path / "bars.png", size_px=(1200, 700)))
    assert bars.shape == (700, 1200, 3)
    _not_blank(bars)
    paths = plot_report(rep, tmp_path / "all", spread="iqr")
    assert [p.name for p in paths] == [
        "metric_bars.png",
        "fidelity_vs_motion.png",
        "controller_w_id.png",
    ]
    assert _png(paths[0]).shape == (800, 1600, 3)  # the defaults
    scatter = _png(paths[1])
    assert scatter.shape == (560, 1200, 3)
    _not_blank(scatter)
    curves = _png(paths[2])
    assert curves.shape[1::-1] == controller_size_px(2)  # two DualReal variants with traces
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
    assert _png(path).shape == (300, 400, 3)
    with pytest.raises(ValueError, match="no controller traces"):
        plot_controller_curves({}, tmp_path / "none.png")
    assert spread_of([1.0, 2.0, 3.0, 4.0], "iqr") == pytest.approx((0.75, 0.75))
    assert spread_of([], "std") == (0.0, 0.0)


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
    w, h = sheet_size(4, n_frames=4, cell_px=(60, 90), label_px=120)
    assert px.shape == (h, w, 3)
    from dualreal_bench.sheets import GAP_PX, TITLE_PX

    def cell_centre(row, col):
        y = TITLE_PX + GAP_PX + row * (60 + GAP_PX) + 30
        x = 120 + col * (90 + GAP_PX) + 45
        return px[y, x]

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
    assert px.shape[1::-1] == sheet_size(2 + 4)
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
    from dualreal_bench.sheets import find_references

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
    assert px.shape[1::-1] == sheet_size(2)
    _not_blank(px)


class _Tags(html.parser.HTMLParser):
    VOID = {"meta", "img", "br", "hr", "link", "input", "source"}

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
    from dualreal_bench.html_report import write_html_report

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
    assert "per_case" in page and "published numbers: not transcribed" in page
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
