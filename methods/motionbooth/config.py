"""The options of :class:`~.method.MotionBoothMethod`, with the source of every default.

Sources: the MotionBooth code (jianzongwu/MotionBooth, ``configs/lavie.yaml`` and
``scripts/train.py``; the config the authors trained LaVie with) and the DualReal paper's
supplement (7.1: AdamW, lr 5e-6, 300 steps, batch 10, the unique token "sks"), which agree.
"""

from __future__ import annotations

import dataclasses
import re
from typing import ClassVar, Literal

from .._common.config import TrainingConfig

__all__ = ["MotionBoothConfig"]

_TOKEN_RE = re.compile(r"^\S+$")


@dataclasses.dataclass
class MotionBoothConfig(TrainingConfig):
    """Options of :class:`~.method.MotionBoothMethod`.

    An optimizer step is MotionBooth's two micro-batches with gradient accumulation 2: one of
    the subject's images (the region and cross-attention losses) and one of unrelated videos
    (the preservation loss), each loss halved, their gradients summed, then one AdamW step.
    """

    method_name: ClassVar[str] = "motionbooth"
    step_fields: ClassVar[tuple[str, ...]] = ("max_train_steps",)
    rate_fields: ClassVar[tuple[str, ...]] = ("learning_rate",)

    #: optimizer steps (supplement and lavie.yaml max_train_steps: 300)
    max_train_steps: int = 300
    #: caption of the subject's images: MotionBooth's "a sks dog" (with the article; its
    #: scripts/train.py builds the instance prompt as "a {token} {class}"), written with the
    #: benchmark's placeholder, which becomes the unique token: "a dog *" -> "a dog sks"
    identity_prompt: str = "a {class_noun} *"
    #: learning rate, constant (supplement and lavie.yaml: 5e-6, no warm-up)
    learning_rate: float = 5e-6
    #: subject images per image micro-batch, a cap (supplement and lavie.yaml
    #: train_batch_size: 10; a subject with fewer images gives all of them every step)
    identity_batch_size: int = 10
    #: unrelated clips per video micro-batch (MotionBooth's loader: batch_size_video=1)
    motion_batch_size: int = 1
    #: AdamW (lavie.yaml: adam_beta1 0.9, adam_beta2 0.999, adam_weight_decay 0.01, eps 1e-8)
    adam_betas: tuple[float, float] = (0.9, 0.999)
    adam_weight_decay: float = 0.01
    adam_epsilon: float = 1e-8

    #: weight of the subject region loss: the diffusion loss on the subject images, counted
    #: inside the subject mask only (lavie.yaml with_mask_loss: True, weight 1); 0 drops it
    region_loss_weight: float = 1.0
    #: count the image loss inside the subject mask only (false: every position, MotionBooth's
    #: with_mask_loss: False)
    mask_region_loss: bool = True
    #: weight of the video preservation loss, the plain diffusion loss on unrelated captioned
    #: clips (lavie.yaml video_loss_weight: 1.0); 0 drops the video micro-batch
    video_loss_weight: float = 1.0
    #: weight of the subject-token cross-attention loss (lavie.yaml cross_attn_loss_weight: 0.01)
    cross_attn_loss_weight: float = 0.01
    #: transformer blocks whose attention maps enter the cross-attention loss (empty: every
    #: block; MotionBooth takes every cross-attention at one resolution, and every block of a
    #: DiT attends at the same resolution)
    cross_attn_blocks: tuple[int, ...] = ()

    #: the rare token that names the subject: prompts' "<class> *" become "<class> sks"
    #: (supplement: "sks"); "*" keeps the benchmark's own placeholder as the token
    unique_token: str = "sks"
    #: what is trained: "full" (every transformer parameter, as MotionBooth trains the whole
    #: UNet: lavie.yaml unet_trained_parameters: full) or "attention" (every block's joint
    #: attention only, MotionBooth's "cross" option transposed to a DiT: about a third of the
    #: parameters, for GPUs that cannot hold a full fine-tune's optimizer state)
    trained_parameters: Literal["full", "attention"] = "full"
    #: folder of unrelated clips with a captions.json ({"clip.mp4": "caption", ...}); empty:
    #: the clips of every other motion of the case's data root, captioned by their prompts.txt
    #: ("a person is <action>")
    preservation_videos: str = ""

    #: subject masks where an image has no masks/<stem>.png and no alpha channel: "sam"
    #: (transformers' SAM, the whole image as the box prompt), "full_frame" (every pixel: the
    #: region loss is then the plain loss), "auto" (sam on real profiles, full_frame on tiny)
    mask_fallback: Literal["auto", "sam", "full_frame"] = "auto"
    #: the SAM checkpoint for mask_fallback=sam (Hugging Face id)
    mask_model: str = "facebook/sam-vit-huge"
    #: a local directory holding that checkpoint; empty = the Hugging Face cache (never
    #: downloaded). Where the weights are, not what they are: not part of a variant key
    mask_model_path: str = dataclasses.field(default="", metadata={"variant": False})

    #: "bf16": fp32 master weights under autocast(bfloat16) (lavie.yaml mixed_precision: bf16,
    #: fp32 UNet); "no": the transformer's dtype; "auto": bf16 when the backbone is bf16/fp16
    mixed_precision: Literal["auto", "no", "bf16"] = "auto"
    #: recompute transformer blocks in backward; None = the backbone's setting
    gradient_checkpointing: bool | None = None

    def validate(self) -> None:
        super().validate()
        for field in ("region_loss_weight", "video_loss_weight", "cross_attn_loss_weight"):
            value = getattr(self, field)
            if not isinstance(value, int | float) or not value >= 0:
                self._fail(f"{field} must be a number >= 0, got {value!r}")
        if self.region_loss_weight == 0 and self.cross_attn_loss_weight == 0:
            self._fail(
                "region_loss_weight and cross_attn_loss_weight are both 0: nothing would learn "
                "the subject"
            )
        if not isinstance(self.unique_token, str) or not _TOKEN_RE.match(self.unique_token):
            self._fail(f"unique_token must be one word without spaces, got {self.unique_token!r}")
        blocks = tuple(self.cross_attn_blocks)
        if any(not isinstance(b, int) or isinstance(b, bool) or b < 0 for b in blocks):
            self._fail(f"cross_attn_blocks must be block indices >= 0, got {blocks}")
        if len(set(blocks)) != len(blocks):
            self._fail(f"cross_attn_blocks lists a block twice: {blocks}")
        if not self.mask_model:
            self._fail("mask_model is empty")
