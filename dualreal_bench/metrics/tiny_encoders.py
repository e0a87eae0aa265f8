"""The tiny profile's metric encoders: seeded random networks of the real architectures.

Their numbers check the pipeline and measure nothing; the same seed gives the same weights on
every machine (each role its own seed, see :class:`~.encoders.EncoderRole`). The interpolator
is the two frames' average (a random AMT-S only when asked for, ``"tiny-amt"``) and the motion
descriptor is the weight-free one, so that a tiny run never depends on what is installed.
"""

from __future__ import annotations

import torch

from .constants import MetricConstants
from .image_encoders import CLIP_IMAGE_SIZE, DINO_IMAGE_SIZE, ClipEncoder, DinoEncoder


def tiny_clip(seed: int, device: str = "cpu") -> ClipEncoder:
    """A 2-layer open_clip CLIP (ViT/32 image tower at 224 px, BPE text tower) with seeded weights."""
    import open_clip
    from open_clip.model import CLIP, CLIPTextCfg, CLIPVisionCfg

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = CLIP(
            embed_dim=32,
            vision_cfg=CLIPVisionCfg(
                layers=2, width=64, head_width=32, patch_size=32, image_size=CLIP_IMAGE_SIZE
            ),
            text_cfg=CLIPTextCfg(context_length=77, vocab_size=49408, width=64, heads=2, layers=2),
            quick_gelu=True,
        )
    tokenizer = open_clip.get_tokenizer("ViT-B-32")  # the BPE vocabulary ships inside open_clip
    return ClipEncoder(model, tokenizer, identity=f"tiny-clip-v1-seed{seed}", device=device)


def tiny_dino(seed: int, device: str = "cpu") -> DinoEncoder:
    """A 2-layer ViT/16 at 224 px (transformers ``ViTModel``) with seeded weights."""
    from transformers import ViTConfig, ViTModel

    config = ViTConfig(
        hidden_size=48,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=96,
        image_size=DINO_IMAGE_SIZE,
        patch_size=16,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = ViTModel(config, add_pooling_layer=False)
    return DinoEncoder(model, identity=f"tiny-dino-v1-seed{seed}", device=device)


def tiny_flow(seed: int, constants: MetricConstants, device: str = "cpu"):
    from .flow import RaftFlow, build_raft_tiny

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_raft_tiny()
    return RaftFlow(
        model, iters=constants.raft_iters, identity=f"tiny-raft-v1-seed{seed}", device=device
    )


def tiny_interpolator(seed: int, constants: MetricConstants, device: str = "cpu"):
    """The tiny profile's interpolator: the average of the two frames, on every machine.

    AMT-S's network ships only inside VBench (CC BY-NC), so a random AMT-S would exist on some
    machines and not on others; the tiny profile must give the same numbers everywhere, so it
    never depends on whether VBench happens to be importable. :func:`tiny_amt_interpolator`
    (role spec ``"tiny-amt"``) is the random AMT-S, asked for explicitly.
    """
    from .interpolation import BlendInterpolator

    return BlendInterpolator()


def tiny_amt_interpolator(seed: int, constants: MetricConstants, device: str = "cpu"):
    """A seeded random AMT-S (3 correlation levels, for 64-pixel frames) from an installed
    VBench; WeightsError with the install command when VBench is absent (no fallback)."""
    from .interpolation import AmtInterpolator, build_amt_s

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_amt_s(corr_lvls=3)  # 64-pixel frames (see build_amt_s)
    return AmtInterpolator(
        model,
        embt=constants.amt_embt,
        scale_factor=constants.amt_scale_factor,
        identity=f"tiny-amt-s-3lvl-v1-seed{seed}",
        device=device,
    )


def flow_motion(seed: int, constants: MetricConstants, device: str = "cpu"):
    """The weight-free motion descriptor (DIS flow histograms), default motion constants."""
    from .motion import FlowDescriptor

    return FlowDescriptor()


def tiny_videomae_motion(seed: int, constants: MetricConstants, device: str = "cpu"):
    """A seeded random VideoMAE (2 layers, width 32) of the Kinetics model's architecture."""
    from .motion.videomae import tiny_videomae

    return tiny_videomae(seed, device=device)
