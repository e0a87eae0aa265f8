"""``trajectory_fidelity``: point tracks of a video against those of reference clips.

The definition of diffusion-motion-transfer (Yatim et al., CVPR 2024, ``motion_fidelity_score.py``;
reused by later motion-transfer papers with CoTracker tracks): tracks on a grid of query points;
per step the unit displacement ``d(t) = (p(t+1) - p(t)) / |p(t+1) - p(t)|``; the similarity of
track ``i`` of one video and track ``j`` of the other is ``mean_t <d_i(t), d_j(t)>``; the score
is the mean over the generated video's tracks of the max over the reference's tracks. Here the
score against each reference clip is averaged over the motion's clips.

Two flaws of the published script are fixed by default and kept behind ``dmt_compatible=True``
(tested to reproduce it):

1. it subtracts an identity matrix from the *cross-video* similarity matrix (a leftover of a
   self-similarity computation): track ``i`` of the generated video loses 1 against track ``i``
   of the reference, i.e. against the reference track that starts at the same grid point, and the
   matrix must be square (the same grid in both videos). Default: nothing is subtracted.
2. a zero-length step divides by zero: the whole track's similarities become NaN, and torch's
   ``max`` and ``mean`` then make the score NaN. Default: a step shorter than
   ``static_threshold`` is *static*; two static steps agree (1), a static and a moving step do
   not (0), two moving steps give the cosine of their directions. (Implemented as 3-vectors
   ``(ux, uy, 0)`` for moving and ``(0, 0, 1)`` for static steps, so one matrix product does it.)

Tracks come from chaining consecutive flow fields (:func:`chain_tracks`): the RAFT flows of the
dynamic-degree pass can be reused, or DIS flows (:func:`~.flow_backend.dis_flows`).

Frame alignment (one rule, :func:`align_tracks`): both clips are sampled at about ``target_fps``
with VBench's interval rule (every ``max(1, round(fps / 8))``-th frame: UCF101 25 fps -> every
3rd = 8.33 fps, 29.97 fps -> every 4th = 7.49 fps, UCF Sports 10 fps -> every frame, generated
8 fps -> every frame), then both are truncated to the common number of frames from the start.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from ...errors import ConfigError, MediaError
from .constants import MotionConstants


def grid_points(height: int, width: int, n: int) -> np.ndarray:
    """Centres of an ``n x n`` grid of cells, ``(n * n, 2)`` float (x, y) in pixel coordinates
    (pixel ``(r, c)`` has its centre at ``x = c, y = r``), row-major."""
    xs = (np.arange(n) + 0.5) * width / n - 0.5
    ys = (np.arange(n) + 0.5) * height / n - 0.5
    gx, gy = np.meshgrid(xs, ys)
    return np.stack([gx.ravel(), gy.ravel()], axis=-1)


def sample_bilinear(field: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Bilinear sample of ``field (H, W, C)`` at ``points (N, 2)`` (x, y) -> ``(N, C)``.

    Points outside the frame take the value at the nearest border position (coordinates clamped).
    """
    h, w = field.shape[:2]
    x = np.clip(points[:, 0], 0.0, w - 1.0)
    y = np.clip(points[:, 1], 0.0, h - 1.0)
    x0 = np.minimum(np.floor(x).astype(np.int64), max(w - 2, 0))
    y0 = np.minimum(np.floor(y).astype(np.int64), max(h - 2, 0))
    x1, y1 = np.minimum(x0 + 1, w - 1), np.minimum(y0 + 1, h - 1)
    wx, wy = (x - x0)[:, None], (y - y0)[:, None]
    top = field[y0, x0] * (1 - wx) + field[y0, x1] * wx
    bottom = field[y1, x0] * (1 - wx) + field[y1, x1] * wx
    return top * (1 - wy) + bottom * wy


def chain_tracks(flows: np.ndarray | Sequence[np.ndarray], points: np.ndarray) -> np.ndarray:
    """Tracks of ``points (N, 2)`` through consecutive flows -> ``(N, T, 2)`` positions (x, y).

    ``flows``: ``(T - 1, H, W, 2)`` (or a sequence of ``(H, W, 2)``), flow ``t`` maps frame ``t``
    to ``t + 1`` in pixels (x, y). ``p(t + 1) = p(t) + flow_t(p(t))`` with the flow sampled
    bilinearly at the sub-pixel position (border-clamped: a point that leaves the frame keeps
    moving with the flow at the border).
    """
    pts = np.asarray(points, np.float64)
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise ConfigError(f"track points must be (N, 2), got {pts.shape}")
    out = [pts]
    for t, flow in enumerate(flows):
        flow = np.asarray(flow)
        if flow.ndim != 3 or flow.shape[-1] != 2:
            raise MediaError(f"flow {t}: expected (H, W, 2), got {flow.shape}")
        pts = pts + sample_bilinear(flow.astype(np.float64), pts)
        out.append(pts)
    return np.stack(out, axis=1)


def grid_tracks(
    flows: np.ndarray | Sequence[np.ndarray], constants: MotionConstants | None = None
) -> np.ndarray:
    """Tracks of a ``traj_grid`` x ``traj_grid`` grid, in units of the frame's short side, ``(N, T, 2)``."""
    constants = constants or MotionConstants()
    flows = list(flows)
    if not flows:
        raise MediaError("tracks need at least one flow field (two frames)")
    h, w = np.asarray(flows[0]).shape[:2]
    tracks = chain_tracks(flows, grid_points(h, w, constants.traj_grid))
    return tracks / float(min(h, w))


def dis_tracks(frames: np.ndarray, constants: MotionConstants | None = None) -> np.ndarray:
    """:func:`grid_tracks` of DIS flows (``traj_dis_short_side``, ``traj_dis_preset``) of uint8
    ``(T, H, W, 3)`` frames sampled at about ``target_fps``: for reference clips, or any video
    without RAFT flows."""
    from .flow_backend import dis_flows

    constants = constants or MotionConstants()
    flow_constants = dataclasses.replace(
        constants,
        flow_short_side=constants.traj_dis_short_side,
        flow_dis_preset=constants.traj_dis_preset,
        flow_intensity_norm=False,
    )
    return grid_tracks(dis_flows(frames, flow_constants), constants)


def align_tracks(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The alignment rule: both ``(N, T, 2)`` truncated to their common number of frames.

    Both clips must already be sampled with :func:`dualreal_bench.media.sample_indices`
    (``sampling="fps"``, ``target_fps``) -- see the module docstring.
    """
    t = min(a.shape[1], b.shape[1])
    if t < 2:
        raise MediaError(
            f"trajectory fidelity: tracks of {a.shape[1]} and {b.shape[1]} frames share fewer than 2"
        )
    return a[:, :t], b[:, :t]


def aligned_frame_indices(
    num_frames: Sequence[int], fps: Sequence[float], target_fps: float = 8.0
) -> list[list[int]]:
    """Source frame indices each clip contributes under the alignment rule.

    Clip ``k`` has ``num_frames[k]`` frames at ``fps[k]``: every ``max(1, round(fps / target_fps))``-th
    frame from frame 0, all lists cut to the shortest.
    """
    from ...media import sample_indices

    lists = [
        sample_indices(n, f, sampling="fps", target_fps=target_fps)
        for n, f in zip(num_frames, fps, strict=True)
    ]
    common = min(len(x) for x in lists)
    return [x[:common] for x in lists]


def step_vectors(tracks: np.ndarray, static_threshold: float) -> np.ndarray:
    """Per step 3-vectors ``(N, T - 1, 3)``: ``(ux, uy, 0)`` for a unit step direction, ``(0, 0, 1)``
    for a step shorter than ``static_threshold`` (same units as ``tracks``)."""
    d = np.diff(np.asarray(tracks, np.float64), axis=1)
    length = np.linalg.norm(d, axis=-1, keepdims=True)
    moving = length > static_threshold
    unit = np.divide(d, length, out=np.zeros_like(d), where=moving & (length > 0))
    return np.concatenate([unit, (~moving).astype(np.float64)], axis=-1)


def similarity_matrix(a: np.ndarray, b: np.ndarray, *, static_threshold: float) -> np.ndarray:
    """``sim[i, j] = mean_t <e_i(t), e_j(t)>`` of tracks ``a (N, T, 2)`` and ``b (M, T, 2)`` -> ``(N, M)``."""
    if a.shape[1] != b.shape[1]:
        raise MediaError(
            f"similarity of tracks needs equal lengths, got {a.shape[1]} and {b.shape[1]} (align first)"
        )
    ea, eb = step_vectors(a, static_threshold), step_vectors(b, static_threshold)
    steps = ea.shape[1]
    return ea.reshape(len(ea), -1) @ eb.reshape(len(eb), -1).T / steps


def dmt_similarity_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """diffusion-motion-transfer's ``get_similarity_matrix(a, b)``, NaN for zero-length steps included."""
    da, db = np.diff(np.asarray(a, np.float64), axis=1), np.diff(np.asarray(b, np.float64), axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        da = da / np.linalg.norm(da, axis=-1, keepdims=True)
        db = db / np.linalg.norm(db, axis=-1, keepdims=True)
    return np.einsum("ntc,mtc->nmt", da, db).mean(axis=-1)


def trajectory_score(
    generated: np.ndarray,
    reference: np.ndarray,
    *,
    static_threshold: float = 0.002,
    dmt_compatible: bool = False,
) -> float:
    """Mean over generated tracks of the max similarity over reference tracks (both ``(N, T, 2)``,
    aligned to the same ``T``).

    ``dmt_compatible=True`` reproduces the published script: unit steps without a static class
    (a zero-length step makes the score NaN, as NaN propagates through torch's max and mean) and
    ``sim - eye(N)`` before the max (so both videos need the same number of tracks).
    """
    if dmt_compatible:
        sim = dmt_similarity_matrix(generated, reference)
        if sim.shape[0] != sim.shape[1]:
            raise ConfigError(
                f"dmt_compatible trajectory score subtracts an identity matrix: needs as many generated as "
                f"reference tracks, got {sim.shape[0]} and {sim.shape[1]}"
            )
        sim = sim - np.eye(sim.shape[0])
        return float(np.max(sim, axis=1).mean())  # np.max, like torch.max, propagates NaN
    sim = similarity_matrix(generated, reference, static_threshold=static_threshold)
    return float(sim.max(axis=1).mean())


def trajectory_fidelity(
    generated: np.ndarray,
    references: Sequence[np.ndarray],
    *,
    constants: MotionConstants | None = None,
    dmt_compatible: bool = False,
) -> float:
    """Mean over reference clips of :func:`trajectory_score` after :func:`align_tracks`.

    Tracks ``(N, T, 2)`` in units of their frame's short side (:func:`grid_tracks`), each clip
    sampled at about ``target_fps``.
    """
    constants = constants or MotionConstants()
    if not references:
        raise MediaError("trajectory fidelity: no reference tracks")
    scores = []
    for ref in references:
        g, r = align_tracks(np.asarray(generated), np.asarray(ref))
        scores.append(
            trajectory_score(
                g,
                r,
                static_threshold=constants.traj_static_threshold,
                dmt_compatible=dmt_compatible,
            )
        )
    return float(np.mean(scores))
