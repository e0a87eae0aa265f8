"""``dualreal-bench inspect``: DualReal on CogVideoX-5B counted on the meta device, against a
count derived by hand from the published dimensions."""

from __future__ import annotations

import json

import pytest

from dualreal_bench.analysis.inspection import inspect_method
from dualreal_bench.backbone.profiles import COGVIDEOX_5B_TRANSFORMER as CFG
from dualreal_bench.cli import main

TARGET = "dualreal_bench.methods.dualreal:DualRealMethod"


def by_hand(
    num_groups: int = 7, adapter_dim: int = 64, cond_dim: int = 1024, controller: bool = True
) -> dict:
    """Parameters of DualReal on CogVideoX-5B from the dimensions alone."""
    D = CFG["num_attention_heads"] * CFG["attention_head_dim"]  # 3072
    L, T, r, c, H, n = (
        CFG["num_layers"],
        CFG["time_embed_dim"],
        adapter_dim,
        cond_dim,
        128,
        num_groups,
    )
    adapter = (D * r + r) + (r * D + D)  # down + up, with biases
    w_cond = c * D + D
    counts = {
        "identity adapters": L * 2 * adapter,  # 2 places per block
        "motion adapters": L * 2 * (adapter + w_cond),
    }
    if controller:
        counts["controller"] = (
            (T * 3 * T + 3 * T)  # Linear(SiLU(t_emb)) -> shift, scale, gate
            + (D * T + T)  # pooled tokens -> T
            + 2 * T  # LayerNorm
            + (T * 4 * T + 4 * T)
            + (4 * T * T + T)  # MLP T -> 4T -> T
            + (T * H + H)
            + (H * n + n)  # head
        )
    return counts


def test_5b_trainable_parameters_equal_the_hand_count():
    result = inspect_method(TARGET, "cogvideox-5b", measure_memory=False)
    expected = by_hand()
    assert result["trainable_parameters"] == expected
    assert result["trainable_total"] == sum(expected.values()) == 335_614_983
    assert result["frozen_transformer_parameters"] == 5_570_283_072
    assert result["transformer_blocks"] == 42 and result["resolved"]["num_groups"] == 7


@pytest.mark.parametrize(
    "overrides, kwargs",
    [
        (["num_groups=1"], {"num_groups": 1}),
        (["num_groups=42"], {"num_groups": 42}),
        (["controller=false"], {"controller": False}),
        (["dual_aware=false"], {"controller": False}),
        (["adapter_dim=32"], {"adapter_dim": 32}),
    ],
)
def test_5b_counts_of_the_ablations(overrides, kwargs):
    result = inspect_method(TARGET, "cogvideox-5b", overrides, measure_memory=False)
    assert result["trainable_parameters"] == by_hand(**kwargs)


def test_5b_memory_estimate_is_consistent():
    result = inspect_method(TARGET, "cogvideox-5b")
    mem, act = result["memory"], result["activation_measurement"]
    assert act["tokens"] == 13 * 30 * 45 + 226 and act["batch_size"] == 3 and act["dim"] == 3072
    b = mem["bytes"]
    assert b["frozen transformer"] == 5_570_283_072 * 2
    assert b["trainable parameters (fp32)"] == b["gradients (fp32)"] == 335_614_983 * 4
    assert b["optimizer adamw (fp32 states)"] == 335_614_983 * 8
    assert b["activations: checkpointed block inputs"] == 42 * 3 * act["tokens"] * 3072 * 2
    per_block = mem["activations_per_block"]
    assert per_block["with method"] > per_block["base transformer"] > 3 * act["tokens"] * 3072 * 2
    parts = (
        "frozen transformer",
        "frozen text encoder + VAE",
        "trainable parameters (fp32)",
        "gradients (fp32)",
        "optimizer adamw (fp32 states)",
        "activations",
    )
    assert mem["total_bytes"]["adamw (fp32 states)"] == sum(b[k] for k in parts)
    assert (
        25 * 2**30 < mem["total_bytes"]["adamw8bit (bitsandbytes)"] < 80 * 2**30
    )  # fits the authors' A100 80GB


def test_base_trains_nothing():
    result = inspect_method("base", "cogvideox-5b")
    assert result["trainable_total"] == 0 and "memory" not in result


def test_cli_json_and_errors(capsys):
    assert (
        main(
            [
                "inspect",
                "--method",
                TARGET,
                "--profile",
                "tiny",
                "--set",
                "num_groups=1",
                "--format",
                "json",
            ]
        )
        == 0
    )
    result = json.loads(capsys.readouterr().out)
    assert result["profile"] == "tiny" and result["resolved"] == {
        "num_groups": 1,
        "controller": True,
        "vae_tiling": "off",  # the authors' untiled decode (no CUDA device to size it by)
    }
    assert result["trainable_total"] == sum(result["trainable_parameters"].values()) > 0
    assert (
        main(["inspect", "--method", TARGET, "--profile", "cogvideox-5b", "--set", "num_groups=5"])
        == 2
    )
    err = capsys.readouterr().err
    assert "num_groups=5" in err and "42" in err and len(err.strip().splitlines()) == 1


def test_cli_table(capsys):
    assert main(["inspect", "--method", TARGET, "--profile", "tiny"]) == 0
    out = capsys.readouterr().out
    for text in (
        "identity adapters",
        "motion adapters",
        "controller",
        "trainable total",
        "frozen transformer",
        "Training memory estimate",
        "activations",
    ):
        assert text in out
