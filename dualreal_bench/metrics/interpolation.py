"""Frame interpolation for Motion Smoothness: AMT-S, loaded from an installed VBench.

The AMT-S network (MCG-NKU, CVPR 2023) is published under CC BY-NC 4.0 and ships to
Python users only inside the ``vbench`` package (``vbench/third_party/amt``). This project
does not copy it: it imports the network class from the user's VBench installation
(``pip install --no-deps vbench==0.1.5``; ``--no-deps`` because VBench pins old torch and
transformers versions). Only the network modules are imported; they need torch alone, so
VBench's own heavy imports (decord, detectron2, ...) are not required.

:func:`ms_interpolations` runs the network exactly as ``vbench.motion_smoothness.
MotionSmoothness.motion_score`` does: keep frames 0, 2, 4, ..., scale to ``[0, 1]``,
replicate-pad to a multiple of 16, predict each midpoint (``embt = 0.5``, no downscaling),
unpad, and convert back to ``uint8`` by truncation (VBench's ``tensor2img``).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types

import numpy as np
import torch

from ..errors import WeightsError
from .constants import MetricConstants
from .functional import pad_to_multiple, unpad

AMT_S_FILE = "amt-s.pth"
AMT_S_PARAMS = {
    "corr_radius": 3,
    "corr_lvls": 4,
    "num_flows": 3,
}  # vbench/third_party/amt/cfgs/AMT-S.yaml
VBENCH_HINT = "pip install --no-deps vbench==0.1.5"


def amt_s_class() -> type[torch.nn.Module]:
    """The ``Model`` class of ``vbench/third_party/amt/networks/AMT-S.py``.

    Raises WeightsError with the install command when VBench is not installed.
    """
    module_name = "vbench.third_party.amt.networks.AMT-S"
    if module_name in sys.modules:
        return sys.modules[module_name].Model
    spec = importlib.util.find_spec("vbench")
    if spec is None or not spec.submodule_search_locations:
        raise WeightsError(
            "motion smoothness needs the AMT-S network, which ships only inside VBench: "
            f"run `{VBENCH_HINT}` (its pinned dependencies are not needed)"
        )
    stub = None
    if "vbench" not in sys.modules:
        # Import the network modules without running vbench/__init__.py (which imports
        # decord and VBench's whole evaluation stack); the stub is removed afterwards.
        stub = types.ModuleType("vbench")
        stub.__path__ = list(spec.submodule_search_locations)
        stub.__spec__ = spec
        sys.modules["vbench"] = stub
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise WeightsError(
            f"cannot import the AMT-S network from VBench ({spec.origin}): {exc}"
        ) from None
    finally:
        if stub is not None and sys.modules.get("vbench") is stub:
            del sys.modules["vbench"]
    return module.Model


def build_amt_s(state: dict | None = None, **params: int) -> torch.nn.Module:
    """AMT-S (random init unless ``state``, a state dict or VBench's ``{"state_dict": ...}``).

    ``params`` override AMT-S.yaml's (the tiny profile uses ``corr_lvls=3`` so that 64-pixel
    frames keep a correlation pyramid of at least 2x2; AMT-S needs 128 pixels).
    """
    model = amt_s_class()(**{**AMT_S_PARAMS, **params})
    if state is not None:
        model.load_state_dict(state.get("state_dict", state) if isinstance(state, dict) else state)
    return model.eval()


class AmtInterpolator:
    """Midpoint of two frames with an AMT network.

    ``__call__(img0, img1)`` takes ``(B, 3, H, W)`` float32 in ``[0, 1]`` (``H, W`` multiples
    of 16) and returns the predicted middle frames, same shape, clamped to ``[0, 1]``.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        *,
        embt: float = 0.5,
        scale_factor: float = 1.0,
        identity: str | None = None,
        device: str | torch.device = "cpu",
    ) -> None:
        self.model = model.eval().to(device)
        self.embt = embt
        self.scale_factor = scale_factor
        self.identity = identity
        self.device = torch.device(device)

    @torch.no_grad()
    def __call__(self, img0: torch.Tensor, img1: torch.Tensor) -> torch.Tensor:
        embt = torch.tensor(self.embt, dtype=torch.float32, device=self.device).view(1, 1, 1, 1)
        embt = embt.expand(img0.shape[0], 1, 1, 1)
        out = self.model(
            img0.to(self.device),
            img1.to(self.device),
            embt,
            scale_factor=self.scale_factor,
            eval=True,
        )
        return out["imgt_pred"]


def ms_interpolations(frames: np.ndarray, interpolator, constants: MetricConstants) -> np.ndarray:
    """Interpolated midpoints ``uint8 (N, H, W, 3)`` between kept frames ``(0, 2), (2, 4), ...``.

    ``frames`` is the whole video, ``uint8 (T, H, W, 3)``; ``N = ceil(T / 2) - 1``.
    """
    kept = frames[:: constants.ms_frame_stride]
    x = (
        torch.from_numpy(np.ascontiguousarray(kept)).permute(0, 3, 1, 2) / 255.0
    )  # VBench img2tensor
    x, pads = pad_to_multiple(x, constants.amt_pad_multiple)
    preds = []
    for i in range(len(x) - 1):
        pred = interpolator(x[i : i + 1], x[i + 1 : i + 2]).cpu()
        pred = unpad(pred, pads)
        # VBench tensor2img: (x * 255).numpy().clip(0, 255).astype(uint8) -- truncation
        preds.append((pred * 255.0)[0].permute(1, 2, 0).numpy().clip(0, 255).astype(np.uint8))
    h, w = frames.shape[1:3]
    return np.stack(preds) if preds else np.zeros((0, h, w, 3), np.uint8)


class BlendInterpolator:
    """The average of the two frames: the tiny profile's interpolator (AMT-S is not shipped).

    Not AMT: a result computed with it says so in ``metric_versions``/``metric_constants``.
    """

    identity = "blend-midpoint"

    def __call__(self, img0: torch.Tensor, img1: torch.Tensor) -> torch.Tensor:
        return (img0 + img1) / 2
