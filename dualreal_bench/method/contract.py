"""The :class:`Method` contract: what every method (built in or plugged in) implements, the
optional capabilities with their defaults, and how a method describes its variant
(:meth:`Method.describe`, :meth:`Method.variant_key`); :class:`MethodConfig`, the options every
method shares."""

from __future__ import annotations

import abc
import contextlib
import dataclasses
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from ..checkpoint import load_state, save_state
from ..config import Config, check_seed
from ..errors import ConfigError
from .memory import MemorySettings, MemoryStage

if TYPE_CHECKING:
    import torch

    from ..backbone import Backbone, BackboneConfig
    from ..spec import Case

#: which generation of the bundled methods' defaults a variant key is relative to (2: the
#: authors' defaults, issue 12). The report re-derives the keys of records without it over the
#: defaults that changed (dualreal_bench.report.variants.DEFAULT_CHANGES)
VARIANT_VERSION = 2


@dataclasses.dataclass
class MethodConfig(Config):
    """Options shared by every method. Subclasses add their own fields.

    A field declared with ``metadata={"variant": False}`` does not distinguish variants
    (:meth:`Method.variant_key`): the training seed (a replicate, not another method) and
    where weights are read from.
    """

    #: seeds training (data order, timesteps, noise, dropout draws)
    seed: int = dataclasses.field(default=0, metadata={"variant": False})

    def __post_init__(self) -> None:
        check_seed(self.seed, "--set seed")  # whatever validate() a subclass defines
        super().__post_init__()


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
      * ``describe()`` is what a record stores about the method: its name, class, config with
        every value resolved on the backbone, its variant key and a label. The variant key
        is the method's name when the resolved config is the method's reference
        configuration (:meth:`reference_config`), else ``name[k=v,...]`` over the differing
        options; the report pairs measured and published rows on it.

    Optional capabilities, declared here with their defaults (override what applies):
    :meth:`parameter_groups` (what ``inspect`` and ``estimate`` count), :meth:`fit` (training
    on prepared data, which benchmarks time), :meth:`inspection_context` (the state of a
    training forward for ``inspect``'s activation measurement), :meth:`auxiliary_models`.
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

    @classmethod  # noqa: B027 - optional hook, not abstract
    def check_backbone(cls, config: MethodConfig, backbone: BackboneConfig) -> None:
        """Raise :class:`ConfigError` if ``config`` contradicts the backbone's *shape*, known
        from its config and profile without loading a weight (DualReal: ``num_groups`` must
        divide the block count). The runner calls it before it writes anything or loads the
        backbone, so such a run fails in a second, not after the weights load. The
        constructor must still refuse what this accepts wrongly. Default: nothing to check."""

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

    # ---- state -------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Learned tensors (name -> torch.Tensor). Default: nothing learned."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state:
            raise ConfigError(
                f"{type(self).__name__} learns nothing but the checkpoint has tensors"
            )

    def save(self, directory: str | Path) -> None:
        """Write ``config.json``, ``method.json`` and ``weights.safetensors`` into ``directory``."""
        save_state(Path(directory), self)

    def load(self, directory: str | Path) -> None:
        """Restore what :meth:`save` wrote; a mismatch is a clear :class:`WeightsError`."""
        load_state(Path(directory), self)

    # ---- optional capabilities ---------------------------------------------------------
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

    def fit(
        self, data: Any, *, step_callback: Callable[[str, int], None] | None = None
    ) -> dict[str, Any]:
        """Train on a case already read and encoded (the bundled methods take a
        :class:`~dualreal_bench.methods._common.data.TrainingData`): what :meth:`train` does
        after preparing the data, so that benchmarks can time the loop on synthetic data.
        ``step_callback(stage, step)`` runs after every optimizer step. Returns the training
        statistics, as :meth:`train`. Default: ``{"steps": 0}`` for a method that does not
        train, else :class:`NotImplementedError` (the method does not separate the two)."""
        if not self.trains:
            return {"steps": 0}
        raise NotImplementedError(
            f"{type(self).__name__} has no fit(): it trains only through train(case)"
        )

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

    def memory_stages(self) -> list[MemoryStage]:
        """The kinds of training step this method takes, for the memory model (its peak is the
        largest stage's). Default: one stage training every parameter of
        :meth:`parameter_groups` on batches of ``motion_batch_size`` clips (1 where the config
        has none) in :meth:`inspection_context`."""
        params = [p for group in self.parameter_groups().values() for p in group]
        batch = int(getattr(self.config, "motion_batch_size", 1) or 1)
        return [MemoryStage("train", params, batch, None, self.inspection_context)]

    def configure_memory(self, settings: MemorySettings) -> None:
        """Train with ``settings`` (micro-batches, offloaded encoders, checkpointing, optimizer)
        from here on. Default: a :class:`ConfigError` (the method cannot)."""
        raise ConfigError(
            f"{self.name or type(self).__name__}: cannot train under memory settings "
            "(micro-batches, offloaded encoders); remove memory_budget"
        )

    # ---- the variant ---------------------------------------------------------------------
    def resolved_options(self) -> dict[str, Any]:
        """Config options whose value this method decided on its backbone (an unset option
        resolved), name -> the value in use. Default: none."""
        return {}

    def resolved_config(self) -> dict[str, Any]:
        """The config as the method runs it: :meth:`resolved_options` applied, in JSON form."""
        return _json_form({**self.config.to_dict(), **self.resolved_options()})

    def reference_config(self) -> dict[str, Any]:
        """The configuration variant keys are relative to, in the same resolved form. Default:
        ``config_class()``'s defaults; a method whose :meth:`resolved_options` fill in unset
        options returns them resolved as in its reference setting (DualReal: on CogVideoX-5B)."""
        return _json_form(self.config_class().to_dict())

    def inactive_options(self, config: Mapping[str, Any]) -> set[str]:
        """Options that have no effect given the other values of the resolved ``config`` (left
        out of the variant key, so two configs that compute the same get one key). Default:
        none."""
        return set()

    def variant_options(self) -> dict[str, Any]:
        """The resolved options that differ from :meth:`reference_config`, sorted by name;
        options marked ``metadata={"variant": False}`` and inactive ones left out."""
        mine, reference = self.resolved_config(), _json_form(self.reference_config())
        skip = {
            f.name for f in dataclasses.fields(self.config) if f.metadata.get("variant") is False
        }
        skip |= self.inactive_options(mine)
        return {
            k: mine[k]
            for k in sorted(mine)
            if k not in skip and (k not in reference or reference[k] != mine[k])
        }

    def variant_key(self) -> str:
        """``name`` for the reference configuration, else ``name[k=v,k2=v2]`` over
        :meth:`variant_options` (values in JSON form, strings bare): ``dualreal[num_groups=2]``,
        ``dualreal[controller=false]``. The same resolved config always gives the same key."""
        options = self.variant_options()
        if not options:
            return self.name
        return f"{self.name}[{','.join(f'{k}={variant_value(v)}' for k, v in options.items())}]"

    def label(self) -> str:
        """Short human text for the variant. Default: ``name`` or ``name (k=v, ...)``."""
        options = self.variant_options()
        if not options:
            return self.name
        return f"{self.name} ({', '.join(f'{k}={variant_value(v)}' for k, v in options.items())})"

    def describe(self) -> dict[str, Any]:
        """What a record stores about this method: ``name``, ``class``, ``config`` (resolved,
        in JSON form), ``variant`` (:meth:`variant_key`), ``variant_version`` (the generation of
        defaults the key is relative to, :data:`VARIANT_VERSION`) and ``label``."""
        return {
            "name": self.name,
            "class": f"{type(self).__module__}:{type(self).__qualname__}",
            "config": self.resolved_config(),
            "variant": self.variant_key(),
            "variant_version": VARIANT_VERSION,
            "label": self.label(),
        }


def variant_value(value: Any) -> str:
    """An option value as a variant key writes it: strings bare, the rest as compact JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def _json_form(config: Mapping[str, Any]) -> dict[str, Any]:
    """``config`` as JSON gives it back (tuples -> lists), so stored and fresh values compare."""
    return json.loads(json.dumps(dict(config), default=str))
