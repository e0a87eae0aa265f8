"""What the sample data shows, drawn with numpy: the toy's four photos and the person's swing
and wave clips, on a tiny supersampled rasteriser. Pure functions of fixed seeds."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

IMAGE_SIZE = 256  # identity photos are IMAGE_SIZE x IMAGE_SIZE
VIDEO_SIZE = (120, 160)  # (H, W) of the motion clips
VIDEO_FPS = 12
VIDEO_FRAMES = 60  # >= 49, the clip length CogVideoX trains on; a multiple of 12 and 20
SUPERSAMPLE = 2  # render at 2x and average 2x2 blocks: anti-aliased edges


@dataclass(frozen=True)
class _ToyPose:
    angle_deg: float
    scale: float  # body radius as a fraction of the image size
    center: tuple[float, float]  # (x, y) in [0, 1]
    background: str


@dataclass(frozen=True)
class _SwingClip:
    period: int  # frames per swing period
    amplitude_deg: float
    phase: float  # radians
    sky: tuple[tuple[int, int, int], tuple[int, int, int]]  # top, horizon colours
    ground: tuple[int, int, int]
    shirt: tuple[int, int, int]
    seed: int  # seeds the static ground texture


TOY_POSES: tuple[_ToyPose, ...] = (
    _ToyPose(0.0, 0.30, (0.50, 0.52), "gradient"),
    _ToyPose(-14.0, 0.26, (0.44, 0.55), "noise"),
    _ToyPose(11.0, 0.33, (0.55, 0.50), "stripes"),
    _ToyPose(-5.0, 0.22, (0.58, 0.60), "floor"),
)

SWING_CLIPS: tuple[_SwingClip, ...] = (
    _SwingClip(12, 38.0, 0.0, ((120, 170, 235), (200, 225, 250)), (80, 150, 70), (215, 40, 40), 1),
    _SwingClip(16, 30.0, 1.3, ((245, 170, 110), (250, 220, 160)), (150, 120, 80), (40, 90, 210), 2),
    _SwingClip(20, 44.0, 2.6, ((60, 70, 120), (150, 140, 190)), (60, 100, 60), (240, 200, 40), 3),
)

#: the waving clips (same fields: the period and amplitude are the raised arm's)
WAVE_CLIPS: tuple[_SwingClip, ...] = (
    _SwingClip(10, 35.0, 0.0, ((150, 190, 240), (215, 230, 250)), (90, 140, 70), (60, 160, 90), 4),
    _SwingClip(
        14, 28.0, 0.9, ((230, 190, 150), (245, 225, 190)), (120, 130, 80), (170, 60, 170), 5
    ),
)


# ---- tiny rasteriser ---------------------------------------------------------------------


def _grid(h: int, w: int, ss: int = SUPERSAMPLE) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates (x, y) of an ``ss``-times supersampled ``h x w`` canvas, in
    output-pixel units."""
    ys = (np.arange(h * ss) + 0.5) / ss
    xs = (np.arange(w * ss) + 0.5) / ss
    return np.meshgrid(xs, ys)


def _downsample(img: np.ndarray, ss: int = SUPERSAMPLE) -> np.ndarray:
    total = sum(img[i::ss, j::ss] for i in range(ss) for j in range(ss))
    return total / (ss * ss)


def _paint(canvas: np.ndarray, mask: np.ndarray, color) -> None:
    """Paint ``color`` (RGB in 0..255 or an (H, W, 3) array) where ``mask`` (bool) is set."""
    canvas[mask] = color if np.ndim(color) == 1 else color[mask]


def _segment_distance(x, y, p0, p1) -> np.ndarray:
    (x0, y0), (x1, y1) = p0, p1
    dx, dy = x1 - x0, y1 - y0
    t = np.clip(((x - x0) * dx + (y - y0) * dy) / max(dx * dx + dy * dy, 1e-12), 0.0, 1.0)
    return np.hypot(x - (x0 + t * dx), y - (y0 + t * dy))


# ---- the toy -----------------------------------------------------------------------------


def _background(
    kind: str, x: np.ndarray, y: np.ndarray, size: int, rng: np.random.Generator
) -> np.ndarray:
    u, v = x / size, y / size
    if kind == "gradient":
        top, bottom = np.array([235, 240, 250.0]), np.array([180, 200, 230.0])
        return top + (bottom - top) * v[..., None]
    if kind == "noise":
        coarse = rng.random((9, 9, 3))
        iy = np.minimum((v * 8).astype(int), 8)
        ix = np.minimum((u * 8).astype(int), 8)
        return 150 + 80 * coarse[iy, ix]
    if kind == "stripes":
        band = (np.floor((u + 0.5 * v) * 10) % 2)[..., None]
        return np.where(band > 0, np.array([250, 225, 235.0]), np.array([205, 235, 215.0]))
    # "floor": a wall over a wooden floor
    wall = np.array([225, 215, 195.0]) + 0 * u[..., None]
    wood = np.array([150, 105, 65.0]) * (0.85 + 0.15 * np.sin(u * 40)[..., None])
    return np.where((v > 0.68)[..., None], wood, wall)


def _draw_toy(pose: _ToyPose, seed: int, size: int = IMAGE_SIZE) -> np.ndarray:
    """One 256x256 photo of the toy at ``pose``: uint8 (size, size, 3)."""
    rng = np.random.default_rng(seed)
    x, y = _grid(size, size)
    img = _background(pose.background, x, y, size, rng)
    # object coordinates: unit = body radius, origin = body centre, rotated by -angle
    r = pose.scale * size
    cx, cy = pose.center[0] * size, pose.center[1] * size
    a = np.deg2rad(pose.angle_deg)
    u = ((x - cx) * np.cos(a) + (y - cy) * np.sin(a)) / r
    v = (-(x - cx) * np.sin(a) + (y - cy) * np.cos(a)) / r

    # soft shadow under the body
    shadow = (((x - cx) / (1.05 * r)) ** 2 + ((y - cy - 1.0 * r) / (0.18 * r)) ** 2) < 1
    img[shadow] *= 0.7
    # ears (green, with pink insides), then the body over them
    for ex in (-0.62, 0.62):
        _paint(img, (u - ex) ** 2 + (v + 0.78) ** 2 < 0.30**2, (60, 170, 80))
        _paint(img, (u - ex) ** 2 + (v + 0.78) ** 2 < 0.16**2, (245, 160, 190))
    body = (u / 1.0) ** 2 + (v / 0.92) ** 2 < 1
    checker = (np.floor(u * 3.5) + np.floor(v * 3.5)) % 2 == 0
    _paint(img, body & checker, (225, 45, 50))
    _paint(img, body & ~checker, (250, 205, 40))
    _paint(img, body & (np.abs(v - 0.42) < 0.11), (40, 80, 200))  # belly band
    _paint(img, body & (np.abs(v - 0.42) < 0.11) & (np.abs(u % 0.3 - 0.15) < 0.04), (255, 255, 255))
    # face: white eyes with black pupils and a highlight, a dark smile, pink cheeks
    for ex in (-0.33, 0.33):
        _paint(img, (u - ex) ** 2 + (v + 0.18) ** 2 < 0.19**2, (255, 255, 255))
        _paint(img, (u - ex * 1.1) ** 2 + (v + 0.15) ** 2 < 0.09**2, (20, 20, 25))
        _paint(img, (u - ex * 1.1 + 0.03) ** 2 + (v + 0.19) ** 2 < 0.03**2, (255, 255, 255))
        _paint(img, (u - ex * 1.75) ** 2 + (v - 0.12) ** 2 < 0.08**2, (240, 130, 150))
    smile = (np.abs(np.hypot(u, v + 0.05) - 0.27) < 0.035) & (v > 0.03)
    _paint(img, smile, (60, 20, 20))
    return np.clip(_downsample(img) + 0.5, 0, 255).astype(np.uint8)


# ---- the swing ---------------------------------------------------------------------------


def _outdoor_background(
    clip: _SwingClip, h: int, w: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sky over mown grass (the clip's colours and texture seed), with its pixel grid."""
    x, y = _grid(h, w)
    top, horizon = np.array(clip.sky[0], float), np.array(clip.sky[1], float)
    horizon_y = 0.72 * h
    img = top + (horizon - top) * np.clip(y / horizon_y, 0, 1)[..., None]
    # grass: mowing stripes and a coarse seeded texture (smooth, so it compresses cleanly)
    rng = np.random.default_rng(clip.seed)
    coarse = rng.random((h // 8 + 1, w // 8 + 1))[(y / 8).astype(int), (x / 8).astype(int)]
    grass = np.array(clip.ground, float) * (0.9 + 0.08 * np.sin(x / 5) + 0.1 * coarse)[..., None]
    img = np.where((y > horizon_y)[..., None], grass, img)
    return img, x, y


def _swing_background(
    clip: _SwingClip, h: int, w: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    img, x, y = _outdoor_background(clip, h, w)
    # the swing's frame: two slanted posts and a top bar (static)
    px, py = w / 2, 0.12 * h
    for sx in (-1, 1):
        _stroke(
            img, x, y, (px + sx * 0.30 * w, py), (px + sx * 0.42 * w, 0.92 * h), 1.6, (90, 90, 100)
        )
    _stroke(img, x, y, (px - 0.32 * w, py), (px + 0.32 * w, py), 1.8, (90, 90, 100))
    return img, x, y


def _window(x: np.ndarray, y: np.ndarray, points, margin: float) -> tuple[slice, slice]:
    """Rows/columns of the supersampled grid within ``margin`` of the points' bounding box."""
    ss = round(1 / (x[0, 1] - x[0, 0]))
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    c0, c1 = int((min(xs) - margin) * ss), int(np.ceil((max(xs) + margin) * ss)) + 1
    r0, r1 = int((min(ys) - margin) * ss), int(np.ceil((max(ys) + margin) * ss)) + 1
    return slice(max(r0, 0), max(r1, 0)), slice(max(c0, 0), max(c1, 0))


def _stroke(img, x, y, p0, p1, radius: float, color) -> None:
    """Paint the segment ``p0``-``p1`` with round caps, ``radius`` pixels thick each side."""
    win = _window(x, y, (p0, p1), radius + 1)
    _paint(img[win], _segment_distance(x[win], y[win], p0, p1) < radius, color)


def _draw_swing_frame(background, x, y, clip: _SwingClip, t: int, h: int, w: int) -> np.ndarray:
    img = background.copy()
    theta = np.deg2rad(clip.amplitude_deg) * np.sin(2 * np.pi * t / clip.period + clip.phase)
    pivot = np.array([w / 2, 0.12 * h])
    down = np.array([np.sin(theta), np.cos(theta)])  # along the ropes
    fwd = np.array([np.cos(theta), -np.sin(theta)])  # perpendicular, facing the swing direction
    seat = pivot + 0.62 * h * down

    u = h / 85  # figure unit: the person is about 40 px tall at 120 px

    def at(p, along, across):  # a point ``along`` the ropes and ``across`` them, in figure units
        return tuple(p + u * (along * down + across * fwd))

    # ropes and seat
    for off in (-0.9, 0.9):
        _stroke(img, x, y, at(pivot, 0, off), at(seat, 0, off * 2), 0.5 * u, (70, 50, 30))
    _stroke(img, x, y, at(seat, 0, -9), at(seat, 0, 9), 1.6 * u, (120, 75, 35))
    # the person: legs forward and down, torso up along the ropes, an arm to the rope, head
    hip, knee, foot = at(seat, -2, 4), at(seat, -2, 13), at(seat, 9, 17)
    _stroke(img, x, y, hip, knee, 2.2 * u, (40, 50, 110))
    _stroke(img, x, y, knee, foot, 1.9 * u, (40, 50, 110))
    shoulder = at(seat, -22, 0)
    _stroke(img, x, y, hip, shoulder, 3.8 * u, clip.shirt)
    _stroke(img, x, y, shoulder, at(seat, -12, 6), 1.4 * u, (230, 180, 140))
    head = at(seat, -30, 0)
    _stroke(img, x, y, head, head, 5.2 * u, (230, 180, 140))
    win = _window(x, y, (head,), 7 * u)
    xw, yw = x[win], y[win]
    hair = (np.hypot(xw - head[0], yw - head[1]) < 5.4 * u) & (
        (xw - head[0]) * down[0] + (yw - head[1]) * down[1] < -1.5 * u
    )
    _paint(img[win], hair, (60, 35, 20))
    return np.clip(_downsample(img) + 0.5, 0, 255).astype(np.uint8)


def render_swing_clip(
    clip: _SwingClip, num_frames: int = VIDEO_FRAMES, size=VIDEO_SIZE
) -> np.ndarray:
    """The frames of one swing clip: uint8 (num_frames, H, W, 3)."""
    return _render(_swing_background, _draw_swing_frame, clip, num_frames, size)


def _render(background, draw, clip: _SwingClip, num_frames: int, size) -> np.ndarray:
    h, w = size
    img, x, y = background(clip, h, w)
    return np.stack([draw(img, x, y, clip, t, h, w) for t in range(num_frames)])


def _draw_wave_frame(background, x, y, clip: _SwingClip, t: int, h: int, w: int) -> np.ndarray:
    img = background.copy()
    u = h / 85  # figure unit, as on the swing
    foot_y, cx = 0.9 * h, 0.5 * w
    hip = (cx, foot_y - 18 * u)
    shoulder = (cx, foot_y - 36 * u)
    for side in (-1, 1):
        _stroke(img, x, y, hip, (cx + side * 5 * u, foot_y), 2.2 * u, (40, 50, 110))
    _stroke(img, x, y, hip, shoulder, 3.8 * u, clip.shirt)
    _stroke(img, x, y, shoulder, (cx - 6 * u, foot_y - 20 * u), 1.4 * u, (230, 180, 140))
    # the raised arm swings about the vertical: theta(t) = A sin(2 pi t / P + phi)
    theta = np.deg2rad(clip.amplitude_deg) * np.sin(2 * np.pi * t / clip.period + clip.phase)
    elbow = (shoulder[0] + 8 * u, shoulder[1] - 6 * u)
    hand = (elbow[0] + 12 * u * np.sin(theta), elbow[1] - 12 * u * np.cos(theta))
    _stroke(img, x, y, shoulder, elbow, 1.5 * u, (230, 180, 140))
    _stroke(img, x, y, elbow, hand, 1.4 * u, (230, 180, 140))
    head = (cx, foot_y - 44 * u)
    _stroke(img, x, y, head, head, 5.2 * u, (230, 180, 140))
    return np.clip(_downsample(img) + 0.5, 0, 255).astype(np.uint8)


def render_wave_clip(
    clip: _SwingClip, num_frames: int = VIDEO_FRAMES, size=VIDEO_SIZE
) -> np.ndarray:
    """The frames of one waving clip: uint8 (num_frames, H, W, 3)."""
    return _render(_outdoor_background, _draw_wave_frame, clip, num_frames, size)


def render_toy_images() -> list[np.ndarray]:
    """The identity photos: four uint8 (256, 256, 3) images."""
    return [_draw_toy(pose, seed=100 + i) for i, pose in enumerate(TOY_POSES)]
