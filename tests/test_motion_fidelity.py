"""Motion fidelity (issue 15): constants, the DIS-flow descriptor, centroid retrieval, the
trajectory score (fixed and diffusion-motion-transfer-compatible), and the VideoMAE backend.

Real-data tests read the 21 motions' clips from ``$DUALREAL_BENCH_DATA`` and skip where it is
unset; their thresholds are a little below what ``scripts/motion_fidelity_validation.py``
measured (stated next to each).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from dualreal_bench.errors import ConfigError, DataError, MediaError, WeightsError
from dualreal_bench.metrics.motion import MOTION_VERSION, MotionConstants
from dualreal_bench.metrics.motion.flow_backend import (
    _orientation_hist,
    _pool_cells,
    descriptor_from_flows,
    flow_descriptor,
    mirror_flows,
)
from dualreal_bench.metrics.motion.retrieval import (
    leave_one_clip_out,
    motion_fidelity,
    motion_similarities,
    rank_of,
)
from dualreal_bench.metrics.motion.trajectory import (
    align_tracks,
    aligned_frame_indices,
    chain_tracks,
    dis_tracks,
    grid_points,
    grid_tracks,
    sample_bilinear,
    similarity_matrix,
    trajectory_fidelity,
    trajectory_score,
)

cv2 = pytest.importorskip("cv2")


# ---- synthetic videos ----------------------------------------------------------------------------


def texture(h: int, w: int, seed: int, sigma: float = 2.0) -> np.ndarray:
    t = cv2.GaussianBlur(
        np.random.default_rng(seed).random((h, w)).astype(np.float32), (0, 0), sigma
    )
    return ((t - t.min()) / (t.max() - t.min()) * 255).astype(np.uint8)


def moving_square(
    dx: int, dy: int, *, frames: int = 17, h: int = 120, w: int = 160, size: int = 40
) -> np.ndarray:
    """A textured square moving (dx, dy) px per frame over a static textured background."""
    bg, obj = texture(h, w, 1), texture(size, size, 2)
    out = []
    for t in range(frames):
        f = bg.copy()
        x, y = (
            int(w / 2 - size / 2 + dx * (t - frames / 2)),
            int(h / 2 - size / 2 + dy * (t - frames / 2)),
        )
        f[y : y + size, x : x + size] = obj
        out.append(np.repeat(f[..., None], 3, -1))
    return np.stack(out)


def translated_texture(
    v: tuple[float, float], *, frames: int = 11, h: int = 96, w: int = 128
) -> np.ndarray:
    """A texture translated by ``v`` px per frame (sub-pixel, bicubic), the whole frame moving."""
    tex = texture(h + 60, w + 60, 3, sigma=1.5)
    out = []
    for t in range(frames):
        m = np.float32([[1, 0, -30 + v[0] * t], [0, 1, -30 + v[1] * t]])
        g = cv2.warpAffine(tex, m, (w, h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
        out.append(np.repeat(g[..., None], 3, -1))
    return np.stack(out)


# ---- constants ------------------------------------------------------------------------------------


def test_constants_are_frozen_validated_and_recorded():
    c = MotionConstants()
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.flow_grid = (1, 1)  # type: ignore[misc]
    rec = c.to_record()
    assert rec["version"] == MOTION_VERSION and rec["flow_grid"] == (3, 3)
    assert set(rec) - {"version"} == {f.name for f in dataclasses.fields(MotionConstants)}
    c2 = c.with_overrides(["flow_grid=2,4", "flow_features=hof", "flow_center=false"])
    assert (c2.flow_grid, c2.flow_features, c2.flow_center) == ((2, 4), ("hof",), False)
    assert c2.digest() != c.digest() and c.digest("traj_grid") == c2.digest("traj_grid")
    assert MotionConstants.from_dict(c2.to_dict()) == c2
    for bad in (
        ["flow_grid=0,3"],
        ["flow_features=hof,optical"],
        ["flow_camera=homography"],
        ["flow_magnitude_bins=0.02,0.01"],
        ["traj_grid=0"],
        ["flow_temporal_levels=0"],
    ):
        with pytest.raises(ConfigError):
            c.with_overrides(bad)


# ---- descriptor building blocks ---------------------------------------------------------------------


def test_orientation_histogram_soft_binning_against_hand_values():
    # 8 bins of 45 degrees; a vector on a bin centre goes there with its magnitude, one half way
    # between two centres is split evenly, one below the static threshold counts in the last bin
    dx = np.array([2.0, np.cos(np.pi / 8), 0.0, 0.001])
    dy = np.array([0.0, np.sin(np.pi / 8), -3.0, 0.0])
    h = _orientation_hist(dx, dy, 8, static=0.01)
    expected = np.zeros((4, 9))
    expected[0, 0] = 2.0
    expected[1, 0] = expected[1, 1] = 0.5
    expected[2, 6] = 3.0  # -90 degrees = 270 = bin 6
    expected[3, 8] = 1.0
    np.testing.assert_allclose(h, expected, atol=1e-6)
    assert _orientation_hist(dx, dy, 8, static=None).shape == (4, 8)


def test_pool_cells_against_naive_mean():
    x = np.random.default_rng(0).random((3, 10, 13, 2)).astype(np.float32)
    out = _pool_cells(x, (3, 4))
    r_edges, c_edges = (
        np.linspace(0, 10, 4).round().astype(int),
        np.linspace(0, 13, 5).round().astype(int),
    )
    for i in range(3):
        for j in range(4):
            cell = x[:, r_edges[i] : r_edges[i + 1], c_edges[j] : c_edges[j + 1]].mean(axis=(1, 2))
            np.testing.assert_allclose(out[:, i * 4 + j], cell, rtol=1e-5)


def test_descriptor_shape_norm_and_determinism():
    c = MotionConstants()
    video = moving_square(3, 0)
    d1, d2 = flow_descriptor(video, c), flow_descriptor(video.copy(), c)
    cells = c.flow_grid[0] * c.flow_grid[1]
    assert d1.shape == (cells * c.flow_orientations * 3,)  # HOF: 8 bins, MBH: 2 x 8 bins, per cell
    assert np.linalg.norm(d1) == pytest.approx(1.0)
    np.testing.assert_array_equal(d1, d2)
    with pytest.raises(MediaError, match="at least 2 frames"):
        flow_descriptor(video[:1], c)
    with pytest.raises(MediaError, match="uint8"):
        flow_descriptor(video.astype(np.float32), c)


def test_descriptor_invariances_and_sensitivities():
    """Measured (default constants): brightness x0.6 0.9993, 2x frame size 0.9998, moving left
    instead of right 0.36, up instead of right 0.40, played backwards 0.36."""
    c = MotionConstants()
    right = flow_descriptor(moving_square(3, 0), c)
    # invariant: brightness scaling, frame size (flows are measured in units of the short side)
    assert right @ flow_descriptor((moving_square(3, 0) * 0.6).astype(np.uint8), c) > 0.99
    big = np.stack(
        [cv2.resize(f, (320, 240), interpolation=cv2.INTER_LINEAR) for f in moving_square(3, 0)]
    )
    assert right @ flow_descriptor(big, c) > 0.99
    # not invariant: direction of the motion, time reversal
    assert right @ flow_descriptor(moving_square(-3, 0), c) < 0.6
    assert right @ flow_descriptor(moving_square(0, -3), c) < 0.6
    assert right @ flow_descriptor(moving_square(3, 0)[::-1].copy(), c) < 0.6


def test_camera_motion_removal_and_mirror():
    rng = np.random.default_rng(1)
    flows = rng.normal(size=(4, 24, 32, 2)).astype(np.float32)
    pan = flows + np.array([3.0, -1.0], np.float32)  # the same motion seen by a panning camera
    c = MotionConstants()
    np.testing.assert_allclose(
        descriptor_from_flows(pan, c), descriptor_from_flows(flows, c), atol=1e-5
    )
    none = c.with_overrides({"flow_camera": "none"})
    assert (
        descriptor_from_flows(pan, none) @ descriptor_from_flows(flows, none) < 0.99
    )  # HOF sees the pan
    mbh = none.with_overrides(
        {"flow_features": "mbh"}
    )  # MBH alone ignores a constant flow by construction
    np.testing.assert_allclose(
        descriptor_from_flows(pan, mbh), descriptor_from_flows(flows, mbh), atol=1e-5
    )
    np.testing.assert_array_equal(mirror_flows(mirror_flows(flows)), flows)
    sym = c.with_overrides({"flow_mirror": "symmetric"})
    np.testing.assert_allclose(
        descriptor_from_flows(mirror_flows(flows), sym),
        descriptor_from_flows(flows, sym),
        atol=1e-6,
    )


# ---- retrieval -------------------------------------------------------------------------------------


def _naive_similarities(q, refs, center):
    mean = np.concatenate(list(refs.values())).mean(axis=0) if center else 0.0
    out = {}
    for name, r in refs.items():
        units = [(x - mean) / np.linalg.norm(x - mean) for x in r]
        centroid = np.mean(units, axis=0)
        out[name] = float(
            (q - mean) @ centroid / (np.linalg.norm(q - mean) * np.linalg.norm(centroid))
        )
    return out


def test_motion_similarities_against_naive_and_self_is_maximum():
    rng = np.random.default_rng(2)
    refs = {f"m{k}": rng.random((2 + k % 2, 6)) for k in range(5)}
    q = rng.random(6)
    for center in (False, True):
        got = motion_similarities(q, refs, center=center)
        want = _naive_similarities(q, refs, center)
        assert got == pytest.approx(want, abs=1e-12)
    # a clip as the only reference of its motion: exactly 1, rank 1
    refs["self"] = q[None]
    for center in (False, True):
        cos, rank = motion_fidelity(q, refs, "self", center=center)
        assert cos == pytest.approx(1.0, abs=1e-12) and rank == 1
        assert cos >= max(motion_similarities(q, refs, center=center).values()) - 1e-12
    assert rank_of({"a": 0.5, "b": 0.5, "c": 0.7}, "a") == 2  # ties share the better rank
    with pytest.raises(DataError, match="'nope' is not among"):
        motion_fidelity(q, refs, "nope", center=True)


def test_leave_one_clip_out_on_known_clusters():
    rng = np.random.default_rng(3)
    centres = np.eye(4) * 5
    clusters = {
        f"m{k}": [centres[k] + 0.1 * rng.normal(size=4) for _ in range(2)] for k in range(4)
    }
    res = leave_one_clip_out(clusters, center=True)
    assert (res.top1, res.top5, res.mean_rank, res.motions_same_gt_diff) == (1.0, 1.0, 1.0, 4)
    assert res.same_mean > 0.9 and res.diff_mean < 0 and res.n_queries == 8
    # each query is left out of its own centroid: a motion whose two clips point apart is missed
    swapped = dict(clusters, m0=[centres[0], centres[1] + 0.01])
    res = leave_one_clip_out(swapped, center=False)
    assert res.ranks["m0"][0] > 1 and res.top1 < 1.0
    with pytest.raises(DataError, match="needs 2"):
        leave_one_clip_out({"a": [centres[0]], "b": [centres[1], centres[1]]}, center=True)


# ---- trajectory fidelity ---------------------------------------------------------------------------


def test_grid_points_and_bilinear_sampling_of_a_linear_field():
    pts = grid_points(40, 60, 4)
    assert pts.shape == (16, 2)
    np.testing.assert_allclose(pts[:4, 0], [7.0, 22.0, 37.0, 52.0])  # (j + 0.5) * 60 / 4 - 0.5
    np.testing.assert_allclose(pts[::4, 1], [4.5, 14.5, 24.5, 34.5])
    ys, xs = np.mgrid[0:40, 0:60].astype(np.float64)
    field = np.stack(
        [0.3 * xs - 0.2 * ys + 1.0, 0.05 * xs + 0.1 * ys], axis=-1
    )  # bilinear is exact on it
    q = np.random.default_rng(4).uniform([0, 0], [59, 39], size=(50, 2))
    want = np.stack([0.3 * q[:, 0] - 0.2 * q[:, 1] + 1.0, 0.05 * q[:, 0] + 0.1 * q[:, 1]], axis=-1)
    np.testing.assert_allclose(sample_bilinear(field, q), want, atol=1e-9)
    # outside the frame: the border value
    np.testing.assert_allclose(
        sample_bilinear(field, np.array([[-5.0, 10.0]])), field[10, 0][None], atol=1e-12
    )


def test_chained_tracks_exact_on_known_flows():
    h, w, steps = 64, 80, 6
    constant = np.broadcast_to(np.array([1.25, -0.5]), (steps, h, w, 2))
    pts = grid_points(h, w, 5)
    tracks = chain_tracks(constant, pts)
    np.testing.assert_allclose(
        tracks[:, -1] - pts, np.tile([1.25 * steps, -0.5 * steps], (25, 1)), atol=1e-9
    )
    # a zoom: flow = 0.05 * (p - centre) -> p(t) - centre = 1.05**t (p(0) - centre), sub-pixel positions
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    centre = np.array([(w - 1) / 2, (h - 1) / 2])
    zoom = np.stack([0.05 * (xs - centre[0]), 0.05 * (ys - centre[1])], axis=-1)
    inner = grid_points(h, w, 5) * 0.5 + centre * 0.5  # stays inside the frame for 6 steps
    tracks = chain_tracks([zoom] * steps, inner)
    for t in range(steps + 1):
        np.testing.assert_allclose(tracks[:, t] - centre, 1.05**t * (inner - centre), atol=1e-9)


def test_dis_tracks_follow_a_translated_video_to_sub_pixel_precision():
    """DIS (medium) flows chained over 10 frames of a texture moving (1.3, -0.7) px per frame:
    measured final error on interior points mean 0.34 px, max 0.56 px (13 px travelled)."""
    v, frames, h, w = (1.3, -0.7), 11, 96, 128
    video = translated_texture(v, frames=frames, h=h, w=w)
    c = MotionConstants(traj_dis_short_side=h, traj_grid=8)
    tracks = dis_tracks(video, c) * h  # back to pixels
    pts = grid_points(h, w, 8)
    inner = (pts[:, 0] > 16) & (pts[:, 0] < w - 16) & (pts[:, 1] > 16) & (pts[:, 1] < h - 16)
    err = np.linalg.norm(tracks[inner, -1] - (pts[inner] + np.array(v) * (frames - 1)), axis=-1)
    assert err.mean() < 0.5 and err.max() < 1.0
    steps = np.diff(tracks[inner], axis=1)
    np.testing.assert_allclose(steps.mean(axis=(0, 1)), v, atol=0.1)


def _naive_similarity(a, b, thr):
    n, m, steps = len(a), len(b), a.shape[1] - 1
    out = np.zeros((n, m))
    for i in range(n):
        for j in range(m):
            total = 0.0
            for t in range(steps):
                da, db = a[i, t + 1] - a[i, t], b[j, t + 1] - b[j, t]
                la, lb = np.hypot(*da), np.hypot(*db)
                if la <= thr and lb <= thr:
                    total += 1.0
                elif la <= thr or lb <= thr:
                    total += 0.0
                else:
                    total += float(da @ db) / (la * lb)
            out[i, j] = total / steps
    return out


def _random_tracks(rng, n, t, static_fraction=0.2):
    steps = rng.normal(scale=0.01, size=(n, t - 1, 2))
    steps[rng.random((n, t - 1)) < static_fraction] = 0.0  # static steps
    return np.concatenate([rng.random((n, 1, 2)), steps], axis=1).cumsum(axis=1)


def test_trajectory_similarity_and_score_against_naive_loops():
    rng = np.random.default_rng(5)
    a, b = _random_tracks(rng, 7, 9), _random_tracks(rng, 5, 9)
    sim = similarity_matrix(a, b, static_threshold=0.002)
    np.testing.assert_allclose(sim, _naive_similarity(a, b, 0.002), atol=1e-12)
    score = trajectory_score(a, b, static_threshold=0.002)
    assert score == pytest.approx(
        np.mean([max(row) for row in _naive_similarity(a, b, 0.002)]), abs=1e-12
    )
    assert np.isfinite(score)
    # static points: still vs still agree, still vs moving do not
    still = np.zeros((3, 9, 2)) + rng.random((3, 1, 2))
    assert trajectory_score(still, still) == 1.0
    moving = np.cumsum(np.full((3, 9, 2), 0.01), axis=1)
    assert trajectory_score(still, moving) == 0.0
    assert trajectory_score(moving, moving) == pytest.approx(1.0)
    assert trajectory_score(moving, -moving) == pytest.approx(-1.0)  # opposite directions


def _dmt_published(tracklets1: torch.Tensor, tracklets2: torch.Tensor) -> float:
    """diffusion-motion-transfer motion_fidelity_score.py: get_similarity_matrix + get_score."""
    displacements1 = tracklets1[:, 1:] - tracklets1[:, :-1]
    displacements1 = displacements1 / displacements1.norm(dim=-1, keepdim=True)
    displacements2 = tracklets2[:, 1:] - tracklets2[:, :-1]
    displacements2 = displacements2 / displacements2.norm(dim=-1, keepdim=True)
    similarity_matrix = torch.einsum("ntc, mtc -> nmt", displacements1, displacements2).mean(dim=-1)
    similarity_matrix_eye = similarity_matrix - torch.eye(similarity_matrix.shape[0])
    max_similarity, _ = similarity_matrix_eye.max(dim=1)
    return max_similarity.mean().item()


def test_dmt_compatible_reproduces_the_published_formula():
    rng = np.random.default_rng(6)
    edit, orig = _random_tracks(rng, 16, 10, 0.0), _random_tracks(rng, 16, 10, 0.0)
    ours = trajectory_score(edit, orig, dmt_compatible=True)
    theirs = _dmt_published(torch.from_numpy(edit).float(), torch.from_numpy(orig).float())
    assert ours == pytest.approx(theirs, abs=1e-5)
    assert ours != pytest.approx(trajectory_score(edit, orig), abs=1e-3)  # the identity matters
    # a video against itself: the published score cannot reach 1 (its own track is penalised)
    assert (
        trajectory_score(edit, edit, dmt_compatible=True) < 0.999
        and trajectory_score(edit, edit) == 1.0
    )
    # a zero-length step: NaN in both; the default defines it
    edit[3, 5] = edit[3, 4]  # track 3 stands still between frames 4 and 5
    assert np.isnan(trajectory_score(edit, orig, dmt_compatible=True))
    assert np.isnan(_dmt_published(torch.from_numpy(edit).float(), torch.from_numpy(orig).float()))
    assert np.isfinite(trajectory_score(edit, orig))
    with pytest.raises(ConfigError, match="identity matrix"):
        trajectory_score(edit[:10], orig, dmt_compatible=True)


def test_alignment_rule_on_different_rates_and_lengths():
    # UCF101 100 frames at 25 fps (every 3rd: 34), generated 49 at 8 fps (every frame),
    # UCF Sports 23 at 10 fps (every frame): all cut to the 23 the shortest gives
    ucf, gen, sports = aligned_frame_indices([100, 49, 23], [25.0, 8.0, 10.0])
    assert ucf == list(range(0, 69, 3)) and gen == list(range(23)) and sports == list(range(23))
    ucf, gen = aligned_frame_indices([100, 49], [29.97, 8.0])  # every 4th: 25 frames
    assert ucf == list(range(0, 100, 4)) and gen == list(range(25))
    a, b = np.zeros((4, 49, 2)), np.zeros((9, 23, 2))
    a2, b2 = align_tracks(a, b)
    assert a2.shape == (4, 23, 2) and b2.shape == (9, 23, 2)
    with pytest.raises(MediaError, match="fewer than 2"):
        align_tracks(a, np.zeros((9, 1, 2)))
    # a video against a longer copy of itself: aligned, the score is exactly 1
    rng = np.random.default_rng(7)
    long = _random_tracks(rng, 6, 30, 0.1)
    assert trajectory_fidelity(long[:, :12], [long, long[:, :20]]) == 1.0
    scores = [trajectory_score(*align_tracks(long[:, :12], r)) for r in (long[::-1], long[:3])]
    assert trajectory_fidelity(long[:, :12], [long[::-1], long[:3]]) == pytest.approx(
        np.mean(scores)
    )


def test_grid_tracks_units():
    flows = np.broadcast_to(np.array([2.0, 0.0], np.float32), (3, 50, 100, 2))
    tracks = grid_tracks(flows, MotionConstants(traj_grid=5))
    assert tracks.shape == (25, 4, 2)
    np.testing.assert_allclose(tracks[:, -1, 0] - tracks[:, 0, 0], 6.0 / 50)  # short side = 50 px


# ---- real clips (leave-one-clip-out retrieval) -----------------------------------------------------


@pytest.fixture(scope="module")
def reference_clips():
    root = os.environ.get("DUALREAL_BENCH_DATA")
    if not root:
        pytest.skip("DUALREAL_BENCH_DATA is not set (the 21 motions' UCF101 / UCF Sports clips)")
    motions = Path(root) / "dualreal_benchmark" / "motions"
    if not motions.is_dir():
        pytest.skip(f"{motions} does not exist")
    from dualreal_bench.media import list_videos, read_video

    c = MotionConstants()
    return {
        m.name: [
            read_video(v, sampling="fps", target_fps=c.target_fps)
            for v in list_videos(m / "videos")
        ]
        for m in sorted(motions.iterdir())
        if (m / "videos").is_dir()
    }


@pytest.fixture(scope="module")
def reference_descriptors(reference_clips):
    c = MotionConstants()
    return {m: [flow_descriptor(f, c) for f in clips] for m, clips in reference_clips.items()}


def test_leave_one_clip_out_retrieval_on_real_clips(reference_descriptors):
    """Measured with the defaults (scripts/motion_fidelity_validation.py, 42 clips, 21 motions):
    top-1 0.262 (chance 0.048), top-5 0.690 (chance 0.238), mean rank 3.95 +- 0.49 (chance 11),
    same-motion cosine 0.36 +- 0.27 vs different -0.03 +- 0.24 (centred), same > mean different
    for 19 of 21 motions. Thresholds: the issue's targets (top-1 >= 3x chance, >= 16 of 21) and a
    little below the measurement for the rest."""
    res = leave_one_clip_out(reference_descriptors, center=MotionConstants().flow_center)
    assert res.n_motions == 21 and res.n_queries == 42
    assert res.top1 >= 3 * res.chance_top1  # 0.143; measured 0.262
    assert res.top5 >= 0.6  # measured 0.690
    assert res.mean_rank <= 5.0  # measured 3.95; chance 11
    assert res.motions_same_gt_diff >= 17  # measured 19; target 16
    assert res.same_mean - res.diff_mean >= 0.3  # measured 0.39


def test_real_clip_self_is_maximum_and_reversed_is_lower(reference_clips, reference_descriptors):
    """Each clip, as the only reference of its motion, scores exactly 1 and rank 1; the same clip
    played backwards scores lower (measured on these 8 clips: 0.51 on average, 0.991 at most --
    push-ups look much the same backwards)."""
    c = MotionConstants()
    refs = {m: np.stack(d) for m, d in reference_descriptors.items()}
    reversed_scores = []
    for motion in ("Archery", "PushUps", "Run-Side", "TaiChi"):
        for k, frames in enumerate(reference_clips[motion]):
            query = reference_descriptors[motion][k]
            solo = dict(refs, **{motion: query[None]})
            cos, rank = motion_fidelity(query, solo, motion, center=c.flow_center)
            assert cos == pytest.approx(1.0, abs=1e-12) and rank == 1
            backwards = flow_descriptor(frames[::-1].copy(), c)
            rev_cos, _ = motion_fidelity(backwards, solo, motion, center=c.flow_center)
            assert rev_cos < cos - 1e-3
            reversed_scores.append(rev_cos)
    assert np.mean(reversed_scores) < 0.8


def test_flow_descriptors_are_the_same_on_every_machine(reference_clips, reference_descriptors):
    """The weight-free descriptors of the 42 reference clips do not depend on OpenCV's thread
    count (DIS's stripes: bit-identical with 1 and 4 threads) and barely on its SIMD path
    (cv2.setUseOptimized(False), the plain C++ loops: measured max difference 2.8e-7 of entries
    that sum to 1 per block), and the retrieval ranks are the same: a reference value cached on
    one machine serves another."""
    c = MotionConstants()
    threads, optimised = cv2.getNumThreads(), cv2.useOptimized()
    try:
        for n in (1, 4):
            cv2.setNumThreads(n)
            for motion in sorted(reference_clips)[::5]:
                pairs = zip(reference_clips[motion], reference_descriptors[motion], strict=True)
                for frames, d in pairs:
                    assert np.array_equal(flow_descriptor(frames, c), d), (motion, n)
        cv2.setUseOptimized(False)
        plain = {m: [flow_descriptor(f, c) for f in clips] for m, clips in reference_clips.items()}
    finally:
        cv2.setNumThreads(threads)
        cv2.setUseOptimized(optimised)
    worst = max(
        float(np.abs(a - b).max())
        for m in plain
        for a, b in zip(plain[m], reference_descriptors[m], strict=True)
    )
    assert worst < 1e-5
    simd = leave_one_clip_out(reference_descriptors, center=c.flow_center)
    scalar = leave_one_clip_out(plain, center=c.flow_center)
    assert simd.ranks == scalar.ranks


def test_real_clip_brightness_invariance(reference_clips):
    """Measured on the first clip of each motion: brightness x0.6 keeps the raw cosine >= 0.997."""
    c = MotionConstants()
    frames = reference_clips["playingGuitar"][0]
    d = flow_descriptor(frames, c)
    assert d @ flow_descriptor((frames * 0.6).astype(np.uint8), c) > 0.99


# ---- VideoMAE backend ------------------------------------------------------------------------------


def test_videomae_windows():
    from dualreal_bench.metrics.motion.videomae import window_indices, window_starts

    assert window_starts(49, 16, 4) == [0, 11, 22, 33]
    assert window_starts(33, 16, 4) == [0, 8, 17]
    assert window_starts(16, 16, 4) == [0] and window_starts(200, 16, 2) == [0, 184]
    assert window_indices(5, 16, 4) == [[0, 1, 2, 3, 4] + [4] * 11]  # short clip: last frame held
    with pytest.raises(MediaError):
        window_starts(0, 16, 4)


def test_videomae_tiny_shapes_preprocessing_and_determinism(one_torch_thread):
    from dualreal_bench.metrics.motion.videomae import tiny_videomae

    frames = np.random.default_rng(8).integers(0, 255, (40, 120, 160, 3), dtype=np.uint8)
    enc = tiny_videomae(seed=0)
    pixels = enc.preprocess(frames)
    assert pixels.shape == (3, 16, 3, 224, 224)  # 40 frames -> 3 windows of 16
    gray = np.full((16, 90, 200, 3), 128, np.uint8)
    p = enc.preprocess(gray)[0, 0]
    mean, std = np.array(MotionConstants().videomae_mean), np.array(MotionConstants().videomae_std)
    np.testing.assert_allclose(p[:, 100, 100].numpy(), (128 / 255 - mean) / std, atol=1e-5)
    d1, d2 = enc(frames), tiny_videomae(seed=0)(frames)
    assert d1.shape == (32,) and np.linalg.norm(d1) == pytest.approx(1.0)
    np.testing.assert_array_equal(d1, d2)
    assert np.abs(d1 - tiny_videomae(seed=1)(frames)).max() > 1e-3
    assert enc.identity == "tiny-videomae-2x32-v1-seed0"
    # the features are the classifier's input
    with torch.no_grad():
        feats = enc.features(pixels[:1])
        logits = enc.model(pixel_values=pixels[:1]).logits
    torch.testing.assert_close(enc.model.classifier(feats), logits)


def test_videomae_loads_a_local_checkpoint_and_names_missing_weights(tmp_path, monkeypatch):
    import huggingface_hub

    from dualreal_bench.metrics.motion.videomae import VIDEOMAE_REPO, build_videomae, tiny_videomae

    tiny = tiny_videomae(seed=3)
    tiny.model.save_pretrained(tmp_path / "ckpt")
    loaded = build_videomae(tmp_path / "ckpt")
    frames = np.random.default_rng(9).integers(0, 255, (16, 64, 64, 3), dtype=np.uint8)
    np.testing.assert_allclose(loaded(frames), tiny(frames), atol=1e-6)
    assert loaded.identity.startswith("transformers:videomae-kinetics@")
    with pytest.raises(WeightsError, match="no config.json"):
        build_videomae(tmp_path / "empty")
    monkeypatch.setattr(huggingface_hub, "try_to_load_from_cache", lambda *a, **k: None)
    with pytest.raises(WeightsError, match=VIDEOMAE_REPO) as exc:
        build_videomae("real")
    assert "huggingface-cli download" in str(exc.value) and "No download is attempted" in str(
        exc.value
    )
    wrong = MotionConstants(videomae_num_frames=8)
    with pytest.raises(ConfigError, match="takes 16 frames"):
        build_videomae(tmp_path / "ckpt", constants=wrong)


def test_validation_script_runs_on_a_small_data_root(tmp_path, capsys):
    """The script behind the figures above, on 2 synthetic motions x 2 clips."""
    import importlib.util

    from dualreal_bench.media import write_video

    for motion, (dx, dy) in {"Right": (3, 0), "Up": (0, -3)}.items():
        for k in range(2):
            video = moving_square(dx, dy, frames=12 + k)
            write_video(
                tmp_path / "dualreal_benchmark" / "motions" / motion / "videos" / f"c{k}.mp4",
                video,
                fps=8,
            )
    path = Path(__file__).resolve().parent.parent / "scripts" / "motion_fidelity_validation.py"
    spec = importlib.util.spec_from_file_location("motion_fidelity_validation", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert (
        script.main(["--data-root", str(tmp_path), "--variants", "default", "mbh", "--trajectory"])
        == 0
    )
    out = capsys.readouterr().out
    assert "2 motions, 4 clips" in out
    rows = {
        line.split()[0]: line.split()
        for line in out.splitlines()
        if line.startswith(("default ", "mbh "))
    }
    assert set(rows) == {"default", "mbh"}
    assert rows["default"][1] == "1.000"  # top-1: right and up are told apart
    assert "dmt_compatible" in out and "DIS 96 px, fast" in out


def test_motion_backend_factory(tmp_path):
    from dualreal_bench.metrics.motion import FlowDescriptor, build_motion_backend
    from dualreal_bench.metrics.motion.videomae import VideoMAEDescriptor

    flow = build_motion_backend("flow")
    assert isinstance(flow, FlowDescriptor) and flow.center is True
    video = moving_square(3, 0)
    np.testing.assert_array_equal(flow(video), flow_descriptor(video, MotionConstants()))
    # the cache identity follows the descriptor's constants only
    assert (
        build_motion_backend("flow", constants=MotionConstants(traj_grid=5)).identity
        == flow.identity
    )
    assert (
        build_motion_backend("flow", constants=MotionConstants(flow_grid=(2, 2))).identity
        != flow.identity
    )
    tiny = build_motion_backend("videomae-tiny", constants=MotionConstants(videomae_center=False))
    assert isinstance(tiny, VideoMAEDescriptor) and tiny.center is False
    tiny.model.save_pretrained(tmp_path / "ckpt")
    assert build_motion_backend(tmp_path / "ckpt").identity.startswith(
        "transformers:videomae-kinetics@"
    )
    with pytest.raises(ConfigError, match="unknown motion backend 'videomea'"):
        build_motion_backend("videomea")
