"""Issue 12: the defaults that reproduce what the authors ran, each checked against a known
answer: DualReal's condition preprocessing (training and generation) on a known image, the
motion clips' stretch, crop and frame sampling, the identity captions, the trainable dtype,
the 8-bit optimizer's message, the untiled decode and the w/o dual-aware split."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest
import torch
from dualreal_bench.methods._common.config import TrainingConfig
from dualreal_bench.methods._common.data import clip_indices, identity_caption, read_clip
from dualreal_bench.methods._common.image_encoder import (
    CLIP_MEAN,
    CLIP_STD,
    authors_generation_pixels,
    authors_training_pixels,
    encode_condition,
    preprocess_images,
    tiny_image_encoder,
)
from dualreal_bench.methods._common.optim import OptimizerSettings, make_optimizer
from dualreal_bench.methods.dualreal import DualRealConfig, DualRealMethod
from dualreal_bench.methods.dualreal.config import UNTILED_DECODE_MIN_GIB
from dualreal_bench.methods.dualreal.method import resolve_vae_tiling
from dualreal_bench.methods.dualreal.training import _phases

from dualreal_bench.backbone import load_backbone
from dualreal_bench.errors import ConfigError
from dualreal_bench.media import write_video

RED, BLUE = (255, 0, 0), (0, 0, 255)


pytestmark = pytest.mark.usefixtures("one_thread")


def quarter_red(height=224, width=448):
    """uint8 (H, W, 3): the left quarter red, the rest blue."""
    image = np.empty((height, width, 3), np.uint8)
    image[:, : width // 4] = RED
    image[:, width // 4 :] = BLUE
    return image


# ---- the motion condition image (wenc-k/DualReal train_adapter.py / inference.py) ---------------
def test_generation_preprocessing_of_a_known_image_equals_the_hand_computation():
    """inference.py: Resize([224, 224]) (Pillow bilinear), ToTensor, Normalize(CLIP mean/std).
    The 224x448 image with a red left quarter stretched to 224x224: columns 0-54 red, 57-223
    blue, and the two columns across the edge Pillow's triangle filter blends by hand: output
    column 55 centres on input 111 and weighs inputs 109-112 by 1/8, 3/8, 3/8, 1/8 (7/8 red:
    255 * 7/8 = 223.1 -> 223, 255 / 8 = 31.9 -> 32); column 56 the mirror (32, 0, 223)."""
    expected = np.empty((224, 224, 3), np.float64)
    expected[:, :55] = RED
    expected[:, 55] = (223, 0, 32)
    expected[:, 56] = (32, 0, 223)
    expected[:, 57:] = BLUE
    x = expected / 255.0
    x = (x - np.array(CLIP_MEAN)) / np.array(CLIP_STD)
    want = torch.from_numpy(x).permute(2, 0, 1)[None].float()
    got = authors_generation_pixels([quarter_red()], 224)
    assert got.shape == (1, 3, 224, 224)
    torch.testing.assert_close(got, want, atol=1e-6, rtol=0)


def test_training_preprocessing_of_a_known_image_equals_the_hand_computation():
    """train_adapter.py: the frame stretched to 224x224, then x / 255 * 2 - 1 with no CLIP
    mean/std. A constant frame of any shape is that constant everywhere: (10, 128, 250) ->
    (-0.92157, 0.00392, 0.96078); the quarter-red frame keeps its left quarter red (stretched,
    not cropped: a centre crop would drop it)."""
    frame = np.empty((300, 500, 3), np.uint8)
    frame[:] = (10, 128, 250)
    got = authors_training_pixels([frame], 224)
    want = torch.tensor([10, 128, 250], dtype=torch.float32) / 255.0 * 2.0 - 1.0
    assert got.shape == (1, 3, 224, 224)
    torch.testing.assert_close(got, want.view(1, 3, 1, 1).expand(1, 3, 224, 224))
    stripes = authors_training_pixels([quarter_red()], 224)[0]
    assert torch.equal(
        stripes[:, :, :50], torch.tensor([1.0, -1.0, -1.0]).view(3, 1, 1).expand(3, 224, 50)
    )
    assert torch.equal(
        stripes[:, :, 62:], torch.tensor([-1.0, -1.0, 1.0]).view(3, 1, 1).expand(3, 224, 162)
    )
    # the "clip" option: open_clip's preprocessing, shorter side + centre crop: all blue
    clip = preprocess_images([quarter_red()], 224)[0]
    blue = (torch.tensor([0.0, 0.0, 1.0]) - torch.tensor(CLIP_MEAN)) / torch.tensor(CLIP_STD)
    torch.testing.assert_close(clip, blue.view(3, 1, 1).expand(3, 224, 224))


def test_encode_condition_modes():
    encoder = tiny_image_encoder(16, seed=3)
    images = [quarter_red(64, 96), np.full((40, 30, 3), 77, np.uint8)]
    size = encoder.image_size
    train = encode_condition(encoder, images, preprocess="authors", stage="train")
    generate = encode_condition(encoder, images, preprocess="authors", stage="generate")
    torch.testing.assert_close(train, encoder.encode_pixels(authors_training_pixels(images, size)))
    torch.testing.assert_close(
        generate, encoder.encode_pixels(authors_generation_pixels(images, size))
    )
    assert not torch.allclose(train, generate)  # [-1, 1] is not CLIP-normalised
    for stage in ("train", "generate"):
        torch.testing.assert_close(
            encode_condition(encoder, images, preprocess="clip", stage=stage), encoder(images)
        )

    class Plain:  # an injected encoder without encode_pixels
        embed_dim = 16

        def __call__(self, images):
            return torch.zeros(len(images), 16)

    with pytest.raises(ConfigError, match="condition_preprocess=clip"):
        encode_condition(Plain(), images, preprocess="authors", stage="train")
    assert encode_condition(Plain(), images, preprocess="clip", stage="train").shape == (2, 16)


# ---- motion clips --------------------------------------------------------------------------------
def _stub_backbone(num_frames=9, height=16, width=16):
    config = types.SimpleNamespace(num_frames=num_frames, height=height, width=width)
    return types.SimpleNamespace(config=config, vae_scale_factor_temporal=4)


@pytest.fixture(scope="module")
def wide_clip(tmp_path_factory):
    """12 frames of 32x64, the left quarter red and the rest blue, each frame a little
    brighter in green than the one before (its index: green = 20 * i)."""
    frames = np.stack([quarter_red(32, 64) for _ in range(12)])
    for i in range(12):
        frames[i, :, :, 1] = 20 * i
    path = tmp_path_factory.mktemp("clip") / "wide.mp4"
    write_video(path, frames, fps=8)
    return path


def test_motion_clips_stretched_or_cropped_to_the_training_size(wide_clip):
    """Stretched (the authors' decord reader: 720x480 whatever the clip's aspect) the clip keeps
    its red quarter; cover + centre crop keeps the middle half, all blue. Both give the
    training size; the raw frames (for the condition image) keep the clip's."""
    backbone = _stub_backbone()
    raw, stretched = read_clip(backbone, wide_clip, "first", "stretch")
    _, cropped = read_clip(backbone, wide_clip, "first", "crop")
    assert raw.shape == (9, 32, 64, 3)  # the first 9 frames (1 + 4k), the clip's own size
    assert stretched.shape == cropped.shape == (9, 16, 16, 3)
    red = stretched[:, :, :3].astype(int)
    assert (red[..., 0] > 200).all() and (red[..., 2] < 60).all()
    rest = stretched[:, :, 6:].astype(int)
    assert (rest[..., 0] < 60).all() and (rest[..., 2] > 200).all()
    assert (cropped[..., 0].astype(int) < 60).all() and (cropped[..., 2] > 200).all()
    # the first frames, in order (green ~ 20 * index, through the codec)
    greens = raw[:, :, :, 1].mean(axis=(1, 2))
    np.testing.assert_allclose(greens, 20 * np.arange(9), atol=6)
    with pytest.raises(ConfigError, match="clip_resize"):
        read_clip(backbone, wide_clip, "first", "squash")


def test_stride_sampling_is_the_official_lora_scripts():
    """train_cogvideox_lora.py: range(start, end, (end - start) // max_num_frames)[:49]."""
    assert clip_indices(100, 49, "stride") == list(range(0, 98, 2))
    assert clip_indices(150, 49, "stride") == list(range(0, 147, 3))
    assert clip_indices(60, 49, "stride") == list(range(49))  # stride 1: the first 49
    assert clip_indices(30, 49, "stride") == list(range(30))  # short: all of it
    assert clip_indices(100, 49, "first") == list(range(49))
    with pytest.raises(ConfigError, match="clip_frames"):
        clip_indices(100, 49, "middle")


def test_stride_sampling_reads_every_kth_frame(wide_clip):
    backbone = _stub_backbone(num_frames=5)
    raw, frames = read_clip(backbone, wide_clip, "stride", "stretch")
    # 12 frames, 5 wanted: stride 12 // 5 = 2 -> frames 0, 2, 4, 6, 8
    greens = raw[:, :, :, 1].mean(axis=(1, 2))
    np.testing.assert_allclose(greens, 20 * np.array([0, 2, 4, 6, 8]), atol=6)
    assert frames.shape == (5, 16, 16, 3)


# ---- captions, dtype, optimizer, decode -----------------------------------------------------------
def test_identity_captions_are_the_authors():
    """customvideo data/custom_image_dataset/dog11/prompts.txt: "dog *"; plushie_bear: "plushie
    bear *" (convert_img2video.py: the folder name without digits, underscores as spaces)."""
    case = types.SimpleNamespace(
        identity=types.SimpleNamespace(class_noun="plushie bear"),
        motion=types.SimpleNamespace(action="lifting"),
    )
    assert TrainingConfig.identity_prompt == "{class_noun} *"
    assert identity_caption(TrainingConfig.identity_prompt, case) == "plushie bear *"


def test_optimizer_auto_on_cuda_needs_bitsandbytes(monkeypatch):
    """optimizer=auto is the authors' 8-bit AdamW on CUDA: without bitsandbytes a clear error
    that says how to install it or choose torch's AdamW, never a quiet switch."""
    monkeypatch.setitem(sys.modules, "bitsandbytes", None)  # import fails
    params = [torch.nn.Parameter(torch.zeros(2))]
    with pytest.raises(ConfigError, match=r'pip install -e "\.\[bnb\]".*optimizer=adamw'):
        make_optimizer(params, OptimizerSettings(1e-3), torch.device("cuda"))
    cpu = make_optimizer(params, OptimizerSettings(1e-3), torch.device("cpu"))
    assert type(cpu) is torch.optim.AdamW


@pytest.fixture(scope="module")
def backbone():
    return load_backbone("tiny")


def test_trainable_dtype(backbone):
    """ "auto": the backbone's dtype on CUDA (bf16, the authors'), float32 here; an explicit
    bfloat16 trains bf16 parameters (and the bf16 adapters move)."""
    auto = DualRealMethod(backbone, DualRealConfig(cond_dim=16))
    try:
        assert auto.trainable_dtype == torch.float32
        assert {p.dtype for p in auto.model.parameters()} == {torch.float32}
    finally:
        auto.teardown()
    config = DualRealConfig(
        cond_dim=16, trainable_dtype="bfloat16", max_train_steps=2, lr_warmup_steps=0
    )
    bf16 = DualRealMethod(backbone, config, zero_init_up=False)
    try:
        assert {p.dtype for p in bf16.model.parameters()} == {torch.bfloat16}
        from dualreal_bench.methods._common.data import TrainingData

        g = torch.Generator().manual_seed(0)
        f, c, h, w = backbone.latent_shape
        data = TrainingData(
            identity_latents=[torch.randn(1, 1, c, h, w, generator=g)],
            motion_latents=[torch.randn(1, f, c, h, w, generator=g)],
            motion_conditions=torch.randn(1, 16, generator=g),
            reference_embedding=torch.randn(1, 16, generator=g),
            identity_prompt_embeds=backbone.encode_prompts(["toy *"]),
            motion_prompt_embeds=backbone.encode_prompts(["a person is swinging"]),
            identity_prompt="toy *",
            motion_prompt="a person is swinging",
            condition_frames=[0],
        )
        before = [p.detach().clone() for p in bf16.model.parameters()]
        bf16.fit(data)
        after = list(bf16.model.parameters())
        assert {p.dtype for p in after} == {torch.bfloat16}
        assert any(not torch.equal(a, b) for a, b in zip(after, before, strict=True))
    finally:
        bf16.teardown()


def test_generation_decodes_untiled_as_the_authors(backbone, monkeypatch):
    """vae_tiling: "off" (and "auto" off CUDA) decodes untiled, "on" tiled; the VAE's own
    setting is put back after generation."""
    seen = []
    original = type(backbone).sample

    def spy(self, *args, **kwargs):
        seen.append(bool(self.vae.use_tiling))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(type(backbone), "sample", spy)
    backbone.vae.use_tiling = True  # a backbone set to tile (the real profiles' default)
    try:
        for choice, tiled in (("auto", False), ("off", False), ("on", True)):
            method = DualRealMethod(backbone, DualRealConfig(cond_dim=16, vae_tiling=choice))
            try:
                method.reference_embedding = torch.zeros(1, 16)
                method.generate(["toy * swings"], seed=0)
                assert seen[-1] is tiled, choice
                assert backbone.vae.use_tiling is True  # put back
                assert method.describe()["config"]["vae_tiling"] == ("on" if tiled else "off")
            finally:
                method.teardown()
    finally:
        backbone.vae.use_tiling = False


def test_auto_vae_tiling_follows_the_card_and_the_memory_budget():
    """ "auto" tiles only on a CUDA card below UNTILED_DECODE_MIN_GIB, or under a memory_budget
    below it on a larger card (an 80 GB card shared at 24 GiB must tile, as a 24 GB card does);
    off CUDA it stays untiled; an explicit choice is kept."""
    gib = 2**30
    limit = UNTILED_DECODE_MIN_GIB * gib
    assert resolve_vae_tiling("auto", None, None) == "off"
    assert resolve_vae_tiling("auto", None, 24 * gib) == "off"  # CPU: no decode to plan
    assert resolve_vae_tiling("auto", 80 * gib, None) == "off"
    assert resolve_vae_tiling("auto", 80 * gib, 24 * gib) == "on"
    assert resolve_vae_tiling("auto", 80 * gib, limit) == "off"  # at the threshold: untiled
    assert resolve_vae_tiling("auto", 24 * gib, None) == "on"
    assert resolve_vae_tiling("auto", 24 * gib, 80 * gib) == "on"  # the card is the limit
    assert resolve_vae_tiling("off", 24 * gib, None) == "off"
    assert resolve_vae_tiling("on", None, None) == "on"


def test_without_dual_aware_adaptation_splits_the_steps_and_blends_fixed_weights(backbone):
    """The ablation the authors' code does not have: identity then motion, 500 + 500 of the
    1,000 steps (motion_ratio 0.5, so as many updates of each kind as the joint run), blended
    at the fixed 0.1 / 0.1 the authors' code uses without the controller."""
    config = DualRealConfig(cond_dim=16, dual_aware=False)
    method = DualRealMethod(backbone, config)
    try:
        phases = _phases(method.model, config)
        assert [(p.name, p.steps, p.active) for p in phases] == [
            ("identity", 500, (True, False)),
            ("motion", 500, (False, True)),
        ]
        assert not config.use_controller and config.fixed_weights == (0.1, 0.1)
        assert "dual_aware=false" in method.variant_key()
    finally:
        method.teardown()
