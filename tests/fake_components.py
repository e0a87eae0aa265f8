"""Cheap stand-ins for the backbone, a method and the evaluator, for testing the runner/store.

They follow the real contracts (Method subclass, uint8 videos, safetensors state) so the
runner's bookkeeping is what is under test, not a model.
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dualreal_bench.method import Method, MethodConfig

CALLS: dict[str, int] = {"train": 0, "generate": 0, "evaluate": 0}


@dataclasses.dataclass(frozen=True)
class FakeIdentity:
    name: str
    class_noun: str = "toy"


@dataclasses.dataclass(frozen=True)
class FakeMotion:
    name: str
    action: str = "swinging"


@dataclasses.dataclass(frozen=True)
class FakeCase:
    identity: FakeIdentity
    motion: FakeMotion
    prompts: tuple[str, ...]
    data_root: Path = Path(".")
    prompt_source: str = "generated"

    @property
    def case_id(self) -> str:
        return f"{self.identity.name}__{self.motion.name}"


def make_cases(n_cases: int = 2, n_prompts: int = 3) -> list[FakeCase]:
    return [
        FakeCase(
            FakeIdentity(f"id{c}"),
            FakeMotion(f"mo{c}"),
            tuple(f"toy * number {p} of case {c}" for p in range(n_prompts)),
        )
        for c in range(n_cases)
    ]


@dataclasses.dataclass
class _BackboneConfig:
    fps: int = 8


class FakeBackbone:
    config = _BackboneConfig()

    def fingerprint(self) -> dict[str, Any]:
        return {"profile": "fake", "transformer": {"num_layers": 2}}

    def describe(self) -> dict[str, Any]:
        return {"profile": "fake"}


# raise after this many generate() calls in total (simulated crash); -1: never
FAIL_AFTER_GENERATIONS = {"n": -1}


@dataclasses.dataclass
class CountingConfig(MethodConfig):
    scale: float = 1.0


class CountingMethod(Method):
    name = "counting"
    config_class = CountingConfig

    def __init__(self, backbone, config=None):
        super().__init__(backbone, config)
        self.weight = torch.zeros(4)

    def train(self, case) -> dict[str, Any]:
        CALLS["train"] += 1
        self.weight = torch.arange(4, dtype=torch.float32) + len(case.case_id)
        return {"loss": [1.0, 0.5]}

    def state_dict(self):
        return {"weight": self.weight}

    def load_state_dict(self, state):
        self.weight = state["weight"].clone()

    def generate(self, prompts, seed):
        if 0 <= FAIL_AFTER_GENERATIONS["n"] <= CALLS["generate"]:
            raise RuntimeError("simulated crash")
        CALLS["generate"] += 1
        out = []
        for p in prompts:
            h = int(
                hashlib.sha256(f"{p}|{seed}|{self.weight.sum().item()}".encode()).hexdigest()[:8],
                16,
            )
            rng = np.random.default_rng(h)
            base = rng.integers(0, 255, size=(1, 16, 16, 3))
            frames = np.clip(base + np.arange(5)[:, None, None, None] * 10, 0, 255).astype(np.uint8)
            out.append(frames)
        return out

    def generation_extras(self):
        return [{"trace": np.ones((2, 3), dtype=np.float32)}]


class LossReportingMethod(CountingMethod):
    """CountingMethod whose training reports ``LOSS_STEPS`` steps of "train identity" with a loss,
    as the bundled methods do (drives the progress bars)."""

    name = "lossy"
    LOSS_STEPS = 4

    def train(self, case) -> dict[str, Any]:
        stats = super().train(case)
        for step in range(1, self.LOSS_STEPS + 1):
            self.report_progress("train identity", step, self.LOSS_STEPS, loss=1.0 / step)
        return stats


class MovingSquareMethod(Method):
    """Learns nothing; each video is a bright square moving across a 64x64 frame (9 frames), at
    a speed set by the prompt and seed: big enough for the tiny RAFT."""

    name = "moving-square"
    trains = False

    def train(self, case) -> dict[str, Any]:
        return {}

    def generate(self, prompts, seed):
        out = []
        for p in prompts:
            speed = 1 + int(hashlib.sha256(f"{p}|{seed}".encode()).hexdigest()[:2], 16) % 4
            frames = np.full((9, 64, 64, 3), 40, dtype=np.uint8)
            for t in range(9):
                x = 8 + speed * t
                frames[t, 20:40, x : x + 16] = (230, 200, 60)
            out.append(frames)
        return out


class FakeEvaluator:
    def evaluate_video(
        self, frames: np.ndarray, *, prompt: str, case: Any, fps: float | None = None
    ) -> dict[str, Any]:
        CALLS["evaluate"] += 1
        from dualreal_bench.metrics import METRIC_FIELDS

        value = float(frames.astype(np.float64).mean() / 255.0)
        out: dict[str, Any] = {name: value for name in METRIC_FIELDS}
        out["dynamic_degree_bool"] = value > 0.5
        out["metric_versions"] = {"fake": "0"}
        return out
