"""``dualreal``: the DualReal method behind the benchmark's :class:`Method` interface."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from dualreal_bench.config import parse_size
from dualreal_bench.errors import ConfigError
from dualreal_bench.method import MemoryStage, Method, variant_value

from .._common.data import TrainingData
from .._common.hooks import adapter_device, training_device
from .._common.image_encoder import ImageEncoder, condition_encoder, condition_encoder_parameters
from .._common.loop import check_state
from .._common.memory import TrainingMemory
from .config import PAPER_NUM_BLOCKS, UNTILED_DECODE_MIN_GIB, DualRealConfig
from .model import DualRealModel, resolve_num_groups
from .training import prepare_training_data, train_model

if TYPE_CHECKING:
    from dualreal_bench.backbone import Backbone, BackboneConfig
    from dualreal_bench.spec import Case

logger = logging.getLogger(__name__)

__all__ = ["DualRealMethod"]

#: state-dict key of the generation condition (the identity's first image embedding)
REFERENCE_KEY = "condition.reference_embedding"
#: how a label names the paper's ablations (Table 2)
ABLATION_LABELS = {
    ("dual_aware", False): "w/o dual-aware adaptation",
    ("controller", False): "w/o StageBlender controller",
}


class DualRealMethod(TrainingMemory, Method):
    """DualReal (ICCV 2025): dual-aware adapters on every DiT block, the StageBlender
    controller, and gradient-masked joint identity/motion training.

    Construction attaches the adapters to ``backbone.transformer`` by hooks (the backbone's
    weights stay frozen and untouched); :meth:`teardown` removes them.

    Args:
        backbone: the shared backbone.
        config: a :class:`DualRealConfig` (defaults: the paper's).
        image_encoder: the encoder of the motion condition ``c`` (anything with
            ``embed_dim`` and ``__call__(images) -> (B, cond_dim)``); default: resolved from
            ``config.image_encoder`` when :meth:`train` first needs it.
    """

    name = "dualreal"
    config_class = DualRealConfig

    def __init__(
        self,
        backbone: Backbone,
        config: DualRealConfig | None = None,
        *,
        image_encoder: ImageEncoder | None = None,
        zero_init_up: bool = True,
    ) -> None:
        super().__init__(backbone, config)
        self.config: DualRealConfig
        transformer = backbone.transformer
        self.model = DualRealModel.for_transformer(
            transformer,
            self.config,
            zero_init_up=zero_init_up,
            device=adapter_device(backbone),
            dtype=self.trainable_dtype,
        )
        self.model.attach(transformer)
        self.reference_embedding: torch.Tensor | None = None  # (1, cond_dim)
        self.image_encoder = image_encoder
        self._trained = False
        self._extras: list[dict[str, np.ndarray]] = []
        self.training_data = None  # the last TrainingData (for inspection)

    @classmethod
    def check_backbone(cls, config: DualRealConfig, backbone: BackboneConfig) -> None:
        """``num_groups`` must divide the backbone's block count (the profile's ``num_layers``:
        2 for tiny, 30 for CogVideoX-2B, 42 for 5B), checked before any weight loads."""
        from dualreal_bench.backbone import get_profile

        resolve_num_groups(config, get_profile(backbone.profile).transformer["num_layers"])

    # ---- components ---------------------------------------------------------------------
    @property
    def num_groups(self) -> int:
        return self.model.num_groups

    @property
    def trainable_dtype(self) -> torch.dtype:
        """The dtype the adapters and the controller train in: ``trainable_dtype``, "auto"
        being the backbone's on CUDA (the authors' bf16) and float32 elsewhere (for the memory
        model's meta backbone: on the device it stands for, a GPU unless configured)."""
        choice = self.config.trainable_dtype
        if choice == "auto":
            on_cuda = training_device(self.backbone).type == "cuda"
            return self.backbone.dtype if on_cuda else torch.float32
        return {"bfloat16": torch.bfloat16, "float32": torch.float32}[choice]

    @property
    def vae_tiling(self) -> str:
        """Whether generation decodes with VAE tiling ("on"/"off"): ``vae_tiling``, "auto"
        resolved by :func:`resolve_vae_tiling` from the CUDA device's memory and
        ``memory_budget``."""
        device = self.backbone.device
        card = None
        if device.type == "cuda":
            card = torch.cuda.get_device_properties(device).total_memory
        budget = self.config.memory_budget
        budget_bytes = None if budget is None else parse_size(budget, f"{self.name}: memory_budget")
        return resolve_vae_tiling(self.config.vae_tiling, card, budget_bytes)

    def parameter_groups(self) -> dict[str, list[torch.nn.Parameter]]:
        """Learned parameters by component: identity adapters, motion adapters (with their
        W_cond), controller."""
        return self.model.parameter_groups()

    def auxiliary_models(self) -> dict[str, int]:
        """Frozen helper models DualReal loads (for ``inspect``): the condition image encoder,
        needed only while preparing the training data and freed before the loop."""
        if not self.config.motion_condition:
            return {}
        return condition_encoder_parameters(self.config, self.backbone.config.profile)

    @contextlib.contextmanager
    def inspection_context(self, batch_size: int) -> Iterator[None]:
        """A motion step's forward for shape-only inspection: conditioned motion adapters."""
        if self.config.motion_condition:
            device = next(self.model.parameters()).device
            self.model.condition = torch.zeros(batch_size, self.config.cond_dim, device=device)
        try:
            yield
        finally:
            self.model.condition = None

    def memory_stages(self) -> list[MemoryStage]:
        """The joint loop's two kinds of step (identity: images, motion: conditioned clips),
        each training every adapter and the controller (the mask drops one dimension's
        gradients only after backward); ``dual_aware=false``: the identity phase, then the
        motion phase, each training its own adapters."""
        cfg, model = self.config, self.model
        identity = model.dimension_parameters("identity")
        motion = model.dimension_parameters("motion")
        if cfg.dual_aware:
            identity = motion = identity + motion + model.controller_parameters()
        prefix = "joint: " if cfg.dual_aware else ""

        @contextlib.contextmanager
        def unconditioned(batch_size: int) -> Iterator[None]:
            yield

        return [
            MemoryStage(f"{prefix}identity", identity, cfg.identity_batch_size, 1, unconditioned),
            MemoryStage(
                f"{prefix}motion", motion, cfg.motion_batch_size, None, self.inspection_context
            ),
        ]

    def _image_encoder(self) -> ImageEncoder | None:
        if not self.config.motion_condition:
            return None
        if self.image_encoder is None:
            self.image_encoder = condition_encoder(self.config, self.backbone)
        return self.image_encoder

    # ---- Method contract ----------------------------------------------------------------
    def train(self, case: Case) -> dict[str, Any]:
        """Jointly learn ``case.identity`` and ``case.motion`` (see :mod:`.training`)."""
        if self._trained:
            raise ConfigError("dualreal: train() may be called once per method instance")
        injected = self.image_encoder is not None
        with self.memory_setup():
            data = prepare_training_data(
                self.backbone, case, self.config, self._image_encoder(), seed=self.config.seed
            )
            if not injected:
                self.image_encoder = None  # only the embeddings are needed from here on: free it
            return self.fit(data)

    def fit(
        self, data: TrainingData, *, step_callback: Callable[[str, int], None] | None = None
    ) -> dict[str, Any]:
        """The joint loop on encoded data (``train`` = encode the case + ``fit``).

        ``step_callback(kind, step)`` runs after every optimizer step (``kind``: "identity" or
        "motion"); :func:`.training.train_model` is the same loop with the arguments spelled out.
        """
        self.training_data = data
        if data.reference_embedding is not None:
            self.reference_embedding = data.reference_embedding.detach().float().cpu()

        def progress(step: int, total: int, info: dict[str, Any]) -> None:
            self.report_progress("train", step, total, **info)

        def on_step(step: int, kind: str) -> None:
            if step_callback is not None:
                step_callback(kind, step)

        with self.memory_setup() as memory:
            stats = train_model(
                self.model,
                self.backbone,
                data,
                self.config,
                seed=self.config.seed,
                progress=progress,
                step_callback=on_step,
                memory=memory,
            )
        self._trained = True
        stats.update(
            {
                "num_groups": self.num_groups,
                "controller": self.config.use_controller,
                "identity_prompt": data.identity_prompt,
                "motion_prompt": data.motion_prompt,
                "condition_frames": data.condition_frames,
                "trainable_parameters": {
                    k: sum(p.numel() for p in v) for k, v in self.parameter_groups().items()
                },
            }
        )
        return stats

    def generate(self, prompts: Sequence[str], seed: int) -> list[np.ndarray]:
        """One video per prompt with the adapters and the controller active at every step.

        Prompts go to the text encoder as written (the subject as ``"<class> *"``, as the
        authors' evaluation prompts do and as identity steps are captioned). The motion
        adapters are conditioned on the identity's first reference image (both CFG branches).
        The controller's ``w_id`` of every step is kept for :meth:`generation_extras`.
        """
        if self.config.motion_condition and self.reference_embedding is None:
            raise ConfigError(
                "dualreal: nothing learned yet; call train(case) or load(dir) before generate()"
            )
        model = self.model
        if self.reference_embedding is not None:
            model.condition = self.reference_embedding.to(self.backbone.device)
        model.active = (True, True)
        model.eval()
        videos: list[np.ndarray] = []
        extras: list[dict[str, np.ndarray]] = []
        try:
            for prompt in prompts:
                timesteps: list[int] = []

                def on_step(
                    pipe: Any, i: int, t: Any, tensors: dict[str, Any], _ts: list[int] = timesteps
                ) -> dict:
                    _ts.append(int(t))
                    return {}

                model.trace = []
                with torch.no_grad(), vae_tiling(self.backbone.vae, self.vae_tiling == "on"):
                    videos.extend(
                        self.backbone.sample([prompt], seed, callback_on_step_end=on_step)
                    )
                extras.append(_trace_extras(model.trace, timesteps))
        finally:
            model.trace = None
            model.condition = None
        self._extras = extras
        return videos

    def generation_extras(self) -> list[dict[str, np.ndarray]]:
        """Per video of the last :meth:`generate`:

        * ``controller_w_id``: ``(num_steps, n)`` float32, the identity weight of each group at
          each denoising step for the conditional (prompted) branch: the paper's Figure 7;
        * ``controller_w_id_uncond``: the same for the unconditional branch of classifier-free
          guidance (absent without guidance);
        * ``controller_timesteps``: ``(num_steps,)`` the scheduler's timestep of each step.

        ``w_m = controller_scale - w_id``. Without the controller the arrays hold the fixed weight.
        """
        return list(self._extras)

    def teardown(self) -> None:
        """Remove the hooks: the backbone computes as if DualReal had never been attached."""
        self.model.detach()

    # ---- variant ------------------------------------------------------------------------
    def resolved_options(self) -> dict[str, Any]:
        """``num_groups`` as used on this backbone (unset: 7 where it divides the block count,
        2 on the tiny profile, 6 on CogVideoX-2B), ``controller`` (unset: as ``dual_aware``)
        and ``vae_tiling`` (auto: off, on where the GPU is too small to decode untiled)."""
        return {
            "num_groups": self.num_groups,
            "controller": self.config.use_controller,
            "vae_tiling": self.vae_tiling,
        }

    def reference_config(self) -> dict[str, Any]:
        """The paper's DualReal: the default config resolved on CogVideoX-5B (n = 7, controller)
        on a GPU that decodes untiled, as the authors'."""
        reference = DualRealConfig()
        return {
            **reference.to_dict(),
            "num_groups": resolve_num_groups(reference, PAPER_NUM_BLOCKS),
            "controller": reference.use_controller,
            "vae_tiling": "off",
        }

    def inactive_options(self, config: Mapping[str, Any]) -> set[str]:
        """Options without effect in ``config``: the group count and the controller's widths
        without the controller, the fixed weights with it, the controller switch and the
        gradient mask without joint training, the condition settings without a condition."""
        inactive = set()
        if config["controller"]:
            inactive.add("fixed_weights")
        else:
            inactive |= {"num_groups", "controller_hidden", "controller_scale"}
        if not config["dual_aware"]:
            inactive |= {"controller", "grad_mask"}  # controller is then necessarily off
        if not config["motion_condition"]:
            inactive |= {
                "cond_dim",
                "cond_scale",
                "p_image_zero",
                "image_encoder",
                "condition_preprocess",
            }
        return inactive

    def label(self) -> str:
        """ "DualReal", "DualReal w/o StageBlender controller", "DualReal (n = 2)", ..."""
        parts = []
        for key, value in self.variant_options().items():
            if value is False and (key, value) in ABLATION_LABELS:
                parts.append(ABLATION_LABELS[key, value])
            elif key == "num_groups":
                parts.append(f"(n = {value})")
            else:
                parts.append(f"({key}={variant_value(value)})")
        return " ".join(["DualReal", *parts])

    # ---- state --------------------------------------------------------------------------
    def state_dict(self) -> dict[str, torch.Tensor]:
        """Adapters and controller (``blocks.<i>.<attn|ff>.<identity|motion>.<down|up|cond>.*``,
        ``controller.*``) plus the generation condition."""
        state = {k: v.detach().cpu() for k, v in self.model.state_dict().items()}
        if self.reference_embedding is not None:
            state[REFERENCE_KEY] = self.reference_embedding.detach().cpu()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Load what :meth:`state_dict` gave; names, shapes and values are checked first
        (:class:`WeightsError` naming the offending tensors), nothing is changed on failure."""
        expected = {k: tuple(v.shape) for k, v in self.model.state_dict().items()}
        if self.config.motion_condition:
            expected[REFERENCE_KEY] = (1, self.config.cond_dim)
        check_state("dualreal", state, expected)
        model_state = {k: v for k, v in state.items() if k != REFERENCE_KEY}
        self.model.load_state_dict(model_state, strict=True)
        if REFERENCE_KEY in state:
            self.reference_embedding = state[REFERENCE_KEY].detach().float().cpu().clone()
        self._trained = True


@contextlib.contextmanager
def vae_tiling(vae: Any, enabled: bool) -> Iterator[None]:
    """Decode with (or without) diffusers' VAE tiling, then put the VAE's setting back."""
    before = bool(getattr(vae, "use_tiling", False))
    if enabled:
        vae.enable_tiling()
    else:
        vae.disable_tiling()
    try:
        yield
    finally:
        vae.use_tiling = before


def _trace_extras(trace: list[torch.Tensor], timesteps: list[int]) -> dict[str, np.ndarray]:
    """Per-forward ``w_id`` ``(B, n)`` -> the arrays :meth:`DualRealMethod.generation_extras` documents.

    CogVideoXPipeline batches ``[unconditional, conditional]`` under guidance, so the last row
    of each forward is the prompted branch.
    """
    if not trace:
        return {}
    stacked = torch.stack(trace).numpy().astype(np.float32)  # (steps, B, n)
    out = {"controller_w_id": np.ascontiguousarray(stacked[:, -1, :])}
    if stacked.shape[1] == 2:
        out["controller_w_id_uncond"] = np.ascontiguousarray(stacked[:, 0, :])
    if timesteps:
        out["controller_timesteps"] = np.asarray(timesteps, dtype=np.int64)
    return out


def resolve_vae_tiling(choice: str, card_bytes: int | None, budget_bytes: int | None) -> str:
    """ "on"/"off" for ``vae_tiling`` ``choice``: "auto" is off (the authors' untiled decode,
    ``inference.py``) unless generation runs on a CUDA device (``card_bytes``, None off CUDA)
    whose memory, or the ``memory_budget`` (``budget_bytes``) if smaller, is below
    UNTILED_DECODE_MIN_GIB. Off CUDA the budget plans no decode, so "auto" stays off."""
    if choice != "auto":
        return choice
    if card_bytes is None:
        return "off"
    usable = card_bytes if budget_bytes is None else min(card_bytes, budget_bytes)
    return "on" if usable < UNTILED_DECODE_MIN_GIB * 2**30 else "off"
