"""The training side of the backbone: the transformer's forward and CogVideoX's training
objective, mixed into :class:`~dualreal_bench.backbone.Backbone`.

:meth:`TrainingMixin.training_loss` is the v-prediction loss of diffusers' CogVideoX
fine-tuning scripts, :meth:`~TrainingMixin.denoising_error` its per-element terms (for methods
that weight positions), :meth:`~TrainingMixin.draw_training_noise` the timesteps and noise it
draws (drawn once for a whole batch so that micro-batches see the same draws), and
:meth:`~TrainingMixin.velocity_error` / :meth:`~TrainingMixin.velocity_loss` the same on inputs
already checked and placed (the memory model runs them on the meta device).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch


class TrainingMixin:
    """The transformer's forward and the training loss for
    :class:`~dualreal_bench.backbone.Backbone` (which provides ``transformer``, ``scheduler``,
    ``device`` and ``dtype``)."""

    transformer: Any
    scheduler: Any
    device: torch.device
    dtype: torch.dtype

    def rotary_embeddings(self, latents: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
        """3D RoPE ``(cos, sin)`` for latents ``(B, F, C, h, w)``, as CogVideoXPipeline builds it.

        ``None`` for transformers without rotary positions (CogVideoX-2B).
        """
        cfg = self.transformer.config
        if not cfg.use_rotary_positional_embeddings:
            return None
        if cfg.patch_size_t is not None:
            raise NotImplementedError("CogVideoX 1.5 (patch_size_t) is not a supported profile")
        from diffusers.models.embeddings import get_3d_rotary_pos_embed
        from diffusers.pipelines.cogvideo.pipeline_cogvideox import get_resize_crop_region_for_grid

        num_frames, _, h, w = latents.shape[1:]
        p = cfg.patch_size
        grid_h, grid_w = h // p, w // p
        crops = get_resize_crop_region_for_grid(
            (grid_h, grid_w), cfg.sample_width // p, cfg.sample_height // p
        )
        cos, sin = get_3d_rotary_pos_embed(
            embed_dim=cfg.attention_head_dim,
            crops_coords=crops,
            grid_size=(grid_h, grid_w),
            temporal_size=num_frames,
            device=latents.device,
        )
        return cos, sin

    def forward_transformer(
        self,
        noisy_latents: torch.Tensor,
        prompt_embeds: torch.Tensor,
        timesteps: torch.Tensor,
        *,
        image_rotary_emb: tuple[torch.Tensor, torch.Tensor] | None = None,
        attention_kwargs: dict[str, Any] | None = None,
    ) -> torch.Tensor:
        """The transformer's raw output ``(B, F, C, h, w)`` (a v-prediction for CogVideoX).

        Rotary embeddings are computed from the latent grid when not given.
        """
        if image_rotary_emb is None:
            image_rotary_emb = self.rotary_embeddings(noisy_latents)
        return self.transformer(
            hidden_states=noisy_latents,
            encoder_hidden_states=prompt_embeds,
            timestep=timesteps,
            image_rotary_emb=image_rotary_emb,
            attention_kwargs=attention_kwargs,
            return_dict=False,
        )[0]

    def training_loss(
        self,
        latents: torch.Tensor,
        prompt_embeds: torch.Tensor,
        *,
        generator: torch.Generator | None = None,
        timesteps: torch.Tensor | Sequence[int] | int | None = None,
        noise: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """CogVideoX's training objective on clean latents ``(B, F, C, h, w)``; a scalar.

        As diffusers' CogVideoX LoRA/fine-tuning scripts compute it: the mean over the batch of
        the per-sample mean of :meth:`denoising_error` (arguments as there).
        """
        error = self.denoising_error(
            latents, prompt_embeds, generator=generator, timesteps=timesteps, noise=noise
        )
        return error.reshape(error.shape[0], -1).mean(dim=1).mean()

    def denoising_error(
        self,
        latents: torch.Tensor,
        prompt_embeds: torch.Tensor,
        *,
        generator: torch.Generator | None = None,
        timesteps: torch.Tensor | Sequence[int] | int | None = None,
        noise: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The per-element terms of :meth:`training_loss`: float32 ``(B, F, C, h, w)``.

        ``t ~ U{0, ..., 999}`` (from ``generator``) unless ``timesteps`` is given,
        ``x_t = add_noise(x_0, eps, t)``, ``v = transformer(x_t, text, t)``,
        ``x0_hat = sqrt(a_t) x_t - sqrt(1 - a_t) v`` (``scheduler.get_velocity(v, x_t, t)``),
        term ``= w_t * (x0_hat - x_0)^2`` with ``w_t = 1 / (1 - a_t)`` (which makes the mean the
        v-prediction MSE). ``prompt_embeds`` is ``(B, L, D)`` or ``(1, L, D)`` (broadcast).
        Methods that weight positions (a subject mask) reduce these terms themselves.
        """
        batch = latents.shape[0]
        latents = latents.to(device=self.device, dtype=self.dtype)
        prompt_embeds = prompt_embeds.to(device=self.device, dtype=self.dtype)
        if prompt_embeds.shape[0] == 1 and batch > 1:
            prompt_embeds = prompt_embeds.expand(batch, -1, -1)
        if prompt_embeds.shape[0] != batch:
            raise ValueError(
                f"training_loss: {batch} latents but {prompt_embeds.shape[0]} prompt embeddings"
            )
        num_train = int(self.scheduler.config.num_train_timesteps)
        if timesteps is None:
            t = self._draw_timesteps(batch, generator)
        else:
            t = torch.as_tensor(timesteps).reshape(-1)
            if t.numel() == 1:
                t = t.expand(batch)
        t = t.to(device=self.device, dtype=torch.long)
        if t.shape != (batch,) or int(t.min()) < 0 or int(t.max()) >= num_train:
            raise ValueError(
                f"training_loss: timesteps must be {batch} integers in [0, {num_train})"
            )
        if noise is None:
            noise = self._draw_noise(latents.shape, generator)
        return self.velocity_error(latents, prompt_embeds, t, noise)

    def velocity_error(
        self,
        latents: torch.Tensor,
        prompt_embeds: torch.Tensor,
        timesteps: torch.Tensor,
        noise: torch.Tensor,
    ) -> torch.Tensor:
        """:meth:`denoising_error` for checked inputs on the device: latents ``(B, F, C, h, w)``,
        prompt embeddings ``(B, L, D)``, timesteps ``(B,)`` long, noise like the latents (the
        memory model runs it on the meta device, where nothing can be checked)."""
        batch = latents.shape[0]
        t = timesteps
        noisy = self.scheduler.add_noise(latents, noise, t)
        model_output = self.forward_transformer(noisy, prompt_embeds, t)
        model_pred = self.scheduler.get_velocity(model_output, noisy, t)  # x0 estimate
        alphas_cumprod = self.scheduler.alphas_cumprod.to(device=self.device, dtype=torch.float32)
        weights = (1.0 / (1.0 - alphas_cumprod[t])).view(batch, 1, 1, 1, 1)
        return weights * (model_pred.float() - latents.float()) ** 2

    def velocity_loss(
        self,
        latents: torch.Tensor,
        prompt_embeds: torch.Tensor,
        timesteps: torch.Tensor,
        noise: torch.Tensor,
    ) -> torch.Tensor:
        """:meth:`training_loss` for checked inputs on the device (arguments as
        :meth:`velocity_error`): the mean over the batch of each sample's mean term."""
        error = self.velocity_error(latents, prompt_embeds, timesteps, noise)
        return error.reshape(error.shape[0], -1).mean(dim=1).mean()

    def draw_training_noise(
        self, latents: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The timesteps ``(B,)`` and the noise (the shape of ``latents``) that
        :meth:`training_loss` would draw from ``generator`` for ``latents`` ``(B, F, C, h, w)``,
        in its order. Drawing them for a whole batch and slicing gives every micro-batch
        exactly the draws the whole batch would get."""
        t = self._draw_timesteps(latents.shape[0], generator).to(self.device)
        return t, self._draw_noise(latents.shape, generator)

    def _draw_timesteps(self, batch: int, generator: torch.Generator | None) -> torch.Tensor:
        num_train = int(self.scheduler.config.num_train_timesteps)
        gen_device = generator.device if generator is not None else torch.device("cpu")
        return torch.randint(0, num_train, (batch,), generator=generator, device=gen_device)

    def _draw_noise(self, shape: Sequence[int], generator: torch.Generator | None) -> torch.Tensor:
        from diffusers.utils.torch_utils import randn_tensor

        return randn_tensor(tuple(shape), generator=generator, device=self.device, dtype=self.dtype)
