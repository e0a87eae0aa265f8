"""Training cost side by side: step time and peak memory of one training step.

Measures ``dualreal``, ``lora``, ``dreamvideo``, ``sequential`` and ``motionbooth`` on the same
backbone config,
each with its default options (adapter widths, LoRA rank 128, ...) and the same batches (an
identity step: 1 image; a motion step: 3 clips, DualReal's batch sizes), and prints each
figure and its ratio to ``lora``. ``motionbooth``'s identity step is its image micro-batch (the
region and subject-token cross-attention losses), its motion step its video micro-batch (the
preservation loss on unrelated clips); a real MotionBooth step is one of each. Two backbone
configs by default:

* ``tiny``: the tiny profile (2 blocks of width 32; 9 frames at 64x64): per-step overheads;
* ``mid``: CogVideoX-5B's block at its real width (48 heads x 64 = 3,072, time embedding
  512, text width 4,096) with 2 blocks, on a small latent (9 frames at 96x96 = 3 x 6 x 6
  video tokens per clip + 32 text tokens, see ``--mid-*``): the per-token cost of the real
  block width, which is what decides the ratios on the 5B model.

Latents, prompt embeddings and image embeddings are random (the VAE, T5 and CLIP are not
part of a training step: every method encodes its data once). Each (config, method, step
kind) runs in its own subprocess so that peak memory is not polluted by the others; in it
the method's own training loop (``Method.fit``) runs ``--steps + 1`` steps and the first
step (optimizer-state allocation) is discarded.

* step time: the median over the measured steps of the wall time between two optimizer steps
  (forward, backward, clipping, AdamW step);
* peak memory: on CUDA ``torch.cuda.max_memory_allocated`` during the steps, minus the
  memory allocated before them; on the CPU the peak resident set size (Linux ``VmHWM``, reset
  by writing 5 to ``/proc/self/clear_refs`` just before the steps) minus the resident set
  size before them -- activations, gradients and optimizer states, not the frozen model.
  Where ``clear_refs`` cannot be written, ``getrusage`` ``ru_maxrss`` is used and noted.

Usage::

    python scripts/bench_training_cost.py                  # tiny + mid, all five methods
    python scripts/bench_training_cost.py --configs mid --steps 5 --threads 2 --json cost.json

This is a benchmark, not a test: the numbers depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any

METHODS = ("dualreal", "lora", "dreamvideo", "sequential", "motionbooth")
KINDS = ("identity", "motion")
CONFIGS = ("tiny", "mid")
IDENTITY_BATCH, MOTION_BATCH = 1, 3  # DualReal's batch sizes, used for every method
NUM_IDENTITY_ITEMS, NUM_MOTION_ITEMS = 4, 3


# ---- memory probes ---------------------------------------------------------------------------
def _status_kb(field: str) -> int | None:
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak_rss() -> bool:
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


class MemoryProbe:
    """Peak memory of a code region: CUDA allocator stats, else Linux peak RSS."""

    def __init__(self, device: Any) -> None:
        self.device = device

    def start(self) -> None:
        import torch

        if self.device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats(self.device)
            self.before = torch.cuda.memory_allocated(self.device)
            self.method = "torch.cuda.max_memory_allocated"
            return
        import resource

        self.reset = _reset_peak_rss()
        self.before = (_status_kb("VmRSS") or 0) * 1024
        self.ru_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        self.method = (
            "peak RSS (VmHWM after clear_refs)"
            if self.reset
            else "ru_maxrss delta (peak not resettable)"
        )

    def peak_delta(self) -> int:
        import torch

        if self.device.type == "cuda":
            torch.cuda.synchronize()
            return int(torch.cuda.max_memory_allocated(self.device) - self.before)
        if self.reset:
            return int((_status_kb("VmHWM") or 0) * 1024 - self.before)
        import resource

        return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - self.ru_before)


# ---- backbones and data ----------------------------------------------------------------------
def build_backbone(config: str, args: argparse.Namespace) -> Any:
    """The tiny profile, or 2 blocks of CogVideoX-5B's width on a small latent ("mid")."""
    from diffusers import CogVideoXTransformer3DModel

    from dualreal_bench.backbone import Backbone, BackboneConfig, load_backbone
    from dualreal_bench.backbone.loading import build_tiny
    from dualreal_bench.backbone.profiles import COGVIDEOX_5B_TRANSFORMER, get_profile

    if config == "tiny":
        return load_backbone("tiny")
    bcfg = BackboneConfig(
        profile="tiny",
        num_frames=args.mid_frames,
        height=args.mid_size,
        width=args.mid_size,
        max_sequence_length=args.mid_text_tokens,
    )
    components = build_tiny(bcfg, get_profile("tiny"))
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        components.transformer = CogVideoXTransformer3DModel(
            **{**COGVIDEOX_5B_TRANSFORMER, "num_layers": args.mid_blocks}
        )
    return Backbone(bcfg, components)


def synthetic_data(backbone: Any, cond_dim: int, text_tokens: int) -> Any:
    import torch
    from dualreal_bench.methods._common.data import TrainingData

    g = torch.Generator().manual_seed(0)
    frames, channels, h, w = backbone.latent_shape
    text_dim = int(backbone.transformer.config.text_embed_dim)
    embeds = torch.randn(2, text_tokens, text_dim, generator=g)
    return TrainingData(
        identity_latents=[
            torch.randn(1, 1, channels, h, w, generator=g) for _ in range(NUM_IDENTITY_ITEMS)
        ],
        motion_latents=[
            torch.randn(1, frames, channels, h, w, generator=g) for _ in range(NUM_MOTION_ITEMS)
        ],
        motion_conditions=torch.randn(NUM_MOTION_ITEMS, cond_dim, generator=g),
        reference_embedding=torch.randn(1, cond_dim, generator=g),
        identity_prompt_embeds=embeds[:1],
        motion_prompt_embeds=embeds[1:],
        identity_prompt="a toy *",
        motion_prompt="a person is swinging back and forth",
        condition_frames=[0] * NUM_MOTION_ITEMS,
    )


def motionbooth_data(backbone: Any, data: Any) -> Any:
    """MotionBooth's prepared case from :func:`synthetic_data`: the identity latents as the
    subject images (a mask over their left half, two subject tokens), the motion latents as
    the unrelated clips."""
    import numpy as np
    import torch
    from dualreal_bench.methods.motionbooth.data import (
        MotionBoothData,
        PreservationPool,
        masks_to_targets,
    )

    cfg = backbone.config
    half = np.zeros((cfg.height, cfg.width), dtype=bool)
    half[:, : cfg.width // 2] = True
    regions, targets = masks_to_targets(backbone, [half] * len(data.identity_latents))
    embeds = [data.motion_prompt_embeds] * len(data.motion_latents)
    return MotionBoothData(
        image_latents=data.identity_latents,
        region_masks=regions,
        attention_targets=targets,
        image_prompt_embeds=data.identity_prompt_embeds,
        image_prompt=data.identity_prompt,
        subject_positions=torch.tensor([1, 2]),
        videos=PreservationPool.from_tensors(data.motion_latents, embeds),
    )


# ---- one measurement (in a child process) ------------------------------------------------------
def measure(config: str, method_name: str, kind: str, args: argparse.Namespace) -> dict[str, Any]:
    import torch

    torch.set_num_threads(args.threads)
    backbone = build_backbone(config, args)
    steps = args.steps + 1  # the first step allocates the optimizer state; discarded
    other = 0
    ident, motion = (steps, other) if kind == "identity" else (other, steps)
    stamps: list[float] = []

    def on_step(*_: Any) -> None:
        if backbone.device.type == "cuda":
            torch.cuda.synchronize()
        stamps.append(time.perf_counter())

    if method_name == "dualreal":
        from dualreal_bench.methods.dualreal import DualRealConfig, DualRealMethod

        cfg = DualRealConfig(max_train_steps=steps, lr_warmup_steps=0)
        # every step of one kind: set after construction, which validation would refuse
        cfg.motion_ratio = 1.0 if kind == "motion" else 0.0
        method = DualRealMethod(backbone, cfg)
        data = synthetic_data(backbone, cfg.cond_dim, text_tokens(config, backbone, args))

        def run() -> None:
            method.fit(data, step_callback=on_step)

    elif method_name == "lora":
        from dualreal_bench.methods.lora import LoRAConfig, LoRAMethod

        cfg = LoRAConfig(identity_steps=ident, motion_steps=motion)
        method = LoRAMethod(backbone, cfg)
        data = synthetic_data(backbone, 1024, text_tokens(config, backbone, args))

        def run() -> None:
            method.fit(data, step_callback=on_step)

    elif method_name == "dreamvideo":
        from dualreal_bench.methods.dreamvideo import DreamVideoConfig, DreamVideoMethod

        cfg = DreamVideoConfig(
            textual_inversion=False,  # a text-encoder cost, not a DiT training step
            textual_inversion_steps=0,
            identity_steps=ident,
            motion_steps=motion,
            identity_batch_size=IDENTITY_BATCH,
            motion_batch_size=MOTION_BATCH,
            p_text_zero=0.0,
        )
        method = DreamVideoMethod(backbone, cfg)
        data = synthetic_data(backbone, cfg.cond_dim, text_tokens(config, backbone, args))

        def run() -> None:
            method.fit(data, initializer_word="toy", step_callback=on_step)

    elif method_name == "sequential":
        from dualreal_bench.methods.sequential import SequentialConfig, SequentialMethod

        cfg = SequentialConfig(identity_steps=ident, motion_steps=motion)
        method = SequentialMethod(backbone, cfg)
        data = synthetic_data(backbone, 1024, text_tokens(config, backbone, args))

        def run() -> None:
            method.fit(data, step_callback=on_step)

    elif method_name == "motionbooth":
        from dualreal_bench.methods.motionbooth import MotionBoothConfig, MotionBoothMethod

        cfg = MotionBoothConfig(
            max_train_steps=steps,
            identity_batch_size=IDENTITY_BATCH,
            motion_batch_size=MOTION_BATCH,
        )
        # one micro-batch kind per measurement: set after construction, which validation refuses
        if kind == "identity":
            cfg.video_loss_weight = 0.0
        else:
            cfg.region_loss_weight = cfg.cross_attn_loss_weight = 0.0
        method = MotionBoothMethod(backbone, cfg)
        data = motionbooth_data(
            backbone, synthetic_data(backbone, 1024, text_tokens(config, backbone, args))
        )

        def run() -> None:
            method.fit(data, step_callback=on_step)

    else:
        raise SystemExit(f"unknown method {method_name!r}")

    groups = method.parameter_groups()
    trainable = sum(
        p.numel() for params in groups.values() for p in {id(p): p for p in params}.values()
    )
    probe = MemoryProbe(backbone.device)
    probe.start()
    stamps.append(time.perf_counter())
    run()
    peak = probe.peak_delta()
    method.teardown()
    durations = [b - a for a, b in zip(stamps[1:], stamps[2:], strict=False)]  # drop the first step
    frames, channels, h, w = backbone.latent_shape
    patch = int(backbone.transformer.config.patch_size)
    batch = IDENTITY_BATCH if kind == "identity" else MOTION_BATCH
    video_tokens = (1 if kind == "identity" else frames) * (h // patch) * (w // patch)
    return {
        "config": config,
        "method": method_name,
        "kind": kind,
        "step_seconds": statistics.median(durations) if durations else float("nan"),
        "step_seconds_all": durations,
        "peak_bytes": peak,
        "memory_method": probe.method,
        "trainable_parameters": trainable,
        "tokens_per_sample": video_tokens + text_tokens(config, backbone, args),
        "batch": batch,
        "threads": args.threads,
        "device": str(backbone.device),
    }


# ---- the driver ------------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--configs", default=",".join(CONFIGS), help="tiny,mid (default: both)")
    p.add_argument("--methods", default=",".join(METHODS), help="default: all five")
    p.add_argument("--kinds", default=",".join(KINDS), help="identity,motion (default: both)")
    p.add_argument(
        "--steps", type=int, default=3, help="measured steps after one warm-up step (default 3)"
    )
    p.add_argument(
        "--threads", type=int, default=1, help="torch CPU threads in each child (default 1)"
    )
    p.add_argument("--mid-blocks", type=int, default=2, help="blocks of the mid config (default 2)")
    p.add_argument(
        "--mid-frames", type=int, default=9, help="pixel frames of the mid config (default 9)"
    )
    p.add_argument(
        "--mid-size",
        type=int,
        default=96,
        help="pixel height = width of the mid config (default 96)",
    )
    p.add_argument(
        "--mid-text-tokens", type=int, default=32, help="text tokens of the mid config (default 32)"
    )
    p.add_argument("--json", help="also write every measurement to this file")
    p.add_argument(
        "--worker", nargs=3, metavar=("CONFIG", "METHOD", "KIND"), help=argparse.SUPPRESS
    )
    return p.parse_args(argv)


def text_tokens(config: str, backbone: Any, args: argparse.Namespace) -> int:
    """Text tokens per sample: the tiny profile's padded length, or ``--mid-text-tokens``."""
    return args.mid_text_tokens if config == "mid" else int(backbone.config.max_sequence_length)


def _child(config: str, method: str, kind: str, args: argparse.Namespace) -> dict[str, Any]:
    cmd = [
        sys.executable,
        os.path.abspath(__file__),
        "--worker",
        config,
        method,
        kind,
        "--steps",
        str(args.steps),
        "--threads",
        str(args.threads),
        "--mid-blocks",
        str(args.mid_blocks),
        "--mid-frames",
        str(args.mid_frames),
        "--mid-size",
        str(args.mid_size),
        "--mid-text-tokens",
        str(args.mid_text_tokens),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        return {"config": config, "method": method, "kind": kind, "error": " | ".join(tail)}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _importable(method: str) -> str | None:
    from dualreal_bench.method import get_method_class

    try:
        get_method_class(method)
    except Exception as exc:  # noqa: BLE001 - report and skip, this is a benchmark script
        return f"{type(exc).__name__}: {exc}"
    return None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        print(json.dumps(measure(*args.worker, args)))
        return 0
    configs = [c for c in args.configs.split(",") if c]
    methods = [m for m in args.methods.split(",") if m]
    kinds = [k for k in args.kinds.split(",") if k]
    for method in list(methods):
        problem = _importable(method)
        if problem:
            print(f"skipping {method}: not importable ({problem})", file=sys.stderr)
            methods.remove(method)
    results = []
    for config in configs:
        for kind in kinds:
            for method in methods:
                print(f"measuring {config} / {kind} / {method} ...", file=sys.stderr, flush=True)
                results.append(_child(config, method, kind, args))
    print_table(results)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(results, fh, indent=2)
    return 0


def print_table(results: list[dict[str, Any]]) -> None:
    by_key = {(r["config"], r["kind"], r["method"]): r for r in results}
    header = (
        f"{'config':6} {'step':8} {'method':11} {'step ms':>9} {'x lora':>7} "
        f"{'peak MiB':>9} {'x lora':>7} {'trainable':>13}"
    )
    print(header)
    print("-" * len(header))
    memory_methods = set()
    for r in results:
        if "error" in r:
            print(f"{r['config']:6} {r['kind']:8} {r['method']:11} error: {r['error']}")
            continue
        lora = by_key.get((r["config"], r["kind"], "lora"), {})
        t_ratio = (
            r["step_seconds"] / lora["step_seconds"] if lora.get("step_seconds") else float("nan")
        )
        m_ratio = r["peak_bytes"] / lora["peak_bytes"] if lora.get("peak_bytes") else float("nan")
        memory_methods.add(r["memory_method"])
        print(
            f"{r['config']:6} {r['kind']:8} {r['method']:11} {r['step_seconds'] * 1e3:9.1f} {t_ratio:7.2f} "
            f"{r['peak_bytes'] / 2**20:9.1f} {m_ratio:7.2f} {r['trainable_parameters']:13,d}"
        )
    ok = [r for r in results if "error" not in r]
    if ok:
        tokens = sorted({(r["config"], r["kind"], r["batch"], r["tokens_per_sample"]) for r in ok})
        print()
        print(
            "batch x tokens per sample: "
            + "; ".join(f"{c}/{k}: {b} x {t}" for c, k, b, t in tokens)
        )
        print(
            f"memory: {', '.join(sorted(memory_methods))}; threads: {ok[0]['threads']}; device: {ok[0]['device']}"
        )


if __name__ == "__main__":
    sys.exit(main())
