"""The :class:`Method` contract and the method registry.

A method customises the shared text-to-video backbone for one benchmark case (an identity
and a motion) and then renders videos for new prompts::

    method = get_method_class("dualreal")(backbone, config)
    method.train(case)                 # learn the subject and the motion
    method.save(state_dir)             # safetensors + config.json
    videos = method.generate(prompts, seed=0)   # list of uint8 (T, H, W, 3)

Registering a third-party method, either

* an entry point in the group ``dualreal_bench.methods`` (``name = "pkg.module:Class"``), or
* ``dualreal-bench run --method pkg.module:Class`` (or ``path/to/file.py:Class``).

Built-in names resolve lazily ("module:Class" strings), so heavy methods import only
when used.
"""

from __future__ import annotations

import abc
import contextlib
import dataclasses
import json
import logging
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from ._registry_util import import_target, unknown_name_error
from .config import Config
from .errors import ConfigError, RegistryError

if TYPE_CHECKING:
    import torch

    from .backbone import Backbone
    from .spec import Case

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "dualreal_bench.methods"

# name -> "module:Class"; resolved only when asked for.
BUILTIN_METHODS: dict[str, str] = {
    "base": "dualreal_bench.methods.base:BaseMethod",
    "dualreal": "dualreal_bench.methods.dualreal:DualRealMethod",
    "lora": "dualreal_bench.methods.lora:LoRAMethod",
    "sequential": "dualreal_bench.methods.sequential:SequentialMethod",
    "dreamvideo": "dualreal_bench.methods.dreamvideo:DreamVideoMethod",
}


@dataclasses.dataclass
class MethodConfig(Config):
    """Options shared by every method. Subclasses add their own fields."""

    seed: int = 0  # seeds training (data order, timesteps, noise, dropout draws)


class Method(abc.ABC):
    """A customisation method: learns a case, then generates videos for prompts.

    Contract:
      * ``train(case)`` learns the case's identity (``case.identity``, its reference images)
        and motion (``case.motion``, its reference clips). It may be called once per
        instance. Methods that learn nothing (``trains = False``) may make it a no-op.
      * ``generate(prompts, seed)`` returns one video per prompt, each a ``numpy.uint8``
        array of shape ``(T, H, W, 3)`` at the backbone's frame count and size. The same
        (state, prompts, seed) gives the same frames. Prompts are passed as the benchmark
        writes them (the subject as ``"<class> *"``); a method that learns no placeholder
        token decides itself what to do with ``" *"``.
      * ``save(directory)`` writes everything ``load`` needs to reproduce ``generate``
        (weights as safetensors, the config as JSON); ``load`` on a freshly constructed
        instance of the same class and backbone restores it, and fails with a clear error
        on a mismatched backbone or a corrupt file.
      * ``generation_extras()`` may return, for the last ``generate`` call, one dict of
        arrays per video (e.g. DualReal's controller trace); the runner saves them beside
        the video.
    """

    #: registry name; set by subclasses
    name: ClassVar[str] = ""
    #: the config dataclass of this method
    config_class: ClassVar[type[MethodConfig]] = MethodConfig
    #: False for methods that generate without learning anything (the ``base`` floor row)
    trains: ClassVar[bool] = True

    #: set by the runner: ``callback(stage, step, total, info)`` for progress bars
    progress_callback: Callable[[str, int, int, dict[str, Any]], None] | None = None

    def __init__(self, backbone: Backbone, config: MethodConfig | None = None) -> None:
        if config is None:
            config = self.config_class()
        if not isinstance(config, self.config_class):
            raise ConfigError(
                f"{type(self).__name__} expects a {self.config_class.__name__}, got {type(config).__name__}"
            )
        self.backbone = backbone
        self.config = config

    @abc.abstractmethod
    def train(self, case: Case) -> dict[str, Any]:
        """Learn ``case``; return training statistics (e.g. ``{"loss": [...]}``) for the record."""

    @abc.abstractmethod
    def generate(self, prompts: Sequence[str], seed: int) -> list[np.ndarray]:
        """One uint8 ``(T, H, W, 3)`` video per prompt, reproducible for a given seed."""

    def report_progress(self, stage: str, step: int, total: int, **info: Any) -> None:
        """Call from long loops (``stage`` e.g. "train identity"); drives the CLI's progress bar."""
        if self.progress_callback is not None:
            self.progress_callback(stage, step, total, info)

    def teardown(self) -> None:  # noqa: B027 - optional hook, not abstract
        """Leave the shared backbone as this method found it (remove hooks/adapters, restore
        fine-tuned weights). The runner calls it after each case; the default does nothing."""

    def generation_extras(self) -> list[dict[str, np.ndarray]]:
        """Per-video auxiliary arrays of the last :meth:`generate` call (default: none)."""
        return []

    def planned_train_steps(self) -> int | None:
        """Optimizer steps :meth:`train` will take with this config (``dualreal-bench estimate``
        multiplies it by the measured step time); 0 for methods that do not train, None if
        unknown. Default: the config's ``total_steps`` if it has one, else
        ``max_train_steps`` (times ``steps_scale`` when present). Override when steps are
        counted otherwise (e.g. per training phase)."""
        if not self.trains:
            return 0
        total = getattr(self.config, "total_steps", None)
        if isinstance(total, int) and not isinstance(total, bool):
            return total
        steps = getattr(self.config, "max_train_steps", None)
        if isinstance(steps, int) and not isinstance(steps, bool):
            scale = getattr(self.config, "steps_scale", 1.0) or 1.0
            return 0 if steps == 0 else max(1, round(steps * scale))
        return None

    def parameter_groups(self) -> dict[str, list[torch.nn.Parameter]]:
        """Learned parameters by component (``{"identity adapters": [...], ...}``), for
        ``inspect`` and ``estimate``. Default: the backbone transformer's parameters that
        require gradients, as one group ``"transformer (requires_grad)"`` (empty for a
        frozen backbone)."""
        transformer = getattr(self.backbone, "transformer", None)
        params = (
            [] if transformer is None else [p for p in transformer.parameters() if p.requires_grad]
        )
        return {"transformer (requires_grad)": params}

    def inspection_context(self, batch_size: int) -> contextlib.AbstractContextManager[None]:
        """A context in which one transformer forward runs as a training step of this method
        does (e.g. the motion adapters conditioned on a zero embedding of ``batch_size``
        rows), for ``inspect``'s shape-only activation measurement on the meta device.
        Default: nothing to set up."""
        return contextlib.nullcontext()

    def auxiliary_models(self) -> dict[str, int]:
        """Frozen helper models the method loads besides the backbone, ``{description:
        parameter count}`` (``inspect``). Default: none."""
        return {}

    def resolved_options(self) -> dict[str, Any]:
        """Config options whose value this method decided on its backbone (an unset option
        resolved), name -> the value in use. Default: none."""
        return {}

    # ---- state -------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Learned tensors (name -> torch.Tensor). Default: nothing learned."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state:
            raise ConfigError(f"{type(self).__name__} learns nothing but the checkpoint has tensors")

    def save(self, directory: str | Path) -> None:
        """Write ``config.json``, ``method.json`` and ``weights.safetensors`` into ``directory``."""
        from .checkpoint import save_state

        save_state(Path(directory), self)

    def load(self, directory: str | Path) -> None:
        """Restore what :meth:`save` wrote; a mismatch is a clear :class:`WeightsError`."""
        from .checkpoint import load_state

        load_state(Path(directory), self)

    def describe(self) -> dict[str, Any]:
        """What a record stores about this method: its name, class and resolved config."""
        return {
            "name": self.name,
            "class": f"{type(self).__module__}:{type(self).__qualname__}",
            "config": self.config.to_dict(),
        }


# ---- registry ------------------------------------------------------------------------


def _entry_point_methods() -> dict[str, metadata.EntryPoint]:
    return {ep.name: ep for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)}


def available_methods() -> list[str]:
    """Names of every registered method (built-in and entry points)."""
    return sorted(set(BUILTIN_METHODS) | set(_entry_point_methods()))


def get_method_class(name: str) -> type[Method]:
    """Resolve a registered name or a ``module:Class`` target to a :class:`Method` subclass."""
    if ":" in name:
        obj = import_target(name)
    elif name in BUILTIN_METHODS:
        obj = import_target(BUILTIN_METHODS[name])
    else:
        eps = _entry_point_methods()
        if name not in eps:
            raise unknown_name_error("method", name, available_methods())
        try:
            obj = eps[name].load()
        except (ImportError, AttributeError) as exc:
            raise RegistryError(f"method {name!r}: entry point {eps[name].value!r} fails to load: {exc}") from exc
    if not (isinstance(obj, type) and issubclass(obj, Method)):
        raise RegistryError(f"method {name!r} resolves to {obj!r}, which is not a dualreal_bench.Method subclass")
    if getattr(obj, "__abstractmethods__", None):
        missing = ", ".join(sorted(obj.__abstractmethods__))
        raise RegistryError(f"method {name!r} ({obj.__qualname__}) does not implement {missing}")
    if not obj.name:
        obj.name = name.rpartition(":")[2] if ":" in name else name
    return obj


def build_method(name: str, backbone: Backbone, overrides: list[str] | None = None) -> Method:
    """Instantiate a method by name with ``key=value`` config overrides."""
    cls = get_method_class(name)
    config = cls.config_class().with_overrides(overrides)
    return cls(backbone, config)


def config_json(config: Config) -> str:
    return json.dumps(config.to_dict(), sort_keys=True)
