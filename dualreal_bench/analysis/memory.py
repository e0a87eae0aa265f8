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
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import torch
import torch.nn.functional as F

from ..method import MemorySettings, Method
from .params import MetaBackbone, meta_helpers
from .tracker import LiveBytes

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
class _FusedAttention(torch.autograd.Function):
    """Attention that keeps for backward what a fused kernel keeps (shapes only)."""

    @staticmethod
    def forward(ctx, q, k, v):  # (B, H, N, d)
        out = torch.empty_like(q)
        lse = q.new_empty(q.shape[:-1], dtype=torch.float32)
        ctx.save_for_backward(q, k, v, out, lse)
        return out

    @staticmethod
    def backward(ctx, grad):  # pragma: no cover - never run
        raise RuntimeError("shape-only attention")


@contextlib.contextmanager
def _flash_attention_on_meta() -> Iterator[None]:
    """Make ``F.scaled_dot_product_attention`` keep what a fused (flash / memory-efficient)
    kernel keeps for backward: q, k, v, the output and a float32 log-sum-exp per query.
    The math fallback that runs on the meta device would keep the full attention matrix."""
    original = F.scaled_dot_product_attention

    def fused(q, k, v, *args, **kwargs):
        return _FusedAttention.apply(q, k, v)

    F.scaled_dot_product_attention = fused
    try:
        yield
    finally:
        F.scaled_dot_product_attention = original


def _storage_key(tensor: torch.Tensor) -> int:
    return tensor.untyped_storage()._cdata


def _latent_inputs(backbone: MetaBackbone, batch_size: int, frames: int | None) -> dict[str, Any]:
    """Meta tensors of one training step: ``batch_size`` items of ``frames`` pixel frames (None:
    the configured ``num_frames``) at the configured size, their prompt embeddings, timesteps
    and noise."""
    meta = torch.device("meta")
    cfg, tcfg, dtype = backbone.config, backbone.transformer.config, backbone.dtype
    pixel_frames = cfg.num_frames if frames is None else frames
    latent_frames = 1 + (pixel_frames - 1) // tcfg.temporal_compression_ratio
    h, w = cfg.height // 8, cfg.width // 8
    shape = (batch_size, latent_frames, tcfg.in_channels, h, w)
    return {
        "latents": torch.empty(shape, device=meta, dtype=dtype),
        "noise": torch.empty(shape, device=meta, dtype=dtype),
        "text": torch.empty(
            batch_size, cfg.max_sequence_length, tcfg.text_embed_dim, device=meta, dtype=dtype
        ),
        "timesteps": torch.zeros(batch_size, dtype=torch.long, device=meta),
        "latent_shape": [latent_frames, int(tcfg.in_channels), h, w],
    }


@dataclasses.dataclass
class _Saved:
    """What autograd saved during a forward: ``saved``, storage -> (bytes, region: before the
    blocks, a block's index, after them); ``inputs``, storage -> bytes of what the blocks took
    as inputs (what checkpointed blocks keep); ``keep``, the tensors (alive while recording,
    so that no storage key is reused)."""

    saved: dict[int, tuple[int, str]] = dataclasses.field(default_factory=dict)
    inputs: dict[int, int] = dataclasses.field(default_factory=dict)
    keep: list[torch.Tensor] = dataclasses.field(default_factory=list)


@contextlib.contextmanager
def _saved_by_region(
    blocks: Sequence[torch.nn.Module], skip: set[int], before: str, after: str
) -> Iterator[_Saved]:
    """Record what autograd saves for backward during the block, each storage once and none
    of ``skip`` (the parameters' storages), by region: ``before`` the first of ``blocks``,
    each block's index, ``after`` the last; and the blocks' inputs."""
    record = _Saved()
    region = [before]

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        key = _storage_key(tensor)
        if key not in skip and key not in record.saved:
            record.saved[key] = (tensor.untyped_storage().nbytes(), region[0])
            record.keep.append(tensor)
        return tensor

    def enter(i: int) -> Callable:
        def hook(module: Any, args: Any, kwargs: Any) -> None:
            region[0] = str(i)
            for value in (*args, *kwargs.values()):
                if isinstance(value, torch.Tensor):
                    record.inputs[_storage_key(value)] = value.untyped_storage().nbytes()
                    record.keep.append(value)

        return hook

    def leave(module: Any, args: Any, output: Any) -> None:
        region[0] = after

    handles = [
        b.register_forward_pre_hook(enter(i), with_kwargs=True) for i, b in enumerate(blocks)
    ]
    handles.append(blocks[-1].register_forward_hook(leave))
    try:
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t_: t_):
            yield record
    finally:
        for handle in handles:
            handle.remove()


def measure_activations(
    backbone: MetaBackbone,
    batch_size: int,
    *,
    frames: int | None = None,
    trainable: Sequence[torch.nn.Parameter] = (),
    context: contextlib.AbstractContextManager | None = None,
    exclude: Iterable[torch.Tensor] = (),
    text_grad: bool = False,
) -> dict[str, Any]:
    """What autograd saves during one training forward of ``batch_size`` items (meta device).

    Runs the backbone's loss (:meth:`Backbone.velocity_loss`) with ``trainable`` requiring
    gradients (and the prompt embeddings with ``text_grad``: textual inversion) and
    ``context`` entered (the method's state for this kind of step), and sums the
    bytes of every saved storage once, excluding parameters (the transformer's and
    ``exclude``), by region: ``embedding_bytes`` (before the first block), ``block_bytes`` (one
    entry per block), ``head_bytes`` (after the last block, the loss included). Also:
    ``block_input_bytes``, the distinct storages the blocks take as inputs (what checkpointed
    blocks keep), ``largest_saved_bytes`` in a block, ``token_bytes`` of one ``(B, N, D)``
    token tensor, ``tokens`` (text included), ``text_tokens``, ``dim``, ``latent_shape``.
    """
    t = backbone.transformer
    x = _latent_inputs(backbone, batch_size, frames)
    skip = {_storage_key(p) for p in t.parameters()} | {_storage_key(p) for p in exclude}
    skip |= {_storage_key(p) for p in trainable}
    blocks = t.transformer_blocks
    flags = [(p, p.requires_grad) for p in trainable]
    try:
        for p, _ in flags:
            p.requires_grad_(True)
        with contextlib.ExitStack() as stack:
            if context is not None:
                stack.enter_context(context)
            stack.enter_context(_flash_attention_on_meta())
            record = stack.enter_context(_saved_by_region(blocks, skip, "embedding", "head"))
            text = x["text"].requires_grad_(True) if text_grad else x["text"]
            backbone.velocity_loss(x["latents"], text, x["timesteps"], x["noise"])
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)
    saved, inputs = record.saved, record.inputs
    by_region: dict[str, int] = {}
    largest = 0
    for nbytes, where in saved.values():
        by_region[where] = by_region.get(where, 0) + nbytes
        if where not in ("embedding", "head"):
            largest = max(largest, nbytes)
    dtype_bytes = torch.empty((), dtype=backbone.dtype).element_size()
    tokens = (
        x["latent_shape"][0]
        * (x["latent_shape"][2] // t.config.patch_size)
        * (x["latent_shape"][3] // t.config.patch_size)
        + x["text"].shape[1]
    )
    dim = int(t.config.num_attention_heads * t.config.attention_head_dim)
    return {
        "batch_size": batch_size,
        "latent_shape": x["latent_shape"],
        "tokens": int(tokens),
        "text_tokens": int(x["text"].shape[1]),
        "dim": dim,
        "token_bytes": batch_size * int(tokens) * dim * dtype_bytes,
        "embedding_bytes": by_region.get("embedding", 0),
        "block_bytes": [by_region.get(str(i), 0) for i in range(len(blocks))],
        "head_bytes": by_region.get("head", 0),
        "block_input_bytes": sum(inputs.values()),
        "largest_saved_bytes": largest,
    }


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


# ---- generation ------------------------------------------------------------------------------
def denoising_peak(backbone: MetaBackbone, batch_size: int, context=None) -> dict[str, Any]:
    """Peak bytes one no-grad transformer forward allocates for ``batch_size`` clips (2 with
    classifier-free guidance), attention as a fused kernel, measured on meta."""
    x = _latent_inputs(backbone, batch_size, None)
    with contextlib.ExitStack() as stack:
        if context is not None:
            stack.enter_context(context)
        stack.enter_context(torch.no_grad())
        stack.enter_context(_flash_attention_on_meta())
        live = stack.enter_context(LiveBytes())
        backbone.forward_transformer(x["latents"], x["text"], x["timesteps"])
    return {"batch_size": batch_size, "peak_bytes": live.peak}


@contextlib.contextmanager
def _vae_as_configured(vae: torch.nn.Module, tiling: bool, slicing: bool) -> Iterator[None]:
    """The VAE with the backbone's tiling and slicing, and group norm as a shape-only kernel
    allocating what the real one does (the output, a float32 mean and rstd per group): the
    meta device's decomposed group norm is most of the time a decode takes there."""
    before = vae.use_tiling, vae.use_slicing
    vae.use_tiling, vae.use_slicing = tiling, slicing
    original = F.group_norm

    def group_norm(x, num_groups, weight=None, bias=None, eps=1e-5):
        x.new_empty((x.shape[0], num_groups), dtype=torch.float32)  # mean
        x.new_empty((x.shape[0], num_groups), dtype=torch.float32)  # rstd
        return torch.empty_like(x)

    F.group_norm = group_norm
    try:
        yield
    finally:
        F.group_norm = original
        vae.use_tiling, vae.use_slicing = before


def _vae_key(backbone: MetaBackbone) -> tuple:
    cfg = backbone.config
    return (cfg.profile, cfg.num_frames, cfg.height, cfg.width, bool(cfg.vae_tiling),
            bool(cfg.vae_slicing), cfg.dtype)  # fmt: skip


@functools.lru_cache(maxsize=16)
def _vae_peak(key: tuple, what: str) -> int:
    profile, frames, height, width, tiling, slicing, dtype = key
    vae = meta_helpers(profile)["vae"]
    dt = getattr(torch, dtype)
    latent_frames = 1 + (frames - 1) // int(vae.config.temporal_compression_ratio)
    with _vae_as_configured(vae, tiling, slicing), torch.no_grad(), LiveBytes() as live:
        if what == "decode":
            vae.decode(torch.empty(1, vae.config.latent_channels, latent_frames, height // 8,
                                   width // 8, device="meta", dtype=dt))  # fmt: skip
        else:
            vae.encode(torch.empty(1, 3, frames, height, width, device="meta", dtype=dt))
    return live.peak


def decode_peak(backbone: MetaBackbone) -> int:
    """Peak bytes the VAE allocates decoding one clip's latents (meta; the backbone config's
    tiling and slicing), the decoded video included."""
    return _vae_peak(_vae_key(backbone), "decode")


def encode_peak(backbone: MetaBackbone) -> int:
    """Peak bytes the VAE allocates encoding one clip of ``num_frames`` frames (meta; as
    configured), the pixels it reads included."""
    return _vae_peak(_vae_key(backbone), "encode")


def text_encoder_peak(backbone: MetaBackbone, text_encoder: torch.nn.Module) -> int:
    """Peak bytes one prompt's no-grad T5 forward allocates (meta)."""
    ids = torch.zeros(1, backbone.config.max_sequence_length, dtype=torch.long, device="meta")
    with torch.no_grad(), LiveBytes() as live:
        text_encoder(ids)
    return live.peak


def text_encoder_saved_bytes(
    backbone: MetaBackbone, text_encoder: torch.nn.Module, checkpointing: bool
) -> int:
    """What autograd keeps of one prompt's T5 forward when its input embeddings need a
    gradient (textual inversion), meta; with ``checkpointing`` every T5 block keeps only its
    inputs and one block is recomputed at a time (as the method runs it)."""
    width = text_encoder.get_input_embeddings().weight.shape[1]
    embeds = torch.empty(1, backbone.config.max_sequence_length, width, device="meta",
                         dtype=backbone.dtype, requires_grad=True)  # fmt: skip
    skip = {_storage_key(p) for p in text_encoder.parameters()}
    layers = list(text_encoder.encoder.block)
    with _saved_by_region(layers, skip, "outside", "outside") as record:
        text_encoder(inputs_embeds=embeds)
    saved, inputs = record.saved, record.inputs
    per_layer = [sum(b for b, r in saved.values() if r == str(i)) for i in range(len(layers))]
    outside = sum(b for b, r in saved.values() if r == "outside")
    if checkpointing:
        return outside + sum(inputs.values()) + max(per_layer, default=0)
    return outside + sum(per_layer)


# ---- the estimates -------------------------------------------------------------------------
def _unique(params: Iterable[torch.Tensor]) -> list[torch.Tensor]:
    return list({id(p): p for p in params}.values())


def _itemsize(p: torch.Tensor, dtype: torch.dtype | None) -> int:
    return p.element_size() if dtype is None else torch.empty((), dtype=dtype).element_size()


def _nbytes(params: Iterable[torch.Tensor]) -> int:
    return sum(p.numel() * p.element_size() for p in params)


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
    in_stages = [p for s in stages for p in s.trainable]
    learned = _unique(in_stages + [p for g in method.parameter_groups().values() for p in g])
    train_dtype = {id(p): s.param_dtype for s in stages for p in s.trainable}
    learned_bytes = sum(p.numel() * _itemsize(p, train_dtype.get(id(p))) for p in learned)
    learned_ids = {id(p) for p in learned}
    frozen_params = [p for p in backbone.transformer.parameters() if id(p) not in learned_ids]
    frozen = _nbytes(frozen_params)
    helper_bytes = {name: _nbytes(m.parameters()) for name, m in helpers.items()}
    resident = 0 if settings.offload_encoders else sum(helper_bytes.values())
    exclude = learned + [p for m in helpers.values() for p in m.parameters()]
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
        act = cache[index, micro]
        trainable = _unique(stage.trainable)
        grads = sum(p.numel() * _itemsize(p, stage.param_dtype) for p in trainable)
        states = sum(
            optimizer_state_bytes([p], settings.optimizer, _itemsize(p, stage.param_dtype))
            for p in trainable
        )
        temporaries = sum(
            optimizer_step_temporaries([p], settings.optimizer, _itemsize(p, stage.param_dtype))
            for p in trainable
        )
        keeps_text_encoder = stage.text_encoder and settings.offload_encoders
        persistent = {
            "frozen transformer": sum(
                p.numel() * _itemsize(p, stage.frozen_dtype) for p in frozen_params
            ),
            "learned parameters": learned_bytes,
            "text encoder + VAE (resident)": resident,
            "text encoder (kept for this stage)": (
                helper_bytes["text_encoder"] if keeps_text_encoder else 0
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
        out.append(
            {
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
        )
    peak = max(out, key=lambda s: s["total_bytes"])
    weights = frozen + _nbytes(learned)  # at rest, before training casts any (sequential)
    return {
        "settings": dataclasses.asdict(settings),
        "stages": out,
        "peak_stage": peak["name"],
        "bytes": peak["bytes"],
        "total_bytes": peak["total_bytes"],
        "encoding_bytes": _encoding_bytes(backbone, helpers, helper_bytes, weights, settings),
        "assumptions": _assumptions(backbone, settings),
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
