"""The text-to-video backbone: CogVideoX through diffusers.

``load_backbone("tiny")`` builds a random-initialised CogVideoX of toy size on the CPU (tests,
the smoke suite); ``load_backbone("cogvideox-5b", ["model_path=/weights/CogVideoX-5b"])`` loads
the published weights offline (a local directory or the Hugging Face cache)::

    bb = load_backbone("tiny")
    latents = bb.encode_video(bb.preprocess_video(frames)[None])   # (1, F, C, h, w)
    text = bb.encode_prompts(["a toy * swinging back and forth"])  # (1, L, D)
    loss = bb.training_loss(latents, text, generator=torch.Generator().manual_seed(0))
    videos = bb.sample(["a toy * swinging back and forth"], seed=0)  # [uint8 (T, H, W, 3)]
"""

from .config import BackboneConfig
from .model import Backbone, load_backbone
from .profiles import PROFILES, Profile, available_profiles, get_profile

__all__ = [
    "PROFILES",
    "Backbone",
    "BackboneConfig",
    "Profile",
    "available_profiles",
    "get_profile",
    "load_backbone",
]
