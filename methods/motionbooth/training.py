"""The two micro-batches of a MotionBooth optimizer step, with their losses (:mod:`.losses`).

* :func:`image_batch` -- the subject's images: the subject region loss plus the weighted
  subject-token cross-attention loss (read from the :class:`~.attention.SubjectAttentionStore`
  the forward records into);
* :func:`video_batch` -- unrelated clips: the weighted plain diffusion loss (video preservation).

Each is a :class:`~.._common.step.StepBatch` with every draw made for the whole batch, whose
objective gives a micro-batch's share of the batch's loss, so that
:func:`~.._common.step.backward` computes the whole batch's gradient in pieces.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from .._common.data import stack_batch
from .._common.step import StepBatch, autocast_context, draw_batch
from .attention import SubjectAttentionStore
from .config import MotionBoothConfig
from .data import MotionBoothData, PreservationPool
from .losses import cross_attention_loss, mask_count, masked_share

if TYPE_CHECKING:
    from dualreal_bench.backbone import Backbone

__all__ = ["image_batch", "video_batch"]


def image_batch(
    backbone: Backbone,
    config: MotionBoothConfig,
    store: SubjectAttentionStore,
    data: MotionBoothData,
    indices: list[int],
    gen: torch.Generator,
    autocast: torch.dtype | None,
) -> tuple[StepBatch, dict[str, list[float]]]:
    """The image micro-batch with its draws, and its loss (the region loss plus the weighted
    subject-token loss) as :func:`~.._common.step.backward` computes it in pieces: each
    piece's share of the batch's masked mean (divided by the whole batch's mask count) and
    of the cross-attention loss's mean; the list it logs each piece's two terms into."""
    cfg = config
    device = backbone.device
    latents = stack_batch(data.image_latents, indices)  # (B, 1, C, h, w)
    size = latents.shape[0]
    mask = torch.cat([data.region_masks[i] for i in indices]).to(device)  # (B, 1, 1, h, w)
    count = mask_count(mask, latents.shape, device)
    target = torch.cat([data.attention_targets[i] for i in indices]).to(device)
    logged: dict[str, list[float]] = {"region": [], "cross_attn": []}

    def objective(
        part: slice, x: torch.Tensor, embeds: torch.Tensor, t: torch.Tensor, noise: torch.Tensor
    ) -> torch.Tensor:
        share = (part.stop - part.start) / size
        if cfg.cross_attn_loss_weight > 0:
            store.maps.clear()  # this piece's forward only
        with autocast_context(device, autocast):
            error = backbone.denoising_error(x, embeds, timesteps=t, noise=noise)
        if cfg.mask_region_loss:
            region = masked_share(error, mask[part], count)
        else:
            region = _weighted(error.mean(), share)
        loss = cfg.region_loss_weight * region
        attn = torch.zeros((), device=error.device)
        if cfg.cross_attn_loss_weight > 0:
            attn = _weighted(cross_attention_loss(store.aggregate(), target[part]), share)
            loss = loss + cfg.cross_attn_loss_weight * attn
        logged["region"].append(float(region.detach()))
        logged["cross_attn"].append(float(attn.detach()))
        return loss

    batch = draw_batch(backbone, latents, data.image_prompt_embeds, gen, objective=objective)
    return batch, logged


def video_batch(
    backbone: Backbone,
    weight: float,
    pool: PreservationPool,
    indices: list[int],
    gen: torch.Generator,
    autocast: torch.dtype | None,
) -> StepBatch:
    """The clip micro-batch with its draws: the plain diffusion loss on unrelated clips, times
    ``weight``."""
    latents = stack_batch([pool.latents(i) for i in indices], list(range(len(indices))))
    embeds = torch.cat([pool.embeds(i) for i in indices])
    size = latents.shape[0]

    def objective(
        part: slice, x: torch.Tensor, embeds: torch.Tensor, t: torch.Tensor, noise: torch.Tensor
    ) -> torch.Tensor:
        with autocast_context(backbone.device, autocast):
            loss = weight * backbone.training_loss(x, embeds, timesteps=t, noise=noise)
        return _weighted(loss, (part.stop - part.start) / size)

    return draw_batch(backbone, latents, embeds, gen, objective=objective)


def _weighted(loss: torch.Tensor, share: float) -> torch.Tensor:
    """A piece's ``share`` of a mean over the batch (the whole batch: the loss untouched)."""
    return loss if share == 1.0 else loss * share
