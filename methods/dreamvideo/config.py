"""DreamVideo's options, with the schedules DualReal ran it with and VGen's values as defaults.

Sources: DualReal's supplement (the schedules it ran DreamVideo with: identity 3,000 + 500
steps, motion 600) and DreamVideo's released configs (ali-vilab/VGen
``configs/dreamvideo/{subjectLearning,motionLearning,infer}/*.yaml``) for the rest.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from .._common.config import ImageConditionConfig

__all__ = ["DreamVideoConfig"]


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
    #: learning rates (VGen: step1 lr 1e-4, step2 lr 1e-5, motionLearning lr 4e-5)
    textual_inversion_lr: float = 1e-4
    identity_lr: float = 1e-5
    motion_lr: float = 4e-5
    #: images per subject step (VGen batch_sizes {"1": 4}) and clips per motion step ({"32": 1})
    identity_batch_size: int = 4
    motion_batch_size: int = 1
    #: probability of zeroing a motion step's image embedding (VGen motionLearning p_image_zero 0.5)
    p_image_zero: float = 0.5
    #: probability of replacing a motion step's caption by the empty prompt (VGen p_zero 0.5)
    p_text_zero: float = 0.5

    # ---- prompts ------------------------------------------------------------------------------
    #: the word the token starts from; empty = the identity's class noun (VGen initializer_words)
    initializer_word: str = ""

    def validate(self) -> None:
        super().validate()
        self._at_least(1, "adapter_dim")
        self._probability("p_text_zero")
        if len(self.fusion_weights) != 2:
            self._fail(f"fusion_weights must be two numbers (w_id, w_m), got {self.fusion_weights}")
        if not self.textual_inversion and self.identity_steps == self.motion_steps == 0:
            self._fail("textual_inversion=false with no adapter steps trains nothing")
