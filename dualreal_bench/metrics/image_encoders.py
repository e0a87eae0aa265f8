"""The metric image encoders: CLIP (CLIP-T, CLIP-I, T-Cons) and DINO (DINO-I), each with the
preprocessing of the authors' evaluation script.

CLIP frames go through open_clip's (= OpenAI's) transform: bicubic resize of the short side to
224, centre crop, CLIP mean/std. DINO frames go through ``facebook/dino-vits16``'s
``ViTImageProcessor``: bilinear resize to 224x224 without cropping, mean = std = 0.5 (that
checkpoint's processor config, not ImageNet's). Which weights they hold is the factory's
business (:mod:`.encoders`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image

from ..weights import CLIP_MEAN, CLIP_STD

CLIP_IMAGE_SIZE = 224
DINO_MEAN = (0.5, 0.5, 0.5)  # facebook/dino-vits16 preprocessor_config.json
DINO_STD = (0.5, 0.5, 0.5)
DINO_IMAGE_SIZE = 224


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
