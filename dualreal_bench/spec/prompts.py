"""Prompts: the subject placeholder, the deterministic prompt generator and prompt files.

The benchmark writes the customised subject as its class noun followed by the placeholder
token, ``"dog *"`` (:data:`PLACEHOLDER` is the token, ``"*"``; the space before it separates
it from the noun). DreamVideo learns the token itself; methods without a learned token and the
CLIP-T metric remove it (:func:`strip_placeholder`), as the authors' evaluation does.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from ..errors import ConfigError, DataError
from .files import manifest_path, read_text
from .manifests import PLACEHOLDER, PROMPTS_PER_CASE, Identity, Motion

_PLACEHOLDER_RE = re.compile(r"\s*" + re.escape(PLACEHOLDER))
#: a placeholder written as the benchmark writes it: after a word, one space before it
_SUBJECT_RE = re.compile(r"\S " + re.escape(PLACEHOLDER))
_GENERATOR_SALT = "dualreal-bench/prompts"


def strip_placeholder(prompt: str) -> str:
    """Remove the subject placeholder: ``"dog * is surfing"`` -> ``"dog is surfing"``.

    This is what the authors' CLIP-T evaluation does to prompts and what methods without
    a learned token feed their text encoder.
    """
    return " ".join(_PLACEHOLDER_RE.sub("", prompt).split())


@dataclass(frozen=True)
class PromptVocab:
    """Templates (text with ``{subject}``, ``{action}`` and optionally ``{decoration}``,
    ``{environment}``; integer weight), decoration and environment phrases."""

    version: int
    templates: tuple[tuple[str, int], ...]
    decorations: tuple[str, ...]
    environments: tuple[str, ...]


@lru_cache(maxsize=8)
def _load_vocab_cached(path: Path) -> PromptVocab:
    try:
        doc = json.loads(read_text(path, ConfigError))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}, line {exc.lineno}: invalid JSON ({exc.msg})") from None
    try:
        templates = tuple((str(t["text"]), int(t.get("weight", 1))) for t in doc["templates"])
        vocab = PromptVocab(
            version=int(doc["version"]),
            templates=templates,
            decorations=tuple(str(d).strip() for d in doc["decorations"]),
            environments=tuple(str(e).strip() for e in doc["environments"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"{path}: malformed prompt vocabulary ({exc!r})") from None
    if not vocab.templates or not vocab.decorations or not vocab.environments:
        raise ConfigError(f"{path}: templates, decorations and environments must be non-empty")
    for text, weight in vocab.templates:
        if "{subject}" not in text or "{action}" not in text or weight < 1:
            raise ConfigError(
                f"{path}: template {text!r} needs {{subject}}, {{action}} and a weight >= 1"
            )
    for kind in ("decorations", "environments"):
        items = getattr(vocab, kind)
        if len(set(items)) != len(items) or any(not s or PLACEHOLDER in s for s in items):
            raise ConfigError(f"{path}: {kind} must be distinct, non-empty and without '*'")
    return vocab


def load_prompt_vocab(path: str | Path | None = None) -> PromptVocab:
    """The generator's vocabulary (``benchmark/prompt_vocab.json`` unless ``path``)."""
    return _load_vocab_cached(manifest_path(path, "prompt_vocab.json").resolve())


class _StableRandom:
    """A counter-mode SHA-256 stream: the same draws on every platform and Python version
    (``random.Random``'s derived methods are not guaranteed stable across versions)."""

    def __init__(self, seed: bytes) -> None:
        self._seed = seed
        self._counter = 0

    def below(self, n: int) -> int:
        digest = hashlib.sha256(self._seed + self._counter.to_bytes(8, "big")).digest()
        self._counter += 1
        return int.from_bytes(digest[:8], "big") % n

    def permutation(self, n: int) -> list[int]:
        order = list(range(n))
        for i in range(n - 1, 0, -1):
            j = self.below(i + 1)
            order[i], order[j] = order[j], order[i]
        return order


def _article(noun: str) -> str:
    return "an" if noun[:1].lower() in "aeiou" else "a"


def generate_prompts(
    identity: Identity,
    motion: Motion,
    n: int = PROMPTS_PER_CASE,
    *,
    vocab: PromptVocab | None = None,
) -> tuple[str, ...]:
    """``n`` distinct prompts for (identity, motion) in the authors' style.

    Each is ``[a|an] <class_noun> *`` + ``is <action>`` + a decoration and/or environment edit
    (``"dog * wearing a cowboy hat is playing guitar on a desert highway"``). Deterministic: the
    draws are seeded by SHA-256 of the vocabulary version and the two names, so the result is
    the same in every process and on every platform, and ``generate_prompts(..., k)`` is the
    first ``k`` of ``generate_prompts(..., n)`` for ``k <= n``. Decorations and environments
    are each used in a shuffled cycle, so 50 prompts repeat none of the 44 of each kind more
    than twice.
    """
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ConfigError(f"number of prompts must be a positive integer, got {n!r}")
    vocab = vocab or load_prompt_vocab()
    key = f"{_GENERATOR_SALT}/v{vocab.version}\0{identity.name}\0{motion.name}"
    rng = _StableRandom(hashlib.sha256(key.encode("utf-8")).digest())
    deco_order = rng.permutation(len(vocab.decorations))
    env_order = rng.permutation(len(vocab.environments))
    weighted = [text for text, weight in vocab.templates for _ in range(weight)]
    noun, action = identity.class_noun, motion.action
    prompts: list[str] = []
    seen: set[str] = set()
    di = ei = 0
    for _ in range(50 * n + 100):
        if len(prompts) == n:
            break
        template = weighted[rng.below(len(weighted))]
        fields = {"action": action, "decoration": "", "environment": ""}
        if "{decoration}" in template:
            fields["decoration"] = vocab.decorations[deco_order[di % len(deco_order)]]
            di += 1
        if "{environment}" in template:
            fields["environment"] = vocab.environments[env_order[ei % len(env_order)]]
            ei += 1
        article = rng.below(2) == 1
        fields["subject"] = f"{_article(noun)} {identity.subject}" if article else identity.subject
        prompt = " ".join(template.format(**fields).split())
        if prompt not in seen:
            seen.add(prompt)
            prompts.append(prompt)
    if len(prompts) < n:
        raise ConfigError(
            f"cannot generate {n} distinct prompts for {identity.name}/{motion.name} "
            f"from the vocabulary (got {len(prompts)})"
        )
    return tuple(prompts)


# ---- prompt files ---------------------------------------------------------------------------
def read_prompt_file(
    path: str | Path, *, expected: int | None = None, require_placeholder: bool = True
) -> tuple[str, ...]:
    """Prompts of a UTF-8 text file, one a line (see the module docstring for the rules).

    DataError naming the file (and line) if it is missing, not UTF-8, has a blank line inside,
    a prompt without ``" *"`` (when ``require_placeholder``), or not ``expected`` prompts.
    """
    path = Path(path)
    lines = read_text(path, DataError).split("\n")
    lines = [line.rstrip("\r") for line in lines]
    while lines and not lines[-1].strip():
        lines.pop()
    prompts = []
    for number, line in enumerate(lines, start=1):
        prompt = " ".join(line.split())
        if not prompt:
            raise DataError(f"{path}, line {number}: empty line (one prompt per line)")
        if require_placeholder and not _SUBJECT_RE.search(prompt):
            raise DataError(
                f"{path}, line {number}: prompt has no subject placeholder ' *' "
                f"(write the subject as '<class> *', e.g. 'dog * is surfing')"
            )
        prompts.append(prompt)
    if not prompts:
        raise DataError(f"{path}: no prompts")
    if expected is not None and len(prompts) != expected:
        raise DataError(f"{path}: expected {expected} prompts (one a line), found {len(prompts)}")
    return tuple(prompts)


def prompts_match_motion(prompts: Iterable[str], motion: Motion) -> bool:
    """Whether every prompt names ``motion`` (its keywords or action phrase)."""
    prompts = list(prompts)
    return bool(prompts) and all(motion.mentioned_in(p) for p in prompts)
