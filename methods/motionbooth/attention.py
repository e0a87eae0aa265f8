"""Recording the subject-token attention of chosen blocks during a training forward.

As diffusers swaps attention behaviour (and as MotionBooth registers its ``attn_store``
processor on the UNet), :class:`SubjectAttentionProcessor` replaces a block's
``CogVideoXAttnProcessor2_0``: it computes exactly what that processor computes (the same
operations in the same order; a test compares the outputs bit for bit) and, while its
:class:`SubjectAttentionStore` is recording, also the video-to-subject slice of the block's
joint attention (:func:`~.losses.subject_attention`) from the very query and key tensors the
block attends with. :meth:`SubjectAttentionStore.attach` installs the processors and
:meth:`~SubjectAttentionStore.detach` puts the original processor objects back.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from dualreal_bench.errors import ConfigError

from .losses import subject_attention, subject_attention_explicit

__all__ = ["SubjectAttentionProcessor", "SubjectAttentionStore"]


class SubjectAttentionStore:
    """The subject-token attention maps of one forward, one ``(B, N)`` map per chosen block.

    Args:
        owner: the method's name, for error messages.
    """

    def __init__(self, owner: str = "motionbooth") -> None:
        self.owner = owner
        self.maps: list[torch.Tensor] = []
        self.positions: torch.Tensor | None = None
        #: compute the slice from the full attention map (the naive reference; tests only)
        self.explicit = False
        self._originals: dict[int, Any] = {}
        self._transformer: nn.Module | None = None

    @property
    def recording(self) -> bool:
        return self.positions is not None

    @property
    def blocks(self) -> list[int]:
        """The blocks whose processor is replaced."""
        return sorted(self._originals)

    def attach(self, transformer: nn.Module, blocks: Sequence[int] = ()) -> None:
        """Install a :class:`SubjectAttentionProcessor` on ``blocks`` (empty: every block)."""
        if self._transformer is not None:
            raise RuntimeError(f"{self.owner}: attention processors already attached")
        from diffusers.models.attention_processor import CogVideoXAttnProcessor2_0

        layers = list(getattr(transformer, "transformer_blocks", []))
        chosen = list(blocks) if blocks else list(range(len(layers)))
        bad = [b for b in chosen if not 0 <= b < len(layers)]
        if bad:
            raise ConfigError(
                f"{self.owner}: cross_attn_blocks={tuple(blocks)}: the transformer has "
                f"{len(layers)} blocks (0-{len(layers) - 1}); no block {bad[0]}"
            )
        for b in chosen:
            processor = layers[b].attn1.processor
            if type(processor) is not CogVideoXAttnProcessor2_0:
                raise ConfigError(
                    f"{self.owner}: block {b}'s attention runs {type(processor).__name__}; the "
                    "subject-token loss replaces only CogVideoXAttnProcessor2_0"
                )
        for b in chosen:
            self._originals[b] = layers[b].attn1.processor
            layers[b].attn1.set_processor(SubjectAttentionProcessor(self))
        self._transformer = transformer

    def detach(self) -> None:
        """Put every original processor object back."""
        if self._transformer is not None:
            layers = self._transformer.transformer_blocks
            for b, processor in self._originals.items():
                layers[b].attn1.set_processor(processor)
        self._originals = {}
        self._transformer = None
        self.maps = []
        self.positions = None

    @contextlib.contextmanager
    def record(self, positions: torch.Tensor) -> Iterator[list[torch.Tensor]]:
        """Record the maps of the forwards run inside, for the subject tokens at ``positions``
        (``(S,)`` indices into the text tokens); yields the list they are appended to.

        Run the backward pass inside too: with gradient checkpointing a block's forward is
        recomputed in backward and must run the same operations (the recomputation appends
        maps nobody reads; the list is cleared on the next :meth:`record`)."""
        if self._transformer is None:
            raise RuntimeError(f"{self.owner}: attach() the store before recording")
        self.maps = []
        self.positions = positions
        try:
            yield self.maps
        finally:
            self.positions = None

    def add(self, query: torch.Tensor, key: torch.Tensor, text_length: int) -> None:
        if bool((self.positions.cpu() >= text_length).any()):
            raise ValueError(
                f"{self.owner}: subject token positions {self.positions.tolist()} fall outside "
                f"the {text_length} text tokens"
            )
        positions = self.positions.to(query.device)
        fn = subject_attention_explicit if self.explicit else subject_attention
        self.maps.append(fn(query, key, text_length, positions))

    def aggregate(self) -> torch.Tensor:
        """The mean over the recorded blocks: ``(B, N)``."""
        if not self.maps:
            raise RuntimeError(f"{self.owner}: no attention map was recorded")
        return torch.stack(self.maps).mean(dim=0)


class SubjectAttentionProcessor:
    """``CogVideoXAttnProcessor2_0`` (diffusers), plus the subject-token slice of the attention
    while ``store`` records."""

    def __init__(self, store: SubjectAttentionStore) -> None:
        self.store = store

    def __call__(
        self,
        attn: nn.Module,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        image_rotary_emb: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        text_seq_length = encoder_hidden_states.size(1)
        query, key, value, attention_mask = _joint_qkv(
            attn, hidden_states, encoder_hidden_states, attention_mask, image_rotary_emb
        )
        # the subject-token slice, from the same q and k (only while recording)
        if self.store.recording:
            if attention_mask is not None:
                raise ValueError(f"{self.store.owner}: attention masks are not supported")
            self.store.add(query, key, text_seq_length)
        return _attend(attn, query, key, value, attention_mask, text_seq_length)


def _joint_qkv(
    attn: nn.Module,
    hidden_states: torch.Tensor,
    encoder_hidden_states: torch.Tensor,
    attention_mask: torch.Tensor | None,
    image_rotary_emb: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """``CogVideoXAttnProcessor2_0`` up to the attention: query, key and value
    ``(B, heads, L + N, d)`` of the joint tokens ``[text (B, L, D); video (B, N, D)]``,
    normalised, with rotary positions on the video tokens; and the attention mask prepared."""
    text_seq_length = encoder_hidden_states.size(1)
    hidden_states = torch.cat([encoder_hidden_states, hidden_states], dim=1)
    batch_size, sequence_length, _ = hidden_states.shape
    if attention_mask is not None:
        attention_mask = attn.prepare_attention_mask(attention_mask, sequence_length, batch_size)
        attention_mask = attention_mask.view(batch_size, attn.heads, -1, attention_mask.shape[-1])

    query = attn.to_q(hidden_states)
    key = attn.to_k(hidden_states)
    value = attn.to_v(hidden_states)
    inner_dim = key.shape[-1]
    head_dim = inner_dim // attn.heads
    query = query.view(batch_size, -1, attn.heads, head_dim).transpose(1, 2)
    key = key.view(batch_size, -1, attn.heads, head_dim).transpose(1, 2)
    value = value.view(batch_size, -1, attn.heads, head_dim).transpose(1, 2)
    if attn.norm_q is not None:
        query = attn.norm_q(query)
    if attn.norm_k is not None:
        key = attn.norm_k(key)
    if image_rotary_emb is not None:
        from diffusers.models.embeddings import apply_rotary_emb

        query[:, :, text_seq_length:] = apply_rotary_emb(
            query[:, :, text_seq_length:], image_rotary_emb
        )
        if not attn.is_cross_attention:
            key[:, :, text_seq_length:] = apply_rotary_emb(
                key[:, :, text_seq_length:], image_rotary_emb
            )
    return query, key, value, attention_mask


def _attend(
    attn: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    text_seq_length: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``CogVideoXAttnProcessor2_0`` from the attention on: attention, output projection, split
    back into ``(video, text)``."""
    batch_size, _, _, head_dim = query.shape
    hidden_states = F.scaled_dot_product_attention(
        query, key, value, attn_mask=attention_mask, dropout_p=0.0, is_causal=False
    )
    hidden_states = hidden_states.transpose(1, 2).reshape(batch_size, -1, attn.heads * head_dim)
    hidden_states = attn.to_out[0](hidden_states)
    hidden_states = attn.to_out[1](hidden_states)
    encoder_hidden_states, hidden_states = hidden_states.split(
        [text_seq_length, hidden_states.size(1) - text_seq_length], dim=1
    )
    return hidden_states, encoder_hidden_states
