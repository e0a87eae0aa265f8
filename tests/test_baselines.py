"""The baselines (``lora``, ``sequential``, ``dreamvideo``) on the tiny backbone: what each trains
(and nothing else), the loss on the smoke case, save -> load -> generate, LoRA fusion against a
hand-merged reference, the sequential stages, DreamVideo's hooks and token, and that every
method leaves the shared backbone exactly as it found it."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from dualreal_bench.methods._common.config import scaled_steps
from dualreal_bench.methods._common.data import prepare_case_data
from dualreal_bench.methods._common.image_encoder import tiny_image_encoder
from dualreal_bench.methods.dreamvideo import DreamVideoConfig, DreamVideoMethod
from dualreal_bench.methods.lora import LoRAConfig, LoRAMethod
from dualreal_bench.methods.sequential import SequentialConfig, SequentialMethod
from test_resilience_helpers import torch_threads

from dualreal_bench.errors import ConfigError, WeightsError
from dualreal_bench.method import build_method, get_method_class

COND = 16  # image-embedding width of the tiny condition encoder in these tests


# one torch thread per test; `backbone` (tiny) and `smoke_case` come from conftest.py
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def encoder():
    return tiny_image_encoder(COND)


@pytest.fixture(scope="module")
def smoke_data(backbone, smoke_case, encoder):
    """The smoke case encoded once (DualReal's preparation), with image conditions."""
    with torch_threads(1):
        return prepare_case_data(
            backbone,
            smoke_case,
            identity_prompt="a {class_noun} *",
            motion_prompt="a person is {action}",
            placeholder="keep",
            image_encoder=encoder,
            seed=0,
        )


@pytest.fixture
def made(backbone):
    """Methods built in a test; torn down afterwards, and the backbone checked to be untouched."""
    reference = {k: v.clone() for k, v in backbone.transformer.state_dict().items()}
    modules = [type(m) for m in backbone.transformer.modules()]
    methods = []
    yield methods
    for method in methods:
        method.teardown()
    state = backbone.transformer.state_dict()
    assert state.keys() == reference.keys()
    assert all(torch.equal(state[k], reference[k]) for k in reference), (
        "teardown left changed weights"
    )
    assert [type(m) for m in backbone.transformer.modules()] == modules, (
        "teardown left wrapped modules"
    )
    assert not any(p.requires_grad for p in backbone.transformer.parameters())
    assert not backbone.transformer._forward_hooks and all(
        not m._forward_hooks for m in backbone.transformer.modules()
    ), "teardown left hooks"


def snapshot(named):
    return {k: v.detach().clone() for k, v in named.items()}


def fixed_inputs(backbone, frames=None, seed=0):
    """Noisy latents, prompt embeddings and timesteps for comparing transformer outputs."""
    g = torch.Generator().manual_seed(seed)
    f, c, h, w = backbone.latent_shape
    latents = torch.randn(2, frames or f, c, h, w, generator=g)
    embeds = backbone.encode_prompts(["a toy * is swinging", "a person is swinging"])
    return latents, embeds, torch.tensor([150, 700])


def transformer_out(backbone, inputs):
    with torch.no_grad():
        return backbone.forward_transformer(*inputs)


def merged_out(transformer, backbone, inputs):
    """The output of a hand-merged copy of the transformer on ``inputs``."""
    with torch.no_grad():
        return transformer(
            hidden_states=inputs[0],
            encoder_hidden_states=inputs[1],
            timestep=inputs[2],
            image_rotary_emb=backbone.rotary_embeddings(inputs[0]),
            return_dict=False,
        )[0]


def fixed_loss(backbone, batches):
    """Mean training loss over fixed (noise, timestep) draws: comparable before/after training."""
    g = torch.Generator().manual_seed(123)
    total = []
    with torch.no_grad():
        for latents, embeds in batches:
            for t in (100, 350, 600, 850):
                noise = torch.randn(latents.shape, generator=g)
                total.append(
                    float(backbone.training_loss(latents, embeds, timesteps=t, noise=noise))
                )
    return float(np.mean(total))


def identity_batches(data):
    return [(lat, data.identity_prompt_embeds) for lat in data.identity_latents]


def motion_batches(data):
    return [(lat, data.motion_prompt_embeds) for lat in data.motion_latents]


# ---- registry and configs ----------------------------------------------------------------------
@pytest.mark.parametrize(
    "name, cls",
    [("lora", LoRAMethod), ("sequential", SequentialMethod), ("dreamvideo", DreamVideoMethod)],
)
def test_registered_by_name_with_paper_defaults(name, cls):
    assert get_method_class(name) is cls
    cfg = cls.config_class()
    if name == "lora":
        assert (cfg.learning_rate, cfg.identity_steps, cfg.motion_steps) == (1e-3, 300, 300)
        assert cfg.target_modules == ("to_q", "to_k", "to_v", "to_out.0")
    elif name == "sequential":
        assert (cfg.learning_rate, cfg.identity_steps, cfg.motion_steps) == (1e-4, 200, 130)
    else:
        assert (cfg.textual_inversion_steps, cfg.identity_steps, cfg.motion_steps) == (
            3000,
            500,
            600,
        )
    scaled = cfg.with_overrides(["steps_scale=0.01"])
    assert scaled.steps_scale == 0.01 and scaled_steps(cfg.motion_steps, 0.01) >= 1


@pytest.mark.parametrize(
    "cls, overrides, fragment",
    [
        (LoRAConfig, {"rank": 0}, "rank"),
        (LoRAConfig, {"identity_steps": 0, "motion_steps": 0}, "nothing would be trained"),
        (LoRAConfig, {"steps_scale": 0.0}, "steps_scale"),
        (LoRAConfig, {"fusion_weights": (1.0,)}, "fusion_weights"),
        (LoRAConfig, {"placeholder": "drop"}, "placeholder"),
        (SequentialConfig, {"learning_rate": 0.0}, "learning_rate"),
        (SequentialConfig, {"identity_prompt": "a {noun}"}, "identity_prompt"),
        (DreamVideoConfig, {"p_image_zero": 1.5}, "p_image_zero"),
        (
            DreamVideoConfig,
            {"textual_inversion": False, "identity_steps": 0, "motion_steps": 0},
            "trains nothing",
        ),
    ],
)
def test_configs_reject_contradictions(cls, overrides, fragment):
    with pytest.raises(ConfigError, match=fragment):
        cls(**overrides)


def test_lora_with_unknown_target_modules_is_a_config_error(backbone, made):
    with pytest.raises(ConfigError, match="target_modules"):
        made.append(LoRAMethod(backbone, LoRAConfig(target_modules=("nope",))))
    made.clear()


# ---- LoRA --------------------------------------------------------------------------------------
def hand_merged(transformer, adapters, weights, *, key_by_key=False):
    """A copy of the *original* transformer with the LoRA deltas merged into the weights by hand.

    ``adapters``: ``{dim: {module name: (A, B)}}``; the delta of a module is
    ``sum_k w_k * s * B_k A_k`` (s = alpha / rank = 1 here), or, with ``key_by_key``,
    ``s * (sum_k w_k B_k) (sum_k w_k A_k)`` (factor matrices added key by key).
    """
    merged = copy.deepcopy(transformer)
    with torch.no_grad():
        for name, module in merged.named_modules():
            if name not in adapters["identity"]:
                continue
            pairs = [
                (adapters[d][name], w) for d, w in zip(("identity", "motion"), weights, strict=True)
            ]
            if key_by_key:
                a = sum(w * a for (a, _), w in pairs)
                b = sum(w * b for (_, b), w in pairs)
                delta = b @ a
            else:
                delta = sum(w * (b @ a) for (a, b), w in pairs)
            module.weight += delta
    return merged


def test_lora_fusion_is_a_weighted_sum_of_the_two_deltas(backbone, made):
    original = copy.deepcopy(backbone.transformer)
    inputs = fixed_inputs(backbone)
    base = transformer_out(backbone, inputs)
    method = LoRAMethod(backbone, LoRAConfig(rank=4, lora_alpha=4, init_lora_weights=False))
    made.append(method)
    method._trained = True
    params = method._adapter_parameters()
    adapters = {dim: {} for dim in ("identity", "motion")}
    for dim, named in params.items():
        for key, p in named.items():
            module = key.split(".", 1)[1].rsplit(".lora_", 1)[0]
            a_or_b = 0 if ".lora_A." in key else 1
            adapters[dim].setdefault(module, [None, None])[a_or_b] = p.detach()
    assert len(adapters["identity"]) == 4 * len(backbone.transformer.transformer_blocks)

    method.use_adapters((0.0, 0.0))
    assert torch.allclose(transformer_out(backbone, inputs), base, atol=1e-6), (
        "(0, 0) is not the base model"
    )

    method.use_adapters((1.0, 0.0))
    fused_10 = transformer_out(backbone, inputs)
    backbone.transformer.set_adapters([method.adapter_names["identity"]], [1.0])  # identity alone
    alone = transformer_out(backbone, inputs)
    assert torch.allclose(fused_10, alone, atol=1e-6) and not torch.allclose(alone, base, atol=1e-3)

    weights = (0.7, 0.4)
    method.use_adapters(weights)
    fused = transformer_out(backbone, inputs)
    reference = hand_merged(original, adapters, weights)
    ref_out = merged_out(reference, backbone, inputs)
    assert torch.allclose(fused, ref_out, atol=1e-5), "fusion is not W + sum_k w_k B_k A_k"
    naive = hand_merged(original, adapters, weights, key_by_key=True)
    naive_out = merged_out(naive, backbone, inputs)
    assert not torch.allclose(fused, naive_out, atol=1e-3), "key-by-key addition should differ"


def _lora_factors(method):
    """``{dim: {module name: (A, B)}}`` of the identity and motion LoRAs (detached copies)."""
    adapters = {dim: {} for dim in ("identity", "motion")}
    for dim, named in method._adapter_parameters().items():
        for key, p in named.items():
            module = key.split(".", 1)[1].rsplit(".lora_", 1)[0]
            adapters[dim].setdefault(module, [None, None])[0 if ".lora_A." in key else 1] = (
                p.detach().clone()
            )
    return adapters


def _active_delta(layer):
    """The weight a peft LoRA layer adds with its active adapters: sum of B A * scaling."""
    return sum(layer.get_delta_weight(name) for name in layer.active_adapters)


@pytest.mark.parametrize("fusion", ["avg_factors", "delta_sum"])
def test_lora_fused_weights_equal_the_hand_computation(backbone, made, fusion):
    """Each adapted layer's added weight, for both fusions, against the formula by hand.

    Rank 4, alpha 2: the adapters trained at scale 0.5. avg_factors (the authors'
    lora_joint.py: every tensor of both files times 0.5, added, loaded as one adapter whose
    alpha diffusers takes to be its rank): (0.5 B_id + 0.5 B_m)(0.5 A_id + 0.5 A_m) at scale
    1. delta_sum (peft's set_adapters at 1, 1): 0.5 B_id A_id + 0.5 B_m A_m."""
    from peft.tuners.lora import LoraLayer

    original = copy.deepcopy(backbone.transformer)
    config = LoRAConfig(rank=4, lora_alpha=2, init_lora_weights=False, fusion=fusion)
    method = LoRAMethod(backbone, config)
    made.append(method)
    method._trained = True
    adapters = _lora_factors(method)
    method.fuse()
    layers = {
        name: m for name, m in backbone.transformer.named_modules() if isinstance(m, LoraLayer)
    }
    assert set(layers) == set(adapters["identity"]) and len(layers) == 4 * 2  # 4 per block
    for name, layer in layers.items():
        (a_id, b_id), (a_m, b_m) = adapters["identity"][name], adapters["motion"][name]
        if fusion == "avg_factors":
            expected = (0.5 * b_id + 0.5 * b_m) @ (0.5 * a_id + 0.5 * a_m)
        else:
            expected = 0.5 * (b_id @ a_id) + 0.5 * (b_m @ a_m)
        torch.testing.assert_close(_active_delta(layer), expected, atol=1e-6, rtol=1e-5)
    # the transformer computes with exactly those weights
    inputs = fixed_inputs(backbone)
    if fusion == "avg_factors":
        reference = hand_merged(original, adapters, (0.5, 0.5), key_by_key=True)
    else:
        reference = hand_merged(original, adapters, (0.5, 0.5))  # w = 1 times s = 0.5
    ref_out = merged_out(reference, backbone, inputs)
    assert torch.allclose(transformer_out(backbone, inputs), ref_out, atol=1e-5)
    # the default resolves the fusion's own weights; the describe() says which fusion ran
    assert method.describe()["config"]["fusion_weights"] == (
        [0.5, 0.5] if fusion == "avg_factors" else [1.0, 1.0]
    )
    key = method.variant_key()  # (rank=4 etc. differ from the reference too)
    assert ("fusion=delta_sum" in key) == (fusion == "delta_sum") and "fusion_weights" not in key


def test_lora_fusions_differ_and_leave_the_learned_adapters_alone(backbone, made):
    """The authors' averaged factors and peft's delta sum are different models of the same two
    LoRAs; fusing never changes the learned factors (what a run saves)."""
    inputs = fixed_inputs(backbone)
    outs = {}
    for fusion in ("avg_factors", "delta_sum"):
        method = LoRAMethod(
            backbone, LoRAConfig(rank=4, lora_alpha=4, init_lora_weights=False, fusion=fusion)
        )
        method._trained = True
        before = {k: v.clone() for k, v in method.state_dict().items()}
        method.fuse()
        outs[fusion] = transformer_out(backbone, inputs)
        assert all(torch.equal(v, before[k]) for k, v in method.state_dict().items())
        assert all(k.split(".", 1)[0] in ("identity", "motion") for k in before)
        method.teardown()
    assert not torch.allclose(outs["avg_factors"], outs["delta_sum"], atol=1e-3)


def test_lora_trains_only_its_adapters_and_the_loss_goes_down(backbone, smoke_data, made):
    # lr 1e-2: the tiny random model needs it to move the loss clearly in 30 steps
    method = LoRAMethod(
        backbone, LoRAConfig(rank=4, lora_alpha=4, steps_scale=0.1, learning_rate=1e-2)
    )
    made.append(method)
    base_weights = {
        k: v.clone() for k, v in backbone.transformer.state_dict().items() if "lora_" not in k
    }
    params = method._adapter_parameters()
    before = {dim: snapshot(p) for dim, p in params.items()}
    loss_before = (
        fixed_loss(backbone, identity_batches(smoke_data)),
        fixed_loss(backbone, motion_batches(smoke_data)),
    )
    seen = []

    previous = {dim: snapshot(p) for dim, p in params.items()}

    def check(stage, step):
        other = "motion" if stage == "identity" else "identity"
        assert all(torch.equal(p, previous[other][k]) for k, p in params[other].items()), (
            f"{other} moved"
        )
        assert all(p.grad is None for p in params[other].values())
        previous[stage] = snapshot(params[stage])
        seen.append(stage)

    stats = method.fit(smoke_data, step_callback=check)
    assert seen == ["identity"] * 30 + ["motion"] * 30 and stats["steps"] == 60
    now = backbone.transformer.state_dict()
    assert all(torch.equal(now[k], v) for k, v in base_weights.items()), "a base weight changed"
    for dim in ("identity", "motion"):
        assert any(not torch.equal(p, before[dim][k]) for k, p in params[dim].items()), (
            f"{dim} LoRA did not train"
        )

    method.use_adapters((1.0, 0.0))
    identity_after = fixed_loss(backbone, identity_batches(smoke_data))
    method.use_adapters((0.0, 1.0))
    motion_after = fixed_loss(backbone, motion_batches(smoke_data))
    assert identity_after < 0.95 * loss_before[0], (loss_before, identity_after)
    assert motion_after < 0.95 * loss_before[1], (loss_before, motion_after)


def test_lora_save_load_generate_reproduces_frames(
    backbone, smoke_data, smoke_case, made, tmp_path
):
    config = LoRAConfig(rank=4, lora_alpha=4, steps_scale=0.01, fusion_weights=(0.8, 0.6))
    method = LoRAMethod(backbone, config)
    made.append(method)
    with pytest.raises(ConfigError, match="nothing learned"):
        method.generate(["a toy *"], seed=0)
    method.fit(smoke_data)
    prompts = list(smoke_case.prompts[:1])
    videos = method.generate(prompts, seed=3)
    method.save(tmp_path / "state")
    method.teardown()
    made.clear()

    loaded = LoRAMethod(backbone, config)
    made.append(loaded)
    loaded.load(tmp_path / "state")
    again = loaded.generate(prompts, seed=3)
    assert videos[0].dtype == np.uint8 and videos[0].shape == (9, 64, 64, 3)
    assert np.array_equal(videos[0], again[0])

    state = loaded.state_dict()
    with pytest.raises(WeightsError, match="missing 1"):
        loaded.load_state_dict({k: v for k, v in list(state.items())[1:]})
    key = next(iter(state))
    with pytest.raises(WeightsError, match="shape"):
        loaded.load_state_dict({**state, key: torch.zeros(1)})
    with pytest.raises(WeightsError, match="NaN"):
        loaded.load_state_dict({**state, key: torch.full_like(state[key], float("nan"))})


def test_lora_strip_placeholder_feeds_class_prompts(backbone, smoke_case, made, monkeypatch):
    method = LoRAMethod(
        backbone, LoRAConfig(rank=2, lora_alpha=2, placeholder="strip", steps_scale=0.01)
    )
    made.append(method)
    seen = {}
    original = backbone.__class__.encode_prompts

    def spy(self, prompts, **kw):
        seen.setdefault("prompts", []).extend(prompts)
        return original(self, prompts, **kw)

    monkeypatch.setattr(backbone.__class__, "encode_prompts", spy)
    method.train(smoke_case)
    # the authors' identity caption "toy *" (no article), " *" stripped
    assert seen["prompts"][:2] == ["toy", "a person is swinging back and forth"]
    seen.clear()
    method.generate(["toy * with a hat is swinging"], seed=0)
    assert "toy with a hat is swinging" in seen["prompts"]


# ---- sequential --------------------------------------------------------------------------------
def test_sequential_motion_stage_starts_from_the_identity_weights(backbone, smoke_data, made):
    method = SequentialMethod(backbone, SequentialConfig(steps_scale=0.1, learning_rate=1e-3))
    made.append(method)
    transformer = backbone.transformer
    original = snapshot(dict(transformer.named_parameters()))
    frozen = {
        name: snapshot(dict(module.named_parameters()))
        for name, module in (("text_encoder", backbone.text_encoder), ("vae", backbone.vae))
    }
    loss_before = fixed_loss(backbone, identity_batches(smoke_data) + motion_batches(smoke_data))
    marks = {}

    def on_stage(stage, event):
        marks[(stage, event)] = snapshot(dict(transformer.named_parameters()))

    first_motion = {}

    def on_step(stage, step):
        if stage == "motion" and step == 0:
            first_motion.update(snapshot(dict(transformer.named_parameters())))

    stats = method.fit(smoke_data, stage_callback=on_stage, step_callback=on_step)
    assert (stats["identity_steps"], stats["motion_steps"]) == (20, 13)
    end_identity, start_motion = marks[("identity", "end")], marks[("motion", "start")]
    assert all(torch.equal(start_motion[k], end_identity[k]) for k in original), (
        "motion did not start from identity"
    )
    assert sum(not torch.equal(end_identity[k], original[k]) for k in original) > 0.9 * len(
        original
    )
    assert any(not torch.equal(first_motion[k], start_motion[k]) for k in original)
    assert not any(p.requires_grad for p in transformer.parameters()) and not transformer.training
    for name, module in (("text_encoder", backbone.text_encoder), ("vae", backbone.vae)):
        now = dict(module.named_parameters())
        assert all(torch.equal(now[k], v) for k, v in frozen[name].items()), f"the {name} changed"
    loss_after = fixed_loss(backbone, identity_batches(smoke_data) + motion_batches(smoke_data))
    assert loss_after < 0.9 * loss_before, (loss_before, loss_after)


def test_sequential_save_load_generate_and_teardown_restore(
    backbone, smoke_data, smoke_case, made, tmp_path
):
    config = SequentialConfig(steps_scale=0.02)
    method = SequentialMethod(backbone, config)
    made.append(method)
    method.fit(smoke_data)
    state = method.state_dict()
    assert set(state) == {f"transformer.{k}" for k in backbone.transformer.state_dict()}
    prompts = list(smoke_case.prompts[:1])
    videos = method.generate(prompts, seed=1)
    method.save(tmp_path / "state")
    method.teardown()  # the fixture checks bit-for-bit restoration at the end as well
    made.clear()
    base_video = build_method("base", backbone).generate(prompts, seed=1)
    assert not np.array_equal(videos[0], base_video[0])

    loaded = SequentialMethod(backbone, config)
    made.append(loaded)
    loaded.load(tmp_path / "state")
    assert np.array_equal(loaded.generate(prompts, seed=1)[0], videos[0])
    with pytest.raises(WeightsError, match="unexpected 1"):
        loaded.load_state_dict({**state, "transformer.extra": torch.zeros(1)})


def test_sequential_memory_options_are_undone(backbone, smoke_data, made):
    transformer = backbone.transformer
    method = SequentialMethod(
        backbone,
        SequentialConfig(steps_scale=0.01, mixed_precision="bf16", gradient_checkpointing=True),
    )
    made.append(method)
    seen = []
    method.fit(
        smoke_data, step_callback=lambda s, i: seen.append(transformer.is_gradient_checkpointing)
    )
    assert seen and all(seen) and method.resolved_mixed_precision() == "bf16"
    assert not transformer.is_gradient_checkpointing and transformer.dtype == torch.float32


# ---- DreamVideo --------------------------------------------------------------------------------
def dv_config(**overrides):
    # learning rates for the tiny random model (the defaults are tuned for real backbones)
    base = {
        "cond_dim": COND,
        "steps_scale": 0.01,
        "textual_inversion_lr": 1e-2,
        "identity_lr": 1e-2,
        "motion_lr": 1e-2,
    }
    return DreamVideoConfig(**{**base, **overrides})


def test_dreamvideo_untrained_is_the_base_model_and_adapters_touch_only_video_tokens(
    backbone, made, encoder
):
    inputs = fixed_inputs(backbone)
    base = transformer_out(backbone, inputs)
    method = DreamVideoMethod(backbone, dv_config(), image_encoder=encoder)
    made.append(method)
    method.model.weights = (1.0, 1.0)
    assert torch.equal(transformer_out(backbone, inputs), base), (
        "zero-initialised adapters changed the output"
    )

    method.teardown()
    made.clear()
    noisy = DreamVideoMethod(backbone, dv_config(), image_encoder=encoder, zero_init_up=False)
    made.append(noisy)
    block0 = {}
    handle = backbone.transformer.transformer_blocks[0].register_forward_hook(
        lambda m, a, out: block0.update(out=tuple(o.clone() for o in out))
    )
    try:
        noisy.model.weights = (None, None)
        assert torch.equal(transformer_out(backbone, inputs), base)
        plain = block0["out"]
        for weights in ((1.0, None), (None, 1.0)):
            noisy.model.weights = weights
            noisy.model.condition = torch.randn(2, COND)
            assert not torch.allclose(transformer_out(backbone, inputs), base, atol=1e-4)
            assert not torch.allclose(block0["out"][0], plain[0], atol=1e-5), (
                "video tokens unchanged"
            )
            assert torch.equal(block0["out"][1], plain[1]), "text tokens changed in the first block"
    finally:
        handle.remove()
        noisy.model.weights = (None, None)
        noisy.model.condition = None


def test_dreamvideo_token_encoding_matches_the_backbone(backbone, made, encoder):
    method = DreamVideoMethod(backbone, dv_config(), image_encoder=encoder)
    made.append(method)
    token = method.token
    prompts = ["a person is swinging", "a toy * on a beach"]
    star = backbone.text_encoder.get_input_embeddings().weight[token.token_id]
    with torch.no_grad():
        token.embedding.copy_(star)
    assert torch.allclose(
        token.encode(backbone, prompts), backbone.encode_prompts(prompts), atol=1e-6
    )
    token.initialise(backbone.tokenizer, backbone.text_encoder, "toy")
    changed = token.encode(backbone, prompts)
    assert torch.allclose(changed[0], backbone.encode_prompts(prompts[:1])[0], atol=1e-6)
    assert not torch.allclose(changed[1], backbone.encode_prompts(prompts[1:])[0], atol=1e-4)


def test_dreamvideo_schedule_is_the_supplements(backbone, smoke_data, made, encoder):
    """DualReal's supplement: identity 3,000 steps at batch 4 and lr 1e-4, then 500 at batch 4
    and lr 1e-5; motion 600 at batch 2 and lr 1e-5. The stages fit() builds are that plan."""
    from dualreal_bench.methods.dreamvideo.method import STAGES

    default = DreamVideoConfig()
    plan = [(p.name, p.steps, p.batch_size, p.learning_rate) for p in default.schedule()]
    assert plan == [
        ("textual_inversion", 3000, 4, 1e-4),
        ("identity", 500, 4, 1e-5),
        ("motion", 600, 2, 1e-5),
    ]
    assert (default.p_text_zero, default.p_image_zero) == (0.5, 0.0)  # VGen playingGuitar
    method = DreamVideoMethod(
        backbone, DreamVideoConfig(cond_dim=COND, steps_scale=0.01), image_encoder=encoder
    )
    made.append(method)
    scaled = {p.name: p for p in method.config.schedule()}
    builders = method._stage_builders(smoke_data, scaled)
    try:
        stages = [builders[name]() for name in STAGES]
    finally:
        method.model.weights = (None, None)
    assert [(s.name, s.steps, s.batch_size, s.settings.learning_rate) for s in stages] == [
        ("textual_inversion", 30, 4, 1e-4),
        ("identity", 5, 4, 1e-5),
        ("motion", 6, 2, 1e-5),
    ]


def test_dreamvideo_stages_train_only_their_parameters_and_the_loss_goes_down(
    backbone, smoke_data, made, encoder
):
    method = DreamVideoMethod(
        backbone,
        dv_config(steps_scale=0.02, p_image_zero=0.0, p_text_zero=0.0),
        image_encoder=encoder,
    )
    made.append(method)
    groups = {
        "textual_inversion": {"token": method.token.embedding},
        "identity": dict(enumerate(method.model.identity_parameters())),
        "motion": dict(enumerate(method.model.motion_parameters())),
    }
    text_encoder = snapshot(dict(backbone.text_encoder.named_parameters()))
    start = {k: snapshot(v) for k, v in groups.items()}
    previous = {k: snapshot(v) for k, v in groups.items()}
    conditions = []

    def check(stage, step):
        for other, params in groups.items():
            if other != stage:
                assert all(torch.equal(p, previous[other][k]) for k, p in params.items()), (
                    f"{other} moved in {stage}"
                )
        if stage == "motion":
            conditions.append(method.model.condition.clone())
        previous.update({k: snapshot(v) for k, v in groups.items()})

    data = smoke_data
    method.token.initialise(backbone.tokenizer, backbone.text_encoder, "toy")
    with torch.no_grad():
        id_embeds = method._encode([data.identity_prompt])
    loss_before = fixed_loss(backbone, [(lat, id_embeds) for lat in data.identity_latents])
    method.model.weights = (None, None)
    motion_before = fixed_loss(backbone, motion_batches(data))

    stats = method.fit(data, initializer_word="toy", step_callback=check)
    assert (stats["textual_inversion_steps"], stats["identity_steps"], stats["motion_steps"]) == (
        60,
        10,
        12,
    )
    for name in groups:
        assert any(not torch.equal(p, start[name][k]) for k, p in groups[name].items()), (
            f"{name} did not train"
        )
    now = backbone.text_encoder.named_parameters()
    assert all(torch.equal(p, text_encoder[k]) for k, p in now), "the text encoder changed"
    # the supplement's motion batch of 2 clips (the 3 smoke clips: an epoch is a batch of 2
    # and one of 1), each row one clip's condition
    assert conditions[0].shape == (2, COND)
    assert all(c.shape in ((2, COND), (1, COND)) for c in conditions)
    assert all(
        any(torch.allclose(row, data.motion_conditions[i]) for i in range(len(data.motion_latents)))
        for row in conditions[0]
    )

    with torch.no_grad():
        id_embeds_after = method._encode([data.identity_prompt])
    method.model.weights = (1.0, None)
    identity_after = fixed_loss(backbone, [(lat, id_embeds_after) for lat in data.identity_latents])
    method.model.weights = (None, 1.0)
    method.model.condition = data.motion_conditions[:1]
    motion_after = fixed_loss(backbone, motion_batches(data))
    method.model.weights, method.model.condition = (None, None), None
    assert identity_after < 0.95 * loss_before, (loss_before, identity_after)
    assert motion_after < motion_before, (motion_before, motion_after)


def test_dreamvideo_save_load_generate_reproduces_frames(
    backbone, smoke_data, smoke_case, made, encoder, tmp_path
):
    config = dv_config(steps_scale=0.002)
    method = DreamVideoMethod(backbone, config, image_encoder=encoder)
    made.append(method)
    with pytest.raises(ConfigError, match="nothing learned"):
        method.generate(["a toy *"], seed=0)
    method.fit(smoke_data, initializer_word="toy")
    prompts = list(smoke_case.prompts[:1])
    videos = method.generate(prompts, seed=2)
    method.save(tmp_path / "state")
    method.teardown()
    made.clear()

    loaded = DreamVideoMethod(backbone, config, image_encoder=encoder)
    made.append(loaded)
    loaded.load(tmp_path / "state")
    assert np.array_equal(loaded.generate(prompts, seed=2)[0], videos[0])
    state = loaded.state_dict()
    assert {"text.placeholder_embedding", "condition.reference_embedding"} <= set(state)
    with pytest.raises(WeightsError, match="missing 1"):
        loaded.load_state_dict(
            {k: v for k, v in state.items() if k != "text.placeholder_embedding"}
        )


@pytest.mark.parametrize("kind", ["lora", "dreamvideo"])
def test_adapter_initialisation_follows_the_config_seed(backbone, made, encoder, kind):
    def build(seed):
        torch.manual_seed(1000 + seed * 7 + len(made))  # the global generator differs every time
        if kind == "lora":
            method = LoRAMethod(
                backbone, LoRAConfig(rank=2, lora_alpha=2, init_lora_weights=False, seed=seed)
            )
        else:
            method = DreamVideoMethod(
                backbone, dv_config(seed=seed), image_encoder=encoder, zero_init_up=False
            )
        state = {k: v.clone() for k, v in method.state_dict().items()}
        method.teardown()
        return state

    first, again, other = build(0), build(0), build(1)
    assert first.keys() == again.keys() and all(torch.equal(first[k], again[k]) for k in first)
    assert any(not torch.equal(first[k], other[k]) for k in first if k in other)
