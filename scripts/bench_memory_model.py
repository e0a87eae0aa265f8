"""The training-memory model checked against measurement: real training steps on this CPU,
their allocated memory, and what ``dualreal-bench inspect``'s estimator predicts for the same
configuration.

The model: CogVideoX-5B's transformer at its real width (48 heads x 64 = 3,072, text width
4,096, time embedding 512) with ``--blocks`` blocks (default 2), random weights in bfloat16,
trained by the bundled methods' own loops (``Method.fit``) for one step on random latents of
``--frames`` pixel frames at 480x720 and 226 text tokens. A 49-frame clip is 13 latent frames:
17,776 tokens with the text; the default ``--frames 9`` (3 latent frames: 4,276 tokens, 24% of
a clip) keeps a step of the 2 blocks to a few minutes on 2 cores. Every row of the memory model
is linear in the token count (attention is a fused kernel that keeps no N x N matrix; the CPU's
flash-attention kernel keeps what CUDA's does: q, k, v, the output and a float32 log-sum-exp),
so the prediction is made for the same reduced shape and the check carries over.

Measurement: PyTorch's CPU allocator reports every allocation and free to the profiler
(``torch.profiler.profile(profile_memory=True)``), with the running total of bytes allocated
since profiling started ("Total Allocated"); the script marks the moments of the step
(forward start/end of each micro-batch, end of each backward, the update, the end of the step)
and reads the total at each. Rows compared, each in bytes allocated:

* saved activations: after the (first micro-batch's) forward minus before it -- what autograd
  keeps for backward (plus the loss's few latent-sized tensors);
* gradients: after the last backward minus before the first forward (the saved tensors are
  freed by then; what remains is the ``.grad`` of every trainable parameter);
* optimizer states: after the optimizer step minus just before it (the first step allocates
  AdamW's two moments of every parameter holding a gradient; DualReal's mask has dropped the
  inactive dimension's gradients by then, so those parameters get none this step);
* peak of forward + backward: the highest total between the first forward and the update,
  minus before the first forward.

The prediction is :func:`dualreal_bench.analysis.inspection.inspect_method` on the meta device
with the same transformer (``--blocks``), frame count, batch, micro-batch and checkpointing.
Each configuration runs in its own process, one after the other, under ``nice -n 19``.

Usage::

    nice -n 19 python scripts/bench_memory_model.py                 # the 6 default runs
    python scripts/bench_memory_model.py --runs dualreal:1:on --json out.json
    python scripts/bench_memory_model.py --from-json out.json       # the table again, no runs
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from typing import Any

#: method:micro_batch:checkpointing ("full": no micro-batching)
DEFAULT_RUNS = (
    "dualreal:full:on",
    "dualreal:1:on",
    "lora:full:on",
    "lora:1:on",
    "dualreal:full:off",
    "lora:full:off",
)
BATCH = 3  # DualReal's motion batch, for both methods
HEIGHT, WIDTH, TEXT_TOKENS = 480, 720, 226
ROWS = ("saved activations", "gradients", "optimizer states", "peak of forward + backward")


# ---- the child: one measured step ------------------------------------------------------------
def build_backbone(args: argparse.Namespace, checkpointing: bool) -> Any:
    """CogVideoX-5B's transformer with ``args.blocks`` blocks (random bf16 weights) behind the
    backbone interface; the text encoder and VAE are the tiny ones (never used: the latents and
    prompt embeddings are given)."""
    import torch
    from diffusers import CogVideoXTransformer3DModel

    from dualreal_bench.backbone import Backbone, BackboneConfig
    from dualreal_bench.backbone.loading import build_tiny
    from dualreal_bench.backbone.profiles import COGVIDEOX_5B_TRANSFORMER, get_profile

    config = BackboneConfig.for_profile("cogvideox-5b", backbone_overrides(args, checkpointing))
    components = build_tiny(BackboneConfig(), get_profile("tiny"))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        components.transformer = CogVideoXTransformer3DModel(
            **{**COGVIDEOX_5B_TRANSFORMER, "num_layers": args.blocks}
        ).to(torch.bfloat16)
    return Backbone(config, components)


def backbone_overrides(args: argparse.Namespace, checkpointing: bool) -> list[str]:
    return [
        f"num_frames={args.frames}",
        "device=cpu",
        f"gradient_checkpointing={str(checkpointing).lower()}",
    ]


def synthetic_data(backbone: Any, cond_dim: int) -> Any:
    import torch
    from dualreal_bench.methods._common.data import TrainingData

    g = torch.Generator().manual_seed(0)
    frames = backbone.config.latent_frames
    channels = int(backbone.transformer.config.in_channels)
    h, w = backbone.config.height // 8, backbone.config.width // 8
    embeds = torch.randn(2, TEXT_TOKENS, 4096, generator=g).to(torch.bfloat16)
    return TrainingData(
        identity_latents=[torch.randn(1, 1, channels, h, w, generator=g) for _ in range(2)],
        motion_latents=[torch.randn(1, frames, channels, h, w, generator=g) for _ in range(BATCH)],
        motion_conditions=torch.randn(BATCH, cond_dim, generator=g),
        reference_embedding=torch.randn(1, cond_dim, generator=g),
        identity_prompt_embeds=embeds[:1],
        motion_prompt_embeds=embeds[1:],
        identity_prompt="a toy *",
        motion_prompt="a person is swinging",
        condition_frames=[0] * BATCH,
        class_noun="toy",
    )


def method_overrides(method: str, micro: str) -> list[str]:
    """One motion step of ``BATCH`` clips."""
    common = [f"motion_batch_size={BATCH}", "lr_warmup_steps=0"]
    if micro != "full":
        common.append(f"micro_batch={micro}")
    if method == "dualreal":
        return [*common, "max_train_steps=1", "motion_ratio=0.999"]  # a motion step
    if method == "lora":
        return [*common, "identity_steps=0", "motion_steps=1"]
    raise SystemExit(f"unknown method {method!r}")


class Marks:
    """Named moments of the step, as zero-length profiler ranges."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def __call__(self, name: str) -> None:
        import torch

        with torch.profiler.record_function(f"mark:{len(self.names)}:{name}"):
            pass
        self.names.append(name)


def measure(run: str, args: argparse.Namespace) -> dict[str, Any]:
    """One training step of ``run`` (method:micro:checkpointing) with the allocator traced."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    from dualreal_bench.method import get_method_class

    method_name, micro, ckpt = run.split(":")
    torch.set_num_threads(args.threads)
    backbone = build_backbone(args, ckpt == "on")
    cls = get_method_class(method_name)
    config = cls.config_class().with_overrides(method_overrides(method_name, micro))
    torch.manual_seed(0)
    method = cls(backbone, config)
    data = synthetic_data(backbone, int(getattr(config, "cond_dim", 1024)))
    marks = Marks()
    original_loss = backbone.training_loss
    original_backward = torch.Tensor.backward
    original_clip = torch.nn.utils.clip_grad_norm_
    stepped: dict[str, Any] = {}

    def training_loss(*a: Any, **k: Any) -> Any:
        marks("forward start")
        out = original_loss(*a, **k)
        marks("forward end")
        return out

    def tensor_backward(self: Any, *a: Any, **k: Any) -> Any:
        out = original_backward(self, *a, **k)
        marks("backward end")
        return out

    def clip(params: Any, *a: Any, **k: Any) -> Any:
        params = list(params)
        stepped["params"] = [p for p in params if p.grad is not None]
        marks("update start")
        return original_clip(params, *a, **k)

    def on_step(*_: Any) -> None:
        marks("step end")

    backbone.training_loss = training_loss
    torch.Tensor.backward = tensor_backward
    torch.nn.utils.clip_grad_norm_ = clip
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        trace = os.path.join(tmp, "trace.json")
        with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
            marks("fit start")
            method.fit(data, step_callback=on_step)
        seconds = time.perf_counter() - start
        prof.export_chrome_trace(trace)
        with open(trace, encoding="utf-8") as fh:
            events = json.load(fh)["traceEvents"]
    torch.Tensor.backward = original_backward
    torch.nn.utils.clip_grad_norm_ = original_clip
    timeline = _timeline(events)
    stepped_params = stepped.get("params", [])
    return {
        "run": run,
        "method": method_name,
        "micro_batch": None if micro == "full" else int(micro),
        "checkpointing": ckpt == "on",
        "blocks": args.blocks,
        "frames": args.frames,
        "batch": BATCH,
        "seconds": seconds,
        "threads": args.threads,
        "measured": _rows(timeline),
        "stepped_parameters": sum(p.numel() for p in stepped_params),
        "stepped_parameter_bytes": sum(p.numel() * p.element_size() for p in stepped_params),
        "torch": torch.__version__,
    }


def _timeline(events: list[dict]) -> list[tuple[float, str, int | None]]:
    """``(time, mark name or "", total allocated or None)`` in time order."""
    out = []
    for e in events:
        name = e.get("name", "")
        if name == "[memory]":
            out.append((float(e["ts"]), "", int(e["args"]["Total Allocated"])))
        elif name.startswith("mark:") and e.get("ph") == "X":
            out.append((float(e["ts"]), name.split(":", 2)[2], None))
    out.sort(key=lambda x: x[0])
    return out


def _rows(timeline: list[tuple[float, str, int | None]]) -> dict[str, int]:
    """The compared rows from the allocation timeline (see the module doc)."""
    total, moments = 0, {}  # mark -> the totals allocated at each of its occurrences
    for _, name, allocated in timeline:
        if allocated is not None:
            total = allocated
        else:
            moments.setdefault(name, []).append(total)
    start = moments["forward start"][0]
    return {
        "saved activations": moments["forward end"][0] - start,
        "gradients": moments["backward end"][-1] - start,
        "optimizer states": moments["step end"][0] - moments["update start"][0],
        "peak of forward + backward": _window_peak(timeline) - start,
    }


def _window_peak(timeline: list[tuple[float, str, int | None]]) -> int:
    """The highest total allocated between the first forward start and the update start."""
    total, inside, peak = 0, False, 0
    for _, name, allocated in timeline:
        if allocated is not None:
            total = allocated
            if inside:
                peak = max(peak, total)
        elif name == "forward start" and not inside:
            inside, peak = True, total
        elif name == "update start" and inside:
            break
    return peak


# ---- the prediction ---------------------------------------------------------------------------
def predict(result: dict[str, Any], args: argparse.Namespace) -> dict[str, int]:
    """The estimator's rows for the run's configuration (meta device)."""
    from dualreal_bench.analysis.inspection import inspect_method

    micro = "full" if result["micro_batch"] is None else str(result["micro_batch"])
    inspected = inspect_method(
        result["method"],
        "cogvideox-5b",
        method_overrides(result["method"], micro),
        backbone_overrides=backbone_overrides(args, result["checkpointing"]),
        transformer_overrides={"num_layers": result["blocks"]},
        optimizer="adamw",
        offload_encoders=True,
    )
    stage = next(s for s in inspected["memory"]["stages"] if s["name"].endswith("motion"))
    rows = stage["bytes"]
    per_param = rows["optimizer states"] / max(stage["trainable_parameters"], 1)
    return {
        "saved activations": rows["activations: saved by the forward"],
        "gradients": rows["gradients"],
        "optimizer states": int(per_param * result["stepped_parameters"]),
        "peak of forward + backward": rows["activations: saved by the forward"]
        + rows["activations: one block (recomputed)"]
        + rows["activations: backward workspace"]
        + rows["gradients"],
    }


# ---- the driver -------------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--runs",
        default=",".join(DEFAULT_RUNS),
        help="method:micro_batch:checkpointing,... (micro_batch 'full' = none; default: %(default)s)",
    )
    p.add_argument("--blocks", type=int, default=2, help="transformer blocks (default 2)")
    p.add_argument(
        "--frames",
        type=int,
        default=9,
        help="pixel frames at 480x720 (1 + 4k; 49 = a full clip; default 9 = 3 latent frames)",
    )
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    p.add_argument("--json", help="write every run (measured and predicted) to this file")
    p.add_argument("--from-json", help="print the table of a previous --json file; no runs")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def _child(run: str, args: argparse.Namespace) -> dict[str, Any]:
    cmd = [
        sys.executable,
        os.path.abspath(__file__),
        "--worker",
        run,
        "--blocks",
        str(args.blocks),
        "--frames",
        str(args.frames),
        "--threads",
        str(args.threads),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        return {"run": run, "error": " | ".join(tail)}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def table(results: list[dict[str, Any]]) -> str:
    """Markdown: one line per (run, row): measured, predicted, error."""
    lines = [
        "| run | row | measured (MiB) | predicted (MiB) | error |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for r in results:
        if "error" in r:
            lines.append(f"| {r['run']} | failed: {r['error']} | | | |")
            continue
        for row in ROWS:
            m, p = r["measured"][row], r["predicted"][row]
            err = (p - m) / m if m else float("nan")
            lines.append(
                f"| {r['run']} | {row} | {m / 2**20:,.1f} | {p / 2**20:,.1f} | {err:+.1%} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        print(json.dumps(measure(args.worker, args)))
        return 0
    if args.from_json:
        with open(args.from_json, encoding="utf-8") as fh:
            results = json.load(fh)["runs"]
        for r in results:
            if "error" not in r:
                r["predicted"] = predict(r, argparse.Namespace(**r["args"]))
        print(table(results))
        return 0
    results = []
    for run in args.runs.split(","):
        print(f"running {run} ...", file=sys.stderr, flush=True)
        result = _child(run, args)
        if "error" not in result:
            result["args"] = {"blocks": args.blocks, "frames": args.frames, "threads": args.threads}
            result["predicted"] = predict(result, args)
            print(f"  {result['seconds']:.0f} s", file=sys.stderr, flush=True)
        results.append(result)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump({"runs": results}, fh, indent=2)
    print(table(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
