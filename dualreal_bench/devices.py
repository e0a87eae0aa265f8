"""Device names: ``auto`` | ``cpu`` | ``mps`` | ``cuda`` | ``cuda:N``.

``auto`` is the first CUDA device when torch sees one, else the CPU; the backbone's real
profiles and the real metric encoders default to it, so a GPU box computes on its GPU
without being told. torch is imported only when a name is resolved.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from .errors import ConfigError

if TYPE_CHECKING:
    import torch

DEVICE_PATTERN = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")
DEVICE_CHOICES = "auto, cpu, mps, cuda or cuda:N"


def check_device(name: str, option: str = "device") -> str:
    """``name`` if it is a device name, else ConfigError naming ``option``."""
    if not isinstance(name, str) or not DEVICE_PATTERN.match(name):
        raise ConfigError(f"{option}={name!r}: must be {DEVICE_CHOICES}")
    return name


def resolve_device(name: str) -> torch.device:
    """The torch device of ``name``; ``"auto"`` is ``cuda`` when available, else ``cpu``."""
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)
