"""The CogVideoX backbone every method customises: its modules, where they sit, the encoders.

Shapes used throughout (CogVideoX 1.0, diffusers layout):

* pixels: ``(B, 3, T, H, W)`` in ``[-1, 1]`` with ``T = 1 + 4k``; an image is a 1-frame video;
* latents: ``(B, F, C, h, w)`` with ``F = 1 + (T - 1) / 4``, ``h = H / 8``, ``w = W / 8``,
  scaled by the VAE's ``scaling_factor`` (the transformer's input layout);
* prompt embeddings: ``(B, L, D)``, T5 hidden states padded to ``max_sequence_length``.

Methods attach adapters to ``backbone.transformer`` (hooks, processors, wrapped sub-modules);
:meth:`Backbone.training_loss` and :meth:`Backbone.sample` both run that very module object, so
whatever is attached takes part in training and in generation. The training side (the
transformer's forward, the loss and its random draws) is in :mod:`.training`, the generation side
(decoding, schedulers, the pipeline, :meth:`~.sampling.SamplingMixin.sample`) in :mod:`.sampling`.

With ``offload="encoders"`` the text encoder and the VAE wait in CPU RAM and come to the device
only while they run (:meth:`Backbone.on_device`): a training loop on latents and prompt
embeddings encoded before it never holds them, and generation brings the text encoder for the
prompts, then the VAE for decoding, never both next to the denoising transformer's activations.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..devices import resolve_device
from ..errors import ConfigError
from .config import BackboneConfig
from .loading import (
    Components,
    build_tiny,
    check_architecture,
    load_pretrained,
    read_transformer_config,
    resolve_model_dir,
)
from .profiles import Profile, get_profile
from .sampling import SamplingMixin
from .training import TrainingMixin

logger = logging.getLogger(__name__)

#: the modules ``offload="encoders"`` keeps off the device between uses
ENCODERS = ("text_encoder", "vae")
#: where they wait
OFFLOAD_DEVICE = torch.device("cpu")

TORCH_DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "bfloat16": torch.bfloat16,
    "float16": torch.float16,
}


class Backbone(TrainingMixin, SamplingMixin):
    """CogVideoX (diffusers) with the operations a customisation method needs.

    Attributes: ``config`` (:class:`BackboneConfig`), ``profile``, ``transformer``
    (``CogVideoXTransformer3DModel``), ``vae`` (``AutoencoderKLCogVideoX``), ``text_encoder``
    (``T5EncoderModel``), ``tokenizer``, ``scheduler`` (the training noise schedule, a
    ``CogVideoXDDIMScheduler`` with v-prediction), ``device``, ``dtype``, ``model_dir``.

    All weights are frozen (``requires_grad=False``) and in eval mode; a method unfreezes
    what it trains or adds its own parameters.
    """

    def __init__(self, config: BackboneConfig, components: Components) -> None:
        self.config = config
        self.profile: Profile = get_profile(config.profile)
        self.dtype: torch.dtype = TORCH_DTYPES[config.dtype]
        self.device: torch.device = resolve_device(config.device, "--backbone-set device")
        self.transformer = components.transformer
        self.vae = components.vae
        self.text_encoder = components.text_encoder
        self.tokenizer = components.tokenizer
        self.scheduler = components.scheduler
        self.model_dir: Path | None = components.model_dir
        #: how many open :meth:`on_device` blocks hold each encoder on the device
        self._holds = dict.fromkeys(ENCODERS, 0)
        self._setup()

    def _setup(self) -> None:
        for name in ("transformer", *ENCODERS):
            module = getattr(self, name)
            module.requires_grad_(False)
            module.eval()
            if module.dtype != self.dtype:  # loaders already give the configured dtype
                module.to(dtype=self.dtype)
            if not self.config.cpu_offload:  # with cpu_offload, accelerate hooks place them
                module.to(self._home(name))
        if self.config.gradient_checkpointing:
            self.transformer.enable_gradient_checkpointing()
        if self.config.vae_slicing:
            self.vae.enable_slicing()
        if self.config.vae_tiling:
            self.vae.enable_tiling()
        if self.config.cpu_offload:
            if self.device.type != "cuda":
                raise ConfigError(
                    f"cpu_offload=true needs a CUDA device, but device={self.config.device!r} "
                    f"resolves to {self.device}; set cpu_offload=false"
                )
            # installs accelerate's offload hooks on the modules themselves, so encoders and
            # the training loss move each module to the GPU when it runs, as sampling does
            self.build_pipeline()

    # ---- where the encoders are ---------------------------------------------------------
    def _home(self, name: str) -> torch.device:
        """Where module ``name`` waits between uses: the CPU for an offloaded encoder."""
        if name in ENCODERS and self.config.offload == "encoders":
            return OFFLOAD_DEVICE
        return self.device

    @contextlib.contextmanager
    def on_device(self, *names: str) -> Iterator[None]:
        """The encoders ``names`` ("text_encoder", "vae") on the device for the block.

        With ``offload="encoders"`` each comes from CPU RAM when the first open block needs it
        and goes back when the last one closes (blocks nest); otherwise nothing moves."""
        unknown = sorted(set(names) - set(ENCODERS))
        if unknown:
            raise ValueError(f"on_device: unknown module(s) {unknown}; choose from {ENCODERS}")
        for name in names:
            if self._holds[name] == 0 and self._home(name) != self.device:
                getattr(self, name).to(self.device)
            self._holds[name] += 1
        try:
            yield
        finally:
            for name in names:
                self._holds[name] -= 1
                if self._holds[name] == 0 and self._home(name) != self.device:
                    getattr(self, name).to(self._home(name))

    def set_offload(self, mode: str) -> None:
        """Switch ``offload`` ("none" or "encoders", see :class:`BackboneConfig`) and place the
        encoders accordingly (those held by an open :meth:`on_device` block stay until it ends)."""
        if mode == self.config.offload:
            return
        self.config = self.config.with_overrides({"offload": mode})
        for name in ENCODERS:
            if self._holds[name] == 0 and not self.config.cpu_offload:
                getattr(self, name).to(self._home(name))

    # ---- geometry ----------------------------------------------------------------------
    @property
    def vae_scale_factor_spatial(self) -> int:
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    @property
    def vae_scale_factor_temporal(self) -> int:
        return int(self.vae.config.temporal_compression_ratio)

    @property
    def latent_shape(self) -> tuple[int, int, int, int]:
        """``(F, C, h, w)`` of one video at the configured size."""
        return (
            1 + (self.config.num_frames - 1) // self.vae_scale_factor_temporal,
            int(self.transformer.config.in_channels),
            self.config.height // self.vae_scale_factor_spatial,
            self.config.width // self.vae_scale_factor_spatial,
        )

    # ---- pixels ------------------------------------------------------------------------
    def preprocess_video(self, frames: np.ndarray) -> torch.Tensor:
        """uint8 ``(T, H, W, 3)`` -> float32 ``(3, T, height, width)`` in ``[-1, 1]`` (CPU).

        Frames are resized to cover the configured size (bilinear, antialiased) and
        centre-cropped; the frame count is kept.
        """
        frames = np.asarray(frames)
        if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
            raise ValueError(
                f"preprocess_video expects uint8 (T, H, W, 3), got {frames.dtype} {frames.shape}"
            )
        if (
            not frames.flags.writeable
        ):  # e.g. views of decoded/cached arrays; torch wants to own writable memory
            frames = frames.copy()
        x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float() / 255.0
        x = _resize_crop(x, (self.config.height, self.config.width))  # (T, 3, H, W)
        return (x * 2.0 - 1.0).permute(1, 0, 2, 3).contiguous()

    def preprocess_images(self, images: Sequence[np.ndarray]) -> torch.Tensor:
        """uint8 ``(H, W, 3)`` images -> ``(B, 3, 1, height, width)`` in ``[-1, 1]``."""
        if len(images) == 0:
            raise ValueError("preprocess_images: no images")
        return torch.stack([self.preprocess_video(np.asarray(im)[None]) for im in images])

    # ---- encoders ----------------------------------------------------------------------
    @torch.no_grad()
    def encode_video(
        self,
        videos: torch.Tensor,
        *,
        generator: torch.Generator | None = None,
        sample_posterior: bool = True,
    ) -> torch.Tensor:
        """``(B, 3, T, H, W)`` in ``[-1, 1]`` -> latents ``(B, F, C, h, w)`` in ``self.dtype``.

        ``T`` must be ``1 + 4k`` and ``H``, ``W`` multiples of 16. The VAE posterior is sampled
        (with ``generator``, as CogVideoX's fine-tuning scripts do) or its mean taken
        (``sample_posterior=False``); the result is scaled by the VAE's ``scaling_factor``.
        """
        if videos.ndim != 5 or videos.shape[1] != 3:
            raise ValueError(f"encode_video expects (B, 3, T, H, W), got {tuple(videos.shape)}")
        t, h, w = videos.shape[2:]
        ratio = self.vae_scale_factor_temporal
        if (t - 1) % ratio:
            raise ValueError(
                f"encode_video: {t} frames; the VAE needs 1 + {ratio}k frames (1, 5, 9, ..., 49)"
            )
        multiple = self.vae_scale_factor_spatial * int(self.transformer.config.patch_size)
        if h % multiple or w % multiple:
            raise ValueError(
                f"encode_video: {h}x{w} pixels; height and width must be multiples of {multiple}"
            )
        x = videos.to(device=self.device, dtype=self.vae.dtype)
        with self.on_device("vae"):
            posterior = self.vae.encode(x).latent_dist
        latents = posterior.sample(generator) if sample_posterior else posterior.mode()
        latents = latents * self.vae.config.scaling_factor  # (B, C, F, h, w)
        return latents.permute(0, 2, 1, 3, 4).contiguous().to(self.dtype)  # (B, F, C, h, w)

    def encode_images(
        self, images: Sequence[np.ndarray], *, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """uint8 ``(H, W, 3)`` images -> latents ``(B, 1, C, h, w)`` (each a 1-frame video)."""
        return self.encode_video(self.preprocess_images(images), generator=generator)

    def encode_prompts(self, prompts: Sequence[str], *, grad: bool = False) -> torch.Tensor:
        """Prompts -> T5 hidden states ``(B, max_sequence_length, D)`` in ``self.dtype``.

        Tokenised as CogVideoXPipeline does (padding to ``max_sequence_length``, truncation,
        special tokens). The text encoder runs without autograd unless ``grad=True``.
        """
        if isinstance(prompts, str):
            prompts = [prompts]
        prompts = list(prompts)
        length = self.config.max_sequence_length
        ids = self.tokenizer(
            prompts,
            padding="max_length",
            max_length=length,
            truncation=True,
            add_special_tokens=True,
            return_tensors="pt",
        ).input_ids
        full = self.tokenizer(prompts, padding="longest", return_tensors="pt").input_ids
        if full.shape[-1] > length:
            logger.warning(
                "prompt(s) truncated to max_sequence_length=%d tokens: %s",
                length,
                [
                    p
                    for p, row in zip(prompts, full, strict=True)
                    if int((row != self.tokenizer.pad_token_id).sum()) > length
                ],
            )
        with self.on_device("text_encoder"), torch.set_grad_enabled(grad):
            embeds = self.text_encoder(ids.to(self.device))[0]
        return embeds.to(dtype=self.dtype, device=self.device)

    # ---- records -----------------------------------------------------------------------
    def fingerprint(self) -> dict[str, Any]:
        """What a checkpoint must match: the profile and the transformer's architecture.

        Random-init profiles add their ``init_seed``: other seeds are other weights.
        """
        config = {k: v for k, v in dict(self.transformer.config).items() if not k.startswith("_")}
        fingerprint = {"profile": self.config.profile, "transformer": _jsonable(config)}
        if self.profile.random_init:
            fingerprint["init_seed"] = self.config.seed
        return fingerprint

    def num_parameters(self) -> dict[str, int]:
        return {
            name: sum(p.numel() for p in module.parameters())
            for name, module in (
                ("transformer", self.transformer),
                ("vae", self.vae),
                ("text_encoder", self.text_encoder),
            )
        }

    def describe(self) -> dict[str, Any]:
        """A JSON-serialisable description for result records."""
        import diffusers
        import transformers

        return _jsonable(
            {
                "profile": self.profile.name,
                "description": self.profile.description,
                "random_init": self.profile.random_init,
                "config": self.config.to_dict(),
                "model_dir": str(self.model_dir) if self.model_dir else None,
                "device": str(self.device),
                "dtype": self.config.dtype,
                "parameters": self.num_parameters(),
                "transformer": self.fingerprint()["transformer"],
                "scheduler": {
                    k: v for k, v in dict(self.scheduler.config).items() if not k.startswith("_")
                },
                "versions": {
                    "torch": torch.__version__,
                    "diffusers": diffusers.__version__,
                    "transformers": transformers.__version__,
                },
            }
        )

    def __repr__(self) -> str:
        n = self.num_parameters()["transformer"]
        return f"Backbone(profile={self.profile.name!r}, transformer={n:,} params, device={self.device}, dtype={self.config.dtype})"


def load_backbone(
    profile: str = "tiny",
    overrides: list[str] | dict[str, str] | None = None,
    *,
    config: BackboneConfig | None = None,
) -> Backbone:
    """Build the backbone of ``profile`` with ``key=value`` overrides (or from ``config``).

    ``tiny`` is random-initialised (seeded); real profiles load their weights offline from
    ``model_path`` or the Hugging Face cache and raise :class:`WeightsError` when missing.
    """
    if config is None:
        config = BackboneConfig.for_profile(profile, overrides)
    elif overrides:
        config = config.with_overrides(overrides)
    prof = get_profile(config.profile)
    if prof.random_init:
        components = build_tiny(config, prof)
    else:
        model_dir = resolve_model_dir(config, prof)
        check_architecture(read_transformer_config(model_dir), prof, model_dir / "transformer")
        components = load_pretrained(model_dir, TORCH_DTYPES[config.dtype])
    backbone = Backbone(config, components)
    logger.info("backbone: %r", backbone)
    return backbone


def _resize_crop(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``(N, C, H, W)`` -> ``(N, C, *size)``: scale to cover, then centre-crop."""
    h, w = x.shape[-2:]
    th, tw = size
    if (h, w) != (th, tw):
        scale = max(th / h, tw / w)
        nh, nw = max(th, round(h * scale)), max(tw, round(w * scale))
        if (nh, nw) != (h, w):
            x = F.interpolate(
                x, size=(nh, nw), mode="bilinear", antialias=True, align_corners=False
            )
        top, left = (nh - th) // 2, (nw - tw) // 2
        x = x[..., top : top + th, left : left + tw]
    return x.clamp(0.0, 1.0)


def _jsonable(obj: Any) -> Any:
    return json.loads(json.dumps(obj, default=str))
