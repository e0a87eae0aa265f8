"""The manifests: identities, motions and suites (``benchmark/`` in the repository).

- ``identities.csv``: ``name,class_noun,category,prompt_motion``: the paper's 50 subjects, the
  class noun as the authors' prompts write the subject (``"plushie bear"`` for
  ``Plushie bear *``), a category (cat/dog/plushie/toy/other) and the motion the authors'
  prompt file of that identity was written for (its pair in the paper).
- ``motions.csv``: ``name,action,source,keywords``: the 21 motions, the action phrase generated
  prompts use (``"playing guitar"``), the source dataset (UCF101 or UCF Sports) and the
  ``|``-separated words that recognise the motion in a prompt (whole-word, case-insensitive).
- ``suites.json``: the suites (``paper``, ``ablation``, ``full``, ``smoke``) and their pairs.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..errors import ConfigError, RegistryError
from .files import manifest_path, read_csv, read_text

#: the subject placeholder token: prompts name the subject as ``"<class noun> *"``
PLACEHOLDER = "*"
#: prompts per case in the paper (and in the authors' prompt files)
PROMPTS_PER_CASE = 50

CATEGORIES = ("cat", "dog", "plushie", "toy", "other")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


# ---- data classes ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Identity:
    """A subject: ``name`` (its folder), the ``class_noun`` prompts use before ``" *"``,
    a ``category`` and the motion its authors' prompt file was written for (None if unknown)."""

    name: str
    class_noun: str
    category: str = "other"
    prompt_motion: str | None = None

    @property
    def subject(self) -> str:
        """How prompts name the subject: ``"plushie bear *"``."""
        return f"{self.class_noun} {PLACEHOLDER}"


@dataclass(frozen=True)
class Motion:
    """A motion: ``name`` (its folder), the ``action`` phrase (``"playing guitar"``), the source
    dataset and the ``keywords`` that recognise it in a prompt."""

    name: str
    action: str
    source: str
    keywords: tuple[str, ...] = ()

    def mentioned_in(self, text: str) -> bool:
        """Whether ``text`` names this motion (a keyword or the action, whole words, any case)."""
        return _keyword_regex(self.keywords + (self.action,)).search(text) is not None


@dataclass(frozen=True)
class Suite:
    """A named list of (identity, motion) pairs and how many prompts each case gets.

    ``identities`` / ``motions`` hold definitions the suite adds to the manifests (the smoke
    suite's sample subject and motion). ``uses_sample_data``: the data root is the project's
    generated sample data (:func:`dualreal_bench.sample_data.ensure_sample_data`).
    """

    name: str
    description: str
    pairs: tuple[tuple[str, str], ...]
    prompts_per_case: int = PROMPTS_PER_CASE
    uses_sample_data: bool = False
    identities: tuple[Identity, ...] = ()
    motions: tuple[Motion, ...] = ()

    @property
    def num_cases(self) -> int:
        return len(self.pairs)

    @property
    def num_videos(self) -> int:
        """Videos per seed: cases x prompts per case."""
        return len(self.pairs) * self.prompts_per_case


# ---- names ----------------------------------------------------------------------------------
def check_name(name: str, where: str, *, error: type[Exception] = ConfigError) -> str:
    """Return ``name`` if it is a safe folder name (no path separators, no ``..``), else raise
    ``error`` naming ``where`` (a file and line, or an argument)."""
    if not isinstance(name, str) or not NAME_RE.match(name) or ".." in name:
        raise error(
            f"{where}: invalid name {name!r} (letters, digits, '_', '-', '.'; "
            "no path separators or '..')"
        )
    return name


def default_class_noun(name: str) -> str:
    """Class noun of an identity outside the manifest: its folder name without digits, with
    ``_``/``-`` as spaces, lowercased (``black_poodle`` -> ``"black poodle"``, ``dog6`` ->
    ``"dog"``); ``"object"`` if nothing is left."""
    words = re.sub(r"[\d_\-.]+", " ", name).lower().split()
    return " ".join(words) or "object"


def default_action(name: str) -> str:
    """Action phrase of a motion outside the manifest from its name (``playingGuitar`` ->
    ``"playing guitar"``, ``Kicking-Front`` -> ``"kicking front"``)."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name)
    return " ".join(re.sub(r"[_\-.]+", " ", spaced).lower().split()) or name.lower()


@lru_cache(maxsize=256)
def _keyword_regex(words: tuple[str, ...]) -> re.Pattern[str]:
    alternatives = sorted({w.strip().lower() for w in words if w.strip()}, key=len, reverse=True)
    return re.compile(r"\b(?:" + "|".join(re.escape(w) for w in alternatives) + r")\b", re.I)


# ---- manifests ------------------------------------------------------------------------------
def _identity(row: Mapping[str, Any], where: str, motions: Iterable[str] | None) -> Identity:
    name = check_name(str(row.get("name", "")), where)
    noun = " ".join(str(row.get("class_noun", "")).split())
    if not noun or PLACEHOLDER in noun:
        raise ConfigError(f"{where}: identity {name!r} needs a class noun without '*'")
    category = str(row.get("category") or "other")
    if category not in CATEGORIES:
        raise ConfigError(
            f"{where}: identity {name!r} has category {category!r}, "
            f"expected one of {', '.join(CATEGORIES)}"
        )
    prompt_motion = str(row.get("prompt_motion") or "") or None
    if prompt_motion is not None:
        check_name(prompt_motion, where)
        if motions is not None and prompt_motion not in motions:
            raise ConfigError(
                f"{where}: identity {name!r}: unknown prompt_motion {prompt_motion!r}"
            )
    return Identity(name, noun, category, prompt_motion)


def _motion(row: Mapping[str, Any], where: str) -> Motion:
    name = check_name(str(row.get("name", "")), where)
    action = " ".join(str(row.get("action", "")).split())
    source = str(row.get("source", "")).strip()
    if not action or PLACEHOLDER in action:
        raise ConfigError(f"{where}: motion {name!r} needs an action phrase without '*'")
    if not source:
        raise ConfigError(f"{where}: motion {name!r} needs a source")
    keywords = row.get("keywords") or ()
    if isinstance(keywords, str):
        keywords = keywords.split("|")
    keywords = tuple(k.strip().lower() for k in keywords if k.strip())
    return Motion(name, action, source, keywords)


@lru_cache(maxsize=8)
def _load_motions_cached(path: Path) -> tuple[Motion, ...]:
    motions: dict[str, Motion] = {}
    for line, row in read_csv(path, ("name", "action", "source", "keywords")):
        motion = _motion(row, f"{path}, line {line}")
        if motion.name in motions:
            raise ConfigError(f"{path}, line {line}: duplicate motion {motion.name!r}")
        motions[motion.name] = motion
    return tuple(motions.values())


def load_motions(path: str | Path | None = None) -> dict[str, Motion]:
    """The motions manifest (``benchmark/motions.csv`` unless ``path``), name -> Motion, in order."""
    return {m.name: m for m in _load_motions_cached(manifest_path(path, "motions.csv").resolve())}


@lru_cache(maxsize=8)
def _load_identities_cached(path: Path, motions_path: Path) -> tuple[Identity, ...]:
    motion_names = {m.name for m in _load_motions_cached(motions_path)}
    identities: dict[str, Identity] = {}
    for line, row in read_csv(path, ("name", "class_noun", "category", "prompt_motion")):
        identity = _identity(row, f"{path}, line {line}", motion_names)
        if identity.name in identities:
            raise ConfigError(f"{path}, line {line}: duplicate identity {identity.name!r}")
        identities[identity.name] = identity
    return tuple(identities.values())


def load_identities(
    path: str | Path | None = None, *, motions_path: str | Path | None = None
) -> dict[str, Identity]:
    """The identities manifest (``benchmark/identities.csv`` unless ``path``), name -> Identity.

    Each ``prompt_motion`` must name a motion of ``motions_path`` (the shipped motions.csv by
    default)."""
    path = manifest_path(path, "identities.csv").resolve()
    mpath = manifest_path(motions_path, "motions.csv").resolve()
    return {i.name: i for i in _load_identities_cached(path, mpath)}


@lru_cache(maxsize=8)
def _load_suites_cached(path: Path, ids_path: Path, motions_path: Path) -> tuple[Suite, ...]:
    try:
        doc = json.loads(read_text(path, ConfigError))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}, line {exc.lineno}: invalid JSON ({exc.msg})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("suites"), dict):
        raise ConfigError(f"{path}: expected an object with a 'suites' object")
    default_n = doc.get("default_prompts_per_case", PROMPTS_PER_CASE)
    motions = {m.name: m for m in _load_motions_cached(motions_path)}
    identities = {i.name: i for i in _load_identities_cached(ids_path, motions_path)}
    suites = []
    for name, spec in doc["suites"].items():
        where = f"{path}: suite {name!r}"
        check_name(name, f"{path}")
        if not isinstance(spec, dict):
            raise ConfigError(f"{where}: expected an object")
        own_motions = tuple(_motion(m, where) for m in spec.get("motions", ()))
        all_motions = {**motions, **{m.name: m for m in own_motions}}
        own_ids = tuple(_identity(i, where, all_motions) for i in spec.get("identities", ()))
        all_ids = {**identities, **{i.name: i for i in own_ids}}
        pairs = _suite_pairs(spec.get("pairs"), where, identities, motions, all_ids, all_motions)
        if not pairs:
            raise ConfigError(f"{where}: no pairs")
        if len(set(pairs)) != len(pairs):
            raise ConfigError(f"{where}: duplicate pairs")
        n = spec.get("prompts_per_case", default_n)
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise ConfigError(f"{where}: prompts_per_case must be a positive integer, got {n!r}")
        suites.append(
            Suite(
                name=name,
                description=str(spec.get("description", "")),
                pairs=pairs,
                prompts_per_case=n,
                uses_sample_data=bool(spec.get("uses_sample_data", False)),
                identities=own_ids,
                motions=own_motions,
            )
        )
    return tuple(suites)


def _suite_pairs(
    pairs_spec: Any,
    where: str,
    identities: Mapping[str, Identity],
    motions: Mapping[str, Motion],
    all_ids: Mapping[str, Identity],
    all_motions: Mapping[str, Motion],
) -> tuple[tuple[str, str], ...]:
    """A suite's ``pairs``: ``"cross_product"`` (of the manifests' identities and motions) or
    a list of ``[identity, motion]`` naming manifest entries or the suite's own."""
    if pairs_spec == "cross_product":
        return tuple((i, m) for i in identities for m in motions)
    if not isinstance(pairs_spec, list):
        raise ConfigError(f"{where}: 'pairs' must be a list of pairs or 'cross_product'")
    pairs = []
    for k, pair in enumerate(pairs_spec):
        if not (isinstance(pair, list | tuple) and len(pair) == 2):
            raise ConfigError(f"{where}: pair {k} must be [identity, motion]")
        ident, motion = (check_name(p, f"{where}, pair {k}") for p in pair)
        if ident not in all_ids:
            raise ConfigError(f"{where}, pair {k}: unknown identity {ident!r}")
        if motion not in all_motions:
            raise ConfigError(f"{where}, pair {k}: unknown motion {motion!r}")
        pairs.append((ident, motion))
    return tuple(pairs)


def load_suites(
    path: str | Path | None = None,
    *,
    identities_path: str | Path | None = None,
    motions_path: str | Path | None = None,
) -> dict[str, Suite]:
    """The suites (``benchmark/suites.json`` unless ``path``), name -> Suite, in file order."""
    return {
        s.name: s
        for s in _load_suites_cached(
            manifest_path(path, "suites.json").resolve(),
            manifest_path(identities_path, "identities.csv").resolve(),
            manifest_path(motions_path, "motions.csv").resolve(),
        )
    }


def get_suite(name: str) -> Suite:
    """The shipped suite ``name``; RegistryError (with a suggestion) if there is none."""
    suites = load_suites()
    if name not in suites:
        close = difflib.get_close_matches(str(name), suites, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise RegistryError(f"unknown suite {name!r} (known: {', '.join(suites)}){hint}")
    return suites[name]
