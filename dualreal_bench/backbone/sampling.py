"""The generation side of the backbone: decoding latents, schedulers, the diffusers pipeline
and :meth:`SamplingMixin.sample`, mixed into :class:`~dualreal_bench.backbone.Backbone`.

Sampling runs ``CogVideoXPipeline`` over the backbone's own modules (the same objects, adapters
included), so whatever a method attached to ``backbone.transformer`` takes part in generation.
Its steps are split (prompts, denoising, decoding) so that with ``offload="encoders"`` the text
encoder and the VAE each come to the device for their part only
(:meth:`~dualreal_bench.backbone.Backbone.on_device`).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

if TYPE_CHECKING:
    from .config import BackboneConfig


class SamplingMixin:
    """Generation for :class:`~dualreal_bench.backbone.Backbone` (which provides the modules,
    ``config``, ``device``, ``dtype`` and :meth:`encode_prompts`)."""

    config: BackboneConfig
    device: torch.device
    dtype: torch.dtype
    transformer: Any
    vae: Any
    text_encoder: Any
    tokenizer: Any
    scheduler: Any

    if TYPE_CHECKING:

        def encode_prompts(self, prompts: Sequence[str], *, grad: bool = False) -> torch.Tensor: ...

        def on_device(self, *names: str) -> contextlib.AbstractContextManager[None]: ...

    @torch.no_grad()
    def decode_latents(self, latents: torch.Tensor) -> list[np.ndarray]:
        """Latents ``(B, F, C, h, w)`` -> one uint8 ``(T, H, W, 3)`` video per item."""
        z = latents.to(device=self.device, dtype=self.vae.dtype).permute(0, 2, 1, 3, 4)
        with self.on_device("vae"):
            video = self.vae.decode(z / self.vae.config.scaling_factor).sample  # (B, 3, T, H, W)
        video = (video.float() / 2 + 0.5).clamp(0, 1).permute(0, 2, 3, 4, 1).cpu().numpy()
        return [_to_uint8(v) for v in video]

    def make_scheduler(self, name: str | None = None) -> Any:
        """A fresh sampling scheduler ("dpm" or "ddim") with the training schedule's config."""
        from diffusers import CogVideoXDDIMScheduler, CogVideoXDPMScheduler

        name = name or self.config.scheduler
        classes = {"dpm": CogVideoXDPMScheduler, "ddim": CogVideoXDDIMScheduler}
        if name not in classes:
            raise ValueError(f"scheduler {name!r}: choose one of {', '.join(classes)}")
        return classes[name].from_config(self.scheduler.config)

    def build_pipeline(self, scheduler: Any = None) -> Any:
        """A ``CogVideoXPipeline`` over this backbone's modules (the same objects, adapters included)."""
        pipe = _pipeline_class()(
            tokenizer=self.tokenizer,
            text_encoder=self.text_encoder,
            vae=self.vae,
            transformer=self.transformer,
            scheduler=scheduler if scheduler is not None else self.make_scheduler(),
        )
        pipe.set_progress_bar_config(disable=not self.config.progress_bar)
        if self.config.cpu_offload:
            pipe.enable_model_cpu_offload(device=self.device)
        return pipe

    def sample(
        self,
        prompts: Sequence[str],
        seed: int,
        *,
        callback_on_step_end: Callable[..., dict[str, Any]] | None = None,
        callback_on_step_end_tensor_inputs: Sequence[str] = ("latents",),
        prompt_embeds: torch.Tensor | None = None,
        negative_prompt: str | None = None,
        num_inference_steps: int | None = None,
        guidance_scale: float | None = None,
        scheduler: str | None = None,
        attention_kwargs: dict[str, Any] | None = None,
    ) -> list[np.ndarray]:
        """One uint8 ``(num_frames, height, width, 3)`` video per prompt.

        Each prompt is sampled on its own from a CPU ``torch.Generator`` seeded with ``seed``
        (so a video depends on its prompt and the seed, not on the other prompts of the call:
        a resumed run regenerates identical frames). Runs ``CogVideoXPipeline`` over
        ``self.transformer`` with classifier-free guidance (``guidance_scale`` > 1, the
        negative prompt as unconditional branch) and the configured scheduler.
        ``callback_on_step_end(pipe, step, t, tensors) -> tensors`` is the pipeline's hook.
        ``prompt_embeds`` (``(len(prompts), L, D)``) replaces :meth:`encode_prompts`.
        """
        prompts = [prompts] if isinstance(prompts, str) else list(prompts)
        if prompt_embeds is not None and prompt_embeds.shape[0] != len(prompts):
            raise ValueError(
                f"sample: {len(prompts)} prompts but {prompt_embeds.shape[0]} prompt embeddings"
            )
        cfg = self.config
        guidance = cfg.guidance_scale if guidance_scale is None else guidance_scale
        pipe = self.build_pipeline(self.make_scheduler(scheduler))
        negative = None
        if guidance > 1.0:
            negative = self.encode_prompts(
                [cfg.negative_prompt if negative_prompt is None else negative_prompt]
            )
        steps = num_inference_steps or cfg.num_inference_steps
        videos: list[np.ndarray] = []
        for i, prompt in enumerate(prompts):
            embeds = (
                self.encode_prompts([prompt]) if prompt_embeds is None else prompt_embeds[i : i + 1]
            )
            videos.append(
                self._generate_one(
                    pipe,
                    embeds,
                    negative,
                    seed,
                    num_inference_steps=steps,
                    guidance_scale=guidance,
                    attention_kwargs=attention_kwargs,
                    callback_on_step_end=callback_on_step_end,
                    callback_on_step_end_tensor_inputs=callback_on_step_end_tensor_inputs,
                )
            )
        return videos

    def _generate_one(
        self,
        pipe: Any,
        prompt_embeds: torch.Tensor,
        negative_prompt_embeds: torch.Tensor | None,
        seed: int,
        *,
        num_inference_steps: int,
        guidance_scale: float,
        attention_kwargs: dict[str, Any] | None,
        callback_on_step_end: Callable[..., dict[str, Any]] | None,
        callback_on_step_end_tensor_inputs: Sequence[str],
    ) -> np.ndarray:
        """One prompt's video (uint8 ``(T, H, W, 3)``) from its embeddings ``(1, L, D)``: the
        pipeline's own steps, split so that an offloaded text encoder and VAE come to the
        device each for its part only: prompts (encoded by the caller), denoising, decoding."""
        cfg = self.config
        latents = pipe(
            prompt_embeds=prompt_embeds.to(device=self.device, dtype=self.dtype),
            negative_prompt_embeds=negative_prompt_embeds,
            height=cfg.height,
            width=cfg.width,
            num_frames=cfg.num_frames,
            num_inference_steps=num_inference_steps,
            guidance_scale=guidance_scale,
            use_dynamic_cfg=cfg.use_dynamic_cfg,
            generator=torch.Generator(device="cpu").manual_seed(int(seed)),
            output_type="latent",
            max_sequence_length=cfg.max_sequence_length,
            attention_kwargs=attention_kwargs,
            callback_on_step_end=callback_on_step_end,
            callback_on_step_end_tensor_inputs=list(callback_on_step_end_tensor_inputs),
        ).frames
        with torch.no_grad(), self.on_device("vae"):
            frames = pipe.video_processor.postprocess_video(
                video=pipe.decode_latents(latents), output_type="np"
            )
        return _to_uint8(np.asarray(frames[0]))


@functools.cache
def _pipeline_class() -> type:
    """``CogVideoXPipeline`` running where the transformer is: diffusers takes the device of
    the first module it lists (the text encoder), which waits in CPU RAM with
    ``offload="encoders"``; with accelerate's offload hooks diffusers' own answer stands."""
    from diffusers import CogVideoXPipeline

    class Pipeline(CogVideoXPipeline):
        @property
        def _execution_device(self) -> torch.device:
            if hasattr(self.transformer, "_hf_hook"):
                return super()._execution_device
            return self.transformer.device

    return Pipeline


def _to_uint8(frames: np.ndarray) -> np.ndarray:
    """Floats in ``[0, 1]`` -> uint8, rounded as diffusers' ``numpy_to_pil`` does."""
    return np.ascontiguousarray((np.clip(frames, 0.0, 1.0) * 255.0).round().astype(np.uint8))
