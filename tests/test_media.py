"""Tests of dualreal_bench.media: image modes, video decoding and sampling, writing, errors."""

from __future__ import annotations

import os
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from PIL import Image

from dualreal_bench.errors import ConfigError, MediaError
from dualreal_bench.media import (
    VideoInfo,
    fps_interval,
    list_images,
    list_videos,
    probe_video,
    read_image,
    read_images,
    read_video,
    resize_frames,
    sample_indices,
    write_frame_strip,
    write_image,
    write_video,
)

DATA = os.environ.get("DUALREAL_BENCH_DATA")
needs_data = pytest.mark.skipif(not DATA, reason="DUALREAL_BENCH_DATA is not set (real test data)")


def _data(*parts: str) -> Path:
    path = Path(DATA, *parts)
    if not path.exists():
        pytest.skip(f"{path} is missing from DUALREAL_BENCH_DATA")
    return path


def _assert_media_error(excinfo: pytest.ExceptionInfo, path: Path, *fragments: str) -> None:
    message = str(excinfo.value)
    assert str(path) in message
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message


def _assert_close_to_opencv(ours: np.ndarray, opencv: np.ndarray) -> None:
    """Our decode is swscale's bit-exact C path, OpenCV's its SIMD fast path: they round
    differently, by at most 3 levels (0.7 on average on the benchmark's AVIs)."""
    assert ours.shape == opencv.shape and ours.dtype == opencv.dtype == np.uint8
    diff = np.abs(ours.astype(np.int16) - opencv)
    assert diff.max() <= 3 and diff.mean() < 1.0, (diff.max(), diff.mean())


def _cv2_frames(path: Path) -> np.ndarray:
    """Naive reference decoder: every frame through cv2.VideoCapture, BGR -> RGB."""
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame[..., ::-1])
    cap.release()
    return np.stack(frames)


def _moving_frames(t: int = 16, h: int = 64, w: int = 96) -> np.ndarray:
    """Smooth synthetic clip (a colour gradient and a bright square moving right)."""
    yy, xx = np.mgrid[0:h, 0:w]
    frames = np.empty((t, h, w, 3), np.uint8)
    for i in range(t):
        frames[i, ..., 0] = (xx * 255 // (w - 1)).astype(np.uint8)
        frames[i, ..., 1] = (yy * 255 // (h - 1)).astype(np.uint8)
        frames[i, ..., 2] = 60
        x0 = 4 + 3 * i
        frames[i, 20:36, x0 : x0 + 16] = (250, 250, 250)
    return frames


# ---- images ------------------------------------------------------------------------------


def test_rgba_transparent_area_becomes_white(tmp_path):
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., 0] = 255  # red everywhere
    rgba[:, 4:, 3] = 255  # right half opaque, left half fully transparent
    rgba[0, 0, 3] = 128  # one half-transparent pixel
    path = tmp_path / "rgba.png"
    Image.fromarray(rgba, "RGBA").save(path)
    img = read_image(path)
    assert img.dtype == np.uint8 and img.shape == (8, 8, 3)
    assert (img[:, 4:] == (255, 0, 0)).all()
    assert (img[1:, :4] == 255).all()
    # red at alpha 128 over white: G = B = 255 * 127 / 255 = 127
    assert tuple(img[0, 0]) == (255, 127, 127)


def test_la_composited_on_white(tmp_path):
    la = np.zeros((4, 4, 2), np.uint8)
    la[..., 0] = 100
    la[:2, :, 1] = 255
    path = tmp_path / "la.png"
    Image.fromarray(la, "LA").save(path)
    img = read_image(path)
    assert (img[:2] == 100).all() and (img[2:] == 255).all()


def test_palette_with_transparency(tmp_path):
    im = Image.new("P", (6, 4))
    im.putpalette([0, 0, 0, 0, 0, 255, 0, 200, 0] + [0] * (253 * 3))
    idx = np.zeros((4, 6), np.uint8)
    idx[:, 2:4] = 1
    idx[:, 4:] = 2
    im.putdata(idx.ravel().tolist())
    im.info["transparency"] = 0
    path = tmp_path / "p.png"
    im.save(path, transparency=0)
    assert Image.open(path).mode == "P"
    img = read_image(path)
    assert (img[:, :2] == 255).all()  # palette index 0 is transparent -> white, not black
    assert (img[:, 2:4] == (0, 0, 255)).all()
    assert (img[:, 4:] == (0, 200, 0)).all()


def test_grayscale_and_bilevel(tmp_path):
    gray = np.arange(64, dtype=np.uint8).reshape(8, 8) * 4
    Image.fromarray(gray, "L").save(tmp_path / "l.png")
    img = read_image(tmp_path / "l.png")
    assert img.shape == (8, 8, 3)
    assert (img == gray[..., None]).all()
    Image.fromarray(gray > 100).convert("1").save(tmp_path / "b.png")
    assert set(np.unique(read_image(tmp_path / "b.png"))) == {0, 255}


@pytest.mark.parametrize("fmt", ["png16", "tiff16be", "tiff_int32"])
def test_sixteen_bit_is_scaled_not_clipped(tmp_path, fmt):
    ramp = np.linspace(0, 65535, 256).round().astype(np.uint16)
    data = np.tile(ramp, (4, 1))
    if fmt == "png16":
        path = tmp_path / "g.png"
        Image.fromarray(data).save(path)  # mode I;16
    elif fmt == "tiff16be":
        path = tmp_path / "g.tif"
        Image.frombytes("I;16B", (256, 4), data.astype(">u2").tobytes()).save(path)
    else:
        path = tmp_path / "g.tif"
        Image.fromarray(data.astype(np.int32)).save(path)  # mode I
    img = read_image(path)
    assert img.dtype == np.uint8 and img.shape == (4, 256, 3)
    row = img[0, :, 0].astype(int)
    assert (np.diff(row) >= 0).all(), "8-bit values must increase with the 16-bit values"
    assert row[0] == 0 and row[-1] == 255
    assert len(np.unique(row)) > 200  # a real ramp, not a clipped step (clipping gives 2 levels)
    np.testing.assert_allclose(row, ramp / 257.0, atol=0.5 + 1e-9)


def test_float_image(tmp_path):
    Image.fromarray(np.linspace(0, 1, 16, dtype=np.float32)[None]).save(tmp_path / "f.tif")
    row = read_image(tmp_path / "f.tif")[0, :, 0]
    assert row[0] == 0 and row[-1] == 255 and (np.diff(row.astype(int)) > 0).all()


@pytest.mark.parametrize("suffix", [".tif", ".jpg"])
def test_cmyk(tmp_path, suffix):
    path = tmp_path / f"cmyk{suffix}"
    Image.new("CMYK", (8, 8), (255, 0, 0, 0)).save(path, quality=100)  # pure cyan ink
    img = read_image(path)
    assert img.shape == (8, 8, 3)
    np.testing.assert_allclose(img[4, 4], (0, 255, 255), atol=3)


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_exif_orientation_6_rotates(tmp_path, suffix):
    # stored 20 high x 40 wide, a red block in the stored top-left corner
    stored = np.full((20, 40, 3), 255, np.uint8)
    stored[:6, :6] = (255, 0, 0)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    path = tmp_path / f"rot{suffix}"
    Image.fromarray(stored).save(path, exif=exif, quality=100)
    img = read_image(path)
    assert img.shape == (40, 20, 3)  # displayed upright: 40 high, 20 wide
    red = (img[..., 0] > 200) & (img[..., 1] < 60)
    ys, xs = np.nonzero(red)
    # clockwise rotation moves the stored top-left corner to the displayed top-right
    assert ys.max() < 8 and xs.min() >= 20 - 8


def test_read_images_and_list_images(tmp_path):
    for name in ["img10.png", "img2.PNG", "img1.jpg", ".hidden.png", "notes.txt"]:
        if name.endswith("txt"):
            (tmp_path / name).write_text("x")
        else:
            Image.new("RGB", (4, 3), (1, 2, 3)).save(
                tmp_path / name, format="PNG" if "png" in name.lower() else "JPEG"
            )
    (tmp_path / "sub.png").mkdir()
    names = [p.name for p in list_images(tmp_path)]
    assert names == ["img1.jpg", "img2.PNG", "img10.png"]  # numbers sort numerically
    images = read_images(list_images(tmp_path))
    assert [im.shape for im in images] == [(3, 4, 3)] * 3
    assert list_videos(tmp_path, allow_empty=True) == []


def test_write_image_round_trip(tmp_path):
    img = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    path = write_image(tmp_path / "out" / "x.png", img)
    assert (read_image(path) == img).all()
    assert [p.name for p in path.parent.iterdir()] == ["x.png"]  # no temp file left behind


@needs_data
def test_real_rgba_pngs_black_poodle():
    paths = list_images(_data("identities", "black_poodle", "images"))
    assert len(paths) == 5
    for path, img in zip(paths, read_images(paths), strict=True):
        assert img.dtype == np.uint8 and img.shape == (480, 720, 3)
        with Image.open(path) as im:
            assert im.mode == "RGBA"
            rgba = np.asarray(im)
        # the alpha channel is fully opaque here: the colours must come through unchanged
        assert (img == rgba[..., :3]).all()


@needs_data
def test_real_jpgs_dreambooth():
    paths = list_images(_data("identities", "dog", "images"))
    img = read_image(paths[0])
    assert img.dtype == np.uint8 and img.shape == (512, 512, 3)


# ---- sampling ----------------------------------------------------------------------------


def test_sample_indices_first_and_uniform():
    assert sample_indices(100, 25, num_frames_out=5) == [0, 1, 2, 3, 4]
    assert sample_indices(7, 25) == list(range(7))
    assert sample_indices(10, num_frames_out=4, sampling="uniform") == [0, 3, 6, 9]
    # linspace(0, 3, 3) = 0, 1.5, 3: halves round up
    assert sample_indices(4, num_frames_out=3, sampling="uniform") == [0, 2, 3]
    uni = sample_indices(168, 25.0, num_frames_out=49, sampling="uniform")
    assert len(uni) == 49 and uni[0] == 0 and uni[-1] == 167 and (np.diff(uni) > 0).all()
    assert sample_indices(9, num_frames_out=1, sampling="uniform") == [0]


@pytest.mark.parametrize("fps", [10.0, 20.0, 24.0, 25.0, 29.97002997, 30.0, 50.0, 60.0])
def test_fps_sampling_matches_vbench_dynamic_degree(fps):
    # VBench dynamic_degree.py: interval = round(fps / 8); frames[0::interval]
    num_frames = 131
    vbench = list(range(num_frames))[:: round(fps / 8)]
    assert sample_indices(num_frames, fps, sampling="fps", target_fps=8) == vbench


def test_fps_interval_values():
    assert fps_interval(25, 8) == 3
    assert fps_interval(29.97, 8) == 4
    assert fps_interval(10, 8) == 1
    assert fps_interval(20, 8) == 2  # 2.5 rounds half to even, as Python's round in VBench
    assert fps_interval(4, 8) == 1  # never duplicates frames: slower sources keep every frame
    assert sample_indices(168, 25, num_frames_out=49, sampling="fps", target_fps=8) == list(
        range(0, 147, 3)
    )


def test_short_clip_policy():
    with pytest.raises(MediaError, match="23 frames, fewer than the 49 requested"):
        sample_indices(23, 10, num_frames_out=49)
    with pytest.raises(MediaError, match="fewer than the 49"):
        sample_indices(23, 10, num_frames_out=49, sampling="uniform")
    padded = sample_indices(23, 10, num_frames_out=49, pad="repeat_last")
    assert padded == list(range(23)) + [22] * 26
    assert (
        sample_indices(23, 10, num_frames_out=49, sampling="uniform", pad="repeat_last") == padded
    )
    assert sample_indices(23, 10, num_frames_out=49, pad="none") == list(range(23))
    # fps sampling counts the resampled frames: 100 frames at 25 fps -> 34 at about 8 fps
    with pytest.raises(MediaError, match="34 frames at 8 fps"):
        sample_indices(100, 25, num_frames_out=49, sampling="fps", target_fps=8)
    with pytest.raises(MediaError, match="no decodable frames"):
        sample_indices(0, 25, num_frames_out=1)


def test_sample_indices_rejects_bad_options():
    with pytest.raises(ConfigError, match="sampling"):
        sample_indices(10, 25, sampling="random")
    with pytest.raises(ConfigError, match="target_fps only applies"):
        sample_indices(10, 25, sampling="first", target_fps=8)
    with pytest.raises(ConfigError, match="needs target_fps"):
        sample_indices(10, 25, sampling="fps")
    with pytest.raises(ConfigError, match="pad"):
        sample_indices(10, 25, pad="loop")
    with pytest.raises(ConfigError, match="num_frames"):
        sample_indices(10, 25, num_frames_out=0)


# ---- resizing ----------------------------------------------------------------------------


def test_resize_crop_is_exact_centre_crop_when_no_scaling_needed():
    frames = np.random.default_rng(0).integers(0, 256, (2, 100, 200, 3), dtype=np.uint8)
    out = resize_frames(frames, (100, 100), mode="crop")
    assert (out == frames[:, :, 50:150]).all()


def _disc_frame(h: int, w: int) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    frame = np.zeros((h, w, 3), np.uint8)
    frame[np.hypot(yy - h / 2, xx - w / 2) < 0.3 * h] = 255
    return frame


def _blob_aspect(img: np.ndarray) -> float:
    ys, xs = np.nonzero(img[..., 0] > 127)
    return (xs.max() - xs.min() + 1) / (ys.max() - ys.min() + 1)


def test_resize_crop_keeps_aspect_stretch_does_not():
    frame = _disc_frame(240, 320)  # UCF101 size to the backbone's 480x720
    crop = resize_frames(frame, (480, 720), mode="crop")
    stretch = resize_frames(frame, (480, 720), mode="stretch")
    assert crop.shape == stretch.shape == (480, 720, 3)
    assert abs(_blob_aspect(crop) - 1.0) < 0.03
    assert abs(_blob_aspect(stretch) - 1.125) < 0.03  # (720 / 320) / (480 / 240)
    # downscaling keeps a constant image constant (no ringing) and the disc centred
    small = resize_frames(frame[None].repeat(3, 0), (60, 60), mode="crop")
    assert small.shape == (3, 60, 60, 3)
    ys, xs = np.nonzero(small[0, ..., 0] > 127)
    assert abs(ys.mean() - 29.5) < 1 and abs(xs.mean() - 29.5) < 1
    flat = np.full((3, 30, 50, 3), 77, np.uint8)
    assert (resize_frames(flat, (64, 64)) == 77).all()


def test_resize_rejects_bad_size():
    with pytest.raises(ConfigError):
        resize_frames(np.zeros((4, 4, 3), np.uint8), (0, 4))
    with pytest.raises(ConfigError):
        resize_frames(np.zeros((4, 4, 3), np.uint8), (4, 4), mode="fit")


# ---- real videos -------------------------------------------------------------------------


@needs_data
def test_ucf101_avi_decodes_like_opencv():
    path = _data("dualreal_benchmark", "motions", "TaiChi", "videos", "v_TaiChi_g01_c01.avi")
    reference = _cv2_frames(path)
    info = probe_video(path)
    assert info == VideoInfo(num_frames=168, fps=25.0, width=320, height=240, codec="mpeg4")
    assert len(reference) == 168

    first = read_video(path, num_frames=49)
    assert first.dtype == np.uint8 and first.shape == (49, 240, 320, 3)
    _assert_close_to_opencv(first, reference[:49])

    everything = read_video(path)
    assert (everything[:49] == first).all()
    uniform = read_video(path, num_frames=16, sampling="uniform")
    assert (uniform == everything[sample_indices(168, num_frames_out=16, sampling="uniform")]).all()
    _assert_close_to_opencv(
        uniform, reference[sample_indices(168, num_frames_out=16, sampling="uniform")]
    )

    at8 = read_video(path, sampling="fps", target_fps=8)
    assert at8.shape[0] == 56  # 168 frames, every 3rd
    assert (at8 == everything[::3]).all()

    resized = read_video(path, num_frames=49, size=(480, 720))
    assert resized.shape == (49, 480, 720, 3)
    assert (resized == resize_frames(first, (480, 720))).all()


@needs_data
def test_ucf101_ntsc_rate():
    videos = list_videos(_data("dualreal_benchmark", "motions", "Basketball", "videos"))
    info = probe_video(videos[0])
    assert abs(info.fps - 29.97) < 0.01
    frames = read_video(videos[0], num_frames=10, sampling="fps", target_fps=8)
    assert frames.shape[0] == 10
    assert (frames == read_video(videos[0])[0:40:4]).all()  # round(29.97 / 8) = 4
    _assert_close_to_opencv(frames, _cv2_frames(videos[0])[0:40:4])


@needs_data
def test_ucf_sports_short_clip_policy():
    path = _data("dualreal_benchmark", "motions", "Kicking-Front", "videos", "1084-44_l865.avi")
    info = probe_video(path)
    assert (info.num_frames, info.fps, info.width, info.height) == (23, 10.0, 480, 360)
    with pytest.raises(MediaError) as excinfo:
        read_video(path, num_frames=49)
    _assert_media_error(excinfo, path, "23 frames", "49 requested", "repeat_last")

    padded = read_video(path, num_frames=49, pad="repeat_last", size=(480, 720))
    assert padded.shape == (49, 480, 720, 3)
    assert (padded[22:] == padded[22]).all()
    assert not (padded[21] == padded[22]).all()
    assert read_video(path, num_frames=49, pad="none").shape == (23, 360, 480, 3)
    assert read_video(path, num_frames=16, sampling="uniform").shape == (16, 360, 480, 3)


# ---- writing -----------------------------------------------------------------------------


def test_write_read_round_trip_and_determinism(tmp_path):
    frames = _moving_frames()
    path = write_video(tmp_path / "v" / "clip.mp4", frames, fps=8)
    assert path == tmp_path / "v" / "clip.mp4"
    assert [p.name for p in path.parent.iterdir()] == ["clip.mp4"]  # temp file renamed
    info = probe_video(path)
    assert info == VideoInfo(num_frames=16, fps=8.0, width=96, height=64, codec="h264")
    back = read_video(path)
    assert back.shape == frames.shape
    assert np.abs(back.astype(int) - frames).mean() < 3.0
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.pix_fmt == "yuv420p"
    # the same frames give the same bytes (x264 with a fixed thread count, no timestamps)
    again = write_video(tmp_path / "again.mp4", frames, fps=8)
    assert again.read_bytes() == path.read_bytes()
    # overwriting replaces the file in one step
    write_video(path, frames[:8], fps=8)
    assert probe_video(path).num_frames == 8


def test_write_video_non_integer_fps_and_list_input(tmp_path):
    frames = list(_moving_frames(6))
    path = write_video(tmp_path / "ntsc.mp4", frames, fps=30000 / 1001)
    assert abs(probe_video(path).fps - 29.97) < 0.01


def test_write_video_odd_size(tmp_path):
    frames = _moving_frames(4, 63, 95)
    with pytest.raises(ValueError, match="even height and width"):
        write_video(tmp_path / "odd.mp4", frames)
    assert not (tmp_path / "odd.mp4").exists()
    assert list(tmp_path.iterdir()) == []  # nothing half-written
    path = write_video(tmp_path / "odd.mp4", frames, pad_odd=True)
    assert read_video(path).shape == (4, 64, 96, 3)


def test_write_video_rejects_bad_frames(tmp_path):
    with pytest.raises(ValueError, match="uint8"):
        write_video(tmp_path / "f.mp4", np.zeros((2, 8, 8, 3), np.float32))
    with pytest.raises(ValueError, match=r"\(T, H, W, 3\)"):
        write_video(tmp_path / "f.mp4", np.zeros((8, 8, 3), np.uint8))
    assert list(tmp_path.iterdir()) == []


def test_display_rotation_is_applied(tmp_path):
    stored = np.zeros((3, 32, 64, 3), np.uint8)
    stored[:, :8, :8] = 255  # white block in the stored top-left corner
    path = tmp_path / "rot.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=8)
        stream.width, stream.height, stream.pix_fmt = 64, 32, "yuv420p"
        stream.set_display_rotation(90)  # 90 degrees counterclockwise, as phones record
        for i, rgb in enumerate(stored):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    info = probe_video(path)
    assert (info.width, info.height) == (32, 64)
    frames = read_video(path)
    assert frames.shape == (3, 64, 32, 3)
    ys, xs = np.nonzero(frames[0, ..., 0] > 128)
    assert ys.min() >= 64 - 10 and xs.max() < 10  # top-left turned counterclockwise: bottom-left
    cap = cv2.VideoCapture(str(path))  # OpenCV auto-rotates too: same orientation
    ok, bgr = cap.read()
    assert ok and bgr.shape == (64, 32, 3)


def test_frame_strip(tmp_path):
    frames = np.stack([np.full((32, 48, 3), 10 * i, np.uint8) for i in range(20)])
    path = write_frame_strip(tmp_path / "strip.png", frames, n=8)
    strip = read_image(path)
    assert strip.shape == (32, 8 * 48, 3)
    tiles = [strip[0, 48 * k, 0] for k in range(8)]
    expected = [10 * i for i in sample_indices(20, num_frames_out=8, sampling="uniform")]
    assert tiles == expected and tiles[0] == 0 and tiles[-1] == 190
    with Image.open(path) as im:
        assert im.format == "PNG" and im.size == (384, 32)
    small = read_image(write_frame_strip(tmp_path / "small.png", frames, n=8, height=16))
    assert small.shape == (16, 8 * 24, 3)
    few = read_image(write_frame_strip(tmp_path / "few.png", frames[:3], n=8))
    assert few.shape == (32, 3 * 48, 3)


# ---- bad inputs --------------------------------------------------------------------------


def _valid_jpeg_bytes() -> bytes:
    import io

    buf = io.BytesIO()
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(noise).save(buf, format="JPEG", quality=95)
    return buf.getvalue()


@pytest.mark.parametrize(
    ("name", "content", "fragment"),
    [
        ("empty.jpg", b"", "empty file"),
        ("truncated.jpg", "half", "cannot decode image"),
        ("text.png", b"this is not a PNG, just some text\n", "not a recognised image"),
    ],
)
def test_bad_images(tmp_path, name, content, fragment):
    path = tmp_path / name
    if content == "half":
        good = _valid_jpeg_bytes()
        content = good[: len(good) // 2]
    path.write_bytes(content)
    with pytest.raises(MediaError) as excinfo:
        read_image(path)
    _assert_media_error(excinfo, path, fragment)


def test_missing_paths(tmp_path):
    for reader in (read_image, read_video, probe_video):
        with pytest.raises(MediaError) as excinfo:
            reader(tmp_path / "nope.png")
        _assert_media_error(excinfo, tmp_path / "nope.png", "no such file")
    with pytest.raises(MediaError) as excinfo:
        read_image(tmp_path)
    _assert_media_error(excinfo, tmp_path, "is a directory")


def test_directory_without_images(tmp_path):
    (tmp_path / "readme.txt").write_text("no images here")
    with pytest.raises(MediaError) as excinfo:
        list_images(tmp_path)
    _assert_media_error(excinfo, tmp_path, "no image files")
    with pytest.raises(MediaError) as excinfo:
        list_videos(tmp_path)
    _assert_media_error(excinfo, tmp_path, "no video files")
    with pytest.raises(MediaError) as excinfo:
        list_images(tmp_path / "missing")
    _assert_media_error(excinfo, tmp_path / "missing", "no such directory")


def _zero_frame_avi(path: Path) -> Path:
    container = av.open(str(path), "w", format="avi")
    stream = container.add_stream("mpeg4", rate=8)
    stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
    container.start_encoding()  # header written, no frame ever muxed
    container.close()
    return path


@pytest.mark.parametrize(
    "case", ["zero_byte_avi", "truncated_mp4", "text_mp4", "zero_frames_avi", "image_as_mp4"]
)
def test_bad_videos(tmp_path, case):
    if case == "zero_byte_avi":
        path, fragment = tmp_path / "empty.avi", "empty file"
        path.write_bytes(b"")
    elif case == "truncated_mp4":
        good = write_video(tmp_path / "good.mp4", _moving_frames()).read_bytes()
        path, fragment = tmp_path / "half.mp4", "not a readable video"
        path.write_bytes(good[: len(good) // 2])
    elif case == "text_mp4":
        path, fragment = tmp_path / "text.mp4", "not a readable video"
        path.write_text("hello\n" * 100)
    elif case == "zero_frames_avi":
        path, fragment = _zero_frame_avi(tmp_path / "zero.avi"), "no decodable frames"
        assert path.stat().st_size > 0
    else:  # a PNG renamed .mp4 opens as an image "video" in FFmpeg? It must not pass silently
        path, fragment = tmp_path / "image.mp4", ""
        path.write_bytes(_valid_jpeg_bytes()[:200])
    for reader in (read_video, probe_video):
        with pytest.raises(MediaError) as excinfo:
            reader(path)
        _assert_media_error(excinfo, path, fragment)


def test_truncated_faststart_mp4_fails_while_decoding(tmp_path):
    # moov atom at the front: the container opens, the missing frame data must still fail
    path = tmp_path / "faststart.mp4"
    frames = np.random.default_rng(1).integers(0, 256, (24, 64, 64, 3), dtype=np.uint8)
    with av.open(str(path), "w", format="mp4", options={"movflags": "+faststart"}) as container:
        stream = container.add_stream("libx264", rate=8)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        for i, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(MediaError) as excinfo:
        read_video(path)
    _assert_media_error(excinfo, path, "corrupt or truncated")


def test_truncated_image_refused_even_when_pillow_is_told_to_accept_them(tmp_path, monkeypatch):
    """VBench's AMT module sets Pillow's global LOAD_TRUNCATED_IMAGES on import; we must not follow."""
    from PIL import ImageFile

    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    good = _valid_jpeg_bytes()
    path = tmp_path / "cut.jpg"
    path.write_bytes(good[: len(good) // 2])
    with pytest.raises(MediaError, match="cut.jpg"):
        read_image(path)
    assert ImageFile.LOAD_TRUNCATED_IMAGES is True  # the caller's setting is restored


def test_a_huge_jpeg_is_decoded_with_bounded_memory(tmp_path):
    """A 12000 x 12000 JPEG (144 Mpixels: 432 MB as RGB, ~2 GB peak before issue 14) is decoded
    at a reduced scale (JPEG draft, then a box reduce) below MAX_IMAGE_PIXELS, its aspect kept,
    in a process whose peak memory grows by far less than one full-size copy."""
    import subprocess
    import sys

    from dualreal_bench.media.images import MAX_IMAGE_PIXELS

    path = tmp_path / "huge.jpg"
    Image.new("L", (12000, 9000), 140).save(path, quality=80)
    code = f"""
import resource
from dualreal_bench.media import read_image
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
image = read_image({str(path)!r})
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(image.shape[0], image.shape[1], int(image[0, 0, 0]), (after - before) // 1024)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    h, w, value, grown_mb = map(int, out.stdout.split())
    assert h * w <= MAX_IMAGE_PIXELS and (h, w) == (2250, 3000)  # 1/4 scale, aspect 3:4
    assert abs(value - 140) <= 2
    assert grown_mb < 200, grown_mb  # a full-size RGB decode alone is 324 MB


def test_an_image_too_large_to_decode_is_refused_before_decoding(tmp_path):
    """A PNG (no reduced decoding) whose header claims 20000 x 20000 pixels: a MediaError naming
    the file and its size, raised from the header, before any pixel is decoded."""
    import struct
    import zlib

    path = tmp_path / "bomb.png"
    Image.new("RGB", (1, 1)).save(path)
    raw = bytearray(path.read_bytes())
    at = raw.index(b"IHDR")
    raw[at + 4 : at + 12] = struct.pack(">II", 20000, 20000)
    raw[at + 17 : at + 21] = struct.pack(">I", zlib.crc32(bytes(raw[at : at + 17])) & 0xFFFFFFFF)
    path.write_bytes(bytes(raw))
    with pytest.raises(MediaError, match=f"^{path}: image is 20000x20000 \\(400 Mpixels\\)"):
        read_image(path)


def test_a_broken_link_in_a_media_folder_is_reported(tmp_path):
    Image.new("RGB", (4, 3)).save(tmp_path / "a.png")
    (tmp_path / "b.png").symlink_to(tmp_path / "gone.png")
    with pytest.raises(MediaError, match="b.png: broken symbolic link"):
        list_images(tmp_path)
