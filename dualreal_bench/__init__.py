"""dualreal-bench: a benchmark for subject + motion customisation of text-to-video DiTs.

The public entry points::

    from dualreal_bench import Method, MethodConfig, get_method_class, Runner, RunConfig

Heavy pieces (the backbone, metric encoders) live in subpackages and import torch lazily.
"""

from __future__ import annotations

from ._version import __version__
from .config import Config
from .errors import BenchmarkError, ConfigError, DataError, MediaError, RegistryError, WeightsError
from .method import Method, MethodConfig, available_methods, build_method, get_method_class

__all__ = [
    "__version__",
    "BenchmarkError",
    "Config",
    "ConfigError",
    "DataError",
    "MediaError",
    "Method",
    "MethodConfig",
    "RegistryError",
    "WeightsError",
    "available_methods",
    "build_method",
    "get_method_class",
]
