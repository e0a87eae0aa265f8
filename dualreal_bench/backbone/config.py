"""``BackboneConfig``: which CogVideoX, at which size, on which device, sampled how."""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

from ..config import Config, check_seed
from ..devices import check_device
from ..errors import ConfigError
from .profiles import get_profile

SCHEDULERS = ("dpm", "ddim")  # CogVideoXDPMScheduler, CogVideoXDDIMScheduler
DTYPES = ("float32", "bfloat16", "float16")
#: "none": every model stays on the device; "encoders": the text encoder and the VAE live in CPU
#: RAM and come to the device only while they run (encoding a case before training, prompts and
#: decoding in generation), so a training loop on cached latents and embeddings never holds them
OFFLOADS = ("none", "encoders")


@dataclasses.dataclass
class BackboneConfig(Config):
    """Options of the text-to-video backbone.

    Fields left at ``None`` take the profile's default (see ``profiles.PROFILES``), so
    ``BackboneConfig(profile="cogvideox-5b")`` is 49 frames at 480x720 in bfloat16 and
    ``BackboneConfig()`` is the tiny profile's 9 frames at 64x64 in float32 on the CPU.
    After construction every field holds a concrete value (what records save).
    """

    profile: str = "tiny"  # "tiny" | "cogvideox-2b" | "cogvideox-5b"
    # local diffusers-layout directory (transformer/, vae/, text_encoder/, tokenizer/,
    # scheduler/) or a Hugging Face repo id looked up in the local cache only;
    # None = the profile's repo id. Must stay None for "tiny" (random weights).
    model_path: str | None = None
    num_frames: int | None = None  # pixel frames, 1 + 4k (the VAE's 4x temporal compression)
    height: int | None = None  # pixels, a multiple of 16 (VAE 8x * patch 2)
    width: int | None = None
    fps: int | None = None  # frame rate the videos are written at (CogVideoX: 8)
    num_inference_steps: int | None = None
    guidance_scale: float | None = None  # classifier-free guidance; 1 = none
    use_dynamic_cfg: bool = False  # CogVideoX's cosine-ramped guidance (pipeline option)
    negative_prompt: str = ""  # the unconditional branch of CFG (CogVideoX: empty)
    scheduler: str | None = None  # sampling: "dpm" | "ddim" (training is always v-pred DDPM)
    dtype: str | None = None  # "float32" | "bfloat16" | "float16"
    device: str | None = None  # "auto" (CUDA if present) | "cpu" | "cuda[:N]" | "mps"
    gradient_checkpointing: bool | None = None  # transformer blocks recompute in backward
    vae_slicing: bool | None = None  # encode/decode a batch one video at a time
    vae_tiling: bool | None = None  # encode/decode in overlapping spatial tiles
    cpu_offload: bool | None = None  # sampling: diffusers' model CPU offload (needs CUDA)
    # "encoders": text encoder + VAE on the device only while they run (see OFFLOADS)
    offload: Literal["none", "encoders"] = "none"
    max_sequence_length: int | None = None  # T5 tokens, padded (CogVideoX: 226)
    seed: int = 0  # seeds the tiny profile's random initialisation
    progress_bar: bool = False  # show the sampler's progress bar

    def __post_init__(self) -> None:
        profile = get_profile(self.profile)
        for name, value in profile.defaults.items():
            if getattr(self, name) is None:
                setattr(self, name, value)
        super().__post_init__()

    def validate(self) -> None:
        profile = get_profile(self.profile)
        if profile.random_init and self.model_path is not None:
            raise ConfigError(
                f"model_path={self.model_path!r}: profile {self.profile!r} has random weights and "
                "loads nothing; choose a real profile (cogvideox-2b, cogvideox-5b) to load weights"
            )
        self._check_video(profile.transformer)
        self._check_sampling()
        self._check_placement()
        self._check_text_length(profile.transformer)
        check_seed(self.seed, "--backbone-set seed")

    def _check_video(self, transformer: dict[str, Any]) -> None:
        """Frames, size and frame rate the VAE and the patch size allow."""
        temporal = transformer["temporal_compression_ratio"]
        if not _is_int(self.num_frames) or self.num_frames < 1 or (self.num_frames - 1) % temporal:
            raise ConfigError(
                f"num_frames={self.num_frames!r}: must be 1 + {temporal}k (1, 5, 9, ..., 49) "
                f"because the VAE compresses time {temporal}x"
            )
        multiple = 8 * transformer["patch_size"]
        for name in ("height", "width"):
            value = getattr(self, name)
            if not _is_int(value) or value < multiple or value % multiple:
                raise ConfigError(
                    f"{name}={value!r}: must be a positive multiple of {multiple} "
                    f"(VAE 8x times patch size {transformer['patch_size']})"
                )
        if not _is_int(self.fps) or self.fps < 1:
            raise ConfigError(f"fps={self.fps!r}: must be a positive integer")

    def _check_sampling(self) -> None:
        """Steps, guidance and scheduler of generation."""
        if not _is_int(self.num_inference_steps) or self.num_inference_steps < 1:
            raise ConfigError(f"num_inference_steps={self.num_inference_steps!r}: must be >= 1")
        if not isinstance(self.guidance_scale, (int, float)) or not self.guidance_scale >= 1.0:
            raise ConfigError(
                f"guidance_scale={self.guidance_scale!r}: must be >= 1 (1 disables guidance)"
            )
        if self.scheduler not in SCHEDULERS:
            raise ConfigError(
                f"scheduler={self.scheduler!r}: must be one of {', '.join(SCHEDULERS)}"
            )

    def _check_placement(self) -> None:
        """Dtype, device and the two (exclusive) ways of offloading models to the CPU."""
        if self.dtype not in DTYPES:
            raise ConfigError(f"dtype={self.dtype!r}: must be one of {', '.join(DTYPES)}")
        check_device(self.device)
        if self.cpu_offload and self.device in ("cpu", "mps"):
            raise ConfigError(
                f"cpu_offload=true needs a CUDA device, but device={self.device!r}; "
                "set device=cuda (or auto) or cpu_offload=false"
            )
        if self.offload not in OFFLOADS:
            raise ConfigError(f"offload={self.offload!r}: must be one of {', '.join(OFFLOADS)}")
        if self.offload != "none" and self.cpu_offload:
            raise ConfigError(
                f"offload={self.offload} and cpu_offload=true contradict: diffusers' model CPU "
                "offload already moves every model on and off the device; choose one"
            )

    def _check_text_length(self, transformer: dict[str, Any]) -> None:
        """``max_sequence_length`` within the transformer's text length (exactly it without
        rotary positions)."""
        max_len = transformer["max_text_seq_length"]
        if not _is_int(self.max_sequence_length) or not 1 <= self.max_sequence_length <= max_len:
            raise ConfigError(
                f"max_sequence_length={self.max_sequence_length!r}: must be between 1 and {max_len} "
                f"(the {self.profile} transformer's text length)"
            )
        if (
            not transformer["use_rotary_positional_embeddings"]
            and self.max_sequence_length != max_len
        ):
            raise ConfigError(
                f"max_sequence_length={self.max_sequence_length}: the {self.profile} transformer's "
                f"sin-cos positions assume exactly {max_len} text tokens"
            )

    @classmethod
    def for_profile(
        cls, profile: str = "tiny", overrides: list[str] | dict[str, str] | None = None
    ) -> BackboneConfig:
        """``profile``'s defaults with ``key=value`` overrides applied.

        A ``profile=...`` override switches profile first, so the other fields start from
        that profile's defaults (``["profile=cogvideox-5b"]`` gives 49 frames at 480x720).
        """
        if isinstance(overrides, dict):
            pairs = [(str(k).strip(), str(v)) for k, v in overrides.items()]
            rest: list[str] | dict[str, str] = {k: v for k, v in pairs if k != "profile"}
        else:
            pairs = [
                (item.partition("=")[0].strip(), item.partition("=")[2]) for item in overrides or []
            ]
            rest = [
                item for item, (k, _) in zip(overrides or [], pairs, strict=True) if k != "profile"
            ]
        given = [value.strip() for key, value in pairs if key == "profile"]
        if len(given) > 1:
            raise ConfigError(
                f"--backbone-set profile: given {len(given)} times ({', '.join(given)}); "
                "give each option once"
            )
        if given:
            profile = given[0]
        return cls(profile=profile).with_overrides(rest, "--backbone-set")

    @property
    def latent_frames(self) -> int:
        """Latent frames of a ``num_frames`` video: 1 + (num_frames - 1) / 4."""
        ratio = get_profile(self.profile).transformer["temporal_compression_ratio"]
        return 1 + (self.num_frames - 1) // ratio


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
