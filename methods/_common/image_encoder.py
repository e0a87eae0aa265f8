"""The image encoder that gives the motion adapters their condition ``c``.

DualReal conditions its motion adapters on an OpenCLIP ViT-H-14 image embedding
(``model.encode_image``, 1,024-d, *not* L2-normalised; wenc-k/DualReal ``train/src/clip.py``
loads ``laion/CLIP-ViT-H-14-laion2B-s32B-b79K``'s ``open_clip_pytorch_model.bin``).

How an image becomes the encoder's input (:func:`encode_condition`, ``preprocess``):

* ``"authors"``, as the authors' code does it, which differs between the two uses:
  training (wenc-k/DualReal ``train/train_adapter.py``: ``decord.VideoReader(uri, width=224,
  height=224)`` then ``x / 255.0 * 2.0 - 1.0``, and ``FrozenOpenCLIPCustomEmbedder.forward``
  encodes it as it is) stretches the clip frame to 224x224 and scales it to [-1, 1] with no
  CLIP mean/std; generation (``inference/inference.py``: ``data.Resize([224, 224])``,
  ``ToTensor``, ``Normalize(mean=CLIP_MEAN, std=CLIP_STD)``, VGen's transforms: a Pillow
  bilinear stretch) stretches the reference image and CLIP-normalises it. The training
  stretch uses :func:`dualreal_bench.media.resize_frames` (decord scales with FFmpeg inside
  its reader; the interpolation is not reproduced bit for bit);
* ``"clip"``: one preprocessing for both, open_clip's eval transform: resize the shorter side
  to the encoder's input size (bicubic, antialiased), centre-crop, normalise with the
  encoder's mean and std.

Encoders are injectable: anything with ``embed_dim`` and ``__call__(images) -> (B, D)``.
DualReal and DreamVideo (whose VGen code loads the same encoder, ``FrozenOpenCLIPCustomEmbedder``)
both resolve theirs with :func:`condition_encoder`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

import numpy as np
import torch
import torch.nn.functional as F

from dualreal_bench.errors import ConfigError, WeightsError
from dualreal_bench.weights import CLIP_MEAN, CLIP_STD, find_weights

if TYPE_CHECKING:
    from dualreal_bench.backbone import Backbone

    from .config import ImageConditionConfig

logger = logging.getLogger(__name__)

__all__ = [
    "CONDITION_PREPROCESS",
    "ImageEncoder",
    "authors_generation_pixels",
    "authors_training_pixels",
    "encode_condition",
    "OpenCLIPImageEncoder",
    "condition_encoder",
    "condition_encoder_parameters",
    "load_image_encoder",
    "load_openclip_vit_h14",
    "preprocess_images",
    "tiny_image_encoder",
]

#: the authors' image encoder in the weights table (:data:`dualreal_bench.weights.WEIGHTS`;
#: code: train/src/clip.py, README: ``open_clip_pytorch_model.bin`` of
#: ``laion/CLIP-ViT-H-14-laion2B-s32B-b79K``)
OPENCLIP_VIT_H14 = "open-clip-vit-h-14"


#: how the condition image is preprocessed (see the module's docstring)
CONDITION_PREPROCESS = ("authors", "clip")


class ImageEncoder(Protocol):
    """Maps uint8 ``(H, W, 3)`` RGB images to float32 embeddings ``(B, embed_dim)`` on the CPU
    (with the ``"clip"`` preprocessing). The ``"authors"`` preprocessing needs
    ``image_size``, ``mean``, ``std`` and ``encode_pixels(x (B, 3, S, S)) -> (B, embed_dim)``
    too (:class:`OpenCLIPImageEncoder` has them)."""

    embed_dim: int

    def __call__(self, images: Sequence[np.ndarray]) -> torch.Tensor: ...


def _check_images(images: Sequence[np.ndarray]) -> list[np.ndarray]:
    out = [np.asarray(image) for image in images]
    for image in out:
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] != 3:
            raise ValueError(f"expected uint8 (H, W, 3) images, got {image.dtype} {image.shape}")
    return out


def authors_training_pixels(images: Sequence[np.ndarray], size: int) -> torch.Tensor:
    """Clip frames as the authors' training feeds the encoder: stretched to ``size x size``,
    ``x / 255 * 2 - 1`` (in [-1, 1]), no CLIP mean/std. float32 ``(B, 3, size, size)``."""
    from dualreal_bench.media import resize_frames

    frames = [resize_frames(im, (size, size), mode="stretch") for im in _check_images(images)]
    x = torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).float()
    return x / 255.0 * 2.0 - 1.0


def authors_generation_pixels(
    images: Sequence[np.ndarray],
    size: int,
    mean: Sequence[float] = CLIP_MEAN,
    std: Sequence[float] = CLIP_STD,
) -> torch.Tensor:
    """The reference image as the authors' inference feeds the encoder (VGen's ``Resize``,
    ``ToTensor``, ``Normalize``): a Pillow bilinear stretch to ``size x size``, ``x / 255``
    clamped to [0, 1], minus ``mean``, over ``std``. float32 ``(B, 3, size, size)``."""
    from PIL import Image

    out = []
    for image in _check_images(images):
        resized = Image.fromarray(image).resize((size, size), Image.BILINEAR)
        out.append(torch.from_numpy(np.asarray(resized).copy()).permute(2, 0, 1).float() / 255.0)
    x = torch.stack(out).clamp(0, 1)
    m = torch.tensor(mean, dtype=x.dtype).view(1, 3, 1, 1)
    s = torch.tensor(std, dtype=x.dtype).view(1, 3, 1, 1)
    return (x - m) / s


def encode_condition(
    encoder: ImageEncoder, images: Sequence[np.ndarray], *, preprocess: str, stage: str
) -> torch.Tensor:
    """Embeddings ``(B, embed_dim)`` of ``images`` as condition of the motion adapters.

    ``preprocess``: "authors" or "clip" (see the module's docstring); ``stage``: "train" (clip
    frames) or "generate" (the reference image), which the authors preprocess differently."""
    if preprocess not in CONDITION_PREPROCESS:
        raise ConfigError(
            f"condition preprocessing {preprocess!r}: choose {' or '.join(CONDITION_PREPROCESS)}"
        )
    if stage not in ("train", "generate"):
        raise ValueError(f"stage {stage!r}: expected train or generate")
    if preprocess == "clip":
        return encoder(images)
    if not hasattr(encoder, "encode_pixels"):
        raise ConfigError(
            f"image encoder {type(encoder).__name__} has no encode_pixels(), which the authors' "
            "preprocessing needs; set condition_preprocess=clip"
        )
    size = int(encoder.image_size)
    if stage == "train":
        x = authors_training_pixels(images, size)
    else:
        x = authors_generation_pixels(
            images, size, getattr(encoder, "mean", CLIP_MEAN), getattr(encoder, "std", CLIP_STD)
        )
    return encoder.encode_pixels(x)


def preprocess_images(
    images: Sequence[np.ndarray],
    size: int,
    mean: Sequence[float] = CLIP_MEAN,
    std: Sequence[float] = CLIP_STD,
) -> torch.Tensor:
    """uint8 ``(H, W, 3)`` images -> float32 ``(B, 3, size, size)``: resize the shorter side,
    centre-crop, normalise."""
    out = []
    for image in _check_images(images):
        x = (
            torch.tensor(image).permute(2, 0, 1)[None].float() / 255.0
        )  # copies: inputs may be read-only
        h, w = x.shape[-2:]
        scale = size / min(h, w)
        nh, nw = max(size, round(h * scale)), max(size, round(w * scale))
        if (nh, nw) != (h, w):
            x = F.interpolate(x, size=(nh, nw), mode="bicubic", antialias=True, align_corners=False)
        top, left = (nh - size) // 2, (nw - size) // 2
        x = x[..., top : top + size, left : left + size].clamp(0, 1)
        out.append(x[0])
    x = torch.stack(out)
    m = torch.tensor(mean, dtype=x.dtype).view(1, 3, 1, 1)
    s = torch.tensor(std, dtype=x.dtype).view(1, 3, 1, 1)
    return (x - m) / s


class OpenCLIPImageEncoder:
    """``open_clip`` model -> ``encode_image`` embeddings (unnormalised), frozen, eval mode."""

    def __init__(
        self,
        model: torch.nn.Module,
        *,
        name: str,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
    ) -> None:
        self.model = model.to(device=device, dtype=dtype).eval().requires_grad_(False)
        self.name = name
        self.device = torch.device(device)
        self.dtype = dtype
        size = model.visual.image_size
        self.image_size = int(size[0] if isinstance(size, tuple | list) else size)
        cfg = getattr(model.visual, "preprocess_cfg", {}) or {}
        self.mean = tuple(cfg.get("mean", CLIP_MEAN))
        self.std = tuple(cfg.get("std", CLIP_STD))
        self.embed_dim = int(model.visual.output_dim)

    @torch.no_grad()
    def __call__(self, images: Sequence[np.ndarray]) -> torch.Tensor:
        """The "clip" preprocessing (:func:`preprocess_images`), then :meth:`encode_pixels`."""
        return self.encode_pixels(preprocess_images(images, self.image_size, self.mean, self.std))

    @torch.no_grad()
    def encode_pixels(self, x: torch.Tensor) -> torch.Tensor:
        """``encode_image`` of preprocessed pixels ``(B, 3, S, S)``, unnormalised, float32 CPU."""
        emb = self.model.encode_image(x.to(self.device, self.dtype), normalize=False)
        return emb.float().cpu()


def tiny_image_encoder(embed_dim: int = 1024, seed: int = 0) -> OpenCLIPImageEncoder:
    """A random-init open_clip CLIP of toy size (same ViT architecture), seeded, for tests and
    the tiny profile. Its ``encode_image`` gives ``embed_dim``-d embeddings of 32x32 inputs."""
    import open_clip
    from open_clip.model import CLIPTextCfg, CLIPVisionCfg

    vision = CLIPVisionCfg(layers=2, width=32, head_width=16, patch_size=8, image_size=32)
    text = CLIPTextCfg(context_length=8, vocab_size=64, width=16, heads=2, layers=1)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = open_clip.model.CLIP(embed_dim=embed_dim, vision_cfg=vision, text_cfg=text)
    return OpenCLIPImageEncoder(model, name="tiny-open-clip")


def load_openclip_vit_h14(
    path: str = "", *, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32
) -> OpenCLIPImageEncoder:
    """The authors' image encoder from ``path`` (a checkpoint, or a directory holding one) or
    the Hugging Face cache, never downloaded (:func:`dualreal_bench.weights.find_weights`)."""
    import open_clip

    checkpoint = find_weights(OPENCLIP_VIT_H14, path=path or None)
    try:
        model = open_clip.create_model(
            "ViT-H-14", pretrained=str(checkpoint), require_pretrained=True
        )
    except (RuntimeError, OSError, KeyError, ValueError) as exc:
        raise WeightsError(f"{checkpoint}: cannot load as OpenCLIP ViT-H-14 ({exc})") from None
    logger.info("image encoder: OpenCLIP ViT-H-14 from %s", checkpoint)
    return OpenCLIPImageEncoder(model, name="open_clip:ViT-H-14", device=device, dtype=dtype)


def load_image_encoder(
    kind: str,
    *,
    profile: str,
    cond_dim: int,
    path: str = "",
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
    seed: int = 0,
) -> OpenCLIPImageEncoder:
    """Resolve the config's ``image_encoder`` ("auto", "tiny", "ViT-H-14") for a backbone profile.

    "auto" is the tiny encoder on the tiny profile (random weights throughout) and the
    authors' ViT-H-14 on real profiles. The encoder's width must equal ``cond_dim``.
    """
    kind = resolved_kind(kind, profile)
    if kind == "tiny":
        encoder = tiny_image_encoder(cond_dim, seed=seed)
    elif kind == "ViT-H-14":
        encoder = load_openclip_vit_h14(path, device=device, dtype=dtype)
    else:
        raise WeightsError(f"unknown image encoder {kind!r}; choose auto, tiny or ViT-H-14")
    if encoder.embed_dim != cond_dim:
        raise WeightsError(
            f"image encoder {encoder.name} gives {encoder.embed_dim}-d embeddings but cond_dim={cond_dim}"
        )
    return encoder


def resolved_kind(kind: str, profile: str) -> str:
    """``"auto"`` resolved for a backbone profile: "tiny" on the tiny profile, else "ViT-H-14"."""
    if kind == "auto":
        return "tiny" if profile == "tiny" else "ViT-H-14"
    return kind


def condition_encoder(config: ImageConditionConfig, backbone: Backbone) -> OpenCLIPImageEncoder:
    """The encoder ``config`` asks for (``image_encoder``, ``image_encoder_path``,
    ``cond_dim``, seeded by ``config.seed`` when tiny), on the backbone's device and dtype."""
    return load_image_encoder(
        config.image_encoder,
        profile=backbone.config.profile,
        cond_dim=config.cond_dim,
        path=config.image_encoder_path,
        device=backbone.device,
        dtype=backbone.dtype,
        seed=config.seed,
    )


def condition_encoder_parameters(config: ImageConditionConfig, profile: str) -> dict[str, int]:
    """``{description: parameter count}`` of the visual tower :func:`condition_encoder` would
    load on ``profile``, counted without weights (``dualreal-bench inspect``)."""
    import open_clip

    if resolved_kind(config.image_encoder, profile) == "tiny":
        visual = tiny_image_encoder(config.cond_dim).model.visual
        return {"image encoder (tiny open_clip, visual tower)": _count(visual)}
    with torch.device("meta"):
        model = open_clip.model.CLIP(**open_clip.get_model_config("ViT-H-14"))
    return {"image encoder (OpenCLIP ViT-H-14, visual tower)": _count(model.visual)}


def _count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
