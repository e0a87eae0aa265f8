"""What a method says about itself: ``Method.describe()`` (the resolved config, the variant key,
the label), the optional capabilities declared on ``Method`` with their defaults, and the
shared ``TrainingConfig`` (each method's defaults unchanged by the move into it).

Oracles: DualReal's group count worked out by hand for the three block counts (2 tiny, 30
CogVideoX-2B, 42 CogVideoX-5B: n = 7 where it divides, else the largest divisor below 7), and
every bundled config's defaults as the code before ``methods/_common`` gave them.
"""

from __future__ import annotations

import dataclasses
import json
import types

import pytest
import torch
from diffusers import CogVideoXTransformer3DModel
from dualreal_bench.methods._common.config import TrainingConfig
from dualreal_bench.methods.dreamvideo import DreamVideoConfig
from dualreal_bench.methods.dualreal import DualRealConfig, DualRealMethod
from dualreal_bench.methods.lora import LoRAConfig
from dualreal_bench.methods.sequential import SequentialConfig

from dualreal_bench.backbone.profiles import COGVIDEOX_2B_TRANSFORMER, COGVIDEOX_5B_TRANSFORMER
from dualreal_bench.errors import ConfigError
from dualreal_bench.method import Method, MethodConfig, build_method, get_method_class

# one torch thread per test; `backbone` (tiny) comes from conftest.py
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def meta_backbone(transformer_config: dict) -> types.SimpleNamespace:
    """A published transformer on the meta device (no weights), frozen, as ``inspect`` builds it."""
    with torch.device("meta"):
        transformer = CogVideoXTransformer3DModel(**transformer_config)
    transformer.requires_grad_(False)
    config = types.SimpleNamespace(profile="meta")
    return types.SimpleNamespace(
        transformer=transformer, config=config, device=torch.device("meta"), dtype=torch.bfloat16
    )


@pytest.fixture(scope="module")
def cogvideox_5b():
    return meta_backbone(COGVIDEOX_5B_TRANSFORMER)


@pytest.fixture(scope="module")
def cogvideox_2b():
    return meta_backbone(COGVIDEOX_2B_TRANSFORMER)


def described(name, backbone, overrides=()):
    method = build_method(name, backbone, list(overrides))
    try:
        return method.describe()
    finally:
        method.teardown()


# ---- DualReal: the group count actually used, and the variant key --------------------------
def test_default_dualreal_on_tiny_is_labelled_with_its_two_groups(backbone):
    d = described("dualreal", backbone)
    assert set(d) == {"name", "class", "config", "variant", "variant_version", "label"}
    assert d["variant_version"] == 2  # the generation of defaults the key is relative to
    assert d["name"] == "dualreal"
    assert d["class"] == "dualreal_bench.methods.dualreal.method:DualRealMethod"
    assert d["config"]["num_groups"] == 2 and d["config"]["controller"] is True
    assert d["variant"] == "dualreal[num_groups=2]"
    assert d["label"] == "DualReal (n = 2)"
    assert json.loads(json.dumps(d)) == d  # stored as is in a record
    # the resolved config builds an equivalent config (the unset values made explicit)
    again = DualRealConfig.from_dict(d["config"])
    assert again.num_groups == 2 and again.use_controller


def test_default_dualreal_on_cogvideox_2b_uses_six_groups(cogvideox_2b):
    assert len(cogvideox_2b.transformer.transformer_blocks) == 30
    d = described("dualreal", cogvideox_2b)
    assert d["config"]["num_groups"] == 6
    assert d["variant"] == "dualreal[num_groups=6]"


def test_default_dualreal_on_cogvideox_5b_is_the_paper_variant(cogvideox_5b):
    d = described("dualreal", cogvideox_5b)
    assert d["config"]["num_groups"] == 7
    assert d["variant"] == "dualreal" and d["label"] == "DualReal"
    assert described("dualreal", cogvideox_5b, ["num_groups=7"])["variant"] == "dualreal"


@pytest.mark.parametrize(
    "overrides, key, label",
    [
        (
            ["controller=false"],
            "dualreal[controller=false]",
            "DualReal w/o StageBlender controller",
        ),
        (["dual_aware=false"], "dualreal[dual_aware=false]", "DualReal w/o dual-aware adaptation"),
        # the same computation as the line above: the same key
        (["dual_aware=false", "controller=false"], "dualreal[dual_aware=false]", None),
        (["num_groups=1"], "dualreal[num_groups=1]", "DualReal (n = 1)"),
        (["num_groups=42"], "dualreal[num_groups=42]", "DualReal (n = 42)"),
        # inactive without the controller: no effect, not in the key
        (["controller=false", "num_groups=1"], "dualreal[controller=false]", None),
        (["controller=false", "fixed_weights=0.05,0.15"], None, None),
        # options that are not a variant: the training seed, where the weights are
        (["seed=3", "image_encoder_path=/somewhere/open_clip.bin"], "dualreal", "DualReal"),
        (["steps_scale=0.01"], "dualreal[steps_scale=0.01]", "DualReal (steps_scale=0.01)"),
    ],
)
def test_dualreal_variant_keys_on_cogvideox_5b(cogvideox_5b, overrides, key, label):
    d = described("dualreal", cogvideox_5b, overrides)
    if key is None:
        assert d["variant"] == "dualreal[controller=false,fixed_weights=[0.05,0.15]]"
    else:
        assert d["variant"] == key
    if label is not None:
        assert d["label"] == label


def test_dualreal_without_controller_on_tiny_names_no_group_count(backbone):
    d = described("dualreal", backbone, ["controller=false"])
    assert d["config"]["num_groups"] == 2  # still resolved, but without effect
    assert d["variant"] == "dualreal[controller=false]"


def test_variant_keys_are_stable(cogvideox_5b):
    one = ["adapter_dim=32", "controller=false", "lr_scheduler=constant"]
    keys = {described("dualreal", cogvideox_5b, order)["variant"] for order in (one, one[::-1])}
    keys.add(described("dualreal", cogvideox_5b, one)["variant"])
    assert keys == {"dualreal[adapter_dim=32,controller=false,lr_scheduler=constant]"}


# ---- the baselines and the default implementation ----------------------------------------------
@pytest.mark.parametrize(
    "name, overrides, key, label",
    [
        ("base", [], "base", "base"),
        ("lora", [], "lora", "lora"),
        (
            "lora",
            ["fusion_weights=0.5,1.0"],
            "lora[fusion_weights=[0.5,1.0]]",
            "lora (fusion_weights=[0.5,1.0])",
        ),
        # issue 12: the authors' factor averaging is the default; peft's delta sum is a variant
        # whose own weights (1, 1) are part of it, and the authors' (0.5, 0.5) are no variant
        ("lora", ["fusion=delta_sum"], "lora[fusion=delta_sum]", "lora (fusion=delta_sum)"),
        (
            "lora",
            ["fusion=delta_sum", "fusion_weights=1.0,1.0"],
            "lora[fusion=delta_sum]",
            "lora (fusion=delta_sum)",
        ),
        ("lora", ["fusion_weights=0.5,0.5"], "lora", "lora"),
        (
            "lora",
            ["rank=4", "placeholder=strip"],
            "lora[placeholder=strip,rank=4]",
            "lora (placeholder=strip, rank=4)",
        ),
        (
            "sequential",
            ["steps_scale=0.01"],
            "sequential[steps_scale=0.01]",
            "sequential (steps_scale=0.01)",
        ),
        (
            "dreamvideo",
            ["textual_inversion=false"],
            "dreamvideo[textual_inversion=false]",
            "dreamvideo (textual_inversion=false)",
        ),
    ],
)
def test_baseline_variant_keys(backbone, name, overrides, key, label):
    d = described(name, backbone, overrides)
    assert (d["name"], d["variant"], d["label"]) == (name, key, label)
    config = get_method_class(name).config_class().with_overrides(overrides)
    resolved = {}  # LoRA resolves unset fusion weights to its fusion's own
    if name == "lora":
        resolved["fusion_weights"] = list(config.resolved_fusion_weights)
    assert d["config"] == json.loads(json.dumps({**config.to_dict(), **resolved}))


@dataclasses.dataclass
class _ToyConfig(MethodConfig):
    #: how loud
    volume: int = 3
    #: where the toy lives (not a variant)
    home: str = dataclasses.field(default="", metadata={"variant": False})


class _Toy(Method):
    name = "toy"
    config_class = _ToyConfig

    def train(self, case):
        return {}

    def generate(self, prompts, seed):
        return []


def test_default_describe_of_a_third_party_method(backbone):
    toy = _Toy(backbone, _ToyConfig(volume=5, home="/x", seed=2))
    assert toy.describe() == {
        "name": "toy",
        "class": f"{__name__}:_Toy",
        "config": {"seed": 2, "volume": 5, "home": "/x"},
        "variant": "toy[volume=5]",
        "variant_version": 2,
        "label": "toy (volume=5)",
    }
    assert _Toy(backbone).variant_key() == "toy"


def test_optional_capabilities_have_declared_defaults(backbone):
    base = build_method("base", backbone)
    assert base.parameter_groups() == {"transformer (requires_grad)": []}
    assert base.fit(None) == {"steps": 0}
    assert base.auxiliary_models() == {} and base.resolved_options() == {}
    with base.inspection_context(3):
        pass
    toy = _Toy(backbone)
    with pytest.raises(NotImplementedError, match="_Toy has no fit"):
        toy.fit(None)
    param = next(backbone.transformer.parameters())
    param.requires_grad_(True)
    try:
        assert toy.parameter_groups()["transformer (requires_grad)"] == [param]
    finally:
        param.requires_grad_(False)


def test_dualreal_capabilities(backbone):
    method = DualRealMethod(backbone, DualRealConfig(cond_dim=16))
    try:
        groups = method.parameter_groups()
        assert set(groups) == {"identity adapters", "motion adapters", "controller"}
        # vae_tiling: "auto" resolves to the authors' untiled decode off CUDA
        assert method.resolved_options() == {
            "num_groups": 2,
            "controller": True,
            "vae_tiling": "off",
        }
        assert list(method.auxiliary_models()) == ["image encoder (tiny open_clip, visual tower)"]
        with method.inspection_context(2):
            assert method.model.condition.shape == (2, 16)
        assert method.model.condition is None
    finally:
        method.teardown()


# ---- the shared training config ------------------------------------------------------------------
#: every bundled config's defaults as the code before the move into methods/_common gave them
DEFAULTS_BEFORE = json.loads(
    """{"base": {"seed": 0}, "dreamvideo": {"adam_betas": [0.9, 0.95], "adam_epsilon": 1e-08,
    "adam_weight_decay": 0.0001, "adapter_dim": 64, "adapter_skip": false, "cond_dim": 1024,
    "cond_scale": 1.0, "fusion_weights": [1.0, 1.0], "identity_batch_size": 4,
    "identity_lr": 1e-05, "identity_prompt": "a {class_noun} *", "identity_steps": 500,
    "image_encoder": "auto", "image_encoder_path": "", "initializer_word": "",
    "lr_scheduler": "constant", "lr_warmup_steps": 0, "max_grad_norm": 1.0,
    "motion_batch_size": 1, "motion_lr": 4e-05, "motion_prompt": "a person is {action}",
    "motion_steps": 600, "optimizer": "auto", "p_image_zero": 0.5, "p_text_zero": 0.5,
    "seed": 0, "steps_scale": 1.0, "textual_inversion": true, "textual_inversion_lr": 0.0001,
    "textual_inversion_steps": 3000}, "dualreal": {"adam_betas": [0.9, 0.95],
    "adam_epsilon": 1e-08, "adam_weight_decay": 0.0001, "adapter_dim": 64,
    "adapter_skip": true, "cond_dim": 1024, "cond_scale": 1.0, "controller": null,
    "controller_hidden": 128, "controller_scale": 0.2, "dual_aware": true,
    "fixed_weights": [0.1, 0.1], "grad_mask": true, "identity_batch_size": 1,
    "identity_prompt": "a {class_noun} *", "image_encoder": "auto", "image_encoder_path": "",
    "learning_rate": 0.001, "lr_scheduler": "cosine", "lr_warmup_steps": 200,
    "max_grad_norm": 1.0, "max_train_steps": 1000, "motion_batch_size": 3,
    "motion_condition": true, "motion_prompt": "a person is {action}", "motion_ratio": 0.5,
    "num_groups": null, "optimizer": "auto", "p_image_zero": 0.0, "seed": 0,
    "steps_scale": 1.0}, "lora": {"adam_betas": [0.9, 0.95], "adam_epsilon": 1e-08,
    "adam_weight_decay": 0.0001, "fusion_weights": [1.0, 1.0], "identity_batch_size": 1,
    "identity_prompt": "a {class_noun} *", "identity_steps": 300, "init_lora_weights": true,
    "learning_rate": 0.001, "lora_alpha": 128.0, "lora_dropout": 0.0,
    "lr_scheduler": "constant", "lr_warmup_steps": 0, "max_grad_norm": 1.0,
    "motion_batch_size": 3, "motion_prompt": "a person is {action}", "motion_steps": 300,
    "optimizer": "auto", "placeholder": "keep", "rank": 128, "seed": 0, "steps_scale": 1.0,
    "target_modules": ["to_q", "to_k", "to_v", "to_out.0"]}, "sequential": {
    "adam_betas": [0.9, 0.95], "adam_epsilon": 1e-08, "adam_weight_decay": 0.0001,
    "gradient_checkpointing": null, "identity_batch_size": 1,
    "identity_prompt": "a {class_noun} *", "identity_steps": 200, "learning_rate": 0.0001,
    "lr_scheduler": "constant", "lr_warmup_steps": 0, "max_grad_norm": 1.0,
    "mixed_precision": "auto", "motion_batch_size": 3, "motion_prompt": "a person is {action}",
    "motion_steps": 130, "optimizer": "auto", "placeholder": "keep", "seed": 0,
    "steps_scale": 1.0}}"""
)


#: what issue 12 changed on purpose (the authors' choices; README "Where a default follows the
#: authors' code"): every other default is as before
ISSUE_12_CHANGES = {
    "dreamvideo": {
        "identity_prompt": "{class_noun} *",
        "motion_lr": 1e-05,
        "motion_batch_size": 2,
        "p_image_zero": 0.0,
        "clip_frames": "first",
        "clip_resize": "crop",
    },
    "dualreal": {
        "identity_prompt": "{class_noun} *",
        "clip_frames": "first",
        "clip_resize": "stretch",
        "condition_preprocess": "authors",
        "trainable_dtype": "auto",
        "vae_tiling": "auto",
    },
    "lora": {
        "identity_prompt": "{class_noun} *",
        "clip_frames": "stride",
        "clip_resize": "stretch",
        "fusion": "avg_factors",
        "fusion_weights": None,
    },
    "sequential": {
        "identity_prompt": "{class_noun} *",
        "clip_frames": "stride",
        "clip_resize": "stretch",
    },
}

#: options added since (issue 16: memory), unset by default: they change no default
ADDED_SINCE = {"micro_batch": None, "memory_budget": None}


@pytest.mark.parametrize("name", sorted(DEFAULTS_BEFORE))
def test_config_defaults_are_unchanged_by_the_shared_base(name):
    """The defaults as before, but for what issue 12 changed, which the report's key history
    (DEFAULT_CHANGES) lists wherever an old record could be mistaken for a new one, and for the
    options issue 16 added (unset by default, so they change nothing)."""
    from dualreal_bench.report.variants import DEFAULT_CHANGES

    config = json.loads(json.dumps(get_method_class(name).config_class().to_dict()))
    added = {k: config.pop(k) for k in ADDED_SINCE if k in config}
    expected = {**DEFAULTS_BEFORE[name], **ISSUE_12_CHANGES.get(name, {})}
    assert config == expected
    assert added == ({} if name == "base" else ADDED_SINCE)
    for option, (old, now) in DEFAULT_CHANGES.get(name, {}).items():
        assert expected[option] == now
        assert DEFAULTS_BEFORE[name].get(option, old) == old


def test_training_configs_share_one_base():
    for cls in (DualRealConfig, DreamVideoConfig, LoRAConfig, SequentialConfig):
        assert issubclass(cls, TrainingConfig)
        own = set(vars(cls)["__annotations__"])
        shared_and_not_redeclared = {"adam_betas", "adam_epsilon", "max_grad_norm", "optimizer"}
        assert not own & shared_and_not_redeclared, cls.__name__


@pytest.mark.parametrize("cls", [DualRealConfig, DreamVideoConfig, LoRAConfig, SequentialConfig])
@pytest.mark.parametrize(
    "overrides, fragment",
    [
        ({"optimizer": "sgd"}, "optimizer='sgd': must be one of auto, adamw, adamw8bit"),
        ({"lr_scheduler": "linear"}, "lr_scheduler='linear'"),
        ({"steps_scale": float("inf")}, "steps_scale must be > 0"),
        ({"motion_batch_size": 0}, "motion_batch_size must be >= 1"),
        ({"lr_warmup_steps": -1}, "lr_warmup_steps must be >= 0"),
        ({"adam_betas": (0.9, 1.0)}, "adam_betas"),
        ({"max_grad_norm": 0.0}, "max_grad_norm must be > 0"),
        ({"motion_prompt": "a {verb}"}, "motion_prompt"),
    ],
)
def test_shared_validation_names_the_method_and_the_option(cls, overrides, fragment):
    with pytest.raises(ConfigError, match=f"^{cls.method_name}: .*{fragment}".replace("(", r"\(")):
        cls(**overrides)


@pytest.mark.parametrize(
    "cls, overrides, fragment",
    [
        (DualRealConfig, {"learning_rate": float("nan")}, "learning_rate must be > 0"),
        (DualRealConfig, {"max_train_steps": -1}, "max_train_steps must be an integer >= 0"),
        (DreamVideoConfig, {"identity_lr": 0.0}, "identity_lr must be > 0"),
        (DreamVideoConfig, {"cond_dim": 0}, "cond_dim must be >= 1"),
        (SequentialConfig, {"mixed_precision": "fp8"}, "mixed_precision='fp8'"),
        (LoRAConfig, {"motion_steps": 1.5}, "motion_steps must be an integer"),
    ],
)
def test_per_method_declarations_are_checked(cls, overrides, fragment):
    with pytest.raises(ConfigError, match=fragment):
        cls(**overrides)
    assert DualRealConfig(max_train_steps=0).total_steps == 0  # an untrained DualReal is allowed
