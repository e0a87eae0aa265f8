"""Motion fidelity (issue 15): *which* motion a video shows, not only how much it moves.

- ``motion_fidelity`` (primary): a motion descriptor of the video against the descriptors of
  every motion's reference clips -> cosine to the intended motion's centroid and the rank of
  the intended motion among all motions (:mod:`.retrieval`). Backends: the learned
  VideoMAE-Base Kinetics-400 encoder (:mod:`.videomae`; ``tiny`` = random init, explicit) and a
  weight-free descriptor from OpenCV DIS flow (:mod:`.flow_backend`), validated by
  leave-one-clip-out retrieval on the reference clips (``scripts/motion_fidelity_validation.py``).
- ``trajectory_fidelity`` (secondary, the published motion-transfer score with its two flaws
  fixed; ``dmt_compatible=True`` reproduces it): :mod:`.trajectory`.

Every constant is a field of :class:`MotionConstants` (recorded with :data:`MOTION_VERSION`).
Not in the DualReal paper: reports must label both measures as additions.
"""

from pathlib import Path
from typing import Any

from ...errors import ConfigError
from .constants import MOTION_VERSION, MotionConstants
from .flow_backend import FlowDescriptor, descriptor_from_flows, dis_flows, flow_descriptor
from .retrieval import (
    RetrievalResult,
    leave_one_clip_out,
    motion_fidelity,
    motion_similarities,
    rank_of,
)
from .trajectory import (
    align_tracks,
    chain_tracks,
    grid_tracks,
    trajectory_fidelity,
    trajectory_score,
)

__all__ = [
    "MOTION_BACKENDS",
    "build_motion_backend",
    "FlowDescriptor",
    "MOTION_VERSION",
    "MotionConstants",
    "RetrievalResult",
    "VideoMAEDescriptor",
    "align_tracks",
    "build_videomae",
    "chain_tracks",
    "descriptor_from_flows",
    "dis_flows",
    "flow_descriptor",
    "grid_tracks",
    "leave_one_clip_out",
    "motion_fidelity",
    "motion_similarities",
    "rank_of",
    "trajectory_fidelity",
    "trajectory_score",
]

#: descriptor backends of motion_fidelity: ``flow`` (weight-free, OpenCV DIS), ``videomae``
#: (Kinetics-400 weights from the Hugging Face cache), ``videomae-tiny`` (random init, explicit)
MOTION_BACKENDS = ("flow", "videomae", "videomae-tiny")


def build_motion_backend(
    spec: str | Path = "flow",
    *,
    constants: MotionConstants | None = None,
    device: str = "cpu",
    seed: int = 0,
) -> Any:
    """A descriptor backend: a name of :data:`MOTION_BACKENDS` or a VideoMAE checkpoint directory.

    Every backend has ``__call__(frames uint8 (T, H, W, 3)) -> (D,)`` (frames sampled at about
    ``constants.target_fps``), ``identity`` (cache key) and ``center`` (pass it to
    :func:`motion_fidelity`).
    """
    from .videomae import build_videomae  # torch and transformers: only when asked for

    constants = constants or MotionConstants()
    if spec == "flow":
        return FlowDescriptor(constants)
    if spec == "videomae-tiny":
        return build_videomae("tiny", constants=constants, device=device, seed=seed)
    if spec == "videomae":
        return build_videomae("real", constants=constants, device=device)
    if isinstance(spec, Path) or "/" in str(spec) or Path(str(spec)).expanduser().exists():
        return build_videomae(Path(spec), constants=constants, device=device)
    raise ConfigError(
        f"unknown motion backend {spec!r}; choose one of {', '.join(MOTION_BACKENDS)} "
        "or give a VideoMAE checkpoint directory"
    )


def __getattr__(name: str) -> Any:  # lazy: the declarations import this package without torch
    if name in ("VideoMAEDescriptor", "build_videomae"):
        from . import videomae

        return getattr(videomae, name)
    raise AttributeError(name)
