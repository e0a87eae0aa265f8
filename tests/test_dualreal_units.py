"""DualReal's building blocks on a tiny diffusers CogVideoX transformer built here.

Oracles: the base transformer (hooks removed), and a naive re-implementation of the
transformer forward with adapters inserted as the authors' ``CogVideoXBlockWithAdapter``
inserts them (wenc-k/DualReal, model/dit.py), with the controller written out from the
paper's formula.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F
from diffusers import CogVideoXTransformer3DModel
from diffusers.models.embeddings import get_3d_rotary_pos_embed
from dualreal_bench.methods._common.adapters import BottleneckAdapter, mix_adapters
from dualreal_bench.methods.dualreal import DualRealConfig, DualRealModel
from dualreal_bench.methods.dualreal.controller import StageBlenderController, block_groups

from dualreal_bench.errors import ConfigError

COND_DIM = 8
TEXT_LEN = 16


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest.py


def tiny_transformer(num_layers: int = 2) -> CogVideoXTransformer3DModel:
    torch.manual_seed(0)
    return CogVideoXTransformer3DModel(
        num_layers=num_layers,
        num_attention_heads=2,
        attention_head_dim=16,
        in_channels=4,
        out_channels=4,
        time_embed_dim=16,
        text_embed_dim=32,
        sample_width=8,
        sample_height=8,
        sample_frames=9,
        patch_size=2,
        max_text_seq_length=TEXT_LEN,
        use_rotary_positional_embeddings=True,
    ).eval()


def inputs(batch: int = 2, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    latents = torch.randn(batch, 3, 4, 8, 8, generator=g)
    text = torch.randn(batch, TEXT_LEN, 32, generator=g)
    timesteps = torch.tensor([37, 811, 450, 5][:batch])
    rotary = get_3d_rotary_pos_embed(16, ((0, 0), (4, 4)), (4, 4), 3)
    return latents, text, timesteps, rotary


def run(transformer, latents, text, timesteps, rotary):
    return transformer(
        hidden_states=latents,
        encoder_hidden_states=text,
        timestep=timesteps,
        image_rotary_emb=rotary,
        return_dict=False,
    )[0]


def randomize(model: DualRealModel, seed: int = 3) -> None:
    """Make every learned weight non-trivial (no zero-init anywhere), so no test is vacuous."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.3)


def naive_controller(ctrl: StageBlenderController, t_emb, tokens):
    """The paper's formula with explicit weights."""
    lin = F.linear
    c = lin(tokens.max(dim=1).values, ctrl.token_proj.weight, ctrl.token_proj.bias)
    mod = lin(F.silu(t_emb), ctrl.time_proj.weight, ctrl.time_proj.bias)
    d = c.shape[1]
    shift, scale, gate = mod[:, :d], mod[:, d : 2 * d], mod[:, 2 * d :]
    mu, var = c.mean(-1, keepdim=True), c.var(-1, unbiased=False, keepdim=True)
    ln = (c - mu) / torch.sqrt(var + 1e-5) * ctrl.norm.weight + ctrl.norm.bias
    f = ln * (1 + scale) + shift
    f = lin(
        F.gelu(lin(f, ctrl.fuse_up.weight, ctrl.fuse_up.bias), approximate="tanh"),
        ctrl.fuse_down.weight,
        ctrl.fuse_down.bias,
    )
    f = f + gate * c
    h = F.relu(lin(F.relu(f), ctrl.head_hidden.weight, ctrl.head_hidden.bias))
    return torch.sigmoid(lin(h, ctrl.head_out.weight, ctrl.head_out.bias)) * ctrl.scale


def reference_forward(
    t, model: DualRealModel, latents, text, timesteps, rotary, cond, *, skip_terms_only=False
):
    """diffusers' CogVideoXTransformer3DModel.forward (CogVideoX 1.0), with the adapters added
    the authors' way: on the concatenated [text, visual] normalised tokens, added to the
    attention / FF output before the gates. ``skip_terms_only``: add (w_id + w_m) * x only."""
    cfg = model.config
    batch, frames, _, height, width = latents.shape
    emb = t.time_embedding(t.time_proj(timesteps).to(latents.dtype))
    tokens = t.embedding_dropout(t.patch_embed(text, latents))
    if model.controller is not None:
        w_id = naive_controller(model.controller, emb, tokens)
        w_m = model.controller.scale - w_id
    else:
        w_id = torch.full((batch, model.num_groups), cfg.fixed_weights[0])
        w_m = torch.full((batch, model.num_groups), cfg.fixed_weights[1])
    n_text = text.shape[1]
    enc, hid = tokens[:, :n_text], tokens[:, n_text:]
    per_group = model.num_blocks // model.num_groups

    def adapters(place, x, g):
        a = w_id[:, g].view(-1, 1, 1)
        b = w_m[:, g].view(-1, 1, 1)
        if skip_terms_only:
            return (a + b) * x
        return a * place.identity(x) + b * place.motion(x, cond, cfg.cond_scale)

    for i, block in enumerate(t.transformer_blocks):
        g = i // per_group
        n_h, n_e, gate, e_gate = block.norm1(hid, enc, emb)
        a_h, a_e = block.attn1(
            hidden_states=n_h, encoder_hidden_states=n_e, image_rotary_emb=rotary
        )
        delta = adapters(model.blocks[i].attn, torch.cat([n_e, n_h], dim=1), g)
        a_e, a_h = a_e + delta[:, :n_text], a_h + delta[:, n_text:]
        hid, enc = hid + gate * a_h, enc + e_gate * a_e
        n_h, n_e, gate_ff, e_gate_ff = block.norm2(hid, enc, emb)
        x = torch.cat([n_e, n_h], dim=1)
        ff = block.ff(x) + adapters(model.blocks[i].ff, x, g)
        hid, enc = hid + gate_ff * ff[:, n_text:], enc + e_gate_ff * ff[:, :n_text]
    hid = t.norm_out(t.norm_final(hid), temb=emb)
    hid = t.proj_out(hid)
    p = t.config.patch_size
    out = hid.reshape(batch, frames, height // p, width // p, -1, p, p)
    return out.permute(0, 1, 4, 2, 5, 3, 6).flatten(5, 6).flatten(3, 4)


# ---- the adapter ---------------------------------------------------------------------------
def test_bottleneck_adapter_is_eq1_and_starts_as_skip():
    torch.manual_seed(0)
    x, c = torch.randn(2, 5, 12), torch.randn(2, 6)
    fresh = BottleneckAdapter(12, 4, 6)
    assert torch.equal(fresh(x, c), x)  # zero-init up: A(x) = x
    assert torch.equal(BottleneckAdapter(12, 4, 6, skip=False)(x, c), torch.zeros_like(x))
    a = BottleneckAdapter(12, 4, 6, zero_init_up=False)
    x_cond = x + 0.7 * (c @ a.cond.weight.T + a.cond.bias)[:, None, :]
    expected = (
        F.gelu(x_cond @ a.down.weight.T + a.down.bias) @ a.up.weight.T + a.up.bias + x
    )  # skip adds x, not x'
    torch.testing.assert_close(a(x, c, 0.7), expected)
    torch.testing.assert_close(
        a(x, None), F.gelu(x @ a.down.weight.T + a.down.bias) @ a.up.weight.T + a.up.bias + x
    )


def test_fused_mix_equals_naive_weighted_sum():
    torch.manual_seed(0)
    x, c = torch.randn(3, 7, 12), torch.randn(1, 6)
    ida = BottleneckAdapter(12, 4, None, zero_init_up=False)
    mot = BottleneckAdapter(12, 4, 6, zero_init_up=False)
    w1, w2 = torch.rand(3), torch.rand(3)
    naive = w1.view(-1, 1, 1) * ida(x) + w2.view(-1, 1, 1) * mot(x, c, 1.5)
    torch.testing.assert_close(mix_adapters(x, [ida, mot], [w1, w2], [None, c], 1.5), naive)
    torch.testing.assert_close(mix_adapters(x, [mot], [0.1], [c]), 0.1 * mot(x, c))


# ---- the controller and the groups -----------------------------------------------------------
def test_controller_shape_bounds_and_formula():
    torch.manual_seed(0)
    ctrl = StageBlenderController(token_dim=32, time_dim=16, num_groups=7)
    t_emb, tokens = torch.randn(4, 16), torch.randn(4, 20, 32)
    w_id = ctrl(t_emb, tokens)
    assert w_id.shape == (4, 7)
    torch.testing.assert_close(w_id, torch.full((4, 7), 0.1))  # zero-init head: w_id = w_m = 0.1
    with torch.no_grad():  # a trained head (the rest keeps torch's default init)
        ctrl.head_out.weight.normal_(0, 1.0)
        ctrl.head_out.bias.normal_(0, 1.0)
    w_id, w_m = ctrl.weights(t_emb, tokens)
    assert w_id.shape == (4, 7) and w_m.shape == (4, 7)
    assert bool(((w_id > 0) & (w_id < 0.2)).all()) and w_id.std() > 0.01
    torch.testing.assert_close(w_id + w_m, torch.full_like(w_id, 0.2))
    torch.testing.assert_close(w_id, naive_controller(ctrl, t_emb, tokens))


def test_block_groups_mapping_and_errors():
    assert block_groups(42, 7) == [i // 6 for i in range(42)]
    assert block_groups(42, 42) == list(range(42))
    assert block_groups(42, 1) == [0] * 42
    assert block_groups(42, 2) == [0] * 21 + [1] * 21
    with pytest.raises(ConfigError, match=r"num_groups=5 .*42 transformer blocks"):
        block_groups(42, 5)


def test_num_groups_must_divide_the_blocks_on_attachment():
    t = tiny_transformer(num_layers=2)
    with pytest.raises(ConfigError, match=r"num_groups=7 does not divide the backbone's 2"):
        DualRealModel.for_transformer(t, DualRealConfig(num_groups=7))
    assert (
        DualRealModel.for_transformer(t, DualRealConfig()).num_groups == 2
    )  # unset: largest divisor <= 7
    assert DualRealModel.for_transformer(tiny_transformer(6), DualRealConfig()).num_groups == 6


def test_each_block_uses_its_groups_weight():
    t = tiny_transformer(num_layers=4)
    model = DualRealModel.for_transformer(t, DualRealConfig(num_groups=2, cond_dim=COND_DIM))
    with torch.no_grad():  # group 0 -> w_id = 0.2 * sigmoid(3), group 1 -> 0.2 * sigmoid(-3)
        model.controller.head_out.bias.copy_(torch.tensor([3.0, -3.0]))
    model.attach(t)
    with torch.no_grad():
        run(t, *inputs(batch=1))
    hi, lo = 0.2 * torch.sigmoid(torch.tensor(3.0)), 0.2 * torch.sigmoid(torch.tensor(-3.0))
    got = [[float(w) for w in model.block_weights(i)] for i in range(4)]
    expected = [[hi, 0.2 - hi], [hi, 0.2 - hi], [lo, 0.2 - lo], [lo, 0.2 - lo]]
    torch.testing.assert_close(torch.tensor(got), torch.tensor(expected).float())
    model.detach()


# ---- attached to the transformer ---------------------------------------------------------------
def test_untrained_without_skip_is_exactly_the_base_model():
    t = tiny_transformer()
    args = inputs()
    with torch.no_grad():
        base = run(t, *args)
        model = DualRealModel.for_transformer(
            t, DualRealConfig(adapter_skip=False, cond_dim=COND_DIM)
        )
        model.attach(t)
        model.condition = torch.randn(1, COND_DIM)
        assert torch.equal(run(t, *args), base)
        model.detach()
        assert torch.equal(run(t, *args), base)


def test_untrained_with_skip_adds_the_weighted_inputs():
    t = tiny_transformer()
    args = inputs()
    model = DualRealModel.for_transformer(t, DualRealConfig(cond_dim=COND_DIM))
    cond = torch.randn(1, COND_DIM)
    with torch.no_grad():
        base = run(t, *args)
        expected = reference_forward(t, model, *args, cond, skip_terms_only=True)
        model.attach(t)
        model.condition = cond
        out = run(t, *args)
        model.detach()
    assert (
        out - base
    ).abs().max() > 1e-3  # the skip makes an untrained method differ from the base
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "overrides",
    [{}, {"controller": False}, {"adapter_skip": False, "cond_scale": 2.5}, {"num_groups": 1}],
    ids=["default", "no-controller", "no-skip-lam2.5", "n=1"],
)
def test_trained_weights_match_the_reference_forward(overrides):
    t = tiny_transformer()
    args = inputs()
    config = dataclasses.replace(DualRealConfig(cond_dim=COND_DIM), **overrides)
    model = DualRealModel.for_transformer(t, config, zero_init_up=False)
    randomize(model)
    cond = torch.randn(2, COND_DIM)
    with torch.no_grad():
        expected = reference_forward(t, model, *args, cond)
        model.attach(t)
        model.condition = cond
        model.trace = []
        out = run(t, *args)
        model.detach()
    torch.testing.assert_close(out, expected, rtol=1e-4, atol=1e-5)
    assert len(model.trace) == 1 and model.trace[0].shape == (2, model.num_groups)


def test_condition_reaches_only_the_motion_adapters():
    t = tiny_transformer()
    args = inputs()
    model = DualRealModel.for_transformer(t, DualRealConfig(cond_dim=COND_DIM), zero_init_up=False)
    randomize(model)
    assert all(
        b.attn.identity.cond is None and b.attn.motion.cond is not None for b in model.blocks
    )
    model.attach(t)
    with torch.no_grad():
        model.active = (True, False)  # identity adapters only: the condition must not matter
        model.condition = torch.randn(1, COND_DIM)
        a = run(t, *args)
        model.condition = torch.randn(1, COND_DIM)
        assert torch.equal(run(t, *args), a)
        model.active = (False, True)
        b = run(t, *args)
        model.condition = torch.randn(1, COND_DIM)
        assert not torch.allclose(run(t, *args), b)
    model.detach()


def test_gradients_flow_through_hooks_under_gradient_checkpointing():
    t = tiny_transformer()
    t.enable_gradient_checkpointing()
    t.requires_grad_(False)
    args = inputs()
    model = DualRealModel.for_transformer(t, DualRealConfig(cond_dim=COND_DIM), zero_init_up=False)
    randomize(model)
    model.attach(t)
    model.condition = torch.randn(2, COND_DIM)
    run(t, *args).square().mean().backward()
    grads_ckpt = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad(set_to_none=True)
    t.disable_gradient_checkpointing()
    run(t, *args).square().mean().backward()
    model.detach()
    assert all(g.abs().sum() > 0 for g in grads_ckpt.values())
    for n, p in model.named_parameters():
        torch.testing.assert_close(grads_ckpt[n], p.grad, rtol=1e-4, atol=1e-6, msg=n)


def test_attach_checks_and_detach_restores():
    t = tiny_transformer()
    model = DualRealModel.for_transformer(t, DualRealConfig(cond_dim=COND_DIM))
    model.attach(t)
    assert {name.split(".")[0] for name, _ in model.named_parameters()} == {"blocks", "controller"}
    other = DualRealModel.for_transformer(t, DualRealConfig(cond_dim=COND_DIM))
    with pytest.raises(RuntimeError, match="another DualReal"):
        other.attach(t)
    model.detach()
    other.attach(t)
    other.detach()
    with pytest.raises(ConfigError, match="cannot attach"):
        DualRealModel.for_transformer(tiny_transformer(4), DualRealConfig(num_groups=1)).attach(t)
    assert not any(
        block.attn1._forward_hooks or block.ff._forward_hooks for block in t.transformer_blocks
    )


# ---- the config --------------------------------------------------------------------------------
def test_config_overrides_from_the_command_line():
    cfg = DualRealConfig().with_overrides(
        [
            "controller=false",
            "num_groups=42",
            "adapter_skip=false",
            "motion_ratio=0.3",
            "p_image_zero=0.2",
            "adapter_dim=32",
            "cond_scale=0.5",
            "dual_aware=true",
            "fixed_weights=0.05,0.15",
        ]
    )
    assert (cfg.controller, cfg.num_groups, cfg.adapter_skip, cfg.motion_ratio) == (
        False,
        42,
        False,
        0.3,
    )
    assert (cfg.p_image_zero, cfg.adapter_dim, cfg.cond_scale, cfg.fixed_weights) == (
        0.2,
        32,
        0.5,
        (0.05, 0.15),
    )
    assert not cfg.use_controller
    assert not DualRealConfig(dual_aware=False).use_controller and DualRealConfig().use_controller
    assert DualRealConfig.from_dict(cfg.to_dict()) == cfg


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["dual_aware=false", "controller=true"], "contradicts dual_aware=false"),
        (["motion_ratio=1.5"], "motion_ratio must be in"),
        (["motion_ratio=1"], "never trains the identity"),
        (["num_groups=0"], "num_groups must be >= 1"),
        (["adam_betas=0.9,1.0"], "adam_betas"),
        (["identity_prompt=a {noun} *"], "identity_prompt"),
        (["steps_scale=0"], "steps_scale"),
        (["controller=maybe"], "controller"),
    ],
)
def test_config_rejects_contradictions(overrides, message):
    with pytest.raises(ConfigError, match=message):
        DualRealConfig().with_overrides(overrides)
