"""Optical flow for Dynamic Degree: torchvision RAFT, run as VBench runs its RAFT.

VBench 0.1.5 (``dynamic_degree.py``) runs the original RAFT (princeton-vl) with the
``raft-things.pth`` weights, 20 iterations, on frames padded to a multiple of 8. torchvision's
``raft_large`` is the same network and its ``Raft_Large_Weights.C_T_V1`` are the port of
``raft-things``; :func:`convert_original_raft_state_dict` maps the original checkpoint (the
file VBench users already have) onto it, and the parity tests check both give the same flow.

:class:`RaftFlow` computes the same final flow as ``RAFT(image1, image2, iters=20,
test_mode=True)`` with two savings that do not change it: the feature map of each frame is
computed once (a frame is ``image2`` of one pair and ``image1`` of the next), and the
convex-upsampling mask is predicted at the last iteration only (the original computes it at
every iteration and discards all but the last).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import MediaError
from .constants import MetricConstants
from .functional import pad_to_multiple, top_fraction_magnitude, unpad

RAFT_LARGE_FILE = "raft_large_C_T_V1-22a6c225.pth"  # torchvision Raft_Large_Weights.C_T_V1
RAFT_ORIGINAL_FILE = (
    "raft-things.pth"  # princeton-vl RAFT / VBench's raft_model/models/raft-things.pth
)


class RaftFlow:
    """Flow of consecutive frames with a torchvision RAFT model.

    ``__call__(frames)`` takes ``(T, 3, H, W)`` float32 RGB in ``[0, 255]`` with ``H, W``
    multiples of 8 and returns the final upsampled flows ``(T - 1, 2, H, W)`` of the pairs
    ``(t, t + 1)``, in pixels. Frames are scaled to ``[-1, 1]`` as the original RAFT does.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        *,
        iters: int = 20,
        identity: str | None = None,
        device: str | torch.device = "cpu",
    ) -> None:
        self.model = model.eval().to(device)
        self.iters = iters
        self.identity = identity
        self.device = torch.device(device)

    @property
    def min_side(self) -> int:
        """The smallest frame height or width (after padding to a multiple of 8) this RAFT
        takes: its correlation pyramid halves the 1/8-scale feature map ``levels - 1`` times
        and torchvision wants 2 cells at the coarsest level (64 px for the tiny 3-level RAFT,
        128 for RAFT-large)."""
        return 8 * 2 ** int(self.model.corr_block.num_levels)

    @torch.no_grad()
    def __call__(self, frames: torch.Tensor) -> torch.Tensor:
        from torchvision.models.optical_flow._utils import make_coords_grid, upsample_flow

        m = self.model
        x = 2.0 * (frames.to(self.device, torch.float32) / 255.0) - 1.0
        n, _, h, w = x.shape
        flows = []
        fmap_next = m.feature_encoder(x[0:1])
        for t in range(n - 1):
            # 1. features: frame t's map is the previous pair's second map
            fmap1, fmap_next = fmap_next, m.feature_encoder(x[t + 1 : t + 2])
            try:
                m.corr_block.build_pyramid(fmap1, fmap_next)
            except ValueError as exc:  # frames too small for the pyramid
                raise MediaError(
                    f"optical flow: frames of {h}x{w} px are too small for this RAFT: {exc}"
                ) from None
            # 2. context of the first frame -> GRU state (tanh) and context (relu), 1/8 scale
            ctx = m.context_encoder(x[t : t + 1])
            hidden_size = m.update_block.hidden_state_size
            hidden, context = torch.split(ctx, [hidden_size, ctx.shape[1] - hidden_size], dim=1)
            hidden, context = torch.tanh(hidden), F.relu(context)
            # 3. iterative refinement of coords1 (1, 2, H/8, W/8)
            coords0 = make_coords_grid(1, h // 8, w // 8).to(x.device)
            coords1 = coords0.clone()
            for _ in range(self.iters):
                corr = m.corr_block.index_pyramid(centroids_coords=coords1)
                hidden, delta = m.update_block(hidden, context, corr, coords1 - coords0)
                coords1 = coords1 + delta
            # 4. convex upsampling of the final flow to (1, 2, H, W)
            mask = None if m.mask_predictor is None else m.mask_predictor(hidden)
            flows.append(upsample_flow(coords1 - coords0, up_mask=mask))
        return torch.cat(flows) if flows else x.new_zeros((0, 2, h, w))


def dd_pair_scores(frames: torch.Tensor, flow_fn, constants: MetricConstants) -> list[float]:
    """Top-fraction flow magnitude of each consecutive pair of sampled frames.

    ``frames (T, 3, H, W)`` float32 in ``[0, 255]`` (unpadded); ``flow_fn`` as :class:`RaftFlow`.
    As VBench: pad to a multiple of 8, take the flow on the padded frames, score the padded flow.
    """
    return dd_pair_scores_and_flows(frames, flow_fn, constants)[0]


def dd_pair_scores_and_flows(
    frames: torch.Tensor, flow_fn, constants: MetricConstants
) -> tuple[list[float], np.ndarray]:
    """:func:`dd_pair_scores` and the flows behind them, for other measures to reuse (the
    chained tracks of ``trajectory_fidelity``): float32 ``(T - 1, H, W, 2)`` (x, y) in pixels,
    the padding cropped off (RAFT gives ``(T - 1, 2, H + pad, W + pad)`` on the padded frames)."""
    padded, pads = pad_to_multiple(frames, constants.raft_pad_multiple)
    flows = flow_fn(padded)
    scores = [float(v) for v in top_fraction_magnitude(flows, constants.dd_top_fraction)]
    cropped = unpad(torch.as_tensor(flows), pads).permute(0, 2, 3, 1)
    return scores, cropped.to(torch.float32).cpu().numpy()


# ---- checkpoints ----------------------------------------------------------------------------

_ENCODER_RULES = [
    (r"^(fnet|cnet)\.conv1\.", r"\1.convnormrelu.0."),
    (r"^(fnet|cnet)\.norm1\.", r"\1.convnormrelu.1."),
    (r"^(fnet|cnet)\.conv2\.", r"\1.conv."),
    (r"^(fnet|cnet)\.(layer\d\.\d)\.conv(\d)\.", r"\1.\2.convnormrelu\3.0."),
    (r"^(fnet|cnet)\.(layer\d\.\d)\.norm([12])\.", r"\1.\2.convnormrelu\3.1."),
]
_UPDATE_RULES = [
    (r"^update_block\.encoder\.convc(\d)\.", r"update_block.motion_encoder.convcorr\1.0."),
    (r"^update_block\.encoder\.convf(\d)\.", r"update_block.motion_encoder.convflow\1.0."),
    (r"^update_block\.encoder\.conv\.", r"update_block.motion_encoder.conv.0."),
    (r"^update_block\.gru\.conv([zrq])(\d)\.", r"update_block.recurrent_block.convgru\2.conv\1."),
    (r"^update_block\.mask\.0\.", r"mask_predictor.convrelu.0."),
    (r"^update_block\.mask\.2\.", r"mask_predictor.conv."),
]


def convert_original_raft_state_dict(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Map an original RAFT (princeton-vl, as in VBench) state dict onto torchvision's ``raft_large``.

    Drops the ``module.`` prefix of DataParallel checkpoints and the ``norm3`` aliases of the
    residual blocks' ``downsample.1`` normalisation.
    """
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        k = key[len("module.") :] if key.startswith("module.") else key
        if re.match(r"^(fnet|cnet)\.layer\d\.\d\.norm3\.", k):
            continue  # same module as downsample.1
        for pattern, repl in _ENCODER_RULES + _UPDATE_RULES:
            new = re.sub(pattern, repl, k)
            if new != k:
                k = new
                break
        k = re.sub(r"^fnet\.", "feature_encoder.", k)
        k = re.sub(r"^cnet\.", "context_encoder.", k)
        out[k] = value
    return out


def build_raft_large(state: Mapping[str, torch.Tensor] | None = None) -> torch.nn.Module:
    """torchvision ``raft_large`` (random init unless ``state`` is given; original RAFT
    checkpoints are converted)."""
    from torchvision.models.optical_flow import raft_large

    model = raft_large(weights=None, progress=False)
    if state is not None:
        if any(k.split(".", 2)[0] in ("fnet", "cnet") or k.startswith("module.") for k in state):
            state = convert_original_raft_state_dict(state)
        model.load_state_dict(state)
    return model.eval()


def build_raft_tiny() -> torch.nn.Module:
    """A narrow RAFT of the same structure (encoders, correlation pyramid, GRU, convex
    upsampling) for tests and the tiny profile. Its pyramid has 3 levels (radius 3) instead
    of 4 so that 64-pixel frames work (torchvision needs 8 * 2 ** levels pixels)."""
    from torchvision.models.optical_flow.raft import ResidualBlock, _raft

    return _raft(
        weights=None,
        progress=False,
        feature_encoder_layers=(16, 16, 24, 32, 64),
        feature_encoder_block=ResidualBlock,
        feature_encoder_norm_layer=torch.nn.InstanceNorm2d,
        context_encoder_layers=(16, 16, 24, 32, 64),
        context_encoder_block=ResidualBlock,
        context_encoder_norm_layer=torch.nn.BatchNorm2d,
        corr_block_num_levels=3,
        corr_block_radius=3,  # 3 levels: frames down to 64 px
        motion_encoder_corr_layers=(32, 24),
        motion_encoder_flow_layers=(16, 8),
        motion_encoder_out_channels=32,
        recurrent_block_hidden_state_size=32,
        recurrent_block_kernel_size=((1, 5), (5, 1)),
        recurrent_block_padding=((0, 2), (2, 0)),
        flow_head_hidden_size=32,
        use_mask_predictor=True,
    ).eval()
