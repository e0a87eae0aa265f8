"""``memory_budget``: the memory settings that fit a method's training into a device's memory,
chosen with the memory model (:mod:`.memory`).

Under a budget (``--set memory_budget=24GiB``) the method trains the same method -- the same
batches, steps, random draws and optimizer -- with what changes only where its memory goes,
tried from the cheapest:

1. the text encoder and VAE offloaded during the loop (they only encode before it);
2. gradient checkpointing, if the backbone does not already use it (and the method has no
   ``gradient_checkpointing`` option of its own set), only when micro-batches alone cannot fit
   (it recomputes every block: a third more compute);
3. micro-batches, the largest that fits (the gradient is the whole batch's).

The optimizer is what ``optimizer`` resolves to on the device ("auto": bitsandbytes' 8-bit
AdamW on CUDA, as the DualReal authors train); an explicit choice is kept. ``budget - HEADROOM`` must hold the training peak and the generation peak; when nothing
fits, the plan says so with its smallest estimate (full fine-tuning of CogVideoX-5B cannot fit
24 GB: its fp32 weights, gradients and 8-bit states alone are 52 GiB).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

from ..config import parse_size
from ..errors import ConfigError
from ..method import MemorySettings, Method
from ..methods._common.optim import resolve_optimizer
from .memory import estimate_generation, estimate_training
from .params import MetaBackbone, build_meta_backbone, meta_helpers

__all__ = [
    "HEADROOM",
    "MemoryPlan",
    "apply_memory_budget",
    "plan_memory",
    "target_device",
    "target_optimizer",
]

#: left free for the CUDA context and the allocator's fragmentation
HEADROOM = int(1.5 * 1024**3)


@dataclasses.dataclass
class MemoryPlan:
    """What :func:`plan_memory` chose: ``settings``, whether they ``fit``, the training and
    generation estimates under them, and every candidate tried (settings -> training total)."""

    budget: int
    settings: MemorySettings
    fits: bool
    training: dict[str, Any]
    generation: dict[str, Any]
    tried: list[tuple[MemorySettings, int]]

    @property
    def limit(self) -> int:
        return self.budget - HEADROOM

    def summary(self) -> dict[str, Any]:
        return {
            "budget_bytes": self.budget,
            "headroom_bytes": HEADROOM,
            "limit_bytes": self.limit,
            "fits": self.fits,
            "settings": dataclasses.asdict(self.settings),
            "training_bytes": self.training["total_bytes"],
            "generation_bytes": self.generation["total_bytes"],
            "tried": [
                {**dataclasses.asdict(s), "training_bytes": total} for s, total in self.tried
            ],
        }


def target_device(backbone: MetaBackbone) -> torch.device:
    """The device the estimates are for (:attr:`MetaBackbone.target_device`: "auto" stands for
    a CUDA device)."""
    return backbone.target_device


def target_optimizer(kind: str, device: torch.device | None) -> str:
    """What ``optimizer=kind`` trains with on ``device`` (``None``: the target, a CUDA device,
    where "auto" is 8-bit AdamW)."""
    return resolve_optimizer(kind, torch.device("cuda") if device is None else device)


def _batches(method: Method) -> int:
    return max((s.batch_size for s in method.memory_stages()), default=1)


def plan_memory(
    method: Method,
    backbone: MetaBackbone,
    budget: int,
    *,
    device: torch.device | None = None,
) -> MemoryPlan:
    """The cheapest settings under which ``method`` (built on the meta ``backbone``) trains and
    generates within ``budget - HEADROOM`` bytes (see the module doc); ``fits`` False with the
    smallest estimate when none does."""
    config = method.config
    helpers = meta_helpers(backbone.config.profile)
    if device is None:
        device = target_device(backbone)
    optimizer = target_optimizer(getattr(config, "optimizer", "auto"), device)
    explicit = getattr(config, "micro_batch", None)
    largest = _batches(method)
    micro_sizes = [explicit] if explicit else [None, *range(largest - 1, 0, -1)]
    explicit_checkpointing = getattr(config, "gradient_checkpointing", None)  # sequential's
    if explicit_checkpointing is not None:  # the method's own choice is kept
        checkpointing = [bool(explicit_checkpointing)]
    else:
        checkpointing = [True] if backbone.config.gradient_checkpointing else [False, True]
    generation = estimate_generation(method, backbone, helpers, offload_encoders=True)
    cache: dict = {}
    tried: list[tuple[MemorySettings, int]] = []
    best: tuple[MemorySettings, dict[str, Any]] | None = None
    for ckpt in checkpointing:
        for micro in micro_sizes:
            settings = MemorySettings(micro, True, ckpt, optimizer)
            training = estimate_training(method, backbone, settings, helpers, cache=cache)
            tried.append((settings, training["total_bytes"]))
            if best is None or training["total_bytes"] < best[1]["total_bytes"]:
                best = (settings, training)
            peak = max(
                training["total_bytes"], training["encoding_bytes"], generation["total_bytes"]
            )
            if peak <= budget - HEADROOM:
                return MemoryPlan(budget, settings, True, training, generation, tried)
    assert best is not None
    return MemoryPlan(budget, best[0], False, best[1], generation, tried)


def apply_memory_budget(method: Method) -> MemoryPlan | None:
    """Plan ``method``'s ``memory_budget`` on its own backbone's configuration (meta device)
    and hand the settings to it (:meth:`Method.configure_memory`); ``None`` without a budget.
    A budget nothing fits is a :class:`ConfigError` naming the smallest estimate."""
    budget_text = getattr(method.config, "memory_budget", None)
    if budget_text is None:
        return None
    budget = parse_size(budget_text, f"{method.name}: memory_budget")
    real = method.backbone
    backbone = build_meta_backbone(real.config.profile, config=real.config, target=real.device)
    shadow = type(method)(backbone, method.config)
    try:
        plan = plan_memory(shadow, backbone, budget, device=real.device)
    finally:
        shadow.teardown()
    if not plan.fits:
        raise ConfigError(_does_not_fit(method.name, plan))
    method.configure_memory(plan.settings)
    if plan.settings.offload_encoders:  # generation too: each encoder only while it runs
        real.set_offload("encoders")
    return plan


def _does_not_fit(name: str, plan: MemoryPlan) -> str:
    gib = 1024**3
    if plan.generation["total_bytes"] > plan.limit:
        return (
            f"{name}: memory_budget={plan.budget / gib:.1f} GiB cannot hold generation: "
            f"{plan.generation['total_bytes'] / gib:.1f} GiB at its peak "
            f"({plan.generation['peak_phase']}) above the {plan.limit / gib:.1f} GiB left "
            f"after {HEADROOM / gib:.1f} GiB of headroom"
        )
    return (
        f"{name}: memory_budget={plan.budget / gib:.1f} GiB cannot hold its training: the "
        f"smallest estimate is {plan.training['total_bytes'] / gib:.1f} GiB "
        f"({plan.training['peak_stage']} step, micro-batch "
        f"{plan.settings.micro_batch or 'none'}, encoders offloaded, checkpointing, "
        f"{plan.settings.optimizer}) above the {plan.limit / gib:.1f} GiB left after "
        f"{HEADROOM / gib:.1f} GiB of headroom"
    )
