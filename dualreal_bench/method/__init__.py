"""The :class:`Method` contract and the method registry.

A method customises the shared text-to-video backbone for one benchmark case (an identity
and a motion) and then renders videos for new prompts::

    method = get_method_class("dualreal")(backbone, config)
    method.train(case)                 # learn the subject and the motion
    method.save(state_dir)             # safetensors + config.json
    videos = method.generate(prompts, seed=0)   # list of uint8 (T, H, W, 3)
    method.describe()                  # name, class, resolved config, variant key, label

Registering a third-party method, either

* an entry point in the group ``dualreal_bench.methods`` (``name = "pkg.module:Class"``), or
* ``dualreal-bench run --method pkg.module:Class`` (or ``path/to/file.py:Class``).

Built-in names resolve lazily ("module:Class" strings), so heavy methods import only
when used.

Modules: :mod:`.contract` (:class:`Method`, :class:`MethodConfig`, the variant key) and
:mod:`.memory` (:class:`MemorySettings`, :class:`MemoryStage`); the registry is here. Import
every name from ``dualreal_bench.method``.
"""

from __future__ import annotations

import json
from importlib import metadata
from typing import TYPE_CHECKING

from ..config import Config
from ..errors import RegistryError
from ..registry import Registry
from .contract import VARIANT_VERSION, Method, MethodConfig, variant_value
from .memory import MemorySettings, MemoryStage

if TYPE_CHECKING:
    from ..backbone import Backbone

__all__ = [
    "BUILTIN_METHODS",
    "ENTRY_POINT_GROUP",
    "METHODS",
    "VARIANT_VERSION",
    "MemorySettings",
    "MemoryStage",
    "Method",
    "MethodConfig",
    "available_methods",
    "build_method",
    "config_json",
    "get_method_class",
    "variant_value",
]

ENTRY_POINT_GROUP = "dualreal_bench.methods"

# name -> "module:Class"; resolved only when asked for.
BUILTIN_METHODS: dict[str, str] = {
    "base": "dualreal_bench.methods.base:BaseMethod",
    "dualreal": "dualreal_bench.methods.dualreal:DualRealMethod",
    "lora": "dualreal_bench.methods.lora:LoRAMethod",
    "sequential": "dualreal_bench.methods.sequential:SequentialMethod",
    "dreamvideo": "dualreal_bench.methods.dreamvideo:DreamVideoMethod",
    "motionbooth": "dualreal_bench.methods.motionbooth:MotionBoothMethod",
}


# ---- registry ------------------------------------------------------------------------


def _entry_point_methods() -> dict[str, metadata.EntryPoint]:
    return {ep.name: ep for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)}


def _check_method_class(name: str, cls: type[Method]) -> None:
    if getattr(cls, "__abstractmethods__", None):
        missing = ", ".join(sorted(cls.__abstractmethods__))
        raise RegistryError(f"method {name!r} ({cls.__qualname__}) does not implement {missing}")


#: every method by name: the built-ins (lazy), entry points of :data:`ENTRY_POINT_GROUP`, and
#: ``module:Class`` / ``path/to/file.py:Class`` targets
METHODS: Registry[type[Method]] = Registry(
    "method",
    BUILTIN_METHODS,
    base=Method,
    base_name="dualreal_bench.Method",
    entry_point_group=ENTRY_POINT_GROUP,
    entry_points=lambda: _entry_point_methods(),  # looked up on each call (tests replace it)
    allow_targets=True,
    check=_check_method_class,
)


def available_methods() -> list[str]:
    """Names of every registered method (built-in and entry points)."""
    return METHODS.available()


def get_method_class(name: str) -> type[Method]:
    """Resolve a registered name or a ``module:Class`` target to a :class:`Method` subclass."""
    cls = METHODS.get(name)
    if not cls.name:
        cls.name = name.rpartition(":")[2] if ":" in name else name
    return cls


def build_method(name: str, backbone: Backbone, overrides: list[str] | None = None) -> Method:
    """Instantiate a method by name with ``key=value`` config overrides."""
    cls = get_method_class(name)
    config = cls.config_class().with_overrides(overrides)
    return cls(backbone, config)


def config_json(config: Config) -> str:
    return json.dumps(config.to_dict(), sort_keys=True)
