"""Every constant of the motion measures, in one frozen, self-validating dataclass.

:class:`MotionConstants` is recorded with each result (``to_record()``: the fields plus
:data:`MOTION_VERSION`) and changed with ``with_overrides(["flow_grid=3x3", ...])`` (values
parsed by the field's type, as the other configs of the project). Reference-clip caches key on
:meth:`MotionConstants.digest` of the fields that change a descriptor or a track.

Where a value comes from:

* ``target_fps`` -- VBench's Dynamic Degree sampling (``interval = max(1, round(fps / 8))``),
  so the RAFT flows of the dynamic-degree pass can be reused for tracks;
* ``flow_*`` -- measured by leave-one-clip-out retrieval over the 21 motions' clips
  (``scripts/motion_fidelity_validation.py`` prints the table of every variant);
* ``videomae_*`` -- VideoMAE's Kinetics-400 fine-tuning recipe (16 frames, 224 px, ImageNet
  mean/std; ``MCG-NJU/videomae-base-finetuned-kinetics`` preprocessor_config.json);
* ``traj_*`` -- diffusion-motion-transfer's ``motion_fidelity_score.py`` (tracks on a grid,
  unit displacements), with the grid of the issue's measurement (20 x 20).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any, ClassVar, Literal

from ...config import Config
from ...errors import ConfigError

#: the definition version of motion_fidelity / trajectory_fidelity; bump on any change of a
#: default or of the code that changes a value
MOTION_VERSION = "1.0"

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclasses.dataclass(frozen=True)
class MotionConstants:
    # ---- frame sampling (both backends, and tracks) -----------------------------------------
    target_fps: float = 8.0  # VBench rule: every max(1, round(fps / 8))-th frame

    # ---- weight-free descriptor (OpenCV DIS flow) ---------------------------------------------
    # Leave-one-clip-out retrieval over the 21 motions' 42 clips, mean rank of the true motion
    # (chance 11; default 3.95 +- 0.49), each alternative changed alone: see the validation script.
    # DIS working size and preset: 48-128 px x ultrafast/fast/medium gave 3.8-5.2; 96 px "fast"
    # sits in the 3.8-4.4 plateau of 80-128 px ultrafast/fast (medium: 4.4-4.9), 26 ms per clip.
    flow_short_side: int = 96  # frames resized (area) so the short side has this many px
    flow_dis_preset: Literal["ultrafast", "fast", "medium"] = "fast"  # cv2 DIS preset
    # per-clip gray stretch (1st..99th percentile -> 0..255): 3.83, and no invariance gain (DIS
    # already normalises patch means: brightness x0.6 keeps the cosine >= 0.997 without it)
    flow_intensity_norm: bool = False
    # median flow vector per frame removed (none: 4.26, affine field: 4.69); MBH ignores it anyway
    flow_camera: Literal["none", "median", "affine"] = "median"
    flow_grid: tuple[int, int] = (3, 3)  # cells (rows, cols); 1x1: 4.90, 2x2: 4.05, 4x4: 3.79
    flow_temporal_levels: int = 1  # pyramid level l: 2**l segments; 2 levels: 4.29, 3: 4.19
    flow_orientations: int = 8  # direction bins of HOF and MBH; 4: 4.19, 12: 3.83
    # HOF static bin: |flow| below this (short-side fraction) counts 1 (0: no bin); a bin at
    # 0.002 outweighs the magnitude-weighted bins and makes HOF direction-blind: 6.02 vs 4.17
    flow_static_threshold: float = 0.0
    flow_magnitude_bins: tuple[float, ...] = (0.002, 0.005, 0.01, 0.02, 0.04)  # MAG bin edges
    # blocks: HOF+MBH 3.95, MBH 3.81, HOF 4.17, +MAG 3.93, +FREQ 4.12, +DFLOW 3.95; HOF+MBH
    # for direction (a square moving left vs right: cosine 0.36 vs 0.56 with MBH alone)
    flow_features: tuple[str, ...] = ("hof", "mbh")
    flow_mbh_sigmas: tuple[float, ...] = (0.0,)  # MBH gradient scales (px); (0, 2): 3.95
    flow_mirror: Literal["none", "symmetric"] = "none"  # symmetric (+ mirrored clip): 4.12
    flow_block_norm: Literal["none", "l1"] = "l1"  # each block (feature x segment) to unit L1
    flow_power: float = 0.5  # x**p after block normalisation (Hellinger); power 1: 3.90
    flow_center: bool = True  # cosine after subtracting the mean reference: raw cosine 6.69

    # ---- learned descriptor (VideoMAE, Kinetics-400) ------------------------------------------
    videomae_num_frames: int = 16  # frames per clip the model takes
    videomae_image_size: int = 224  # short side resized to this (bilinear), centre crop square
    videomae_mean: tuple[float, float, float] = IMAGENET_MEAN
    videomae_std: tuple[float, float, float] = IMAGENET_STD
    videomae_max_windows: int = 4  # 16-frame windows spread over the clip, features averaged
    # cosine after subtracting the mean reference, as the flow backend (not measured: no weights here)
    videomae_center: bool = True

    # ---- trajectory_fidelity ----------------------------------------------------------------
    traj_grid: int = 20  # query points: centres of a traj_grid x traj_grid grid
    traj_static_threshold: float = 0.002  # step length (fraction of short side) below: static
    traj_dis_short_side: int = (
        128  # DIS tracks (when no RAFT flows are given): working short side, px
    )
    traj_dis_preset: Literal["ultrafast", "fast", "medium"] = (
        "medium"  # most precise preset: tracks chain errors
    )

    VERSION: ClassVar[str] = MOTION_VERSION

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        positive = {
            "target_fps": self.target_fps,
            "flow_short_side": self.flow_short_side,
            "flow_orientations": self.flow_orientations,
            "videomae_num_frames": self.videomae_num_frames,
            "videomae_image_size": self.videomae_image_size,
            "videomae_max_windows": self.videomae_max_windows,
            "traj_grid": self.traj_grid,
            "flow_power": self.flow_power,
            "traj_dis_short_side": self.traj_dis_short_side,
        }
        for key, value in positive.items():
            if not value > 0:
                raise ConfigError(f"motion constant {key} must be positive, got {value!r}")
        for key in ("flow_static_threshold", "traj_static_threshold"):
            if not getattr(self, key) >= 0:
                raise ConfigError(f"motion constant {key} must be >= 0, got {getattr(self, key)!r}")
        if self.flow_temporal_levels < 1:
            raise ConfigError(
                f"motion constant flow_temporal_levels must be >= 1, got {self.flow_temporal_levels}"
            )
        if len(self.flow_grid) != 2 or min(self.flow_grid) < 1:
            raise ConfigError(
                f"motion constant flow_grid must be two positive integers, got {self.flow_grid!r}"
            )
        edges = self.flow_magnitude_bins
        if any(b <= a for a, b in zip(edges, edges[1:], strict=False)) or any(
            e <= 0 for e in edges
        ):
            raise ConfigError(
                f"motion constant flow_magnitude_bins must be increasing and positive, got {edges!r}"
            )
        unknown = set(self.flow_features) - set(FLOW_FEATURES)
        if unknown or not self.flow_features:
            raise ConfigError(
                f"motion constant flow_features must be a non-empty subset of {', '.join(FLOW_FEATURES)}, "
                f"got {self.flow_features!r}"
            )
        choices = {
            "flow_dis_preset": ("ultrafast", "fast", "medium"),
            "traj_dis_preset": ("ultrafast", "fast", "medium"),
            "flow_camera": ("none", "median", "affine"),
            "flow_block_norm": ("none", "l1"),
            "flow_mirror": ("none", "symmetric"),
        }
        for key, allowed in choices.items():
            if getattr(self, key) not in allowed:
                raise ConfigError(
                    f"motion constant {key} must be one of {', '.join(allowed)}, got {getattr(self, key)!r}"
                )
        if (
            len(self.videomae_mean) != 3
            or len(self.videomae_std) != 3
            or min(self.videomae_std) <= 0
        ):
            raise ConfigError(
                "motion constants videomae_mean / videomae_std must be three numbers (std > 0)"
            )

    # ---- (de)serialisation: the project's Config helpers work on any dataclass -------------
    to_dict = Config.to_dict
    from_dict = classmethod(Config.from_dict.__func__)
    with_overrides = Config.with_overrides

    def to_record(self) -> dict[str, Any]:
        """What a result records: every field and the definition version."""
        return {"version": self.VERSION, **self.to_dict()}

    def digest(self, *keys: str) -> str:
        """Short hash of the named fields (all when none is named) and the version, for cache keys."""
        data = self.to_dict()
        if keys:
            data = {k: data[k] for k in keys}
        data["version"] = self.VERSION
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


#: descriptor blocks of the weight-free backend: histogram of flow orientation (HOF), motion
#: boundary histograms (MBH: orientation of the spatial gradient of each flow component), flow
#: magnitude histogram (MAG), temporal spectrum of the flow magnitude per cell (FREQ)
FLOW_FEATURES = ("hof", "mbh", "mag", "freq", "dflow")

#: fields that change a DIS flow field (the flow cache keys on them)
FLOW_KEYS = ("target_fps", "flow_short_side", "flow_dis_preset", "flow_intensity_norm")
#: fields that change trajectory_fidelity's tracks and score
TRAJ_KEYS = (
    "target_fps",
    "traj_grid",
    "traj_static_threshold",
    "traj_dis_short_side",
    "traj_dis_preset",
)
#: fields that change a weight-free descriptor
FLOW_DESCRIPTOR_KEYS = FLOW_KEYS + tuple(
    f.name
    for f in dataclasses.fields(MotionConstants)
    if f.name.startswith("flow_") and f.name not in FLOW_KEYS
)
#: fields that change a VideoMAE descriptor (besides the weights)
VIDEOMAE_KEYS = ("target_fps",) + tuple(
    f.name for f in dataclasses.fields(MotionConstants) if f.name.startswith("videomae_")
)
