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
    """The rows of DualReal's motion step on CogVideoX-5B (3 clips of 49 frames, checkpointing,
    the authors' 8-bit AdamW) from the counts and shapes alone."""
    result = inspect_method(TARGET, "cogvideox-5b")
    mem = result["memory"]
    stage = next(s for s in mem["stages"] if s["name"] == "joint: motion")
    act, b = stage["activation_measurement"], stage["bytes"]
    assert act["tokens"] == 13 * 30 * 45 + 226 and act["batch_size"] == 3 and act["dim"] == 3072
    assert act["token_bytes"] == 3 * act["tokens"] * 3072 * 2
    assert b["frozen transformer"] == 5_570_283_072 * 2
    # trainable_dtype=auto: the authors' bf16 adapters on the CUDA target (issue 12)
    assert b["learned parameters"] == b["gradients"] == 335_614_983 * 2
    # bitsandbytes: 1 byte per moment + a float32 absmax per 256 values; 32-bit moments below
    # 4,096 values (the biases)
    assert 335_614_983 * 2 < b["optimizer states"] < 335_614_983 * 2.1
    assert b["text encoder + VAE (resident)"] == (4_762_310_656 + 215_583_907) * 2
    # checkpointing: every block keeps its input tokens (+ the shared time embedding and
    # rotary tables), the embeddings and the head what they save
    assert 42 * act["token_bytes"] <= act["block_input_bytes"] < 42.1 * act["token_bytes"]
    assert b["activations: saved by the forward"] == (
        act["embedding_bytes"] + act["head_bytes"] + act["block_input_bytes"]
    )
    assert b["activations: one block (recomputed)"] == max(act["block_bytes"])
    # the blocks save the same, but the first (its input needs no gradient) and the second
    # (which first saves tensors shared by all, e.g. the rotary tables)
    blocks = act["block_bytes"]
    assert len(set(blocks[2:])) == 1 and blocks[0] < blocks[2] <= blocks[1] < 1.01 * blocks[2]
    rows = [k for k in b if k != "optimizer step temporaries"]
    assert stage["total_bytes"] == sum(b[k] for k in rows) == mem["total_bytes"]
    assert mem["peak_stage"] == "joint: motion"
    assert 25 * 2**30 < mem["total_bytes"] < 80 * 2**30  # fits the authors' A100 80GB


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
        "Training memory, one step at its peak",
        "Generation peak",
        "activations",
    ):
        assert text in out
