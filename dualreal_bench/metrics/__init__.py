"""The paper's seven metrics (nine result fields) and the motion measures beyond the paper,
computed in one shared pass per video.

>>> from dualreal_bench.metrics import build_evaluator
>>> ev = build_evaluator("tiny")                      # or "real" (local weights, see encoders.py)
>>> ev.evaluate_video(frames, prompt=prompt, case=case)   # {"clip_t": ..., ..., "metric_versions": ...}

Definitions (see :mod:`.functional`; constants in :class:`.MetricConstants`):

- CLIP-T: cos(prompt, frame) averaged over frames; prompt ``[:300]`` with ``" *"`` removed,
  truncated to CLIP's 77 tokens; OpenAI CLIP ViT-B/32.
- CLIP-I / DINO-I: cos of every frame against every reference image, mean over references,
  then frames; open_clip ViT-B-32-quickgelu laion400m_e32 / DINO ViT-S/16 CLS token.
- T-Cons: mean cos of consecutive frames (laion400m CLIP).
- Temporal Flickering, Motion Smoothness (AMT-S): exactly as VBench 0.1.5.
- Dynamic Degree: RAFT flow of frames sampled at about 8 fps, mean over pairs of the top-5%
  flow magnitude (the authors' continuous variant), VBench's boolean, and the deviation from
  the mean over the motion's reference clips.
- Beyond the paper (``in_paper=False``, :mod:`.motion`): motion fidelity (cosine of a motion
  descriptor to the intended motion's reference centroid; the intended motion's rank among all
  motions, top-1/top-5) and trajectory fidelity (point tracks chained through the RAFT flows).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..devices import check_device, resolve_device
from ..errors import ConfigError
from ..registry import Registry
from .constants import MetricConstants
from .declarations import (
    DECLARATIONS,
    MetricDeclaration,
    declared,
    get_metric,
    metric_fields,
)

__all__ = [
    "DECLARATIONS",
    "METRICS",
    "METRIC_FIELDS",
    "MOTION_BACKEND_CHOICES",
    "MetricDeclaration",
    "MetricSpec",
    "MetricConstants",
    "MetricsProfile",
    "PROFILES",
    "declared",
    "get_metric",
    "metric_fields",
    "motion_encoder_spec",
    "resolved_motion_backend",
    "build_evaluator",
    "build_encoders",
    "resolve_metrics_device",
    "Evaluator",
    "EncoderSet",
]

#: the former name of :class:`MetricDeclaration`
MetricSpec = MetricDeclaration

#: the built-in declarations, ``{field: declaration}`` (:func:`declared` reads the current ones)
METRICS: dict[str, MetricDeclaration] = declared()
#: the built-in fields in order (:func:`metric_fields` reads the current ones)
METRIC_FIELDS: tuple[str, ...] = metric_fields()


@dataclass(frozen=True)
class MetricsProfile:
    """Which encoders a metrics profile builds and where they run by default."""

    name: str
    #: the spec every encoder role gets (``"tiny"`` or ``"real"``; see :func:`build_encoders`)
    encoders: str
    #: device when none is given: the real encoders on the GPU when there is one; the tiny ones
    #: on the CPU everywhere, so that a pipeline check gives the same records on a laptop and on
    #: a GPU box (as the backbone's profiles do)
    default_device: str
    description: str


#: the metrics profiles by name
PROFILES: Registry[MetricsProfile] = Registry(
    "metrics profile",
    {
        "tiny": MetricsProfile(
            "tiny", "tiny", "cpu", "seeded random same-architecture encoders (pipeline check)"
        ),
        "real": MetricsProfile(
            "real", "real", "auto", "the paper's weights, from --weights-dir or the caches"
        ),
    },
)
#: device of each profile's encoders when none is given
DEFAULT_DEVICES = {name: p.default_device for name, p in PROFILES.items()}


def resolve_metrics_device(device: str | None, profile: str) -> str:
    """The device the encoders of ``profile`` run on: ``device`` if given (``"auto"``: CUDA
    when torch sees it, else the CPU), else :data:`DEFAULT_DEVICES`."""
    name = device if device is not None else DEFAULT_DEVICES.get(profile, "auto")
    return str(resolve_device(check_device(name, "--device"), "--device"))


#: motion fidelity's descriptor backends a run can choose (``--motion-backend``); default: the
#: metrics profile's (tiny: ``flow``, real: ``videomae``)
MOTION_BACKEND_CHOICES = ("flow", "videomae")


def motion_encoder_spec(motion_backend: str | None, profile: str) -> str | None:
    """The ``motion`` encoder spec of a backend name on a metrics profile: ``"flow"`` (the
    weight-free descriptor, any profile), ``"videomae"`` (real: the Kinetics weights; tiny: a
    random VideoMAE, explicitly); None: the profile's own."""
    if motion_backend is None:
        return None
    if motion_backend not in MOTION_BACKEND_CHOICES:
        raise ConfigError(
            f"motion backend {motion_backend!r}: choose one of {', '.join(MOTION_BACKEND_CHOICES)}"
        )
    if motion_backend == "flow":
        return "flow"
    return "videomae-tiny" if PROFILES.get(profile).encoders == "tiny" else "real"


def resolved_motion_backend(motion_backend: str | None, profile: str) -> str:
    """The motion backend a run on metrics ``profile`` scores with: ``motion_backend``, else the
    profile's own (tiny encoders: ``"flow"``, real ones: ``"videomae"``). Motion fidelity of two
    backends is not comparable, so a run records it (``run.json``) and keeps to one."""
    if motion_backend is not None:
        motion_encoder_spec(motion_backend, profile)  # validates the name
        return motion_backend
    return "flow" if PROFILES.get(profile).encoders == "tiny" else "videomae"


def build_encoders(
    profile: str = "tiny",
    *,
    device: str | None = None,
    weights_dir: str | Path | None = None,
    constants: MetricConstants | None = None,
    seed: int = 0,
    motion_backend: str | None = None,
    **encoder_overrides: Any,
):
    """The :class:`~.encoders.EncoderSet` of a profile, with per-role overrides.

    ``device``: as :func:`resolve_metrics_device` (default: the profile's).
    ``motion_backend``: motion fidelity's descriptor, ``"flow"`` or ``"videomae"``
    (:func:`motion_encoder_spec`; default: the profile's).
    ``encoder_overrides``: ``text_clip=``, ``image_clip=``, ``dino=``, ``flow=``,
    ``interpolator=``, ``motion=``, each ``"tiny"``, ``"real"``, a role's variant (``"flow"``,
    ``"videomae-tiny"``, ``"tiny-amt"``), a weights path, or an object.
    """
    from .encoders import ENCODERS, EncoderSet, build_encoder

    spec = PROFILES.get(profile).encoders
    for role in encoder_overrides:
        if role not in ENCODERS:
            raise ENCODERS.unknown(role)
    motion = motion_encoder_spec(motion_backend, profile)
    if motion is not None:
        encoder_overrides.setdefault("motion", motion)
    constants = constants or MetricConstants()
    device = resolve_metrics_device(device, profile)
    built = {
        role: build_encoder(
            role,
            encoder_overrides.get(role, spec),
            constants=constants,
            device=device,
            weights_dir=weights_dir,
            seed=seed,
        )
        for role in ENCODERS.names()
    }
    return EncoderSet(**built)


def build_evaluator(
    profile: str = "tiny",
    *,
    device: str | None = None,
    cache_dir: str | Path | None = None,
    weights_dir: str | Path | None = None,
    progress: bool = True,
    constants: MetricConstants | None = None,
    batch_size: int = 32,
    seed: int = 0,
    motion_backend: str | None = None,
    **encoder_overrides: Any,
):
    """An :class:`~.evaluator.Evaluator` with the profile's encoders.

    Args:
        profile: ``"tiny"`` (seeded random same-architecture encoders; numbers check the
            pipeline, they measure nothing) or ``"real"`` (the paper's weights, from
            ``weights_dir`` or the usual caches; missing ones raise WeightsError).
        device: torch device of every encoder: ``"auto"`` (CUDA when present), ``"cpu"``,
            ``"cuda:1"``...; None: the profile's default (:data:`DEFAULT_DEVICES`).
        cache_dir: root of the persistent, content-keyed cache of reference embeddings and
            reference-clip Dynamic Degrees (``<cache_dir>/metrics``); the runner and the CLI pass
            the user cache (:func:`dualreal_bench.cache.user_cache_dir`); None: memory only.
        constants: override any named constant (recorded with every result).
        motion_backend: motion fidelity's descriptor, ``"flow"`` (weight-free) or
            ``"videomae"``; None: the profile's (tiny: flow; real: VideoMAE Kinetics-400).
        encoder_overrides: per-role encoder (see :func:`build_encoders`).
    """
    from .evaluator import Evaluator

    constants = constants or MetricConstants()
    encoders = build_encoders(
        profile,
        device=device,
        weights_dir=weights_dir,
        constants=constants,
        seed=seed,
        motion_backend=motion_backend,
        **encoder_overrides,
    )
    return Evaluator(
        encoders,
        constants,
        cache_dir=cache_dir,
        progress=progress,
        batch_size=batch_size,
        profile=profile,
    )


def __getattr__(name: str) -> Any:  # lazy: importing the registry does not import torch
    if name == "Evaluator":
        from .evaluator import Evaluator

        return Evaluator
    if name == "EncoderSet":
        from .encoders import EncoderSet

        return EncoderSet
    raise AttributeError(name)
