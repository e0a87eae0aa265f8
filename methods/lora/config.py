"""``LoRAConfig``: the options of the two-LoRA baseline (rank, alpha, targets, schedules, fusion).

How the two LoRAs are fused (``fusion``, ``fusion_weights``) is described in :mod:`.method`.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar, Literal

from .._common.config import ClipSampling, PlaceholderMode, TrainingConfig

__all__ = ["FUSION_WEIGHTS", "Fusion", "LoRAConfig"]

#: how the two LoRAs are fused at inference (see :mod:`.method`'s docstring)
Fusion = Literal["avg_factors", "delta_sum"]
#: (w_id, w_m) of each fusion when ``fusion_weights`` is unset: the authors' 0.5/0.5
#: (customvideo lora_joint.py: merge_lora_weights(..., scale1=0.5, scale2=0.5)); peft's 1/1
FUSION_WEIGHTS: dict[str, tuple[float, float]] = {
    "avg_factors": (0.5, 0.5),
    "delta_sum": (1.0, 1.0),
}


@dataclasses.dataclass
class LoRAConfig(TrainingConfig):
    """Options of :class:`~.method.LoRAMethod`.

    Sources: the DualReal paper's supplement (baseline schedules), the authors' fusion
    (wenc-k/customvideo ``lora_joint.py``) and, where both are silent, the official CogVideoX
    LoRA script (THUDM ``finetune/train_cogvideox_lora.py``, the same in diffusers'
    ``examples/cogvideo/``: rank, alpha, target modules, AdamW betas 0.9/0.95, weight decay
    1e-4, eps 1e-8, --max_grad_norm 1.0, --lr_scheduler constant, so no warm-up in effect;
    frame sampling). The batches are not stated in the supplement (DualReal's 1 and 3, so that
    the two methods see the same batches); the identity captions are the authors'
    (customvideo ``prompts.txt``: "dog *").
    """

    method_name: ClassVar[str] = "lora"
    step_fields: ClassVar[tuple[str, ...]] = ("identity_steps", "motion_steps")
    rate_fields: ClassVar[tuple[str, ...]] = ("learning_rate",)

    #: LoRA rank (train_cogvideox_lora.py --rank default 128)
    rank: int = 128
    #: LoRA alpha; the update is scaled by alpha / rank (train_cogvideox_lora.py --lora_alpha 128)
    lora_alpha: float = 128.0
    #: dropout on the LoRA input (peft default 0; the CogVideoX script sets none)
    lora_dropout: float = 0.0
    #: adapted linear layers of every block (the issue's and train_cogvideox_lora.py's list)
    target_modules: tuple[str, ...] = ("to_q", "to_k", "to_v", "to_out.0")
    #: peft's init (Kaiming A, zero B: an untrained adapter is the base model); tests switch it
    #: off so that an adapter is not the identity function
    init_lora_weights: bool = True
    #: optimizer steps on the identity images (DualReal supplement: 300)
    identity_steps: int = 300
    #: optimizer steps on the motion clips (DualReal supplement: 300)
    motion_steps: int = 300
    #: learning rate of both stages (DualReal supplement: 1e-3)
    learning_rate: float = 1e-3
    #: how the two LoRAs are fused at inference: "avg_factors" (the authors' lora_joint.py:
    #: A = w_id A_id + w_m A_m, B = w_id B_id + w_m B_m, one adapter at scale 1) or
    #: "delta_sum" (peft's weighted adapters: W + w_id s B_id A_id + w_m s B_m A_m)
    fusion: Fusion = "avg_factors"
    #: (w_id, w_m) of the fusion; unset = the fusion's own: 0.5, 0.5 for avg_factors
    #: (customvideo lora_joint.py: scale1=0.5, scale2=0.5), 1, 1 for delta_sum
    fusion_weights: tuple[float, float] | None = None
    #: what " *" becomes: "keep" (a DreamBooth-style identifier token) or "strip"
    placeholder: PlaceholderMode = "keep"
    #: clip frames: every floor(N / 49)-th frame, then the first 49 (THUDM
    #: finetune/train_cogvideox_lora.py, VideoDataset: range(start, end, (end - start) //
    #: max_num_frames)); "first": the first 49, as DualReal's authors changed it
    clip_frames: ClipSampling = "stride"

    @property
    def resolved_fusion_weights(self) -> tuple[float, float]:
        """``fusion_weights``, or the fusion's own when unset."""
        if self.fusion_weights is None:
            return FUSION_WEIGHTS[self.fusion]
        return tuple(float(w) for w in self.fusion_weights)

    def validate(self) -> None:
        super().validate()
        self._at_least(1, "rank")
        self._positive("lora_alpha")
        if not 0.0 <= self.lora_dropout < 1.0:
            self._fail(f"lora_dropout must be in [0, 1), got {self.lora_dropout}")
        if not self.target_modules:
            self._fail("target_modules is empty")
        if self.fusion_weights is not None and len(self.fusion_weights) != 2:
            self._fail(f"fusion_weights must be two numbers (w_id, w_m), got {self.fusion_weights}")
