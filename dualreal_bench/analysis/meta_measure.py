"""Measurements on the meta device that the memory model (:mod:`.memory`) adds up.

* :func:`measure_activations`: what autograd saves for backward during one training forward
  of the backbone's own loss (each storage once, parameters excluded, attention as a fused
  kernel keeps it), by region: before the first block, each block, after the last;
* :func:`text_encoder_saved_bytes`: the same for the T5 forward of textual inversion;
* the peaks of the no-grad forwards of generation and encoding, with
  :class:`~.tracker.LiveBytes`: one denoising forward (:func:`denoising_peak`), the VAE's
  decode and encode as configured (:func:`decode_peak`, :func:`encode_peak`), one prompt's
  T5 forward (:func:`text_encoder_peak`).

No weights are needed: every tensor is a meta tensor of the shape a run would use.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import torch
import torch.nn.functional as F

from .params import MetaBackbone, meta_helpers
from .tracker import LiveBytes


# ---- what autograd saves ------------------------------------------------------------------------
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
    x = _latent_inputs(backbone, batch_size, frames)
    t = backbone.transformer
    skip = {_storage_key(p) for p in t.parameters()} | {_storage_key(p) for p in exclude}
    skip |= {_storage_key(p) for p in trainable}
    record = _record_training_forward(backbone, x, skip, trainable, context, text_grad)
    return _activation_summary(backbone, batch_size, x, record)


def _record_training_forward(
    backbone: MetaBackbone,
    x: dict[str, Any],
    skip: set[int],
    trainable: Sequence[torch.nn.Parameter],
    context: contextlib.AbstractContextManager | None,
    text_grad: bool,
) -> _Saved:
    """Run the backbone's loss on the meta inputs ``x`` with ``trainable`` requiring gradients
    (their flags restored after) and ``context`` entered; what autograd saved, by region."""
    blocks = backbone.transformer.transformer_blocks
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
    return record


def _activation_summary(
    backbone: MetaBackbone, batch_size: int, x: dict[str, Any], record: _Saved
) -> dict[str, Any]:
    """:func:`measure_activations`' figures from what one training forward saved."""
    t = backbone.transformer
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
        "block_bytes": [by_region.get(str(i), 0) for i in range(len(t.transformer_blocks))],
        "head_bytes": by_region.get("head", 0),
        "block_input_bytes": sum(inputs.values()),
        "largest_saved_bytes": largest,
    }


# ---- peaks of no-grad forwards ---------------------------------------------------------------
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
