"""``inspect``'s figures for one method on one profile: trainable parameters per component,
a training-memory estimate per kind of step and the generation peak, computed on the meta
device (no weights needed); under ``memory_budget``, the settings chosen to fit it.

A method is inspectable when it attaches its trainable parameters at construction. What is
read is declared on :class:`~dualreal_bench.method.Method` with defaults:
``parameter_groups() -> {component: [Parameter, ...]}`` (default: the parameters of the
transformer with ``requires_grad``, which is 0 for ``base``), ``memory_stages()`` (the kinds
of training step, each with its batch, trainable parameters and a context preparing its
forward), ``inspection_context(batch_size)``, ``auxiliary_models() -> {name: parameter count}``
(frozen helper models the method loads) and ``resolved_options()`` (what the method decided on
this backbone).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from ..config import parse_size
from ..method import MemorySettings, Method, MethodConfig, get_method_class
from .budget import plan_memory, target_device, target_optimizer
from .memory import estimate_generation, estimate_training
from .params import (
    MetaBackbone,
    build_meta_backbone,
    count_parameters,
    frozen_helper_counts,
    meta_helpers,
)


def inspect_method(
    method_name: str,
    profile: str = "cogvideox-5b",
    overrides: Sequence[str] | None = None,
    *,
    backbone_overrides: Sequence[str] | None = None,
    transformer_overrides: Mapping[str, Any] | None = None,
    batch_size: int | None = None,
    measure_memory: bool = True,
    optimizer: str | None = None,
    offload_encoders: bool | None = None,
) -> dict[str, Any]:
    """Trainable parameters per component and the memory estimates of ``method_name`` on
    ``profile``, computed on the meta device (no weights needed).

    ``overrides`` are the method's ``key=value`` options, ``backbone_overrides`` the
    backbone's (e.g. ``num_frames=49``), ``transformer_overrides`` the transformer's
    architecture (e.g. ``{"num_layers": 2}``, what the measurement script runs).
    ``batch_size`` replaces the batch of the steps on clips (default: the method's).
    ``optimizer`` ("adamw" / "adamw8bit") and ``offload_encoders`` replace what the config and
    the backbone resolve to (default: "auto" as on CUDA, 8-bit; the backbone's
    ``offload``). With ``memory_budget`` in the overrides, the settings are the plan's.
    """
    cls = get_method_class(method_name)
    config = cls.config_class().with_overrides(list(overrides or []))
    backbone = build_meta_backbone(profile, backbone_overrides, transformer_overrides)
    method = cls(backbone, config)
    try:
        counts = count_parameters(method, backbone.transformer)
        result: dict[str, Any] = {
            "method": cls.name or method_name,
            "profile": backbone.config.profile,
            "config": config.to_dict(),
            "resolved": method.resolved_options(),
            "trainable_parameters": counts.components,
            "trainable_total": counts.trainable,
            "frozen_transformer_parameters": counts.frozen,
            "transformer_blocks": len(backbone.transformer.transformer_blocks),
            "frozen_helper_parameters": dict(frozen_helper_counts(backbone.config.profile)),
        }
        aux = method.auxiliary_models()
        if aux:
            result["auxiliary_models"] = aux
        if measure_memory and cls.trains:
            result.update(
                memory_figures(
                    method,
                    backbone,
                    config,
                    batch_size=batch_size,
                    optimizer=optimizer,
                    offload_encoders=offload_encoders,
                )
            )
    finally:
        method.teardown()
    return result


def memory_figures(
    method: Method,
    backbone: MetaBackbone,
    config: MethodConfig,
    *,
    batch_size: int | None = None,
    optimizer: str | None = None,
    offload_encoders: bool | None = None,
) -> dict[str, Any]:
    """``{"memory": training estimate, "generation": generation estimate}`` and, under
    ``memory_budget``, ``"budget"``: the plan (see :mod:`.budget`)."""
    helpers = meta_helpers(backbone.config.profile)
    budget_text = getattr(config, "memory_budget", None)
    if budget_text is not None:
        plan = plan_memory(method, backbone, parse_size(budget_text, "memory_budget"))
        return {"memory": plan.training, "generation": plan.generation, "budget": plan.summary()}
    settings = default_settings(method, backbone, config, optimizer, offload_encoders)
    return {
        "memory": estimate_training(method, backbone, settings, helpers, batch_size=batch_size),
        "generation": estimate_generation(
            method, backbone, helpers, offload_encoders=settings.offload_encoders
        ),
    }


def default_settings(
    method: Method,
    backbone: MetaBackbone,
    config: MethodConfig,
    optimizer: str | None = None,
    offload_encoders: bool | None = None,
) -> MemorySettings:
    """The settings a run without a budget trains under: the config's micro-batch and
    optimizer, the backbone's offload and checkpointing (or the arguments')."""
    settings = MemorySettings(
        micro_batch=getattr(config, "micro_batch", None),
        offload_encoders=backbone.config.offload == "encoders",
        gradient_checkpointing=_checkpointing(config, backbone),
        optimizer=target_optimizer(getattr(config, "optimizer", "auto"), target_device(backbone)),
    )
    changes: dict[str, Any] = {}
    if optimizer is not None:
        changes["optimizer"] = optimizer
    if offload_encoders is not None:
        changes["offload_encoders"] = offload_encoders
    return dataclasses.replace(settings, **changes)


def _checkpointing(config: MethodConfig, backbone: MetaBackbone) -> bool:
    """The method's own ``gradient_checkpointing`` option where it has one set (sequential,
    MotionBooth), else the backbone's."""
    own = getattr(config, "gradient_checkpointing", None)
    return bool(backbone.config.gradient_checkpointing if own is None else own)
