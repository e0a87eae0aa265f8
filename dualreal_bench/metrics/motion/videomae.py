"""The learned motion descriptor: VideoMAE-Base fine-tuned on Kinetics-400 (transformers).

Why VideoMAE rather than X-CLIP's video tower: X-CLIP embeds a video through per-frame CLIP
image features (cross-frame attention on top) trained to match *text*, so its embedding is
dominated by what is in the frames -- and here the generated subject (a dog, a plushie) and the
scene differ from the reference clips by design. VideoMAE is pre-trained by reconstructing
masked space-time tubes (90% of them masked), which forces it to model how things move, then
fine-tuned on Kinetics-400, whose classes cover most of the benchmark's motions (archery, bench
pressing, high jump, playing cello / flute / guitar / violin, pull ups, push up, riding a bike,
skateboarding, skiing, surfing water, tai chi, ...). Ge et al. (CVPR 2024, on FVD's content bias)
found VideoMAE features much less biased to per-frame content than I3D's; a supervised
fine-tune brings some content bias back (a guitar in the frame pulls towards "playing guitar"),
which is why the report keeps the weight-free flow backend beside it.
``MCG-NJU/videomae-base-finetuned-kinetics`` is the reference checkpoint in transformers.

The descriptor is the input of the Kinetics classifier: the mean of the last layer's tokens
after ``fc_norm`` (768 values for the base model), L2-normalised, averaged over up to
``videomae_max_windows`` windows of ``videomae_num_frames`` consecutive frames spread over the
clip (the clip sampled at about 8 fps: VideoMAE's Kinetics recipe takes 16 frames with a stride
of 4 at 25-30 fps, i.e. 6-7.5 fps) and L2-normalised again. Clips shorter than a window repeat
their last frame. Frames go through transformers' ``VideoMAEImageProcessor`` with the
checkpoint's settings (short side to 224, bilinear; centre crop 224; ImageNet mean/std).

Weights come only from a local directory or the Hugging Face cache (no download); the ``tiny``
variant is a random-initialised VideoMAE of the same architecture (2 layers, width 32), chosen
explicitly for tests and smoke runs, never as a fallback.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import torch

from ...errors import ConfigError, MediaError, WeightsError
from ...weights import WEIGHTS, find_weights, weights_identity
from .constants import MotionConstants

logger = logging.getLogger(__name__)

#: the checkpoint's entry in the weights table (:data:`dualreal_bench.weights.WEIGHTS`)
VIDEOMAE_WEIGHTS = "videomae-kinetics"
VIDEOMAE_REPO = WEIGHTS[VIDEOMAE_WEIGHTS].hf_repo


def window_starts(num_frames: int, window: int, max_windows: int) -> list[int]:
    """First frames of the windows: ``min(max_windows, ceil(T / window))`` windows evenly spread
    from frame 0 to the last full window (one window at 0 when the clip is not longer than it)."""
    if num_frames < 1:
        raise MediaError("VideoMAE descriptor: a clip with no frames")
    if num_frames <= window:
        return [0]
    k = min(max_windows, math.ceil(num_frames / window))
    return sorted({int(round(s)) for s in np.linspace(0, num_frames - window, k)})


def window_indices(num_frames: int, window: int, max_windows: int) -> list[list[int]]:
    """Frame indices of each window; a clip shorter than a window repeats its last frame."""
    return [
        [min(s + i, num_frames - 1) for i in range(window)]
        for s in window_starts(num_frames, window, max_windows)
    ]


class VideoMAEDescriptor:
    """``__call__(frames uint8 (T, H, W, 3)) -> (D,) float64`` unit descriptor (see the module doc)."""

    def __init__(
        self,
        model: torch.nn.Module,
        *,
        identity: str,
        constants: MotionConstants | None = None,
        device: str | torch.device = "cpu",
    ) -> None:
        from transformers import VideoMAEImageProcessor

        self.constants = constants or MotionConstants()
        c = self.constants
        cfg = model.config
        if cfg.num_frames != c.videomae_num_frames or cfg.image_size != c.videomae_image_size:
            raise ConfigError(
                f"VideoMAE model takes {cfg.num_frames} frames of {cfg.image_size} px but the motion constants say "
                f"videomae_num_frames={c.videomae_num_frames}, videomae_image_size={c.videomae_image_size}"
            )
        self.model = model.eval().to(device)
        self.identity = identity
        self.center = c.videomae_center
        self.device = torch.device(device)
        size = c.videomae_image_size
        self.processor = VideoMAEImageProcessor(
            do_resize=True,
            size={"shortest_edge": size},
            resample=2,  # PIL bilinear
            do_center_crop=True,
            crop_size={"height": size, "width": size},
            do_rescale=True,
            rescale_factor=1 / 255,
            do_normalize=True,
            image_mean=list(c.videomae_mean),
            image_std=list(c.videomae_std),
        )

    def preprocess(self, frames: np.ndarray) -> torch.Tensor:
        """``(n_windows, num_frames, 3, size, size)`` float32 pixel values of a clip."""
        frames = np.asarray(frames)
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
            raise MediaError(
                f"VideoMAE descriptor: expected uint8 (T, H, W, 3) frames, got {frames.dtype} {frames.shape}"
            )
        c = self.constants
        windows = window_indices(len(frames), c.videomae_num_frames, c.videomae_max_windows)
        return torch.cat(
            [
                self.processor(list(frames[idx]), return_tensors="pt")["pixel_values"]
                for idx in windows
            ]
        )

    @torch.no_grad()
    def features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Pooled features ``(n_windows, hidden)``: mean of the last tokens, then ``fc_norm``
        (what ``VideoMAEForVideoClassification`` feeds its classifier)."""
        m = self.model
        tokens = m.videomae(pixel_values.to(self.device)).last_hidden_state
        return m.fc_norm(tokens.mean(1)) if m.fc_norm is not None else tokens[:, 0]

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        f = torch.nn.functional.normalize(
            self.features(self.preprocess(frames)).double(), dim=-1
        ).mean(0)
        return torch.nn.functional.normalize(f, dim=0).cpu().numpy()


def tiny_videomae(
    seed: int = 0, constants: MotionConstants | None = None, device: str = "cpu"
) -> VideoMAEDescriptor:
    """A random-initialised VideoMAE classifier of the same architecture (tubelets, mean pooling,
    fc_norm) with 2 layers of width 32: a pipeline check, not a measurement."""
    from transformers import VideoMAEConfig, VideoMAEForVideoClassification

    c = constants or MotionConstants()
    config = VideoMAEConfig(
        image_size=c.videomae_image_size,
        patch_size=16,
        num_frames=c.videomae_num_frames,
        tubelet_size=2,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        use_mean_pooling=True,
        num_labels=400,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = VideoMAEForVideoClassification(config)
    return VideoMAEDescriptor(
        model, identity=f"tiny-videomae-2x32-v1-seed{seed}", constants=c, device=device
    )


def find_videomae_weights(path: str | Path | None = None) -> Path:
    """The directory of the Kinetics-400 VideoMAE checkpoint: ``path`` or the Hugging Face cache
    (:func:`dualreal_bench.weights.find_weights`)."""
    return find_weights(VIDEOMAE_WEIGHTS, path=path)


def real_videomae(
    path: str | Path | None = None, constants: MotionConstants | None = None, device: str = "cpu"
) -> VideoMAEDescriptor:
    """VideoMAE-Base Kinetics-400 from ``path`` or the Hugging Face cache (never downloaded)."""
    from transformers import VideoMAEForVideoClassification

    where = find_videomae_weights(path)
    logger.info("loading VideoMAE (%s) from %s", VIDEOMAE_REPO, where)
    try:
        model = VideoMAEForVideoClassification.from_pretrained(str(where), local_files_only=True)
    except (OSError, ValueError) as exc:
        raise WeightsError(
            f"{where}: cannot load VideoMAE ({' '.join(str(exc).split())[:300]})"
        ) from None
    return VideoMAEDescriptor(
        model,
        identity=weights_identity("transformers:videomae-kinetics", where / "config.json"),
        constants=constants,
        device=device,
    )


def build_videomae(
    spec: str | Path = "real",
    *,
    constants: MotionConstants | None = None,
    device: str = "cpu",
    seed: int = 0,
) -> VideoMAEDescriptor:
    """``"tiny"`` (random init, explicit), ``"real"`` (Hugging Face cache) or a checkpoint directory."""
    if spec == "tiny":
        return tiny_videomae(seed, constants, device)
    return real_videomae(None if spec == "real" else spec, constants, device)
