"""What ``dualreal-bench list identities|motions|suites`` shows: the manifests' entries and,
with a data root, what of each is on disk."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import DataError
from .data_root import AUTHORS_PROMPT_FILE, DATA_ROOT_ENV, list_media, locate, search_roots
from .manifests import load_identities, load_motions, load_suites


def _listing_root(data_root: str | Path | None) -> tuple[Path, ...]:
    """Roots for availability columns: explicit root (errors propagate), else a valid
    ``$DUALREAL_BENCH_DATA``, else none."""
    if data_root is None:
        data_root = os.environ.get(DATA_ROOT_ENV)
        if not data_root or not Path(data_root).expanduser().is_dir():
            return ()
    return search_roots(data_root)


def _count(kind: str, name: str, roots: Sequence[Path]) -> int | None:
    try:
        folder = locate(kind, name, roots)
    except DataError:
        return None
    sub = "images" if kind == "identities" else "videos"
    return len(list_media(folder / sub, sub, allow_empty=True))


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
