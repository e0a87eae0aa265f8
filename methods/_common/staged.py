"""The base of the methods that train in stages on a case encoded once.

LoRA, sequential fine-tuning and DreamVideo learn a case the same way: read and encode it
once (:func:`.data.prepare_case_data`, with the config's caption templates), then run their
stages on the encoded data (:meth:`StagedMethod.fit`, which benchmarks also call on
synthetic data). :class:`StagedMethod` holds that ``train``, the once-per-instance rule and
the plain stage of one dimension (its items, its caption, the backbone's loss).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch

from dualreal_bench.errors import ConfigError
from dualreal_bench.method import MemoryStage, Method

from .config import TrainingConfig
from .data import TrainingData, prepare_case_data
from .loop import Stage, draw_batch, run_stages
from .memory import TrainingMemory
from .optim import OptimizerSettings

if TYPE_CHECKING:
    from dualreal_bench.spec import Case

    from .image_encoder import ImageEncoder
    from .loop import StepBatch

__all__ = ["StagedMethod"]


class StagedMethod(TrainingMemory, Method):
    """``train(case)`` = :meth:`prepare` + :meth:`fit`, once per instance, under the method's
    memory settings (:class:`~.memory.TrainingMemory`).

    Subclasses implement :meth:`fit` (setting ``self._trained``) and, where it applies,
    :meth:`caption_placeholder` (what ``" *"`` becomes in the captions),
    :meth:`condition_encoder` (the image encoder of per-clip conditions) and
    :meth:`release_encoders` (free what only :meth:`prepare` needed).
    """

    config: TrainingConfig
    _trained: bool = False

    def caption_placeholder(self) -> str:
        """``"keep"`` or ``"strip"`` for the training captions (default: keep)."""
        return "keep"

    def condition_encoder(self) -> ImageEncoder | None:
        """The encoder of the clips' image conditions, or ``None`` for none (the default)."""
        return None

    def prepare(self, case: Case) -> TrainingData:
        """Read and encode ``case`` with the config's captions (seeded by ``config.seed``)."""
        cfg = self.config
        return prepare_case_data(
            self.backbone,
            case,
            identity_prompt=cfg.identity_prompt,
            motion_prompt=cfg.motion_prompt,
            placeholder=self.caption_placeholder(),
            image_encoder=self.condition_encoder(),
            seed=cfg.seed,
            clip_frames=cfg.clip_frames,
            clip_resize=cfg.clip_resize,
            condition_preprocess=getattr(cfg, "condition_preprocess", "clip"),
        )

    def release_encoders(self) -> None:  # noqa: B027 - optional hook
        """Free the helper models only :meth:`prepare` needed (e.g. a condition image encoder
        the method loaded itself); called between encoding and the loop. Default: nothing."""

    def train(self, case: Case) -> dict[str, Any]:
        """Encode the case, free the encoders, run :meth:`fit`; the statistics name the
        captions (and the frame of each clip that conditioned it, when there are conditions)."""
        if self._trained:
            raise ConfigError(f"{self.name}: train() may be called once per method instance")
        with self.memory_setup():
            data = self.prepare(case)
            self.release_encoders()
            stats = self.fit(data)
        stats.update({"identity_prompt": data.identity_prompt, "motion_prompt": data.motion_prompt})
        if data.motion_conditions is not None:
            stats["condition_frames"] = data.condition_frames
        return stats

    def planned_train_steps(self) -> int:
        """Every stage's steps: the config's step counts, each scaled by ``steps_scale``
        (a method whose config skips a stage says so by overriding this)."""
        cfg = self.config
        return sum(cfg.scaled(getattr(cfg, field)) for field in cfg.step_fields)

    def run_stages(self, stages: list[Callable[[], Stage]], **options: Any) -> dict[str, Any]:
        """:func:`.loop.run_stages` on this method's device, seed, clipping and progress bar
        (``options``: ``autocast_dtype``, ``step_callback``, ``stage_callback``); the
        statistics gain ``steps``, the total, and the method counts as trained."""
        cfg = self.config
        with self.memory_setup():
            stats = run_stages(
                stages,
                device=self.backbone.device,
                seed=cfg.seed,
                max_grad_norm=cfg.max_grad_norm,
                report=self.report_progress,
                **options,
            )
        stats["steps"] = sum(v for k, v in stats.items() if k.endswith("_steps"))
        self._trained = True
        return stats

    def dimension_stage(
        self,
        data: TrainingData,
        dimension: str,
        params: list[torch.nn.Parameter],
        settings: OptimizerSettings,
        *,
        setup: Callable[[], None] | None = None,
    ) -> Callable[[], Stage]:
        """The plain stage of ``dimension`` ("identity" or "motion"): its items and batch size,
        ``<dimension>_steps`` scaled, the backbone's loss on its caption, the config's warm-up.
        ``setup()`` runs when the stage starts (e.g. to switch the stage's adapter on)."""
        cfg = self.config
        steps = cfg.scaled(getattr(cfg, f"{dimension}_steps"))
        latents, embeds = data.items(dimension)

        def loss(idx: list[int], x: torch.Tensor, gen: torch.Generator) -> StepBatch:
            return draw_batch(self.backbone, x, embeds, gen)

        def build() -> Stage:
            if setup is not None:
                setup()
            warmup = min(cfg.scaled(cfg.lr_warmup_steps), steps)
            batch = cfg.batch_size(dimension)
            micro = self.memory_settings().micro_batch
            return Stage(dimension, steps, params, latents, batch, loss, settings, warmup, micro)

        return build

    def dimension_memory_stage(
        self,
        dimension: str,
        params: list[torch.nn.Parameter],
        context: Callable[[int], Any] | None = None,
    ) -> MemoryStage:
        """:meth:`dimension_stage`'s step for the memory model: ``dimension``'s batch of images
        (1-frame videos) or clips, training ``params``."""
        return MemoryStage(
            dimension,
            params,
            self.config.batch_size(dimension),
            1 if dimension == "identity" else None,
            context,
        )
