"""DualReal as a Method on the tiny backbone: the gradient-masked loop, the ablations,
training on the smoke case, save/load/generate, and the checks on loaded state."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from dualreal_bench.methods._common.data import TrainingData
from dualreal_bench.methods._common.image_encoder import (
    encode_condition,
    load_openclip_vit_h14,
    tiny_image_encoder,
)
from dualreal_bench.methods.dualreal import DualRealConfig, DualRealMethod
from dualreal_bench.methods.dualreal.training import prepare_training_data, train_model

from dualreal_bench.errors import ConfigError, WeightsError

COND = 16  # condition width for the synthetic-data tests


# one torch thread per test; `backbone` (tiny) and `smoke_case` come from conftest.py
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def make_method(backbone):
    made = []

    def make(config=None, **kwargs):
        method = DualRealMethod(backbone, config or DualRealConfig(), **kwargs)
        made.append(method)
        return method

    yield make
    for method in made:
        method.teardown()


def synthetic_data(backbone, *, cond_dim=COND, seed=0) -> TrainingData:
    g = torch.Generator().manual_seed(seed)
    frames, channels, h, w = backbone.latent_shape
    embeds = backbone.encode_prompts(["a toy *", "a person is swinging back and forth"])
    return TrainingData(
        identity_latents=[torch.randn(1, 1, channels, h, w, generator=g) for _ in range(3)],
        motion_latents=[torch.randn(1, frames, channels, h, w, generator=g) for _ in range(2)],
        motion_conditions=torch.randn(2, cond_dim, generator=g),
        reference_embedding=torch.randn(1, cond_dim, generator=g),
        identity_prompt_embeds=embeds[:1],
        motion_prompt_embeds=embeds[1:],
        identity_prompt="a toy *",
        motion_prompt="a person is swinging back and forth",
        condition_frames=[0, 0],
    )


def snapshot(params):
    return [p.detach().clone() for p in params]


def unchanged(params, before):
    return all(torch.equal(p, b) for p, b in zip(params, before, strict=True))


def fast(**overrides) -> DualRealConfig:
    base = {"cond_dim": COND, "max_train_steps": 8, "lr_warmup_steps": 0}
    return DualRealConfig(**{**base, **overrides})


# ---- the joint loop --------------------------------------------------------------------------
def test_gradient_mask_freezes_the_inactive_dimension_bit_for_bit(backbone, make_method):
    method = make_method(fast(max_train_steps=10))
    model = method.model
    groups = {
        "identity": model.dimension_parameters("identity"),
        "motion": model.dimension_parameters("motion"),
        "controller": model.controller_parameters(),
    }
    before = {k: snapshot(v) for k, v in groups.items()}
    seen = []

    def check(step, kind):
        other = "motion" if kind == "identity" else "identity"
        assert all(p.grad is None for p in groups[other]), (
            f"step {step}: {other} adapters have gradients"
        )
        assert unchanged(groups[other], before[other]), f"step {step}: {other} adapters moved"
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in groups[kind])
        assert not unchanged(groups[kind], before[kind]), (
            f"step {step}: {kind} adapters did not train"
        )
        assert groups["controller"][-2].grad is not None  # the head trains on every step
        assert not unchanged(groups["controller"], before["controller"])
        if kind == "motion":  # W_cond trains on motion steps
            assert all(b.attn.motion.cond.weight.grad is not None for b in model.blocks)
        seen.append(kind)
        for k, v in groups.items():
            before[k] = snapshot(v)

    stats = train_model(
        model, backbone, synthetic_data(backbone), method.config, seed=3, step_callback=check
    )
    assert set(seen) == {"identity", "motion"} and stats["steps"] == 10
    assert stats["identity_steps"] + stats["motion_steps"] == 10
    assert all(p.grad is None for p in model.parameters())  # nothing left behind


def test_without_the_mask_both_dimensions_train_every_step(backbone, make_method):
    method = make_method(fast(grad_mask=False, max_train_steps=4))
    model = method.model

    def check(step, kind):
        for dim in ("identity", "motion"):
            ups = [
                p
                for b in model.blocks
                for place in (b.attn, b.ff)
                for p in getattr(place, dim).up.parameters()
            ]
            assert all(p.grad is not None for p in ups), (
                f"step {step} ({kind}): {dim} has no gradient"
            )

    train_model(
        model, backbone, synthetic_data(backbone), method.config, seed=0, step_callback=check
    )


def test_motion_steps_condition_and_p_image_zero(backbone, make_method):
    data = synthetic_data(backbone)
    for p_zero in (0.0, 1.0):
        method = make_method(fast(p_image_zero=p_zero, max_train_steps=6, motion_batch_size=2))
        conds = []

        def check(step, kind, method=method, conds=conds):
            conds.append(
                (kind, None if method.model.condition is None else method.model.condition.clone())
            )

        train_model(method.model, backbone, data, method.config, seed=1, step_callback=check)
        method.teardown()
        assert any(k == "motion" for k, _ in conds) and any(k == "identity" for k, _ in conds)
        for kind, cond in conds:
            if kind == "identity":
                assert cond is None  # identity steps: motion adapters run unconditioned
            elif p_zero == 1.0:
                assert cond.shape == (2, COND) and torch.count_nonzero(cond) == 0
            else:  # each sample gets its own clip's embedding
                assert cond.shape == (2, COND)
                assert {tuple(r.tolist()) for r in cond} == {
                    tuple(r.tolist()) for r in data.motion_conditions
                }


def test_motion_ratio_sets_the_share_of_motion_steps(backbone, make_method):
    data = synthetic_data(backbone)
    shares = {}
    for ratio in (0.2, 0.8):
        method = make_method(fast(motion_ratio=ratio, max_train_steps=30, lr_scheduler="constant"))
        stats = train_model(method.model, backbone, data, method.config, seed=0)
        method.teardown()
        shares[ratio] = stats["motion_steps"] / stats["steps"]
    assert shares[0.2] < 0.4 < 0.6 < shares[0.8]


# ---- the ablations change exactly what they claim -----------------------------------------------
def shapes(method):
    return {k: tuple(v.shape) for k, v in method.model.state_dict().items()}


def test_ablation_configs_change_only_their_part(make_method, backbone):
    full = make_method(fast())
    ref = shapes(full)
    full.teardown()
    ctrl_keys = {k for k in ref if k.startswith("controller.")}
    assert ctrl_keys and all(k.startswith(("blocks.", "controller.")) for k in ref)

    no_ctrl = make_method(fast(controller=False))
    assert no_ctrl.model.controller is None
    assert shapes(no_ctrl) == {k: v for k, v in ref.items() if k not in ctrl_keys}
    no_ctrl.teardown()

    n1 = make_method(fast(num_groups=1))
    diff = {k for k in ref if shapes(n1)[k] != ref[k]}
    assert diff == {"controller.head_out.weight", "controller.head_out.bias"}
    assert n1.model.groups == [0, 0] and shapes(n1)["controller.head_out.weight"] == (1, 128)
    n1.teardown()

    no_skip = make_method(fast(adapter_skip=False))
    assert shapes(no_skip) == ref
    assert all(
        not a.skip
        for b in no_skip.model.blocks
        for p in (b.attn, b.ff)
        for a in (p.identity, p.motion)
    )
    no_skip.teardown()

    small = make_method(fast(adapter_dim=32))
    diff = {k for k in ref if shapes(small)[k] != ref[k]}
    assert diff and all(".down." in k or (".up.weight" in k) for k in diff)
    small.teardown()

    separate = make_method(fast(dual_aware=False))
    assert separate.model.controller is None and not separate.config.use_controller
    assert shapes(separate) == {k: v for k, v in ref.items() if k not in ctrl_keys}


def test_without_dual_aware_the_dimensions_train_separately(backbone, make_method):
    method = make_method(fast(dual_aware=False, max_train_steps=6, motion_ratio=0.5))
    model = method.model
    ident, motion = model.dimension_parameters("identity"), model.dimension_parameters("motion")
    start_motion = snapshot(motion)
    log = []

    def check(step, kind):
        log.append((kind, model.active))
        if kind == "identity":  # motion adapters switched off: they neither run nor change
            assert model.active == (True, False) and unchanged(motion, start_motion)
        else:
            assert model.active == (False, True) and unchanged(ident, after_identity)

    after_identity = None

    def record(step, kind):
        nonlocal after_identity
        check(step, kind)
        if kind == "identity":
            after_identity = snapshot(ident)

    stats = train_model(
        model, backbone, synthetic_data(backbone), method.config, seed=0, step_callback=record
    )
    assert [k for k, _ in log] == ["identity"] * 3 + ["motion"] * 3
    assert stats["identity_steps"] == stats["motion_steps"] == 3
    assert model.active == (True, True)  # blended at inference


def test_adapter_skip_false_untrained_generates_the_base_model(backbone, make_method):
    from dualreal_bench.methods.base import BaseMethod

    prompts = ["a toy * is swinging back and forth"]
    base = BaseMethod(backbone).backbone.sample(prompts, seed=0)  # the prompt as DualReal passes it
    method = make_method(fast(adapter_skip=False))
    method.reference_embedding = torch.randn(1, COND)
    assert np.array_equal(method.generate(prompts, seed=0)[0], base[0])
    method.teardown()
    with_skip = make_method(fast())
    with_skip.reference_embedding = torch.randn(1, COND)
    assert not np.array_equal(with_skip.generate(prompts, seed=0)[0], base[0])


# ---- the smoke case ------------------------------------------------------------------------------
def test_training_loss_goes_down_on_the_smoke_case(backbone, smoke_case, make_method):
    config = DualRealConfig(max_train_steps=50, lr_warmup_steps=5, seed=0)
    method = make_method(config)
    data = prepare_training_data(backbone, smoke_case, config, method._image_encoder(), seed=0)
    assert (
        data.identity_prompt == "toy *"  # the authors' identity caption, no article
        and data.motion_prompt == "a person is swinging back and forth"
    )
    assert len(data.identity_latents) == len(smoke_case.image_paths())
    assert data.motion_conditions.shape == (len(smoke_case.video_paths()), 1024)

    def fixed_loss():  # the same (noise, timestep) pairs before and after training
        g = torch.Generator().manual_seed(123)
        items = [(lat, data.identity_prompt_embeds, None) for lat in data.identity_latents]
        items += [
            (lat, data.motion_prompt_embeds, data.motion_conditions[i : i + 1])
            for i, lat in enumerate(data.motion_latents)
        ]
        losses = []
        with torch.no_grad():
            for lat, emb, cond in items:
                method.model.condition = cond
                for t in (50, 200, 400, 600, 800, 950):
                    noise = torch.randn(lat.shape, generator=g)
                    losses.append(
                        float(backbone.training_loss(lat, emb, timesteps=[t], noise=noise))
                    )
        method.model.condition = None
        return sum(losses) / len(losses)

    before = fixed_loss()
    stats = train_model(method.model, backbone, data, config, seed=0)
    after = fixed_loss()
    assert stats["steps"] == 50 and stats["identity_steps"] > 10 and stats["motion_steps"] > 10
    assert after < 0.99 * before, (before, after)


def test_train_save_load_generate_reproduces_frames(backbone, smoke_case, make_method, tmp_path):
    config = DualRealConfig(max_train_steps=4, lr_warmup_steps=0)
    method = make_method(config)
    stats = method.train(smoke_case)
    assert stats["steps"] == 4 and len(stats["loss"]) == 4 and stats["num_groups"] == 2
    assert method.image_encoder is None  # freed after encoding the conditions
    prompts = list(smoke_case.prompts[:2])
    videos = method.generate(prompts, seed=7)
    extras = method.generation_extras()
    steps = backbone.config.num_inference_steps
    assert len(videos) == len(extras) == 2 and videos[0].dtype == np.uint8
    assert videos[0].shape == (
        backbone.config.num_frames,
        backbone.config.height,
        backbone.config.width,
        3,
    )
    for extra in extras:
        w = extra["controller_w_id"]
        assert w.shape == (steps, 2) and extra["controller_w_id_uncond"].shape == (steps, 2)
        assert np.all((w > 0) & (w < 0.2)) and extra["controller_timesteps"].shape == (steps,)
    method.save(tmp_path / "state")
    method.teardown()

    loaded = make_method(DualRealConfig(max_train_steps=4, lr_warmup_steps=0))
    loaded.load(tmp_path / "state")
    again = loaded.generate(prompts, seed=7)
    assert all(np.array_equal(a, b) for a, b in zip(videos, again, strict=True))
    for a, b in zip(extras, loaded.generation_extras(), strict=True):
        assert all(np.array_equal(a[k], b[k]) for k in a)
    loaded.teardown()

    other_config = make_method(DualRealConfig(max_train_steps=4, lr_warmup_steps=0, num_groups=1))
    with pytest.raises(WeightsError, match="saved with a different DualRealConfig"):
        other_config.load(tmp_path / "state")
    other_config.teardown()

    other_backbone = make_method(DualRealConfig(max_train_steps=4, lr_warmup_steps=0))
    real = backbone.fingerprint

    def different():
        fp = real()
        fp["transformer"] = {**fp["transformer"], "num_layers": 42}
        return fp

    backbone.fingerprint = different
    try:
        with pytest.raises(WeightsError, match="different backbone"):
            other_backbone.load(tmp_path / "state")
    finally:
        del backbone.fingerprint


def test_load_state_dict_checks_names_shapes_and_values(make_method):
    method = make_method(fast())
    method.reference_embedding = torch.randn(1, COND)
    state = method.state_dict()
    assert "condition.reference_embedding" in state and not any(k.startswith("_") for k in state)
    method.teardown()
    target = make_method(fast())
    bad = dict(state)
    bad.pop("blocks.0.attn.identity.down.weight")
    with pytest.raises(
        WeightsError, match=r"missing 1 tensor.*blocks\.0\.attn\.identity\.down\.weight"
    ):
        target.load_state_dict(bad)
    with pytest.raises(WeightsError, match="unexpected 1"):
        target.load_state_dict({**state, "blocks.9.extra": torch.zeros(1)})
    with pytest.raises(WeightsError, match=r"'controller.head_out.weight' has shape \(3, 128\)"):
        target.load_state_dict({**state, "controller.head_out.weight": torch.zeros(3, 128)})
    nan = state["blocks.1.ff.motion.up.weight"].clone()
    nan[0, 0] = float("nan")
    with pytest.raises(WeightsError, match="NaN"):
        target.load_state_dict({**state, "blocks.1.ff.motion.up.weight": nan})
    before = target.state_dict()
    assert all(torch.equal(before[k], v) for k, v in before.items())  # failed loads changed nothing
    target.load_state_dict(state)
    after = target.state_dict()
    assert all(torch.equal(after[k], state[k]) for k in state)


def test_usage_errors(make_method, smoke_case):
    method = make_method(fast())
    with pytest.raises(ConfigError, match="nothing learned yet"):
        method.generate(["a toy *"], seed=0)
    with pytest.raises(RuntimeError, match="another DualReal"):
        make_method(fast())


def test_condition_encoder_and_preprocessing_are_shared(backbone, smoke_case, make_method):
    from dualreal_bench.media import read_images

    encoder = tiny_image_encoder(COND, seed=5)
    config = fast(seed=5)
    method = make_method(config, image_encoder=encoder)
    data = prepare_training_data(backbone, smoke_case, config, encoder, seed=5)
    first = read_images(smoke_case.image_paths()[:1])
    # the generation condition: the authors' inference preprocessing (stretch, CLIP mean/std)
    reference = encode_condition(encoder, first, preprocess="authors", stage="generate")
    torch.testing.assert_close(data.reference_embedding, reference)
    assert not torch.allclose(data.reference_embedding, encoder(first))  # not open_clip's
    assert method.auxiliary_models() and data.motion_conditions.shape == (3, COND)
    again = tiny_image_encoder(COND, seed=5)(first)
    assert torch.equal(again, encoder(first))  # deterministic tiny encoder


def test_missing_openclip_weights_are_a_clear_error(tmp_path, monkeypatch):
    with pytest.raises(WeightsError, match="open_clip.bin: OpenCLIP ViT-H-14 checkpoint not found"):
        load_openclip_vit_h14(str(tmp_path / "open_clip.bin"))
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "try_to_load_from_cache", lambda *a, **k: None)
    with pytest.raises(WeightsError, match="laion/CLIP-ViT-H-14-laion2B-s32B-b79K"):
        load_openclip_vit_h14("")


def test_every_option_can_be_set_from_the_command_line():
    default = DualRealConfig()
    for field in dataclasses.fields(DualRealConfig):
        value = getattr(default, field.name)
        text = (
            "none"
            if value is None
            else ",".join(map(str, value))
            if isinstance(value, tuple)
            else str(value)
        )
        assert default.with_overrides([f"{field.name}={text}"]) == default, field.name
