"""``dualreal-bench inspect --method M --profile P``: trainable parameters and training memory.

Everything is computed on PyTorch's ``meta`` device: the profile's transformer is built
without weights, the method attaches to it as it would to the real backbone, parameters are
counted, and one transformer block is run forward on meta tensors of the real training
shape to measure which activations autograd keeps. So ``inspect`` works for
``cogvideox-5b`` on a laptop, without downloading anything.

Library use: :func:`inspect_method` returns the same figures as a dict.

A method is inspectable when it attaches its trainable parameters at construction. What is
read is declared on :class:`~dualreal_bench.method.Method` with defaults:
``parameter_groups() -> {component: [Parameter, ...]}`` (default: the parameters of the
transformer with ``requires_grad``, which is 0 for ``base``), ``inspection_context(batch_size)``
(a context manager preparing a representative training forward, e.g. DualReal's image
condition) and ``auxiliary_models() -> {name: parameter count}`` (frozen helper models the
method loads).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

#: Hugging Face layout of CogVideoX-2b/5b ``text_encoder/config.json`` (T5 v1.1 XXL encoder)
T5_XXL_ENCODER = {
    "vocab_size": 32128,
    "d_model": 4096,
    "d_kv": 64,
    "d_ff": 10240,
    "num_layers": 24,
    "num_heads": 64,
    "feed_forward_proj": "gated-gelu",
    "is_encoder_decoder": False,
}
DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}
#: bytes per parameter: fp32 master weights, fp32 gradients, AdamW moments (2 x fp32, or
#: 2 x int8 plus one fp32 absmax per 2,048-value block for bitsandbytes' AdamW8bit)
TRAINABLE_BYTES = 4
GRAD_BYTES = 4
ADAMW_BYTES = {"adamw (fp32 states)": 8.0, "adamw8bit (bitsandbytes)": 2.0 + 2 * 4 / 2048}
GIB = 1024**3


@dataclass
class MetaBackbone:
    """What a method sees of a backbone, with the transformer on the meta device."""

    config: Any
    transformer: Any
    dtype: Any

    @property
    def device(self):
        import torch

        return torch.device("meta")

    @property
    def profile(self):
        from ..backbone import get_profile

        return get_profile(self.config.profile)

    def fingerprint(self) -> dict[str, Any]:
        config = {k: v for k, v in dict(self.transformer.config).items() if not k.startswith("_")}
        return {
            "profile": self.config.profile,
            "transformer": json.loads(json.dumps(config, default=str)),
        }


def build_meta_backbone(profile: str, overrides: Sequence[str] | None = None) -> MetaBackbone:
    """The profile's transformer (published architecture) on the meta device, frozen, in the
    profile's dtype."""
    import torch
    from diffusers import CogVideoXTransformer3DModel

    from ..backbone import BackboneConfig, get_profile

    config = BackboneConfig.for_profile(profile, list(overrides or []))
    dtype = getattr(torch, config.dtype)
    from diffusers.utils import logging as diffusers_logging

    with torch.device("meta"):
        transformer = CogVideoXTransformer3DModel(**get_profile(config.profile).transformer)
    verbosity = diffusers_logging.get_verbosity()
    diffusers_logging.set_verbosity_error()  # .to(dtype) warns about fp32 modules (there are none)
    try:
        transformer.to(dtype=dtype)
    finally:
        diffusers_logging.set_verbosity(verbosity)
    transformer.requires_grad_(False)
    return MetaBackbone(config=config, transformer=transformer, dtype=dtype)


def _count(params: Sequence[Any]) -> int:
    return sum(p.numel() for p in {id(p): p for p in params}.values())


def _meta_count(build) -> int:
    import torch

    with torch.device("meta"):
        return sum(p.numel() for p in build().parameters())


@functools.lru_cache(maxsize=8)
def frozen_helper_counts(profile: str) -> dict[str, int]:
    """Parameter counts of the backbone's text encoder and VAE (built on meta)."""
    from diffusers import AutoencoderKLCogVideoX
    from transformers import T5Config, T5EncoderModel

    from ..backbone import get_profile

    if get_profile(profile).random_init:
        from ..backbone.profiles import TINY_TEXT_ENCODER, TINY_VAE

        return {
            "text encoder (tiny T5)": _meta_count(
                lambda: T5EncoderModel(T5Config(**TINY_TEXT_ENCODER))
            ),
            "VAE (tiny)": _meta_count(lambda: AutoencoderKLCogVideoX(**TINY_VAE)),
        }
    return {
        "text encoder (T5 v1.1 XXL)": _meta_count(
            lambda: T5EncoderModel(T5Config(**T5_XXL_ENCODER))
        ),
        "VAE (AutoencoderKLCogVideoX)": _meta_count(AutoencoderKLCogVideoX),
    }


@contextlib.contextmanager
def _flash_attention_on_meta() -> Iterator[None]:
    """Make ``F.scaled_dot_product_attention`` keep what a fused (flash / memory-efficient)
    kernel keeps for backward: q, k, v, the output and a float32 log-sum-exp per query.
    The math fallback that runs on the meta device would keep the full attention matrix."""
    import torch
    import torch.nn.functional as F

    class _FusedAttention(torch.autograd.Function):
        @staticmethod
        def forward(ctx, q, k, v):  # (B, H, N, d)
            out = torch.empty_like(q)
            lse = q.new_empty(q.shape[:-1], dtype=torch.float32)
            ctx.save_for_backward(q, k, v, out, lse)
            return out

        @staticmethod
        def backward(ctx, grad):  # pragma: no cover - never run
            raise RuntimeError("shape-only attention")

    original = F.scaled_dot_product_attention

    def fused(q, k, v, *args, **kwargs):
        return _FusedAttention.apply(q, k, v)

    F.scaled_dot_product_attention = fused
    try:
        yield
    finally:
        F.scaled_dot_product_attention = original


def measure_block_activations(
    backbone: MetaBackbone, batch_size: int, context=None
) -> dict[str, Any]:
    """Run the time and patch embeddings and the first block on meta tensors of the training
    shape (``batch_size`` clips of ``num_frames`` frames at the configured size) and sum the
    bytes autograd saves for backward inside the block (parameters excluded, each storage
    counted once however many views of it are saved, attention as a fused kernel keeps it)."""
    import torch

    t = backbone.transformer
    cfg, tcfg = backbone.config, t.config
    dtype, meta = backbone.dtype, torch.device("meta")
    frames = 1 + (cfg.num_frames - 1) // tcfg.temporal_compression_ratio
    h, w = cfg.height // 8, cfg.width // 8
    latents = torch.empty(batch_size, frames, tcfg.in_channels, h, w, device=meta, dtype=dtype)
    text = torch.empty(
        batch_size, cfg.max_sequence_length, tcfg.text_embed_dim, device=meta, dtype=dtype
    )
    timesteps = torch.zeros(batch_size, dtype=torch.long, device=meta)
    rotary = None
    if tcfg.use_rotary_positional_embeddings:
        from diffusers.models.embeddings import get_3d_rotary_pos_embed

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

    def storage_key(x) -> int:
        return x.untyped_storage()._cdata

    params = {storage_key(p) for p in t.parameters()}
    saved: dict[int, Any] = {}  # storage -> a tensor on it (kept alive so keys stay unique)

    def pack(x):
        key = storage_key(x)
        if key not in params:
            saved[key] = x
        return x

    with contextlib.ExitStack() as stack:
        if context is not None:
            stack.enter_context(context)
        stack.enter_context(_flash_attention_on_meta())
        emb = t.time_embedding(t.time_proj(timesteps).to(dtype))
        tokens = t.patch_embed(text, latents)
        n_text = text.shape[1]
        encoder, hidden = tokens[:, :n_text], tokens[:, n_text:].detach().requires_grad_(True)
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda x: x):
            t.transformer_blocks[0](hidden, encoder, emb, image_rotary_emb=rotary)
    sizes = [x.untyped_storage().nbytes() for x in saved.values()]
    return {
        "batch_size": batch_size,
        "latent_shape": [frames, int(tcfg.in_channels), h, w],
        "tokens": int(tokens.shape[1]),
        "text_tokens": int(n_text),
        "dim": int(tokens.shape[2]),
        "block_saved_bytes": sum(sizes),
        "largest_saved_bytes": max(sizes, default=0),
    }


def _memory(
    counts: dict[str, int],
    backbone: MetaBackbone,
    act: dict[str, Any],
    act_base: dict[str, Any],
    helpers: dict[str, int],
) -> dict[str, Any]:
    dtype_bytes = DTYPE_BYTES[backbone.config.dtype]
    trainable = counts["trainable"]
    num_blocks = len(backbone.transformer.transformer_blocks)
    # one (B, N, D) token tensor
    token_bytes = act["batch_size"] * act["tokens"] * act["dim"] * dtype_bytes
    checkpointing = bool(backbone.config.gradient_checkpointing)
    if checkpointing:
        # each block's input (text + visual tokens), kept by the checkpoint
        stored = num_blocks * token_bytes
        live_block = act["block_saved_bytes"]  # one block recomputed during backward
    else:
        stored, live_block = num_blocks * act["block_saved_bytes"], 0
    workspace = 2 * act["largest_saved_bytes"] + 2 * token_bytes
    activations = stored + live_block + workspace
    frozen = counts["frozen"] * dtype_bytes
    helper_bytes = sum(helpers.values()) * dtype_bytes
    fixed = frozen + trainable * (TRAINABLE_BYTES + GRAD_BYTES) + activations
    totals = {name: fixed + trainable * per for name, per in ADAMW_BYTES.items()}
    return {
        "assumptions": [
            f"frozen weights in {backbone.config.dtype}; trainable parameters, their gradients and AdamW moments in fp32 "
            "(8-bit AdamW: 2 bytes + block statistics per parameter); every trainable parameter holds a gradient "
            "(an upper bound: DualReal's mask leaves one dimension's adapters without)",
            f"one training step on {act['batch_size']} clip(s) of {backbone.config.num_frames} frames at "
            f"{backbone.config.height}x{backbone.config.width} -> latents {act['latent_shape']}, "
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
        ],
        "bytes": {
            "frozen transformer": frozen,
            "frozen text encoder + VAE": helper_bytes,
            "trainable parameters (fp32)": trainable * TRAINABLE_BYTES,
            "gradients (fp32)": trainable * GRAD_BYTES,
            **{f"optimizer {name}": int(trainable * per) for name, per in ADAMW_BYTES.items()},
            "activations": activations,
            "activations: checkpointed block inputs"
            if checkpointing
            else "activations: all blocks": stored,
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
    from ..method import get_method_class

    cls = get_method_class(method_name)
    config = cls.config_class().with_overrides(list(overrides or []))
    backbone = build_meta_backbone(profile, backbone_overrides)
    method = cls(backbone, config)
    try:
        groups = {k: list(v) for k, v in method.parameter_groups().items()}
        trainable_ids = {id(p) for ps in groups.values() for p in ps}
        components = {name: _count(ps) for name, ps in groups.items()}
        frozen = sum(
            p.numel() for p in backbone.transformer.parameters() if id(p) not in trainable_ids
        )
        counts = {"trainable": _count([p for ps in groups.values() for p in ps]), "frozen": frozen}
        result: dict[str, Any] = {
            "method": cls.name or method_name,
            "profile": backbone.config.profile,
            "config": config.to_dict(),
            "resolved": method.resolved_options(),
            "trainable_parameters": components,
            "trainable_total": counts["trainable"],
            "frozen_transformer_parameters": frozen,
            "transformer_blocks": len(backbone.transformer.transformer_blocks),
        }
        helpers = dict(frozen_helper_counts(backbone.config.profile))
        result["frozen_helper_parameters"] = helpers
        aux = method.auxiliary_models()
        if aux:
            result["auxiliary_models"] = aux
        if measure_memory and getattr(cls, "trains", True):
            if batch_size is None:
                batch_size = int(getattr(config, "motion_batch_size", 1) or 1)
            act = measure_block_activations(
                backbone, batch_size, method.inspection_context(batch_size)
            )
            method.teardown()
            act_base = measure_block_activations(backbone, batch_size, None)
            result["activation_measurement"] = act
            result["memory"] = _memory(counts, backbone, act, act_base, helpers)
    finally:
        method.teardown()
    return result


# ---- CLI ---------------------------------------------------------------------------------------
def add_parser(sub: argparse._SubParsersAction) -> None:
    from .run import add_method_args

    p = sub.add_parser(
        "inspect",
        help="trainable parameters and training memory of a method (meta device, no weights needed)",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
    )
    add_method_args(
        p,
        method_default=None,
        profile_default="cogvideox-5b",
        overrides_dest="overrides",
        metrics_profile=False,
    )
    p.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="clips per training step (default: the method's)",
    )
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.set_defaults(func=run)


def _fmt_bytes(n: float) -> str:
    return f"{n / GIB:,.2f} GiB"


def _fmt_count(n: int) -> str:
    return f"{n:,}" if n < 1e6 else f"{n:,} ({n / 1e6:,.1f} M)"


def run(args: argparse.Namespace) -> int:
    from ..errors import ConfigError

    if args.batch_size is not None and args.batch_size < 1:
        raise ConfigError(f"--batch-size must be >= 1, got {args.batch_size}")
    result = inspect_method(
        args.method,
        args.profile,
        args.overrides,
        backbone_overrides=args.backbone_overrides,
        batch_size=args.batch_size,
    )
    if args.format == "json":
        print(json.dumps(result, indent=2, default=str))
        return 0
    from rich.console import Console
    from rich.table import Table

    console = Console()
    title = f"{result['method']} on {result['profile']}"
    if result.get("resolved"):
        title += " (" + ", ".join(f"{k}={v}" for k, v in result["resolved"].items()) + ")"
    params = Table(title=f"Parameters: {title}")
    params.add_column("component")
    params.add_column("parameters", justify="right")
    params.add_column("share of transformer", justify="right")
    base = result["frozen_transformer_parameters"]
    for name, n in result["trainable_parameters"].items():
        params.add_row(
            f"trainable: {name}", _fmt_count(n), f"{100 * n / base:.2f}%" if base else ""
        )
    params.add_row(
        "[bold]trainable total",
        f"[bold]{_fmt_count(result['trainable_total'])}",
        f"{100 * result['trainable_total'] / base:.2f}%" if base else "",
    )
    params.add_row("frozen transformer", _fmt_count(base), "100%")
    for name, n in result["frozen_helper_parameters"].items():
        params.add_row(f"frozen {name}", _fmt_count(n), "")
    for name, n in result.get("auxiliary_models", {}).items():
        params.add_row(f"frozen {name}", _fmt_count(n), "")
    console.print(params)
    memory = result.get("memory")
    if memory:
        table = Table(title="Training memory estimate (one step, peak)")
        table.add_column("item")
        table.add_column("size", justify="right")
        for name, n in memory["bytes"].items():
            table.add_row(name, _fmt_bytes(n))
        for name, n in memory["total_bytes"].items():
            table.add_row(f"[bold]total with {name}", f"[bold]{_fmt_bytes(n)}")
        for name, n in memory["total_bytes_without_text_encoder_vae"].items():
            table.add_row(f"total with {name}, text encoder + VAE offloaded", _fmt_bytes(n))
        per_block = memory["activations_per_block"]
        table.add_row(
            "saved activations of one block: base transformer",
            _fmt_bytes(per_block["base transformer"]),
        )
        table.add_row(
            "saved activations of one block: with the method", _fmt_bytes(per_block["with method"])
        )
        console.print(table)
        for line in memory["assumptions"]:
            console.print(f"- {line}", highlight=False)
    if not math.isfinite(result["trainable_total"]):  # pragma: no cover
        return 1
    return 0
