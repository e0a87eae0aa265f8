"""Device names: ``auto`` | ``cpu`` | ``mps`` | ``cuda`` | ``cuda:N``.

``auto`` is the first CUDA device when torch sees one, else the CPU; the backbone's real
profiles and the real metric encoders default to it, so a GPU box computes on its GPU
without being told. torch is imported only when a name is resolved; resolving a device the
machine does not have is an error (never a silent move to the CPU).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from .errors import ConfigError, ResourceError

if TYPE_CHECKING:
    import torch

DEVICE_PATTERN = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")
DEVICE_CHOICES = "auto, cpu, mps, cuda or cuda:N"


def check_device(name: str, option: str = "device") -> str:
    """``name`` if it is a device name, else ConfigError naming ``option``."""
    if not isinstance(name, str) or not DEVICE_PATTERN.match(name):
        raise ConfigError(f"{option}={name!r}: must be {DEVICE_CHOICES}")
    return name


def resolve_device(name: str, option: str = "device") -> torch.device:
    """The torch device of ``name``; ``"auto"`` is ``cuda`` when available, else ``cpu``.

    A device this machine does not have (``cuda`` without a GPU or driver, ``cuda:3`` on a
    two-GPU box, ``mps`` off Apple silicon) is a ResourceError naming ``option``, raised
    here, before anything is loaded onto it."""
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(check_device(name, option))
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ResourceError(
                f"{option}={name!r}: CUDA is not available on this machine (no GPU, no driver, "
                f"or torch {torch.__version__} built without CUDA); use cpu or auto"
            )
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise ResourceError(
                f"{option}={name!r}: this machine has {count} CUDA device(s) "
                f"(cuda:0 to cuda:{count - 1})"
            )
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ResourceError(f"{option}={name!r}: MPS (Apple silicon) is not available here")
    return device
