"""DreamVideo's options, with the schedule DualReal ran it with and VGen's values as defaults.

Sources: DualReal's supplement (the schedule it ran DreamVideo with: identity 3,000 steps at
batch 4 and lr 1e-4, then 500 steps at batch 4 and lr 1e-5; motion 600 steps at batch 2 and
lr 1e-5) and DreamVideo's released configs (ali-vilab/VGen
``configs/dreamvideo/{subjectLearning,motionLearning,infer}/*.yaml``) for the rest; the
supplement's motion values are VGen's ``motionLearning/playingGuitar_motionLearning.yaml``.

The paper's DreamVideo row ran VGen's DreamVideo on ModelScopeT2V V1.5 (a UNet, 256x256, 32
frames: VGen's ``resume_checkpoint: models/model_scope_v1-5_0632000.pth``); ours runs on the
benchmark's shared CogVideoX DiT, so that row is comparable in protocol, not in backbone.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from .._common.config import ClipResize, ImageConditionConfig

__all__ = ["DreamVideoConfig", "StagePlan"]


@dataclasses.dataclass(frozen=True)
class StagePlan:
    """One training stage as planned: optimizer steps (scaled), items per step, learning rate."""

    name: str
    steps: int
    batch_size: int
    learning_rate: float


@dataclasses.dataclass
class DreamVideoConfig(ImageConditionConfig):
    """Options of :class:`~dualreal_bench.methods.dreamvideo.DreamVideoMethod`.

    The shared training options keep their defaults where VGen states none of its own: AdamW
    betas 0.9/0.95, weight decay 1e-4, eps 1e-8 and gradient clipping at 1.0, as the other
    baselines; no warm-up and a constant rate (VGen: decay_mode 'none'); the image condition
    is the OpenCLIP ViT-H-14 embedding (VGen temporal_adapter_condition_dim: 1024), at
    strength 1 (VGen ag_strength). In the identity caption (``identity_prompt``, "a {class_noun}
    *") the ``*`` is the learned token.
    """

    method_name: ClassVar[str] = "dreamvideo"
    step_fields: ClassVar[tuple[str, ...]] = (
        "textual_inversion_steps",
        "identity_steps",
        "motion_steps",
    )
    rate_fields: ClassVar[tuple[str, ...]] = ("textual_inversion_lr", "identity_lr", "motion_lr")

    # ---- adapters ---------------------------------------------------------------------------
    #: bottleneck width of both adapters (64, as DualReal's adapters built after DreamVideo's)
    adapter_dim: int = 64
    #: a skip of the adapter's own; false: parallel adapters (the "+ h" is the block residual)
    adapter_skip: bool = False
    #: (w_id, w_m): weights of the two adapters at inference (DreamVideo adds both: 1, 1)
    fusion_weights: tuple[float, float] = (1.0, 1.0)

    # ---- schedules --------------------------------------------------------------------------
    #: learn an embedding for "*" before the identity adapter (VGen use_textInversion: True)
    textual_inversion: bool = True
    #: textual-inversion steps (DualReal supplement: 3,000; VGen step1 num_steps 3000); with 0
    #: the token keeps its initialisation (the class word's embedding)
    textual_inversion_steps: int = 3000
    #: identity-adapter steps (DualReal supplement: 500; VGen identity_adapter_index 500)
    identity_steps: int = 500
    #: motion-adapter steps (DualReal supplement: 600; VGen motion_adapter_index 600)
    motion_steps: int = 600
    #: learning rates (DualReal supplement: 1e-4, 1e-5, 1e-5; VGen subjectLearning_step1.yaml
    #: lr: 0.0001, subjectLearning_step2.yaml lr: 0.00001, playingGuitar_motionLearning.yaml
    #: lr: 0.00001)
    textual_inversion_lr: float = 1e-4
    identity_lr: float = 1e-5
    motion_lr: float = 1e-5
    #: images per subject step (supplement: 4; VGen batch_sizes: { "1": 4 }) and clips per
    #: motion step (supplement: 2; playingGuitar_motionLearning.yaml batch_sizes: { "32": 2 })
    identity_batch_size: int = 4
    motion_batch_size: int = 2
    #: probability of zeroing a motion step's image embedding (playingGuitar_motionLearning.yaml
    #: p_image_zero: 0, the config the supplement's motion values are; carTurn's is 0.5)
    p_image_zero: float = 0.0
    #: probability of replacing a motion step's caption by the empty prompt (VGen p_zero 0.5)
    p_text_zero: float = 0.5

    # ---- prompts ------------------------------------------------------------------------------
    #: the word the token starts from; empty = the identity's class noun (VGen initializer_words)
    initializer_word: str = ""
    #: clip frames resized to cover the training size and centre-cropped (VGen's CenterCropWide)
    clip_resize: ClipResize = "crop"

    def schedule(self, *, textual_inversion: bool | None = None) -> list[StagePlan]:
        """The three stages as :meth:`DreamVideoMethod.fit` runs them, steps scaled by
        ``steps_scale`` (textual inversion: 0 steps when there is no token to learn)."""
        learn_token = self.textual_inversion if textual_inversion is None else textual_inversion
        return [
            StagePlan(
                "textual_inversion",
                self.scaled(self.textual_inversion_steps) if learn_token else 0,
                self.identity_batch_size,
                self.textual_inversion_lr,
            ),
            StagePlan(
                "identity",
                self.scaled(self.identity_steps),
                self.identity_batch_size,
                self.identity_lr,
            ),
            StagePlan(
                "motion", self.scaled(self.motion_steps), self.motion_batch_size, self.motion_lr
            ),
        ]

    def validate(self) -> None:
        super().validate()
        self._at_least(1, "adapter_dim")
        self._probability("p_text_zero")
        if len(self.fusion_weights) != 2:
            self._fail(f"fusion_weights must be two numbers (w_id, w_m), got {self.fusion_weights}")
        if not self.textual_inversion and self.identity_steps == self.motion_steps == 0:
            self._fail("textual_inversion=false with no adapter steps trains nothing")
