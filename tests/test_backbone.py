"""The CogVideoX backbone: tiny-profile behaviour, configs, offline weight errors, real sizes."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from dualreal_bench.backbone import (
    PROFILES,
    Backbone,
    BackboneConfig,
    available_profiles,
    load_backbone,
)
from dualreal_bench.backbone.loading import load_pretrained
from dualreal_bench.errors import ConfigError, WeightsError

PROMPT = "a toy * swinging back and forth on a beach"


# `backbone`: the module's shared tiny backbone (conftest.py), for tests that do not modify it
@pytest.fixture
def fresh() -> Backbone:
    """A private tiny backbone for tests that unfreeze weights or attach hooks."""
    return load_backbone("tiny")


def _frames(t: int = 9, h: int = 64, w: int = 64, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(t, h, w, 3), dtype=np.uint8)


# ---- profiles and config ------------------------------------------------------------------


def test_profiles_listed():
    assert available_profiles() == ["cogvideox-2b", "cogvideox-5b", "tiny"]
    assert PROFILES["tiny"].random_init and not PROFILES["cogvideox-5b"].random_init
    assert PROFILES["cogvideox-5b"].repo_id == "THUDM/CogVideoX-5b"


def test_config_takes_profile_defaults():
    backbone = BackboneConfig()
    assert (
        backbone.num_frames,
        backbone.height,
        backbone.width,
        backbone.dtype,
        backbone.device,
    ) == (
        9,
        64,
        64,
        "float32",
        "cpu",
    )
    big = BackboneConfig(profile="cogvideox-5b")
    assert (big.num_frames, big.height, big.width, big.dtype) == (49, 480, 720, "bfloat16")
    assert big.gradient_checkpointing and big.vae_slicing and big.vae_tiling
    assert big.max_sequence_length == 226 and big.latent_frames == 13
    # a profile override starts from that profile's defaults; other overrides apply on top
    switched = BackboneConfig.for_profile("tiny", ["profile=cogvideox-2b", "height=96"])
    assert (switched.profile, switched.num_frames, switched.height, switched.width) == (
        "cogvideox-2b",
        49,
        96,
        720,
    )
    # the resolved config round-trips through JSON
    assert BackboneConfig.from_dict(json.loads(json.dumps(big.to_dict()))) == big


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        (["num_frames=10"], "num_frames"),
        (["num_frames=0"], "num_frames"),
        (["height=72"], "height"),
        (["width=0"], "width"),
        (["guidance_scale=0.5"], "guidance_scale"),
        (["num_inference_steps=0"], "num_inference_steps"),
        (["scheduler=euler"], "scheduler"),
        (["dtype=int8"], "dtype"),
        (["device=tpu"], "device"),
        (["cpu_offload=true"], "cpu_offload"),
        (["max_sequence_length=129"], "max_sequence_length"),
        (["model_path=/weights/CogVideoX-5b"], "model_path"),
        (["seed=-1"], "seed"),
        (["fps=0"], "fps"),
        (["profile=huge"], "profile"),
    ],
)
def test_bad_config_values_raise_config_error(overrides, field):
    with pytest.raises(ConfigError, match=field):
        BackboneConfig.for_profile("tiny", overrides)


def test_config_error_for_2b_text_length():
    # the 2B's sin-cos position table has exactly 226 text slots
    with pytest.raises(ConfigError, match="max_sequence_length"):
        BackboneConfig(profile="cogvideox-2b", max_sequence_length=120)
    BackboneConfig(profile="cogvideox-5b", max_sequence_length=120)  # RoPE: shorter is fine


# ---- tiny construction ----------------------------------------------------------------------


def test_tiny_load_is_seeded_and_leaves_global_rng_alone(backbone):
    state = torch.get_rng_state()
    again = load_backbone("tiny")
    assert torch.equal(state, torch.get_rng_state())
    for name in ("transformer", "vae", "text_encoder"):
        a, b = getattr(backbone, name).state_dict(), getattr(again, name).state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a), name
    other = load_backbone("tiny", ["seed=1"])
    w0 = backbone.transformer.transformer_blocks[0].attn1.to_q.weight
    assert not torch.equal(w0, other.transformer.transformer_blocks[0].attn1.to_q.weight)


def test_tiny_architecture(backbone):
    cfg = backbone.transformer.config
    assert cfg.num_layers == 2 and len(backbone.transformer.transformer_blocks) == 2
    assert cfg.use_rotary_positional_embeddings  # like the 5B
    assert cfg.text_embed_dim == backbone.text_encoder.config.d_model
    assert backbone.latent_shape == (3, 4, 8, 8)
    assert backbone.device == torch.device("cpu") and backbone.dtype == torch.float32
    assert not any(p.requires_grad for p in backbone.transformer.parameters())  # frozen by default


# ---- encoders -------------------------------------------------------------------------------


def test_preprocess_video(backbone):
    x = backbone.preprocess_video(_frames(5, 90, 120))
    assert x.shape == (3, 5, 64, 64) and x.dtype == torch.float32
    assert -1.0 <= float(x.min()) and float(x.max()) <= 1.0
    exact = np.zeros((1, 64, 64, 3), np.uint8)
    exact[..., 1] = 255
    y = backbone.preprocess_video(exact)  # already at size: no resampling
    assert torch.equal(y[0], torch.full((1, 64, 64), -1.0)) and torch.equal(
        y[1], torch.ones(1, 64, 64)
    )
    with pytest.raises(ValueError, match="uint8"):
        backbone.preprocess_video(np.zeros((2, 8, 8, 3), np.float32))


def test_encode_video_shapes(backbone):
    videos = torch.stack(
        [backbone.preprocess_video(_frames(seed=s)) for s in range(2)]
    )  # (2, 3, 9, 64, 64)
    latents = backbone.encode_video(videos, generator=torch.Generator().manual_seed(0))
    assert latents.shape == (2, 3, 4, 8, 8) and latents.dtype == torch.float32
    assert torch.isfinite(latents).all()
    short = backbone.encode_video(videos[:1, :, :5])
    assert short.shape == (1, 2, 4, 8, 8)
    # posterior mean is deterministic; a seeded sample is reproducible
    m1 = backbone.encode_video(videos[:1], sample_posterior=False)
    m2 = backbone.encode_video(videos[:1], sample_posterior=False)
    assert torch.equal(m1, m2)
    s1 = backbone.encode_video(videos[:1], generator=torch.Generator().manual_seed(3))
    s2 = backbone.encode_video(videos[:1], generator=torch.Generator().manual_seed(3))
    assert torch.equal(s1, s2) and not torch.equal(s1, m1)


def test_encode_video_rejects_bad_frame_count(backbone):
    with pytest.raises(ValueError, match=r"1 \+ 4k"):
        backbone.encode_video(torch.zeros(1, 3, 8, 64, 64))
    with pytest.raises(ValueError, match="multiples of 16"):
        backbone.encode_video(torch.zeros(1, 3, 1, 64, 72))


def test_encode_images_is_one_frame_video(backbone):
    images = [_frames(1, 100, 80)[0], _frames(1, 64, 64)[0], _frames(1, 50, 120)[0]]
    latents = backbone.encode_images(images, generator=torch.Generator().manual_seed(0))
    assert latents.shape == (3, 1, 4, 8, 8)
    # the same thing as encoding the preprocessed image as a 1-frame video
    as_video = backbone.encode_video(
        backbone.preprocess_video(images[1][None])[None], generator=torch.Generator().manual_seed(0)
    )
    first = backbone.encode_images(images[1:2], generator=torch.Generator().manual_seed(0))
    assert torch.equal(first, as_video)


def test_encode_prompts(backbone):
    embeds = backbone.encode_prompts([PROMPT, "a dog", ""])
    assert embeds.shape == (3, 128, 32) and embeds.dtype == torch.float32
    assert not torch.equal(embeds[0], embeds[1])
    assert torch.equal(backbone.encode_prompts(["a dog"])[0], embeds[1])


# ---- training loss --------------------------------------------------------------------------


def _latents(bb: Backbone, batch: int = 1) -> torch.Tensor:
    videos = torch.stack([bb.preprocess_video(_frames(seed=s)) for s in range(batch)])
    return bb.encode_video(videos, generator=torch.Generator().manual_seed(0))


def test_training_loss_finite_with_gradients_reaching_the_transformer(fresh):
    latents, text = _latents(fresh), fresh.encode_prompts([PROMPT])
    fresh.transformer.requires_grad_(True)
    loss = fresh.training_loss(latents, text, generator=torch.Generator().manual_seed(0))
    assert loss.ndim == 0 and torch.isfinite(loss) and float(loss.detach()) > 0
    loss.backward()
    for i, block in enumerate(fresh.transformer.transformer_blocks):
        for name in ("attn1.to_q.weight", "ff.net.2.weight", "norm1.linear.weight"):
            grad = block.get_parameter(name).grad
            assert grad is not None and float(grad.abs().sum()) > 0, f"block {i} {name}"
    # the frozen encoders take no gradient
    assert all(p.grad is None for p in fresh.vae.parameters())


def _alphas_cumprod_by_hand(cfg: dict) -> np.ndarray:
    """CogVideoX's noise schedule, written out: scaled-linear betas, SNR shift, zero terminal SNR."""
    n = cfg["num_train_timesteps"]
    betas = np.linspace(cfg["beta_start"] ** 0.5, cfg["beta_end"] ** 0.5, n, dtype=np.float64) ** 2
    a = np.cumprod(1.0 - betas)
    s = cfg["snr_shift_scale"]
    a = a / (s + (1 - s) * a)  # SNR / s
    root = np.sqrt(a)
    root = (root - root[-1]) * root[0] / (root[0] - root[-1])  # last step: SNR 0
    return root**2


@pytest.mark.parametrize("profile", ["cogvideox-5b", "cogvideox-2b"])
def test_noise_schedule_matches_hand_derivation(profile):
    from diffusers import CogVideoXDDIMScheduler

    cfg = PROFILES[profile].scheduler
    assert cfg["prediction_type"] == "v_prediction" and cfg["rescale_betas_zero_snr"]
    assert cfg["snr_shift_scale"] == {"cogvideox-5b": 1.0, "cogvideox-2b": 3.0}[profile]
    ours = CogVideoXDDIMScheduler(**cfg).alphas_cumprod.double().numpy()
    np.testing.assert_allclose(ours, _alphas_cumprod_by_hand(cfg), rtol=1e-10, atol=1e-12)
    assert ours[-1] == 0.0


def test_training_loss_is_v_prediction_mse(backbone):
    """Reference: the weighted x0 loss equals the plain MSE against v = sqrt(a) eps - sqrt(1-a) x0."""
    latents, text = _latents(backbone, batch=2), backbone.encode_prompts([PROMPT, "a dog"])
    noise = torch.randn(latents.shape, generator=torch.Generator().manual_seed(1))
    t = torch.tensor([17, 803])
    loss = backbone.training_loss(latents, text, timesteps=t, noise=noise)

    a = torch.tensor(
        _alphas_cumprod_by_hand(backbone.profile.scheduler)[t.numpy()], dtype=torch.float32
    )
    a = a.view(2, 1, 1, 1, 1)
    noisy = a.sqrt() * latents + (1 - a).sqrt() * noise
    with torch.no_grad():
        v = backbone.forward_transformer(noisy, text, t)
    v_target = a.sqrt() * noise - (1 - a).sqrt() * latents
    reference = ((v - v_target) ** 2).mean()
    torch.testing.assert_close(loss, reference, rtol=1e-4, atol=1e-6)


def test_training_loss_reproducible_with_generator(backbone):
    latents, text = _latents(backbone), backbone.encode_prompts([PROMPT])

    def loss(seed: int) -> float:
        with torch.no_grad():
            return float(
                backbone.training_loss(latents, text, generator=torch.Generator().manual_seed(seed))
            )

    assert loss(0) == loss(0)
    assert loss(0) != loss(1)
    with pytest.raises(ValueError, match="timesteps"):
        backbone.training_loss(latents, text, timesteps=[1000])


def test_rotary_embeddings_match_the_pipeline(backbone):
    latents = torch.zeros(1, 3, 4, 8, 8)
    ours = backbone.rotary_embeddings(latents)
    theirs = backbone.build_pipeline()._prepare_rotary_positional_embeddings(
        64, 64, 3, torch.device("cpu")
    )
    assert torch.equal(ours[0], theirs[0]) and torch.equal(ours[1], theirs[1])
    assert ours[0].shape == (3 * 4 * 4, 16)  # F * (h/p) * (w/p) tokens, head_dim channels
    # forward_transformer (used by the loss) applies them, exactly as the pipeline does
    x = torch.randn(1, 3, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    text, t = backbone.encode_prompts([PROMPT]), torch.tensor([500])
    with torch.no_grad():
        out = backbone.forward_transformer(x, text, t)
        kw = dict(hidden_states=x, encoder_hidden_states=text, timestep=t, return_dict=False)
        with_rope = backbone.transformer(**kw, image_rotary_emb=theirs)[0]
        without = backbone.transformer(**kw, image_rotary_emb=None)[0]
    assert torch.equal(out, with_rope) and not torch.allclose(out, without)


def test_checkpointing_slicing_tiling_paths():
    plain = load_backbone("tiny")
    memory = load_backbone(
        "tiny", ["gradient_checkpointing=true", "vae_slicing=true", "vae_tiling=true"]
    )
    assert (
        memory.transformer.gradient_checkpointing
        and memory.vae.use_slicing
        and memory.vae.use_tiling
    )
    latents, text = _latents(plain), plain.encode_prompts([PROMPT])
    grads = []
    for bb in (plain, memory):
        bb.transformer.requires_grad_(True)
        bb.training_loss(latents, text, generator=torch.Generator().manual_seed(0)).backward()
        grads.append(bb.transformer.transformer_blocks[0].attn1.to_q.weight.grad)
    torch.testing.assert_close(grads[0], grads[1])  # recomputation changes nothing
    # slicing encodes a batch one video at a time: same result
    videos = torch.stack([plain.preprocess_video(_frames(seed=s)) for s in range(2)])
    memory.vae.disable_tiling()  # diffusers' tiles are tuned for 480x720, not toy sizes
    sliced = memory.encode_video(videos, sample_posterior=False)
    torch.testing.assert_close(sliced, plain.encode_video(videos, sample_posterior=False))


def test_bfloat16_tiny_loss_is_finite():
    bb = load_backbone("tiny", ["dtype=bfloat16"])
    assert bb.transformer.dtype == torch.bfloat16
    latents, text = _latents(bb), bb.encode_prompts([PROMPT])
    assert latents.dtype == torch.bfloat16
    with torch.no_grad():
        assert torch.isfinite(
            bb.training_loss(latents, text, generator=torch.Generator().manual_seed(0))
        )


# ---- sampling -------------------------------------------------------------------------------


def test_sample_identical_for_one_seed_different_for_another(backbone):
    a = backbone.sample([PROMPT], seed=0)
    b = backbone.sample([PROMPT], seed=0)
    c = backbone.sample([PROMPT], seed=1)
    assert len(a) == 1 and a[0].shape == (9, 64, 64, 3) and a[0].dtype == np.uint8
    assert np.array_equal(a[0], b[0])
    assert not np.array_equal(a[0], c[0])
    assert a[0].std() > 0  # not a constant image


def test_sample_does_not_depend_on_the_other_prompts(backbone):
    both = backbone.sample([PROMPT, "a dog"], seed=3)
    alone = backbone.sample(["a dog"], seed=3)
    assert np.array_equal(both[1], alone[0])
    assert not np.array_equal(both[0], both[1])  # the prompt reaches the frames


@pytest.mark.parametrize("scheduler", ["dpm", "ddim"])
def test_both_schedulers_run(backbone, scheduler):
    video = backbone.sample([PROMPT], seed=0, scheduler=scheduler, num_inference_steps=2)[0]
    assert video.shape == (9, 64, 64, 3) and video.dtype == np.uint8


def test_schedulers_differ_and_guidance_one_runs(backbone):
    dpm = backbone.sample([PROMPT], seed=0, scheduler="dpm", num_inference_steps=2)[0]
    ddim = backbone.sample([PROMPT], seed=0, scheduler="ddim", num_inference_steps=2)[0]
    assert not np.array_equal(dpm, ddim)
    no_cfg = backbone.sample([PROMPT], seed=0, guidance_scale=1.0, num_inference_steps=2)[0]
    assert no_cfg.shape == (9, 64, 64, 3) and not np.array_equal(no_cfg, dpm)


def test_sample_runs_through_self_transformer(fresh):
    """Adapters hook the transformer's blocks; sampling must run that very module."""
    calls = []
    block = fresh.transformer.transformer_blocks[0]
    baseline = fresh.sample([PROMPT], seed=0, num_inference_steps=2)[0]

    def shift(module, args, output):
        calls.append(output[0].shape[0])
        return output[0] + 0.5, output[1]

    handle = block.register_forward_hook(shift)
    try:
        hooked = fresh.sample([PROMPT], seed=0, num_inference_steps=2)[0]
    finally:
        handle.remove()
    assert calls == [2, 2]  # 2 steps, conditional + unconditional batched
    assert not np.array_equal(baseline, hooked)


def test_sample_callback_sees_every_step(backbone):
    steps = []

    def callback(pipe, i, t, tensors):
        steps.append((i, int(t), tuple(tensors["latents"].shape)))
        return tensors

    backbone.sample([PROMPT], seed=0, num_inference_steps=3, callback_on_step_end=callback)
    assert [s[0] for s in steps] == [0, 1, 2]
    assert all(s[2] == (1, 3, 4, 8, 8) for s in steps)
    assert steps[0][1] > steps[-1][1]  # descending timesteps


def test_decode_latents(backbone):
    videos = backbone.decode_latents(torch.zeros(2, 3, 4, 8, 8))
    assert len(videos) == 2 and videos[0].shape == (9, 64, 64, 3) and videos[0].dtype == np.uint8


# ---- records --------------------------------------------------------------------------------


def test_fingerprint_and_describe_are_json(backbone):
    fp = backbone.fingerprint()
    assert fp["profile"] == "tiny" and fp["transformer"]["num_layers"] == 2
    assert not any(k.startswith("_") for k in fp["transformer"])  # no machine-specific paths
    assert json.loads(json.dumps(fp)) == fp
    assert fp == load_backbone("tiny").fingerprint()
    assert fp != load_backbone("tiny", ["seed=1"]).fingerprint()  # other random weights
    desc = backbone.describe()
    json.dumps(desc)
    assert desc["random_init"] is True and desc["parameters"]["transformer"] > 0
    assert desc["config"]["profile"] == "tiny"


# ---- real profiles: offline loading errors ---------------------------------------------------


def test_missing_weights_path_raises_weights_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    missing = "/nonexistent/weights/CogVideoX-5b"
    with pytest.raises(WeightsError) as err:
        load_backbone("cogvideox-5b", [f"model_path={missing}", "device=cpu"])
    message = str(err.value)
    assert missing in message and "\n" not in message
    assert "download THUDM/CogVideoX-5b" in message


def test_repo_id_missing_from_cache_raises_weights_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(WeightsError, match="nobody-here/not-a-model"):
        load_backbone("cogvideox-2b", ["model_path=nobody-here/not-a-model", "device=cpu"])


def test_incomplete_directory_names_what_is_missing(tmp_path):
    (tmp_path / "transformer").mkdir()
    (tmp_path / "transformer" / "config.json").write_text("{}")
    with pytest.raises(WeightsError, match="missing vae/"):
        load_backbone("cogvideox-5b", [f"model_path={tmp_path}", "device=cpu"])


def test_local_directory_loads_offline_and_architecture_is_checked(backbone, tmp_path):
    backbone.transformer.save_pretrained(tmp_path / "transformer")
    backbone.vae.save_pretrained(tmp_path / "vae")
    backbone.text_encoder.save_pretrained(tmp_path / "text_encoder")
    backbone.tokenizer.save_pretrained(tmp_path / "tokenizer")
    backbone.scheduler.save_pretrained(tmp_path / "scheduler")
    loaded = load_pretrained(tmp_path, torch.float32)
    ref = backbone.transformer.state_dict()
    assert all(torch.equal(v, ref[k]) for k, v in loaded.transformer.state_dict().items())
    assert loaded.scheduler.config.snr_shift_scale == 1.0
    # a directory holding another architecture is refused before any weights load
    with pytest.raises(WeightsError, match=r"not cogvideox-5b: .*num_layers=2 \(expected 42\)"):
        load_backbone("cogvideox-5b", [f"model_path={tmp_path}", "device=cpu", "dtype=float32"])


# ---- real architectures on the meta device ---------------------------------------------------


def _block_params_by_hand(d: int, t: int, head_dim: int) -> int:
    """One CogVideoX expert block, from its dimensions (model width d, time embedding t)."""
    ada_ln_zero = (
        t * 6 * d + 6 * d
    ) + 2 * d  # Linear(t, 6d) for shift/scale/gate x text/video + LayerNorm(d)
    attention = 4 * (d * d + d) + 2 * (
        2 * head_dim
    )  # q, k, v, out with bias + q/k LayerNorm(head_dim)
    feed_forward = (d * 4 * d + 4 * d) + (4 * d * d + d)  # GELU MLP, 4x width
    return 2 * ada_ln_zero + attention + feed_forward


def _transformer_params_by_hand(cfg: dict) -> int:
    d = cfg["num_attention_heads"] * cfg["attention_head_dim"]
    t, p = cfg["time_embed_dim"], cfg["patch_size"]
    outside = (
        (cfg["in_channels"] * p * p * d + d)  # patch embedding (Conv2d p x p)
        + (cfg["text_embed_dim"] * d + d)  # text projection
        + (d * t + t)
        + (t * t + t)  # timestep MLP (sinusoid of width d -> t -> t)
        + 2 * d  # norm_final
        + (t * 2 * d + 2 * d)
        + 2 * d  # output AdaLN: Linear(t, 2d) + LayerNorm(d)
        + (d * p * p * cfg["out_channels"] + p * p * cfg["out_channels"])  # unpatchify projection
    )  # positional tables (2B sin-cos) are buffers, RoPE (5B) is computed: no parameters
    return cfg["num_layers"] * _block_params_by_hand(d, t, cfg["attention_head_dim"]) + outside


# THUDM/CogVideoX-5b: 5,570,283,072 is the transformer's size as published by the diffusers
# team's finetrainers ("trainable parameters": 5570283072 for a full fine-tune of the loaded
# checkpoint, docs/models/cogvideox.md) - the "5.57B" of the transformer; exact, no tolerance.
# THUDM/CogVideoX-2b: called "2B"; its transformer has 1,693,783,872 parameters by the
# hand derivation below (we know of no published exact count; the name rounds up).
PUBLISHED = {"cogvideox-5b": 5_570_283_072, "cogvideox-2b": 1_693_783_872}


@pytest.mark.parametrize("profile", ["cogvideox-5b", "cogvideox-2b"])
def test_real_transformer_parameter_count_on_meta_device(profile):
    from diffusers import CogVideoXTransformer3DModel

    cfg = PROFILES[profile].transformer
    with torch.device("meta"):
        model = CogVideoXTransformer3DModel(**cfg)
    assert all(p.is_meta for p in model.parameters())
    assert len(model.transformer_blocks) == cfg["num_layers"]
    d = cfg["num_attention_heads"] * cfg["attention_head_dim"]
    per_block = sum(p.numel() for p in model.transformer_blocks[0].parameters())
    assert per_block == _block_params_by_hand(d, cfg["time_embed_dim"], cfg["attention_head_dim"])
    total = sum(p.numel() for p in model.parameters())
    assert total == _transformer_params_by_hand(cfg) == PUBLISHED[profile]
    if profile == "cogvideox-5b":
        assert per_block == 132_197_632 and round(total / 1e9, 2) == 5.57
