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

from .constants import MOTION_VERSION, MotionConstants
from .flow_backend import descriptor_from_flows, dis_flows, flow_descriptor
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
from .videomae import VideoMAEDescriptor, build_videomae

__all__ = [
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
