"""Backbone profiles: the architectures and defaults each profile stands for, as data.

A profile names a CogVideoX variant. ``cogvideox-2b`` and ``cogvideox-5b`` load published
weights (a local diffusers-layout directory or the Hugging Face cache); ``tiny`` builds the
same architectures at toy sizes with random weights, so that everything runs on a CPU in
seconds. The transformer and scheduler dicts of the real profiles are the published
``transformer/config.json`` and ``scheduler/scheduler_config.json`` of the THUDM repositories
(the loader checks the weights it finds against them).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ..errors import ConfigError
from ..registry import Registry
from ..weights import WEIGHTS

# ---- published configs -----------------------------------------------------------------

#: THUDM/CogVideoX-5b transformer/config.json (keys diffusers' constructor takes).
COGVIDEOX_5B_TRANSFORMER: dict[str, Any] = {
    "activation_fn": "gelu-approximate",
    "attention_bias": True,
    "attention_head_dim": 64,
    "dropout": 0.0,
    "flip_sin_to_cos": True,
    "freq_shift": 0,
    "in_channels": 16,
    "max_text_seq_length": 226,
    "norm_elementwise_affine": True,
    "norm_eps": 1e-05,
    "num_attention_heads": 48,
    "num_layers": 42,
    "out_channels": 16,
    "patch_size": 2,
    "sample_frames": 49,
    "sample_height": 60,
    "sample_width": 90,
    "spatial_interpolation_scale": 1.875,
    "temporal_compression_ratio": 4,
    "temporal_interpolation_scale": 1.0,
    "text_embed_dim": 4096,
    "time_embed_dim": 512,
    "timestep_activation_fn": "silu",
    "use_learned_positional_embeddings": False,
    "use_rotary_positional_embeddings": True,
}

#: THUDM/CogVideoX-2b transformer/config.json: 30 heads x 30 layers, 3D sin-cos positions.
COGVIDEOX_2B_TRANSFORMER: dict[str, Any] = {
    **COGVIDEOX_5B_TRANSFORMER,
    "num_attention_heads": 30,
    "num_layers": 30,
    "use_rotary_positional_embeddings": False,
}

#: THUDM/CogVideoX-5b scheduler/scheduler_config.json (CogVideoXDDIMScheduler).
COGVIDEOX_5B_SCHEDULER: dict[str, Any] = {
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "clip_sample": False,
    "clip_sample_range": 1.0,
    "num_train_timesteps": 1000,
    "prediction_type": "v_prediction",
    "rescale_betas_zero_snr": True,
    "sample_max_value": 1.0,
    "set_alpha_to_one": True,
    "snr_shift_scale": 1.0,
    "steps_offset": 0,
    "timestep_spacing": "trailing",
    "trained_betas": None,
}

#: THUDM/CogVideoX-2b scheduler/scheduler_config.json: as 5B but an SNR shift of 3.
COGVIDEOX_2B_SCHEDULER: dict[str, Any] = {**COGVIDEOX_5B_SCHEDULER, "snr_shift_scale": 3.0}

# ---- tiny (random-init) components -------------------------------------------------------

#: Same architecture as the 5B transformer (rotary positions, AdaLN expert blocks), 2 blocks.
TINY_TRANSFORMER: dict[str, Any] = {
    **COGVIDEOX_5B_TRANSFORMER,
    "num_attention_heads": 2,
    "attention_head_dim": 16,  # rotary split t/h/w = 4/6/6 channels
    "in_channels": 4,
    "out_channels": 4,
    "time_embed_dim": 16,  # DualReal's controller projects to this; keep >= 8
    "text_embed_dim": 32,  # = TINY_TEXT_ENCODER["d_model"]
    "num_layers": 2,
    "sample_width": 8,  # latent 8x8 -> 64x64 pixels
    "sample_height": 8,
    "sample_frames": 9,  # 3 latent frames
    "max_text_seq_length": 128,  # ByT5 tokens are bytes: room for a benchmark prompt
}

#: AutoencoderKLCogVideoX with the published block structure (4 down/up blocks: 8x spatial,
#: 4x temporal compression) at 8 channels, as diffusers' own pipeline tests build it.
TINY_VAE: dict[str, Any] = {
    "in_channels": 3,
    "out_channels": 3,
    "down_block_types": ("CogVideoXDownBlock3D",) * 4,
    "up_block_types": ("CogVideoXUpBlock3D",) * 4,
    "block_out_channels": (8, 8, 8, 8),
    "latent_channels": 4,
    "layers_per_block": 1,
    "norm_num_groups": 2,
    "temporal_compression_ratio": 4,
    "sample_height": 64,
    "sample_width": 64,
    "scaling_factor": 0.7,  # the 5B VAE's factor
}

#: A T5 v1.1-style encoder (gated GELU, like t5-v1_1-xxl) over the ByT5 byte vocabulary,
#: whose tokenizer needs no files.
TINY_TEXT_ENCODER: dict[str, Any] = {
    "vocab_size": 384,  # ByT5Tokenizer: 3 specials + 256 bytes + 125 extra ids
    "d_model": 32,
    "d_kv": 8,
    "d_ff": 64,
    "num_layers": 2,
    "num_heads": 4,
    "relative_attention_num_buckets": 8,
    "relative_attention_max_distance": 16,
    "dropout_rate": 0.0,
    "feed_forward_proj": "gated-gelu",
    "pad_token_id": 0,
    "eos_token_id": 1,
}


@dataclasses.dataclass(frozen=True)
class Profile:
    """What a profile name stands for."""

    name: str
    description: str
    transformer: dict[str, Any]  # CogVideoXTransformer3DModel kwargs (published or tiny)
    scheduler: dict[str, Any]  # CogVideoXDDIMScheduler / CogVideoXDPMScheduler kwargs
    defaults: dict[str, Any]  # BackboneConfig field defaults for this profile
    weights: str | None = None  # key of the published weights in dualreal_bench.weights.WEIGHTS
    random_init: bool = False  # True: random weights, numbers are a pipeline check only

    @property
    def repo_id(self) -> str | None:
        """Hugging Face repository of the published weights (from the weights table)."""
        return WEIGHTS[self.weights].hf_repo if self.weights else None


_REAL_DEFAULTS: dict[str, Any] = {
    "num_frames": 49,
    "height": 480,
    "width": 720,
    "fps": 8,
    "num_inference_steps": 50,
    "guidance_scale": 6.0,
    "scheduler": "dpm",
    "dtype": "bfloat16",
    "device": "auto",
    "gradient_checkpointing": True,
    "vae_slicing": True,
    "vae_tiling": True,
    "cpu_offload": False,
    "max_sequence_length": 226,
}

#: the backbone profiles by name (an unknown name is a ConfigError with a "did you mean")
PROFILES: Registry[Profile] = Registry(
    "backbone profile",
    {
        "tiny": Profile(
            name="tiny",
            description="random-init CogVideoX of toy size (2 blocks, 9 frames at 64x64), CPU, no downloads",
            transformer=TINY_TRANSFORMER,
            scheduler=COGVIDEOX_5B_SCHEDULER,
            defaults={
                "num_frames": 9,
                "height": 64,
                "width": 64,
                "fps": 8,
                "num_inference_steps": 4,
                "guidance_scale": 6.0,
                "scheduler": "dpm",
                "dtype": "float32",
                "device": "cpu",
                "gradient_checkpointing": False,
                "vae_slicing": False,
                "vae_tiling": False,
                "cpu_offload": False,
                "max_sequence_length": 128,
            },
            random_init=True,
        ),
        "cogvideox-2b": Profile(
            name="cogvideox-2b",
            description="THUDM/CogVideoX-2b (30 blocks, sin-cos positions), 49 frames at 480x720",
            transformer=COGVIDEOX_2B_TRANSFORMER,
            scheduler=COGVIDEOX_2B_SCHEDULER,
            defaults=dict(_REAL_DEFAULTS),
            weights="cogvideox-2b",
        ),
        "cogvideox-5b": Profile(
            name="cogvideox-5b",
            description="THUDM/CogVideoX-5b (42 blocks, 3D RoPE), 49 frames at 480x720; DualReal's backbone",
            transformer=COGVIDEOX_5B_TRANSFORMER,
            scheduler=COGVIDEOX_5B_SCHEDULER,
            defaults=dict(_REAL_DEFAULTS),
            weights="cogvideox-5b",
        ),
    },
    error=ConfigError,
)

#: transformer config keys that must match between a profile and the weights it loads
ARCHITECTURE_KEYS: tuple[str, ...] = (
    "num_attention_heads",
    "attention_head_dim",
    "num_layers",
    "in_channels",
    "out_channels",
    "text_embed_dim",
    "time_embed_dim",
    "patch_size",
    "use_rotary_positional_embeddings",
)


def available_profiles() -> list[str]:
    """Names of the backbone profiles."""
    return PROFILES.available()


def get_profile(name: str) -> Profile:
    """The :class:`Profile` called ``name``; a :class:`ConfigError` naming the choices otherwise."""
    return PROFILES.get(name)
