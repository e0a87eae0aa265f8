"""Metrics: known answers on synthetic video, naive reference implementations, caches, errors.

Tiny seeded encoders only (CPU, offline). Tests that need the identity images / motion clips
read them from ``$DUALREAL_BENCH_DATA`` and skip where it is unset. AMT-S comes from an
installed VBench; ``$DUALREAL_BENCH_VBENCH_ORACLE`` is added to the import path when set.
"""

from __future__ import annotations

import hashlib
import math
import os
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from dualreal_bench.errors import ConfigError, MediaError, RegistryError, WeightsError
from dualreal_bench.metrics import (
    METRIC_FIELDS,
    METRICS,
    MetricConstants,
    build_encoders,
    build_evaluator,
    get_metric,
)
from dualreal_bench.metrics import functional as Fn

C = MetricConstants()
_oracle = os.environ.get("DUALREAL_BENCH_VBENCH_ORACLE")
if _oracle and _oracle not in sys.path:
    sys.path.append(_oracle)


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest.py


# ---- helpers -----------------------------------------------------------------------------------


class GlobalShiftFlow:
    """An exact flow estimator for globally (circularly) translated frames: integer phase
    correlation, the shift broadcast to every pixel. Same interface as RaftFlow."""

    identity = "test-phase-correlation"

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, frames: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        g = frames.double().mean(dim=1)  # (T, H, W)
        n, h, w = g.shape
        out = torch.zeros(n - 1, 2, h, w)
        for t in range(n - 1):
            a, b = torch.fft.fft2(g[t]), torch.fft.fft2(g[t + 1])
            r = torch.fft.ifft2(b * a.conj() / ((b * a.conj()).abs() + 1e-12)).real
            dy, dx = divmod(int(torch.argmax(r)), w)
            dy = dy - h if dy > h // 2 else dy
            dx = dx - w if dx > w // 2 else dx
            out[t, 0], out[t, 1] = float(dx), float(dy)
        return out


def translating_clip(n: int, h: int, w: int, dx: int, dy: int = 0, seed: int = 0) -> np.ndarray:
    tex = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    return np.stack([np.roll(tex, (t * dy, t * dx), axis=(0, 1)) for t in range(n)])


def fake_case(images: list[Path], clips: list[Path]):
    return SimpleNamespace(
        case_id="subject__motion",
        identity=SimpleNamespace(name="subject"),
        motion=SimpleNamespace(name="motion"),
        image_paths=lambda: list(images),
        video_paths=lambda: list(clips),
    )


@pytest.fixture(scope="module")
def synthetic_case(tmp_path_factory):
    """Three reference photos and two reference clips (a static one and a 2-px/frame pan)."""
    from dualreal_bench.media import write_image, write_video

    d = tmp_path_factory.mktemp("case")
    rng = np.random.default_rng(7)
    images = []
    for i in range(3):
        images.append(
            write_image(d / f"ref{i}.png", rng.integers(0, 256, (80, 96, 3), dtype=np.uint8))
        )
    static = write_video(
        d / "static.mp4", np.repeat(translating_clip(1, 64, 64, 0, seed=3), 9, axis=0), fps=8
    )
    return fake_case(images, [static]), d


@pytest.fixture(scope="module")
def encoders():
    return build_encoders("tiny")


def evaluator(encoders, flow=None, **kwargs):
    """An Evaluator on the shared tiny encoders, with an injected flow estimator."""
    import dataclasses

    from dualreal_bench.metrics.evaluator import Evaluator

    enc = dataclasses.replace(encoders, flow=flow or GlobalShiftFlow())
    return Evaluator(enc, kwargs.pop("constants", None), progress=False, profile="tiny", **kwargs)


# ---- registry and constants ---------------------------------------------------------------------------


def test_registry_declares_direction_version_and_label():
    assert METRIC_FIELDS == (
        "clip_t",
        "clip_i",
        "dino_i",
        "temporal_flickering",
        "temporal_consistency",
        "motion_smoothness",
        "dynamic_degree",
        "dynamic_degree_dev",
        "dynamic_degree_bool",
    )
    for name, spec in METRICS.items():
        assert spec.name == name and spec.label and spec.version
    assert get_metric("clip_t").label == "CLIP-T" and get_metric("clip_t").higher_is_better
    assert get_metric("dynamic_degree_dev").higher_is_better is False
    with pytest.raises(RegistryError, match="Did you mean 'clip_t'"):
        get_metric("clip-t")


def test_a_declared_metric_reaches_the_report_and_the_evaluator(
    monkeypatch, encoders, synthetic_case
):
    """Adding a metric is one declaration (plus its computation): the report's columns, the
    exports' field list, the versions and the evaluator's expected fields all read it; an
    evaluator that does not compute a declared field refuses to score rather than record None."""
    from dualreal_bench.metrics import declarations
    from dualreal_bench.metrics.evaluator import Evaluator
    from dualreal_bench.report import aggregate, metric_columns, render, table_fields
    from dualreal_bench.report.export import metric_names

    new = declarations.MetricDeclaration(
        "subject_size",
        "Subj. size",
        False,
        "0.1",
        "identity",
        "share of the frame the subject covers",
        in_paper=False,
        digits=2,
    )
    hidden = declarations.MetricDeclaration(
        "subject_size_raw", "Subj. px", False, "0.1", "identity", "pixels", table="hidden"
    )
    monkeypatch.setattr(declarations, "DECLARATIONS", (*declarations.DECLARATIONS, new, hidden))

    columns = metric_columns()
    assert table_fields()[-1] == "subject_size" and columns[-1].label == "Subj. size"
    assert columns[-1].higher_is_better is False and columns[-1].digits == 2
    assert not columns[-1].in_paper and columns[0].in_paper
    assert "subject_size_raw" not in [c.field for c in columns]
    assert metric_names([])[-2:] == ["subject_size", "subject_size_raw"]
    recs = [
        {
            "method": "m",
            "case_id": "A",
            "prompt_index": p,
            "seed": 0,
            "metrics": {"clip_t": 0.5, "subject_size": v, "subject_size_raw": 7.0},
        }
        for p, v in enumerate([0.25, 0.5])
    ]
    table = aggregate(recs, columns)
    assert table.cells[("m", "subject_size")].mean == pytest.approx(0.375)
    assert table.cells[("m", "subject_size_raw")].mean == 7.0  # aggregated, not a column
    markdown = render(table, "markdown")
    assert "Subj. size" in markdown and "0.38" in markdown and "Subj. px" not in markdown

    assert Evaluator.expected_fields()[-2:] == ("subject_size", "subject_size_raw")
    ev = evaluator(encoders)
    assert ev.metric_versions()["subject_size"] == "0.1"
    case, _ = synthetic_case
    video = translating_clip(9, 64, 64, 2)
    with pytest.raises(NotImplementedError, match="subject_size, subject_size_raw are declared"):
        ev.evaluate_video(video, prompt="a dog * running", case=case)

    with pytest.raises(ConfigError, match="only a column can show a paren field"):
        declarations.MetricDeclaration("x", "X", True, "1", "text", "x", table="hidden", paren="y")


def test_constants_validate_and_override():
    assert C.dd_top_fraction == 0.05 and C.raft_iters == 20 and C.dd_thresh_per_256px == 6.0
    c = C.with_overrides(["raft_iters=12", "dd_deviation=signed"])
    assert c.raft_iters == 12 and c.dd_deviation == "signed"
    with pytest.raises(ConfigError, match="dd_top_fraction"):
        MetricConstants(dd_top_fraction=0.0)
    with pytest.raises(ConfigError, match="no option"):
        C.with_overrides(["top_fraction=0.1"])


# ---- known answers ----------------------------------------------------------------------------------------


def test_static_clip_flickering_exactly_one_and_zero_dynamic_degree():
    frames = np.repeat(translating_clip(1, 64, 80, 0), 9, axis=0)
    assert Fn.temporal_flickering(frames) == 1.0
    x = torch.from_numpy(frames).permute(0, 3, 1, 2).float()
    from dualreal_bench.metrics.flow import dd_pair_scores

    scores = dd_pair_scores(x, GlobalShiftFlow(), C)
    dd, moved = Fn.dynamic_degree(scores, 64, 80, len(frames), C)
    assert dd == 0.0 and moved is False


@pytest.mark.parametrize(("dx", "dy"), [(3, 0), (0, 5), (3, 4)])
def test_translating_clip_top_fraction_magnitude_is_the_shift(dx, dy):
    from dualreal_bench.metrics.flow import dd_pair_scores

    frames = translating_clip(6, 64, 72, dx, dy)
    x = torch.from_numpy(frames).permute(0, 3, 1, 2).float()
    scores = dd_pair_scores(x, GlobalShiftFlow(), C)
    k = math.hypot(dx, dy)
    assert scores == pytest.approx([k] * 5, rel=1e-6)


def test_flickering_matches_a_naive_loop():
    frames = np.random.default_rng(1).integers(0, 256, (5, 7, 9, 3), dtype=np.uint8)
    total = 0.0
    for t in range(4):
        diff = [
            abs(int(frames[t, i, j, c]) - int(frames[t + 1, i, j, c]))
            for i in range(7)
            for j in range(9)
            for c in range(3)
        ]
        total += sum(diff) / len(diff)
    assert Fn.temporal_flickering(frames) == pytest.approx((255 - total / 4) / 255, rel=1e-12)


def test_top_fraction_matches_vbench_formula():
    flow = np.random.default_rng(2).normal(size=(3, 2, 24, 40)).astype(np.float32) * 4
    for f in flow:
        rad = np.sqrt(f[0] ** 2 + f[1] ** 2).flatten()
        cut = int(24 * 40 * 0.05)
        expected = np.mean(np.abs(np.sort(-rad))[:cut])  # vbench get_score
        assert Fn.top_fraction_magnitude(f, 0.05)[0] == pytest.approx(expected, rel=1e-6)


def test_vbench_boolean_rule():
    # 480x720, 49 frames at 8 fps: thres = 6 * 480 / 256, count_num = round(4 * 49 / 16) = 12
    assert Fn.dynamic_degree_params(480, 720, 49, C) == (11.25, 12)
    assert Fn.dynamic_degree_params(240, 320, 10, C) == (5.625, 2)  # round(2.5) = 2 (half to even)
    assert Fn.dynamic_degree_bool([1, 9, 9, 1], 5, 2) is True
    assert Fn.dynamic_degree_bool([1, 9, 1, 1], 5, 2) is False
    assert (
        Fn.fps_interval(25, 8) == 3
        and Fn.fps_interval(29.97, 8) == 4
        and Fn.fps_interval(10, 8) == 1
    )


def test_motion_smoothness_is_one_for_a_perfect_interpolator():
    frames = translating_clip(9, 32, 32, 0) // 2 * 2  # even values: averages are exact
    preds = frames[1:-1:2]  # the true odd frames
    assert Fn.motion_smoothness(frames, preds, C) == 1.0
    with pytest.raises(MediaError, match="at least 3"):
        Fn.motion_smoothness(frames[:2], preds[:0], C)


def test_motion_smoothness_pipeline_with_a_blend_interpolator():
    from dualreal_bench.metrics.interpolation import BlendInterpolator, ms_interpolations

    rng = np.random.default_rng(3)
    frames = rng.integers(0, 256, (8, 20, 36, 3), dtype=np.uint8)  # 20x36: padded to 32x48
    preds = ms_interpolations(frames, BlendInterpolator(), C)
    assert preds.shape == (3, 20, 36, 3)  # kept frames 0, 2, 4, 6 -> 3 midpoints; frame 7 unused
    # VBench tensor2img truncates: ((a/255 + b/255)/2 * 255) cast to uint8
    a = torch.from_numpy(frames[0]).float() / 255.0
    b = torch.from_numpy(frames[2]).float() / 255.0
    expected = (((a + b) / 2) * 255.0).numpy().clip(0, 255).astype(np.uint8)
    assert np.array_equal(preds[0], expected)
    naive = np.mean([np.abs(frames[2 * i + 1].astype(float) - preds[i]).mean() for i in range(3)])
    assert Fn.motion_smoothness(frames, preds, C) == pytest.approx((255 - naive) / 255, rel=1e-12)


# ---- cosine metrics against naive implementations --------------------------------------------------------


def _cos(a, b) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True)) / (
        math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    )


def test_cosine_metrics_match_naive_loops():
    rng = np.random.default_rng(4)
    frames, refs, text = rng.normal(size=(6, 16)), rng.normal(size=(3, 16)), rng.normal(size=16) * 3
    assert Fn.clip_t(frames, text) == pytest.approx(
        np.mean([_cos(f, text) for f in frames]), rel=1e-12
    )
    per_frame = [np.mean([_cos(f, r) for r in refs]) for f in frames]
    assert Fn.identity_similarity(frames, refs) == pytest.approx(np.mean(per_frame), rel=1e-12)
    pairs = [_cos(frames[i], frames[i + 1]) for i in range(5)]
    assert Fn.temporal_consistency(frames) == pytest.approx(np.mean(pairs), rel=1e-12)


def test_clean_prompt_is_the_authors_cut():
    long = "Plushie bear * " + "dancing in the rain " * 30
    assert Fn.clean_prompt("Cat * playing guitar", C) == "Cat playing guitar"
    assert Fn.clean_prompt(long, C) == long[:300].replace(" *", "")


def test_evaluator_end_to_end_equals_naive_per_frame_encoding(encoders, synthetic_case):
    """Every field through the shared pass equals frame-by-frame encoding + naive loops."""
    from dualreal_bench.media import read_image

    case, _ = synthetic_case
    ev = evaluator(encoders)
    video = translating_clip(9, 64, 64, 2, seed=5)
    prompt = "toy * riding a bike " + "in a sunny park " * 30  # > 77 tokens: truncated, no error
    out = ev.evaluate_video(video, prompt=prompt, case=case)
    assert set(METRIC_FIELDS) <= set(out) and isinstance(out["dynamic_degree_bool"], bool)
    assert out["metric_versions"] == {k: s.version for k, s in METRICS.items()} or (
        out["metric_versions"]["motion_smoothness"].endswith("+blend-interpolator")
    )
    assert out["metric_constants"]["raft_iters"] == 20
    assert out["metric_constants"]["encoders"]["flow"] == "test-phase-correlation"

    e = ev.encoders

    def one_by_one(encoder, images):
        return [encoder.encode_image(encoder.preprocess([im]))[0].tolist() for im in images]

    text = e.text_clip.encode_text([Fn.clean_prompt(prompt, C)])[0].tolist()
    tframes = one_by_one(e.text_clip, video)
    iframes = one_by_one(e.image_clip, video)
    dframes = one_by_one(e.dino, video)
    refs = [read_image(p) for p in case.image_paths()]
    irefs, drefs = one_by_one(e.image_clip, refs), one_by_one(e.dino, refs)
    assert out["clip_t"] == pytest.approx(np.mean([_cos(f, text) for f in tframes]), rel=1e-5)
    assert out["clip_i"] == pytest.approx(
        np.mean([np.mean([_cos(f, r) for r in irefs]) for f in iframes]), rel=1e-5
    )
    assert out["dino_i"] == pytest.approx(
        np.mean([np.mean([_cos(f, r) for r in drefs]) for f in dframes]), rel=1e-5
    )
    assert out["temporal_consistency"] == pytest.approx(
        np.mean([_cos(iframes[i], iframes[i + 1]) for i in range(8)]), rel=1e-5
    )
    # a 2-px pan against a static reference clip: DD = 2, deviation = |2 - 0|
    assert out["dynamic_degree"] == pytest.approx(2.0) and out[
        "dynamic_degree_dev"
    ] == pytest.approx(2.0)
    assert out["dynamic_degree_bool"] is True  # 8 pairs > thres 1.5 >= count_num round(4*9/16)=2
    assert 0.0 <= out["motion_smoothness"] <= 1.0 and 0.0 < out["temporal_flickering"] < 1.0


def test_batched_videos_equal_single_videos(encoders, synthetic_case):
    case, _ = synthetic_case
    ev = evaluator(encoders)
    a, b = translating_clip(9, 64, 64, 1, seed=8), translating_clip(7, 64, 64, 3, seed=9)
    both = ev.evaluate_videos([(a, "cat * running"), (b, "cat * jumping")], case)
    single = [
        ev.evaluate_video(a, prompt="cat * running", case=case),
        ev.evaluate_video(b, prompt="cat * jumping", case=case),
    ]
    for x, y in zip(both, single, strict=True):
        for k in METRIC_FIELDS:
            assert x[k] == pytest.approx(y[k], rel=1e-5, abs=1e-7), k


# ---- caches -------------------------------------------------------------------------------------------------


def test_reference_values_are_cached_in_memory_and_on_disk(encoders, synthetic_case, tmp_path):
    case, _ = synthetic_case
    video = translating_clip(5, 64, 64, 2, seed=6)
    flow = GlobalShiftFlow()
    ev = evaluator(encoders, flow, cache_dir=tmp_path)
    ev.evaluate_video(video, prompt="a", case=case)
    assert flow.calls == 2  # the reference clip, then the video
    ev.evaluate_video(video, prompt="a", case=case)
    assert flow.calls == 3  # reference from memory
    assert any((tmp_path / "metrics" / "reference_dd").iterdir())

    flow2 = GlobalShiftFlow()
    resumed = evaluator(encoders, flow2, cache_dir=tmp_path)  # a resumed run
    resumed.evaluate_video(video, prompt="a", case=case)
    assert (
        flow2.calls == 1 and resumed.cache.hits["disk"] >= 3
    )  # clip DD, prompt, 3 images x 2 encoders
    assert resumed.cache.hits["miss"] == 0

    other = MetricConstants(dd_top_fraction=0.1)  # another constant: another key
    flow3 = GlobalShiftFlow()
    evaluator(encoders, flow3, cache_dir=tmp_path, constants=other).evaluate_video(
        video, prompt="a", case=case
    )
    assert flow3.calls == 2


def test_reference_dd_on_real_motion_clips(encoders):
    root = os.environ.get("DUALREAL_BENCH_DATA")
    if not root:
        pytest.skip("DUALREAL_BENCH_DATA is not set")
    from dualreal_bench.spec import build_case

    case = build_case(
        "cat", "Kicking-Front", data_root=root, num_prompts=1
    )  # UCF Sports, 23 frames
    ev = evaluator(encoders, encoders.flow)  # the tiny RAFT
    ref = ev.reference_dynamic_degrees(case, (64, 64))
    assert sorted(ref) == sorted(p.name for p in case.video_paths()) and all(
        v > 0 for v in ref.values()
    )
    out = ev.evaluate_video(translating_clip(9, 64, 64, 1), prompt=case.prompts[0], case=case)
    assert out["dynamic_degree_dev"] == pytest.approx(
        abs(out["dynamic_degree"] - np.mean(list(ref.values())))
    )
    assert out["metric_constants"]["dd_reference"]["clips"] == ref


# ---- flow and interpolation networks ---------------------------------------------------------------------------


def test_raft_flow_equals_torchvision_forward():
    from dualreal_bench.metrics.flow import RaftFlow, build_raft_tiny

    torch.manual_seed(0)
    model = build_raft_tiny()
    frames = torch.rand(3, 3, 64, 96) * 255
    ours = RaftFlow(model, iters=5)(frames)
    x = 2 * (frames / 255) - 1
    with torch.no_grad():
        ref = torch.cat(
            [model(x[i : i + 1], x[i + 1 : i + 2], num_flow_updates=5)[-1] for i in range(2)]
        )
    assert torch.allclose(ours, ref, rtol=1e-4, atol=1e-4)
    with pytest.raises(MediaError, match="too small"):
        RaftFlow(model, iters=1)(torch.rand(2, 3, 32, 32))


def test_raft_checkpoint_loading(tmp_path):
    from dualreal_bench.metrics.encoders import build_encoder
    from dualreal_bench.metrics.flow import build_raft_large

    torch.manual_seed(0)
    state = build_raft_large().state_dict()
    path = tmp_path / "raft_large_C_T_V1-22a6c225.pth"
    torch.save(state, path)
    flow = build_encoder("flow", "real", constants=C, weights_dir=tmp_path)
    # the identity (a cache key and a record field) is the weights' content, not their location
    assert (
        flow.identity
        == f"torchvision:raft_large@sha256:{hashlib.sha256(path.read_bytes()).hexdigest()[:16]}"
    )
    elsewhere = tmp_path / "copy" / path.name
    elsewhere.parent.mkdir()
    elsewhere.write_bytes(path.read_bytes())
    assert build_encoder("flow", str(elsewhere), constants=C).identity == flow.identity
    assert torch.equal(
        flow.model.state_dict()["mask_predictor.conv.weight"], state["mask_predictor.conv.weight"]
    )
    bad = tmp_path / "bad.pth"
    torch.save({"x": torch.zeros(1)}, bad)
    with pytest.raises(WeightsError, match="not a RAFT-large checkpoint"):
        build_encoder("flow", str(bad), constants=C)


def test_amt_interpolator_loads_from_vbench(tmp_path):
    from dualreal_bench.metrics.encoders import build_encoder
    from dualreal_bench.metrics.interpolation import build_amt_s, ms_interpolations

    try:
        model = build_amt_s()
    except WeightsError as exc:
        pytest.skip(f"VBench not installed: {exc}")
    torch.save({"state_dict": model.state_dict()}, tmp_path / "amt-s.pth")
    interp = build_encoder("interpolator", "real", constants=C, weights_dir=tmp_path)
    frames = np.random.default_rng(0).integers(0, 256, (5, 128, 136, 3), dtype=np.uint8)
    preds = ms_interpolations(frames, interp, C)
    assert preds.shape == (2, 128, 136, 3) and preds.dtype == np.uint8
    assert "vbench" not in sys.modules or hasattr(
        sys.modules["vbench"], "__file__"
    )  # no stub left behind


def test_missing_real_weights_name_the_file_and_how_to_get_them(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    from dualreal_bench.metrics.encoders import ENCODERS
    from dualreal_bench.weights import find_weights

    for role, fragment in [
        ("flow", "raft_large_C_T_V1-22a6c225.pth"),
        ("interpolator", "amt-s.pth"),
        ("image_clip", "laion400m_e32"),
        ("text_clip", "ViT-B-32.pt"),
        ("dino", "dino-vits16"),
    ]:
        with pytest.raises(WeightsError, match=fragment) as info:
            find_weights(ENCODERS[role].weights, weights_dir=tmp_path / "weights")
        assert "To get them" in str(info.value) and str(tmp_path / "weights") in str(info.value)
    with pytest.raises(WeightsError, match="no such weights file"):
        build_encoders("tiny", flow=str(tmp_path / "nope.pth"))


def test_bad_inputs_fail_loudly(encoders, synthetic_case):
    case, _ = synthetic_case
    ev = evaluator(encoders)
    with pytest.raises(TypeError, match="uint8"):
        ev.evaluate_video(np.zeros((9, 64, 64, 3), np.float32), prompt="a", case=case)
    with pytest.raises(MediaError, match="at least 3 frames"):
        ev.evaluate_video(np.zeros((2, 64, 64, 3), np.uint8), prompt="a", case=case)
    with pytest.raises(RegistryError, match="metrics profile"):
        build_evaluator("large")
    with pytest.raises(ConfigError, match="unknown metric encoder"):
        build_evaluator("tiny", optical_flow="tiny")


def test_build_evaluator_tiny_profile_is_seeded(encoders):
    again = build_encoders("tiny")
    for role in ("text_clip", "dino"):
        a, b = getattr(encoders, role).model.state_dict(), getattr(again, role).model.state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a)
    assert encoders.identities()["flow"] == "tiny-raft-v1-seed4"


def test_dino_preprocessing_is_the_pil_vit_image_processor():
    """facebook/dino-vits16's processor as transformers 4.x ran it (the authors' version): PIL
    bilinear resize to 224x224 (no crop), x / 255, mean = std = 0.5."""
    from PIL import Image
    from transformers.image_transforms import normalize, rescale, resize

    from dualreal_bench.metrics.encoders import DinoEncoder

    frames = np.random.default_rng(0).integers(0, 256, (2, 240, 320, 3), dtype=np.uint8)
    ours = DinoEncoder(torch.nn.Identity(), identity=None).preprocess(frames)
    for f, o in zip(frames, ours, strict=True):
        x = resize(f, (224, 224), resample=Image.BILINEAR)
        x = normalize(rescale(x, 1 / 255), mean=[0.5] * 3, std=[0.5] * 3)
        assert np.allclose(o.permute(1, 2, 0).numpy(), x, atol=1e-6)


def test_clip_preprocessing_is_open_clips_transform_for_both_checkpoints():
    """The one CLIP preprocessing serves both towers: open_clip's registry gives the same
    transform (224, bicubic, shortest side, CLIP mean/std) for 'openai' and 'laion400m_e32'."""
    import open_clip
    from open_clip.transform import PreprocessCfg, image_transform_v2
    from PIL import Image

    from dualreal_bench.metrics.encoders import ClipEncoder

    frames = np.random.default_rng(1).integers(0, 256, (2, 240, 320, 3), dtype=np.uint8)
    ours = ClipEncoder(torch.nn.Identity(), None, identity=None).preprocess(frames)
    for tag in ("openai", "laion400m_e32"):
        cfg = open_clip.get_pretrained_cfg("ViT-B-32-quickgelu", tag)
        pp = PreprocessCfg(
            size=224,
            mean=cfg["mean"],
            std=cfg["std"],
            interpolation=cfg["interpolation"],
            resize_mode=cfg["resize_mode"],
        )
        reference = image_transform_v2(pp, is_train=False)
        assert torch.equal(ours, torch.stack([reference(Image.fromarray(f)) for f in frames])), tag


def test_tiny_interpolator_does_not_depend_on_an_installed_vbench(monkeypatch):
    """The tiny profile gives the same motion smoothness whether or not VBench is importable
    (it once used a random AMT-S where VBench was found and the frame average elsewhere);
    the random AMT-S is there only when asked for (``"tiny-amt"``), and then never replaced."""
    import importlib.util

    from dualreal_bench.metrics.encoders import build_encoder
    from dualreal_bench.metrics.interpolation import BlendInterpolator, ms_interpolations

    real_find_spec = importlib.util.find_spec
    frames = np.random.default_rng(0).integers(0, 256, (5, 32, 32, 3), np.uint8)

    def smoothness(find_spec):
        monkeypatch.setattr(importlib.util, "find_spec", find_spec)
        interp = build_encoder("interpolator", "tiny", constants=C)
        assert isinstance(interp, BlendInterpolator) and interp.identity == "blend-midpoint"
        preds = ms_interpolations(frames, interp, C)
        return Fn.motion_smoothness(frames, preds, C)

    hidden = lambda name, *a: None if name == "vbench" else real_find_spec(name, *a)  # noqa: E731
    loaded = [m for m in sys.modules if m == "vbench" or m.startswith("vbench.")]
    with_vbench = smoothness(real_find_spec)
    for name in loaded:  # as on a machine without VBench
        monkeypatch.delitem(sys.modules, name)
    assert smoothness(hidden) == with_vbench
    with pytest.raises(WeightsError, match="vbench"):  # asked for AMT-S, VBench absent: error
        build_encoder("interpolator", "tiny-amt", constants=C)
    monkeypatch.setattr(importlib.util, "find_spec", real_find_spec)
    if real_find_spec("vbench") is not None:
        amt = build_encoder("interpolator", "tiny-amt", constants=C)
        assert amt.identity.startswith("tiny-amt-s-3lvl")
    with pytest.raises(ConfigError, match="interpolator"):
        build_encoder("flow", "tiny-amt", constants=C)
