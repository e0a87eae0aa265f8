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
   not absorb the clips' appearance); the image embedding and the caption are each zeroed
   with probability 0.5 (``motionLearning``: p_image_zero 0.5, p_zero 0.5, lr 4e-5; DualReal's
   supplement: 600 steps, VGen: ``motion_adapter_index: 600``);
4. inference: both adapters active, the motion adapter conditioned on the embedding of the
   subject's (first) image.

Both adapters are :class:`~dualreal_bench.methods.adapters_common.BottleneckAdapter` s
(down-projection, GELU, zero-initialised up-projection; the motion one with DreamVideo's
condition projection ``x + W_cond(c)``), shared with DualReal; the image encoder is DualReal's
(OpenCLIP ViT-H-14, 1,024-d, the encoder VGen's ``FrozenOpenCLIPCustomEmbedder`` loads too).

From the UNet to the DiT (where the adapters attach and why). DreamVideo's UNet has spatial
transformers (self-attention, cross-attention to the text, feed-forward) and temporal
transformers (self-attention over frames, "cross-attention", feed-forward). It adds the
identity adapter *in parallel* to the spatial cross-attention (``spatial_adapter_list:
['cross_attention']``, position ``parallel``) and the motion adapter in parallel to the
temporal transformer's self-attention, cross-attention and feed-forward
(``temporal_adapter_list``). A CogVideoX block has neither split: one full 3D attention over
``[text; video]`` tokens does the job of the spatial self-attention, the cross-attention to
the text and the temporal attention at once, followed by one feed-forward. So here:

* the identity adapter runs in parallel to each block's attention (``attn1``), the place
  where the text conditions the video tokens; it is "spatial" by its data (1-frame videos)
  and because a bottleneck adapter is per token;
* the motion adapter runs in parallel to each block's attention and to its feed-forward
  (the temporal transformer's attention places and its feed-forward);
* the adapters act on the video tokens only (the UNet's adapters see only video features;
  the text tokens of CogVideoX pass unchanged); the adapter outputs are added to the branch
  output before the block's gate, as DualReal's are.

"In parallel" means ``block branch + W_up GELU(W_down x)``: DreamVideo's adapter formula
``h + W_up GELU(W_down h)`` has its ``+ h`` in the block's own residual connection, so the
adapters have no skip of their own (``adapter_skip=false``) and an untrained DreamVideo is
exactly the base model.

Prompts: the benchmark's ``"<class> *"`` is fed with ``*`` replaced by the learned token
embedding, in training captions ("a toy *") and at generation, as DreamVideo's placeholder
strings work. With ``textual_inversion=false`` no token is learned and ``*`` stays a plain
text token (DreamBooth's identifier).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch
from torch import nn

from dualreal_bench.errors import ConfigError
from dualreal_bench.method import Method, MethodConfig
from dualreal_bench.spec import PLACEHOLDER

from ._training_common import (
    OptimizerSettings,
    Stage,
    TrainingData,
    check_common,
    check_state,
    prepare_case_data,
    run_stage,
    scaled_steps,
)
from .adapters_common import BottleneckAdapter, mix_adapters
from .dualreal.model import transformer_dims

if TYPE_CHECKING:
    from dualreal_bench.backbone import Backbone
    from dualreal_bench.spec import Case

logger = logging.getLogger(__name__)

__all__ = ["DreamVideoConfig", "DreamVideoMethod", "DreamVideoModel", "PlaceholderToken"]

TOKEN_KEY = "text.placeholder_embedding"
REFERENCE_KEY = "condition.reference_embedding"
ADAPTER_PREFIX = "adapters."


@dataclasses.dataclass
class DreamVideoConfig(MethodConfig):
    """Options of :class:`DreamVideoMethod`.

    Sources: DualReal's supplement (the schedules it ran DreamVideo with: identity 3,000 +
    500 steps, motion 600) and DreamVideo's released configs (ali-vilab/VGen
    ``configs/dreamvideo/{subjectLearning,motionLearning,infer}/*.yaml``) for the rest.
    """

    # ---- adapters ---------------------------------------------------------------------------
    #: bottleneck width of both adapters (64, as DualReal's adapters built after DreamVideo's)
    adapter_dim: int = 64
    #: a skip of the adapter's own; false: parallel adapters (the "+ h" is the block residual)
    adapter_skip: bool = False
    #: width of the image embedding c (VGen temporal_adapter_condition_dim: 1024, OpenCLIP ViT-H-14)
    cond_dim: int = 1024
    #: lam in x + lam * W_cond(c) (VGen ag_strength, default 1)
    cond_scale: float = 1.0
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
    #: multiplies every schedule (steps and warm-up), to shorten every method proportionally
    steps_scale: float = 1.0
    #: learning rates (VGen: step1 lr 1e-4, step2 lr 1e-5, motionLearning lr 4e-5)
    textual_inversion_lr: float = 1e-4
    identity_lr: float = 1e-5
    motion_lr: float = 4e-5
    #: linear warm-up steps per stage (VGen: none)
    lr_warmup_steps: int = 0
    #: schedule after warm-up (VGen decay_mode 'none': constant)
    lr_scheduler: Literal["constant", "cosine"] = "constant"
    #: images per subject step (VGen batch_sizes {"1": 4}) and clips per motion step ({"32": 1})
    identity_batch_size: int = 4
    motion_batch_size: int = 1
    #: probability of zeroing a motion step's image embedding (VGen motionLearning p_image_zero 0.5)
    p_image_zero: float = 0.5
    #: probability of replacing a motion step's caption by the empty prompt (VGen p_zero 0.5)
    p_text_zero: float = 0.5
    #: AdamW, as the other baselines (betas 0.9/0.95, weight decay 1e-4, eps 1e-8)
    adam_betas: tuple[float, float] = (0.9, 0.95)
    adam_weight_decay: float = 1e-4
    adam_epsilon: float = 1e-8
    #: "auto": bitsandbytes AdamW8bit on CUDA when installed, else torch AdamW
    optimizer: Literal["auto", "adamw", "adamw8bit"] = "auto"
    #: gradient-norm clipping
    max_grad_norm: float = 1.0

    # ---- prompts and the image condition -----------------------------------------------------
    #: caption of subject steps ({class_noun}); "*" is the learned token
    identity_prompt: str = "a {class_noun} *"
    #: caption of motion steps when the motion has no prompts.txt ({action})
    motion_prompt: str = "a person is {action}"
    #: the word the token starts from; empty = the identity's class noun (VGen initializer_words)
    initializer_word: str = ""
    #: image encoder for c: "auto" (tiny on the tiny profile, else ViT-H-14), "tiny" or "ViT-H-14"
    image_encoder: Literal["auto", "tiny", "ViT-H-14"] = "auto"
    #: local open_clip checkpoint; empty = the Hugging Face cache (never downloaded)
    image_encoder_path: str = ""

    def validate(self) -> None:
        check_common(
            "dreamvideo", self, ("textual_inversion_steps", "identity_steps", "motion_steps")
        )
        for name in ("adapter_dim", "cond_dim"):
            if getattr(self, name) < 1:
                raise ConfigError(f"dreamvideo: {name} must be >= 1, got {getattr(self, name)}")
        for name in ("textual_inversion_lr", "identity_lr", "motion_lr"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"dreamvideo: {name} must be > 0, got {getattr(self, name)}")
        for name in ("p_image_zero", "p_text_zero"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(
                    f"dreamvideo: {name} must be in [0, 1], got {getattr(self, name)}"
                )
        if len(self.fusion_weights) != 2:
            raise ConfigError(
                f"dreamvideo: fusion_weights must be two numbers (w_id, w_m), got {self.fusion_weights}"
            )
        if not self.textual_inversion and self.identity_steps == self.motion_steps == 0:
            raise ConfigError(
                "dreamvideo: textual_inversion=false with no adapter steps trains nothing"
            )

    @property
    def placeholder(self) -> str:  # read by check_common: "*" is kept (and learned)
        return "keep"


# ---- the adapters on the DiT -----------------------------------------------------------------
class DreamVideoBlock(nn.Module):
    """The adapters of one CogVideoX block: identity at the attention, motion at attention and FF."""

    def __init__(self, dim: int, hidden_dim: int, cond_dim: int, **kwargs: Any) -> None:
        super().__init__()
        self.identity_attn = BottleneckAdapter(dim, hidden_dim, None, **kwargs)
        self.motion_attn = BottleneckAdapter(dim, hidden_dim, cond_dim, **kwargs)
        self.motion_ff = BottleneckAdapter(dim, hidden_dim, cond_dim, **kwargs)


class DreamVideoModel(nn.Module):
    """DreamVideo's adapters for one transformer and the forward hooks that run them.

    Runtime controls (set by the method, read by the hooks):
        ``weights``: ``(w_id, w_m)``; ``None`` switches an adapter off (it does not run);
        ``condition``: ``(B_c, cond_dim)`` image embedding for the motion adapters, or ``None``.
    """

    def __init__(
        self,
        num_blocks: int,
        dim: int,
        config: DreamVideoConfig,
        *,
        zero_init_up: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = torch.float32,
    ) -> None:
        super().__init__()
        self.config = config
        self.num_blocks, self.dim = num_blocks, dim
        kw = {
            "skip": config.adapter_skip,
            "zero_init_up": zero_init_up,
            "device": device,
            "dtype": dtype,
        }
        self.blocks = nn.ModuleList(
            DreamVideoBlock(dim, config.adapter_dim, config.cond_dim, **kw)
            for _ in range(num_blocks)
        )
        self.weights: tuple[float | None, float | None] = (None, None)
        self.condition: torch.Tensor | None = None
        self._handles: list[Any] = []
        self._text_len: dict[int, int] = {}

    def identity_parameters(self) -> list[nn.Parameter]:
        return [p for b in self.blocks for p in b.identity_attn.parameters()]

    def motion_parameters(self) -> list[nn.Parameter]:
        return [
            p for b in self.blocks for m in (b.motion_attn, b.motion_ff) for p in m.parameters()
        ]

    @property
    def attached(self) -> bool:
        return bool(self._handles)

    def attach(self, transformer: nn.Module) -> None:
        """Hook every block's ``attn1`` and ``ff`` of a ``CogVideoXTransformer3DModel``."""
        if self.attached:
            raise RuntimeError("DreamVideoModel is already attached; detach() first")
        dims = transformer_dims(transformer)
        if (dims["num_blocks"], dims["dim"]) != (self.num_blocks, self.dim):
            raise ConfigError(
                f"dreamvideo: adapters for {self.num_blocks} blocks of width {self.dim} cannot attach "
                f"to a transformer with {dims['num_blocks']} blocks of width {dims['dim']}"
            )
        for i, block in enumerate(transformer.transformer_blocks):
            self._handles.append(
                block.attn1.register_forward_hook(
                    functools.partial(self._on_attention, i), with_kwargs=True
                )
            )
            self._handles.append(
                block.ff.register_forward_hook(functools.partial(self._on_feed_forward, i))
            )

    def detach(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []
        self._text_len = {}

    def _on_attention(
        self, index: int, module: nn.Module, args: Any, kwargs: dict, output: Any
    ) -> Any:
        encoder = kwargs.get("encoder_hidden_states")
        if encoder is None and len(args) > 1:
            encoder = args[1]
        self._text_len[index] = int(encoder.shape[1])
        w_id, w_m = self.weights
        if w_id is None and w_m is None:
            return None
        hidden = (
            kwargs["hidden_states"] if "hidden_states" in kwargs else args[0]
        )  # (B, N, D) video tokens
        block = self.blocks[index]
        adapters, ws, conds = [], [], []
        if w_id is not None:
            adapters.append(block.identity_attn)
            ws.append(w_id)
            conds.append(None)
        if w_m is not None:
            adapters.append(block.motion_attn)
            ws.append(w_m)
            conds.append(self.condition)
        attn_hidden, attn_encoder = output
        delta = mix_adapters(hidden, adapters, ws, conds, self.config.cond_scale)
        return attn_hidden + delta, attn_encoder  # text tokens unchanged

    def _on_feed_forward(
        self, index: int, module: nn.Module, args: Any, output: torch.Tensor
    ) -> Any:
        w_m = self.weights[1]
        if w_m is None:
            return None
        text = self._text_len[index]  # the FF input is cat([text, video]) (CogVideoXBlock)
        video = args[0][:, text:]
        delta = mix_adapters(
            video, [self.blocks[index].motion_ff], [w_m], [self.condition], self.config.cond_scale
        )
        return torch.cat([output[:, :text], output[:, text:] + delta], dim=1)


class PlaceholderToken(nn.Module):
    """Textual inversion on CogVideoX's T5: one learned input embedding for the ``*`` token.

    Prompts are tokenised exactly as :meth:`Backbone.encode_prompts` does; wherever the
    placeholder's token id occurs, its input embedding is replaced by ``embedding`` before
    the (frozen) encoder runs, so gradients reach ``embedding`` alone.
    """

    def __init__(
        self, tokenizer: Any, text_encoder: nn.Module, placeholder: str = PLACEHOLDER
    ) -> None:
        super().__init__()
        ids = [
            i
            for i in tokenizer(placeholder, add_special_tokens=False).input_ids
            if tokenizer.decode([i]).strip()  # drop a lone word-start piece ("▁")
        ]
        if len(ids) != 1:
            raise ConfigError(
                f"dreamvideo: the tokenizer splits the placeholder {placeholder!r} into {len(ids)} tokens; "
                "textual inversion needs exactly one (set textual_inversion=false)"
            )
        self.token_id = ids[0]
        self.placeholder = placeholder
        width = text_encoder.get_input_embeddings().weight.shape[1]
        device = text_encoder.get_input_embeddings().weight.device
        self.embedding = nn.Parameter(
            torch.zeros(width, dtype=torch.float32, device=device), requires_grad=False
        )

    def initialise(self, tokenizer: Any, text_encoder: nn.Module, word: str) -> None:
        """Start from the (mean) input embedding of ``word``'s tokens (VGen initializer_words)."""
        ids = tokenizer(word, add_special_tokens=False).input_ids
        if not ids:
            raise ConfigError(f"dreamvideo: initializer word {word!r} has no tokens")
        table = text_encoder.get_input_embeddings().weight
        with torch.no_grad():
            self.embedding.copy_(table[torch.tensor(ids, device=table.device)].float().mean(0))

    def encode(
        self, backbone: Backbone, prompts: Sequence[str], *, grad: bool = False
    ) -> torch.Tensor:
        """``(B, max_sequence_length, D)`` T5 states, ``*`` replaced by the learned embedding."""
        ids = backbone.tokenizer(
            list(prompts),
            padding="max_length",
            max_length=backbone.config.max_sequence_length,
            truncation=True,
            add_special_tokens=True,
            return_tensors="pt",
        ).input_ids.to(backbone.device)
        encoder = backbone.text_encoder
        with torch.set_grad_enabled(grad):
            inputs = encoder.get_input_embeddings()(ids)  # (B, L, D)
            mask = (ids == self.token_id).unsqueeze(-1)
            inputs = torch.where(mask, self.embedding.to(inputs.dtype), inputs)
            states = encoder(inputs_embeds=inputs)[0]
        return states.to(dtype=backbone.dtype, device=backbone.device)

    def occurs_in(self, tokenizer: Any, prompt: str) -> bool:
        return self.token_id in tokenizer(prompt, add_special_tokens=True).input_ids


# ---- the method --------------------------------------------------------------------------------
class DreamVideoMethod(Method):
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
        image_encoder: Any = None,
        zero_init_up: bool = True,
    ) -> None:
        super().__init__(backbone, config)
        self.config: DreamVideoConfig
        transformer = backbone.transformer
        param_device = next(transformer.parameters()).device
        device = param_device if param_device.type == "meta" else backbone.device
        dims = transformer_dims(transformer)
        if device.type == "meta":  # shapes only (``dualreal-bench inspect``)
            self.model = DreamVideoModel(
                dims["num_blocks"],
                dims["dim"],
                self.config,
                zero_init_up=zero_init_up,
                device=device,
            )
        else:  # initialised on the CPU from config.seed, whatever the global generator's state
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.config.seed)
                self.model = DreamVideoModel(
                    dims["num_blocks"], dims["dim"], self.config, zero_init_up=zero_init_up
                )
            self.model.to(device)
        self.token: PlaceholderToken | None = None
        if self.config.textual_inversion and getattr(backbone, "text_encoder", None) is not None:
            self.token = PlaceholderToken(backbone.tokenizer, backbone.text_encoder)
        self.reference_embedding: torch.Tensor | None = None  # (1, cond_dim)
        self.image_encoder = image_encoder
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

    def _image_encoder(self) -> Any:
        if self.image_encoder is None:
            from .dualreal.image_encoder import load_image_encoder

            self.image_encoder = load_image_encoder(
                self.config.image_encoder,
                profile=self.backbone.config.profile,
                cond_dim=self.config.cond_dim,
                path=self.config.image_encoder_path,
                device=self.backbone.device,
                dtype=self.backbone.dtype,
                seed=self.config.seed,
            )
        return self.image_encoder

    def teardown(self) -> None:
        """Remove the hooks: the backbone computes as if DreamVideo had never been attached."""
        self.model.detach()

    def _encode(self, prompts: Sequence[str], *, grad: bool = False) -> torch.Tensor:
        if self.token is None:
            return self.backbone.encode_prompts(list(prompts))
        return self.token.encode(self.backbone, prompts, grad=grad)

    # ---- training -------------------------------------------------------------------------
    def train(self, case: Case) -> dict[str, Any]:
        """Textual inversion, the identity adapter, then the motion adapter (see the module doc)."""
        if self._trained:
            raise ConfigError("dreamvideo: train() may be called once per method instance")
        cfg = self.config
        data = prepare_case_data(
            self.backbone,
            case,
            identity_prompt=cfg.identity_prompt,
            motion_prompt=cfg.motion_prompt,
            placeholder="keep",
            image_encoder=self._image_encoder(),
            seed=cfg.seed,
        )
        stats = self.fit(data, initializer_word=cfg.initializer_word or case.identity.class_noun)
        stats.update(
            {
                "identity_prompt": data.identity_prompt,
                "motion_prompt": data.motion_prompt,
                "condition_frames": data.condition_frames,
            }
        )
        return stats

    def fit(
        self,
        data: TrainingData,
        *,
        initializer_word: str,
        step_callback: Callable[[str, int], None] | None = None,
    ) -> dict[str, Any]:
        """The three stages on encoded data (``train`` = encode the case + ``fit``)."""
        cfg = self.config
        backbone = self.backbone
        scale = cfg.steps_scale
        warmup = scaled_steps(cfg.lr_warmup_steps, scale)
        steps = {
            "textual_inversion": scaled_steps(cfg.textual_inversion_steps, scale)
            if self.token is not None
            else 0,
            "identity": scaled_steps(cfg.identity_steps, scale),
            "motion": scaled_steps(cfg.motion_steps, scale),
        }
        if steps["motion"] and data.motion_conditions is None:
            raise ConfigError(
                "dreamvideo: the motion adapter needs the clips' image embeddings (no image encoder)"
            )
        if data.reference_embedding is not None:
            self.reference_embedding = data.reference_embedding.detach().float().cpu()
        token = self.token
        if token is not None:
            if steps["textual_inversion"] and not token.occurs_in(
                backbone.tokenizer, data.identity_prompt
            ):
                raise ConfigError(
                    f"dreamvideo: the identity caption {data.identity_prompt!r} has no {token.placeholder!r} "
                    "to learn; put it in identity_prompt or set textual_inversion=false"
                )
            token.initialise(backbone.tokenizer, backbone.text_encoder, initializer_word)
        stats: dict[str, Any] = {
            "trainable_parameters": {
                k: sum(p.numel() for p in v) for k, v in self.parameter_groups().items()
            }
        }
        device = backbone.device

        def ti_loss(idx: list[int], latents: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
            embeds = token.encode(backbone, [data.identity_prompt], grad=True)
            return backbone.training_loss(latents, embeds, generator=gen)

        # the dropped caption of motion steps
        empty = backbone.encode_prompts([""]) if cfg.p_text_zero > 0 and steps["motion"] else None

        def identity_loss(embeds: torch.Tensor):
            return lambda idx, latents, gen: backbone.training_loss(latents, embeds, generator=gen)

        def motion_loss(
            idx: list[int], latents: torch.Tensor, gen: torch.Generator
        ) -> torch.Tensor:
            cond = data.motion_conditions[idx].clone()  # (B, cond_dim), one random frame per clip
            if cfg.p_image_zero > 0:
                cond[torch.rand(len(idx), generator=gen) < cfg.p_image_zero] = 0.0
            self.model.condition = cond.to(device)
            embeds = data.motion_prompt_embeds.expand(len(idx), -1, -1)
            if cfg.p_text_zero > 0:
                drop = (
                    (torch.rand(len(idx), generator=gen) < cfg.p_text_zero)
                    .to(device)
                    .view(-1, 1, 1)
                )
                embeds = torch.where(drop, empty.to(embeds.dtype), embeds)
            return backbone.training_loss(latents, embeds, generator=gen)

        lrs = {
            "textual_inversion": cfg.textual_inversion_lr,
            "identity": cfg.identity_lr,
            "motion": cfg.motion_lr,
        }
        self.model.train()
        try:
            for offset, name in enumerate(("textual_inversion", "identity", "motion")):
                if name == "textual_inversion":
                    self.model.weights = (None, None)
                    params, latents, batch, fn = (
                        ([token.embedding] if token else []),
                        data.identity_latents,
                        cfg.identity_batch_size,
                        ti_loss,
                    )
                elif name == "identity":
                    self.model.weights = (1.0, None)
                    with torch.no_grad():
                        # the caption with the learned token; without one, as prepared
                        embeds = (
                            self._encode([data.identity_prompt])
                            if token is not None
                            else data.identity_prompt_embeds
                        )
                    params, latents, batch, fn = (
                        self.model.identity_parameters(),
                        data.identity_latents,
                        cfg.identity_batch_size,
                        identity_loss(embeds),
                    )
                else:
                    self.model.weights = (None, 1.0)
                    params, latents, batch, fn = (
                        self.model.motion_parameters(),
                        data.motion_latents,
                        cfg.motion_batch_size,
                        motion_loss,
                    )
                stage = Stage(
                    name,
                    steps[name],
                    params,
                    latents,
                    batch,
                    fn,
                    OptimizerSettings.from_config(cfg, lrs[name]),
                    min(warmup, steps[name]),
                )

                def progress(step: int, total: int, info: dict[str, Any], _n: str = name) -> None:
                    self.report_progress(f"train {_n}", step, total, **info)

                result = run_stage(
                    stage,
                    device=device,
                    seed=cfg.seed + 1000 * offset,
                    max_grad_norm=cfg.max_grad_norm,
                    progress=progress,
                    step_callback=step_callback,
                )
                stats[f"{name}_steps"] = result["steps"]
                stats[f"{name}_loss"] = result["loss"]
                stats[f"{name}_seconds"] = result["seconds"]
        finally:
            self.model.weights = (None, None)
            self.model.condition = None
            self.model.eval()
        stats["steps"] = sum(stats[f"{n}_steps"] for n in steps)
        self._trained = True
        return stats

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
