"""Training memory of a method, modelled from what autograd keeps for one transformer block.

One block is run forward on meta tensors of the real training shape
(:func:`measure_block_activations`); :func:`memory_estimate` adds the weights, gradients,
optimizer moments and the activations of every block (with or without gradient
checkpointing) into a peak for one training step.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
import torch.nn.functional as F
from diffusers.models.embeddings import get_3d_rotary_pos_embed

from .params import MetaBackbone, ParameterCounts

DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}
#: bytes per parameter: fp32 master weights, fp32 gradients, AdamW moments (2 x fp32, or
#: 2 x int8 plus one fp32 absmax per 2,048-value block for bitsandbytes' AdamW8bit)
TRAINABLE_BYTES = 4
GRAD_BYTES = 4
ADAMW_BYTES = {"adamw (fp32 states)": 8.0, "adamw8bit (bitsandbytes)": 2.0 + 2 * 4 / 2048}


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


def _training_inputs(backbone: MetaBackbone, batch_size: int) -> dict[str, Any]:
    """Meta tensors of one training step's shape: ``batch_size`` clips of ``num_frames`` frames
    at the configured size (latents), their prompt embeddings, timesteps, rotary embeddings."""
    meta = torch.device("meta")
    cfg, tcfg, dtype = backbone.config, backbone.transformer.config, backbone.dtype
    frames = 1 + (cfg.num_frames - 1) // tcfg.temporal_compression_ratio
    h, w = cfg.height // 8, cfg.width // 8
    rotary = None
    if tcfg.use_rotary_positional_embeddings:
        p = tcfg.patch_size
        rotary = tuple(
            r.to(meta)
            for r in get_3d_rotary_pos_embed(
                tcfg.attention_head_dim,
                ((0, 0), (h // p, w // p)),
                (h // p, w // p),
                frames,
                device="cpu",
            )
        )
    return {
        "latents": torch.empty(
            batch_size, frames, tcfg.in_channels, h, w, device=meta, dtype=dtype
        ),
        "text": torch.empty(
            batch_size, cfg.max_sequence_length, tcfg.text_embed_dim, device=meta, dtype=dtype
        ),
        "timesteps": torch.zeros(batch_size, dtype=torch.long, device=meta),
        "rotary": rotary,
        "latent_shape": [frames, int(tcfg.in_channels), h, w],
    }


def measure_block_activations(
    backbone: MetaBackbone,
    batch_size: int,
    context: contextlib.AbstractContextManager | None = None,
) -> dict[str, Any]:
    """Run the time and patch embeddings and the first block on meta tensors of the training
    shape (``batch_size`` clips of ``num_frames`` frames at the configured size) and sum the
    bytes autograd saves for backward inside the block (parameters excluded, each storage
    counted once however many views of it are saved, attention as a fused kernel keeps it).
    ``context``: entered around the forward (the method's :meth:`inspection_context`)."""
    t = backbone.transformer
    x = _training_inputs(backbone, batch_size)

    def storage_key(tensor: torch.Tensor) -> int:
        return tensor.untyped_storage()._cdata

    params = {storage_key(p) for p in t.parameters()}
    saved: dict[int, torch.Tensor] = {}  # storage -> a tensor on it (kept alive: keys unique)

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        key = storage_key(tensor)
        if key not in params:
            saved[key] = tensor
        return tensor

    with contextlib.ExitStack() as stack:
        if context is not None:
            stack.enter_context(context)
        stack.enter_context(_flash_attention_on_meta())
        emb = t.time_embedding(t.time_proj(x["timesteps"]).to(backbone.dtype))
        tokens = t.patch_embed(x["text"], x["latents"])
        n_text = x["text"].shape[1]
        encoder, hidden = tokens[:, :n_text], tokens[:, n_text:].detach().requires_grad_(True)
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
            t.transformer_blocks[0](hidden, encoder, emb, image_rotary_emb=x["rotary"])
    sizes = [tensor.untyped_storage().nbytes() for tensor in saved.values()]
    return {
        "batch_size": batch_size,
        "latent_shape": x["latent_shape"],
        "tokens": int(tokens.shape[1]),
        "text_tokens": int(n_text),
        "dim": int(tokens.shape[2]),
        "block_saved_bytes": sum(sizes),
        "largest_saved_bytes": max(sizes, default=0),
    }


def _assumptions(backbone: MetaBackbone, act: dict[str, Any], checkpointing: bool) -> list[str]:
    cfg = backbone.config
    return [
        f"frozen weights in {cfg.dtype}; trainable parameters, their gradients and AdamW moments in fp32 "
        "(8-bit AdamW: 2 bytes + block statistics per parameter); every trainable parameter holds a gradient "
        "(an upper bound: DualReal's mask leaves one dimension's adapters without)",
        f"one training step on {act['batch_size']} clip(s) of {cfg.num_frames} frames at "
        f"{cfg.height}x{cfg.width} -> latents {act['latent_shape']}, "
        f"{act['tokens']:,} tokens ({act['text_tokens']} text) of width {act['dim']}",
        "activations measured on the meta device for one block (what autograd saves, attention as a fused "
        "flash/memory-efficient kernel keeps it: q, k, v, output, log-sum-exp)",
        (
            "gradient checkpointing: every block keeps its input tokens, one block is recomputed at a time"
            if checkpointing
            else "no gradient checkpointing: every block keeps all its activations"
        ),
        "backward workspace: 2 x the largest saved tensor + 2 x one (B, N, D) token tensor",
        "the text encoder and VAE stay resident (the backbone keeps them on the device); latents and prompt "
        "embeddings are encoded before the loop; allocator fragmentation and CUDA context (~0.5-1 GiB) not included",
    ]


def memory_estimate(
    counts: ParameterCounts,
    backbone: MetaBackbone,
    act: dict[str, Any],
    act_base: dict[str, Any],
    helpers: dict[str, int],
) -> dict[str, Any]:
    """Peak memory of one training step, item by item (bytes), with the assumptions behind it.

    ``act`` / ``act_base``: :func:`measure_block_activations` with the method and without;
    ``helpers``: the frozen text encoder's and VAE's parameter counts."""
    dtype_bytes = DTYPE_BYTES[backbone.config.dtype]
    trainable = counts.trainable
    num_blocks = len(backbone.transformer.transformer_blocks)
    token_bytes = act["batch_size"] * act["tokens"] * act["dim"] * dtype_bytes  # one (B, N, D)
    checkpointing = bool(backbone.config.gradient_checkpointing)
    if checkpointing:
        stored = num_blocks * token_bytes  # each block's input (text + visual tokens)
        live_block = act["block_saved_bytes"]  # one block recomputed during backward
    else:
        stored, live_block = num_blocks * act["block_saved_bytes"], 0
    workspace = 2 * act["largest_saved_bytes"] + 2 * token_bytes
    activations = stored + live_block + workspace
    frozen = counts.frozen * dtype_bytes
    helper_bytes = sum(helpers.values()) * dtype_bytes
    fixed = frozen + trainable * (TRAINABLE_BYTES + GRAD_BYTES) + activations
    totals = {name: fixed + trainable * per for name, per in ADAMW_BYTES.items()}
    stored_name = (
        "activations: checkpointed block inputs" if checkpointing else "activations: all blocks"
    )
    return {
        "assumptions": _assumptions(backbone, act, checkpointing),
        "bytes": {
            "frozen transformer": frozen,
            "frozen text encoder + VAE": helper_bytes,
            "trainable parameters (fp32)": trainable * TRAINABLE_BYTES,
            "gradients (fp32)": trainable * GRAD_BYTES,
            **{f"optimizer {name}": int(trainable * per) for name, per in ADAMW_BYTES.items()},
            "activations": activations,
            stored_name: stored,
            "activations: one block (recomputed)": live_block,
            "activations: backward workspace": workspace,
        },
        "activations_per_block": {
            "with method": act["block_saved_bytes"],
            "base transformer": act_base["block_saved_bytes"],
        },
        "total_bytes": {name: int(total + helper_bytes) for name, total in totals.items()},
        "total_bytes_without_text_encoder_vae": {
            name: int(total) for name, total in totals.items()
        },
    }
