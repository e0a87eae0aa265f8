"""The benchmark specification: identities, motions, suites, cases and their prompts.

The manifests ship as data in ``benchmark/`` (installed as ``dualreal_bench.benchmark``):

- ``identities.csv``: ``name,class_noun,category,prompt_motion``: the paper's 50 subjects, the
  class noun as the authors' prompts write the subject (``"plushie bear"`` for
  ``Plushie bear *``), a category (cat/dog/plushie/toy/other) and the motion the authors'
  prompt file of that identity was written for (its pair in the paper).
- ``motions.csv``: ``name,action,source,keywords``: the 21 motions, the action phrase generated
  prompts use (``"playing guitar"``), the source dataset (UCF101 or UCF Sports) and the
  ``|``-separated words that recognise the motion in a prompt (whole-word, case-insensitive).
- ``suites.json``: the suites (``paper``, ``ablation``, ``full``, ``smoke``) and their pairs.
- ``prompt_vocab.json``: templates, decorations and environments of the prompt generator.

Data root layout (the images, clips and the authors' prompt files are not shipped)::

    <root>/identities/<name>/images/*          reference photos of the subject
    <root>/identities/<name>/eval_pro_50.txt   the authors' 50 prompts (optional)
    <root>/motions/<name>/videos/*             reference clips of the motion

A root that holds a ``dualreal_benchmark/`` folder is used through it. The root comes from the
``data_root`` argument (``--data-root``), else ``$DUALREAL_BENCH_DATA``.

Prompts of a case, first match wins:

1. a user prompt file (``prompt_file=``): one prompt per line, used for every case
   (``prompt_source = "file:<path>"``);
2. the authors' ``eval_pro_50.txt`` of the identity, when the case's motion is the one that file
   was written for and every line mentions that motion (``"authors:<path>"``);
3. otherwise 50 prompts from the deterministic generator (``"generated"``).

Prompt files are UTF-8 (a BOM is allowed), one prompt per line; blank lines inside the file are
an error naming the file and line (trailing blank lines at the end are ignored); every prompt
must contain the subject placeholder ``" *"`` (an error, not a warning: a prompt without it does
not ask for the customised subject). The authors' files must hold exactly 50 prompts; they are
used as written (the authors' ``plushie_bear`` file repeats 4 of its prompts).
"""

from __future__ import annotations

import csv
import dataclasses
import difflib
import hashlib
import io
import json
import logging
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from .errors import ConfigError, DataError, RegistryError

logger = logging.getLogger(__name__)

DATA_ROOT_ENV = "DUALREAL_BENCH_DATA"
BENCHMARK_SUBDIR = "dualreal_benchmark"  # a root holding this folder is used through it
AUTHORS_PROMPT_FILE = "eval_pro_50.txt"
MOTION_PROMPTS_FILE = "prompts.txt"  # "a person is playing guitar", one a line (custom motions)
CLASS_NOUN_FILE = "class.txt"  # optional class noun of a custom identity
PROMPTS_PER_CASE = 50
PLACEHOLDER = " *"
CATEGORIES = ("cat", "dog", "plushie", "toy", "other")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_GENERATOR_SALT = "dualreal-bench/prompts"


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
        return f"{self.class_noun}{PLACEHOLDER}"


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


@dataclass(frozen=True)
class Case:
    """One benchmark case: learn ``identity`` and ``motion``, then generate ``prompts``.

    ``identity_dir`` / ``motion_dir`` default to ``<data_root>/identities/<name>`` and
    ``<data_root>/motions/<name>``. ``prompt_source`` is ``"authors:<path>"``, ``"generated"``
    or ``"file:<path>"``.
    """

    identity: Identity
    motion: Motion
    prompts: tuple[str, ...]
    data_root: Path
    prompt_source: str
    identity_dir: Path | None = field(default=None, compare=False)
    motion_dir: Path | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "prompts", tuple(self.prompts))
        object.__setattr__(self, "data_root", Path(self.data_root))
        if self.identity_dir is None:
            object.__setattr__(
                self, "identity_dir", self.data_root / "identities" / self.identity.name
            )
        if self.motion_dir is None:
            object.__setattr__(self, "motion_dir", self.data_root / "motions" / self.motion.name)

    @property
    def case_id(self) -> str:
        return f"{self.identity.name}__{self.motion.name}"

    @property
    def images_dir(self) -> Path:
        return Path(self.identity_dir) / "images"

    @property
    def videos_dir(self) -> Path:
        return Path(self.motion_dir) / "videos"

    def image_paths(self) -> list[Path]:
        """The identity's reference images, sorted. DataError if there are none."""
        return _list_media(self.images_dir, "images")

    def video_paths(self) -> list[Path]:
        """The motion's reference clips, sorted. DataError if there are none."""
        return _list_media(self.videos_dir, "videos")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description (for run records and ``inspect``)."""
        return {
            "case_id": self.case_id,
            "identity": self.identity.name,
            "class_noun": self.identity.class_noun,
            "motion": self.motion.name,
            "action": self.motion.action,
            "motion_source": self.motion.source,
            "prompt_source": self.prompt_source,
            "num_prompts": len(self.prompts),
            "data_root": str(self.data_root),
            "identity_dir": str(self.identity_dir),
            "motion_dir": str(self.motion_dir),
        }


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


@lru_cache(maxsize=256)
def _keyword_regex(words: tuple[str, ...]) -> re.Pattern[str]:
    alternatives = sorted({w.strip().lower() for w in words if w.strip()}, key=len, reverse=True)
    return re.compile(r"\b(?:" + "|".join(re.escape(w) for w in alternatives) + r")\b", re.I)


# ---- manifests ------------------------------------------------------------------------------
def benchmark_dir() -> Path:
    """The folder of the shipped manifests (``benchmark/`` in the repository)."""
    return Path(str(resources.files("dualreal_bench.benchmark")))


def _manifest(path: str | Path | None, default: str) -> Path:
    return Path(path) if path is not None else benchmark_dir() / default


def _read_text(path: Path, error: type[Exception]) -> str:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise error(f"{path}: file not found") from None
    except IsADirectoryError:
        raise error(f"{path}: is a directory, expected a file") from None
    except OSError as exc:
        raise error(f"{path}: cannot read ({exc.strerror})") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise error(
            f"{path}: not UTF-8 text (invalid byte 0x{data[exc.start]:02x} at offset {exc.start})"
        ) from None


def _read_csv(path: Path, columns: Sequence[str]) -> list[tuple[int, dict[str, str]]]:
    """Rows of a manifest CSV with their line numbers; the header must name ``columns``."""
    reader = csv.reader(io.StringIO(_read_text(path, ConfigError), newline=""))
    header = next(reader, None)
    if header is None or [h.strip() for h in header] != list(columns):
        raise ConfigError(f"{path}: header must be {','.join(columns)!r}, found {header!r}")
    rows = []
    for values in reader:
        line = reader.line_num
        if not any(v.strip() for v in values):
            continue
        if len(values) != len(columns):
            raise ConfigError(
                f"{path}, line {line}: expected {len(columns)} fields, found {len(values)}"
            )
        rows.append((line, {c: v.strip() for c, v in zip(columns, values, strict=True)}))
    if not rows:
        raise ConfigError(f"{path}: no rows")
    return rows


def _identity(row: Mapping[str, Any], where: str, motions: Iterable[str] | None) -> Identity:
    name = check_name(str(row.get("name", "")), where)
    noun = " ".join(str(row.get("class_noun", "")).split())
    if not noun or "*" in noun:
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
    if not action or "*" in action:
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
    for line, row in _read_csv(path, ("name", "action", "source", "keywords")):
        motion = _motion(row, f"{path}, line {line}")
        if motion.name in motions:
            raise ConfigError(f"{path}, line {line}: duplicate motion {motion.name!r}")
        motions[motion.name] = motion
    return tuple(motions.values())


def load_motions(path: str | Path | None = None) -> dict[str, Motion]:
    """The motions manifest (``benchmark/motions.csv`` unless ``path``), name -> Motion, in order."""
    return {m.name: m for m in _load_motions_cached(_manifest(path, "motions.csv").resolve())}


@lru_cache(maxsize=8)
def _load_identities_cached(path: Path, motions_path: Path) -> tuple[Identity, ...]:
    motion_names = {m.name for m in _load_motions_cached(motions_path)}
    identities: dict[str, Identity] = {}
    for line, row in _read_csv(path, ("name", "class_noun", "category", "prompt_motion")):
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
    path = _manifest(path, "identities.csv").resolve()
    mpath = _manifest(motions_path, "motions.csv").resolve()
    return {i.name: i for i in _load_identities_cached(path, mpath)}


@lru_cache(maxsize=8)
def _load_suites_cached(path: Path, ids_path: Path, motions_path: Path) -> tuple[Suite, ...]:
    try:
        doc = json.loads(_read_text(path, ConfigError))
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
        pairs_spec = spec.get("pairs")
        if pairs_spec == "cross_product":
            pairs = tuple((i, m) for i in identities for m in motions)
        elif isinstance(pairs_spec, list):
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
            pairs = tuple(pairs)
        else:
            raise ConfigError(f"{where}: 'pairs' must be a list of pairs or 'cross_product'")
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
            _manifest(path, "suites.json").resolve(),
            _manifest(identities_path, "identities.csv").resolve(),
            _manifest(motions_path, "motions.csv").resolve(),
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


# ---- prompt vocabulary and generator ----------------------------------------------------------
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
        doc = json.loads(_read_text(path, ConfigError))
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
        if len(set(items)) != len(items) or any(not s or "*" in s for s in items):
            raise ConfigError(f"{path}: {kind} must be distinct, non-empty and without '*'")
    return vocab


def load_prompt_vocab(path: str | Path | None = None) -> PromptVocab:
    """The generator's vocabulary (``benchmark/prompt_vocab.json`` unless ``path``)."""
    return _load_vocab_cached(_manifest(path, "prompt_vocab.json").resolve())


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
    lines = _read_text(path, DataError).split("\n")
    lines = [line.rstrip("\r") for line in lines]
    while lines and not lines[-1].strip():
        lines.pop()
    prompts = []
    for number, line in enumerate(lines, start=1):
        prompt = " ".join(line.split())
        if not prompt:
            raise DataError(f"{path}, line {number}: empty line (one prompt per line)")
        if require_placeholder and not re.search(r"\S \*", prompt):
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


# ---- data root ------------------------------------------------------------------------------
def _through_subdir(root: Path) -> Path:
    sub = root / BENCHMARK_SUBDIR
    return sub if sub.is_dir() else root


def resolve_data_root(data_root: str | Path | None = None) -> Path:
    """The data root: ``data_root`` if given, else ``$DUALREAL_BENCH_DATA``; used through its
    ``dualreal_benchmark/`` folder when it has one. DataError if unset or not a directory."""
    return _resolve_roots(data_root)[0]


def _resolve_roots(data_root: str | Path | None) -> tuple[Path, Path]:
    """(root used for the benchmark, root as given)."""
    origin = "data root"
    if data_root is None or str(data_root) == "":
        data_root = os.environ.get(DATA_ROOT_ENV) or None
        origin = f"data root (from ${DATA_ROOT_ENV})"
    if data_root is None:
        raise DataError(f"no data root: pass --data-root or set {DATA_ROOT_ENV}")
    raw = Path(data_root).expanduser()
    if not raw.exists():
        raise DataError(f"{origin} {raw} does not exist")
    if not raw.is_dir():
        raise DataError(f"{origin} {raw} is not a directory")
    return _through_subdir(raw), raw


def _sample_data_root(data_root: str | Path | None) -> Path:
    from . import sample_data  # numpy drawing code: imported only for the smoke suite

    target = Path(data_root).expanduser() if data_root else None  # None: its cache default
    return _through_subdir(Path(sample_data.ensure_sample_data(target)))


def _locate(kind: str, name: str, roots: Sequence[Path]) -> Path:
    """``<root>/<kind>/<name>`` in the first root that has its images/videos folder."""
    sub = "images" if kind == "identities" else "videos"
    for root in roots:
        if (root / kind / name / sub).is_dir():
            return root / kind / name
    what = "identity" if kind == "identities" else "motion"
    raise DataError(
        f"{what} {name!r} not found: expected the folder {roots[0] / kind / name / sub}"
    )


def _list_media(folder: Path, kind: str, *, allow_empty: bool = False) -> list[Path]:
    """Sorted media files of ``folder`` (MediaError, a DataError, if missing or empty)."""
    from . import media  # PIL/av: imported when media is touched, not with the manifests

    lister = media.list_images if kind == "images" else media.list_videos
    return list(lister(folder, allow_empty=allow_empty))


# ---- cases ----------------------------------------------------------------------------------
def _case_prompts(
    identity: Identity, motion: Motion, identity_dir: Path, prompts_per_case: int
) -> tuple[tuple[str, ...], str]:
    authors = identity_dir / AUTHORS_PROMPT_FILE
    if identity.prompt_motion == motion.name:
        if authors.is_file():
            prompts = read_prompt_file(authors, expected=PROMPTS_PER_CASE)
            if prompts_match_motion(prompts, motion):
                return prompts[:prompts_per_case], f"authors:{authors}"
            logger.warning(
                "%s: its prompts do not all mention motion %r; using generated prompts",
                authors,
                motion.name,
            )
        else:
            logger.warning(
                "%s: authors' prompt file not found; case %s__%s uses generated prompts",
                authors,
                identity.name,
                motion.name,
            )
    elif identity.prompt_motion is None and authors.is_file():
        # An identity outside the manifest that brings its own prompt file: use it when it
        # was written for this motion.
        prompts = read_prompt_file(authors, expected=PROMPTS_PER_CASE)
        if prompts_match_motion(prompts, motion):
            return prompts[:prompts_per_case], f"authors:{authors}"
        logger.info("%s is not about motion %r; using generated prompts", authors, motion.name)
    return generate_prompts(identity, motion, prompts_per_case), "generated"


def _check_num_prompts(num_prompts: int | None) -> None:
    if num_prompts is not None and (
        not isinstance(num_prompts, int) or isinstance(num_prompts, bool) or num_prompts < 1
    ):
        raise ConfigError(f"num_prompts must be a positive integer, got {num_prompts!r}")


def _user_prompts(prompt_file: str | Path) -> tuple[str, ...]:
    prompts = read_prompt_file(prompt_file)
    if len(set(prompts)) != len(prompts):
        logger.warning("%s: %d duplicate prompts", prompt_file, len(prompts) - len(set(prompts)))
    return prompts


def _make_case(
    identity: Identity,
    motion: Motion,
    data_root: Path,
    identity_dir: Path,
    motion_dir: Path,
    *,
    prompts_per_case: int,
    user_prompts: tuple[str, ...] | None,
    prompt_file: str | Path | None,
    num_prompts: int | None,
) -> Case:
    if user_prompts is not None:
        prompts, source = user_prompts, f"file:{Path(prompt_file)}"
    else:
        prompts, source = _case_prompts(identity, motion, identity_dir, prompts_per_case)
    if num_prompts is not None:
        prompts = prompts[:num_prompts]
    return Case(identity, motion, prompts, data_root, source, identity_dir, motion_dir)


def build_cases(
    suite: str | Suite,
    data_root: str | Path | None = None,
    prompt_file: str | Path | None = None,
    num_prompts: int | None = None,
) -> list[Case]:
    """The cases of ``suite`` (a name or a :class:`Suite`), in the suite's order.

    ``data_root``: as :func:`resolve_data_root`; for a suite on sample data (``smoke``) it is
    the folder where the sample data is generated (default: ``sample_data``'s cache folder),
    and ``$DUALREAL_BENCH_DATA`` is not consulted. ``prompt_file``: prompts for every case.
    ``num_prompts``: keep only the first ``num_prompts`` of each case (quick runs).
    Every identity and motion folder is checked before any case is returned.
    """
    suite = suite if isinstance(suite, Suite) else get_suite(suite)
    _check_num_prompts(num_prompts)
    identities = {**load_identities(), **{i.name: i for i in suite.identities}}
    motions = {**load_motions(), **{m.name: m for m in suite.motions}}
    if suite.uses_sample_data:
        root = _sample_data_root(data_root)
        roots: tuple[Path, ...] = (root,)
    else:
        root, raw = _resolve_roots(data_root)
        roots = (root,) if raw == root else (root, raw)
    user_prompts = _user_prompts(prompt_file) if prompt_file is not None else None
    dirs: dict[tuple[str, str], Path] = {}
    missing: list[str] = []
    for kind, names in (
        ("identities", dict.fromkeys(i for i, _ in suite.pairs)),
        ("motions", dict.fromkeys(m for _, m in suite.pairs)),
    ):
        for name in names:
            try:
                dirs[kind, name] = _locate(kind, name, roots)
            except DataError as exc:
                missing.append(str(exc))
    if missing:
        more = f" (and {len(missing) - 1} more missing)" if len(missing) > 1 else ""
        raise DataError(f"suite {suite.name!r}: {missing[0]}{more}")
    return [
        _make_case(
            identities[i],
            motions[m],
            root,
            dirs["identities", i],
            dirs["motions", m],
            prompts_per_case=suite.prompts_per_case,
            user_prompts=user_prompts,
            prompt_file=prompt_file,
            num_prompts=num_prompts,
        )
        for i, m in suite.pairs
    ]


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


def _first_line(path: Path) -> str | None:
    if not path.is_file():
        return None
    for line in _read_text(path, DataError).splitlines():
        if line.strip():
            return " ".join(line.split())
    return None


def build_case(
    identity: str | Identity,
    motion: str | Motion,
    data_root: str | Path | None = None,
    prompt_file: str | Path | None = None,
    num_prompts: int | None = None,
    *,
    class_noun: str | None = None,
    action: str | None = None,
    prompts_per_case: int = PROMPTS_PER_CASE,
) -> Case:
    """One case of any identity and motion found in the data root, in the manifests or not.

    Folders are looked up in the resolved root first, then in the root as given (so
    ``/work/shared/data`` finds ``black_poodle`` in its own ``identities/`` and ``Archery`` in
    ``dualreal_benchmark/``). An identity outside the manifest gets its class noun from
    ``class_noun``, else the first line of ``<identity>/class.txt``, else
    :func:`default_class_noun`; a motion outside the manifest its action from ``action``, else
    ``<motion>/prompts.txt`` (``"a person is playing guitar"`` -> ``"playing guitar"``), else
    :func:`default_action`.
    """
    _check_num_prompts(num_prompts)
    root, raw = _resolve_roots(data_root)
    roots = (root,) if raw == root else (root, raw)
    if isinstance(identity, Identity):
        ident = identity
        identity_dir = _locate("identities", check_name(ident.name, "identity"), roots)
    else:
        name = check_name(identity, "identity")
        identity_dir = _locate("identities", name, roots)
        ident = load_identities().get(name)
        if ident is None:
            noun = class_noun or _first_line(identity_dir / CLASS_NOUN_FILE)
            ident = Identity(name, noun or default_class_noun(name), "other", None)
    if isinstance(motion, Motion):
        mot = motion
        motion_dir = _locate("motions", check_name(mot.name, "motion"), roots)
    else:
        name = check_name(motion, "motion")
        motion_dir = _locate("motions", name, roots)
        mot = load_motions().get(name)
        if mot is None:
            phrase = action or _first_line(motion_dir / MOTION_PROMPTS_FILE) or ""
            phrase = re.sub(r"^(?:a|an|the)\s+\w+\s+(?:is|are)\s+", "", phrase, flags=re.I)
            phrase = phrase.strip(" .") or default_action(name)
            mot = Motion(name, phrase, "custom", (name.lower(), default_action(name)))
    if class_noun is not None:
        ident = _with(ident, "class_noun", class_noun, "class_noun")
    if action is not None:
        mot = _with(mot, "action", action, "action")
    return _make_case(
        ident,
        mot,
        root,
        identity_dir,
        motion_dir,
        prompts_per_case=prompts_per_case,
        user_prompts=_user_prompts(prompt_file) if prompt_file is not None else None,
        prompt_file=prompt_file,
        num_prompts=num_prompts,
    )


def _with(obj: Any, attr: str, value: str, what: str) -> Any:
    value = " ".join(str(value).split())
    if not value or "*" in value:
        raise ConfigError(f"{what} must be non-empty and without '*', got {value!r}")
    return dataclasses.replace(obj, **{attr: value})


# ---- listings (``dualreal-bench list``) -------------------------------------------------------
def _listing_root(data_root: str | Path | None) -> tuple[Path, ...]:
    """Roots for availability columns: explicit root (errors propagate), else a valid
    ``$DUALREAL_BENCH_DATA``, else none."""
    if data_root is not None:
        root, raw = _resolve_roots(data_root)
    else:
        env = os.environ.get(DATA_ROOT_ENV)
        if not env or not Path(env).expanduser().is_dir():
            return ()
        root, raw = _resolve_roots(env)
    return (root,) if root == raw else (root, raw)


def _count(kind: str, name: str, roots: Sequence[Path]) -> int | None:
    try:
        folder = _locate(kind, name, roots)
    except DataError:
        return None
    sub = "images" if kind == "identities" else "videos"
    return len(_list_media(folder / sub, sub, allow_empty=True))


def describe_identities(data_root: str | Path | None = None) -> list[dict[str, Any]]:
    """One row per identity: name, class noun, category, prompt motion, and with a data root
    (given or ``$DUALREAL_BENCH_DATA``) the number of images and whether the authors' prompt
    file is there."""
    roots = _listing_root(data_root)
    rows = []
    for ident in load_identities().values():
        row: dict[str, Any] = {
            "name": ident.name,
            "class_noun": ident.class_noun,
            "category": ident.category,
            "prompt_motion": ident.prompt_motion,
        }
        if roots:
            row["images"] = _count("identities", ident.name, roots)
            row["authors_prompts"] = any(
                (r / "identities" / ident.name / AUTHORS_PROMPT_FILE).is_file() for r in roots
            )
        rows.append(row)
    return rows


def describe_motions(data_root: str | Path | None = None) -> list[dict[str, Any]]:
    """One row per motion: name, action phrase, source, and with a data root the clip count."""
    roots = _listing_root(data_root)
    rows = []
    for mot in load_motions().values():
        row: dict[str, Any] = {"name": mot.name, "action": mot.action, "source": mot.source}
        if roots:
            row["clips"] = _count("motions", mot.name, roots)
        rows.append(row)
    return rows


def describe_suites() -> list[dict[str, Any]]:
    """One row per suite: name, cases, prompts per case, videos per seed, description."""
    return [
        {
            "name": s.name,
            "cases": s.num_cases,
            "prompts_per_case": s.prompts_per_case,
            "videos": s.num_videos,
            "sample_data": s.uses_sample_data,
            "description": s.description,
        }
        for s in load_suites().values()
    ]


__all__ = [
    "AUTHORS_PROMPT_FILE",
    "CATEGORIES",
    "DATA_ROOT_ENV",
    "PROMPTS_PER_CASE",
    "Case",
    "Identity",
    "Motion",
    "PromptVocab",
    "Suite",
    "build_case",
    "build_cases",
    "check_name",
    "default_action",
    "default_class_noun",
    "describe_identities",
    "describe_motions",
    "describe_suites",
    "generate_prompts",
    "get_suite",
    "load_identities",
    "load_motions",
    "load_prompt_vocab",
    "load_suites",
    "prompts_match_motion",
    "read_prompt_file",
    "resolve_data_root",
]
