"""The options every training method shares, validated once.

:class:`TrainingConfig` holds the fields of a method that trains on a case's identity images
and motion clips with AdamW (schedule, batches, optimizer, clipping, captions); a method's
config derives from it, declares only its own fields, and re-declares a shared field only to
give it its own default (with the source of that value in the comment above it), as peft's
tuner configs derive from ``PeftConfig``::

    @dataclasses.dataclass
    class LoRAConfig(TrainingConfig):
        method_name: ClassVar[str] = "lora"
        step_fields: ClassVar[tuple[str, ...]] = ("identity_steps", "motion_steps")
        rate_fields: ClassVar[tuple[str, ...]] = ("learning_rate",)

        rank: int = 128
        identity_steps: int = 300
        ...

:class:`ImageConditionConfig` adds the image condition of the motion adapters (DualReal,
DreamVideo): the encoder, its width, its scale and the drop-out of the condition.

``validate`` (run by ``__post_init__``) checks the shared fields; a subclass's ``validate``
calls ``super().validate()`` first, then checks its own.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import typing
from typing import Any, ClassVar, Literal

from dualreal_bench.config import parse_size
from dualreal_bench.errors import ConfigError
from dualreal_bench.method import MethodConfig

__all__ = [
    "ClipResize",
    "ClipSampling",
    "ImageConditionConfig",
    "PlaceholderMode",
    "TrainingConfig",
    "scaled_steps",
]

#: "keep": the benchmark's ``"<class> *"`` goes to the text encoder as written, so ``" *"`` is
#: the rare identifier token of DreamBooth's "a [V] dog" (the subject is bound to it during
#: training and the class noun keeps its prior); "strip": ``" *"`` is removed everywhere
#: ("a toy", "toy is swinging"), as the ``base`` method does.
PlaceholderMode = Literal["keep", "strip"]
#: which frames of a motion clip a training item takes: "first": the first ``num_frames``
#: (DualReal's authors: ``range(start_frame, max_num_frames)``); "stride": every
#: ``floor(N / num_frames)``-th over the whole clip, then the first ``num_frames`` (the
#: official CogVideoX LoRA script's VideoDataset)
ClipSampling = Literal["first", "stride"]
#: how clip frames reach the training size: "stretch" (decord's ``VideoReader(width=720,
#: height=480)`` in the authors' and the official scripts) or "crop" (cover, centre crop)
ClipResize = Literal["stretch", "crop"]


def scaled_steps(steps: int, scale: float) -> int:
    """``steps * scale`` rounded, at least 1 unless ``steps`` is 0."""
    if steps <= 0:
        return 0
    return max(1, round(steps * scale))


@dataclasses.dataclass
class TrainingConfig(MethodConfig):
    """Options shared by the methods that train (defaults: the CogVideoX fine-tuning scripts of
    diffusers and DualReal's batches; each method overrides what its source states otherwise).

    Class attributes a subclass sets (not options):
      * ``method_name``: what validation messages start with ("lora: rank must be >= 1");
      * ``step_fields``: the optimizer-step counts, each an integer >= 0 scaled by
        ``steps_scale``; unless ``allow_zero_steps``, at least one must be positive;
      * ``rate_fields``: the learning rates, each a finite number > 0.
    """

    method_name: ClassVar[str] = "method"
    step_fields: ClassVar[tuple[str, ...]] = ()
    rate_fields: ClassVar[tuple[str, ...]] = ()
    allow_zero_steps: ClassVar[bool] = False

    #: multiplies every schedule (steps and warm-up), to shorten every method proportionally
    steps_scale: float = 1.0
    #: linear warm-up steps (per stage, for methods that train in stages)
    lr_warmup_steps: int = 0
    #: schedule after warm-up (constant, the CogVideoX scripts' default)
    lr_scheduler: Literal["constant", "cosine"] = "constant"
    #: images per identity step and clips per motion step (DualReal's 1 and 3)
    identity_batch_size: int = 1
    motion_batch_size: int = 3
    #: items per forward/backward pass (gradient accumulation within a step); the loss is scaled
    #: so the gradient is the whole batch's, with the same noise and timesteps: the same method
    #: with fewer activations. None: the whole batch at once (or what memory_budget chooses)
    micro_batch: int | None = dataclasses.field(default=None, metadata={"variant": False})
    #: device memory to train and generate within ("24GiB", "24GB"; 1.5 GiB of it is left for
    #: the CUDA context and fragmentation): the memory model chooses micro_batch, offloaded text
    #: encoder + VAE and gradient checkpointing to fit, or refuses with its smallest estimate.
    #: The same method (batch, steps, draws); None: no budget
    memory_budget: str | None = dataclasses.field(default=None, metadata={"variant": False})
    #: AdamW (diffusers' CogVideoX scripts and DualReal's code: betas 0.9/0.95, weight decay
    #: 1e-4, eps 1e-8)
    adam_betas: tuple[float, float] = (0.9, 0.95)
    adam_weight_decay: float = 1e-4
    adam_epsilon: float = 1e-8
    #: "auto": bitsandbytes AdamW8bit on CUDA (an error naming the install when it is missing),
    #: else torch AdamW
    optimizer: Literal["auto", "adamw", "adamw8bit"] = "auto"
    #: gradient-norm clipping (the scripts' and DualReal's --max_grad_norm 1.0)
    max_grad_norm: float = 1.0
    #: caption of identity steps ({class_noun}): the authors' identity captions, "dog *", no
    #: article (wenc-k/customvideo data/custom_image_dataset/*/prompts.txt, written by
    #: data/convert_img2video.py: f"{processed.strip()} *")
    identity_prompt: str = "{class_noun} *"
    #: caption of motion steps when the motion has no prompts.txt ({action}); the authors'
    #: motion prompts.txt files read "a person is <action>"
    motion_prompt: str = "a person is {action}"
    #: clip frames: the first num_frames ("first", wenc-k/DualReal train/train_adapter.py:
    #: indices = list(range(start_frame, self.max_num_frames))) or "stride" (see ClipSampling)
    clip_frames: ClipSampling = "first"
    #: clip frames stretched to the training size ("stretch": train_adapter.py
    #: decord.VideoReader(uri=..., width=self.width, height=self.height)) or centre-cropped
    clip_resize: ClipResize = "stretch"

    def validate(self) -> None:
        self._check_choices()
        self._check_steps()
        for field in self.rate_fields:
            self._positive(field)
        self._positive("steps_scale")
        self._at_least(1, "identity_batch_size", "motion_batch_size", "micro_batch")
        self._at_least(0, "lr_warmup_steps")
        if self.memory_budget is not None:
            parse_size(self.memory_budget, f"{self.method_name}: memory_budget")
        if len(self.adam_betas) != 2 or not all(0.0 <= b < 1.0 for b in self.adam_betas):
            self._fail(f"adam_betas must be two numbers in [0, 1), got {self.adam_betas}")
        if self.adam_weight_decay < 0 or self.adam_epsilon <= 0:
            self._fail("adam_weight_decay must be >= 0 and adam_epsilon > 0")
        if not self.max_grad_norm > 0:
            self._fail(f"max_grad_norm must be > 0, got {self.max_grad_norm}")
        for field, fields in (("identity_prompt", "{class_noun}"), ("motion_prompt", "{action}")):
            template = getattr(self, field)
            try:
                template.format(class_noun="x", action="x")
            except (KeyError, IndexError, ValueError) as exc:
                self._fail(
                    f"{field}={template!r} is not a valid template (fields: {fields}): {exc}"
                )

    def scaled(self, steps: int) -> int:
        """``steps`` times ``steps_scale`` (see :func:`scaled_steps`)."""
        return scaled_steps(steps, self.steps_scale)

    def batch_size(self, dimension: str) -> int:
        """Items per step of ``"identity"`` or ``"motion"`` steps."""
        if dimension not in ("identity", "motion"):
            raise ValueError(f"unknown dimension {dimension!r}; expected identity or motion")
        return self.identity_batch_size if dimension == "identity" else self.motion_batch_size

    # ---- checks subclasses use --------------------------------------------------------------
    def _fail(self, message: str) -> typing.NoReturn:
        raise ConfigError(f"{self.method_name}: {message}")

    def _positive(self, *fields: str) -> None:
        """Each field a finite number > 0."""
        for field in fields:
            value = getattr(self, field)
            if not (isinstance(value, int | float) and value > 0 and math.isfinite(value)):
                self._fail(f"{field} must be > 0, got {value!r}")

    def _at_least(self, low: int, *fields: str) -> None:
        """Each field ``None`` (unset) or a number >= ``low``."""
        for field in fields:
            value = getattr(self, field)
            if value is not None and value < low:
                self._fail(f"{field} must be >= {low}, got {value}")

    def _probability(self, *fields: str) -> None:
        """Each field in [0, 1]."""
        for field in fields:
            value = getattr(self, field)
            if not 0.0 <= value <= 1.0:
                self._fail(f"{field} must be in [0, 1], got {value}")

    def _check_steps(self) -> None:
        for field in self.step_fields:
            value = getattr(self, field)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                self._fail(f"{field} must be an integer >= 0, got {value!r}")
        if (
            self.step_fields
            and not self.allow_zero_steps
            and all(getattr(self, f) == 0 for f in self.step_fields)
        ):
            self._fail(f"{', '.join(self.step_fields)} are all 0; nothing would be trained")

    def _check_choices(self) -> None:
        """Every ``Literal`` field holds one of its values (``--set`` checks them too; this
        covers configs built in Python)."""
        for field, choices in _literal_fields(type(self)).items():
            value = getattr(self, field)
            if value not in choices:
                self._fail(f"{field}={value!r}: must be one of {', '.join(map(str, choices))}")


@functools.cache
def _literal_fields(cls: type) -> dict[str, tuple[Any, ...]]:
    hints = typing.get_type_hints(cls)
    return {
        f.name: typing.get_args(hints[f.name])
        for f in dataclasses.fields(cls)
        if typing.get_origin(hints[f.name]) is Literal
    }


@dataclasses.dataclass
class ImageConditionConfig(TrainingConfig):
    """A :class:`TrainingConfig` whose motion adapters take an image embedding ``c`` as a
    condition (``x' = x + cond_scale * W_cond(c)``): DualReal's and DreamVideo's, both after
    DreamVideo's appearance guidance, both with the OpenCLIP ViT-H-14 image embedding."""

    #: width of c, the OpenCLIP ViT-H-14 image embedding (DualReal code:
    #: temporal_adapter_condition_dim = 1024; VGen temporal_adapter_condition_dim: 1024)
    cond_dim: int = 1024
    #: lam in x' = x + lam * W_cond(c) (DualReal code: adapter_condition_lam = 1.0; VGen
    #: ag_strength 1)
    cond_scale: float = 1.0
    #: probability of replacing a motion step's image embedding by zeros (drawn per step and clip)
    p_image_zero: float = 0.0
    #: image encoder for c: "auto" (tiny on the tiny profile, else ViT-H-14), "tiny" or "ViT-H-14"
    image_encoder: Literal["auto", "tiny", "ViT-H-14"] = "auto"
    #: local open_clip checkpoint (open_clip_pytorch_model.bin); empty = the Hugging Face cache
    #: entry of laion/CLIP-ViT-H-14-laion2B-s32B-b79K (never downloaded). Where the weights
    #: are, not what they are: not part of a variant key
    image_encoder_path: str = dataclasses.field(default="", metadata={"variant": False})

    def validate(self) -> None:
        super().validate()
        self._at_least(1, "cond_dim")
        self._probability("p_image_zero")
