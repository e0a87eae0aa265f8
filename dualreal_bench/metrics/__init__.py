"""The paper's seven metrics (nine result fields), computed in one shared pass per video.

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
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .constants import MetricConstants

__all__ = [
    "METRICS",
    "METRIC_FIELDS",
    "MetricSpec",
    "MetricConstants",
    "get_metric",
    "build_evaluator",
    "build_encoders",
    "Evaluator",
    "EncoderSet",
]


@dataclass(frozen=True)
class MetricSpec:
    """What a result field means: its display label, direction and definition version."""

    name: str
    label: str
    higher_is_better: bool
    version: str
    group: str  # "text" | "identity" | "motion"
    description: str


METRICS: dict[str, MetricSpec] = {
    m.name: m
    for m in (
        MetricSpec(
            "clip_t", "CLIP-T", True, "1.0", "text", "mean cos(prompt, frame), OpenAI CLIP ViT-B/32"
        ),
        MetricSpec(
            "clip_i",
            "CLIP-I",
            True,
            "1.0",
            "identity",
            "mean cos(frame, reference image), open_clip ViT-B-32-quickgelu laion400m_e32",
        ),
        MetricSpec(
            "dino_i",
            "DINO-I",
            True,
            "1.0",
            "identity",
            "mean cos(frame, reference image), DINO ViT-S/16 CLS token",
        ),
        MetricSpec(
            "temporal_flickering",
            "T-Flicker",
            True,
            "vbench-0.1.5",
            "motion",
            "(255 - mean MAE of consecutive frames) / 255",
        ),
        MetricSpec(
            "temporal_consistency",
            "T-Cons",
            True,
            "1.0",
            "motion",
            "mean cos of consecutive frames, laion400m CLIP",
        ),
        MetricSpec(
            "motion_smoothness",
            "Motion Smooth.",
            True,
            "vbench-0.1.5",
            "motion",
            "(255 - MAE of odd frames vs AMT-S midpoints) / 255",
        ),
        MetricSpec(
            "dynamic_degree",
            "DD",
            True,
            "1.0",
            "motion",
            "mean over ~8 fps frame pairs of the top-5% RAFT flow magnitude (px)",
        ),
        MetricSpec(
            "dynamic_degree_dev",
            "DD dev.",
            False,
            "1.0",
            "motion",
            "|DD - mean DD of the motion's reference clips| (px)",
        ),
        MetricSpec(
            "dynamic_degree_bool",
            "DD (VBench)",
            True,
            "vbench-0.1.5",
            "motion",
            "VBench's moving/static decision (share of moving videos when averaged)",
        ),
    )
}

METRIC_FIELDS: tuple[str, ...] = (
    "clip_t",
    "clip_i",
    "dino_i",
    "temporal_flickering",
    "temporal_consistency",
    "motion_smoothness",
    "dynamic_degree",
    "dynamic_degree_dev",
    "dynamic_degree_bool",
)
assert METRIC_FIELDS == tuple(METRICS)


def get_metric(name: str) -> MetricSpec:
    """The spec of a metric field; RegistryError with a "did you mean" otherwise."""
    try:
        return METRICS[name]
    except KeyError:
        from .._registry_util import unknown_name_error

        raise unknown_name_error("metric", name, METRICS) from None


PROFILES = ("tiny", "real")
#: device of a profile's encoders when none is given, as the backbone's profiles do: the real
#: encoders on the GPU when there is one; the tiny ones on the CPU everywhere, so that a
#: pipeline check gives the same records on a laptop and on a GPU box
DEFAULT_DEVICES = {"tiny": "cpu", "real": "auto"}


def resolve_metrics_device(device: str | None, profile: str) -> str:
    """The device the encoders of ``profile`` run on: ``device`` if given (``"auto"``: CUDA
    when torch sees it, else the CPU), else :data:`DEFAULT_DEVICES`."""
    from ..devices import check_device, resolve_device

    name = device if device is not None else DEFAULT_DEVICES.get(profile, "auto")
    return str(resolve_device(check_device(name, "--device"), "--device"))


def build_encoders(
    profile: str = "tiny",
    *,
    device: str | None = None,
    weights_dir: str | Path | None = None,
    constants: MetricConstants | None = None,
    seed: int = 0,
    **encoder_overrides: Any,
):
    """The :class:`~.encoders.EncoderSet` of a profile, with per-role overrides.

    ``device``: as :func:`resolve_metrics_device` (default: the profile's).
    ``encoder_overrides``: ``text_clip=``, ``image_clip=``, ``dino=``, ``flow=``,
    ``interpolator=``, each ``"tiny"``, ``"real"``, a weights path, or an object.
    """
    from .encoders import ROLES, EncoderSet, build_encoder

    if profile not in PROFILES:
        from .._registry_util import unknown_name_error

        raise unknown_name_error("metrics profile", profile, PROFILES)
    unknown = set(encoder_overrides) - set(ROLES)
    if unknown:
        from ..errors import ConfigError

        raise ConfigError(
            f"unknown metric encoder(s) {', '.join(sorted(unknown))}; roles: {', '.join(ROLES)}"
        )
    constants = constants or MetricConstants()
    device = resolve_metrics_device(device, profile)
    built = {
        role: build_encoder(
            role,
            encoder_overrides.get(role, profile),
            constants=constants,
            device=device,
            weights_dir=weights_dir,
            seed=seed,
        )
        for role in ROLES
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
