"""Parameters of a method on a backbone, counted on PyTorch's ``meta`` device.

The profile's transformer is built without weights (:func:`build_meta_backbone`), the method
attaches to it as it would to the real backbone, and what it trains is read from
:meth:`Method.parameter_groups() <dualreal_bench.method.Method.parameter_groups>`. So counts
for ``cogvideox-5b`` need no download.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from diffusers import (
    AutoencoderKLCogVideoX,
    CogVideoXDDIMScheduler,
    CogVideoXTransformer3DModel,
)
from diffusers.utils import logging as diffusers_logging
from transformers import T5Config, T5EncoderModel

from ..backbone import Backbone, BackboneConfig, Profile, get_profile
from ..backbone.profiles import TINY_TEXT_ENCODER, TINY_VAE
from ..method import Method

#: Hugging Face layout of CogVideoX-2b/5b ``text_encoder/config.json`` (T5 v1.1 XXL encoder)
T5_XXL_ENCODER = {
    "vocab_size": 32128,
    "d_model": 4096,
    "d_kv": 64,
    "d_ff": 10240,
    "num_layers": 24,
    "num_heads": 64,
    "feed_forward_proj": "gated-gelu",
    "is_encoder_decoder": False,
}


@dataclass
class MetaBackbone:
    """What a method sees of a backbone, with the transformer on the meta device; it computes
    the training loss with the backbone's own code (:meth:`Backbone.velocity_loss`)."""

    config: BackboneConfig
    transformer: CogVideoXTransformer3DModel
    dtype: torch.dtype
    scheduler: Any = None
    #: the device the estimates are for (``None``: the configured one, see :attr:`target_device`)
    target: torch.device | None = None

    # the backbone's own forward and loss, run on meta tensors
    velocity_loss = Backbone.velocity_loss
    velocity_error = Backbone.velocity_error
    forward_transformer = Backbone.forward_transformer
    rotary_embeddings = Backbone.rotary_embeddings

    @property
    def device(self) -> torch.device:
        return torch.device("meta")

    @property
    def target_device(self) -> torch.device:
        """The device the modelled training and generation run on: ``target``, else the
        configured device, ``"auto"`` standing for a CUDA device (the GPU the estimate is for).
        What a method resolves by device ("auto" options: the optimizer, DualReal's trainable
        dtype) resolves against it."""
        if self.target is not None:
            return self.target
        device = self.config.device
        return torch.device("cuda") if device in (None, "auto") else torch.device(device)

    @property
    def profile(self) -> Profile:
        return get_profile(self.config.profile)

    def fingerprint(self) -> dict[str, Any]:
        config = {k: v for k, v in dict(self.transformer.config).items() if not k.startswith("_")}
        return {
            "profile": self.config.profile,
            "transformer": json.loads(json.dumps(config, default=str)),
        }


def build_meta_backbone(
    profile: str,
    overrides: Sequence[str] | None = None,
    transformer_overrides: Mapping[str, Any] | None = None,
    *,
    config: BackboneConfig | None = None,
    target: torch.device | None = None,
) -> MetaBackbone:
    """The profile's transformer (published architecture, with ``transformer_overrides`` such
    as ``{"num_layers": 2}``) on the meta device, frozen, in the profile's dtype; ``config``
    (a backbone's whole configuration) replaces ``profile`` and ``overrides``; ``target``: the
    device the estimates are for (:attr:`MetaBackbone.target_device`)."""
    if config is None:
        config = BackboneConfig.for_profile(profile, list(overrides or []))
    dtype = getattr(torch, config.dtype)
    prof = get_profile(config.profile)
    with torch.device("meta"):
        transformer = CogVideoXTransformer3DModel(
            **{**prof.transformer, **dict(transformer_overrides or {})}
        )
    verbosity = diffusers_logging.get_verbosity()
    diffusers_logging.set_verbosity_error()  # .to(dtype) warns about fp32 modules (there are none)
    try:
        transformer.to(dtype=dtype)
    finally:
        diffusers_logging.set_verbosity(verbosity)
    transformer.requires_grad_(False)
    scheduler = CogVideoXDDIMScheduler(**prof.scheduler)
    return MetaBackbone(
        config=config, transformer=transformer, dtype=dtype, scheduler=scheduler, target=target
    )


def count_unique(params: Iterable[torch.nn.Parameter]) -> int:
    """Elements of ``params``, each parameter counted once however often it is listed."""
    return sum(p.numel() for p in {id(p): p for p in params}.values())


@functools.lru_cache(maxsize=8)
def meta_helpers(profile: str) -> dict[str, torch.nn.Module]:
    """The profile's text encoder and VAE on the meta device (architecture only), in the
    profile's dtype: ``{"text_encoder": T5EncoderModel, "vae": AutoencoderKLCogVideoX}``."""
    tiny = get_profile(profile).random_init
    dtype = getattr(torch, BackboneConfig.for_profile(profile).dtype)
    with torch.device("meta"):
        text_encoder = T5EncoderModel(T5Config(**(TINY_TEXT_ENCODER if tiny else T5_XXL_ENCODER)))
        vae = AutoencoderKLCogVideoX(**TINY_VAE) if tiny else AutoencoderKLCogVideoX()
    return {"text_encoder": text_encoder.to(dtype).eval(), "vae": vae.to(dtype).eval()}


def frozen_helper_counts(profile: str) -> dict[str, int]:
    """Parameter counts of the backbone's text encoder and VAE (built on meta)."""
    helpers = meta_helpers(profile)
    tiny = get_profile(profile).random_init
    names = (
        ("text encoder (tiny T5)", "VAE (tiny)")
        if tiny
        else ("text encoder (T5 v1.1 XXL)", "VAE (AutoencoderKLCogVideoX)")
    )
    return {
        name: sum(p.numel() for p in helpers[key].parameters())
        for name, key in zip(names, ("text_encoder", "vae"), strict=True)
    }


@dataclass
class ParameterCounts:
    components: dict[str, int]  # component -> trainable parameters
    trainable: int  # every trainable parameter once
    frozen: int  # the transformer's parameters the method does not train


def count_parameters(method: Method, transformer: torch.nn.Module) -> ParameterCounts:
    """What ``method`` trains per component, in total, and what stays frozen of ``transformer``."""
    groups = {k: list(v) for k, v in method.parameter_groups().items()}
    trainable_ids = {id(p) for ps in groups.values() for p in ps}
    frozen = sum(p.numel() for p in transformer.parameters() if id(p) not in trainable_ids)
    return ParameterCounts(
        {name: count_unique(ps) for name, ps in groups.items()},
        count_unique(p for ps in groups.values() for p in ps),
        frozen,
    )
