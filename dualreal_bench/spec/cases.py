"""Cases: one identity and one motion with their prompts, built from a suite or a single pair
(a cases file's lines are pairs: :mod:`.cases_file`).

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

import dataclasses
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from ..errors import ConfigError, DataError
from .data_root import (
    AUTHORS_PROMPT_FILE,
    CLASS_NOUN_FILE,
    MOTION_PROMPTS_FILE,
    list_media,
    locate,
    sample_data_root,
    search_roots,
)
from .files import read_text
from .manifests import (
    Identity,
    Motion,
    Suite,
    check_name,
    default_action,
    default_class_noun,
    get_suite,
    load_identities,
    load_motions,
)
from .prompts import (
    PLACEHOLDER,
    PROMPTS_PER_CASE,
    generate_prompts,
    prompts_match_motion,
    read_prompt_file,
)

logger = logging.getLogger(__name__)

T = TypeVar("T")


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
        return list_media(self.images_dir, "images")

    def video_paths(self) -> list[Path]:
        """The motion's reference clips, sorted. DataError if there are none."""
        return list_media(self.videos_dir, "videos")

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


# ---- prompts of a case -----------------------------------------------------------------------
def _case_prompts(
    identity: Identity, motion: Motion, identity_dir: Path, prompts_per_case: int
) -> tuple[tuple[str, ...], str]:
    """The prompts of a case without a user prompt file and their source (module docstring)."""
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


# ---- building cases ---------------------------------------------------------------------------
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
        roots: tuple[Path, ...] = (sample_data_root(data_root),)
    else:
        roots = search_roots(data_root)
    root = roots[0]
    user_prompts = _user_prompts(prompt_file) if prompt_file is not None else None
    dirs = _suite_folders(suite, roots)
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


def _suite_folders(suite: Suite, roots: Sequence[Path]) -> dict[tuple[str, str], Path]:
    """``(kind, name) -> folder`` of every identity and motion of ``suite``; one DataError
    naming the first missing folder (and how many more are missing)."""
    dirs: dict[tuple[str, str], Path] = {}
    missing: list[str] = []
    for kind, names in (
        ("identities", dict.fromkeys(i for i, _ in suite.pairs)),
        ("motions", dict.fromkeys(m for _, m in suite.pairs)),
    ):
        for name in names:
            try:
                dirs[kind, name] = locate(kind, name, roots)
            except DataError as exc:
                missing.append(str(exc))
    if missing:
        more = f" (and {len(missing) - 1} more missing)" if len(missing) > 1 else ""
        raise DataError(f"suite {suite.name!r}: {missing[0]}{more}")
    return dirs


def _first_line(path: Path) -> str | None:
    if not path.is_file():
        return None
    for line in read_text(path, DataError).splitlines():
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
    roots = search_roots(data_root)
    ident, identity_dir = _find_identity(identity, roots, class_noun)
    mot, motion_dir = _find_motion(motion, roots, action)
    if class_noun is not None:
        ident = _with(ident, "class_noun", class_noun, "class_noun")
    if action is not None:
        mot = _with(mot, "action", action, "action")
    return _make_case(
        ident,
        mot,
        roots[0],
        identity_dir,
        motion_dir,
        prompts_per_case=prompts_per_case,
        user_prompts=_user_prompts(prompt_file) if prompt_file is not None else None,
        prompt_file=prompt_file,
        num_prompts=num_prompts,
    )


def _find_identity(
    identity: str | Identity, roots: Sequence[Path], class_noun: str | None
) -> tuple[Identity, Path]:
    """The identity (a manifest entry, else made from its folder) and its folder."""
    if isinstance(identity, Identity):
        return identity, locate("identities", check_name(identity.name, "identity"), roots)
    name = check_name(identity, "identity")
    folder = locate("identities", name, roots)
    ident = load_identities().get(name)
    if ident is None:
        noun = class_noun or _first_line(folder / CLASS_NOUN_FILE)
        ident = Identity(name, noun or default_class_noun(name), "other", None)
    return ident, folder


def _find_motion(
    motion: str | Motion, roots: Sequence[Path], action: str | None
) -> tuple[Motion, Path]:
    """The motion (a manifest entry, else made from its folder) and its folder."""
    if isinstance(motion, Motion):
        return motion, locate("motions", check_name(motion.name, "motion"), roots)
    name = check_name(motion, "motion")
    folder = locate("motions", name, roots)
    mot = load_motions().get(name)
    if mot is None:
        phrase = action or _first_line(folder / MOTION_PROMPTS_FILE) or ""
        phrase = re.sub(r"^(?:a|an|the)\s+\w+\s+(?:is|are)\s+", "", phrase, flags=re.I)
        phrase = phrase.strip(" .") or default_action(name)
        mot = Motion(name, phrase, "custom", (name.lower(), default_action(name)))
    return mot, folder


def _with(obj: T, attr: str, value: str, what: str) -> T:
    value = " ".join(str(value).split())
    if not value or PLACEHOLDER in value:
        raise ConfigError(f"{what} must be non-empty and without '*', got {value!r}")
    return dataclasses.replace(obj, **{attr: value})  # type: ignore[type-var]
