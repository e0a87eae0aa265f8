"""``sequential``: DreamBooth-style full fine-tuning of the transformer, identity then motion.

The baseline of DualReal's Table 1 (paper supplement: lr 1e-4, 200 identity + 130 motion
steps). Every parameter of the shared transformer is trained, first on the subject's images
(1-frame videos captioned "a <class> *"), then -- starting from the weights the identity
stage left, with a fresh optimizer -- on the motion clips (captioned by the motion's
``prompts.txt``, "a person is <action>"). Generation uses the resulting weights alone.

Prompts: no token is learned. ``placeholder="keep"`` (default) feeds ``"<class> *"`` as
written, so ``" *"`` is DreamBooth's rare identifier ("a [V] dog"); ``"strip"`` removes it
in training and at generation. DreamBooth's prior-preservation loss (class images generated
by the base model) is not used: the supplement's schedule has no such term and it would
need the backbone to render class images first.

Memory (the real profiles, one GPU): ``mixed_precision="bf16"`` trains fp32 master weights
under ``torch.autocast(bfloat16)`` (accelerate's ``--mixed_precision bf16``; "auto" picks it
when the backbone is bf16/fp16), ``gradient_checkpointing`` recomputes the blocks in
backward (unset: the backbone's setting), ``optimizer="auto"`` uses bitsandbytes' AdamW8bit
on CUDA when installed (2 bytes of state per parameter instead of 8). For CogVideoX-5B
(5.57 B parameters) that is 22 GB of fp32 weights + 22 GB of gradients + 11 GB of 8-bit
states, plus activations.

The state a run saves is the whole fine-tuned transformer (every tensor of its
``state_dict``, ``transformer.<name>``, in the transformer's dtype: ~11 GB in bf16 for 5B),
because every parameter changes. The original weights are kept as a CPU copy (another
~11 GB for 5B) from the first change on, and :meth:`SequentialMethod.teardown` copies them
back, so the next case (or method) of a run starts from the published model bit for bit.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
import torch

from dualreal_bench.errors import ConfigError
from dualreal_bench.method import MemoryStage

from ._common.config import ClipSampling, PlaceholderMode, TrainingConfig
from ._common.data import TrainingData, apply_placeholder
from ._common.finetune import FineTunedTransformer, resolve_mixed_precision, training_setup
from ._common.staged import StagedMethod

if TYPE_CHECKING:
    from dualreal_bench.backbone import Backbone

logger = logging.getLogger(__name__)

__all__ = ["SequentialConfig", "SequentialMethod"]

#: the two stages, in order
DIMENSIONS = ("identity", "motion")


@dataclasses.dataclass
class SequentialConfig(TrainingConfig):
    """Options of :class:`SequentialMethod` (sources: the DualReal paper's supplement for the
    schedule; diffusers' CogVideoX fine-tuning scripts for the optimizer settings: AdamW betas
    0.9/0.95, weight decay 1e-4, eps 1e-8, --max_grad_norm 1.0, a constant schedule, frame
    sampling and the 720x480 stretch). Warm-up and batches are not stated for the baselines
    (none; DualReal's 1 and 3); the identity captions are the authors' ("dog *")."""

    method_name: ClassVar[str] = "sequential"
    step_fields: ClassVar[tuple[str, ...]] = ("identity_steps", "motion_steps")
    rate_fields: ClassVar[tuple[str, ...]] = ("learning_rate",)

    #: full fine-tuning steps on the identity images (DualReal supplement: 200)
    identity_steps: int = 200
    #: then on the motion clips, from the identity stage's weights (DualReal supplement: 130)
    motion_steps: int = 130
    #: learning rate of both stages (DualReal supplement: 1e-4)
    learning_rate: float = 1e-4
    #: "bf16": fp32 master weights, forward/backward under autocast(bfloat16); "no": train in
    #: the transformer's dtype; "auto": bf16 when the backbone runs in bf16/fp16, else no
    mixed_precision: Literal["auto", "no", "bf16"] = "auto"
    #: recompute transformer blocks in backward; None = the backbone's setting
    gradient_checkpointing: bool | None = None
    #: what " *" becomes: "keep" (DreamBooth's identifier token) or "strip"
    placeholder: PlaceholderMode = "keep"
    #: clip frames as the official CogVideoX fine-tuning scripts sample them (the authors'
    #: script for this row is not published): every floor(N / 49)-th frame, the first 49
    #: (THUDM finetune/train_cogvideox_lora.py, VideoDataset)
    clip_frames: ClipSampling = "stride"


class SequentialMethod(FineTunedTransformer, StagedMethod):
    """Full fine-tuning of the transformer: the identity stage, then the motion stage.

    Args:
        backbone: the shared backbone; its transformer is fine-tuned in place and restored
            by :meth:`teardown`.
        config: a :class:`SequentialConfig`.
    """

    name = "sequential"
    config_class = SequentialConfig

    def __init__(self, backbone: Backbone, config: SequentialConfig | None = None) -> None:
        super().__init__(backbone, config)
        self.config: SequentialConfig
        # a CPU copy of the original weights, taken before the first change
        self._original: dict[str, torch.Tensor] | None = None
        self._trained = False

    # ---- the shared transformer -----------------------------------------------------------
    def parameter_groups(self) -> dict[str, list[torch.nn.Parameter]]:
        """Learned parameters: every parameter of the transformer."""
        return {"transformer": list(self.backbone.transformer.parameters())}

    def resolved_mixed_precision(self) -> str:
        """The mixed precision in use: "bf16" or "no" ("auto" follows the backbone's dtype)."""
        return resolve_mixed_precision(self.config.mixed_precision, self.backbone)

    def memory_stages(self) -> list[MemoryStage]:
        """The identity stage (images) and the motion stage (clips), each training every
        parameter of the transformer."""
        params = list(self.backbone.transformer.parameters())
        fp32 = torch.float32 if self.resolved_mixed_precision() == "bf16" else None
        return [
            dataclasses.replace(self.dimension_memory_stage(dim, params), param_dtype=fp32)
            for dim in DIMENSIONS
        ]

    # ---- training -------------------------------------------------------------------------
    def caption_placeholder(self) -> str:
        return self.config.placeholder

    def fit(
        self,
        data: TrainingData,
        *,
        step_callback: Callable[[str, int], None] | None = None,
        stage_callback: Callable[[str, str], None] | None = None,
    ) -> dict[str, Any]:
        """Both stages on encoded data. ``stage_callback(stage, "start" | "end")`` runs around
        each stage (tests compare the weights there)."""
        cfg = self.config
        transformer = self.backbone.transformer
        self.keep_original()
        mixed = self.resolved_mixed_precision()
        checkpointing = self.memory_settings().gradient_checkpointing
        params = list(transformer.parameters())
        settings = self.optimizer_settings(cfg.learning_rate)

        stages = [self.dimension_stage(data, dim, params, settings) for dim in DIMENSIONS]
        stats: dict[str, Any] = {
            "trainable_parameters": {"transformer": sum(p.numel() for p in params)},
            "mixed_precision": mixed,
            "gradient_checkpointing": checkpointing,
        }
        with training_setup(transformer, fp32=mixed == "bf16", checkpointing=checkpointing):
            stats |= self.run_stages(
                stages,
                autocast_dtype=torch.bfloat16 if mixed == "bf16" else None,
                step_callback=step_callback,
                stage_callback=stage_callback,
            )
        return stats

    # ---- generation -----------------------------------------------------------------------
    def generate(self, prompts: Sequence[str], seed: int) -> list[np.ndarray]:
        """One video per prompt from the fine-tuned transformer."""
        if not self._trained:
            raise ConfigError(
                "sequential: nothing learned yet; call train(case) or load(dir) before generate()"
            )
        texts = [apply_placeholder(p, self.config.placeholder) for p in prompts]
        with torch.no_grad():
            return self.backbone.sample(texts, seed)
