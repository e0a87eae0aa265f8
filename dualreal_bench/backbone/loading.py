"""Building the backbone's components: random tiny ones, or published weights found offline.

Nothing here downloads. A real profile's weights come from ``model_path`` (a local
diffusers-layout directory) or from the Hugging Face cache (``HF_HOME``) under the profile's
repo id; when they are not there the error names what was looked for and how to get it.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from pathlib import Path
from typing import Any

import torch

from ..errors import WeightsError
from ..weights import WEIGHTS, find_weights
from .config import BackboneConfig
from .profiles import ARCHITECTURE_KEYS, TINY_TEXT_ENCODER, TINY_VAE, Profile

logger = logging.getLogger(__name__)

#: sub-folders of a diffusers CogVideoX directory and the file each must hold
SUBFOLDERS: dict[str, str] = {
    "transformer": "config.json",
    "vae": "config.json",
    "text_encoder": "config.json",
    "tokenizer": "",  # spiece.model or tokenizer.json, whichever the export wrote
    "scheduler": "scheduler_config.json",
}

_REPO_ID_RE = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclasses.dataclass
class Components:
    """The five parts of a CogVideoX text-to-video model."""

    transformer: Any  # diffusers.CogVideoXTransformer3DModel
    vae: Any  # diffusers.AutoencoderKLCogVideoX
    text_encoder: Any  # transformers.T5EncoderModel
    tokenizer: Any  # a T5 (real) or ByT5 (tiny) tokenizer
    scheduler: Any  # diffusers.CogVideoXDDIMScheduler, the training noise schedule
    model_dir: Path | None = None  # where the weights came from (None: random init)


def build_tiny(config: BackboneConfig, profile: Profile) -> Components:
    """Random-initialised components of ``profile`` (tiny), identical for a given ``config.seed``.

    Each component is seeded on its own inside a forked RNG, so building one never moves the
    caller's global random state and two builds give the same weights.
    """
    from diffusers import (
        AutoencoderKLCogVideoX,
        CogVideoXDDIMScheduler,
        CogVideoXTransformer3DModel,
    )
    from transformers import ByT5Tokenizer, T5Config, T5EncoderModel

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        transformer = CogVideoXTransformer3DModel(**profile.transformer)
        torch.manual_seed(config.seed)
        vae = AutoencoderKLCogVideoX(**TINY_VAE)
        torch.manual_seed(config.seed)
        text_encoder = T5EncoderModel(T5Config(**TINY_TEXT_ENCODER))
    tokenizer = ByT5Tokenizer()
    scheduler = CogVideoXDDIMScheduler(**profile.scheduler)
    return Components(transformer, vae, text_encoder, tokenizer, scheduler, None)


def resolve_model_dir(config: BackboneConfig, profile: Profile) -> Path:
    """The local directory holding ``profile``'s weights, without touching the network.

    ``config.model_path`` may be a directory or a repo id (``owner/name``) looked up in the
    Hugging Face cache; by default the profile's repo id is looked up there
    (:func:`dualreal_bench.weights.find_weights`, the profile's entry of the weights table).
    """
    if profile.weights is None:  # pragma: no cover - real profiles all have weights
        raise WeightsError(f"profile {profile.name!r} has no weights to load")
    spec = config.model_path
    if spec and (Path(spec).expanduser().exists() or not _REPO_ID_RE.match(spec)):
        model_dir = find_weights(profile.weights, path=spec)
    else:
        model_dir = find_weights(profile.weights, hf_repo=spec or None)
    return check_layout(model_dir, profile)


def _how_to_get(profile: Profile) -> str:
    return WEIGHTS[profile.weights].how_to_get() if profile.weights else ""


def check_layout(model_dir: Path, profile: Profile) -> Path:
    """Fail with one line naming the first missing sub-folder or file of ``model_dir``."""
    for sub, filename in SUBFOLDERS.items():
        folder = model_dir / sub
        if not folder.is_dir():
            raise WeightsError(
                f"{model_dir}: missing {sub}/ (a diffusers CogVideoX directory has "
                f"{', '.join(s + '/' for s in SUBFOLDERS)}); {_how_to_get(profile)}"
            )
        if filename and not (folder / filename).is_file():
            raise WeightsError(f"{folder}: missing {filename}; {_how_to_get(profile)}")
    return model_dir


def load_pretrained(model_dir: Path, torch_dtype: torch.dtype) -> Components:
    """Load the five components of a diffusers-layout directory, offline, in ``torch_dtype``."""
    from diffusers import (
        AutoencoderKLCogVideoX,
        CogVideoXDDIMScheduler,
        CogVideoXTransformer3DModel,
    )
    from transformers import AutoTokenizer, T5EncoderModel

    def load(what: str, fn: Any) -> Any:
        try:
            return fn()
        except OSError as exc:  # HF raises OSError/EnvironmentError for missing/corrupt files
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise WeightsError(f"{model_dir / what}: cannot load: {first}") from exc

    logger.info("loading CogVideoX components from %s (%s)", model_dir, torch_dtype)
    transformer = load(
        "transformer",
        lambda: CogVideoXTransformer3DModel.from_pretrained(
            model_dir, subfolder="transformer", torch_dtype=torch_dtype, local_files_only=True
        ),
    )
    vae = load(
        "vae",
        lambda: AutoencoderKLCogVideoX.from_pretrained(
            model_dir, subfolder="vae", torch_dtype=torch_dtype, local_files_only=True
        ),
    )
    text_encoder = load(
        "text_encoder",
        lambda: T5EncoderModel.from_pretrained(
            model_dir, subfolder="text_encoder", dtype=torch_dtype, local_files_only=True
        ),
    )
    tokenizer = load(
        "tokenizer",
        lambda: AutoTokenizer.from_pretrained(
            model_dir, subfolder="tokenizer", local_files_only=True
        ),
    )
    scheduler = load(
        "scheduler",
        lambda: CogVideoXDDIMScheduler.from_pretrained(
            model_dir, subfolder="scheduler", local_files_only=True
        ),
    )
    return Components(transformer, vae, text_encoder, tokenizer, scheduler, model_dir)


def read_transformer_config(model_dir: Path) -> dict[str, Any]:
    """``transformer/config.json`` of a diffusers directory (read before any weights load)."""
    path = model_dir / "transformer" / "config.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WeightsError(f"{path}: cannot read: {exc}") from None


def check_architecture(transformer_config: Any, profile: Profile, where: Path | str) -> None:
    """The transformer must be the profile's architecture (e.g. no 2B under ``cogvideox-5b``)."""
    diffs = [
        f"{key}={transformer_config.get(key)!r} (expected {profile.transformer[key]!r})"
        for key in ARCHITECTURE_KEYS
        if transformer_config.get(key) != profile.transformer[key]
    ]
    if transformer_config.get("patch_size_t") is not None:
        diffs.append(
            f"patch_size_t={transformer_config.get('patch_size_t')!r} (CogVideoX 1.5, expected None)"
        )
    if diffs:
        raise WeightsError(f"{where}: the transformer is not {profile.name}: {'; '.join(diffs)}")
