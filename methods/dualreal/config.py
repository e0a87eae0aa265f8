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
import math
from typing import Literal

from dualreal_bench.errors import ConfigError
from dualreal_bench.method import MethodConfig

#: the image encoder the authors condition the motion adapters with (code: train/src/clip.py,
#: README: ``open_clip_pytorch_model.bin`` from this Hugging Face repository)
OPENCLIP_VIT_H14_REPO = "laion/CLIP-ViT-H-14-laion2B-s32B-b79K"


@dataclasses.dataclass
class DualRealConfig(MethodConfig):
    """Options of :class:`~dualreal_bench.methods.dualreal.DualRealMethod`.

    Ablations of the paper (Tables 2-3) as configs:
      * w/o dual-aware adaptation: ``dual_aware=false`` (the two adapters trained separately,
        identity then motion, blended at inference with ``fixed_weights``, as DreamVideo);
      * w/o controller: ``controller=false`` (fixed ``w_id = w_m = 0.1``);
      * w/o weight groups: ``num_groups=1``; group cardinality: ``num_groups`` in {1, 2, 7, 42}.
    """

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
    #: width of c, the OpenCLIP ViT-H-14 image embedding (code: temporal_adapter_condition_dim = 1024)
    cond_dim: int = 1024
    #: lam in x' = x + lam * W_cond(c) (code: adapter_condition_lam = 1.0, never overridden)
    cond_scale: float = 1.0
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
    #: multiplies max_train_steps and lr_warmup_steps (to shorten every method proportionally)
    steps_scale: float = 1.0
    #: probability that a step is a motion step (code: --motion_ratio 0.5)
    motion_ratio: float = 0.5
    #: clips per motion step (code: --train_batch_size 3)
    motion_batch_size: int = 3
    #: images per identity step (code: --train_batch_size_other 1)
    identity_batch_size: int = 1
    #: probability of replacing a motion step's image embedding by zeros (code: --p_image_zero, 0)
    p_image_zero: float = 0.0
    #: after backward, drop the non-active dimension's adapter gradients (code: close_grad_mask=False)
    grad_mask: bool = True
    #: peak learning rate (code: --learning_rate 1e-3)
    learning_rate: float = 1e-3
    #: linear warm-up steps (code: --lr_warmup_steps 200)
    lr_warmup_steps: int = 200
    #: schedule after warm-up; the code's default "cosine_with_restarts" with lr_num_cycles=1
    #: is the same curve as "cosine"
    lr_scheduler: Literal["cosine", "constant"] = "cosine"
    #: AdamW betas (code: --adam_beta1 0.9 --adam_beta2 0.95)
    adam_betas: tuple[float, float] = (0.9, 0.95)
    #: AdamW weight decay (code: --adam_weight_decay 1e-4)
    adam_weight_decay: float = 1e-4
    #: AdamW epsilon (code: --adam_epsilon 1e-8)
    adam_epsilon: float = 1e-8
    #: "auto": bitsandbytes AdamW8bit when importable and on CUDA (code: --use_8bit_adam), else torch AdamW
    optimizer: Literal["auto", "adamw", "adamw8bit"] = "auto"
    #: gradient-norm clipping (code: --max_grad_norm 1.0)
    max_grad_norm: float = 1.0

    # ---- prompts and the image condition ---------------------------------------------------
    #: caption of identity steps. The authors read per-dataset prompts.txt files; their
    #: identity captions are not published, so we name the subject as the benchmark's prompts do
    identity_prompt: str = "a {class_noun} *"
    #: caption of motion steps; the authors' motion prompts.txt files read "a person is <action>"
    motion_prompt: str = "a person is {action}"
    #: image encoder for c: "auto" (tiny on the tiny profile, else ViT-H-14), "tiny" or "ViT-H-14"
    image_encoder: Literal["auto", "tiny", "ViT-H-14"] = "auto"
    #: local open_clip checkpoint (open_clip_pytorch_model.bin); empty = the Hugging Face cache
    #: entry of laion/CLIP-ViT-H-14-laion2B-s32B-b79K (never downloaded)
    image_encoder_path: str = ""

    def validate(self) -> None:
        positive_ints = (
            "adapter_dim",
            "cond_dim",
            "num_groups",
            "controller_hidden",
            "motion_batch_size",
            "identity_batch_size",
        )
        for name in positive_ints:
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ConfigError(f"dualreal: {name} must be >= 1, got {getattr(self, name)}")
        if self.max_train_steps < 0:
            raise ConfigError(f"dualreal: max_train_steps must be >= 0, got {self.max_train_steps}")
        if self.lr_warmup_steps < 0:
            raise ConfigError(f"dualreal: lr_warmup_steps must be >= 0, got {self.lr_warmup_steps}")
        if not (self.steps_scale > 0 and math.isfinite(self.steps_scale)):
            raise ConfigError(
                f"dualreal: steps_scale must be a positive number, got {self.steps_scale}"
            )
        for name in ("motion_ratio", "p_image_zero"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"dualreal: {name} must be in [0, 1], got {value}")
        if not (self.learning_rate > 0 and math.isfinite(self.learning_rate)):
            raise ConfigError(f"dualreal: learning_rate must be positive, got {self.learning_rate}")
        if len(self.adam_betas) != 2 or not all(0.0 <= b < 1.0 for b in self.adam_betas):
            raise ConfigError(
                f"dualreal: adam_betas must be two numbers in [0, 1), got {self.adam_betas}"
            )
        if self.adam_weight_decay < 0 or self.adam_epsilon <= 0:
            raise ConfigError("dualreal: adam_weight_decay must be >= 0 and adam_epsilon > 0")
        if not self.max_grad_norm > 0:
            raise ConfigError(f"dualreal: max_grad_norm must be > 0, got {self.max_grad_norm}")
        if not 0.0 < self.controller_scale:
            raise ConfigError(
                f"dualreal: controller_scale must be > 0, got {self.controller_scale}"
            )
        if len(self.fixed_weights) != 2 or any(w < 0 for w in self.fixed_weights):
            raise ConfigError(
                f"dualreal: fixed_weights must be two numbers >= 0, got {self.fixed_weights}"
            )
        if self.controller and not self.dual_aware:
            raise ConfigError(
                "dualreal: controller=true contradicts dual_aware=false (the separately trained "
                "ablation blends the adapters with fixed_weights; set controller=false or leave it unset)"
            )
        if self.max_train_steps > 0 and self.motion_ratio in (0.0, 1.0):
            which = "identity" if self.motion_ratio == 1.0 else "motion"
            raise ConfigError(
                f"dualreal: motion_ratio={self.motion_ratio} never trains the {which} adapters; "
                "use a value strictly between 0 and 1"
            )
        for name, placeholder in (
            ("identity_prompt", "{class_noun}"),
            ("motion_prompt", "{action}"),
        ):
            template = getattr(self, name)
            try:
                template.format(class_noun="x", action="x")
            except (KeyError, IndexError, ValueError) as exc:
                raise ConfigError(
                    f"dualreal: {name}={template!r} is not a valid template (fields: {placeholder}): {exc}"
                ) from None

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
