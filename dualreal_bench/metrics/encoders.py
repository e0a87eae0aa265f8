"""The six networks behind the metrics, behind one factory.

=================  ======================================  ==================================
role               real (the paper's, as the authors ran)  tiny (tests, smoke runs)
=================  ======================================  ==================================
``text_clip``      OpenAI CLIP ViT-B/32 (CLIP-T)           open_clip CLIP, 2 layers, seeded
``image_clip``     open_clip ViT-B-32-quickgelu,           another seeded tiny CLIP
                   laion400m_e32 (CLIP-I, T-Cons)
``dino``           DINO ViT-S/16 ``facebook/dino-vits16``  transformers ViT, 2 layers, seeded
                   (transformers; CLS token; DINO-I)
``flow``           torchvision RAFT-large, C_T_V1          narrow RAFT (same structure)
                   (= raft-things; Dynamic Degree)
``interpolator``   AMT-S from VBench (Motion Smoothness)   the two frames' average
                                                           (``"tiny-amt"``: a random AMT-S)
``motion``         VideoMAE-Base Kinetics-400              the weight-free DIS-flow descriptor
                   (motion fidelity; not in the paper)     (``"videomae-tiny"``: a random
                                                           VideoMAE; ``"flow"`` on any profile)
=================  ======================================  ==================================

The tiny profile's motion descriptor is the weight-free one (:mod:`.motion.flow_backend`), not
a random VideoMAE: it has no weights to differ between machines, it is validated on the real
clips (``scripts/motion_fidelity_validation.py``), so a smoke run's motion fidelity ranks a
video that is a reference clip first, and it costs about 0.2 s per clip. ``"flow"`` makes it the
motion descriptor of the real profile too (machines without the VideoMAE weights).

:data:`ENCODERS` is that table as a registry of :class:`EncoderRole` s. Each role accepts a
name (``"real"``, ``"tiny"``, a role's own variant such as ``"tiny-amt"``), a path to a weights
file/directory (real architecture, that file), or an object/callable (tests inject exact flow
estimators this way). Real weights are found by :func:`dualreal_bench.weights.find_weights`
(the role's entry of the weights table: ``weights_dir`` and the usual caches, never
downloaded); a missing file raises :class:`~dualreal_bench.errors.WeightsError` naming the
file, where it was looked for and how to get it. The preprocessing of the image encoders is in
:mod:`.image_encoders`; the tiny networks are built in :mod:`.tiny_encoders`, the real ones loaded
in :mod:`.real_encoders`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..registry import Registry
from ..weights import WEIGHTS, find_weights
from .constants import MetricConstants
from .image_encoders import ClipEncoder, DinoEncoder
from .real_encoders import (
    real_clip,
    real_dino,
    real_flow,
    real_interpolator,
    real_motion,
)
from .tiny_encoders import (
    flow_motion,
    tiny_amt_interpolator,
    tiny_clip,
    tiny_dino,
    tiny_flow,
    tiny_interpolator,
    tiny_videomae_motion,
)

logger = logging.getLogger(__name__)

__all__ = [
    "ENCODERS",
    "ROLES",
    "ClipEncoder",
    "DinoEncoder",
    "EncoderRole",
    "EncoderSet",
    "build_encoder",
    "identity_of",
]


# ---- the roles and the factory -------------------------------------------------------------


@dataclass(frozen=True)
class EncoderRole:
    """One network the metrics run: its weights and how its tiny and real versions are built."""

    name: str
    #: key of the real weights in :data:`dualreal_bench.weights.WEIGHTS`
    weights: str
    #: ``tiny(seed, constants, device)``: the seeded random network of the same architecture
    tiny: Callable[[int, MetricConstants, str], Any]
    #: ``real(path, constants, device)``: the network with the weights at ``path``
    real: Callable[[Path, MetricConstants, str], Any]
    #: the tiny network's seed is ``seed * 1000 + tiny_seed`` (each role its own weights)
    tiny_seed: int
    #: other named versions of this role (``"tiny-amt"``), built as ``tiny``
    variants: dict[str, Callable[[int, MetricConstants, str], Any]] = field(default_factory=dict)

    @property
    def what(self) -> str:
        entry = WEIGHTS[self.weights]
        return f"{entry.name} ({entry.used_for})"


#: the metric encoder roles, in the order an :class:`EncoderSet` holds them
ENCODERS: Registry[EncoderRole] = Registry(
    "metric encoder",
    {
        "text_clip": EncoderRole(
            "text_clip",
            "clip-vit-b-32-openai",
            tiny=lambda seed, constants, device: tiny_clip(seed, device),
            real=lambda path, constants, device: real_clip("text_clip", path, device),
            tiny_seed=1,
        ),
        "image_clip": EncoderRole(
            "image_clip",
            "clip-vit-b-32-laion400m",
            tiny=lambda seed, constants, device: tiny_clip(seed, device),
            real=lambda path, constants, device: real_clip("image_clip", path, device),
            tiny_seed=2,
        ),
        "dino": EncoderRole(
            "dino",
            "dino-vits16",
            tiny=lambda seed, constants, device: tiny_dino(seed, device),
            real=lambda path, constants, device: real_dino(path, device),
            tiny_seed=3,
        ),
        "flow": EncoderRole("flow", "raft-large", tiny_flow, real_flow, tiny_seed=4),
        "interpolator": EncoderRole(
            "interpolator",
            "amt-s",
            tiny_interpolator,
            real_interpolator,
            tiny_seed=5,
            variants={"tiny-amt": tiny_amt_interpolator},
        ),
        # motion fidelity's descriptor (beyond the paper); tiny: the weight-free one
        "motion": EncoderRole(
            "motion",
            "videomae-kinetics",
            flow_motion,
            real_motion,
            tiny_seed=6,
            variants={"flow": flow_motion, "videomae-tiny": tiny_videomae_motion},
        ),
    },
    error=ConfigError,
)
ROLES: tuple[str, ...] = tuple(ENCODERS.names())


@dataclass
class EncoderSet:
    """The six networks an :class:`~dualreal_bench.metrics.evaluator.Evaluator` runs (``motion``:
    a motion descriptor, ``__call__(frames) -> (D,)`` with ``center``, ``constants``, ``kind``
    and ``cache_keys``, as :class:`~.motion.FlowDescriptor`)."""

    text_clip: Any
    image_clip: Any
    dino: Any
    flow: Any
    interpolator: Any
    motion: Any

    def identities(self) -> dict[str, str | None]:
        return {role: identity_of(getattr(self, role)) for role in ROLES}


def identity_of(obj: Any) -> str | None:
    """The declared identity of an encoder (None: results are not cached on disk)."""
    return getattr(obj, "identity", None)


def build_encoder(
    role: str,
    spec: Any,
    *,
    constants: MetricConstants,
    device: str = "cpu",
    weights_dir: str | Path | None = None,
    seed: int = 0,
) -> Any:
    """One encoder from a name (``"tiny"``, ``"real"``, a variant of the role such as the
    interpolator's ``"tiny-amt"``), a weights path, or an object (returned as is)."""
    r = ENCODERS.get(role)
    if not isinstance(spec, str | Path):
        return spec
    if spec == "tiny" or spec in r.variants:
        build = r.tiny if spec == "tiny" else r.variants[spec]
        return build(seed * 1000 + r.tiny_seed, constants, device)
    owners = [other for other, o in ENCODERS.items() if spec in o.variants]
    if owners:
        raise ConfigError(f"{spec!r} is a {' or '.join(owners)} encoder, not a {role} encoder")
    if spec == "real":
        path = find_weights(r.weights, weights_dir=weights_dir)
    else:
        path = find_weights(r.weights, path=spec)
    logger.info("loading %s from %s", r.what, path)
    return r.real(path, constants, device)
