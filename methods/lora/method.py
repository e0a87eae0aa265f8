"""``lora``: one LoRA for the identity, one for the motion, fused at inference.

The baseline of DualReal's Table 1 (paper supplement: lr 1e-3, 300 identity + 300 motion
steps). Two peft LoRA adapters are added to the shared transformer through diffusers'
``add_adapter`` on the attention projections ``to_q``, ``to_k``, ``to_v`` and ``to_out.0`` of
every block: ``identity`` is trained on the subject's images (1-frame videos), then
``motion`` on the clips, each alone (the other adapter inactive, so it neither runs nor
trains). At inference the two are fused, in one of two ways (``fusion``):

* ``"avg_factors"`` (default: what the authors ran for the paper's LoRA row,
  wenc-k/customvideo ``lora_joint.py``: ``merge_lora_weights(..., scale1=0.5, scale2=0.5)``
  multiplies every tensor of each LoRA file by 0.5 and adds them key by key, then loads the
  merged file as one adapter): the factor matrices are averaged,
  ``A = w_id A_id + w_m A_m`` and ``B = w_id B_id + w_m B_m`` with ``(w_id, w_m) = (0.5, 0.5)``,
  and every adapted layer computes

      W x + B A x = W x + 0.25 (B_id A_id + B_m A_m + B_id A_m + B_m A_id) x

  at scale 1: the merged file carries no alpha, and diffusers' loader then sets
  ``lora_alpha = rank`` (``get_peft_kwargs``), whatever alpha the LoRAs were trained with.
  Each learned delta enters at a quarter of its strength, plus the cross terms
  ``B_id A_m + B_m A_id`` neither adapter learned;
* ``"delta_sum"`` (the clean variant, ``lora[fusion=delta_sum]``): peft's weighted adapters,
  ``set_adapters([identity, motion], (w_id, w_m))`` with ``(1, 1)``,

      W x + w_id * s * B_id A_id x + w_m * s * B_m A_m x        (s = lora_alpha / rank)

  the base weight plus the weighted sum of the two deltas, as each was trained.

``fusion_weights`` left unset is the fusion's own (0.5, 0.5 or 1, 1); a variant key names it
only when it differs from that.

Frames: the clips are sampled as the official CogVideoX LoRA script does (the authors' LoRA
training script is not published; paper and supplement are silent): every ⌊N / 49⌋-th frame
over the whole clip, the first 49, stretched to 720x480 (THUDM ``finetune/train_cogvideox_lora.py``:
``range(start, end, (end - start) // max_num_frames)``, ``decord.VideoReader(width, height)``).
Warm-up: that script's ``--lr_warmup_steps 500`` has no effect with its
``--lr_scheduler constant`` (diffusers' ``get_scheduler`` ignores the warm-up of
``constant``), so it trains with none, as ours does.

Prompts: the method learns no token. With ``placeholder="keep"`` (default) the benchmark's
``"<class> *"`` is fed as written in the identity captions ("a toy *") and at generation, so
``" *"`` is the rare identifier of DreamBooth's "a [V] dog" the LoRA binds the subject to
(DualReal feeds its prompts the same way); ``placeholder="strip"`` removes it everywhere
("a toy", "toy is swinging ...").

The adapters are added when the method is constructed (so ``load`` works on a fresh
instance) and removed by :meth:`LoRAMethod.teardown`, which unwraps the LoRA layers: the
transformer is left with its original modules and weights.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from dualreal_bench.errors import ConfigError
from dualreal_bench.method import MemoryStage

from .._common.data import TrainingData, apply_placeholder
from .._common.loop import check_state
from .._common.staged import StagedMethod
from .config import FUSION_WEIGHTS, LoRAConfig

if TYPE_CHECKING:
    from dualreal_bench.backbone import Backbone, BackboneConfig

logger = logging.getLogger(__name__)

__all__ = ["LoRAMethod"]

#: the two dimensions, in the order of ``fusion_weights``
DIMENSIONS = ("identity", "motion")
#: adapter names on the transformer (prefixed so that they never clash with a user's LoRA)
ADAPTER_PREFIX = "dualreal_bench_lora_"
#: the adapter that holds the averaged factors of ``fusion="avg_factors"``
FUSED = "fused"


@functools.lru_cache(maxsize=8)
def _transformer_module_names(profile: str) -> frozenset[str]:
    """Module names of ``profile``'s transformer, built on the meta device (no weights)."""
    from diffusers import CogVideoXTransformer3DModel

    from dualreal_bench.backbone import get_profile

    with torch.device("meta"):
        model = CogVideoXTransformer3DModel(**get_profile(profile).transformer)
    return frozenset(name for name, _ in model.named_modules())


class LoRAMethod(StagedMethod):
    """Two LoRA adapters (identity, motion) trained separately, fused at inference (by
    averaging their factors, as the authors, or as a weighted sum of their deltas).

    Args:
        backbone: the shared backbone; the adapters are added to ``backbone.transformer``.
        config: a :class:`LoRAConfig`.
    """

    name = "lora"
    config_class = LoRAConfig

    @classmethod
    def check_backbone(cls, config: LoRAConfig, backbone: BackboneConfig) -> None:
        """Every entry of ``target_modules`` must name layers of the backbone's transformer
        (as peft matches them: the module's name or its last dotted parts), checked on the
        profile's architecture without weights. peft itself refuses only a list that matches
        nothing, so a misspelt entry among correct ones would adapt fewer layers unnoticed."""
        names = _transformer_module_names(backbone.profile)
        unmatched = [
            t
            for t in config.target_modules
            if not any(n == t or n.endswith("." + t) for n in names)
        ]
        if unmatched:
            raise ConfigError(
                f"lora: target_modules {', '.join(unmatched)} match no layer of the "
                f"{backbone.profile} transformer (its attention layers: to_q, to_k, to_v, "
                "to_out.0; feed-forward: ff.net.0.proj, ff.net.2)"
            )

    def __init__(self, backbone: Backbone, config: LoRAConfig | None = None) -> None:
        super().__init__(backbone, config)
        self.config: LoRAConfig
        from peft import LoraConfig

        transformer = backbone.transformer
        self._had_peft = bool(getattr(transformer, "_hf_peft_config_loaded", False))
        self._peft_attrs = {
            k: transformer.__dict__[k]
            for k in ("_hf_peft_config_loaded",)
            if k in transformer.__dict__
        }
        self._previous_active = list(transformer.active_adapters()) if self._had_peft else []
        self.adapter_names = {dim: f"{ADAPTER_PREFIX}{dim}" for dim in DIMENSIONS}
        if self.config.fusion == "avg_factors":
            self.adapter_names[FUSED] = f"{ADAPTER_PREFIX}{FUSED}"
        existing = set(getattr(transformer, "peft_config", {}) or {})
        clash = sorted(existing & set(self.adapter_names.values()))
        if clash:
            raise ConfigError(
                f"lora: the transformer already carries adapter(s) {', '.join(clash)} "
                "(a previous LoRAMethod was not torn down)"
            )
        cfg = self.config
        # the factors are initialised (on the CPU, then moved by peft) from config.seed, not
        # from whatever state the global generator is in
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)
            self._add_adapters(LoraConfig)
        # fp32 master weights for the LoRA factors (diffusers' cast_training_params); the fused
        # adapter (never trained) in the same dtype, so that it computes as the two would
        for params in self._adapter_parameters(with_fused=True).values():
            for p in params.values():
                p.data = p.data.float()
                p.requires_grad_(False)
        self._trained = False

    def _add_adapters(self, lora_config_class: Any) -> None:
        cfg = self.config
        transformer = self.backbone.transformer
        for dim in self.adapter_names:
            lora_config = lora_config_class(
                r=cfg.rank,
                # the fused adapter at scale 1: lora_alpha = rank, as diffusers loads the
                # authors' merged file (no alpha in it)
                lora_alpha=cfg.rank if dim == FUSED else cfg.lora_alpha,
                lora_dropout=cfg.lora_dropout,
                init_lora_weights=cfg.init_lora_weights,
                target_modules=list(cfg.target_modules),
            )
            try:
                with warnings.catch_warnings():  # peft warns that a second adapter is intended
                    warnings.filterwarnings("ignore", message=".*multiple adapters.*")
                    transformer.add_adapter(lora_config, adapter_name=self.adapter_names[dim])
            except ValueError as exc:  # peft: "Target modules ... not found in the base model"
                self._remove_adapters()
                raise ConfigError(
                    f"lora: target_modules={list(cfg.target_modules)}: {exc}"
                ) from None

    # ---- adapters -------------------------------------------------------------------------
    def _adapter_parameters(
        self, *, with_fused: bool = False
    ) -> dict[str, dict[str, torch.nn.Parameter]]:
        """``{dim: {state key: Parameter}}`` of the two learned adapters (and of the fused one
        with ``with_fused``); keys are peft's without the adapter name."""
        names = {d: n for d, n in self.adapter_names.items() if with_fused or d != FUSED}
        out: dict[str, dict[str, torch.nn.Parameter]] = {dim: {} for dim in names}
        for name, param in self.backbone.transformer.named_parameters():
            for dim, adapter in names.items():
                marker = f".{adapter}."
                if marker in name and (".lora_A." in name or ".lora_B." in name):
                    out[dim][f"{dim}.{name.replace(marker, '.')}"] = param
        return out

    def parameter_groups(self) -> dict[str, list[torch.nn.Parameter]]:
        """Learned parameters: the identity LoRA and the motion LoRA."""
        return {
            f"{dim} lora": list(params.values())
            for dim, params in self._adapter_parameters().items()
        }

    def use_adapters(self, weights: Sequence[float]) -> None:
        """Activate both adapters with ``(w_id, w_m)`` (0 switches a delta off): the
        ``delta_sum`` fusion."""
        w_id, w_m = (float(w) for w in weights)
        self.backbone.transformer.set_adapters(
            [self.adapter_names["identity"], self.adapter_names["motion"]], [w_id, w_m]
        )

    def use_fused_factors(self, weights: Sequence[float]) -> None:
        """Write ``w_id * A_id + w_m * A_m`` and ``w_id * B_id + w_m * B_m`` into the fused
        adapter, key by key, and activate it alone at scale 1: the ``avg_factors`` fusion."""
        if FUSED not in self.adapter_names:
            raise ConfigError("lora: the fused adapter exists only with fusion=avg_factors")
        w_id, w_m = (float(w) for w in weights)
        params = self._adapter_parameters(with_fused=True)
        with torch.no_grad():
            for key, fused in params[FUSED].items():
                rest = key.split(".", 1)[1]
                a, b = params["identity"][f"identity.{rest}"], params["motion"][f"motion.{rest}"]
                fused.copy_(w_id * a + w_m * b)
        self.backbone.transformer.set_adapters([self.adapter_names[FUSED]], [1.0])

    def fuse(self) -> None:
        """Activate the fusion the config asks for (``fusion``, ``fusion_weights``)."""
        weights = self.config.resolved_fusion_weights
        if self.config.fusion == "avg_factors":
            self.use_fused_factors(weights)
        else:
            self.use_adapters(weights)

    def _remove_adapters(self) -> None:
        transformer = self.backbone.transformer
        mine = [
            n
            for n in self.adapter_names.values()
            if n in (getattr(transformer, "peft_config", {}) or {})
        ]
        if not self._had_peft:
            if getattr(transformer, "_hf_peft_config_loaded", False) or mine:
                transformer.unload_lora()  # unwraps every LoRA layer: the original modules return
            for key in ("_hf_peft_config_loaded", "peft_config"):
                if key in transformer.__dict__ and key not in self._peft_attrs:
                    del transformer.__dict__[key]
            transformer.__dict__.update(self._peft_attrs)
        else:
            if mine:
                transformer.delete_adapters(mine)
            if self._previous_active:
                transformer.set_adapter(self._previous_active)

    def teardown(self) -> None:
        """Remove both adapters; the transformer has its original modules and weights again."""
        self._remove_adapters()

    def memory_stages(self) -> list[MemoryStage]:
        """The identity stage (identity LoRA, images) and the motion stage (motion LoRA, clips),
        each with its adapter alone active."""
        params = self._adapter_parameters()
        return [
            self.dimension_memory_stage(dim, list(params[dim].values()), self._only(dim))
            for dim in DIMENSIONS
        ]

    def _only(self, dim: str) -> Callable[[int], contextlib.AbstractContextManager[None]]:
        @contextlib.contextmanager
        def active(batch_size: int) -> Iterator[None]:
            transformer = self.backbone.transformer
            before = list(transformer.active_adapters())
            transformer.set_adapters([self.adapter_names[dim]], [1.0])
            try:
                yield
            finally:
                transformer.set_adapters(before)

        return active

    # ---- training -------------------------------------------------------------------------
    def caption_placeholder(self) -> str:
        return self.config.placeholder

    def fit(
        self, data: TrainingData, *, step_callback: Callable[[str, int], None] | None = None
    ) -> dict[str, Any]:
        """Both stages on encoded data (``train`` = encode the case + ``fit``): the identity
        LoRA on the images, then the motion LoRA on the clips, each with the other one off."""
        cfg = self.config
        transformer = self.backbone.transformer
        params = self._adapter_parameters()
        settings = self.optimizer_settings(cfg.learning_rate)
        stats: dict[str, Any] = {
            "trainable_parameters": {
                k: sum(p.numel() for p in v) for k, v in self.parameter_groups().items()
            }
        }

        def only(dim: str) -> Callable[[], None]:
            return lambda: transformer.set_adapters([self.adapter_names[dim]], [1.0])

        stages = [
            self.dimension_stage(data, dim, list(params[dim].values()), settings, setup=only(dim))
            for dim in DIMENSIONS
        ]
        transformer.train()
        try:
            stats |= self.run_stages(stages, step_callback=step_callback)
        finally:
            transformer.eval()
        return stats

    # ---- generation -----------------------------------------------------------------------
    def generate(self, prompts: Sequence[str], seed: int) -> list[np.ndarray]:
        """One video per prompt with the two LoRAs fused as ``fusion`` says."""
        if not self._trained:
            raise ConfigError(
                "lora: nothing learned yet; call train(case) or load(dir) before generate()"
            )
        self.fuse()
        texts = [apply_placeholder(p, self.config.placeholder) for p in prompts]
        with torch.no_grad():
            return self.backbone.sample(texts, seed)

    # ---- variant --------------------------------------------------------------------------
    def resolved_options(self) -> dict[str, Any]:
        """``fusion_weights`` as used: unset, the fusion's own."""
        return {"fusion_weights": list(self.config.resolved_fusion_weights)}

    def reference_config(self) -> dict[str, Any]:
        """The defaults, with the fusion weights of *this* fusion: they are part of how a
        fusion is defined, so ``lora[fusion=delta_sum]`` (at 1, 1) names no weights and only
        weights other than the fusion's own appear in a key."""
        own = FUSION_WEIGHTS[self.config.fusion]
        return {**LoRAConfig().to_dict(), "fusion_weights": list(own)}

    # ---- state ----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, torch.Tensor]:
        """``identity.<peft key>`` and ``motion.<peft key>``, e.g.
        ``identity.transformer_blocks.0.attn1.to_q.lora_A.weight`` (fp32)."""
        return {
            k: p.detach().cpu()
            for params in self._adapter_parameters().values()
            for k, p in params.items()
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Copy a :meth:`state_dict` in after checking names, shapes and values (nothing changes
        on a mismatch: :class:`WeightsError` naming the tensors)."""
        targets = {
            k: p for params in self._adapter_parameters().values() for k, p in params.items()
        }
        check_state("lora", state, {k: tuple(p.shape) for k, p in targets.items()})
        with torch.no_grad():
            for key, param in targets.items():
                param.copy_(state[key].to(device=param.device, dtype=param.dtype))
        self._trained = True
