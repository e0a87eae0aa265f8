"""Device memory of a method: one training step (its peak) and generation, modelled on the meta
device and checked against allocator measurements (``scripts/bench_memory_model.py``).

Training, per kind of step the method takes (:meth:`Method.memory_stages
<dualreal_bench.method.Method.memory_stages>`; the peak is the largest):

* persistent: the frozen transformer in the backbone's dtype (or the one a stage holds it in:
  MotionBooth casts the whole transformer to fp32), every learned parameter at the dtype it
  trains in (fp32 master weights), the text encoder and VAE unless offloaded (a stage
  that runs the text encoder with gradients keeps it), the optimizer states of the stage's
  parameters (AdamW: two moments in the parameter's dtype; bitsandbytes' AdamW8bit: one byte
  each plus a float32 absmax per 256 values, 32-bit moments below 4,096 values);
* gradients of the stage's parameters (in their dtype; DualReal's mask drops one dimension's
  only after backward, so all are counted);
* activations of one micro-batch, measured by running the backbone's own loss
  (:meth:`Backbone.velocity_loss <dualreal_bench.backbone.Backbone.velocity_loss>`) on meta
  tensors of the stage's shape and summing what autograd saves for backward (each storage
  once, parameters excluded, attention as a fused kernel keeps it: q, k, v, the output and a
  float32 log-sum-exp), split into the embeddings (everything before the first block), every
  block, and the head (after the last block, and the loss). Without gradient checkpointing
  the forward keeps all of it; with it every block keeps only its inputs and one block's
  activations are recomputed at a time during backward;
* backward workspace: the gradient flowing back through the token stream and the largest
  temporaries of a block's backward (see :data:`WORKSPACE_TOKEN_TENSORS`);
* the optimizer step's temporaries (torch's AdamW on CUDA runs ``foreach``: one buffer the
  size of the parameters) -- a separate moment, after the activations are freed.

Generation (sampling with classifier-free guidance): the weights, then the largest of the
text encoder's forward, one denoising forward of the transformer on the conditional and
unconditional batch, and the VAE decode (tiled as configured), each measured on the meta device
with :class:`~.tracker.LiveBytes`; with ``offload="encoders"`` only the module running is on
the device.

This module adds the figures up (:func:`estimate_training`, :func:`estimate_generation`); the
measurements on the meta device they are made of are :mod:`.meta_measure`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Sequence
from typing import Any

import torch

from ..method import MemorySettings, Method
from .meta_measure import (
    decode_peak,
    denoising_peak,
    encode_peak,
    measure_activations,
    text_encoder_peak,
    text_encoder_saved_bytes,
)
from .params import MetaBackbone

DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}
#: bitsandbytes' 8-bit optimizers: block-wise quantisation (one float32 absmax per block of
#: 256 values and moment) and 32-bit moments for tensors below ``min_8bit_size`` values
#: (bitsandbytes ``Optimizer2State.init_state``: ``blocks = n // 256``, ``min_8bit_size=4096``)
BNB_BLOCK = 256
BNB_MIN_8BIT_SIZE = 4096
#: the backward workspace above the saved activations, in token tensors ``(b, N, D)`` of the
#: micro-batch: the gradient of the token stream (2) and the widest block-backward
#: temporaries; calibrated against allocator measurements (scripts/bench_memory_model.py)
WORKSPACE_TOKEN_TENSORS = 6


# ---- optimizer ------------------------------------------------------------------------------
def optimizer_state_bytes(params: Iterable[torch.Tensor], kind: str, param_bytes: int) -> int:
    """Bytes of the optimizer states of ``params`` (``param_bytes`` each value: the dtype they
    train in). ``kind``: "adamw" (torch) or "adamw8bit" (bitsandbytes)."""
    total = 0
    for p in params:
        n = p.numel()
        if kind == "adamw8bit" and n >= BNB_MIN_8BIT_SIZE:
            total += 2 * n + 2 * 4 * math.ceil(n / BNB_BLOCK)
        elif kind == "adamw8bit":
            total += 2 * 4 * n  # 32-bit moments for small tensors
        else:
            total += 2 * param_bytes * n  # exp_avg and exp_avg_sq, like the parameter
    return total


def optimizer_step_temporaries(params: Sequence[torch.Tensor], kind: str, param_bytes: int) -> int:
    """Bytes the optimizer step allocates for a moment: torch's ``foreach`` AdamW (CUDA) takes
    the square root of every second moment into new tensors; bitsandbytes updates in place."""
    if kind == "adamw8bit":
        return 0
    return param_bytes * sum(p.numel() for p in params)


# ---- activations --------------------------------------------------------------------------
def activation_rows(act: dict[str, Any], checkpointing: bool) -> dict[str, int]:
    """The activation rows of one micro-batch: what the forward keeps, the block recomputed
    at a time in backward (checkpointing), and the backward workspace."""
    outside = act["embedding_bytes"] + act["head_bytes"]
    if checkpointing:
        forward = outside + act["block_input_bytes"]
        recomputed = max(act["block_bytes"], default=0)
    else:
        forward = outside + sum(act["block_bytes"])
        recomputed = 0
    return {
        "activations: saved by the forward": forward,
        "activations: one block (recomputed)": recomputed,
        "activations: backward workspace": WORKSPACE_TOKEN_TENSORS * act["token_bytes"],
    }


# ---- the estimates -------------------------------------------------------------------------
def _unique(params: Iterable[torch.Tensor]) -> list[torch.Tensor]:
    return list({id(p): p for p in params}.values())


def _itemsize(p: torch.Tensor, dtype: torch.dtype | None) -> int:
    return p.element_size() if dtype is None else torch.empty((), dtype=dtype).element_size()


def _nbytes(params: Iterable[torch.Tensor]) -> int:
    return sum(p.numel() * p.element_size() for p in params)


@dataclasses.dataclass
class _Weights:
    """What every training stage holds besides its own: the learned parameters of all stages
    (and their bytes at the dtype each trains in), the frozen transformer's parameters, the
    helpers' bytes by name and what of them is resident (0 when offloaded)."""

    learned: list[torch.Tensor]
    learned_bytes: int
    frozen: list[torch.Tensor]
    helper_bytes: dict[str, int]
    resident: int


def _training_weights(
    method: Method,
    backbone: MetaBackbone,
    stages: Sequence[Any],
    helpers: dict[str, torch.nn.Module],
    settings: MemorySettings,
) -> _Weights:
    """:class:`_Weights` of the method's stages (a parameter's training dtype: its stage's)."""
    in_stages = [p for s in stages for p in s.trainable]
    learned = _unique(in_stages + [p for g in method.parameter_groups().values() for p in g])
    train_dtype = {id(p): s.param_dtype for s in stages for p in s.trainable}
    learned_ids = {id(p) for p in learned}
    helper_bytes = {name: _nbytes(m.parameters()) for name, m in helpers.items()}
    return _Weights(
        learned=learned,
        learned_bytes=sum(p.numel() * _itemsize(p, train_dtype.get(id(p))) for p in learned),
        frozen=[p for p in backbone.transformer.parameters() if id(p) not in learned_ids],
        helper_bytes=helper_bytes,
        resident=0 if settings.offload_encoders else sum(helper_bytes.values()),
    )


def estimate_training(
    method: Method,
    backbone: MetaBackbone,
    settings: MemorySettings,
    helpers: dict[str, torch.nn.Module],
    *,
    batch_size: int | None = None,
    cache: dict | None = None,
) -> dict[str, Any]:
    """One training step's peak, stage by stage, under ``settings`` (see the module doc), and
    the encoding before the loop.

    ``helpers``: the text encoder and VAE (meta). ``batch_size`` replaces the batch of the
    stages on clips. ``cache``: activation measurements kept across calls with the same method
    (the budget planner tries several settings)."""
    cache = {} if cache is None else cache
    stages = method.memory_stages()
    held = _training_weights(method, backbone, stages, helpers, settings)
    exclude = held.learned + [p for m in helpers.values() for p in m.parameters()]
    out = []
    for index, stage in enumerate(stages):
        batch = stage.batch_size if (batch_size is None or stage.frames == 1) else batch_size
        micro = batch if settings.micro_batch is None else min(settings.micro_batch, batch)
        if (index, micro) not in cache:
            cache[index, micro] = measure_activations(
                backbone,
                micro,
                frames=stage.frames,
                trainable=stage.trainable,
                context=stage.context(micro) if stage.context is not None else None,
                exclude=exclude,
                text_grad=stage.text_encoder,
            )
        out.append(
            _stage_estimate(
                stage, batch, micro, cache[index, micro], backbone, settings, helpers, held
            )
        )
    peak = max(out, key=lambda s: s["total_bytes"])
    # the weights at rest, before training casts any (sequential)
    weights = _nbytes(held.frozen) + _nbytes(held.learned)
    return {
        "settings": dataclasses.asdict(settings),
        "stages": out,
        "peak_stage": peak["name"],
        "bytes": peak["bytes"],
        "total_bytes": peak["total_bytes"],
        "encoding_bytes": _encoding_bytes(backbone, helpers, held.helper_bytes, weights, settings),
        "assumptions": _assumptions(backbone, settings),
    }


def _optimizer_bytes(
    params: Sequence[torch.Tensor], kind: str, dtype: torch.dtype | None
) -> tuple[int, int]:
    """(the optimizer states of ``params`` training in ``dtype``, the step's temporaries)."""
    states = sum(optimizer_state_bytes([p], kind, _itemsize(p, dtype)) for p in params)
    temporaries = sum(optimizer_step_temporaries([p], kind, _itemsize(p, dtype)) for p in params)
    return states, temporaries


def _stage_estimate(
    stage: Any,
    batch: int,
    micro: int,
    act: dict[str, Any],
    backbone: MetaBackbone,
    settings: MemorySettings,
    helpers: dict[str, torch.nn.Module],
    held: _Weights,
) -> dict[str, Any]:
    """One kind of training step: its rows (persistent, gradients, activations of one
    micro-batch ``act``, the optimizer step) and its total, the larger of the activations and
    the optimizer step's temporaries (they are never alive together)."""
    trainable = _unique(stage.trainable)
    grads = sum(p.numel() * _itemsize(p, stage.param_dtype) for p in trainable)
    states, temporaries = _optimizer_bytes(trainable, settings.optimizer, stage.param_dtype)
    keeps_text_encoder = stage.text_encoder and settings.offload_encoders
    persistent = {
        "frozen transformer": sum(
            p.numel() * _itemsize(p, stage.frozen_dtype) for p in held.frozen
        ),
        "learned parameters": held.learned_bytes,
        "text encoder + VAE (resident)": held.resident,
        "text encoder (kept for this stage)": (
            held.helper_bytes["text_encoder"] if keeps_text_encoder else 0
        ),
        "optimizer states": states,
    }
    activations = {
        **activation_rows(act, settings.gradient_checkpointing),
        "activations: text encoder": (
            text_encoder_saved_bytes(
                backbone, helpers["text_encoder"], settings.gradient_checkpointing
            )
            if stage.text_encoder
            else 0
        ),
    }
    rows = {
        **persistent,
        "gradients": grads,
        **activations,
        "optimizer step temporaries": temporaries,
    }
    total = sum(persistent.values()) + grads + max(sum(activations.values()), temporaries)
    return {
        "name": stage.name,
        "batch_size": batch,
        "micro_batch": micro,
        "frames": backbone.config.num_frames if stage.frames is None else stage.frames,
        "tokens": act["tokens"],
        "trainable_parameters": sum(p.numel() for p in trainable),
        "activation_measurement": act,
        "bytes": rows,
        "total_bytes": total,
    }


def _encoding_bytes(
    backbone: MetaBackbone,
    helpers: dict[str, torch.nn.Module],
    helper_bytes: dict[str, int],
    weights: int,
    settings: MemorySettings,
) -> int:
    """Before the loop: the transformer and the learned weights, and the VAE encoding one clip
    or the text encoder encoding a prompt (both resident unless offloaded)."""
    vae = encode_peak(backbone)
    text = text_encoder_peak(backbone, helpers["text_encoder"])
    if settings.offload_encoders:
        return weights + max(helper_bytes["vae"] + vae, helper_bytes["text_encoder"] + text)
    return weights + sum(helper_bytes.values()) + max(vae, text)


def estimate_generation(
    method: Method,
    backbone: MetaBackbone,
    helpers: dict[str, torch.nn.Module],
    *,
    offload_encoders: bool,
) -> dict[str, Any]:
    """The peak of sampling one video (``num_frames`` at the configured size, classifier-free
    guidance when ``guidance_scale`` > 1): the weights, then the largest of the text encoder's
    forward, one denoising forward and the VAE decode."""
    cfg = backbone.config
    batch = 2 if cfg.guidance_scale > 1 else 1
    learned = _unique(p for g in method.parameter_groups().values() for p in g)
    learned_ids = {id(p) for p in learned}
    frozen = _nbytes(p for p in backbone.transformer.parameters() if id(p) not in learned_ids)
    weights = frozen + _nbytes(learned)
    helper_bytes = {name: _nbytes(m.parameters()) for name, m in helpers.items()}
    phases = {
        "text encoder": text_encoder_peak(backbone, helpers["text_encoder"]),
        "denoising forward": denoising_peak(backbone, batch, method.inspection_context(batch))[
            "peak_bytes"
        ],
        "VAE decode": decode_peak(backbone),
    }
    if offload_encoders:  # each encoder on the device only while it runs
        totals = {
            "text encoder": weights + helper_bytes["text_encoder"] + phases["text encoder"],
            "denoising forward": weights + phases["denoising forward"],
            "VAE decode": weights + helper_bytes["vae"] + phases["VAE decode"],
        }
    else:
        base = weights + sum(helper_bytes.values())
        totals = {name: base + peak for name, peak in phases.items()}
    peak = max(totals, key=totals.get)
    return {
        "batch_size": batch,
        "offload_encoders": offload_encoders,
        "weights_bytes": weights,
        "helper_bytes": helper_bytes,
        "phase_bytes": phases,
        "phase_totals": totals,
        "peak_phase": peak,
        "total_bytes": totals[peak],
    }


def _assumptions(backbone: MetaBackbone, settings: MemorySettings) -> list[str]:
    cfg = backbone.config
    return [
        f"frozen weights in {cfg.dtype}; learned parameters, their gradients and optimizer "
        f"states at the dtype they train in (fp32 master weights); optimizer {settings.optimizer}"
        + (
            " (bitsandbytes: 1 byte per moment + a float32 absmax per 256)"
            if settings.optimizer == "adamw8bit"
            else " (torch: 2 moments like the parameter)"
        ),
        f"micro-batch {settings.micro_batch or 'none (the whole batch)'}; gradient "
        f"checkpointing {'on' if settings.gradient_checkpointing else 'off'}; text encoder + VAE "
        + ("offloaded during the loop" if settings.offload_encoders else "resident"),
        "activations measured on the meta device with the backbone's own loss (what autograd "
        "saves; attention as a fused flash/memory-efficient kernel keeps it: q, k, v, output, "
        "log-sum-exp); backward workspace "
        f"{WORKSPACE_TOKEN_TENSORS} token tensors of the micro-batch (calibrated by "
        "scripts/bench_memory_model.py)",
        "every learned parameter of a stage holds a gradient at the end of backward (DualReal's "
        "mask drops one dimension's only after it); optimizer states of the stage's parameters "
        "exist from its first step",
        "not included: the CUDA context and allocator fragmentation (the 24 GiB preset leaves "
        "1.5 GiB for them), cached latents and embeddings (a few MiB per clip)",
    ]
