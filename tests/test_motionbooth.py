"""``motionbooth`` on the tiny backbone: the three losses against naive references, the mask
sources in order, the unrelated clips, training, save -> load -> generate, teardown, inspect,
and a smoke run whose report has a ``motionbooth`` row."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from dualreal_bench.methods.motionbooth import (
    MotionBoothConfig,
    MotionBoothMethod,
    with_unique_token,
)
from dualreal_bench.methods.motionbooth.attention import SubjectAttentionStore
from dualreal_bench.methods.motionbooth.data import (
    PreservationPool,
    folder_clips,
    other_motion_clips,
    subject_token_positions,
)
from dualreal_bench.methods.motionbooth.losses import (
    attention_target,
    cross_attention_loss,
    latent_region_mask,
    masked_mean,
    subject_attention,
    subject_attention_explicit,
)
from dualreal_bench.methods.motionbooth.masks import (
    Segmenter,
    segment_whole_image,
    subject_masks,
)
from PIL import Image

from dualreal_bench.backbone import load_backbone
from dualreal_bench.cache import ArrayCache
from dualreal_bench.errors import ConfigError, DataError, WeightsError
from dualreal_bench.media import write_video


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def backbone():
    return load_backbone("tiny")


@pytest.fixture(scope="module")
def sample_root(tmp_path_factory):
    from dualreal_bench.sample_data import ensure_sample_data

    return ensure_sample_data(tmp_path_factory.mktemp("sample") / "data")


@pytest.fixture(scope="module")
def smoke_case(sample_root):
    from dualreal_bench.spec import build_cases

    return build_cases("smoke", data_root=sample_root)[0]


@pytest.fixture
def made(backbone):
    """Methods built in a test; torn down afterwards, and the backbone checked to be untouched
    (weights bit for bit, the original attention processor objects, nothing trainable)."""
    reference = {k: v.clone() for k, v in backbone.transformer.state_dict().items()}
    processors = [b.attn1.processor for b in backbone.transformer.transformer_blocks]
    methods = []
    yield methods
    for method in methods:
        method.teardown()
    state = backbone.transformer.state_dict()
    assert state.keys() == reference.keys()
    changed = [k for k in reference if not torch.equal(state[k], reference[k])]
    assert not changed, f"teardown left changed weights: {changed[:3]}"
    assert [b.attn1.processor for b in backbone.transformer.transformer_blocks] == processors
    assert all(
        a is b
        for a, b in zip(
            [b.attn1.processor for b in backbone.transformer.transformer_blocks],
            processors,
            strict=True,
        )
    ), "teardown left replaced attention processors"
    assert not any(p.requires_grad for p in backbone.transformer.parameters())
    assert backbone.transformer.dtype == torch.float32 and not backbone.transformer.training


def config(**overrides):
    # a learning rate the tiny random model moves with in a few steps
    return MotionBoothConfig(**{"learning_rate": 1e-3, "steps_scale": 0.05, **overrides})


def fixed_inputs(backbone, batch=2, frames=1, seed=0):
    g = torch.Generator().manual_seed(seed)
    _, c, h, w = backbone.latent_shape
    latents = torch.randn(batch, frames, c, h, w, generator=g)
    noise = torch.randn(latents.shape, generator=g)
    return latents, noise, torch.tensor([150, 700][:batch])


# ---- the subject region loss ---------------------------------------------------------------------
def test_region_loss_with_a_full_mask_is_the_plain_loss(backbone):
    latents, noise, t = fixed_inputs(backbone)
    embeds = backbone.encode_prompts(["a toy sks"])
    with torch.no_grad():
        plain = backbone.training_loss(latents, embeds, timesteps=t, noise=noise)
        error = backbone.denoising_error(latents, embeds, timesteps=t, noise=noise)
    full = torch.ones(2, 1, 1, *latents.shape[-2:])
    assert error.shape == latents.shape and error.dtype == torch.float32
    assert float(masked_mean(error, full)) == pytest.approx(float(plain), rel=1e-6)
    # MotionBooth's normalisation (per masked position, channels summed) is C times ours
    motionbooth = float((error * full).sum() / full.sum())
    assert motionbooth == pytest.approx(latents.shape[2] * float(plain), rel=1e-5)


def test_region_loss_ignores_a_changed_value_outside_the_mask(backbone):
    g = torch.Generator().manual_seed(1)
    error = torch.rand(2, 1, 4, 8, 8, generator=g)
    pixels = torch.zeros(2, 1, 64, 64)
    pixels[:, :, 8:40, 16:48] = 1.0  # the subject: latent rows 1-4, columns 2-5
    mask = latent_region_mask(pixels, 8)[:, None]  # (2, 1, 1, 8, 8)
    assert mask.shape == (2, 1, 1, 8, 8) and mask.sum() == 2 * 4 * 4
    reference = masked_mean(error, mask)
    naive = sum(
        float(error[b, 0, c, i, j])
        for b in range(2)
        for c in range(4)
        for i in range(1, 5)
        for j in range(2, 6)
    ) / (2 * 4 * 4 * 4)
    assert float(reference) == pytest.approx(naive, rel=1e-6)
    outside = error.clone()
    outside[0, 0, 3, 7, 7] += 100.0  # a latent position no subject pixel touches
    assert torch.equal(masked_mean(outside, mask), reference)
    inside = error.clone()
    inside[0, 0, 3, 2, 3] += 100.0
    assert not torch.equal(masked_mean(inside, mask), reference)
    # one subject pixel is enough for a latent position to count
    pixels[0, 0, 63, 63] = 1.0
    assert latent_region_mask(pixels, 8)[0, 0, 7, 7] == 1.0


# ---- the subject-token cross-attention loss ------------------------------------------------------
def test_attention_slice_equals_the_full_map_on_random_tensors():
    g = torch.Generator().manual_seed(0)
    q = torch.randn(2, 3, 5 + 12, 8, generator=g, requires_grad=True)
    k = torch.randn(2, 3, 5 + 12, 8, generator=g, requires_grad=True)
    positions = torch.tensor([1, 3])
    fast = subject_attention(q, k, 5, positions)
    full = subject_attention_explicit(q, k, 5, positions)
    # by hand: softmax over all 17 keys of each video query, mass on keys 1 and 3
    scores = torch.einsum("bhid,bhjd->bhij", q[:, :, 5:], k) / 8**0.5
    naive = torch.softmax(scores, -1)[..., [1, 3]].mean(-1).mean(1)
    assert fast.shape == (2, 12)
    torch.testing.assert_close(fast, naive, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(full, naive, rtol=1e-5, atol=1e-7)
    target = torch.rand(2, 12, generator=g)
    (gq_fast, gk_fast) = torch.autograd.grad(cross_attention_loss(fast, target), (q, k))
    (gq_full, gk_full) = torch.autograd.grad(cross_attention_loss(full, target), (q, k))
    torch.testing.assert_close(gq_fast, gq_full, rtol=1e-4, atol=1e-7)
    torch.testing.assert_close(gk_fast, gk_full, rtol=1e-4, atol=1e-7)
    assert gk_fast[:, :, 5:].abs().sum() > 0  # video keys enter through the normaliser


def _stca_loss_and_grads(backbone, store, positions, *, explicit):
    latents, noise, t = fixed_inputs(backbone)
    embeds = backbone.encode_prompts(["a toy sks"])
    target = torch.rand(2, 16, generator=torch.Generator().manual_seed(3))
    store.explicit = explicit
    params = dict(backbone.transformer.named_parameters())
    for p in params.values():
        p.requires_grad_(True)
    try:
        with store.record(positions):
            backbone.denoising_error(latents, embeds, timesteps=t, noise=noise)
            maps = list(store.maps)
            loss = cross_attention_loss(store.aggregate(), target)
            grads = torch.autograd.grad(loss, list(params.values()), allow_unused=True)
    finally:
        for p in params.values():
            p.requires_grad_(False)
    return loss, maps, dict(zip(params, grads, strict=True))


def test_attention_slice_equals_the_full_map_on_the_tiny_model_and_reaches_the_transformer(
    backbone, made
):
    store = SubjectAttentionStore()
    processors = [b.attn1.processor for b in backbone.transformer.transformer_blocks]
    store.attach(backbone.transformer)
    try:
        positions = torch.tensor([2, 3, 4])
        loss, maps, grads = _stca_loss_and_grads(backbone, store, positions, explicit=False)
        loss_full, maps_full, grads_full = _stca_loss_and_grads(
            backbone, store, positions, explicit=True
        )
    finally:
        store.detach()
    assert all(
        a is b
        for a, b in zip(
            processors,
            [b.attn1.processor for b in backbone.transformer.transformer_blocks],
            strict=True,
        )
    )
    assert len(maps) == len(maps_full) == 2 and maps[0].shape == (2, 16)  # 2 blocks, 4x4 tokens
    for a, b in zip(maps, maps_full, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-8)
    assert float(loss.detach()) == pytest.approx(float(loss_full.detach()), rel=1e-6)
    for name in ("transformer_blocks.0.attn1.to_q.weight", "transformer_blocks.1.attn1.to_k.weight",
                 "transformer_blocks.0.norm1.linear.weight", "patch_embed.proj.weight"):  # fmt: skip
        assert grads[name] is not None and grads[name].abs().sum() > 0, name
        scale = float(grads_full[name].abs().max())
        torch.testing.assert_close(grads[name], grads_full[name], rtol=1e-4, atol=1e-5 * scale)


def test_recording_processor_computes_exactly_what_diffusers_computes(backbone, made):
    latents, noise, t = fixed_inputs(backbone)
    embeds = backbone.encode_prompts(["a toy sks is swinging"])
    with torch.no_grad():
        before = backbone.denoising_error(latents, embeds, timesteps=t, noise=noise)
        store = SubjectAttentionStore()
        store.attach(backbone.transformer, blocks=(1,))
        try:
            replaced = backbone.denoising_error(latents, embeds, timesteps=t, noise=noise)
            with store.record(torch.tensor([2])):
                recorded = backbone.denoising_error(latents, embeds, timesteps=t, noise=noise)
            assert len(store.maps) == 1  # only block 1 records
        finally:
            store.detach()
    assert torch.equal(before, replaced) and torch.equal(before, recorded)


def test_attention_loss_under_gradient_checkpointing(backbone, made):
    store = SubjectAttentionStore()
    store.attach(backbone.transformer)
    try:
        positions = torch.tensor([2, 3])
        _, _, plain = _stca_loss_and_grads(backbone, store, positions, explicit=False)
        backbone.transformer.enable_gradient_checkpointing()
        backbone.transformer.train()
        try:
            _, _, checkpointed = _stca_loss_and_grads(backbone, store, positions, explicit=False)
        finally:
            backbone.transformer.disable_gradient_checkpointing()
            backbone.transformer.eval()
    finally:
        store.detach()
    name = "transformer_blocks.0.attn1.to_q.weight"
    scale = float(plain[name].abs().max())
    torch.testing.assert_close(checkpointed[name], plain[name], rtol=1e-4, atol=1e-5 * scale)


def test_cross_attention_loss_is_binary_cross_entropy():
    probs = torch.tensor([[0.2, 0.9], [0.5, 0.01]])
    target = torch.tensor([[0.0, 1.0], [0.25, 1.0]])
    naive = -(target * probs.log() + (1 - target) * (1 - probs).log()).mean()
    assert float(cross_attention_loss(probs, target)) == pytest.approx(float(naive), rel=1e-6)
    pixels = torch.zeros(1, 1, 64, 64)
    pixels[..., :16, :8] = 1.0  # half of the first token's 16x16 pixels
    target = attention_target(pixels, 16)
    assert (
        target.shape == (1, 16) and float(target[0, 0]) == 0.5 and float(target[0, 1:].sum()) == 0
    )


# ---- prompts and tokens ----------------------------------------------------------------------------
def test_unique_token_replaces_the_placeholder():
    assert with_unique_token("dog * is surfing", "sks") == "dog sks is surfing"
    assert with_unique_token("a plushie bear *, wearing a hat", "sks") == (
        "a plushie bear sks, wearing a hat"
    )
    assert with_unique_token("dog * is surfing", "*") == "dog * is surfing"


def test_subject_token_positions_with_the_byte_tokenizer(backbone):
    tok = backbone.tokenizer
    positions = subject_token_positions(tok, "a toy sks", "toy sks", 128)
    assert positions == [2, 3, 4, 6, 7, 8]  # bytes of "toy" and "sks"; spaces left out
    ids = tok("a toy sks", add_special_tokens=False).input_ids
    assert tok.decode([ids[i] for i in positions]) == "toysks"
    with pytest.raises(DataError, match="not in the caption"):
        subject_token_positions(tok, "a toy", "toy sks", 128)
    with pytest.raises(DataError, match="beyond"):
        subject_token_positions(tok, "a toy sks", "toy sks", 5)


def test_subject_token_positions_with_a_sentencepiece_t5_tokenizer(tmp_path):
    """CogVideoX's tokenizer is T5's sentencepiece; a tiny one is trained here (no download)."""
    spm = pytest.importorskip("sentencepiece")
    from transformers import T5Tokenizer

    text = ["a toy sks is swinging", "a plushie bear sks wearing a hat", "the cat is surfing"]
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(text * 50), model_prefix=str(tmp_path / "spiece"), vocab_size=40, hard_vocab_limit=False,
        model_type="unigram", pad_id=0, eos_id=1, unk_id=2, bos_id=-1, minloglevel=2,
    )  # fmt: skip
    tok = T5Tokenizer.from_pretrained(str(tmp_path), extra_ids=0)
    prompt = "a plushie bear sks is surfing"
    positions = subject_token_positions(tok, prompt, "plushie bear sks", 226)
    ids = tok(prompt, add_special_tokens=False).input_ids
    assert tok.decode([ids[i] for i in positions]).replace(" ", "") == "plushiebearsks"
    skipped = set(range(positions[0], positions[-1] + 1)) - set(positions)
    assert all(not tok.decode([ids[i]]).strip() for i in skipped)  # lone "\u2581" pieces only
    assert tok.decode(ids[: positions[0]]).strip() == "a"
    assert tok.decode(ids[positions[-1] + 1 :]).strip() == "is surfing"


# ---- masks -----------------------------------------------------------------------------------------
def _identity(tmp_path: Path) -> list[Path]:
    """Four images, one per source: a mask file (the image also has an alpha: the file wins),
    an alpha channel, an opaque alpha (no mask), no alpha at all."""
    images = tmp_path / "ident" / "images"
    (images / "masks").mkdir(parents=True)
    rgba = np.zeros((32, 48, 4), dtype=np.uint8)
    rgba[..., :3] = 120
    rgba[8:24, 12:36, 3] = 255  # opaque subject, transparent background
    Image.fromarray(rgba, "RGBA").save(images / "a.png")
    file_mask = np.zeros((32, 48), dtype=np.uint8)
    file_mask[:10, :10] = 255
    Image.fromarray(file_mask, "L").save(images / "masks" / "a.png")
    Image.fromarray(rgba, "RGBA").save(images / "b.png")
    opaque = rgba.copy()
    opaque[..., 3] = 255
    Image.fromarray(opaque, "RGBA").save(images / "c.png")
    Image.fromarray(rgba[..., :3], "RGB").save(images / "d.jpg")
    return [images / n for n in ("a.png", "b.png", "c.png", "d.jpg")]


def _pixels(paths):
    from dualreal_bench.media import read_images

    return read_images(paths)


def fake_segmenter(calls):
    def build():
        def load():
            calls.append("load")

            def segment(image):
                calls.append("segment")
                mask = np.zeros(image.shape[:2], dtype=bool)
                mask[4:20, 4:20] = True
                return mask

            return segment

        return Segmenter(name="sam:fake", key={"model": "fake"}, load=load)

    return build


def test_mask_sources_in_order_and_segmented_masks_cached(tmp_path):
    paths = _identity(tmp_path)
    images = _pixels(paths)
    masks = subject_masks(paths, images, fallback="full_frame")
    assert [m.source.split(":")[0] for m in masks] == ["file", "alpha", "full_frame", "full_frame"]
    assert masks[0].source == f"file:{paths[0].parent / 'masks' / 'a.png'}"
    assert masks[0].mask[:10, :10].all() and masks[0].mask.sum() == 100  # the file, not the alpha
    assert masks[1].mask.sum() == 16 * 24 and masks[1].mask[8:24, 12:36].all()
    assert masks[2].mask.all() and masks[3].mask.all()

    calls: list[str] = []
    cache = ArrayCache(tmp_path / "cache")
    masks = subject_masks(
        paths, images, fallback="sam", segmenter=fake_segmenter(calls), cache=cache
    )
    assert [m.source for m in masks][2:] == ["sam:fake", "sam:fake"]
    assert masks[3].mask.sum() == 256 and calls == ["load", "segment", "segment"]
    calls.clear()
    again = subject_masks(
        paths, images, fallback="sam", segmenter=fake_segmenter(calls), cache=cache
    )
    assert calls == []  # computed once: the cache answers, the model is not even loaded
    assert all(np.array_equal(a.mask, b.mask) for a, b in zip(masks, again, strict=True))
    # no image needs the segmenter: missing weights do not matter
    subject_masks(paths[:2], images[:2], fallback="sam", segmenter=lambda: 1 / 0)


def test_mask_files_that_cannot_be_used_are_errors(tmp_path):
    paths = _identity(tmp_path)
    images = _pixels(paths)
    bad = paths[0].parent / "masks" / "d.png"
    Image.fromarray(np.full((10, 10), 255, np.uint8), "L").save(bad)
    with pytest.raises(DataError, match="masks must have their image's size"):
        subject_masks(paths, images, fallback="full_frame")
    Image.fromarray(np.zeros((32, 48), np.uint8), "L").save(bad)
    with pytest.raises(DataError, match="empty"):
        subject_masks(paths, images, fallback="full_frame")
    bad.unlink()
    (paths[0].parent.parent / "masks").mkdir()
    Image.fromarray(np.full((32, 48), 255, np.uint8), "L").save(
        paths[0].parent.parent / "masks" / "a.png"
    )
    with pytest.raises(DataError, match="two mask files"):
        subject_masks(paths, images, fallback="full_frame")


def test_missing_sam_weights_name_the_checkpoint(tmp_path, monkeypatch):
    from dualreal_bench.methods.motionbooth.masks import sam_segmenter
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty-hub"))
    with pytest.raises(WeightsError, match="facebook/sam-vit-huge.*mask_model_path"):
        sam_segmenter("facebook/sam-vit-huge")
    with pytest.raises(WeightsError, match="no config.json"):
        sam_segmenter("facebook/sam-vit-huge", str(tmp_path))


def test_sam_whole_image_box_runs_a_tiny_sam():
    from transformers import SamConfig, SamImageProcessor, SamModel, SamProcessor

    torch.manual_seed(0)
    model = SamModel(
        SamConfig(
            vision_config={
                "hidden_size": 32,
                "output_channels": 16,
                "num_hidden_layers": 2,
                "num_attention_heads": 2,
                "image_size": 64,
                "patch_size": 8,
                "window_size": 4,
                "global_attn_indexes": [1],
                "num_pos_feats": 8,
                "mlp_dim": 64,
            },
            prompt_encoder_config={
                "hidden_size": 16,
                "image_size": 64,
                "patch_size": 8,
                "mask_input_channels": 4,
            },
            mask_decoder_config={
                "hidden_size": 16,
                "mlp_dim": 32,
                "num_hidden_layers": 1,
                "num_attention_heads": 2,
                "iou_head_hidden_dim": 16,
            },
        )  # fmt: skip
    ).eval()
    processor = SamProcessor(
        image_processor=SamImageProcessor(
            size={"longest_edge": 64}, pad_size={"height": 64, "width": 64}
        )
    )
    image = np.random.default_rng(0).integers(0, 255, (48, 80, 3), dtype=np.uint8)
    mask = segment_whole_image(model, processor, image)
    assert mask.dtype == bool and mask.shape == (48, 80)


@pytest.mark.skipif(
    not (Path(__import__("os").environ.get("DUALREAL_BENCH_DATA", "/nonexistent")) / "identities"
         / "black_poodle").is_dir(),
    reason="DUALREAL_BENCH_DATA with identities/black_poodle not set",
)  # fmt: skip
def test_the_shared_rgba_photos_have_an_opaque_alpha_that_is_no_mask():
    import os

    from dualreal_bench.media import list_images

    folder = Path(os.environ["DUALREAL_BENCH_DATA"]) / "identities" / "black_poodle" / "images"
    paths = list_images(folder)
    masks = subject_masks(paths, _pixels(paths), fallback="full_frame")
    assert {m.source for m in masks} == {"full_frame"}


# ---- unrelated clips -------------------------------------------------------------------------------
def _motion(root: Path, name: str, clips: int, prompt: str | None) -> None:
    videos = root / "motions" / name / "videos"
    videos.mkdir(parents=True)
    for i in range(clips):
        frames = np.full((9, 16, 16, 3), 40 * i + 10, dtype=np.uint8)
        write_video(videos / f"c{i}.mp4", frames, fps=8)
    if prompt:
        (root / "motions" / name / "prompts.txt").write_text(prompt + "\n")


def test_preservation_clips_are_other_motions_only(tmp_path, backbone):
    _motion(tmp_path, "Archery", 2, "a person is shooting arrows")
    _motion(tmp_path, "Biking", 2, "a person is riding a bike")
    _motion(tmp_path, "playingGuitar", 1, None)
    clips = other_motion_clips(tmp_path / "motions", "Archery", "a person is {action}")
    assert [(c.motion, c.path.name) for c in clips] == [
        ("Biking", "c0.mp4"),
        ("Biking", "c1.mp4"),
        ("playingGuitar", "c0.mp4"),
    ]
    assert [c.caption for c in clips] == [
        "a person is riding a bike",
        "a person is riding a bike",
        "a person is playing guitar",  # the manifest's action where there is no prompts.txt
    ]
    pool = PreservationPool.from_clips(backbone, clips)
    assert len(pool) == 3 and pool.encoded == 0
    latents = pool.latents(2)
    assert latents.shape == (1, 3, 4, 8, 8) and pool.encoded == 1  # resized to 64x64
    assert torch.equal(pool.latents(2), latents) and pool.encoded == 1  # encoded once
    assert pool.embeds(0).shape[:2] == (1, 128)


def test_training_draws_only_other_motions(backbone, smoke_case, made, monkeypatch):
    drawn: list[Path] = []
    original = PreservationPool.latents

    def spy(self, index):
        drawn.append(self.clips[index].path)
        return original(self, index)

    monkeypatch.setattr(PreservationPool, "latents", spy)
    method = MotionBoothMethod(backbone, config(steps_scale=0.02))  # 6 steps
    made.append(method)
    stats = method.train(smoke_case)
    assert len(drawn) == 6 and len(stats["video_loss"]) == 6
    assert all(p.parent.parent.name == "smoke_wave" for p in drawn)
    assert not any(smoke_case.motion.name in str(p) for p in drawn)
    assert stats["preservation_videos"]["clips_per_motion"] == {"smoke_wave": 2}
    assert stats["preservation_videos"]["captions"] == ["a person is waving"]


def test_user_folder_of_clips_needs_a_caption_per_clip(tmp_path):
    folder = tmp_path / "clips"
    folder.mkdir()
    write_video(folder / "x.mp4", np.zeros((9, 16, 16, 3), np.uint8), fps=8)
    with pytest.raises(DataError, match="captions.json"):
        folder_clips(folder)
    (folder / "captions.json").write_text(json.dumps({"y.mp4": "a cat"}))
    with pytest.raises(DataError, match="no caption for x.mp4"):
        folder_clips(folder)
    (folder / "captions.json").write_text(json.dumps({"x.mp4": "a person is cooking"}))
    clips = folder_clips(folder)
    assert [(c.path.name, c.caption) for c in clips] == [("x.mp4", "a person is cooking")]


def test_a_data_root_without_other_motions_is_a_clear_error(tmp_path, backbone, smoke_case, made):
    import dataclasses
    import shutil

    root = tmp_path / "root"
    shutil.copytree(smoke_case.identity_dir, root / "identities" / smoke_case.identity.name)
    shutil.copytree(smoke_case.motion_dir, root / "motions" / smoke_case.motion.name)
    case = dataclasses.replace(smoke_case, data_root=root, identity_dir=None, motion_dir=None)
    assert case.motion_dir == root / "motions" / smoke_case.motion.name
    method = MotionBoothMethod(backbone, config())
    made.append(method)
    with pytest.raises(ConfigError, match="preservation_videos=DIR"):
        method.prepare(case)
    assert MotionBoothMethod(backbone, config(video_loss_weight=0)).prepare(case).videos is None


# ---- configs ---------------------------------------------------------------------------------------
def test_defaults_follow_the_supplement_and_the_variant_is_motionbooth(backbone):
    cfg = MotionBoothConfig()
    assert (cfg.max_train_steps, cfg.learning_rate, cfg.identity_batch_size) == (300, 5e-6, 10)
    assert (cfg.adam_betas, cfg.adam_weight_decay, cfg.unique_token) == ((0.9, 0.999), 0.01, "sks")
    assert (cfg.region_loss_weight, cfg.video_loss_weight, cfg.cross_attn_loss_weight) == (
        1.0,
        1.0,
        0.01,
    )
    method = MotionBoothMethod(backbone)
    assert method.variant_key() == "motionbooth" and method.planned_train_steps() == 300
    assert (
        MotionBoothMethod(backbone, MotionBoothConfig(steps_scale=0.1)).planned_train_steps() == 30
    )
    assert MotionBoothMethod(
        backbone, MotionBoothConfig(cross_attn_loss_weight=0)
    ).variant_key() == ("motionbooth[cross_attn_loss_weight=0]")


@pytest.mark.parametrize(
    "overrides, fragment",
    [
        ({"region_loss_weight": -1}, "region_loss_weight must be a number >= 0"),
        ({"region_loss_weight": 0, "cross_attn_loss_weight": 0}, "nothing would learn"),
        ({"unique_token": "s ks"}, "unique_token"),
        ({"cross_attn_blocks": (1, 1)}, "twice"),
        ({"max_train_steps": 0}, "nothing would be trained"),
    ],
)
def test_configs_reject_contradictions(overrides, fragment):
    with pytest.raises(ConfigError, match=fragment):
        MotionBoothConfig(**overrides)


def test_an_unknown_block_is_a_config_error(backbone, smoke_case, made):
    method = MotionBoothMethod(backbone, config(cross_attn_blocks=(5,)))
    made.append(method)
    with pytest.raises(ConfigError, match="cross_attn_blocks=.5,.*2 blocks"):
        method.train(smoke_case)


# ---- training, state, teardown ---------------------------------------------------------------------
def _fixed_image_losses(method, data):
    """Region and cross-attention losses of the subject images at fixed noise and timesteps."""
    backbone = method.backbone
    store = SubjectAttentionStore()
    store.attach(backbone.transformer)
    g = torch.Generator().manual_seed(7)
    latents = torch.cat(data.image_latents)
    mask = torch.cat(data.region_masks)
    target = torch.cat(data.attention_targets)
    region, attn = [], []
    try:
        with torch.no_grad():
            for t in (100, 400, 700):
                noise = torch.randn(latents.shape, generator=g)
                with store.record(data.subject_positions):
                    error = backbone.denoising_error(
                        latents, data.image_prompt_embeds, timesteps=t, noise=noise
                    )
                    attn.append(float(cross_attention_loss(store.aggregate(), target)))
                region.append(float(masked_mean(error, mask)))
    finally:
        store.detach()
    return float(np.mean(region)), float(np.mean(attn))


def test_training_lowers_the_losses_on_the_smoke_case(backbone, smoke_case, made):
    method = MotionBoothMethod(backbone, config(steps_scale=1 / 6))  # 50 steps
    made.append(method)
    data = method.prepare(smoke_case)
    assert data.image_prompt == "a toy sks"
    assert set(data.masks.values()) == {"full_frame"}  # the tiny profile's named fallback
    region_before, attn_before = _fixed_image_losses(method, data)
    seen = []
    stats = method.fit(data, step_callback=lambda stage, step: seen.append(step))
    assert seen == list(range(50)) and stats["steps"] == 50 and len(stats["loss"]) == 50
    assert stats["micro_batches_per_step"] == 2
    region_after, attn_after = _fixed_image_losses(method, data)
    assert region_after < 0.8 * region_before, (region_before, region_after)
    assert attn_after < 0.9 * attn_before, (attn_before, attn_after)
    assert np.mean(stats["loss"][-10:]) < np.mean(stats["loss"][:10])


def test_train_records_masks_tokens_and_clips(backbone, smoke_case, made):
    method = MotionBoothMethod(backbone, config(steps_scale=0.01))
    made.append(method)
    stats = method.train(smoke_case)
    assert stats["subject_masks"] == {f"0{i}.png": "full_frame" for i in range(4)}
    assert stats["subject_mask_coverage"] == {f"0{i}.png": 1.0 for i in range(4)}
    assert stats["identity_prompt"] == "a toy sks" and "".join(stats["subject_tokens"]) == "toysks"
    assert stats["trainable_parameters"] == {
        "transformer": sum(p.numel() for p in backbone.transformer.parameters())
    }


def test_attention_only_training_moves_only_the_attentions(backbone, smoke_case, made):
    method = MotionBoothMethod(backbone, config(steps_scale=0.01, trained_parameters="attention"))
    made.append(method)
    before = {k: v.clone() for k, v in backbone.transformer.state_dict().items()}
    method.train(smoke_case)
    after = backbone.transformer.state_dict()
    moved = {k for k in before if not torch.equal(before[k], after[k])}
    assert moved and all(".attn1." in k for k in moved)
    assert set(method.state_dict()) == {f"transformer.{k}" for k in before if ".attn1." in k}


def test_save_load_generate_reproduces_frames_and_teardown_restores(
    backbone, smoke_case, made, tmp_path
):
    cfg = config(steps_scale=0.02)
    method = MotionBoothMethod(backbone, cfg)
    made.append(method)
    with pytest.raises(ConfigError, match="nothing learned"):
        method.generate(["toy * is swinging"], seed=0)
    method.train(smoke_case)
    prompts = list(smoke_case.prompts[:1])
    videos = method.generate(prompts, seed=2)
    method.save(tmp_path / "state")
    method.teardown()
    made.clear()

    from dualreal_bench.method import build_method

    base = build_method("base", backbone).generate(prompts, seed=2)
    assert not np.array_equal(videos[0], base[0])
    loaded = MotionBoothMethod(backbone, cfg)
    made.append(loaded)
    loaded.load(tmp_path / "state")
    again = loaded.generate(prompts, seed=2)
    assert videos[0].dtype == np.uint8 and videos[0].shape == (9, 64, 64, 3)
    assert np.array_equal(videos[0], again[0])
    with pytest.raises(WeightsError, match="unexpected 1"):
        loaded.load_state_dict({**loaded.state_dict(), "transformer.extra": torch.zeros(1)})


def test_generation_feeds_the_unique_token(backbone, smoke_case, made, monkeypatch):
    method = MotionBoothMethod(backbone, config(steps_scale=0.01, video_loss_weight=0))
    made.append(method)
    seen = []
    original = backbone.__class__.encode_prompts

    def spy(self, prompts, **kw):
        seen.extend(prompts)
        return original(self, prompts, **kw)

    monkeypatch.setattr(backbone.__class__, "encode_prompts", spy)
    stats = method.train(smoke_case)
    assert "video_loss" not in stats and stats["micro_batches_per_step"] == 1
    seen.clear()
    method.generate(["toy * with a hat is swinging"], seed=0)
    assert "toy sks with a hat is swinging" in seen


# ---- inspect and the smoke run ---------------------------------------------------------------------
def test_inspect_on_cogvideox_5b():
    from dualreal_bench.analysis.inspection import inspect_method

    result = inspect_method("motionbooth", "cogvideox-5b")
    assert (
        result["trainable_total"] == 5_570_283_072 and result["frozen_transformer_parameters"] == 0
    )
    assert result["auxiliary_models"] == {
        "SAM facebook/sam-vit-huge (subject masks, before training)": 641_090_864
    }
    stages = {s["name"]: s for s in result["memory"]["stages"]}
    images, clip = stages["images"], stages["videos"]
    assert (images["batch_size"], images["frames"]) == (10, 1)  # the image micro-batch
    assert (clip["batch_size"], clip["frames"]) == (1, 49)  # one unrelated clip
    # fp32 master weights and gradients of every parameter (the transformer cast for bf16)
    assert clip["bytes"]["learned parameters"] == clip["bytes"]["gradients"] == 4 * 5_570_283_072
    attention = inspect_method("motionbooth", "cogvideox-5b", ["trained_parameters=attention"],
                               measure_memory=False)  # fmt: skip
    assert 0 < attention["trainable_total"] < result["trainable_total"] / 2

    # the image micro-batch (10 images) with its attention slice saves less than the clip, and
    # more than without the slice
    plain = inspect_method("motionbooth", "cogvideox-5b", ["cross_attn_loss_weight=0"])
    plain_images = next(s for s in plain["memory"]["stages"] if s["name"] == "images")

    def block(stage):
        return max(stage["activation_measurement"]["block_bytes"])

    assert block(plain_images) < block(images) < block(clip)


def test_smoke_run_and_report_show_a_motionbooth_row(tmp_path, capsys):
    from dualreal_bench.cli import main
    from dualreal_bench.report import build_report
    from dualreal_bench.run_config import RunConfig
    from dualreal_bench.runner import Runner

    run = RunConfig(method="motionbooth", suite="smoke", num_prompts=1, output_dir=str(tmp_path),
                    progress=False, run_id="mb")  # fmt: skip
    Runner(run).run()
    train = json.loads(next(tmp_path.rglob("train.json")).read_text())
    assert set(train["subject_masks"].values()) == {"full_frame"} and train["steps"] == 300
    report = build_report(tmp_path, "mb")
    table1 = next(t for t in report.tables if t.id == "table1")
    assert list(table1.variants.values()) == ["motionbooth"]
    assert table1.cells[(table1.rows[0], "clip_t")].n_videos == 1
    capsys.readouterr()
    assert main(["report", "--output-dir", str(tmp_path), "--run-id", "mb", "--format",
                 "markdown", "--quiet"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "Table 1" in out and "| motionbooth |" in out, out
