"""DreamVideo's adapters on a CogVideoX transformer, run by forward hooks.

From the UNet to the DiT (where the adapters attach and why). DreamVideo's UNet has spatial
transformers (self-attention, cross-attention to the text, feed-forward) and temporal
transformers (self-attention over frames, "cross-attention", feed-forward). It adds the
identity adapter *in parallel* to the spatial cross-attention (``spatial_adapter_list:
['cross_attention']``, position ``parallel``) and the motion adapter in parallel to the
temporal transformer's self-attention, cross-attention and feed-forward
(``temporal_adapter_list``). A CogVideoX block has neither split: one full 3D attention over
``[text; video]`` tokens does the job of the spatial self-attention, the cross-attention to
the text and the temporal attention at once, followed by one feed-forward. So here:

* the identity adapter runs in parallel to each block's attention (``attn1``), the place
  where the text conditions the video tokens; it is "spatial" by its data (1-frame videos)
  and because a bottleneck adapter is per token;
* the motion adapter runs in parallel to each block's attention and to its feed-forward
  (the temporal transformer's attention places and its feed-forward);
* the adapters act on the video tokens only (the UNet's adapters see only video features;
  the text tokens of CogVideoX pass unchanged); the adapter outputs are added to the branch
  output before the block's gate, as DualReal's are.

"In parallel" means ``block branch + W_up GELU(W_down x)``: DreamVideo's adapter formula
``h + W_up GELU(W_down h)`` has its ``+ h`` in the block's own residual connection, so the
adapters have no skip of their own (``adapter_skip=false``) and an untrained DreamVideo is
exactly the base model.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .._common.adapters import mix_adapters, mix_pair
from .._common.hooks import TransformerHooks, attention_inputs, transformer_dims
from .config import DreamVideoConfig
from .layers import DreamVideoBlock

__all__ = ["DreamVideoModel"]


class DreamVideoModel(nn.Module):
    """DreamVideo's adapters for one transformer and the forward hooks that run them.

    Runtime controls (set by the method, read by the hooks):
        ``weights``: ``(w_id, w_m)``; ``None`` switches an adapter off (it does not run);
        ``condition``: ``(B_c, cond_dim)`` image embedding for the motion adapters, or ``None``.
    """

    def __init__(
        self,
        num_blocks: int,
        dim: int,
        config: DreamVideoConfig,
        *,
        zero_init_up: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = torch.float32,
    ) -> None:
        super().__init__()
        self.config = config
        self.num_blocks, self.dim = num_blocks, dim
        kw = {
            "skip": config.adapter_skip,
            "zero_init_up": zero_init_up,
            "device": device,
            "dtype": dtype,
        }
        self.blocks = nn.ModuleList(
            DreamVideoBlock(dim, config.adapter_dim, config.cond_dim, **kw)
            for _ in range(num_blocks)
        )
        self.weights: tuple[float | None, float | None] = (None, None)
        self.condition: torch.Tensor | None = None
        self._hooks = TransformerHooks("dreamvideo")
        self._text_len: dict[int, int] = {}

    @classmethod
    def for_transformer(
        cls,
        transformer: nn.Module,
        config: DreamVideoConfig,
        device: torch.device,
        *,
        zero_init_up: bool = True,
    ) -> DreamVideoModel:
        """Adapters sized for ``transformer``, on ``device``: initialised on the CPU from
        ``config.seed`` (whatever the global generator's state), or shapes only on ``meta``."""
        dims = transformer_dims(transformer)
        if device.type == "meta":  # shapes only (``dualreal-bench inspect``)
            return cls(
                dims["num_blocks"], dims["dim"], config, zero_init_up=zero_init_up, device=device
            )
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            model = cls(dims["num_blocks"], dims["dim"], config, zero_init_up=zero_init_up)
        return model.to(device)

    def identity_parameters(self) -> list[nn.Parameter]:
        return [p for b in self.blocks for p in b.identity_attn.parameters()]

    def motion_parameters(self) -> list[nn.Parameter]:
        return [
            p for b in self.blocks for m in (b.motion_attn, b.motion_ff) for p in m.parameters()
        ]

    @property
    def attached(self) -> bool:
        return self._hooks.attached

    def attach(self, transformer: nn.Module) -> None:
        """Hook every block's ``attn1`` and ``ff`` of a ``CogVideoXTransformer3DModel``."""
        self._hooks.attach(
            transformer,
            {"num_blocks": self.num_blocks, "dim": self.dim},
            attention=self._on_attention,
            feed_forward=self._on_feed_forward,
        )

    def detach(self) -> None:
        self._hooks.detach()
        self._text_len = {}

    def _on_attention(
        self, index: int, module: nn.Module, args: Any, kwargs: dict, output: Any
    ) -> Any:
        hidden, encoder = attention_inputs(args, kwargs)  # (B, N, D) video, (B, L, D) text
        self._text_len[index] = int(encoder.shape[1])
        w_id, w_m = self.weights
        if w_id is None and w_m is None:
            return None
        block = self.blocks[index]
        attn_hidden, attn_encoder = output
        delta = mix_pair(
            hidden,
            block.identity_attn,
            block.motion_attn,
            (w_id, w_m),
            self.condition,
            self.config.cond_scale,
        )
        return attn_hidden + delta, attn_encoder  # text tokens unchanged

    def _on_feed_forward(
        self, index: int, module: nn.Module, args: Any, output: torch.Tensor
    ) -> Any:
        w_m = self.weights[1]
        if w_m is None:
            return None
        text = self._text_len[index]  # the FF input is cat([text, video]) (CogVideoXBlock)
        video = args[0][:, text:]
        delta = mix_adapters(
            video, [self.blocks[index].motion_ff], [w_m], [self.condition], self.config.cond_scale
        )
        return torch.cat([output[:, :text], output[:, text:] + delta], dim=1)
