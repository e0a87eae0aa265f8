"""``dreamvideo``: DreamVideo's separately trained identity and motion adapters, on the DiT.

DreamVideo (Wei et al., CVPR 2024; code: ali-vilab/VGen, ``configs/dreamvideo``) learns a
subject and a motion apart and composes them at inference:

1. subject learning, step 1 -- textual inversion: an embedding for the placeholder ``*``,
   initialised from the class word, trained on the subject's images (VGen:
   ``subjectLearning_step1``, 3,000 steps, lr 1e-4);
2. subject learning, step 2 -- the *identity adapter*, with the learned token frozen
   (``subjectLearning_step2``, lr 1e-5; DualReal's supplement: 500 steps, as VGen's joint
   inference configs load ``identity_adapter_index: 500``);
3. motion learning -- the *motion adapter*, trained on the clips and conditioned on the image
   embedding of a random frame of the clip ("appearance guidance", so that the adapter does
   not absorb the clips' appearance); the caption is replaced by the empty prompt with
   probability 0.5 (DualReal's supplement: 600 steps, batch 2, lr 1e-5, as VGen's
   ``playingGuitar_motionLearning.yaml``: p_zero 0.5, p_image_zero 0; VGen's
   ``motion_adapter_index: 600``);
4. inference: both adapters active, the motion adapter conditioned on the embedding of the
   subject's (first) image.

Both adapters are :class:`~dualreal_bench.methods._common.adapters.BottleneckAdapter` s
(down-projection, GELU, zero-initialised up-projection; the motion one with DreamVideo's
condition projection ``x + W_cond(c)``), shared with DualReal, as is the image encoder
(OpenCLIP ViT-H-14, 1,024-d, the encoder VGen's ``FrozenOpenCLIPCustomEmbedder`` loads too).

Where the adapters attach on the DiT, and why, is :mod:`.model`'s docstring.

Prompts: the benchmark's ``"<class> *"`` is fed with ``*`` replaced by the learned token
embedding, in training captions ("a toy *") and at generation, as DreamVideo's placeholder
strings work. With ``textual_inversion=false`` no token is learned and ``*`` stays a plain
text token (DreamBooth's identifier).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from dualreal_bench.errors import ConfigError
from dualreal_bench.method import MemoryStage

from .._common.data import TrainingData
from .._common.hooks import adapter_device
from .._common.image_encoder import ImageEncoder, condition_encoder
from .._common.loop import LossFn, Stage, check_state
from .._common.memory import checkpointed
from .._common.staged import StagedMethod
from .._common.step import draw_batch
from .config import DreamVideoConfig, StagePlan
from .layers import PlaceholderToken, text_encoder_layers
from .model import DreamVideoModel
from .training import motion_loss, start_token, token_loss

if TYPE_CHECKING:
    from dualreal_bench.backbone import Backbone

logger = logging.getLogger(__name__)

__all__ = ["DreamVideoMethod"]

TOKEN_KEY = "text.placeholder_embedding"
REFERENCE_KEY = "condition.reference_embedding"
ADAPTER_PREFIX = "adapters."
#: the three stages, in order (stage k draws from seed + 1000 k)
STAGES = ("textual_inversion", "identity", "motion")


class DreamVideoMethod(StagedMethod):
    """DreamVideo's identity (with textual inversion) and motion adapters, trained apart and
    combined at inference, hooked into the shared transformer.

    Args:
        backbone: the shared backbone (its weights stay frozen and untouched).
        config: a :class:`DreamVideoConfig`.
        image_encoder: the encoder of the motion condition (``embed_dim``, ``__call__(images)``);
            default: resolved from ``config.image_encoder`` when :meth:`train` needs it.
        zero_init_up: zero-initialise the adapters' up-projections (tests switch it off).
    """

    name = "dreamvideo"
    config_class = DreamVideoConfig

    def __init__(
        self,
        backbone: Backbone,
        config: DreamVideoConfig | None = None,
        *,
        image_encoder: ImageEncoder | None = None,
        zero_init_up: bool = True,
    ) -> None:
        super().__init__(backbone, config)
        self.config: DreamVideoConfig
        transformer = backbone.transformer
        self.model = DreamVideoModel.for_transformer(
            transformer, self.config, adapter_device(backbone), zero_init_up=zero_init_up
        )
        self.token: PlaceholderToken | None = None
        if self.config.textual_inversion and getattr(backbone, "text_encoder", None) is not None:
            self.token = PlaceholderToken(
                backbone.tokenizer, backbone.text_encoder, device=adapter_device(backbone)
            )
        self.reference_embedding: torch.Tensor | None = None  # (1, cond_dim)
        self.image_encoder = image_encoder
        self._own_encoder = False  # True once condition_encoder() loaded one itself
        self.model.attach(transformer)
        self._trained = False

    # ---- components -----------------------------------------------------------------------
    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        groups = {
            "identity adapters": self.model.identity_parameters(),
            "motion adapters": self.model.motion_parameters(),
        }
        if self.token is not None:
            groups["placeholder token"] = [self.token.embedding]
        return groups

    @contextlib.contextmanager
    def inspection_context(self, batch_size: int) -> Iterator[None]:
        """A motion step's forward for shape-only inspection: the conditioned motion adapters."""
        device = next(self.model.parameters()).device
        self.model.weights = (None, 1.0)
        self.model.condition = torch.zeros(batch_size, self.config.cond_dim, device=device)
        try:
            yield
        finally:
            self.model.weights = (None, None)
            self.model.condition = None

    def condition_encoder(self) -> ImageEncoder:
        """The injected encoder, else the one ``config.image_encoder`` names (loaded once, and
        freed by :meth:`release_encoders` once the clips are encoded)."""
        if self.image_encoder is None:
            self.image_encoder = condition_encoder(self.config, self.backbone)
            self._own_encoder = True
        return self.image_encoder

    def release_encoders(self) -> None:
        """Free the condition encoder this method loaded (an injected one is the caller's)."""
        if getattr(self, "_own_encoder", False):
            self.image_encoder = None
            self._own_encoder = False

    def planned_train_steps(self) -> int:
        """The schedule's steps (:meth:`DreamVideoConfig.schedule`: textual inversion counts
        only when a token is learned)."""
        return sum(p.steps for p in self.config.schedule())

    def memory_stages(self) -> list[MemoryStage]:
        """Textual inversion (the token, through the text encoder, on images), the identity
        adapter (images), the motion adapter (clips, conditioned)."""
        cfg, model = self.config, self.model

        def weights(w: tuple) -> Callable[[int], contextlib.AbstractContextManager[None]]:
            @contextlib.contextmanager
            def context(batch_size: int) -> Iterator[None]:
                model.weights = w
                try:
                    yield
                finally:
                    model.weights = (None, None)

            return context

        stages = []
        if cfg.textual_inversion:  # (a meta backbone has no text encoder, hence no token)
            stages.append(
                MemoryStage(
                    "textual_inversion",
                    [self.token.embedding] if self.token is not None else [],
                    cfg.identity_batch_size,
                    1,
                    weights((None, None)),
                    text_encoder=True,
                )
            )
        stages.append(
            self.dimension_memory_stage(
                "identity", model.identity_parameters(), weights((1.0, None))
            )
        )
        stages.append(
            self.dimension_memory_stage(
                "motion", model.motion_parameters(), self.inspection_context
            )
        )
        return stages

    def teardown(self) -> None:
        """Remove the hooks: the backbone computes as if DreamVideo had never been attached."""
        self.model.detach()

    def _encode(self, prompts: Sequence[str], *, grad: bool = False) -> torch.Tensor:
        if self.token is None:
            return self.backbone.encode_prompts(list(prompts))
        return self.token.encode(self.backbone, prompts, grad=grad)

    # ---- training -------------------------------------------------------------------------
    # train(case) = prepare(case) + fit(data) (StagedMethod): textual inversion, the identity
    # adapter, then the motion adapter (see the module doc)

    def fit(
        self,
        data: TrainingData,
        *,
        initializer_word: str | None = None,
        step_callback: Callable[[str, int], None] | None = None,
    ) -> dict[str, Any]:
        """The three stages on encoded data (``train`` = encode the case + ``fit``).

        ``initializer_word``: the word the token starts from; default ``config.initializer_word``,
        else the subject's class noun (``data.class_noun``).
        """
        cfg = self.config
        plan = {p.name: p for p in cfg.schedule(textual_inversion=self.token is not None)}
        steps = {name: p.steps for name, p in plan.items()}
        if steps["motion"] and data.motion_conditions is None:
            raise ConfigError(
                "dreamvideo: the motion adapter needs the clips' image embeddings (no image encoder)"
            )
        if data.reference_embedding is not None:
            self.reference_embedding = data.reference_embedding.detach().float().cpu()
        if self.token is not None:
            word = initializer_word or cfg.initializer_word or data.class_noun
            start_token(self.backbone, self.token, data, steps, word)
        stats: dict[str, Any] = {
            "trainable_parameters": {
                k: sum(p.numel() for p in v) for k, v in self.parameter_groups().items()
            }
        }
        builders = self._stage_builders(data, plan)
        holds = contextlib.ExitStack()  # the text encoder stays on the device for textual inversion

        def on_stage(name: str, event: str) -> None:
            if name == "textual_inversion" and steps[name]:
                if event == "start":
                    holds.enter_context(self.backbone.on_device("text_encoder"))
                    if self.memory_settings().gradient_checkpointing:
                        holds.enter_context(checkpointed(text_encoder_layers(self.backbone)))
                else:
                    holds.close()

        self.model.train()
        try:
            with holds:
                stats |= self.run_stages(
                    [builders[name] for name in STAGES],
                    step_callback=step_callback,
                    stage_callback=on_stage,
                )
        finally:
            self.model.weights = (None, None)
            self.model.condition = None
            self.model.eval()
        return stats

    def _stage_builders(
        self, data: TrainingData, plan: dict[str, StagePlan]
    ) -> dict[str, Callable[[], Stage]]:
        """Each stage, built when it starts, as ``plan`` (:meth:`DreamVideoConfig.schedule`)
        says: textual inversion (adapters off), the identity adapter (captioned with the token
        as learned), the motion adapter (conditioned)."""
        cfg, model, token = self.config, self.model, self.token
        warmup = cfg.scaled(cfg.lr_warmup_steps)
        steps = {name: p.steps for name, p in plan.items()}

        micro = self.memory_settings().micro_batch

        def stage(name: str, params: list, latents: list, fn: LossFn) -> Stage:
            p = plan[name]
            settings = self.optimizer_settings(p.learning_rate)
            return Stage(
                name,
                p.steps,
                params,
                latents,
                p.batch_size,
                fn,
                settings,
                min(warmup, p.steps),
                micro,
            )

        def textual_inversion() -> Stage:
            model.weights = (None, None)
            params = [token.embedding] if token else []
            loss = token_loss(self.backbone, token, data)
            return stage("textual_inversion", params, data.identity_latents, loss)

        def identity() -> Stage:
            model.weights = (1.0, None)
            with torch.no_grad():  # the caption with the learned token; without one, as prepared
                embeds = (
                    self._encode([data.identity_prompt]) if token else data.identity_prompt_embeds
                )
            return stage(
                "identity",
                model.identity_parameters(),
                data.identity_latents,
                lambda idx, latents, gen: draw_batch(self.backbone, latents, embeds, gen),
            )

        def motion() -> Stage:
            model.weights = (None, 1.0)
            return stage(
                "motion",
                model.motion_parameters(),
                data.motion_latents,
                motion_loss(cfg, self.backbone, model, data, steps),
            )

        return {"textual_inversion": textual_inversion, "identity": identity, "motion": motion}

    # ---- generation -----------------------------------------------------------------------
    def generate(self, prompts: Sequence[str], seed: int) -> list[np.ndarray]:
        """Both adapters at ``fusion_weights``; the motion adapter conditioned on the subject's
        first image (both guidance branches); ``*`` is the learned token."""
        if not self._trained or self.reference_embedding is None:
            raise ConfigError(
                "dreamvideo: nothing learned yet; call train(case) or load(dir) before generate()"
            )
        self.model.weights = tuple(float(w) for w in self.config.fusion_weights)
        self.model.condition = self.reference_embedding.to(self.backbone.device)
        try:
            with torch.no_grad():
                embeds = self._encode(list(prompts))
                return self.backbone.sample(list(prompts), seed, prompt_embeds=embeds)
        finally:
            self.model.weights = (None, None)
            self.model.condition = None

    # ---- state ----------------------------------------------------------------------------
    def _expected_shapes(self) -> dict[str, tuple[int, ...]]:
        shapes = {ADAPTER_PREFIX + k: tuple(v.shape) for k, v in self.model.state_dict().items()}
        if self.token is not None:
            shapes[TOKEN_KEY] = tuple(self.token.embedding.shape)
        shapes[REFERENCE_KEY] = (1, self.config.cond_dim)
        return shapes

    def state_dict(self) -> dict[str, torch.Tensor]:
        """``adapters.blocks.<i>.<identity_attn|motion_attn|motion_ff>.<down|up|cond>.*``, the
        learned token (``text.placeholder_embedding``) and the generation condition."""
        state = {ADAPTER_PREFIX + k: v.detach().cpu() for k, v in self.model.state_dict().items()}
        if self.token is not None:
            state[TOKEN_KEY] = self.token.embedding.detach().cpu()
        if self.reference_embedding is not None:
            state[REFERENCE_KEY] = self.reference_embedding.detach().cpu()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Load a :meth:`state_dict` after checking names, shapes and values (nothing changes
        on a mismatch: :class:`WeightsError`)."""
        check_state("dreamvideo", state, self._expected_shapes())
        n = len(ADAPTER_PREFIX)
        self.model.load_state_dict(
            {k[n:]: v for k, v in state.items() if k.startswith(ADAPTER_PREFIX)}, strict=True
        )
        if self.token is not None:
            with torch.no_grad():
                self.token.embedding.copy_(state[TOKEN_KEY])
        self.reference_embedding = state[REFERENCE_KEY].detach().float().cpu().clone()
        self._trained = True
