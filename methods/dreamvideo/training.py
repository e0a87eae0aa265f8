"""The losses of DreamVideo's three training stages, and the start of the learned token.

:class:`~.method.DreamVideoMethod` runs the stages (:func:`~.._common.loop.run_stages`: textual
inversion, the identity adapter, the motion adapter); each stage's ``loss_fn`` draws its
batch here:

* :func:`token_loss` -- textual inversion: the identity caption re-encoded through the text
  encoder for every micro-batch (the graph reaches the token's embedding);
* the identity adapter's loss is the plain loss on the caption with the learned token
  (:func:`~.._common.step.draw_batch`, in the method);
* :func:`motion_loss` -- the motion adapter's: each clip's image condition, zeroed with
  ``p_image_zero``, the caption replaced by the empty prompt with ``p_text_zero``.

:func:`start_token` checks that the identity caption holds the token and initialises it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from dualreal_bench.errors import ConfigError

from .._common.data import TrainingData
from .._common.loop import LossFn
from .._common.step import StepBatch, draw_batch
from .config import DreamVideoConfig
from .layers import PlaceholderToken
from .model import DreamVideoModel

if TYPE_CHECKING:
    from dualreal_bench.backbone import Backbone

__all__ = ["motion_loss", "start_token", "token_loss"]


def start_token(
    backbone: Backbone,
    token: PlaceholderToken,
    data: TrainingData,
    steps: dict[str, int],
    word: str,
) -> None:
    """Check the identity caption holds the token to learn; start it from ``word``."""
    if not word:
        raise ConfigError("dreamvideo: no initializer word (set initializer_word)")
    if steps["textual_inversion"] and not token.occurs_in(backbone.tokenizer, data.identity_prompt):
        raise ConfigError(
            f"dreamvideo: the identity caption {data.identity_prompt!r} has no "
            f"{token.placeholder!r} to learn; put it in identity_prompt or set "
            "textual_inversion=false"
        )
    token.initialise(backbone.tokenizer, backbone.text_encoder, word)


def token_loss(backbone: Backbone, token: PlaceholderToken, data: TrainingData) -> LossFn:
    """A textual-inversion step: the identity caption through the text encoder (with grad)."""

    def embeds() -> torch.Tensor:  # (1, L, D), a graph through the text encoder
        return token.encode(backbone, [data.identity_prompt], grad=True)

    def loss(idx: list[int], latents: torch.Tensor, gen: torch.Generator) -> StepBatch:
        return draw_batch(backbone, latents, embeds, gen)

    return loss


def motion_loss(
    config: DreamVideoConfig,
    backbone: Backbone,
    model: DreamVideoModel,
    data: TrainingData,
    steps: dict[str, int],
) -> LossFn:
    """A motion step: each clip's image condition, zeroed with ``p_image_zero``; the
    caption replaced by the empty prompt with ``p_text_zero`` (both drawn per sample)."""
    cfg = config
    device = backbone.device
    # the dropped caption of motion steps
    empty = backbone.encode_prompts([""]) if cfg.p_text_zero > 0 and steps["motion"] else None

    def set_condition(cond: torch.Tensor | None) -> None:
        model.condition = cond

    def loss(idx: list[int], latents: torch.Tensor, gen: torch.Generator) -> StepBatch:
        cond = data.motion_conditions[idx].clone()  # (B, cond_dim), one random frame per clip
        if cfg.p_image_zero > 0:
            cond[torch.rand(len(idx), generator=gen) < cfg.p_image_zero] = 0.0
        embeds = data.motion_prompt_embeds.expand(len(idx), -1, -1)
        if cfg.p_text_zero > 0:
            drop = torch.rand(len(idx), generator=gen) < cfg.p_text_zero
            embeds = torch.where(drop.to(device).view(-1, 1, 1), empty.to(embeds.dtype), embeds)
        return draw_batch(
            backbone,
            latents,
            embeds,
            gen,
            condition=cond.to(device),
            set_condition=set_condition,
        )

    return loss
