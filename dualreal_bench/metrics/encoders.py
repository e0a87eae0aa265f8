"""The five networks behind the metrics, behind one factory.

=================  ======================================  ==================================
role               real (the paper's, as the authors ran)  tiny (tests, smoke runs)
=================  ======================================  ==================================
``text_clip``      OpenAI CLIP ViT-B/32 (CLIP-T)           open_clip CLIP, 2 layers, seeded
``image_clip``     open_clip ViT-B-32-quickgelu,           another seeded tiny CLIP
                   laion400m_e32 (CLIP-I, T-Cons)
``dino``           DINO ViT-S/16 ``facebook/dino-vits16``  transformers ViT, 2 layers, seeded
                   (transformers; CLS token; DINO-I)
``flow``           torchvision RAFT-large, C_T_V1          narrow RAFT (same structure)
                   (= raft-things; Dynamic Degree)
``interpolator``   AMT-S from VBench (Motion Smoothness)   AMT-S, 3 corr. levels, random
=================  ======================================  ==================================

Each role accepts a name (``"real"``, ``"tiny"``), a path to a weights file/directory (real
architecture, that file), or an object/callable (tests inject exact flow estimators this way).
Real weights are looked up in ``weights_dir`` and the usual caches, never downloaded; a
missing file raises :class:`~dualreal_bench.errors.WeightsError` naming the file, where it
was looked for and how to get it.

Preprocessing follows the authors' script: CLIP frames through open_clip's (= OpenAI's)
transform (bicubic resize of the short side to 224, centre crop, CLIP mean/std); DINO frames
through ``facebook/dino-vits16``'s ``ViTImageProcessor`` (bilinear resize to 224x224 without
cropping, mean = std = 0.5 -- that checkpoint's processor config, not ImageNet's).
"""

from __future__ import annotations

import logging
import os
import pickle
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from ..errors import ConfigError, WeightsError
from .constants import MetricConstants

logger = logging.getLogger(__name__)

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
CLIP_IMAGE_SIZE = 224
DINO_MEAN = (0.5, 0.5, 0.5)  # facebook/dino-vits16 preprocessor_config.json
DINO_STD = (0.5, 0.5, 0.5)
DINO_IMAGE_SIZE = 224

ROLES = ("text_clip", "image_clip", "dino", "flow", "interpolator")


# ---- image encoders --------------------------------------------------------------------------


class ClipEncoder:
    """An open_clip CLIP model with its tokenizer and the OpenAI/open_clip image transform.

    ``preprocess(frames uint8 (T, H, W, 3)) -> (T, 3, 224, 224)``;
    ``encode_image(pixels) -> (T, D)``; ``encode_text(list[str]) -> (N, D)`` (unnormalised).
    """

    preprocess_key = ("clip", CLIP_IMAGE_SIZE, CLIP_MEAN, CLIP_STD, "bicubic", "shortest")

    def __init__(
        self,
        model: torch.nn.Module,
        tokenizer: Any,
        *,
        identity: str | None,
        context_length: int = 77,
        device: str | torch.device = "cpu",
    ) -> None:
        import open_clip

        self.model = model.eval().to(device)
        self.tokenizer = tokenizer
        self.identity = identity
        self.context_length = context_length
        self.device = torch.device(device)
        self._transform = open_clip.image_transform(
            CLIP_IMAGE_SIZE,
            is_train=False,
            mean=CLIP_MEAN,
            std=CLIP_STD,
            resize_mode="shortest",
            interpolation="bicubic",
        )

    def preprocess(self, frames: np.ndarray | Sequence[np.ndarray]) -> torch.Tensor:
        return torch.stack([self._transform(Image.fromarray(f)) for f in frames])

    @torch.no_grad()
    def encode_image(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.model.encode_image(pixels.to(self.device)).float().cpu()

    @torch.no_grad()
    def encode_text(self, texts: Sequence[str]) -> torch.Tensor:
        tokens = self.tokenizer(list(texts), context_length=self.context_length)
        return self.model.encode_text(tokens.to(self.device)).float().cpu()


class DinoEncoder:
    """A transformers ``ViTModel``; the embedding is the CLS token of ``last_hidden_state``
    (after the final layer norm), as the authors' script takes it."""

    preprocess_key = ("dino", DINO_IMAGE_SIZE, DINO_MEAN, DINO_STD, "bilinear", "stretch")

    def __init__(
        self, model: torch.nn.Module, *, identity: str | None, device: str | torch.device = "cpu"
    ) -> None:
        self.model = model.eval().to(device)
        self.identity = identity
        self.device = torch.device(device)
        self._mean = torch.tensor(DINO_MEAN).view(1, 3, 1, 1)
        self._std = torch.tensor(DINO_STD).view(1, 3, 1, 1)

    def preprocess(self, frames: np.ndarray | Sequence[np.ndarray]) -> torch.Tensor:
        # ViTImageProcessor (slow): PIL bilinear resize to 224x224, x / 255, (x - mean) / std
        size = (DINO_IMAGE_SIZE, DINO_IMAGE_SIZE)
        arr = np.stack(
            [np.asarray(Image.fromarray(f).resize(size, Image.BILINEAR)) for f in frames]
        )
        x = torch.from_numpy(arr).permute(0, 3, 1, 2).float() * (1 / 255)
        return (x - self._mean) / self._std

    @torch.no_grad()
    def encode_image(self, pixels: torch.Tensor) -> torch.Tensor:
        out = self.model(pixel_values=pixels.to(self.device))
        return out.last_hidden_state[:, 0].float().cpu()


# ---- tiny (random, seeded) ------------------------------------------------------------------


def tiny_clip(seed: int, device: str = "cpu") -> ClipEncoder:
    """A 2-layer open_clip CLIP (ViT/32 image tower at 224 px, BPE text tower) with seeded weights."""
    import open_clip
    from open_clip.model import CLIP, CLIPTextCfg, CLIPVisionCfg

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = CLIP(
            embed_dim=32,
            vision_cfg=CLIPVisionCfg(
                layers=2, width=64, head_width=32, patch_size=32, image_size=CLIP_IMAGE_SIZE
            ),
            text_cfg=CLIPTextCfg(context_length=77, vocab_size=49408, width=64, heads=2, layers=2),
            quick_gelu=True,
        )
    tokenizer = open_clip.get_tokenizer("ViT-B-32")  # the BPE vocabulary ships inside open_clip
    return ClipEncoder(model, tokenizer, identity=f"tiny-clip-v1-seed{seed}", device=device)


def tiny_dino(seed: int, device: str = "cpu") -> DinoEncoder:
    """A 2-layer ViT/16 at 224 px (transformers ``ViTModel``) with seeded weights."""
    from transformers import ViTConfig, ViTModel

    config = ViTConfig(
        hidden_size=48,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=96,
        image_size=DINO_IMAGE_SIZE,
        patch_size=16,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = ViTModel(config, add_pooling_layer=False)
    return DinoEncoder(model, identity=f"tiny-dino-v1-seed{seed}", device=device)


def tiny_flow(seed: int, constants: MetricConstants, device: str = "cpu"):
    from .flow import RaftFlow, build_raft_tiny

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_raft_tiny()
    return RaftFlow(
        model, iters=constants.raft_iters, identity=f"tiny-raft-v1-seed{seed}", device=device
    )


def tiny_interpolator(seed: int, constants: MetricConstants, device: str = "cpu"):
    """The tiny profile's interpolator: the average of the two frames, on every machine.

    AMT-S's network ships only inside VBench (CC BY-NC), so a random AMT-S would exist on some
    machines and not on others; the tiny profile must give the same numbers everywhere, so it
    never depends on whether VBench happens to be importable. :func:`tiny_amt_interpolator`
    (role spec ``"tiny-amt"``) is the random AMT-S, asked for explicitly.
    """
    from .interpolation import BlendInterpolator

    return BlendInterpolator()


def tiny_amt_interpolator(seed: int, constants: MetricConstants, device: str = "cpu"):
    """A seeded random AMT-S (3 correlation levels, for 64-pixel frames) from an installed
    VBench; WeightsError with the install command when VBench is absent (no fallback)."""
    from .interpolation import AmtInterpolator, build_amt_s

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_amt_s(corr_lvls=3)  # 64-pixel frames (see build_amt_s)
    return AmtInterpolator(
        model,
        embt=constants.amt_embt,
        scale_factor=constants.amt_scale_factor,
        identity=f"tiny-amt-s-3lvl-v1-seed{seed}",
        device=device,
    )


# ---- real weights -------------------------------------------------------------------------------


@dataclass(frozen=True)
class WeightSpec:
    """Where the real weights of one role are looked for, and how users get them."""

    role: str
    what: str
    files: tuple[str, ...]  # names accepted inside weights_dir (first found wins)
    caches: tuple[str, ...]  # other locations (``~`` and ``$TORCH_HOME`` expanded)
    hf_repo: str | None  # a Hugging Face hub cache entry also accepted
    hf_files: tuple[str, ...]
    hint: str


def _torch_hub_dir() -> str:
    return str(Path(torch.hub.get_dir()) / "checkpoints")


WEIGHTS: dict[str, WeightSpec] = {
    "text_clip": WeightSpec(
        "text_clip",
        "OpenAI CLIP ViT-B/32 (CLIP-T)",
        files=("ViT-B-32.pt", "clip-vit-b-32-openai.safetensors", "clip-vit-b-32-openai.bin"),
        caches=("~/.cache/clip/ViT-B-32.pt",),
        hf_repo="timm/vit_base_patch32_clip_224.openai",
        hf_files=("open_clip_model.safetensors", "open_clip_pytorch_model.bin"),
        hint='on a machine with internet: python -c "import open_clip; open_clip.create_model('
        "'ViT-B-32-quickgelu', pretrained='openai')\" (fills the Hugging Face cache), or copy "
        "OpenAI's ViT-B-32.pt (from `clip.load('ViT-B/32')`, ~/.cache/clip) into the weights dir",
    ),
    "image_clip": WeightSpec(
        "image_clip",
        "open_clip ViT-B-32-quickgelu laion400m_e32 (CLIP-I, T-Cons)",
        files=(
            "vit_b_32-quickgelu-laion400m_e32-46683a32.pt",
            "clip-vit-b-32-laion400m_e32.safetensors",
            "clip-vit-b-32-laion400m_e32.bin",
        ),
        caches=(),
        hf_repo="timm/vit_base_patch32_clip_224.laion400m_e32",
        hf_files=("open_clip_model.safetensors", "open_clip_pytorch_model.bin"),
        hint='on a machine with internet: python -c "import open_clip; open_clip.create_model('
        "'ViT-B-32-quickgelu', pretrained='laion400m_e32')\" (fills the Hugging Face cache), or "
        "put open_clip's vit_b_32-quickgelu-laion400m_e32-46683a32.pt into the weights dir",
    ),
    "dino": WeightSpec(
        "dino",
        "DINO ViT-S/16 facebook/dino-vits16 (DINO-I)",
        files=("dino-vits16",),  # a directory with config.json + model weights
        caches=(),
        hf_repo="facebook/dino-vits16",
        hf_files=("config.json",),
        hint='on a machine with internet: python -c "from transformers import ViTModel; '
        "ViTModel.from_pretrained('facebook/dino-vits16')\" (fills the Hugging Face cache), or "
        "`huggingface-cli download facebook/dino-vits16 --local-dir <weights_dir>/dino-vits16`",
    ),
    "flow": WeightSpec(
        "flow",
        "torchvision RAFT-large C_T_V1 (Dynamic Degree)",
        files=("raft_large_C_T_V1-22a6c225.pth", "raft-things.pth"),
        caches=(
            "$TORCH_HUB/raft_large_C_T_V1-22a6c225.pth",
            "~/.cache/vbench/raft_model/models/raft-things.pth",
        ),
        hf_repo=None,
        hf_files=(),
        hint='on a machine with internet: python -c "from torchvision.models.optical_flow import '
        'raft_large, Raft_Large_Weights; raft_large(weights=Raft_Large_Weights.C_T_V1)" '
        "(fills the torch hub cache), or copy VBench's raft-things.pth into the weights dir",
    ),
    "interpolator": WeightSpec(
        "interpolator",
        "AMT-S (Motion Smoothness)",
        files=("amt-s.pth",),
        caches=("~/.cache/vbench/amt_model/amt-s.pth",),
        hf_repo=None,
        hf_files=(),
        hint="VBench downloads it to ~/.cache/vbench/amt_model/amt-s.pth (from the "
        "lalala125/AMT Hugging Face repo); copy it into the weights dir",
    ),
}


def _expand(location: str) -> Path:
    return Path(os.path.expanduser(location.replace("$TORCH_HUB", _torch_hub_dir())))


def find_weights(role: str, weights_dir: str | Path | None = None) -> Path:
    """The local weights file (or directory) of ``role``; WeightsError if none exists."""
    spec = WEIGHTS[role]
    tried: list[str] = []
    if weights_dir is not None:
        for name in spec.files:
            path = Path(weights_dir) / name
            if path.exists():
                return path
            tried.append(str(path))
    for location in spec.caches:
        path = _expand(location)
        if path.exists():
            return path
        tried.append(str(path))
    if spec.hf_repo:
        try:
            from huggingface_hub import try_to_load_from_cache

            for filename in spec.hf_files:
                hit = try_to_load_from_cache(spec.hf_repo, filename)
                if isinstance(hit, str) and Path(hit).exists():
                    return Path(hit).parent if role == "dino" else Path(hit)
        except ImportError:  # pragma: no cover - huggingface_hub comes with transformers
            pass
        tried.append(f"Hugging Face cache {spec.hf_repo}")
    raise WeightsError(
        f"no weights for {spec.what}: looked for {', '.join(tried) or '(nothing: pass weights_dir)'}. "
        f"To get them: {spec.hint}. (No download is attempted; pass weights_dir=... or "
        f"{role}=<path> to use another location.)"
    )


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


def _weights_identity(kind: str, path: Path) -> str:
    """``kind@sha256:<hash of the weights' bytes>``: the same weights give the same identity
    wherever they are stored (and the same cache entries and records); other weights, another."""
    from ..cache import file_sha256

    return f"{kind}@sha256:{file_sha256(path)[:16]}"


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
        identity=_weights_identity(f"open_clip:ViT-B-32-quickgelu:{role}", path),
        device=device,
    )


def real_dino(path: Path, device: str = "cpu") -> DinoEncoder:
    from transformers import ViTModel

    try:
        model = ViTModel.from_pretrained(str(path), add_pooling_layer=False, local_files_only=True)
    except LOAD_ERRORS as exc:
        raise WeightsError(f"{path}: cannot load DINO ViT-S/16 ({load_error_text(exc)})") from None
    ident = _weights_identity(
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
        identity=_weights_identity("torchvision:raft_large", path),
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
        identity=_weights_identity("vbench:amt-s", path),
        device=device,
    )


# ---- the factory ----------------------------------------------------------------------------------


@dataclass
class EncoderSet:
    """The five networks an :class:`~dualreal_bench.metrics.evaluator.Evaluator` runs."""

    text_clip: Any
    image_clip: Any
    dino: Any
    flow: Any
    interpolator: Any

    def identities(self) -> dict[str, str | None]:
        return {role: identity_of(getattr(self, role)) for role in ROLES}


def identity_of(obj: Any) -> str | None:
    """The declared identity of an encoder (None: results are not cached on disk)."""
    return getattr(obj, "identity", None)


_TINY_SEEDS = {"text_clip": 1, "image_clip": 2, "dino": 3, "flow": 4, "interpolator": 5}


def build_encoder(
    role: str,
    spec: Any,
    *,
    constants: MetricConstants,
    device: str = "cpu",
    weights_dir: str | Path | None = None,
    seed: int = 0,
) -> Any:
    """One encoder from a name (``"tiny"``, ``"real"``; ``"tiny-amt"`` for the interpolator), a
    weights path, or an object (returned as is)."""
    if role not in ROLES:
        raise ConfigError(f"unknown metric encoder role {role!r}; roles: {', '.join(ROLES)}")
    if not isinstance(spec, str | Path):
        return spec
    if spec == "tiny-amt":
        if role != "interpolator":
            raise ConfigError(f"'tiny-amt' is an interpolator, not a {role} encoder")
        return tiny_amt_interpolator(seed * 1000 + _TINY_SEEDS[role], constants, device)
    if spec == "tiny":
        s = seed * 1000 + _TINY_SEEDS[role]
        if role in ("text_clip", "image_clip"):
            return tiny_clip(s, device)
        if role == "dino":
            return tiny_dino(s, device)
        if role == "flow":
            return tiny_flow(s, constants, device)
        return tiny_interpolator(s, constants, device)
    if spec == "real":
        path = find_weights(role, weights_dir)
    else:
        path = Path(spec).expanduser()
        if not path.exists():
            raise WeightsError(
                f"{path}: no such weights file for {WEIGHTS[role].what}. {WEIGHTS[role].hint}"
            )
    logger.info("loading %s from %s", WEIGHTS[role].what, path)
    if role in ("text_clip", "image_clip"):
        return real_clip(role, path, device)
    if role == "dino":
        return real_dino(path, device)
    if role == "flow":
        return real_flow(path, constants, device)
    return real_interpolator(path, constants, device)
