"""``motionbooth``: MotionBooth's subject learning (Wu et al., NeurIPS 2024) on the shared DiT.

What MotionBooth trains (jianzongwu/MotionBooth ``scripts/train.py`` with ``configs/lavie.yaml``,
the DualReal supplement's 7.1 for the schedule) and how it is carried over to CogVideoX:

* the whole denoiser is fine-tuned (``unet_trained_parameters: full``; here every parameter of
  the transformer, fp32 master weights under bf16 autocast, as MotionBooth's fp32 UNet under
  accelerate's bf16); ``trained_parameters="attention"`` trains only the joint attentions;
* every optimizer step is two micro-batches with gradient accumulation 2: the subject's images
  (up to 10; all of them for the usual 3-12) as 1-frame videos captioned ``"a <class> sks"``
  with (a) the subject region loss and (b) 0.01 x the subject-token cross-attention loss, then
  one unrelated captioned clip with (c) the plain diffusion loss (video preservation), each
  halved; AdamW lr 5e-6, betas (0.9, 0.999), weight decay 0.01, clip 1.0, 300 steps, constant;
* the losses are defined in :mod:`.losses` (the region loss normalised per masked element, so
  a full mask gives exactly the plain loss, where MotionBooth's is ``C`` times that; the
  cross-attention loss on the joint attention's video-query x subject-key slice) and computed
  on a step's two micro-batches in :mod:`.training`; the masks are in :mod:`.masks`, the
  unrelated clips in :mod:`.data`, the preparation of a case in :mod:`.prepare`.

Prompts: the benchmark names the subject ``"<class> *"``; MotionBooth's unique token is
``"sks"`` (``"a sks dog"``). Every ``" *"`` becomes ``" <unique_token>"`` in the training
caption and at generation (``"dog * is surfing"`` -> ``"dog sks is surfing"``): the rare token
stays where the benchmark puts it, beside the class noun, and the cross-attention loss's
subject phrase is the class noun and the token together (MotionBooth's phrase is ``"sks dog"``,
both tokens). ``unique_token="*"`` keeps the benchmark's placeholder itself as the token.

Generation: the prompt carries the action, as in MotionBooth; its training-free controls at
inference (cross-attention box control of the subject's position, latent shift for the camera)
are not part of this method. The fine-tuned transformer generates alone.

The state a run saves is the fine-tuned transformer's tensors (``transformer.<name>``);
:meth:`MotionBoothMethod.teardown` restores the original weights bit for bit (as sequential
fine-tuning does, :mod:`.._common.finetune`).
"""

from __future__ import annotations

import contextlib
import logging
import random
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from dualreal_bench.errors import ConfigError
from dualreal_bench.method import MemoryStage, Method

from .._common.data import EpochLoader
from .._common.finetune import FineTunedTransformer, resolve_mixed_precision, training_setup
from .._common.memory import TrainingMemory
from .._common.optim import make_lr_scheduler, make_optimizer
from .._common.step import StepBatch, apply_update, backward
from .attention import SubjectAttentionStore
from .config import MotionBoothConfig
from .data import MotionBoothData
from .masks import sam_parameter_count
from .prepare import prepare_case, with_unique_token
from .training import image_batch, video_batch

if TYPE_CHECKING:
    from dualreal_bench.backbone import Backbone
    from dualreal_bench.spec import Case

logger = logging.getLogger(__name__)

__all__ = ["MotionBoothMethod", "with_unique_token"]


class MotionBoothMethod(FineTunedTransformer, TrainingMemory, Method):
    """MotionBooth's subject learning: the denoiser fine-tuned on the subject's images with the
    region and subject-token losses, preserved by unrelated videos; the prompt gives the motion.

    Args:
        backbone: the shared backbone; its transformer is fine-tuned in place and restored by
            :meth:`teardown`.
        config: a :class:`~.config.MotionBoothConfig`.
    """

    name = "motionbooth"
    config_class = MotionBoothConfig

    def __init__(self, backbone: Backbone, config: MotionBoothConfig | None = None) -> None:
        super().__init__(backbone, config)
        self.config: MotionBoothConfig
        self._original: dict[str, torch.Tensor] | None = None
        self._trained = False
        self._store = SubjectAttentionStore(self.name)

    # ---- what is trained ------------------------------------------------------------------
    def trained_names(self) -> list[str]:
        names = list(self.backbone.transformer.state_dict())
        if self.config.trained_parameters == "attention":
            return [n for n in names if ".attn1." in n]
        return names

    def parameter_groups(self) -> dict[str, list[torch.nn.Parameter]]:
        """Learned parameters: every transformer parameter, or its joint attentions'."""
        label = "transformer" if self.config.trained_parameters == "full" else "joint attention"
        return {label: self.trained_parameters()}

    def planned_train_steps(self) -> int:
        return self.config.scaled(self.config.max_train_steps)

    def resolved_mixed_precision(self) -> str:
        """The mixed precision in use: "bf16" or "no" ("auto" follows the backbone's dtype)."""
        return resolve_mixed_precision(self.config.mixed_precision, self.backbone)

    def memory_stages(self) -> list[MemoryStage]:
        """The two micro-batches of a step, each training :meth:`trained_parameters` (fp32
        master weights under bf16 mixed precision, the whole transformer cast to fp32): the
        subject images (``identity_batch_size``, a cap: a subject with fewer images has a
        smaller batch) with the subject-token attention recorded, and the unrelated clips."""
        cfg = self.config
        params = self.trained_parameters()
        fp32 = torch.float32 if self.resolved_mixed_precision() == "bf16" else None
        stages = []
        if cfg.region_loss_weight > 0 or cfg.cross_attn_loss_weight > 0:
            context = self._recording if cfg.cross_attn_loss_weight > 0 else None
            stages.append(
                MemoryStage(
                    "images", params, cfg.identity_batch_size, 1, context, False, fp32, fp32
                )
            )
        if cfg.video_loss_weight > 0:
            stages.append(
                MemoryStage("videos", params, cfg.motion_batch_size, None, None, False, fp32, fp32)
            )
        return stages

    @contextlib.contextmanager
    def _recording(self, batch_size: int) -> Iterator[None]:
        """A forward of the image micro-batch as the memory model runs it: the subject-token
        attention recorded (for two subject tokens, as "toy sks")."""
        self._store.attach(self.backbone.transformer, self.config.cross_attn_blocks)
        try:
            with self._store.record(torch.tensor([1, 2])):
                yield
        finally:
            self._store.detach()

    def resolved_mask_fallback(self) -> str:
        """``"sam"`` or ``"full_frame"`` ("auto": full_frame on the tiny profile, which has no
        segmentation model, sam on the real ones)."""
        if self.config.mask_fallback != "auto":
            return self.config.mask_fallback
        return "full_frame" if self.backbone.profile.random_init else "sam"

    def auxiliary_models(self) -> dict[str, int]:
        """The segmentation model, where the fallback needs one (loaded once per identity for
        the images without a mask file or alpha channel, before training; not resident)."""
        if self.resolved_mask_fallback() != "sam":
            return {}
        count = sam_parameter_count(self.config.mask_model)
        if count is None:
            return {}
        return {f"SAM {self.config.mask_model} (subject masks, before training)": count}

    # ---- data -----------------------------------------------------------------------------
    def prepare(self, case: Case) -> MotionBoothData:
        """The subject's images (encoded once), their masks, the caption and its subject tokens,
        and the pool of unrelated clips (:func:`~.prepare.prepare_case`)."""
        return prepare_case(case, self.config, self.backbone, self.resolved_mask_fallback())

    def train(self, case: Case) -> dict[str, Any]:
        """Prepare the case and :meth:`fit`; the statistics name the caption, the subject
        tokens, where every mask came from and the unrelated clips."""
        if self._trained:
            raise ConfigError(f"{self.name}: train() may be called once per method instance")
        with self.memory_setup():
            data = self.prepare(case)
            stats = self.fit(data)
        stats.update(
            {
                "identity_prompt": data.image_prompt,
                "subject_tokens": data.subject_tokens,
                "subject_token_positions": data.subject_positions.tolist(),
                "subject_masks": data.masks,
                "subject_mask_coverage": data.mask_coverage,
                "preservation_videos": data.videos.describe() if data.videos else None,
            }
        )
        return stats

    # ---- training -------------------------------------------------------------------------
    def fit(
        self, data: MotionBoothData, *, step_callback: Callable[[str, int], None] | None = None
    ) -> dict[str, Any]:
        """``max_train_steps`` optimizer steps on prepared data (``step_callback("train",
        step)`` after each, before the gradients are cleared), under the memory settings
        (:meth:`memory_settings`: each micro-batch of images or clips split further into
        ``micro_batch`` items, with the whole batch's draws and gradient)."""
        cfg = self.config
        steps = cfg.scaled(cfg.max_train_steps)
        use_images = cfg.region_loss_weight > 0 or cfg.cross_attn_loss_weight > 0
        use_videos = cfg.video_loss_weight > 0
        if use_videos and data.videos is None:
            raise ConfigError(f"{self.name}: video_loss_weight > 0 but the data has no clips")
        rng = random.Random(cfg.seed)
        images = EpochLoader(len(data.image_latents), cfg.identity_batch_size, rng)
        videos = EpochLoader(len(data.videos), cfg.motion_batch_size, rng) if use_videos else None
        # every step's items, drawn in the loop's order; the clips among them are encoded now,
        # before the loop (an offloaded VAE stays away during it)
        draws = [
            (images.next() if use_images else None, videos.next() if videos else None)
            for _ in range(steps)
        ]
        if videos is not None:
            data.videos.encode(i for _, v in draws for i in v)
        with self.memory_setup() as memory:
            mixed = self.resolved_mixed_precision()
            stats = self._train(data, draws, memory.micro_batch, mixed, step_callback)
        return {
            **stats,
            "trainable_parameters": {
                k: sum(p.numel() for p in v) for k, v in self.parameter_groups().items()
            },
            "mixed_precision": mixed,
            "gradient_checkpointing": memory.gradient_checkpointing,
            "micro_batches_per_step": int(use_images) + int(use_videos),
            "micro_batch": memory.micro_batch,
        }

    def _train(
        self,
        data: MotionBoothData,
        draws: list[tuple[list[int] | None, list[int] | None]],
        micro_batch: int | None,
        mixed: str,
        step_callback: Callable[[str, int], None] | None,
    ) -> dict[str, Any]:
        """The loop over the planned ``draws`` (image indices, clip indices) of every step."""
        cfg, backbone = self.config, self.backbone
        steps = len(draws)
        parts = sum(x is not None for x in draws[0]) if draws else 1
        self.keep_original()
        params = self.trained_parameters()
        settings = self.optimizer_settings(cfg.learning_rate)
        gen = torch.Generator(device="cpu").manual_seed(cfg.seed + 1)
        autocast = torch.bfloat16 if mixed == "bf16" else None
        log: dict[str, list[float]] = {"loss": [], "region_loss": [], "cross_attn_loss": []}
        log["video_loss"] = []
        start = time.perf_counter()
        with self._training(params, mixed):
            optimizer = make_optimizer(params, settings, backbone.device)
            warmup = min(cfg.scaled(cfg.lr_warmup_steps), steps)
            scheduler = make_lr_scheduler(optimizer, settings, warmup, steps)
            for step, items in enumerate(draws):
                total = self._backward_step(
                    data, step, items, parts, gen, autocast, micro_batch, log
                )
                apply_update(
                    params=params,
                    optimizer=optimizer,
                    scheduler=scheduler,
                    max_grad_norm=cfg.max_grad_norm,
                )
                if step_callback is not None:
                    step_callback("train", step)
                optimizer.zero_grad(set_to_none=True)
                log["loss"].append(total)
                self.report_progress("train", step + 1, steps, loss=total)
        self._trained = True
        return {
            **{k: v for k, v in log.items() if v},
            "steps": steps,
            "seconds": time.perf_counter() - start,
        }

    @contextlib.contextmanager
    def _training(self, params: list[torch.nn.Parameter], mixed: str) -> Iterator[None]:
        """The transformer set up for training (fp32 master weights under bf16, gradient
        checkpointing as the memory settings say), the subject-token attention recorded when
        its loss is on, ``params`` trainable; all undone on exit."""
        transformer = self.backbone.transformer
        checkpointing = self.memory_settings().gradient_checkpointing
        with contextlib.ExitStack() as stack:
            stack.enter_context(
                training_setup(transformer, fp32=mixed == "bf16", checkpointing=checkpointing)
            )
            if self.config.cross_attn_loss_weight > 0:
                self._store.attach(transformer, self.config.cross_attn_blocks)
                stack.callback(self._store.detach)
            stack.enter_context(_trainable(params))
            yield

    def _backward_step(
        self,
        data: MotionBoothData,
        step: int,
        items: tuple[list[int] | None, list[int] | None],
        parts: int,
        gen: torch.Generator,
        autocast: torch.dtype | None,
        micro_batch: int | None,
        log: dict[str, list[float]],
    ) -> float:
        """Forward and backward of one step's micro-batches (the images ``items[0]``, the clips
        ``items[1]``; each ``None`` when its loss is off), each scaled by ``1 / parts``, their
        gradients accumulated; logs their terms into ``log`` and returns the step's loss."""
        cfg = self.config
        image_items, clip_items = items
        total = 0.0

        def run(batch: StepBatch, kind: str) -> float:
            where = f"step {step} ({kind}) of {self.name}"
            return backward(batch, micro_batch=micro_batch, where=where, scale=1 / parts)

        if image_items is not None:
            batch, parts_log = image_batch(
                self.backbone, cfg, self._store, data, image_items, gen, autocast
            )
            recording = (
                self._store.record(data.subject_positions)
                if cfg.cross_attn_loss_weight > 0
                else contextlib.nullcontext()
            )
            with recording:
                loss = run(batch, "images")
            total += loss / parts
            log["region_loss"].append(sum(parts_log["region"]))
            log["cross_attn_loss"].append(sum(parts_log["cross_attn"]))
        if clip_items is not None:
            batch = video_batch(
                self.backbone, cfg.video_loss_weight, data.videos, clip_items, gen, autocast
            )
            loss = run(batch, "videos")
            total += loss / parts
            log["video_loss"].append(loss / parts)
        return total

    def teardown(self) -> None:
        """Remove the attention processors (if a step was interrupted) and restore the weights."""
        self._store.detach()
        super().teardown()

    # ---- generation -----------------------------------------------------------------------
    def generate(self, prompts: Sequence[str], seed: int) -> list[np.ndarray]:
        """One video per prompt from the fine-tuned transformer, ``" *"`` as the unique token."""
        if not self._trained:
            raise ConfigError(
                f"{self.name}: nothing learned yet; call train(case) or load(dir) before generate()"
            )
        texts = [with_unique_token(p, self.config.unique_token) for p in prompts]
        with torch.no_grad():
            return self.backbone.sample(texts, seed)


@contextlib.contextmanager
def _trainable(params: Sequence[torch.nn.Parameter]) -> Iterator[None]:
    for p in params:
        p.requires_grad_(True)
    try:
        yield
    finally:
        for p in params:
            p.grad = None
            p.requires_grad_(False)
