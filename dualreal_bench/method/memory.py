"""How a method's training spends device memory: the settings the memory model chooses
(:class:`MemorySettings`) and the kinds of training step it measures (:class:`MemoryStage`),
the vocabulary of :meth:`~dualreal_bench.method.Method.memory_stages` and
:meth:`~dualreal_bench.method.Method.configure_memory`."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable
from typing import Any


@dataclasses.dataclass(frozen=True)
class MemorySettings:
    """How a method's training spends device memory, chosen without changing what it computes
    (``--set memory_budget=24GiB`` has :mod:`dualreal_bench.analysis.budget` choose them; a
    method takes them through :meth:`Method.configure_memory`).

    Attributes:
        micro_batch: items per forward/backward pass; ``None`` = the whole batch (the gradient
            is the whole batch's either way).
        offload_encoders: the text encoder and the VAE wait in CPU RAM while the loop runs on
            cached latents and embeddings (the backbone's ``offload="encoders"``).
        gradient_checkpointing: the transformer's blocks recompute their activations in backward.
        optimizer: ``"adamw"`` or ``"adamw8bit"``, what the config's optimizer resolves to.
    """

    micro_batch: int | None = None
    offload_encoders: bool = False
    gradient_checkpointing: bool = False
    optimizer: str = "adamw"


@dataclasses.dataclass
class MemoryStage:
    """One kind of training step, as the memory model sees it (:meth:`Method.memory_stages`).

    Attributes:
        name: "identity", "motion", "joint: motion step", ...
        trainable: the parameters that get gradients and optimizer states in this stage.
        batch_size: items per optimizer step.
        frames: pixel frames per item: 1 for images (1-frame videos), ``None`` for the
            backbone's ``num_frames`` (clips).
        context: ``context(batch) -> context manager`` in which one transformer forward runs as
            this stage's does (e.g. the motion adapters conditioned); ``None`` for none.
        text_encoder: the loop runs the text encoder with gradients (textual inversion), so it
            stays on the device during the stage and the gradient flows back through the
            transformer to the prompt embeddings.
        param_dtype: the dtype ``trainable`` trains in when it differs from theirs (sequential
            fine-tuning's fp32 master weights of a bf16 transformer); ``None``: as they are.
        frozen_dtype: the dtype the transformer's other (frozen) parameters are held in during
            the stage when it differs from theirs (MotionBooth casts the whole transformer to
            fp32 when it trains only its attentions); ``None``: as they are.
    """

    name: str
    trainable: list[Any]
    batch_size: int = 1
    frames: int | None = None
    context: Callable[[int], contextlib.AbstractContextManager[None]] | None = None
    text_encoder: bool = False
    param_dtype: Any = None
    frozen_dtype: Any = None
