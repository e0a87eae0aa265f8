"""Training within less memory, computing the same thing (issue 16): exact micro-batching and
the text encoder + VAE offloaded around the loop, on the tiny backbone.

Oracles: the same step without micro-batching (the gradient of the whole batch), and the same
run without offload. Tolerance of the gradient comparisons: the tiny backbone runs in float32
(eps 1.2e-7); splitting a batch changes only the order in which weight gradients sum their
per-token terms (a few thousand per tensor here), which moves a gradient by a few eps relative
to the tensor's largest entry (measured: <= 9e-7). ``RTOL = 1e-5`` of the tensor's largest
entry leaves a 10x margin and is 5 orders of magnitude below what a wrong draw or a wrong
scale gives (the control test below shows a naive split failing it by far).
"""

from __future__ import annotations

import dataclasses

import pytest
import torch
from dualreal_bench.methods._common.data import TrainingData
from dualreal_bench.methods._common.loop import (
    Stage,
    backward,
    draw_batch,
    micro_batches,
    run_stage,
)
from dualreal_bench.methods._common.optim import OptimizerSettings
from dualreal_bench.methods.dreamvideo import DreamVideoConfig, DreamVideoMethod
from dualreal_bench.methods.dualreal import DualRealConfig, DualRealMethod
from dualreal_bench.methods.lora import LoRAConfig, LoRAMethod
from dualreal_bench.methods.motionbooth import MotionBoothConfig, MotionBoothMethod
from dualreal_bench.methods.motionbooth.data import MotionBoothData, PreservationPool

from dualreal_bench.backbone import BackboneConfig, load_backbone
from dualreal_bench.backbone import model as backbone_model
from dualreal_bench.errors import ConfigError

COND = 16
RTOL = 1e-5


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def synthetic_data(backbone, seed: int = 0) -> TrainingData:
    """4 images and 3 clips (so batches of 3 can be split), with image conditions."""
    g = torch.Generator().manual_seed(seed)
    frames, channels, h, w = backbone.latent_shape
    embeds = backbone.encode_prompts(["a toy *", "a person is swinging"])
    return TrainingData(
        identity_latents=[torch.randn(1, 1, channels, h, w, generator=g) for _ in range(4)],
        motion_latents=[torch.randn(1, frames, channels, h, w, generator=g) for _ in range(3)],
        motion_conditions=torch.randn(3, COND, generator=g),
        reference_embedding=torch.randn(1, COND, generator=g),
        identity_prompt_embeds=embeds[:1],
        motion_prompt_embeds=embeds[1:],
        identity_prompt="a toy *",
        motion_prompt="a person is swinging",
        condition_frames=[0, 0, 0],
        class_noun="toy",
    )


def assert_same_gradients(full: dict, split: dict) -> None:
    assert full.keys() == split.keys()
    compared = 0
    for name, g in full.items():
        if g is None:  # masked (DualReal) or untouched: so must the split one be
            assert split[name] is None, name
            continue
        scale = float(g.abs().max())
        torch.testing.assert_close(split[name], g, rtol=0.0, atol=RTOL * scale, msg=name)
        compared += scale > 0  # (a zero-initialised gate can leave a gradient exactly 0)
    present = sum(g is not None for g in full.values())
    assert compared >= present // 2, "too few non-zero gradients to prove anything"


# ---- micro-batching -------------------------------------------------------------------------
def dualreal_step_gradients(backbone, kind: str, micro_batch: int | None) -> dict:
    """Gradients of DualReal's first joint step (forced to ``kind`` by motion_ratio), after the
    gradient mask, before the update clears them."""
    config = DualRealConfig(
        cond_dim=COND,
        image_encoder="tiny",
        identity_batch_size=3,
        motion_batch_size=3,
        max_train_steps=1,
        lr_warmup_steps=0,
        motion_ratio=0.999 if kind == "motion" else 0.001,
        max_grad_norm=1e9,  # no clipping: the raw accumulated gradients are compared
        micro_batch=micro_batch,
    )
    torch.manual_seed(0)  # the adapters' initialisation
    method = DualRealMethod(backbone, config, zero_init_up=False)
    out: dict = {}

    def capture(step_kind: str, step: int) -> None:
        out["kind"] = step_kind
        out["grads"] = {
            n: None if p.grad is None else p.grad.clone()
            for n, p in method.model.named_parameters()
        }

    try:
        method.fit(synthetic_data(backbone), step_callback=capture)
    finally:
        method.teardown()
    assert out["kind"] == kind
    return out["grads"]


@pytest.mark.parametrize("kind", ["identity", "motion"])
@pytest.mark.parametrize("micro_batch", [1, 2])
def test_dualreal_micro_batches_accumulate_the_whole_batch_gradient(backbone, kind, micro_batch):
    full = dualreal_step_gradients(backbone, kind, None)
    split = dualreal_step_gradients(backbone, kind, micro_batch)
    # the mask: the inactive dimension has no gradient at all, the active one and the controller do
    inactive = "motion" if kind == "identity" else "identity"
    assert all(g is None for n, g in full.items() if f".{inactive}." in n)
    assert any(g is not None for n, g in full.items() if f".{kind}." in n)
    assert any(g is not None for n, g in full.items() if n.startswith("controller."))
    assert_same_gradients(full, split)


def test_naive_micro_batches_fail_the_tolerance(backbone):
    """The control: micro-batches that draw their own noise and timesteps (the naive split) or
    are not scaled by their share give another gradient, far outside RTOL."""
    data = synthetic_data(backbone)
    latents = torch.cat(data.motion_latents)
    torch.manual_seed(0)
    method = DualRealMethod(backbone, DualRealConfig(cond_dim=COND), zero_init_up=False)
    params = [p for p in method.model.parameters()]
    try:
        for p in params:
            p.requires_grad_(True)

        def grads(run) -> dict:
            for p in params:
                p.grad = None
            run(torch.Generator().manual_seed(5))
            return {i: p.grad.clone() for i, p in enumerate(params) if p.grad is not None}

        def exact(gen):
            backward(draw_batch(backbone, latents, data.motion_prompt_embeds, gen),
                     micro_batch=1, where="test")  # fmt: skip

        def fresh_draws(gen):
            for part in micro_batches(3, 1):
                batch = draw_batch(backbone, latents[part], data.motion_prompt_embeds, gen)
                backward(batch, micro_batch=None, where="test")  # scaled 1/3 below
            for p in params:
                if p.grad is not None:
                    p.grad /= 3

        def unscaled(gen):
            batch = draw_batch(backbone, latents, data.motion_prompt_embeds, gen)
            for part in micro_batches(3, 1):
                sub = dataclasses.replace(
                    batch,
                    latents=batch.latents[part],
                    timesteps=batch.timesteps[part],
                    noise=batch.noise[part],
                )
                backward(sub, micro_batch=None, where="test")

        def whole(gen):
            backward(draw_batch(backbone, latents, data.motion_prompt_embeds, gen),
                     micro_batch=None, where="test")  # fmt: skip

        reference = grads(whole)
        assert_same_gradients(reference, grads(exact))
        for wrong in (fresh_draws, unscaled):
            with pytest.raises(AssertionError):
                assert_same_gradients(reference, grads(wrong))
    finally:
        for p in params:
            p.requires_grad_(False)
            p.grad = None
        method.teardown()


def stage_gradients(method, data, **fit_kwargs) -> dict:
    """``{stage: {name: grad}}`` of each stage's first step."""
    out: dict = {}

    def capture(stage: str, step: int) -> None:
        if step == 0:
            out[stage] = {
                n: p.grad.clone()
                for n, p in method.backbone.transformer.named_parameters()
                if p.grad is not None
            }
            if getattr(method, "model", None) is not None:
                out[stage] |= {
                    f"adapters.{n}": p.grad.clone()
                    for n, p in method.model.named_parameters()
                    if p.grad is not None
                }

    method.fit(data, step_callback=capture, **fit_kwargs)
    return out


@pytest.mark.parametrize("micro_batch", [1, 2])
def test_lora_micro_batches_accumulate_the_whole_batch_gradient(backbone, micro_batch):
    def run(micro):
        config = LoRAConfig(rank=4, lora_alpha=4.0, init_lora_weights=False,
                            identity_steps=1, motion_steps=1, identity_batch_size=3,
                            motion_batch_size=3, max_grad_norm=1e9, micro_batch=micro)  # fmt: skip
        method = LoRAMethod(backbone, config)
        try:
            return stage_gradients(method, synthetic_data(backbone))
        finally:
            method.teardown()

    full, split = run(None), run(micro_batch)
    assert set(full) == {"identity", "motion"}
    for stage in full:
        assert full[stage] and all(f"_lora_{stage}." in n for n in full[stage])
        assert_same_gradients(full[stage], split[stage])


def test_dreamvideo_motion_micro_batches_keep_each_clips_dropped_condition(backbone):
    """DreamVideo's motion step drops the image condition and the caption per clip (p = 0.5
    each): the drops are drawn for the whole batch, so micro-batches keep them."""

    def run(micro):
        config = DreamVideoConfig(cond_dim=COND, image_encoder="tiny", textual_inversion=False,
                                  identity_steps=0, motion_steps=1, motion_batch_size=3,
                                  p_image_zero=0.5, p_text_zero=0.5, max_grad_norm=1e9,
                                  micro_batch=micro)  # fmt: skip
        torch.manual_seed(0)
        method = DreamVideoMethod(backbone, config, zero_init_up=False)
        try:
            return stage_gradients(method, synthetic_data(backbone))
        finally:
            method.teardown()

    full, split = run(None), run(1)
    assert list(full) == ["motion"]
    assert_same_gradients(full["motion"], split["motion"])


def motionbooth_data(backbone, seed: int = 0) -> MotionBoothData:
    """5 subject images with masks of different coverage (so each micro-batch's share of the
    batch's masked mean differs from its own masked mean), soft attention targets, and 3
    unrelated clips."""
    g = torch.Generator().manual_seed(seed)
    frames, channels, h, w = backbone.latent_shape
    patch = int(backbone.transformer.config.patch_size)
    tokens = (h // patch) * (w // patch)
    masks = [(torch.rand(1, 1, 1, h, w, generator=g) < c).float() for c in (0.2, 0.9, 0.5, 1, 0.4)]
    embeds = backbone.encode_prompts(["a toy sks", "a person is waving", "a person is biking"])
    clips = [torch.randn(1, frames, channels, h, w, generator=g) for _ in range(3)]
    return MotionBoothData(
        image_latents=[torch.randn(1, 1, channels, h, w, generator=g) for _ in range(5)],
        region_masks=masks,
        attention_targets=[torch.rand(1, tokens, generator=g) for _ in masks],
        image_prompt_embeds=embeds[:1],
        image_prompt="a toy sks",
        subject_positions=torch.tensor([1, 2]),
        videos=PreservationPool.from_tensors(clips, [embeds[1:2], embeds[2:3], embeds[1:2]]),
    )


def motionbooth_step_gradients(backbone, micro_batch: int | None, **overrides) -> dict:
    """The transformer's gradients after MotionBooth's first step (images + clips)."""
    config = MotionBoothConfig(**{"max_train_steps": 1, "identity_batch_size": 5,
                                  "motion_batch_size": 3, "max_grad_norm": 1e9,
                                  "micro_batch": micro_batch, **overrides})  # fmt: skip
    method = MotionBoothMethod(backbone, config)
    out: dict = {}

    def capture(stage: str, step: int) -> None:
        out.update(
            {
                n: p.grad.clone()
                for n, p in backbone.transformer.named_parameters()
                if p.grad is not None
            }
        )

    try:
        stats = method.fit(motionbooth_data(backbone), step_callback=capture)
    finally:
        method.teardown()
    parts = 1 + (config.video_loss_weight > 0)
    assert stats["micro_batch"] == micro_batch and stats["micro_batches_per_step"] == parts
    return out


@pytest.mark.parametrize("micro_batch", [1, 2])
def test_motionbooth_micro_batches_accumulate_the_whole_batch_gradient(backbone, micro_batch):
    """MotionBooth's step (the region loss as a masked mean over the whole image batch, the
    subject-token cross-attention loss, the preservation loss on clips) in micro-batches of
    images and of clips: the gradient of the whole batch."""
    full = motionbooth_step_gradients(backbone, None)
    assert len(full) == len(list(backbone.transformer.parameters()))  # full fine-tuning
    assert_same_gradients(full, motionbooth_step_gradients(backbone, micro_batch))
    # without the mask (the plain image loss) and with gradient checkpointing (the recorded
    # attention recomputed in backward) as well
    options = {"mask_region_loss": False, "gradient_checkpointing": True}
    assert_same_gradients(
        motionbooth_step_gradients(backbone, None, **options),
        motionbooth_step_gradients(backbone, micro_batch, **options),
    )


def test_motionbooth_step_is_the_half_sum_of_its_two_losses(backbone):
    """The oracle for the step itself, written out by hand: the same draws (items from the
    seeded loaders, then the images' and the clips' timesteps and noise from one generator),
    the gradient of ``(w_r * masked mean + w_c * cross-attention BCE) / 2 + w_v * plain / 2``
    (MotionBooth's two micro-batches with gradient accumulation 2); the method's step, whole
    or in micro-batches of 2, gives it."""
    import random

    from dualreal_bench.methods._common.data import EpochLoader, stack_batch
    from dualreal_bench.methods.motionbooth.attention import SubjectAttentionStore
    from dualreal_bench.methods.motionbooth.losses import cross_attention_loss, masked_mean

    cfg = MotionBoothConfig(identity_batch_size=5, motion_batch_size=3)
    data = motionbooth_data(backbone)
    rng = random.Random(cfg.seed)
    images, clips = EpochLoader(5, 5, rng).next(), EpochLoader(3, 3, rng).next()
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    params = list(backbone.transformer.parameters())
    store = SubjectAttentionStore()
    store.attach(backbone.transformer)
    try:
        for p in params:
            p.requires_grad_(True)
        x = stack_batch(data.image_latents, images)
        t, noise = backbone.draw_training_noise(x, gen)
        with store.record(data.subject_positions):
            error = backbone.denoising_error(x, data.image_prompt_embeds, timesteps=t, noise=noise)
            mask = torch.cat([data.region_masks[i] for i in images])
            target = torch.cat([data.attention_targets[i] for i in images])
            image_loss = cfg.region_loss_weight * masked_mean(error, mask)
            image_loss = image_loss + cfg.cross_attn_loss_weight * cross_attention_loss(
                store.aggregate(), target
            )
            v = torch.cat([data.videos.latents(i) for i in clips])
            tv, noise_v = backbone.draw_training_noise(v, gen)
            embeds = torch.cat([data.videos.embeds(i) for i in clips])
            video_loss = cfg.video_loss_weight * backbone.training_loss(
                v, embeds, timesteps=tv, noise=noise_v
            )
            ((image_loss + video_loss) / 2).backward()
        reference = {n: p.grad.clone() for n, p in backbone.transformer.named_parameters()}
    finally:
        store.detach()
        for p in params:
            p.grad = None
            p.requires_grad_(False)
    for micro_batch in (None, 2):
        assert_same_gradients(reference, motionbooth_step_gradients(backbone, micro_batch))


def test_motionbooth_naive_micro_batches_fail_the_tolerance(backbone, monkeypatch):
    """The control: each micro-batch of images taking its own masked mean (not its share of
    the batch's) gives another gradient."""
    from dualreal_bench.methods.motionbooth import training as motionbooth_training

    full = motionbooth_step_gradients(backbone, None, video_loss_weight=0)
    monkeypatch.setattr(
        motionbooth_training,
        "masked_share",
        lambda error, mask, count: (error * mask).sum() / mask.expand_as(error).sum(),
    )
    with pytest.raises(AssertionError):
        assert_same_gradients(full, motionbooth_step_gradients(backbone, 2, video_loss_weight=0))


def test_micro_batch_options_and_errors(backbone):
    assert [(s.start, s.stop) for s in micro_batches(3, 2)] == [(0, 2), (2, 3)]
    assert [(s.start, s.stop) for s in micro_batches(3, None)] == [(0, 3)]
    assert [(s.start, s.stop) for s in micro_batches(3, 5)] == [(0, 3)]
    with pytest.raises(ConfigError, match="micro_batch must be >= 1"):
        LoRAConfig(micro_batch=0)
    with pytest.raises(ConfigError, match="memory_budget"):
        DualRealConfig(memory_budget="lots")
    # the same method: neither option changes the variant key
    torch.manual_seed(0)
    plain = DualRealMethod(backbone, DualRealConfig(cond_dim=COND))
    key = plain.variant_key()
    plain.teardown()
    other = DualRealMethod(
        backbone, DualRealConfig(cond_dim=COND, micro_batch=1, memory_budget="24GiB")
    )
    try:
        assert other.variant_key() == key
        with pytest.raises(ConfigError, match="apply_memory_budget"):
            other.memory_settings()  # a budget is planned outside the method, never ignored
    finally:
        other.teardown()


def test_a_stage_computing_its_loss_in_one_piece_refuses_micro_batches(backbone):
    data = synthetic_data(backbone)
    param = torch.nn.Parameter(torch.zeros(()))

    def loss_fn(idx, latents, gen):
        return backbone.training_loss(latents, data.identity_prompt_embeds, generator=gen) + param

    stage = Stage("custom", 1, [param], data.identity_latents, 3, loss_fn,
                  OptimizerSettings(learning_rate=1e-3), micro_batch=1)  # fmt: skip
    with pytest.raises(ConfigError, match="cannot be micro-batched"):
        run_stage(stage, device=backbone.device, seed=0, max_grad_norm=1.0)
    whole = run_stage(dataclasses.replace(stage, micro_batch=None), device=backbone.device,
                      seed=0, max_grad_norm=1.0)  # fmt: skip
    assert whole["steps"] == 1


# ---- encode once, then free -------------------------------------------------------------------
class Placement:
    """Records, for the text encoder and the VAE, every move (``Module.to``) and, at every
    transformer / encoder forward, where each encoder last went."""

    def __init__(self, backbone):
        self.backbone = backbone
        self.where = {name: "device" for name in backbone_model.ENCODERS}
        self.events: list[tuple[str, dict]] = []
        self._undo = []
        for name in backbone_model.ENCODERS:
            module = getattr(backbone, name)
            original = module.to

            def to(*args, _name=name, _original=original, **kwargs):
                target = (
                    torch.device(args[0]) if args and not isinstance(args[0], torch.dtype) else None
                )
                if target is not None:
                    self.where[_name] = (
                        "offloaded" if target == backbone_model.OFFLOAD_DEVICE else "device"
                    )
                return _original(*args, **kwargs)

            module.to = to
            self._undo.append(lambda m=module: m.__dict__.pop("to"))
        for name in ("transformer", "text_encoder"):
            handle = getattr(backbone, name).register_forward_pre_hook(
                lambda mod, args, _name=name: self.events.append((_name, dict(self.where)))
            )
            self._undo.append(handle.remove)
        vae = backbone.vae
        for method in ("encode", "decode"):  # the VAE runs through these, not forward
            original = getattr(vae, method)

            def call(*args, _original=original, **kwargs):
                self.events.append(("vae", dict(self.where)))
                return _original(*args, **kwargs)

            setattr(vae, method, call)
            self._undo.append(lambda m=method: vae.__dict__.pop(m))

    def close(self):
        for undo in self._undo:
            undo()


def train_and_generate(offload: str, case, monkeypatch, *, method_class=DualRealMethod, **config):
    """A tiny backbone with ``offload``; DualReal (or another method) trained on ``case`` and
    one video generated; returns (loss curve, state, frames, placement events)."""
    # a device object that differs from the backbone's "cpu" but is the same memory: moves
    # happen (and are recorded) on a CPU-only machine
    monkeypatch.setattr(backbone_model, "OFFLOAD_DEVICE", torch.device("cpu", 0))
    backbone = load_backbone("tiny", [f"offload={offload}"])
    placement = Placement(backbone)
    torch.manual_seed(0)
    method = method_class(backbone, method_class.config_class(**config))
    try:
        stats = method.train(case)
        train_events = list(placement.events)
        placement.events.clear()
        frames = method.generate([case.prompts[0]], seed=0)[0]
        state = {k: v.clone() for k, v in method.state_dict().items()}
    finally:
        method.teardown()
        placement.close()
    assert all(n == 0 for n in backbone._holds.values())
    loss = stats["loss"] if "loss" in stats else stats["identity_loss"] + stats["motion_loss"]
    return loss, state, frames, (train_events, list(placement.events))


@pytest.mark.parametrize(
    "method_class, config",
    [
        (DualRealMethod, {"max_train_steps": 4, "image_encoder": "tiny"}),
        (LoRAMethod, {"identity_steps": 2, "motion_steps": 2, "rank": 4, "lora_alpha": 4.0}),
        (MotionBoothMethod, {"max_train_steps": 4, "learning_rate": 1e-3}),
    ],
)
def test_offloaded_encoders_train_and_generate_identically(
    smoke_case, monkeypatch, method_class, config
):
    loss, state, frames, _ = train_and_generate(
        "none", smoke_case, monkeypatch, method_class=method_class, **config
    )
    loss_o, state_o, frames_o, (train, generation) = train_and_generate(
        "encoders", smoke_case, monkeypatch, method_class=method_class, **config
    )
    assert loss_o == loss and len(loss) == 4
    assert state_o.keys() == state.keys()
    assert all(torch.equal(state_o[k], state[k]) for k in state)
    assert (frames_o == frames).all()
    # training: the encoders ran only before the loop, each on the device while it ran, and
    # every training forward of the transformer found both offloaded
    first = next(i for i, (name, _) in enumerate(train) if name == "transformer")
    assert first > 0 and all(name == "transformer" for name, _ in train[first:])
    for name, where in train:
        if name == "transformer":
            assert where == {"text_encoder": "offloaded", "vae": "offloaded"}
        else:
            assert where[name] == "device"
    # generation: the text encoder for the prompts, the VAE for decoding, never beside the
    # denoising transformer
    names = [name for name, _ in generation]
    assert names[0] == "text_encoder" and names[-1] == "vae" and "transformer" in names
    assert all(
        where == {"text_encoder": "offloaded", "vae": "offloaded"}
        for name, where in generation
        if name == "transformer"
    )


def test_offload_is_switchable_and_contradicting_options_are_refused(monkeypatch):
    monkeypatch.setattr(backbone_model, "OFFLOAD_DEVICE", torch.device("cpu", 0))
    backbone = load_backbone("tiny")
    placement = Placement(backbone)
    try:
        backbone.set_offload("encoders")
        assert placement.where == {"text_encoder": "offloaded", "vae": "offloaded"}
        with backbone.on_device("vae"), backbone.on_device("vae", "text_encoder"):
            assert placement.where == {"text_encoder": "device", "vae": "device"}
        assert placement.where == {"text_encoder": "offloaded", "vae": "offloaded"}
        backbone.set_offload("none")
        assert placement.where == {"text_encoder": "device", "vae": "device"}
        with pytest.raises(ValueError, match="unknown module"):
            with backbone.on_device("transformer"):
                pass
    finally:
        placement.close()
    with pytest.raises(ConfigError, match="offload"):
        load_backbone("tiny", ["offload=everything"])
    with pytest.raises(ConfigError, match="contradict"):
        BackboneConfig(profile="tiny", device="cuda", offload="encoders", cpu_offload=True)
