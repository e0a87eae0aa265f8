"""MotionBooth's three training losses, as pure functions of tensors.

* **subject region loss** (:func:`masked_mean`): the diffusion loss of the subject images
  counted inside the subject's mask at latent resolution. MotionBooth
  (``scripts/utils.py: masked_mse_loss``) divides the masked squared error summed over every
  latent channel by the number of masked *positions*, which is ``C`` times the per-element mean
  (``C`` = 4 on LaVie, 16 on CogVideoX). Here the mask is broadcast over the channels and the
  sum is divided by the number of masked *elements*: with a full mask the region loss is then
  exactly the plain diffusion loss, and its weight means the same as the preservation loss's.
  Only the scale differs from MotionBooth's (a constant factor ``C`` on this one term).
* **video preservation loss**: the backbone's plain loss
  (:meth:`~dualreal_bench.backbone.Backbone.training_loss`) on unrelated captioned clips.
* **subject-token cross-attention loss** (:func:`subject_attention` +
  :func:`cross_attention_loss`). MotionBooth's UNet has separate cross-attention layers whose
  softmax runs over the 77 text tokens; it averages the probability each latent pixel puts on
  the subject phrase's tokens over heads, tokens and layers and pushes that map towards the
  (downsampled) mask with a binary cross-entropy. CogVideoX has one *joint* attention over
  ``[text tokens; video tokens]``. Definition used here: **the attention of a video token to
  the subject is the probability mass its query row of the block's joint attention puts on the
  subject tokens' keys** -- ``P[i, j] = softmax_j'(q_i . k_j' / sqrt(d))`` with ``j'`` over all
  text *and* video keys, exactly the weights that mix the values in that block -- averaged over
  heads, over the subject tokens and over the chosen blocks. Only the slice
  ``video queries x subject keys`` is ever computed: :func:`subject_attention` runs one more
  fused attention of the video queries over all keys whose value vectors are the indicator of
  the subject positions, so its output *is* that slice, and the full map is never formed
  (memory as the block's own attention: O(tokens x head_dim)). :func:`subject_attention_explicit`
  is the naive reference that forms the full map (tests only).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = [
    "attention_target",
    "cross_attention_loss",
    "latent_region_mask",
    "mask_count",
    "masked_mean",
    "masked_share",
    "subject_attention",
    "subject_attention_explicit",
]


def masked_mean(error: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``sum(mask * error) / sum(mask)`` with ``mask`` broadcast to ``error``'s shape.

    Args:
        error: per-element loss terms, e.g. ``(B, F, C, h, w)``.
        mask: weights broadcastable to ``error`` (``(B, 1, 1, h, w)``: 1 inside the subject,
            0 outside). A change of ``error`` where the mask is 0 never changes the result.
    Returns:
        A scalar (float32); 0 (with a gradient path) when the mask is empty.
    """
    return masked_share(error, mask, mask_count(mask, error.shape, error.device))


def mask_count(mask: torch.Tensor, shape: torch.Size, device: torch.device) -> torch.Tensor:
    """``sum(mask)`` broadcast to ``shape`` (float32, on ``device``): the denominator of
    :func:`masked_mean` for errors of that shape."""
    return mask.to(device=device, dtype=torch.float32).expand(shape).sum()


def masked_share(error: torch.Tensor, mask: torch.Tensor, count: torch.Tensor) -> torch.Tensor:
    """``sum(mask * error) / count``: with ``count`` the :func:`mask_count` of a whole batch,
    a micro-batch's share of the batch's :func:`masked_mean` (the shares of all its
    micro-batches sum to it; for the whole batch it is the masked mean). 0 (with a gradient
    path) when ``count`` is 0."""
    mask = mask.to(device=error.device, dtype=torch.float32).expand_as(error)
    total = (error.float() * mask).sum()
    return total / count if bool(count > 0) else total * 0.0


def latent_region_mask(mask: torch.Tensor, factor: int) -> torch.Tensor:
    """Binary pixel masks ``(B, 1, H, W)`` -> ``(B, 1, H / factor, W / factor)``: a latent
    position counts when any pixel of its ``factor x factor`` patch is in the subject.

    (MotionBooth resizes with bilinear interpolation and counts every non-zero value, which at
    an 8x reduction samples the 2x2 pixels at each patch's centre.)
    """
    return F.max_pool2d(mask.float(), kernel_size=factor)


def attention_target(mask: torch.Tensor, factor: int) -> torch.Tensor:
    """Binary pixel masks ``(B, 1, H, W)`` -> ``(B, (H / factor) * (W / factor))``: the fraction
    of each token's ``factor x factor`` pixels inside the subject (a soft target in [0, 1], as
    MotionBooth's bilinearly resized mask), in the transformer's token order (row-major)."""
    return F.avg_pool2d(mask.float(), kernel_size=factor).flatten(1)


def subject_attention(
    query: torch.Tensor, key: torch.Tensor, text_length: int, positions: torch.Tensor
) -> torch.Tensor:
    """The joint attention of each video token to the subject tokens, from the slice alone.

    Args:
        query, key: a block's attention inputs after its q/k norms and rotary embedding,
            ``(B, heads, L + N, d)``: ``L`` text tokens, then ``N`` video tokens.
        text_length: ``L``.
        positions: indices ``(S,)`` of the subject's text tokens (each < ``L``).
    Returns:
        ``(B, N)`` float32: for video query ``i``, ``mean_h mean_s P_h[i, positions[s]]`` with
        ``P_h`` the softmax over all ``L + N`` keys of head ``h``.

    Computed as ``softmax(q_v K^T / sqrt(d)) V`` with ``V[j] = [1 if j in positions else 0,
    0, ...]`` (``d`` wide, so the fused kernels apply): the attention output's first channel is
    ``sum_s P[i, positions[s]]``; the ``N x (L + N)`` map is never materialised.
    """
    batch, heads, _, dim = key.shape
    indicator = torch.zeros(key.shape[2], dim, device=key.device, dtype=key.dtype)
    indicator[positions, 0] = 1.0
    values = indicator.expand(batch, heads, -1, -1)
    out = F.scaled_dot_product_attention(query[:, :, text_length:], key, values)  # (B, H, N, d)
    return out[..., 0].float().mean(dim=1) / positions.numel()


def subject_attention_explicit(
    query: torch.Tensor, key: torch.Tensor, text_length: int, positions: torch.Tensor
) -> torch.Tensor:
    """:func:`subject_attention` from the full ``N x (L + N)`` attention map (the naive
    reference: memory quadratic in the tokens; tests and tiny models only)."""
    scale = query.shape[-1] ** -0.5
    scores = query[:, :, text_length:].float() @ key.float().transpose(-1, -2) * scale
    probs = scores.softmax(dim=-1)  # (B, H, N, L + N)
    return probs[..., positions].mean(dim=-1).mean(dim=1)


def cross_attention_loss(attention: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """MotionBooth's subject-token loss: ``binary_cross_entropy(attention, target)``, mean over
    every position (``(B, N)`` both; computed in float32 outside autocast, which refuses it)."""
    with torch.autocast(device_type=attention.device.type, enabled=False):
        probs = attention.float().clamp(0.0, 1.0)
        return F.binary_cross_entropy(probs, target.to(probs))
