"""``base``: the backbone as it is, with no customisation (the floor row of every table)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

from dualreal_bench.method import Method, MethodConfig
from dualreal_bench.spec import strip_placeholder


@dataclasses.dataclass
class BaseConfig(MethodConfig):
    """The base model has no options of its own."""


class BaseMethod(Method):
    """Generates from the prompt alone: the subject's class noun stands for the subject.

    The benchmark's prompts name the subject as ``"<class> *"``; the base model has no
    learned placeholder, so ``" *"`` is removed ("dog * is surfing" -> "dog is surfing").
    """

    name = "base"
    config_class = BaseConfig
    trains = False

    def train(self, case: Any) -> dict[str, Any]:
        return {"steps": 0}

    def generate(self, prompts: Sequence[str], seed: int) -> list[np.ndarray]:
        return self.backbone.sample([strip_placeholder(p) for p in prompts], seed)
