"""The memory model and ``memory_budget`` (issue 16): the live-bytes tracker against the CPU
allocator, the settings a budget chooses, ``inspect`` under the 24 GiB preset for CogVideoX-5B
(meta device), and the plan reaching a run.

Oracles: a hand-counted allocation sequence; PyTorch's CPU allocator as the profiler reports
it (the running total of bytes allocated); the estimates the planner itself reports for the
settings it did not choose (the chosen micro-batch is the largest that fits).
"""

from __future__ import annotations

import json

import pytest
import torch
from torch.profiler import ProfilerActivity, profile

from dualreal_bench.analysis.budget import HEADROOM, apply_memory_budget, plan_memory
from dualreal_bench.analysis.inspection import inspect_method
from dualreal_bench.analysis.params import build_meta_backbone
from dualreal_bench.analysis.tracker import LiveBytes
from dualreal_bench.backbone import load_backbone
from dualreal_bench.cli import main
from dualreal_bench.errors import ConfigError
from dualreal_bench.method import MemorySettings, get_method_class

GIB = 1024**3
LIMIT_24 = 24 * GIB - HEADROOM


pytestmark = pytest.mark.usefixtures("one_torch_thread")


# ---- the tracker --------------------------------------------------------------------------------
def test_live_bytes_counts_new_storages_until_they_die():
    x = torch.empty(1000, device="meta")  # made before: never counted
    with LiveBytes() as live:
        a = x * 2  # +4,000
        b = a.view(10, 100)  # a view: +0
        c = a + 1  # +4,000 -> 8,000 (the peak)
        del a, b  # the storage dies with its last tensor: -4,000
        c.add_(1)  # in place: +0
        s = c.sum()  # +4
        x[:10].mul_(2)  # in place on a tensor made before: +0
    assert (live.peak, live.current) == (8000, 4004)
    del c, s


def _allocator_peak(fn) -> int:
    """The CPU allocator's peak above its state at the start, as the profiler reports it: the
    running sum of every allocation and free it recorded."""
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    running, peak, seen = 0, 0, 0
    for record in prof.profiler.kineto_results.events():
        if record.name() == "[memory]":
            running += record.nbytes()
            peak, seen = max(peak, running), seen + 1
    assert seen, "the profiler recorded no allocation"
    return peak


def test_the_generation_forward_peak_on_meta_is_what_the_cpu_allocator_measures():
    """What the generation estimate rests on: the tracker counts exactly what the allocator
    allocates for a transformer forward (no grad, a batch of 2 as classifier-free guidance
    runs it), and the meta run (fused attention modelled) predicts the real one."""
    from dualreal_bench.analysis.memory import denoising_peak

    overrides = ["num_frames=9", "height=64", "width=64"]
    backbone = load_backbone("tiny", overrides)
    f, c, h, w = backbone.latent_shape
    g = torch.Generator().manual_seed(0)
    latents = torch.randn(2, f, c, h, w, generator=g)
    text = torch.randn(2, backbone.config.max_sequence_length,
                       backbone.transformer.config.text_embed_dim, generator=g)  # fmt: skip

    def forward():
        with torch.no_grad():
            return backbone.forward_transformer(latents, text, torch.tensor([3, 500]))

    forward()  # first-call allocations (caches) out of the way
    measured = _allocator_peak(forward)
    with LiveBytes() as live:
        forward()
    assert abs(live.peak - measured) <= 64  # (the timestep tensor, made outside any operator)
    predicted = denoising_peak(build_meta_backbone("tiny", overrides), 2)["peak_bytes"]
    assert abs(predicted - measured) <= 0.02 * measured, (predicted, measured)


def test_the_vae_decode_on_meta_allocates_the_tensors_the_cpu_run_does():
    """The decode estimate counts the tensors the decode allocates (meta = CPU but for a few
    small buffers). Convolution workspaces are not tensors and are not counted: the CPU's
    im2col buffers here; on CUDA, cuDNN chooses algorithms whose workspace fits the free
    memory."""
    from diffusers import AutoencoderKLCogVideoX

    from dualreal_bench.backbone.profiles import TINY_VAE

    torch.manual_seed(0)
    vae = AutoencoderKLCogVideoX(**TINY_VAE).eval()
    z = torch.randn(1, vae.config.latent_channels, 3, 8, 8)
    with torch.no_grad(), LiveBytes() as on_cpu:
        vae.decode(z)
    with torch.device("meta"):
        meta_vae = AutoencoderKLCogVideoX(**TINY_VAE).eval()
    with torch.no_grad(), LiveBytes() as on_meta:
        meta_vae.decode(z.to("meta"))
    assert on_cpu.peak > 4 * z.numel() * 4 * 3  # a real decode, not an empty one
    assert abs(on_meta.peak - on_cpu.peak) <= 0.001 * on_cpu.peak, (on_meta.peak, on_cpu.peak)


# ---- the budget's choice ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def dualreal_5b():
    backbone = build_meta_backbone("cogvideox-5b")
    cls = get_method_class("dualreal")
    method = cls(backbone, cls.config_class())
    yield method, backbone
    method.teardown()


@pytest.mark.parametrize(
    "budget_gib, micro_batch",
    [(24, 1), (30, 2), (40, None)],  # 24 GB cards; a 32 GB one; 48 GB fits the whole batch
)
def test_the_budget_chooses_the_largest_micro_batch_that_fits(dualreal_5b, budget_gib, micro_batch):
    method, backbone = dualreal_5b
    plan = plan_memory(method, backbone, budget_gib * GIB)
    assert plan.fits
    assert plan.settings == MemorySettings(
        micro_batch=micro_batch,
        offload_encoders=True,
        gradient_checkpointing=True,  # the real profiles' default, kept
        optimizer="adamw8bit",  # optimizer=auto on CUDA with bitsandbytes (the authors')
    )
    limit = budget_gib * GIB - HEADROOM
    assert plan.training["total_bytes"] <= limit and plan.generation["total_bytes"] <= limit
    # the next larger micro-batch (or the whole batch) would not have fitted
    totals = {s.micro_batch: total for s, total in plan.tried}
    larger = [m for m in totals if m is None or (micro_batch is not None and m > micro_batch)]
    assert all(totals[m] > limit for m in larger if m != micro_batch)
    # micro-batches shrink only the activations: fewer items, the same weights and states
    stage = next(s for s in plan.training["stages"] if s["name"] == "joint: motion")
    assert stage["batch_size"] == 3 and stage["micro_batch"] == (micro_batch or 3)


@pytest.fixture(scope="module")
def inspected_24gib():
    return {
        name: inspect_method(name, "cogvideox-5b", ["memory_budget=24GiB"])
        for name in ("dualreal", "lora", "dreamvideo", "sequential", "motionbooth")
    }


@pytest.mark.parametrize("name", ["dualreal", "lora", "dreamvideo"])
def test_inspect_under_24gib_fits_training_and_generation(inspected_24gib, name):
    result = inspected_24gib[name]
    budget, memory = result["budget"], result["memory"]
    assert budget["fits"] and budget["limit_bytes"] == LIMIT_24
    assert budget["settings"]["offload_encoders"] and budget["settings"]["gradient_checkpointing"]
    for total in (
        memory["total_bytes"],
        memory["encoding_bytes"],
        result["generation"]["total_bytes"],
    ):
        assert total <= LIMIT_24
    # generation: 49 frames at 480x720 with classifier-free guidance, the encoders offloaded
    generation = result["generation"]
    assert generation["batch_size"] == 2 and generation["offload_encoders"]
    assert set(generation["phase_totals"]) == {"text encoder", "denoising forward", "VAE decode"}
    # every stage of the method is under the limit, not only the one reported
    assert all(stage["total_bytes"] <= LIMIT_24 for stage in memory["stages"])


def test_dreamvideo_textual_inversion_keeps_the_text_encoder(inspected_24gib):
    stages = {s["name"]: s for s in inspected_24gib["dreamvideo"]["memory"]["stages"]}
    ti = stages["textual_inversion"]["bytes"]
    assert ti["text encoder (kept for this stage)"] == 4_762_310_656 * 2
    assert ti["activations: text encoder"] > 0
    assert stages["motion"]["bytes"]["text encoder (kept for this stage)"] == 0


def test_full_fine_tuning_cannot_fit_24gib_and_inspect_says_so(inspected_24gib, capsys):
    result = inspected_24gib["sequential"]
    budget = result["budget"]
    assert not budget["fits"]
    # the smallest estimate: every setting at its most frugal, still far above 24 GiB; fp32
    # master weights and gradients and 8-bit states of 5.57 B parameters, no bf16 copy
    assert budget["settings"]["micro_batch"] == 1
    assert budget["training_bytes"] == min(t["training_bytes"] for t in budget["tried"])
    rows = result["memory"]["bytes"]
    assert rows["frozen transformer"] == 0
    assert rows["learned parameters"] == rows["gradients"] == 5_570_283_072 * 4
    assert budget["training_bytes"] > 2 * LIMIT_24
    assert main(["inspect", "--method", "sequential", "--set", "memory_budget=24GiB"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "does not fit" in out
    assert f"{budget['training_bytes'] / GIB:.2f} GiB" in out


def test_motionbooth_cannot_fit_24gib_even_training_only_the_attentions(inspected_24gib):
    """MotionBooth fine-tunes the transformer itself (fp32 master weights under bf16 autocast:
    the whole transformer is cast): all 5.57 B weights do not fit 24 GiB, nor do the joint
    attentions alone (trained_parameters=attention) next to the rest of the transformer in
    fp32; inspect says so with the smallest estimate."""
    full = inspected_24gib["motionbooth"]
    assert not full["budget"]["fits"]
    assert {s["name"] for s in full["memory"]["stages"]} == {"images", "videos"}
    rows = full["memory"]["bytes"]
    assert rows["learned parameters"] == rows["gradients"] == 5_570_283_072 * 4
    attention = inspect_method(
        "motionbooth", "cogvideox-5b", ["memory_budget=24GiB", "trained_parameters=attention"]
    )
    budget = attention["budget"]
    assert not budget["fits"]
    assert budget["training_bytes"] == min(t["training_bytes"] for t in budget["tried"])
    assert LIMIT_24 < budget["training_bytes"] < full["budget"]["training_bytes"]
    rows = attention["memory"]["bytes"]
    trained = attention["trainable_total"]
    assert rows["learned parameters"] == rows["gradients"] == 4 * trained
    assert rows["frozen transformer"] == 4 * (5_570_283_072 - trained)  # cast to fp32 too


def test_inspect_json_under_a_budget(capsys):
    args = ["inspect", "--method", "lora", "--profile", "tiny", "--format", "json"]
    assert main([*args, "--set", "memory_budget=24GiB"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["budget"]["fits"] and result["budget"]["settings"]["micro_batch"] is None
    assert main([*args, "--set", "memory_budget=lots"]) == 2
    assert "memory_budget" in capsys.readouterr().err


# ---- the plan reaches the method ----------------------------------------------------------------
def test_apply_memory_budget_configures_the_method_and_the_backbone():
    backbone = load_backbone("tiny")
    cls = get_method_class("lora")
    method = cls(backbone, cls.config_class().with_overrides(["memory_budget=24GiB"]))
    try:
        plan = apply_memory_budget(method)
        assert plan.fits and method.memory_settings() == plan.settings
        assert backbone.config.offload == "encoders"  # generation offloads too
    finally:
        method.teardown()
    small = cls(backbone, cls.config_class().with_overrides(["memory_budget=1GiB"]))
    try:  # 1 GiB is less than the headroom: nothing fits, and the error says how much is needed
        with pytest.raises(ConfigError, match=r"memory_budget=1.0 GiB cannot hold .* GiB"):
            apply_memory_budget(small)
    finally:
        small.teardown()


def test_motionbooth_takes_the_plan_of_a_budget():
    backbone = load_backbone("tiny")
    cls = get_method_class("motionbooth")
    method = cls(backbone, cls.config_class().with_overrides(["memory_budget=24GiB"]))
    try:
        plan = apply_memory_budget(method)
        assert plan.fits and method.memory_settings() == plan.settings
    finally:
        method.teardown()
        backbone.set_offload("none")


def test_a_run_under_a_budget_records_its_plan(tmp_path):
    from dualreal_bench.run_config import RunConfig
    from dualreal_bench.runner import Runner

    config = RunConfig(method="lora", suite="smoke", num_prompts=1, output_dir=str(tmp_path),
                       method_overrides=("steps_scale=0.01", "rank=4", "lora_alpha=4",
                                         "memory_budget=24GiB"),
                       evaluate=False, progress=False, run_id="budget")  # fmt: skip
    Runner(config).run()
    (train,) = list(tmp_path.rglob("train.json"))
    stats = json.loads(train.read_text())
    assert stats["memory_plan"]["fits"] and stats["memory_plan"]["settings"]["offload_encoders"]
    assert stats["steps"] == 2 * 3  # the same schedule: 300 + 300 steps scaled by 0.01


def test_estimate_projects_the_same_steps_under_the_budget(capsys, monkeypatch, tmp_path):
    """``estimate`` under the budget: the plan's settings (micro-batches of 1 for DualReal on
    CogVideoX-5B) and the method's own 1,000 steps; on the tiny backbone the timed steps run
    under the plan."""
    from dualreal_bench.analysis.cost import estimate

    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # no weights: planned on meta only
    monkeypatch.delenv("DUALREAL_BENCH_DATA", raising=False)
    args = ["-q", "estimate", "--suite", "paper", "--method", "dualreal", "--format", "json"]
    assert main([*args, "--profile", "cogvideox-5b", "--set", "memory_budget=24GiB"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["planned_steps"] == 1000 and out["memory_plan"]["fits"]
    assert out["memory_plan"]["settings"]["micro_batch"] == 1
    tiny = estimate(method="lora", profile="tiny", steps=2,
                    method_overrides=["steps_scale=0.01", "rank=4", "memory_budget=24GiB"])  # fmt: skip
    assert tiny["planned_steps"] == 6 and tiny["memory_plan"]["fits"]
    assert tiny["training"]["step_seconds"] is not None
