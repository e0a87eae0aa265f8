"""The six networks behind the metrics, behind one factory.

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
``interpolator``   AMT-S from VBench (Motion Smoothness)   the two frames' average
                                                           (``"tiny-amt"``: a random AMT-S)
``motion``         VideoMAE-Base Kinetics-400              the weight-free DIS-flow descriptor
                   (motion fidelity; not in the paper)     (``"videomae-tiny"``: a random
                                                           VideoMAE; ``"flow"`` on any profile)
=================  ======================================  ==================================

The tiny profile's motion descriptor is the weight-free one (:mod:`.motion.flow_backend`), not
a random VideoMAE: it has no weights to differ between machines, it is validated on the real
clips (``scripts/motion_fidelity_validation.py``), so a smoke run's motion fidelity ranks a
video that is a reference clip first, and it costs about 0.2 s per clip. ``"flow"`` makes it the
motion descriptor of the real profile too (machines without the VideoMAE weights).

:data:`ENCODERS` is that table as a registry of :class:`EncoderRole` s. Each role accepts a
name (``"real"``, ``"tiny"``, a role's own variant such as ``"tiny-amt"``), a path to a weights
file/directory (real architecture, that file), or an object/callable (tests inject exact flow
estimators this way). Real weights are found by :func:`dualreal_bench.weights.find_weights`
(the role's entry of the weights table: ``weights_dir`` and the usual caches, never
downloaded); a missing file raises :class:`~dualreal_bench.errors.WeightsError` naming the
file, where it was looked for and how to get it. The preprocessing of the image encoders is in
:mod:`.image_encoders`.
"""

from __future__ import annotations

import logging
import pickle
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..errors import ConfigError, WeightsError
from ..registry import Registry
from ..weights import WEIGHTS, find_weights, weights_identity
from .constants import MetricConstants
from .image_encoders import CLIP_IMAGE_SIZE, DINO_IMAGE_SIZE, ClipEncoder, DinoEncoder

logger = logging.getLogger(__name__)

__all__ = [
    "ENCODERS",
    "ROLES",
    "ClipEncoder",
    "DinoEncoder",
    "EncoderRole",
    "EncoderSet",
    "build_encoder",
    "identity_of",
]


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


def flow_motion(seed: int, constants: MetricConstants, device: str = "cpu"):
    """The weight-free motion descriptor (DIS flow histograms), default motion constants."""
    from .motion import FlowDescriptor

    return FlowDescriptor()


def tiny_videomae_motion(seed: int, constants: MetricConstants, device: str = "cpu"):
    """A seeded random VideoMAE (2 layers, width 32) of the Kinetics model's architecture."""
    from .motion.videomae import tiny_videomae

    return tiny_videomae(seed, device=device)


# ---- real weights -------------------------------------------------------------------------------


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


# ---- the roles and the factory -------------------------------------------------------------


@dataclass(frozen=True)
class EncoderRole:
    """One network the metrics run: its weights and how its tiny and real versions are built."""

    name: str
    #: key of the real weights in :data:`dualreal_bench.weights.WEIGHTS`
    weights: str
    #: ``tiny(seed, constants, device)``: the seeded random network of the same architecture
    tiny: Callable[[int, MetricConstants, str], Any]
    #: ``real(path, constants, device)``: the network with the weights at ``path``
    real: Callable[[Path, MetricConstants, str], Any]
    #: the tiny network's seed is ``seed * 1000 + tiny_seed`` (each role its own weights)
    tiny_seed: int
    #: other named versions of this role (``"tiny-amt"``), built as ``tiny``
    variants: dict[str, Callable[[int, MetricConstants, str], Any]] = field(default_factory=dict)

    @property
    def what(self) -> str:
        entry = WEIGHTS[self.weights]
        return f"{entry.name} ({entry.used_for})"


#: the metric encoder roles, in the order an :class:`EncoderSet` holds them
ENCODERS: Registry[EncoderRole] = Registry(
    "metric encoder",
    {
        "text_clip": EncoderRole(
            "text_clip",
            "clip-vit-b-32-openai",
            tiny=lambda seed, constants, device: tiny_clip(seed, device),
            real=lambda path, constants, device: real_clip("text_clip", path, device),
            tiny_seed=1,
        ),
        "image_clip": EncoderRole(
            "image_clip",
            "clip-vit-b-32-laion400m",
            tiny=lambda seed, constants, device: tiny_clip(seed, device),
            real=lambda path, constants, device: real_clip("image_clip", path, device),
            tiny_seed=2,
        ),
        "dino": EncoderRole(
            "dino",
            "dino-vits16",
            tiny=lambda seed, constants, device: tiny_dino(seed, device),
            real=lambda path, constants, device: real_dino(path, device),
            tiny_seed=3,
        ),
        "flow": EncoderRole("flow", "raft-large", tiny_flow, real_flow, tiny_seed=4),
        "interpolator": EncoderRole(
            "interpolator",
            "amt-s",
            tiny_interpolator,
            real_interpolator,
            tiny_seed=5,
            variants={"tiny-amt": tiny_amt_interpolator},
        ),
        # motion fidelity's descriptor (beyond the paper); tiny: the weight-free one
        "motion": EncoderRole(
            "motion",
            "videomae-kinetics",
            flow_motion,
            real_motion,
            tiny_seed=6,
            variants={"flow": flow_motion, "videomae-tiny": tiny_videomae_motion},
        ),
    },
    error=ConfigError,
)
ROLES: tuple[str, ...] = tuple(ENCODERS.names())


@dataclass
class EncoderSet:
    """The six networks an :class:`~dualreal_bench.metrics.evaluator.Evaluator` runs (``motion``:
    a motion descriptor, ``__call__(frames) -> (D,)`` with ``center``, ``constants``, ``kind``
    and ``cache_keys``, as :class:`~.motion.FlowDescriptor`)."""

    text_clip: Any
    image_clip: Any
    dino: Any
    flow: Any
    interpolator: Any
    motion: Any

    def identities(self) -> dict[str, str | None]:
        return {role: identity_of(getattr(self, role)) for role in ROLES}


def identity_of(obj: Any) -> str | None:
    """The declared identity of an encoder (None: results are not cached on disk)."""
    return getattr(obj, "identity", None)


def build_encoder(
    role: str,
    spec: Any,
    *,
    constants: MetricConstants,
    device: str = "cpu",
    weights_dir: str | Path | None = None,
    seed: int = 0,
) -> Any:
    """One encoder from a name (``"tiny"``, ``"real"``, a variant of the role such as the
    interpolator's ``"tiny-amt"``), a weights path, or an object (returned as is)."""
    r = ENCODERS.get(role)
    if not isinstance(spec, str | Path):
        return spec
    if spec == "tiny" or spec in r.variants:
        build = r.tiny if spec == "tiny" else r.variants[spec]
        return build(seed * 1000 + r.tiny_seed, constants, device)
    owners = [other for other, o in ENCODERS.items() if spec in o.variants]
    if owners:
        raise ConfigError(f"{spec!r} is a {' or '.join(owners)} encoder, not a {role} encoder")
    if spec == "real":
        path = find_weights(r.weights, weights_dir=weights_dir)
    else:
        path = find_weights(r.weights, path=spec)
    logger.info("loading %s from %s", r.what, path)
    return r.real(path, constants, device)
