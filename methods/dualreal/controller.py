"""The StageBlender controller: per-group identity/motion weights from (timestep, content).

Runs once per transformer forward (so once per denoising step), before the blocks:

    c    = W_c(maxpool_tokens(tokens))                      tokens after patch embedding, (B, D) -> (B, T)
    shift, scale, gate = Linear(SiLU(t_emb)).chunk(3)       t_emb: the timestep embedding, (B, T)
    f    = LN(c) * (1 + scale) + shift                      AdaLN
    f    = Linear(4T -> T)(GELU(Linear(T -> 4T)(f))) + gate * c
    w_id = sigmoid(Linear(H -> n)(ReLU(Linear(T -> H)(ReLU(f))))) * 0.2     (B, n), last Linear zero-init
    w_m  = 0.2 - w_id

T = time_embed_dim (512 for CogVideoX-5B), D = the token width (3,072), H = 128.
Structure and initialisation as the authors' ``Controller`` (wenc-k/DualReal, model/dit.py):
GELU with the tanh approximation, LayerNorm with affine parameters and eps 1e-5, the
final Linear zero-initialised so both weights start at 0.1.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from dualreal_bench.errors import ConfigError

__all__ = ["StageBlenderController", "block_groups"]


def block_groups(num_blocks: int, num_groups: int) -> list[int]:
    """Group index of every block: block ``i`` uses group ``i // (num_blocks / num_groups)``.

    Raises :class:`ConfigError` when ``num_groups`` does not divide ``num_blocks`` (the
    authors assert the same in ``get_dynamic_weight``).
    """
    if num_groups < 1 or num_blocks < 1:
        raise ConfigError(
            f"dualreal: need num_groups >= 1 and blocks >= 1, got {num_groups} and {num_blocks}"
        )
    if num_blocks % num_groups:
        divisors = [d for d in range(1, num_blocks + 1) if num_blocks % d == 0]
        raise ConfigError(
            f"dualreal: num_groups={num_groups} does not divide the backbone's {num_blocks} transformer "
            f"blocks; choose one of {', '.join(map(str, divisors))}"
        )
    per_group = num_blocks // num_groups
    return [i // per_group for i in range(num_blocks)]


class StageBlenderController(nn.Module):
    """Maps the timestep embedding and the patch-embedded tokens to ``w_id`` of shape ``(B, n)``.

    Args:
        token_dim: width of the transformer tokens (``inner_dim``, 3,072 for 5B).
        time_dim: width of the timestep embedding (``time_embed_dim``, 512 for 5B).
        num_groups: ``n``.
        hidden_dim: width of the output MLP (128).
        scale: ``w_id`` lies in ``(0, scale)``; ``w_m = scale - w_id``.
    """

    def __init__(
        self,
        token_dim: int,
        time_dim: int,
        num_groups: int,
        hidden_dim: int = 128,
        scale: float = 0.2,
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        self.num_groups = num_groups
        self.scale = float(scale)
        self.time_proj = nn.Linear(time_dim, 3 * time_dim, **factory)  # shift, scale, gate
        self.token_proj = nn.Linear(token_dim, time_dim, **factory)
        self.norm = nn.LayerNorm(time_dim, eps=1e-5, elementwise_affine=True, **factory)
        self.fuse_up = nn.Linear(time_dim, 4 * time_dim, **factory)
        self.fuse_down = nn.Linear(4 * time_dim, time_dim, **factory)
        self.head_hidden = nn.Linear(time_dim, hidden_dim, **factory)
        self.head_out = nn.Linear(hidden_dim, num_groups, **factory)
        nn.init.zeros_(self.head_out.weight)
        nn.init.zeros_(self.head_out.bias)

    def forward(self, t_emb: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """``t_emb`` ``(B, T)``, ``tokens`` ``(B, N, D)`` (text and visual) -> ``w_id`` ``(B, n)``.

        Computes in the controller's parameter dtype (fp32 when training), whatever the
        backbone's dtype.
        """
        dt = self.token_proj.weight.dtype
        pooled = tokens.amax(dim=1).to(dt)  # (B, D): max over all tokens
        c = self.token_proj(pooled)  # (B, T)
        shift, scale, gate = self.time_proj(F.silu(t_emb.to(dt))).chunk(3, dim=1)  # 3 x (B, T)
        f = self.norm(c) * (1 + scale) + shift
        f = self.fuse_down(F.gelu(self.fuse_up(f), approximate="tanh")) + gate * c
        logits = self.head_out(F.relu(self.head_hidden(F.relu(f))))  # (B, n)
        return torch.sigmoid(logits) * self.scale

    def weights(
        self, t_emb: torch.Tensor, tokens: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(w_id, w_m)``, each ``(B, n)``, with ``w_m = scale - w_id``."""
        w_id = self(t_emb, tokens)
        return w_id, self.scale - w_id
