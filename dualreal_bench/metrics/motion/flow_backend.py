"""The weight-free motion descriptor: pooled histograms of OpenCV DIS optical flow.

Pipeline (each step a named constant of :class:`~.constants.MotionConstants`):

1. frames (uint8 ``(T, H, W, 3)``, already sampled at about 8 fps) -> gray, resized so the short
   side is ``flow_short_side`` px (optionally stretched per clip, ``flow_intensity_norm``);
2. DIS flow of each consecutive pair (``flow_dis_preset``), divided by the short side (units:
   fraction of the short side per sampled frame, so clips of any size compare);
3. camera motion removed per frame (``flow_camera``: the median flow vector, or an affine field);
4. per pixel, the blocks named in ``flow_features``:

   - ``hof``: flow direction in ``flow_orientations`` bins (linearly interpolated between the two
     nearest bin centres), weighted by magnitude; optionally a static bin
     (``flow_static_threshold``);
   - ``mbh``: motion boundary histograms (Dalal et al. 2006; dense trajectories): the same
     histogram of the spatial gradient of each flow component (at ``flow_mbh_sigmas`` scales),
     blind to any constant (camera) flow;
   - ``mag``: histogram of the flow magnitude over ``flow_magnitude_bins``;
   - ``freq``: amplitude spectrum of each cell's mean magnitude over time (4 bands);
   - ``dflow``: direction histogram of the flow's change between consecutive pairs;

5. averaged over ``flow_grid`` cells and a temporal pyramid of ``flow_temporal_levels`` levels
   (level ``l``: 2**l equal segments); each block (feature x segment) normalised to unit L1
   (``flow_block_norm``), raised to ``flow_power``, concatenated, L2-normalised; with
   ``flow_mirror="symmetric"`` summed with the descriptor of the mirrored flows.

The defaults (HOF + MBH, 3x3 cells, whole clip, 8 bins, square root, DIS at 96 px "fast") and
what every alternative does to leave-one-clip-out retrieval over the 21 motions' clips are in
``scripts/motion_fidelity_validation.py``. The descriptor describes the direction and layout of
motion, not its amount (a block's L1 normalisation removes the overall magnitude; Dynamic Degree
measures that). :func:`.retrieval.motion_similarities` compares descriptors (centred cosine).
"""

from __future__ import annotations

import numpy as np

from ...errors import MediaError
from .constants import MotionConstants

_DIS_PRESETS = {"ultrafast": 0, "fast": 1, "medium": 2}  # cv2.DISOPTICAL_FLOW_PRESET_*
_FREQ_BANDS = 4  # bands of the temporal spectrum (FREQ block)


def _cv2():
    try:
        import cv2
    except ImportError:  # pragma: no cover - a dependency of the package
        raise ImportError(
            "the weight-free motion descriptor needs OpenCV: pip install opencv-python-headless"
        ) from None
    return cv2


def _check_frames(frames: np.ndarray, what: str = "frames") -> np.ndarray:
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise MediaError(f"{what}: expected uint8 (T, H, W, 3), got {frames.dtype} {frames.shape}")
    if frames.shape[0] < 2:
        raise MediaError(f"{what}: motion needs at least 2 frames, got {frames.shape[0]}")
    return frames


def gray_frames(frames: np.ndarray, constants: MotionConstants) -> np.ndarray:
    """uint8 ``(T, h, w)`` gray frames at the flow's working size (short side ``flow_short_side``)."""
    cv2 = _cv2()
    frames = _check_frames(frames)
    _, h, w, _ = frames.shape
    s = constants.flow_short_side / min(h, w)
    size = (max(1, round(w * s)), max(1, round(h * s)))  # cv2: (width, height)
    interp = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
    gray = np.stack(
        [
            cv2.resize(cv2.cvtColor(f, cv2.COLOR_RGB2GRAY), size, interpolation=interp)
            for f in frames
        ]
    )
    if constants.flow_intensity_norm:
        g = gray.astype(np.float32)
        lo, hi = np.percentile(g, [1.0, 99.0])
        if hi > lo:
            gray = np.clip(np.rint((g - lo) * (255.0 / (hi - lo))), 0, 255).astype(np.uint8)
    return gray


def dis_flows(frames: np.ndarray, constants: MotionConstants) -> np.ndarray:
    """DIS flow of consecutive frames, float32 ``(T - 1, h, w, 2)`` (x, y) in working-size pixels.

    ``frames``: uint8 ``(T, H, W, 3)``; ``h, w``: the working size (short side ``flow_short_side``).
    """
    cv2 = _cv2()
    gray = gray_frames(frames, constants)
    dis = cv2.DISOpticalFlow_create(_DIS_PRESETS[constants.flow_dis_preset])
    return np.stack([dis.calc(gray[t], gray[t + 1], None) for t in range(len(gray) - 1)]).astype(
        np.float32
    )


# ---- camera motion ---------------------------------------------------------------------------


def remove_camera_motion(flows: np.ndarray, mode: str) -> np.ndarray:
    """``flows (N, h, w, 2)`` minus each frame's camera flow: its median vector or an affine field."""
    if mode == "none":
        return flows
    if mode == "median":
        return flows - np.median(flows.reshape(len(flows), -1, 2), axis=1)[:, None, None, :]
    # affine: least squares of flow = A @ [x, y, 1] on a sub-grid, per frame
    n, h, w, _ = flows.shape
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    xs, ys = xs / max(w, h), ys / max(w, h)
    basis = np.stack([xs, ys, np.ones_like(xs)], axis=-1).reshape(-1, 3)  # (h*w, 3)
    step = max(1, (h * w) // 4096)
    sub = basis[::step]
    coef, *_ = np.linalg.lstsq(
        sub, flows.reshape(n, -1, 2)[:, ::step].transpose(1, 0, 2).reshape(len(sub), -1), rcond=None
    )  # (3, n*2)
    fitted = (basis @ coef).reshape(h, w, n, 2).transpose(2, 0, 1, 3)
    return flows - fitted


# ---- per-pixel features ----------------------------------------------------------------------


def _orientation_hist(
    dx: np.ndarray, dy: np.ndarray, bins: int, static: float | None
) -> np.ndarray:
    """Soft orientation histogram per pixel, weighted by magnitude: ``(..., bins [+ 1])``.

    Angles are binned with linear interpolation between the two nearest bin centres. With
    ``static`` set, pixels whose magnitude is below it add 1 to an extra last bin (and nothing
    to the orientation bins)."""
    mag = np.hypot(dx, dy)
    pos = (np.arctan2(dy, dx) % (2 * np.pi)) * (bins / (2 * np.pi))
    lo = np.floor(pos).astype(np.int64) % bins
    frac = (pos - np.floor(pos)).astype(np.float32)
    weight = mag if static is None else np.where(mag < static, 0.0, mag).astype(np.float32)
    out = np.zeros(mag.shape + (bins + (static is not None),), np.float32)
    np.put_along_axis(out, lo[..., None], (weight * (1 - frac))[..., None], axis=-1)
    hi = (lo + 1) % bins
    cur = np.take_along_axis(out, hi[..., None], axis=-1)
    np.put_along_axis(out, hi[..., None], cur + (weight * frac)[..., None], axis=-1)
    if static is not None:
        out[..., -1] = (mag < static).astype(np.float32)
    return out


def _magnitude_hist(mag: np.ndarray, edges: tuple[float, ...]) -> np.ndarray:
    """One-hot magnitude bin per pixel, ``(..., len(edges) + 1)``: below the first edge, ..., above the last."""
    idx = np.searchsorted(np.asarray(edges, np.float32), mag, side="right")
    return (idx[..., None] == np.arange(len(edges) + 1)).astype(np.float32)


def _smooth(x: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of each frame of ``x (N, h, w)`` (``sigma`` px; 0: unchanged)."""
    if sigma <= 0:
        return x
    cv2 = _cv2()
    return np.stack([cv2.GaussianBlur(f, (0, 0), sigma) for f in x])


def _pool_cells(x: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """Mean of ``x (N, h, w, C)`` over a ``grid`` of cells -> ``(N, rows * cols, C)``."""
    n, h, w, c = x.shape
    rows, cols = grid
    r_edges = np.linspace(0, h, rows + 1).round().astype(int)
    c_edges = np.linspace(0, w, cols + 1).round().astype(int)
    s = np.add.reduceat(
        np.add.reduceat(x, r_edges[:-1], axis=1), c_edges[:-1], axis=2
    )  # (N, rows, cols, C)
    area = np.diff(r_edges)[:, None] * np.diff(c_edges)[None, :]
    return (s / area[None, :, :, None]).reshape(n, rows * cols, c)


def _segments(n: int, levels: int) -> list[tuple[int, int]]:
    """Frame ranges of the temporal pyramid: level l has 2**l equal segments (each >= 1 frame)."""
    out = []
    for level in range(levels):
        k = 2**level
        edges = np.linspace(0, n, k + 1)
        for i in range(k):
            a, b = int(np.floor(edges[i])), int(np.ceil(edges[i + 1]))
            out.append((min(a, n - 1), max(b, min(a, n - 1) + 1)))
    return out


def _spectrum(series: np.ndarray) -> np.ndarray:
    """Amplitude spectrum of ``series (N, C)`` (mean removed) in ``_FREQ_BANDS`` bands -> ``(bands, C)``."""
    n = len(series)
    x = series - series.mean(axis=0, keepdims=True)
    amp = np.abs(np.fft.rfft(x * np.hanning(n)[:, None], axis=0))[1:]  # drop DC
    if len(amp) == 0:
        return np.zeros((_FREQ_BANDS, series.shape[1]), np.float32)
    edges = np.linspace(0, len(amp), _FREQ_BANDS + 1).round().astype(int)
    return np.stack(
        [
            amp[a:b].sum(axis=0) if b > a else np.zeros(series.shape[1])
            for a, b in zip(edges[:-1], edges[1:], strict=True)
        ]
    )


def flow_features(flows: np.ndarray, constants: MotionConstants) -> dict[str, np.ndarray]:
    """Per-frame, per-cell features ``{name: (N, cells, C)}`` of flows ``(N, h, w, 2)`` in working px."""
    c = constants
    f = remove_camera_motion(flows / float(min(flows.shape[1:3])), c.flow_camera).astype(np.float32)
    u, v = f[..., 0], f[..., 1]
    out: dict[str, np.ndarray] = {}
    if "hof" in c.flow_features:
        static = c.flow_static_threshold or None  # 0: no static bin
        out["hof"] = _pool_cells(_orientation_hist(u, v, c.flow_orientations, static), c.flow_grid)
    if "mbh" in c.flow_features:
        blocks = []
        for comp in (u, v):
            for sigma in c.flow_mbh_sigmas:
                sm = _smooth(comp, sigma)
                gy, gx = np.gradient(sm, axis=(1, 2))
                if sigma > 0:
                    gy, gx = gy * sigma, gx * sigma  # scale-normalised gradient
                blocks.append(
                    _pool_cells(_orientation_hist(gx, gy, c.flow_orientations, None), c.flow_grid)
                )
        out["mbh"] = np.concatenate(blocks, axis=-1)
    if "dflow" in c.flow_features:  # change of the flow between consecutive pairs
        du, dv = np.diff(u, axis=0, prepend=u[:1]), np.diff(v, axis=0, prepend=v[:1])
        out["dflow"] = _pool_cells(
            _orientation_hist(du, dv, c.flow_orientations, None), c.flow_grid
        )
    if "mag" in c.flow_features or "freq" in c.flow_features:
        mag = np.hypot(u, v)
        if "mag" in c.flow_features:
            out["mag"] = _pool_cells(_magnitude_hist(mag, c.flow_magnitude_bins), c.flow_grid)
        if "freq" in c.flow_features:
            out["freq"] = _pool_cells(mag[..., None], c.flow_grid)  # (N, cells, 1): series per cell
    return out


def mirror_flows(flows: np.ndarray) -> np.ndarray:
    """The flows of the horizontally mirrored clip: columns reversed, x component negated."""
    out = flows[:, :, ::-1].copy()
    out[..., 0] *= -1
    return out


def descriptor_from_flows(flows: np.ndarray, constants: MotionConstants) -> np.ndarray:
    """The descriptor (float64, unit L2) of a clip from its consecutive flows ``(N, h, w, 2)``."""
    flows = np.asarray(flows, np.float32)
    if flows.ndim != 4 or flows.shape[-1] != 2 or len(flows) < 1:
        raise MediaError(f"flows: expected (N >= 1, h, w, 2), got {flows.shape}")
    d = _descriptor(flows, constants)
    if constants.flow_mirror == "symmetric":
        d = d + _descriptor(mirror_flows(flows), constants)
    norm = np.linalg.norm(d)
    return d / norm if norm > 0 else d


def _descriptor(flows: np.ndarray, constants: MotionConstants) -> np.ndarray:
    feats = flow_features(flows, constants)
    blocks: list[np.ndarray] = []
    for name in constants.flow_features:
        x = feats[name]
        if name == "freq":
            blocks.append(
                _spectrum(x[:, :, 0]).ravel()
            )  # whole clip only: a spectrum has no segments
            continue
        for a, b in _segments(len(x), constants.flow_temporal_levels):
            blocks.append(x[a:b].mean(axis=0).ravel())
    parts = []
    for block in blocks:
        block = np.asarray(block, np.float64)
        if constants.flow_block_norm == "l1":
            total = np.abs(block).sum()
            block = block / total if total > 0 else block
        parts.append(np.sign(block) * np.abs(block) ** constants.flow_power)
    d = np.concatenate(parts)
    norm = np.linalg.norm(d)
    return d / norm if norm > 0 else d


def flow_descriptor(frames: np.ndarray, constants: MotionConstants | None = None) -> np.ndarray:
    """Descriptor of a clip's frames (uint8 ``(T, H, W, 3)``, sampled at about ``target_fps``)."""
    constants = constants or MotionConstants()
    return descriptor_from_flows(dis_flows(frames, constants), constants)


class FlowDescriptor:
    """The weight-free backend with the learned one's interface: ``__call__(frames) -> (D,)``,
    an ``identity`` for caches (the version and the descriptor's constants) and ``center``."""

    #: the backend's name in records (``metric_constants.motion.backend``)
    kind = "flow"

    def __init__(self, constants: MotionConstants | None = None) -> None:
        from .constants import FLOW_DESCRIPTOR_KEYS

        self.constants = constants or MotionConstants()
        c = self.constants
        #: the constants a descriptor depends on (reference caches key on their digest)
        self.cache_keys = ("target_fps", *FLOW_DESCRIPTOR_KEYS)
        self.center = c.flow_center
        self.identity = (
            f"dis-flow-hist:{c.VERSION}:{c.flow_short_side}px-{c.flow_dis_preset}:"
            f"{c.digest(*FLOW_DESCRIPTOR_KEYS)}"
        )

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        return flow_descriptor(frames, self.constants)
