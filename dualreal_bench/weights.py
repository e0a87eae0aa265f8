"""The published weights the benchmark can use, and the one place that finds them on disk.

:data:`WEIGHTS` is the table: for every network, what it is and what uses it, which files
make it, where they are looked for and how to get them. :func:`find_weights` looks, in order,

1. at a location the user gave (``path``): that and nothing else;
2. in a weights directory (``weights_dir``), under each of the entry's ``files`` names;
3. in the entry's fixed ``caches`` (``~/.cache/clip``, ``~/.cache/vbench``, the torch hub's
   ``checkpoints`` folder as ``$TORCH_HUB``);
4. in the Hugging Face hub cache (``$HF_HUB_CACHE``, else ``$HUGGINGFACE_HUB_CACHE``, else
   ``$HF_HOME/hub``, else ``~/.cache/huggingface/hub``; read when called) under the entry's
   repository, at its ``main`` revision.

Nothing is ever downloaded. When nothing is found, :class:`~dualreal_bench.errors.WeightsError`
names the weights, every place looked at and how to get them, on one line.

Adding a network is one :class:`KnownWeights` entry (``register`` it from another module, or
add it to the table here); its users call ``find_weights("<key>", ...)``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from .cache import file_sha256
from .errors import WeightsError
from .registry import unknown_name_error

__all__ = [
    "CLIP_MEAN",
    "CLIP_STD",
    "KnownWeights",
    "WEIGHTS",
    "find_weights",
    "hf_hub_cache",
    "register",
    "weights_identity",
]

#: OpenAI CLIP's pixel normalisation (open_clip's ``OPENAI_DATASET_MEAN/STD``): what OpenAI's
#: ViT-B/32, the laion400m ViT-B-32 and the laion2b ViT-H-14 below were trained with
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass(frozen=True)
class KnownWeights:
    """One network's weights: what they are, where they are looked for, how to get them."""

    #: the table's key (``find_weights(key)``)
    key: str
    #: the network, as messages name it ("OpenCLIP ViT-H-14")
    name: str
    #: what in the benchmark uses it
    used_for: str
    #: ``"file"``: one checkpoint file; ``"directory"``: a folder of files (a Hugging Face
    #: snapshot, a ``save_pretrained`` directory) recognised by one of ``repo_files``
    kind: Literal["file", "directory"] = "file"
    #: names accepted inside a weights directory, first found wins; for ``kind="file"`` also
    #: the names looked for inside a directory the user gives
    files: tuple[str, ...] = ()
    #: other fixed locations (``~`` and ``$TORCH_HUB``, the torch hub's checkpoints, expanded)
    caches: tuple[str, ...] = ()
    #: Hugging Face repository whose cached snapshot holds them
    hf_repo: str | None = None
    #: files of that repository: the checkpoint (``"file"``: the first present) or the files
    #: that mark a complete folder (``"directory"``: any one present, at its top)
    repo_files: tuple[str, ...] = ()
    #: how to point the benchmark at another location (an option of the command line or API)
    option: str = ""
    #: how to get the weights (``{repo}`` stands for the repository looked up)
    hint: str = ""

    def how_to_get(self, repo: str | None = None) -> str:
        return self.hint.replace("{repo}", repo or self.hf_repo or "")


def hf_hub_cache() -> Path:
    """The Hugging Face hub cache, from the environment as it is now (huggingface_hub reads it
    once, at import): ``HF_HUB_CACHE``, ``HUGGINGFACE_HUB_CACHE``, ``HF_HOME/hub``, else
    ``$XDG_CACHE_HOME/huggingface/hub`` (``~/.cache/huggingface/hub``)."""
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(var):
            return Path(os.path.expandvars(os.path.expanduser(os.environ[var])))
    home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"),
        "huggingface",
    )
    return Path(os.path.expandvars(os.path.expanduser(home))) / "hub"


def _torch_hub_checkpoints() -> str:
    import torch  # torch's own rule (TORCH_HOME, XDG_CACHE_HOME, torch.hub.set_dir)

    return str(Path(torch.hub.get_dir()) / "checkpoints")


def _expand(location: str) -> Path:
    if "$TORCH_HUB" in location:
        location = location.replace("$TORCH_HUB", _torch_hub_checkpoints())
    return Path(os.path.expanduser(location))


_OPEN_CLIP_FILES = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")
_METRICS_OPTION = "--weights-dir DIR, or the encoder given as a path ({role}=<path>)"
_COGVIDEOX_HINT = (
    "on a machine with internet run `hf download {repo} --local-dir <dir>` (older "
    "huggingface_hub: `huggingface-cli download`), copy <dir> here and pass model_path=<dir> "
    "(dualreal-bench run --backbone-set model_path=<dir>), or point HF_HOME at a cache that "
    "holds it"
)

#: every network the benchmark knows, by key
WEIGHTS: dict[str, KnownWeights] = {
    w.key: w
    for w in (
        KnownWeights(
            "clip-vit-b-32-openai",
            "OpenAI CLIP ViT-B/32",
            "CLIP-T (metric encoder text_clip)",
            files=("ViT-B-32.pt", "clip-vit-b-32-openai.safetensors", "clip-vit-b-32-openai.bin"),
            caches=("~/.cache/clip/ViT-B-32.pt",),
            hf_repo="timm/vit_base_patch32_clip_224.openai",
            repo_files=_OPEN_CLIP_FILES,
            option=_METRICS_OPTION.format(role="text_clip"),
            hint='on a machine with internet: python -c "import open_clip; open_clip.create_model('
            "'ViT-B-32-quickgelu', pretrained='openai')\" (fills the Hugging Face cache), or "
            "copy OpenAI's ViT-B-32.pt (from `clip.load('ViT-B/32')`, ~/.cache/clip) into the "
            "weights dir",
        ),
        KnownWeights(
            "clip-vit-b-32-laion400m",
            "open_clip ViT-B-32-quickgelu laion400m_e32",
            "CLIP-I and T-Cons (metric encoder image_clip)",
            files=(
                "vit_b_32-quickgelu-laion400m_e32-46683a32.pt",
                "clip-vit-b-32-laion400m_e32.safetensors",
                "clip-vit-b-32-laion400m_e32.bin",
            ),
            hf_repo="timm/vit_base_patch32_clip_224.laion400m_e32",
            repo_files=_OPEN_CLIP_FILES,
            option=_METRICS_OPTION.format(role="image_clip"),
            hint='on a machine with internet: python -c "import open_clip; open_clip.create_model('
            "'ViT-B-32-quickgelu', pretrained='laion400m_e32')\" (fills the Hugging Face cache), "
            "or put open_clip's vit_b_32-quickgelu-laion400m_e32-46683a32.pt into the weights dir",
        ),
        KnownWeights(
            "dino-vits16",
            "DINO ViT-S/16 facebook/dino-vits16",
            "DINO-I (metric encoder dino)",
            kind="directory",
            files=("dino-vits16",),
            hf_repo="facebook/dino-vits16",
            repo_files=("config.json",),
            option=_METRICS_OPTION.format(role="dino"),
            hint='on a machine with internet: python -c "from transformers import ViTModel; '
            "ViTModel.from_pretrained('facebook/dino-vits16')\" (fills the Hugging Face cache), or "
            "`huggingface-cli download facebook/dino-vits16 --local-dir <weights_dir>/dino-vits16`",
        ),
        KnownWeights(
            "raft-large",
            "torchvision RAFT-large C_T_V1 (= VBench's raft-things.pth)",
            "Dynamic Degree (metric encoder flow)",
            files=("raft_large_C_T_V1-22a6c225.pth", "raft-things.pth"),
            caches=(
                "$TORCH_HUB/raft_large_C_T_V1-22a6c225.pth",
                "~/.cache/vbench/raft_model/models/raft-things.pth",
            ),
            option=_METRICS_OPTION.format(role="flow"),
            hint='on a machine with internet: python -c "from torchvision.models.optical_flow '
            'import raft_large, Raft_Large_Weights; raft_large(weights=Raft_Large_Weights.C_T_V1)" '
            "(fills the torch hub cache), or copy VBench's raft-things.pth into the weights dir",
        ),
        KnownWeights(
            "amt-s",
            "AMT-S",
            "Motion Smoothness (metric encoder interpolator)",
            files=("amt-s.pth",),
            caches=("~/.cache/vbench/amt_model/amt-s.pth",),
            hf_repo="lalala125/AMT",
            repo_files=("amt-s.pth",),
            option=_METRICS_OPTION.format(role="interpolator"),
            hint="VBench downloads it to ~/.cache/vbench/amt_model/amt-s.pth (from the "
            "lalala125/AMT Hugging Face repo: `huggingface-cli download lalala125/AMT amt-s.pth`); "
            "copy it into the weights dir",
        ),
        KnownWeights(
            "open-clip-vit-h-14",
            "OpenCLIP ViT-H-14",
            "the image condition of DualReal's and DreamVideo's motion adapters",
            files=_OPEN_CLIP_FILES,
            hf_repo="laion/CLIP-ViT-H-14-laion2B-s32B-b79K",
            repo_files=_OPEN_CLIP_FILES,
            option="--set image_encoder_path=<file or directory>",
            hint="on a machine with internet: `huggingface-cli download {repo} "
            "open_clip_pytorch_model.bin` (fills the Hugging Face cache), or copy that file here "
            "and pass --set image_encoder_path=/path/to/open_clip_pytorch_model.bin",
        ),
        KnownWeights(
            "cogvideox-2b",
            "CogVideoX-2B",
            "the backbone of profile cogvideox-2b",
            kind="directory",
            hf_repo="THUDM/CogVideoX-2b",
            repo_files=("model_index.json", "transformer/config.json"),
            option="--backbone-set model_path=<directory or owner/name>",
            hint=_COGVIDEOX_HINT,
        ),
        KnownWeights(
            "cogvideox-5b",
            "CogVideoX-5B",
            "the backbone of profile cogvideox-5b (DualReal's)",
            kind="directory",
            hf_repo="THUDM/CogVideoX-5b",
            repo_files=("model_index.json", "transformer/config.json"),
            option="--backbone-set model_path=<directory or owner/name>",
            hint=_COGVIDEOX_HINT,
        ),
        KnownWeights(
            "videomae-kinetics",
            "VideoMAE-Base Kinetics-400",
            "motion fidelity's learned descriptor",
            kind="directory",
            hf_repo="MCG-NJU/videomae-base-finetuned-kinetics",
            repo_files=("config.json",),
            option="a checkpoint directory (build_videomae(<dir>))",
            hint='on a machine with internet: python -c "from transformers import '
            "VideoMAEForVideoClassification; VideoMAEForVideoClassification.from_pretrained("
            "'{repo}')\" (fills the Hugging Face cache), or `huggingface-cli download {repo} "
            "--local-dir <dir>` and pass that directory",
        ),
        KnownWeights(
            "sam-vit-huge",
            "SAM ViT-H (segment anything)",
            "motionbooth's subject masks (images without a mask file or an alpha channel)",
            kind="directory",
            hf_repo="facebook/sam-vit-huge",
            repo_files=("config.json",),
            option="--set mask_model_path=DIR (or mask_model=<another SAM repository>)",
            hint="on a machine with internet run `huggingface-cli download {repo}`, or put "
            "masks/<image stem>.png beside the images, or --set mask_fallback=full_frame",
        ),
    )
}


def register(entry: KnownWeights, *, replace: bool = False) -> None:
    """Add an entry to :data:`WEIGHTS` (another module's network)."""
    if entry.key in WEIGHTS and not replace:
        raise WeightsError(f"weights {entry.key!r} are already in the table")
    WEIGHTS[entry.key] = entry


def get_entry(key: str) -> KnownWeights:
    """The table's entry ``key``; a RegistryError with a "did you mean" otherwise."""
    if key not in WEIGHTS:
        raise unknown_name_error("weights", key, WEIGHTS)
    return WEIGHTS[key]


# ---- finding ---------------------------------------------------------------------------


def _markers(entry: KnownWeights, folder: Path) -> Path | None:
    """``folder`` if it holds one of the entry's marker files (a complete directory)."""
    return folder if any((folder / f).is_file() for f in entry.repo_files) else None


def _in_directory(entry: KnownWeights, folder: Path) -> Path | None:
    """The entry's checkpoint inside ``folder`` (``kind="file"``), or ``folder`` itself when
    it is a complete directory (``kind="directory"``)."""
    if entry.kind == "directory":
        return _markers(entry, folder)
    for name in dict.fromkeys((*entry.files, *entry.repo_files)):
        if (folder / name).is_file():
            return folder / name
    return None


def _either(parts: Iterable[str]) -> str:
    return " or ".join(parts)


def _given(entry: KnownWeights, path: str | Path) -> Path:
    p = Path(path).expanduser()
    get = f"To get them: {entry.how_to_get()}."
    if not p.exists():
        what = "file" if entry.kind == "file" else f"directory, so no {_either(entry.repo_files)}"
        raise WeightsError(
            f"{p}: {entry.name} checkpoint not found (no such weights {what}; given as "
            f"{entry.option or 'a path'}). {get}"
        )
    if p.is_dir():
        found = _in_directory(entry, p)
        if found is None:
            names = entry.repo_files if entry.kind == "directory" else (*entry.files,)
            raise WeightsError(
                f"{p}: no {entry.name} there (no {_either(dict.fromkeys(names))}). {get}"
            )
        return found
    if entry.kind == "directory":
        raise WeightsError(f"{p}: is a file; {entry.name} is a directory of files. {get}")
    return p


def _hf_cached(entry: KnownWeights, repo: str, cache: Path) -> Path | None:
    """The entry's file (or snapshot folder) in the Hugging Face cache, at revision main."""
    import huggingface_hub  # looked up on the module: tests replace try_to_load_from_cache

    for filename in entry.repo_files:
        hit = huggingface_hub.try_to_load_from_cache(repo, filename, cache_dir=str(cache))
        if isinstance(hit, str) and Path(hit).is_file():
            if entry.kind == "file":
                return Path(hit)
            root = Path(hit)
            for _ in Path(filename).parts:  # "transformer/config.json" -> the snapshot
                root = root.parent
            return root
    return None


def find_weights(
    key: str,
    *,
    path: str | Path | None = None,
    weights_dir: str | Path | None = None,
    hf_repo: str | None = None,
) -> Path:
    """The local file (``kind="file"``) or folder (``"directory"``) of the weights ``key``.

    Args:
        key: an entry of :data:`WEIGHTS`.
        path: a location the user gave; only it is tried (a directory is searched for the
            entry's files).
        weights_dir: a directory holding weights under the entry's ``files`` names.
        hf_repo: another Hugging Face repository to look up instead of the entry's own (e.g.
            a fine-tuned CogVideoX as ``model_path=owner/name``).

    Raises:
        WeightsError: nothing found; the message names the weights, every place looked at
            and how to get them.
    """
    entry = get_entry(key)
    if path is not None:
        return _given(entry, path)
    tried: list[str] = []
    if weights_dir is not None:
        for name in entry.files:
            candidate = Path(weights_dir).expanduser() / name
            if entry.kind == "file" and candidate.is_file():
                return candidate
            if entry.kind == "directory" and _markers(entry, candidate) is not None:
                return candidate
            incomplete = entry.kind == "directory" and candidate.is_dir()
            no_marker = f" (no {_either(entry.repo_files)})" if incomplete else ""
            tried.append(f"{candidate}{no_marker}")
    for location in entry.caches:
        candidate = _expand(location)
        if candidate.exists():
            return candidate
        tried.append(str(candidate))
    repo = hf_repo or entry.hf_repo
    if repo:
        cache = hf_hub_cache()
        found = _hf_cached(entry, repo, cache)
        if found is not None:
            return found
        tried.append(f"the Hugging Face cache {cache} ({repo}: {_either(entry.repo_files)})")
    where = ", ".join(tried) or "nowhere (no weights directory given)"
    option = f"; {entry.option} uses another location" if entry.option else ""
    raise WeightsError(
        f"no weights for {entry.name} ({entry.used_for}): looked in {where}. "
        f"To get them: {entry.how_to_get(repo)}. (No download is attempted{option}.)"
    )


def weights_identity(kind: str, path: str | Path) -> str:
    """``kind@sha256:<hash of the weights' bytes>``: the same weights give the same identity
    wherever they are stored (and so the same cache entries and records); other weights,
    another. A directory hashes all its files."""
    return f"{kind}@sha256:{file_sha256(path)[:16]}"
