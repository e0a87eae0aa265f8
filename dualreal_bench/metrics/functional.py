"""The numeric core of every metric: pure functions of embeddings, frames and flows.

No model is loaded here; the :class:`~dualreal_bench.metrics.evaluator.Evaluator` runs the
encoders and hands their outputs to these functions, and tests call them directly against
naive reference implementations and VBench's own code.

Conventions: frames are ``uint8`` arrays ``(T, H, W, 3)``; embeddings are float arrays
``(N, D)`` (normalised here, so any scale is fine); flows are ``(N, 2, H, W)`` in pixels.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import MediaError
from ..media import check_video_array
from ..media import fps_interval as fps_interval  # VBench's frame step, part of this API
from .constants import MetricConstants

# ---- text ---------------------------------------------------------------------------------


def clean_prompt(prompt: str, constants: MetricConstants) -> str:
    """The prompt CLIP-T scores: the authors' ``prompt[:300].replace(" *", "")``.

    The tokenizer then truncates to CLIP's context (77 tokens, end-of-text kept).
    """
    return prompt[: constants.prompt_max_chars].replace(constants.prompt_placeholder, "")


# ---- cosine metrics -----------------------------------------------------------------------


def l2_normalize(x: np.ndarray | torch.Tensor) -> np.ndarray:
    """Rows scaled to unit length, as float64 numpy (the scores are means of dot products)."""
    a = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    a = a.astype(np.float64)
    if a.ndim == 1:
        a = a[None]
    return a / np.linalg.norm(a, axis=-1, keepdims=True)


def clip_t(frame_emb: np.ndarray, text_emb: np.ndarray) -> float:
    """CLIP-T: mean over frames of cos(frame, prompt). ``frame_emb (T, D)``, ``text_emb (D,)``."""
    f, t = l2_normalize(frame_emb), l2_normalize(text_emb)
    return float((f @ t[0]).mean())


def identity_similarity(frame_emb: np.ndarray, ref_emb: np.ndarray) -> float:
    """CLIP-I / DINO-I: cos of every frame against every reference image, mean over the
    references, then over the frames. ``frame_emb (T, D)``, ``ref_emb (R, D)``."""
    sim = l2_normalize(frame_emb) @ l2_normalize(ref_emb).T  # (T, R)
    return float(sim.mean(axis=1).mean(axis=0))


def temporal_consistency(frame_emb: np.ndarray) -> float:
    """T-Cons: mean cos of consecutive frames (``T - 1`` pairs). Needs ``T >= 2``."""
    f = l2_normalize(frame_emb)
    if len(f) < 2:
        raise MediaError(f"temporal consistency needs at least 2 frames, got {len(f)}")
    return float((f[:-1] * f[1:]).sum(axis=1).mean())


# ---- temporal flickering (VBench temporal_flickering.py) ----------------------------------


def temporal_flickering(frames: np.ndarray) -> float:
    """``(255 - mean_i MAE(frame_i, frame_i+1)) / 255`` over all consecutive frames.

    VBench's ``cal_score`` on every decoded frame. A static clip gives exactly 1.0.
    """
    frames = _check_frames(frames, "temporal flickering", minimum=2)
    maes = [
        np.abs(frames[i].astype(np.int16) - frames[i + 1].astype(np.int16)).mean(dtype=np.float64)
        for i in range(len(frames) - 1)
    ]
    return (255.0 - float(np.mean(maes))) / 255.0


# ---- padding shared by RAFT (multiple of 8) and AMT (multiple of 16) ----------------------


def centered_pads(height: int, width: int, multiple: int) -> tuple[int, int, int, int]:
    """``(left, right, top, bottom)`` replicate pads to the next multiple, as the RAFT
    (``mode="sintel"``) and AMT ``InputPadder`` compute them."""
    pad_h = (-height) % multiple
    pad_w = (-width) % multiple
    return (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2)


def pad_to_multiple(
    x: torch.Tensor, multiple: int
) -> tuple[torch.Tensor, tuple[int, int, int, int]]:
    """Replicate-pad ``x (N, C, H, W)``; returns the padded tensor and the pads."""
    pads = centered_pads(x.shape[-2], x.shape[-1], multiple)
    if not any(pads):
        return x, pads
    return F.pad(x, pads, mode="replicate"), pads


def unpad(x: torch.Tensor, pads: tuple[int, int, int, int]) -> torch.Tensor:
    left, right, top, bottom = pads
    h, w = x.shape[-2:]
    return x[..., top : h - bottom, left : w - right]


# ---- Dynamic Degree (VBench dynamic_degree.py) ---------------------------------------------


def top_fraction_magnitude(flow: torch.Tensor | np.ndarray, fraction: float) -> np.ndarray:
    """Per flow field, the mean of the largest ``int(h * w * fraction)`` magnitudes.

    ``flow (N, 2, H, W)`` -> ``(N,)``. VBench ``get_score`` on the padded flow. (VBench takes
    the mean of an empty slice, NaN, when ``h * w * fraction < 1``; here at least one value.)
    """
    f = torch.as_tensor(flow, dtype=torch.float32)
    if f.ndim == 3:
        f = f[None]
    rad = torch.sqrt(f[:, 0] ** 2 + f[:, 1] ** 2).flatten(1)  # (N, H*W)
    k = max(1, int(rad.shape[1] * fraction))
    top = torch.topk(rad, k, dim=1, sorted=False).values
    return top.double().mean(dim=1).numpy()


def dynamic_degree_params(
    height: int, width: int, num_frames: int, constants: MetricConstants
) -> tuple[float, int]:
    """VBench ``set_params``: ``thres = 6 * min(H, W) / 256`` (unpadded frame) and
    ``count_num = round(4 * num_sampled_frames / 16)``."""
    thres = constants.dd_thresh_per_256px * (min(height, width) / 256.0)
    count_num = round(constants.dd_count_per_16_frames * (num_frames / 16.0))
    return thres, count_num


def dynamic_degree_bool(pair_scores: Iterable[float], thres: float, count_num: int) -> bool:
    """VBench ``check_move``: True once ``count_num`` pairs exceed ``thres`` (scanning in order)."""
    count = 0
    for score in pair_scores:
        if score > thres:
            count += 1
        if count >= count_num:
            return True
    return False


def dynamic_degree(
    pair_scores: Sequence[float],
    height: int,
    width: int,
    num_frames: int,
    constants: MetricConstants,
) -> tuple[float, bool]:
    """``(continuous, boolean)`` from the per-pair top-fraction magnitudes of ``num_frames``
    sampled frames of size ``height x width``: the authors' mean and VBench's boolean."""
    scores = np.asarray(pair_scores, dtype=np.float64)
    if scores.size == 0:
        raise MediaError("dynamic degree needs at least 2 sampled frames")
    thres, count_num = dynamic_degree_params(height, width, num_frames, constants)
    return float(scores.mean()), dynamic_degree_bool(scores.tolist(), thres, count_num)


def dynamic_degree_deviation(
    value: float, reference_values: Sequence[float], constants: MetricConstants
) -> float:
    """Video DD minus the mean DD of the motion's reference clips (absolute by default)."""
    ref = float(np.mean(np.asarray(reference_values, dtype=np.float64)))
    diff = value - ref
    return abs(diff) if constants.dd_deviation == "absolute" else diff


# ---- Motion smoothness (VBench motion_smoothness.py) --------------------------------------


def motion_smoothness(
    frames: np.ndarray, interpolated: np.ndarray, constants: MetricConstants
) -> float:
    """``(255 - mean_i MAE(frame_{2i+1}, interpolated_i)) / 255``.

    ``interpolated`` holds the midpoints predicted between kept frames ``2i`` and ``2i+2``
    (uint8, VBench's ``tensor2img``); VBench's ``vfi_score`` compares them with the dropped
    odd frames.
    """
    stride = constants.ms_frame_stride
    originals = frames[stride // 2 :: stride]  # stride 2: the odd frames
    n = len(interpolated)
    if n == 0:
        raise MediaError("motion smoothness needs at least 3 frames")
    scores = [
        np.abs(originals[i].astype(np.int16) - interpolated[i].astype(np.int16)).mean(
            dtype=np.float64
        )
        for i in range(n)
    ]
    return (255.0 - float(np.mean(scores))) / 255.0


def _check_frames(frames: np.ndarray, what: str, minimum: int) -> np.ndarray:
    frames = check_video_array(frames, what)
    if len(frames) < minimum:
        raise MediaError(f"{what} needs at least {minimum} frames, got {len(frames)}")
    return frames
