"""DreamVideo's learned pieces: the adapters of one DiT block and the textual-inversion token.

Both adapters are :class:`~dualreal_bench.methods._common.adapters.BottleneckAdapter` s
(down-projection, GELU, zero-initialised up-projection; the motion ones with DreamVideo's
condition projection ``x + W_cond(c)``), shared with DualReal. Where they attach and why is
:mod:`.model`'s docstring.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from dualreal_bench.errors import ConfigError
from dualreal_bench.spec import PLACEHOLDER

from .._common.adapters import BottleneckAdapter

if TYPE_CHECKING:
    from dualreal_bench.backbone import Backbone

__all__ = ["DreamVideoBlock", "PlaceholderToken"]


class DreamVideoBlock(nn.Module):
    """The adapters of one CogVideoX block: identity at the attention, motion at attention and FF."""

    def __init__(self, dim: int, hidden_dim: int, cond_dim: int, **kwargs: Any) -> None:
        super().__init__()
        self.identity_attn = BottleneckAdapter(dim, hidden_dim, None, **kwargs)
        self.motion_attn = BottleneckAdapter(dim, hidden_dim, cond_dim, **kwargs)
        self.motion_ff = BottleneckAdapter(dim, hidden_dim, cond_dim, **kwargs)


class PlaceholderToken(nn.Module):
    """Textual inversion on CogVideoX's T5: one learned input embedding for the ``*`` token.

    Prompts are tokenised exactly as :meth:`Backbone.encode_prompts` does; wherever the
    placeholder's token id occurs, its input embedding is replaced by ``embedding`` before
    the (frozen) encoder runs, so gradients reach ``embedding`` alone.
    """

    def __init__(
        self,
        tokenizer: Any,
        text_encoder: nn.Module,
        placeholder: str = PLACEHOLDER,
        *,
        device: torch.device | str | None = None,
    ) -> None:
        super().__init__()
        ids = [
            i
            for i in tokenizer(placeholder, add_special_tokens=False).input_ids
            if tokenizer.decode([i]).strip()  # drop a lone word-start piece ("▁")
        ]
        if len(ids) != 1:
            raise ConfigError(
                f"dreamvideo: the tokenizer splits the placeholder {placeholder!r} into {len(ids)} tokens; "
                "textual inversion needs exactly one (set textual_inversion=false)"
            )
        self.token_id = ids[0]
        self.placeholder = placeholder
        width = text_encoder.get_input_embeddings().weight.shape[1]
        if device is None:  # the compute device (the encoder may wait in CPU RAM: offload)
            device = text_encoder.get_input_embeddings().weight.device
        self.embedding = nn.Parameter(
            torch.zeros(width, dtype=torch.float32, device=device), requires_grad=False
        )

    def initialise(self, tokenizer: Any, text_encoder: nn.Module, word: str) -> None:
        """Start from the (mean) input embedding of ``word``'s tokens (VGen initializer_words)."""
        ids = tokenizer(word, add_special_tokens=False).input_ids
        if not ids:
            raise ConfigError(f"dreamvideo: initializer word {word!r} has no tokens")
        table = text_encoder.get_input_embeddings().weight
        with torch.no_grad():
            self.embedding.copy_(table[torch.tensor(ids, device=table.device)].float().mean(0))

    def encode(
        self, backbone: Backbone, prompts: Sequence[str], *, grad: bool = False
    ) -> torch.Tensor:
        """``(B, max_sequence_length, D)`` T5 states, ``*`` replaced by the learned embedding."""
        ids = backbone.tokenizer(
            list(prompts),
            padding="max_length",
            max_length=backbone.config.max_sequence_length,
            truncation=True,
            add_special_tokens=True,
            return_tensors="pt",
        ).input_ids.to(backbone.device)
        encoder = backbone.text_encoder
        with backbone.on_device("text_encoder"), torch.set_grad_enabled(grad):
            inputs = encoder.get_input_embeddings()(ids)  # (B, L, D)
            mask = (ids == self.token_id).unsqueeze(-1)
            token = self.embedding.to(device=inputs.device, dtype=inputs.dtype)
            inputs = torch.where(mask, token, inputs)
            states = encoder(inputs_embeds=inputs)[0]
        return states.to(dtype=backbone.dtype, device=backbone.device)

    def occurs_in(self, tokenizer: Any, prompt: str) -> bool:
        return self.token_id in tokenizer(prompt, add_special_tokens=True).input_ids


def text_encoder_layers(backbone: Backbone) -> list[nn.Module]:
    """The blocks of the backbone's T5 encoder (what checkpointing wraps in textual inversion)."""
    return list(backbone.text_encoder.encoder.block)
