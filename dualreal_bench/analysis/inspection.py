"""``inspect``'s figures for one method on one profile: trainable parameters per component and
a training-memory estimate, computed on the meta device (no weights needed).

A method is inspectable when it attaches its trainable parameters at construction. What is
read is declared on :class:`~dualreal_bench.method.Method` with defaults:
``parameter_groups() -> {component: [Parameter, ...]}`` (default: the parameters of the
transformer with ``requires_grad``, which is 0 for ``base``), ``inspection_context(batch_size)``
(a context manager preparing a representative training forward, e.g. DualReal's image
condition), ``auxiliary_models() -> {name: parameter count}`` (frozen helper models the
method loads) and ``resolved_options()`` (what the method decided on this backbone).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..method import MethodConfig, get_method_class
from .memory import measure_block_activations, memory_estimate
from .params import build_meta_backbone, count_parameters, frozen_helper_counts


def inspect_method(
    method_name: str,
    profile: str = "cogvideox-5b",
    overrides: Sequence[str] | None = None,
    *,
    backbone_overrides: Sequence[str] | None = None,
    batch_size: int | None = None,
    measure_memory: bool = True,
) -> dict[str, Any]:
    """Trainable parameters per component and a training-memory estimate of ``method_name``
    on ``profile``, computed on the meta device (no weights needed).

    ``overrides`` are the method's ``key=value`` options, ``backbone_overrides`` the
    backbone's (e.g. ``num_frames=49``). ``batch_size`` defaults to the method's largest
    training batch (``motion_batch_size`` where the config has it, else 1).
    """
    cls = get_method_class(method_name)
    config = cls.config_class().with_overrides(list(overrides or []))
    backbone = build_meta_backbone(profile, backbone_overrides)
    method = cls(backbone, config)
    try:
        counts = count_parameters(method, backbone.transformer)
        helpers = dict(frozen_helper_counts(backbone.config.profile))
        result: dict[str, Any] = {
            "method": cls.name or method_name,
            "profile": backbone.config.profile,
            "config": config.to_dict(),
            "resolved": method.resolved_options(),
            "trainable_parameters": counts.components,
            "trainable_total": counts.trainable,
            "frozen_transformer_parameters": counts.frozen,
            "transformer_blocks": len(backbone.transformer.transformer_blocks),
            "frozen_helper_parameters": helpers,
        }
        aux = method.auxiliary_models()
        if aux:
            result["auxiliary_models"] = aux
        if measure_memory and cls.trains:
            if batch_size is None:
                batch_size = _default_batch_size(config)
            act = measure_block_activations(
                backbone, batch_size, method.inspection_context(batch_size)
            )
            method.teardown()
            act_base = measure_block_activations(backbone, batch_size, None)
            result["activation_measurement"] = act
            result["memory"] = memory_estimate(counts, backbone, act, act_base, helpers)
    finally:
        method.teardown()
    return result


def _default_batch_size(config: MethodConfig) -> int:
    """The method's largest training batch: ``motion_batch_size`` where the config has one."""
    return int(getattr(config, "motion_batch_size", 1) or 1)
