"""DualReal's options, with the paper's and the authors' values as defaults.

Sources cited per field:
  * paper  -- Wang et al., "DualReal: Adaptive Joint Training for Lossless Identity-Motion
    Fusion in Video Customization", ICCV 2025 (arXiv:2505.02192);
  * code   -- the authors' release, github.com/wenc-k/DualReal: ``model/dit.py`` (Adapter,
    Controller, block wiring), ``train/train_adapter.py`` (training loop) and
    ``train/train_dog_guitar.sh`` (the command line of their runs).

Every field can be set from the command line, e.g.
``dualreal-bench run --method dualreal --set controller=false --set num_groups=1``.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar, Literal

from .._common.config import ImageConditionConfig

#: the paper's group count (7 groups of 6 blocks on the 42-block CogVideoX-5B)
PAPER_NUM_GROUPS = 7
#: transformer blocks of CogVideoX-5B, the backbone of the paper's runs
PAPER_NUM_BLOCKS = 42
#: GPU memory (or ``memory_budget``, if smaller) below which ``vae_tiling="auto"`` tiles the
#: decode of the generated videos. The authors decoded 49 frames at 480x720 untiled on an 80 GB
#: A100; on 24 GB cards the untiled CogVideoX-5B decode is reported to run out of memory (not
#: measured here: no GPU)
UNTILED_DECODE_MIN_GIB = 40


@dataclasses.dataclass
class DualRealConfig(ImageConditionConfig):
    """Options of :class:`~dualreal_bench.methods.dualreal.DualRealMethod`.

    Ablations of the paper (Tables 2-3) as configs:
      * w/o dual-aware adaptation: ``dual_aware=false``. The authors' code has no such mode,
        and the paper says only "trained separately, blended at inference (as DreamVideo)".
        Ours: the identity adapters alone on identity batches, then the motion adapters alone
        on motion batches, each phase with its own optimizer and schedule; the steps split as
        the joint run's expect (``motion_ratio`` 0.5 of ``max_train_steps``: 500 + 500), so
        the ablation makes as many updates of each kind as the full method; at inference both
        run at ``fixed_weights`` (0.1, 0.1), the weights the authors' code gives the adapters
        without the controller (spatial_/temporal_adapter_alpha = 0.1), so that the ablation
        changes the training alone. Both are options (``motion_ratio``, ``fixed_weights``);
      * w/o controller: ``controller=false`` (fixed ``w_id = w_m = 0.1``);
      * w/o weight groups: ``num_groups=1``; group cardinality: ``num_groups`` in {1, 2, 7, 42}.

    The shared training options (:class:`~dualreal_bench.methods._common.config.TrainingConfig`)
    keep their defaults, which are the authors' values: identity/motion batches 1 and 3
    (code: --train_batch_size_other 1, --train_batch_size 3), AdamW betas 0.9/0.95 (code:
    --adam_beta1/--adam_beta2), weight decay 1e-4, epsilon 1e-8, bitsandbytes' 8-bit AdamW
    on CUDA (code: --use_8bit_adam; a clear error when bitsandbytes is missing), gradient
    clipping at 1.0 (code: --max_grad_norm), the condition width 1,024 and lam 1.0 (code:
    temporal_adapter_condition_dim, adapter_condition_lam), the clips' first 49 frames
    stretched to 720x480 (code: decord.VideoReader(width, height)), the identity captions
    "dog *" (wenc-k/customvideo prompts.txt); the motion captions are the motion's
    prompts.txt ("a person is <action>").
    """

    method_name: ClassVar[str] = "dualreal"
    step_fields: ClassVar[tuple[str, ...]] = ("max_train_steps",)
    rate_fields: ClassVar[tuple[str, ...]] = ("learning_rate",)
    #: max_train_steps=0 is allowed: the untrained adapters (with the skip, not the base model)
    allow_zero_steps: ClassVar[bool] = True

    # ---- architecture ---------------------------------------------------------------------
    #: bottleneck width of every adapter (paper Sec. 3.2: dim -> 64 -> dim;
    #: code: spatial_/temporal_adapter_hidden_dim = 64)
    adapter_dim: int = 64
    #: Eq. 1's skip "+ x". With it an untrained method adds (w_id + w_m) * x to every branch
    #: (code: ``hidden_states += hidden_states_in``); false makes an untrained method the base model
    adapter_skip: bool = True
    #: motion adapters add cond_scale * W_cond(c) to their input (code: --use_motion_condition true);
    #: the identity adapters never take a condition (code: --use_id_condition left false)
    motion_condition: bool = True
    #: StageBlender controller; unset = on when dual_aware, off otherwise (code: --use_controller true)
    controller: bool | None = None
    #: n, the number of weight groups of consecutive blocks (paper: n = 7 for 42 blocks;
    #: code: --hypernet_outputdim 7). An explicit value must divide the backbone's block count
    #: (checked on attachment); unset = 7 where it divides, else the largest divisor below 7
    #: (the 2-block tiny profile gets 2)
    num_groups: int | None = None
    #: hidden width of the controller's output MLP (code: Controller(hidden_dim=128))
    controller_hidden: int = 128
    #: w_id = sigmoid(.) * scale and w_m = scale - w_id (code: Controller.scale = 0.2)
    controller_scale: float = 0.2
    #: (w_id, w_m) whenever the controller is off (code: spatial_/temporal_adapter_alpha = 0.1)
    fixed_weights: tuple[float, float] = (0.1, 0.1)
    #: joint dual-aware training; false = the "w/o dual-aware adaptation" ablation
    dual_aware: bool = True

    # ---- training -------------------------------------------------------------------------
    #: optimizer steps (paper: 1,000; code: TRAIN_STEP=1000)
    max_train_steps: int = 1000
    #: probability that a step is a motion step (code: --motion_ratio 0.5)
    motion_ratio: float = 0.5
    #: after backward, drop the non-active dimension's adapter gradients (code: close_grad_mask=False)
    grad_mask: bool = True
    #: peak learning rate (code: --learning_rate 1e-3)
    learning_rate: float = 1e-3
    #: linear warm-up steps (code: --lr_warmup_steps 200)
    lr_warmup_steps: int = 200
    #: schedule after warm-up; the code's default "cosine_with_restarts" with lr_num_cycles=1
    #: is the same curve as "cosine"
    lr_scheduler: Literal["constant", "cosine"] = "cosine"
    #: probability of replacing a motion step's image embedding by zeros (code: --p_image_zero, 0)
    p_image_zero: float = 0.0
    #: the motion condition image as the authors' code preprocesses it ("authors": training
    #: frames stretched to 224x224 and scaled to [-1, 1] without CLIP mean/std,
    #: train/train_adapter.py: decord.VideoReader(uri, width=224, height=224), x / 255.0 * 2.0 - 1.0;
    #: the generation reference stretched and CLIP-normalised, inference/inference.py:
    #: data.Resize([224, 224]), data.Normalize(mean=[0.48145466, ...])) or "clip": open_clip's
    #: preprocessing (shorter side, centre crop, CLIP mean/std) for both
    condition_preprocess: Literal["authors", "clip"] = "authors"
    #: dtype of the trained adapters and controller: "auto" = the backbone's on CUDA (bf16 on
    #: the real profiles, as the authors: train/train_adapter.py transformer.to(dtype=weight_dtype),
    #: fp32 master weights only for fp16), float32 elsewhere; "float32": fp32 master weights
    trainable_dtype: Literal["auto", "bfloat16", "float32"] = "auto"
    #: VAE tiling when decoding the generated videos: "off" as the authors decode
    #: (inference/inference.py enables neither tiling nor slicing); "auto" = off unless the
    #: CUDA device has less than UNTILED_DECODE_MIN_GIB of memory; "on" tiles
    vae_tiling: Literal["auto", "on", "off"] = "auto"

    def validate(self) -> None:
        super().validate()
        self._at_least(1, "adapter_dim", "num_groups", "controller_hidden")
        self._probability("motion_ratio")
        self._positive("controller_scale")
        if len(self.fixed_weights) != 2 or any(w < 0 for w in self.fixed_weights):
            self._fail(f"fixed_weights must be two numbers >= 0, got {self.fixed_weights}")
        if self.controller and not self.dual_aware:
            self._fail(
                "controller=true contradicts dual_aware=false (the separately trained ablation "
                "blends the adapters with fixed_weights; set controller=false or leave it unset)"
            )
        if self.max_train_steps > 0 and self.motion_ratio in (0.0, 1.0):
            which = "identity" if self.motion_ratio == 1.0 else "motion"
            self._fail(
                f"motion_ratio={self.motion_ratio} never trains the {which} adapters; "
                "use a value strictly between 0 and 1"
            )

    # ---- derived --------------------------------------------------------------------------
    @property
    def use_controller(self) -> bool:
        """Whether the StageBlender controller runs (unset ``controller`` follows ``dual_aware``)."""
        return self.dual_aware if self.controller is None else bool(self.controller)

    @property
    def total_steps(self) -> int:
        """``max_train_steps`` scaled by ``steps_scale`` (at least 1 unless 0 was asked for)."""
        if self.max_train_steps == 0:
            return 0
        return max(1, round(self.max_train_steps * self.steps_scale))

    @property
    def warmup_steps(self) -> int:
        return round(self.lr_warmup_steps * self.steps_scale)
