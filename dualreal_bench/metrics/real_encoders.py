"""The real metric encoders: the paper's networks with weights loaded from a local file.

:func:`~.encoders.build_encoder` finds the file (:func:`dualreal_bench.weights.find_weights`)
and calls the role's loader here; a file that is not the expected checkpoint raises
:class:`~dualreal_bench.errors.WeightsError` naming it (:data:`LOAD_ERRORS`,
:func:`load_error_text`). Each encoder's identity is its weights' hash
(:func:`~dualreal_bench.weights.weights_identity`), which keys the cached reference values.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

import torch

from ..errors import WeightsError
from ..weights import weights_identity
from .constants import MetricConstants
from .image_encoders import ClipEncoder, DinoEncoder

#: what loading a checkpoint file raises when the file is not one: torch's and zip's errors, a
#: truncated pickle (EOFError), and ``weights_only=True`` refusing pickled objects that are not
#: tensors (UnpicklingError) -- all a WeightsError naming the file
LOAD_ERRORS = (
    RuntimeError,
    OSError,
    KeyError,
    ValueError,
    EOFError,
    zipfile.BadZipFile,
    pickle.UnpicklingError,
)


def load_error_text(exc: BaseException) -> str:
    """Why a checkpoint did not load, in one short line (torch's refusal of a pickle holding
    code or objects is several lines of advice to load it anyway: not given here)."""
    if isinstance(exc, pickle.UnpicklingError):
        return (
            "it holds pickled Python objects besides tensors, which weights_only loading "
            "refuses: use the published checkpoint"
        )
    return " ".join(str(exc).split())[:300]


def _load_clip_state(path: Path) -> dict[str, torch.Tensor]:
    from open_clip.factory import load_state_dict

    if zipfile.is_zipfile(path) and any(
        n.endswith("constants.pkl") for n in zipfile.ZipFile(path).namelist()
    ):
        state = torch.jit.load(
            str(path), map_location="cpu"
        ).state_dict()  # OpenAI's TorchScript archive
        for key in ("input_resolution", "context_length", "vocab_size"):
            state.pop(key, None)
        return state
    return load_state_dict(str(path))


def real_clip(role: str, path: Path, device: str = "cpu") -> ClipEncoder:
    import open_clip

    model = open_clip.create_model("ViT-B-32-quickgelu", pretrained=None)
    try:
        state = _load_clip_state(path)
        from open_clip.factory import convert_state_dict

        model.load_state_dict(convert_state_dict(model, state))
    except LOAD_ERRORS as exc:
        raise WeightsError(
            f"{path}: not a ViT-B-32 CLIP checkpoint ({load_error_text(exc)})"
        ) from None
    tokenizer = open_clip.get_tokenizer("ViT-B-32")
    return ClipEncoder(
        model,
        tokenizer,
        identity=weights_identity(f"open_clip:ViT-B-32-quickgelu:{role}", path),
        device=device,
    )


def real_dino(path: Path, device: str = "cpu") -> DinoEncoder:
    from transformers import ViTModel

    try:
        model = ViTModel.from_pretrained(str(path), add_pooling_layer=False, local_files_only=True)
    except LOAD_ERRORS as exc:
        raise WeightsError(f"{path}: cannot load DINO ViT-S/16 ({load_error_text(exc)})") from None
    ident = weights_identity(
        "transformers:ViTModel:dino-vits16", path
    )  # a directory: all its files
    return DinoEncoder(model, identity=ident, device=device)


def real_flow(path: Path, constants: MetricConstants, device: str = "cpu"):
    from .flow import RaftFlow, build_raft_large

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        model = build_raft_large(state)
    except LOAD_ERRORS as exc:
        raise WeightsError(
            f"{path}: not a RAFT-large checkpoint ({load_error_text(exc)})"
        ) from None
    return RaftFlow(
        model,
        iters=constants.raft_iters,
        identity=weights_identity("torchvision:raft_large", path),
        device=device,
    )


def real_interpolator(path: Path, constants: MetricConstants, device: str = "cpu"):
    from .interpolation import AmtInterpolator, build_amt_s

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except LOAD_ERRORS as exc:
        raise WeightsError(
            f"{path}: cannot read the AMT-S checkpoint ({load_error_text(exc)})"
        ) from None
    try:
        model = build_amt_s(state)
    except (RuntimeError, KeyError) as exc:
        raise WeightsError(
            f"{path}: not an AMT-S checkpoint ({' '.join(str(exc).split())[:300]})"
        ) from None
    return AmtInterpolator(
        model,
        embt=constants.amt_embt,
        scale_factor=constants.amt_scale_factor,
        identity=weights_identity("vbench:amt-s", path),
        device=device,
    )


def real_motion(path: Path, constants: MetricConstants, device: str = "cpu"):
    from .motion.videomae import real_videomae

    return real_videomae(path, device=device)
