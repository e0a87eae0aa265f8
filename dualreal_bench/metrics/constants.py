"""Every named constant the metrics use, in one self-validating config.

Each value is recorded with every result (``metric_constants``) and can be changed with
``build_evaluator(..., constants=MetricConstants(...).with_overrides([...]))``. Where a value
comes from is stated next to it:

* VBench 0.1.5 (``vbench/temporal_flickering.py``, ``vbench/motion_smoothness.py``,
  ``vbench/dynamic_degree.py``, ``vbench/third_party/RAFT``, ``vbench/third_party/amt``);
* the DualReal authors' evaluation script (CLIP-T/CLIP-I/DINO-I/T-Cons/DD/motion smoothness/
  temporal flickering), which cuts each prompt to 300 characters, removes ``" *"``, and
  reports Dynamic Degree as the mean over frame pairs instead of VBench's boolean.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Literal

from ..config import Config
from ..errors import ConfigError
from ..media import fps_interval
from ..spec import PLACEHOLDER


@dataclasses.dataclass
class MetricConstants(Config):
    # ---- text (CLIP-T) -------------------------------------------------------------------
    prompt_placeholder: str = f" {PLACEHOLDER}"  # the authors write "<class> *"; " *" removed
    prompt_max_chars: int = 300  # authors: prompt[:300] (before removing " *")
    clip_context_length: int = 77  # CLIP's text context; longer prompts are truncated (EOT kept)

    # ---- Dynamic Degree (VBench dynamic_degree.py; authors' continuous variant) ----------
    dd_target_fps: float = 8.0  # VBench: interval = max(1, round(fps / 8))
    generated_fps: float = (
        8.0  # fps assumed for a generated video when none is given (CogVideoX: 8)
    )
    raft_iters: int = 20  # VBench: model(image1, image2, iters=20, test_mode=True)
    raft_pad_multiple: int = (
        8  # VBench RAFT InputPadder: replicate-pad H, W to a multiple of 8 ("sintel": centred)
    )
    dd_top_fraction: float = (
        0.05  # VBench get_score: mean of the top int(h*w*0.05) flow magnitudes (padded h, w)
    )
    dd_thresh_per_256px: float = 6.0  # VBench set_params: thres = 6.0 * min(H, W) / 256
    dd_count_per_16_frames: float = (
        4.0  # VBench set_params: count_num = round(4 * n_sampled_frames / 16)
    )
    dd_deviation: Literal["absolute", "signed"] = (
        "absolute"  # |DD(video) - mean DD(reference clips)|
    )
    dd_reference_size: Literal["video", "native"] = (
        "video"  # reference clips resized (crop) to the video's size
    )

    # ---- Motion smoothness (VBench motion_smoothness.py, AMT-S) ---------------------------
    ms_frame_stride: int = (
        2  # VBench extract_frame: keep frames 0, 2, 4, ...; interpolate the odd ones
    )
    amt_pad_multiple: int = 16  # VBench: padding = int(16 / scale) with scale = 1
    amt_scale_factor: float = (
        1.0  # VBench on CPU (and on any GPU with enough memory): no downscaling
    )
    amt_embt: float = 0.5  # VBench: embt = 1/2 (the midpoint)

    def validate(self) -> None:
        positive = {
            "prompt_max_chars": self.prompt_max_chars,
            "clip_context_length": self.clip_context_length,
            "dd_target_fps": self.dd_target_fps,
            "generated_fps": self.generated_fps,
            "raft_iters": self.raft_iters,
            "raft_pad_multiple": self.raft_pad_multiple,
            "dd_thresh_per_256px": self.dd_thresh_per_256px,
            "dd_count_per_16_frames": self.dd_count_per_16_frames,
            "ms_frame_stride": self.ms_frame_stride,
            "amt_pad_multiple": self.amt_pad_multiple,
            "amt_scale_factor": self.amt_scale_factor,
        }
        for key, value in positive.items():
            if not value > 0:
                raise ConfigError(f"metric constant {key} must be positive, got {value!r}")
        if not 0.0 < self.dd_top_fraction <= 1.0:
            raise ConfigError(
                f"metric constant dd_top_fraction must be in (0, 1], got {self.dd_top_fraction!r}"
            )
        if self.ms_frame_stride % 2:
            raise ConfigError(
                f"metric constant ms_frame_stride must be even (the midpoint is a frame), got {self.ms_frame_stride}"
            )
        if not 0.0 < self.amt_embt < 1.0:
            raise ConfigError(f"metric constant amt_embt must be in (0, 1), got {self.amt_embt!r}")
        if self.dd_deviation not in ("absolute", "signed"):
            raise ConfigError(
                f"metric constant dd_deviation must be 'absolute' or 'signed', got {self.dd_deviation!r}"
            )
        if self.dd_reference_size not in ("video", "native"):
            raise ConfigError(
                f"metric constant dd_reference_size must be 'video' or 'native', got {self.dd_reference_size!r}"
            )

    def digest(self, *keys: str) -> str:
        """Short hash of the named constants (all of them when none is named), for cache keys."""
        data = self.to_dict()
        if keys:
            data = {k: data[k] for k in keys}
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


#: constants that change a Dynamic Degree value (the reference-clip cache key uses them)
DD_KEYS = (
    "dd_target_fps",
    "raft_iters",
    "raft_pad_multiple",
    "dd_top_fraction",
    "dd_reference_size",
)
#: constants that change the CLIP text embedding of a prompt
PROMPT_KEYS = ("prompt_placeholder", "prompt_max_chars", "clip_context_length")
#: constants that change the RAFT flows of a reference clip (the chained-track cache uses them)
RAFT_FLOW_KEYS = ("dd_target_fps", "raft_iters", "raft_pad_multiple", "dd_reference_size")


#: Bump when the computation behind a cached value changes without a metric version or a
#: constant changing (cached values of the older code then miss).
CACHE_VERSION = 1
#: frames a video needs to be scored: motion smoothness interpolates frame 1 from 0 and 2
MIN_VIDEO_FRAMES = 3


def scorable_problem(
    num_frames: int,
    fps: float | None,
    constants: MetricConstants,
    size: tuple[int, int] | None = None,
    min_side: int | None = None,
) -> str | None:
    """Why a video of ``num_frames`` frames at ``fps`` cannot be scored, or None if it can:
    the checks :meth:`Evaluator.evaluate_videos` makes, from the frame count (and ``size``
    ``(H, W)`` against the optical flow's ``min_side``) alone, so that a run or ``evaluate``
    refuses such a video before it writes anything. ``fps`` None or 0:
    ``constants.generated_fps``, as the evaluator assumes."""
    if size is not None and min_side is not None:
        padded = [
            -(-side // constants.raft_pad_multiple) * constants.raft_pad_multiple for side in size
        ]
        if min(padded) < min_side:
            return (
                f"frames of {size[0]}x{size[1]} px; the optical flow (RAFT) of dynamic degree "
                f"needs at least {min_side} px on each side"
            )
    if num_frames < MIN_VIDEO_FRAMES:
        return (
            f"{num_frames} frame(s); a video needs at least {MIN_VIDEO_FRAMES} to be scored "
            "(motion smoothness)"
        )
    fps = float(fps) if fps else constants.generated_fps
    sampled = len(range(0, num_frames, fps_interval(fps, constants.dd_target_fps)))
    if sampled < 2:
        return (
            f"{num_frames} frames at {fps:g} fps give {sampled} at about "
            f"{constants.dd_target_fps:g} fps; dynamic degree needs at least 2"
        )
    return None
