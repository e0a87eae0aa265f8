"""Comparing a motion descriptor with the reference descriptors of every motion.

``motion_fidelity`` of a video = cosine of its descriptor to the centroid of the intended
motion's reference descriptors, and the rank of the intended motion among all motions
(1 = its centroid is the nearest). With ``center=True`` every descriptor first has the mean
reference descriptor (over all clips of all motions) subtracted: descriptors of non-negative
histograms share a large common component, and the cosine of what remains is what tells motions
apart (measured in ``scripts/motion_fidelity_validation.py``).

:func:`leave_one_clip_out` is the validation: each reference clip in turn is the query, the
others are the references (its own motion keeps its remaining clips).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ...errors import DataError


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float64)
    n = np.linalg.norm(x, axis=-1, keepdims=True)
    return np.divide(x, n, out=np.zeros_like(x), where=n > 0)


def reference_mean(references: Mapping[str, np.ndarray]) -> np.ndarray:
    """Mean descriptor over every reference clip of every motion, ``(D,)``."""
    return np.concatenate([np.atleast_2d(r) for r in references.values()]).mean(axis=0)


def motion_similarities(
    descriptor: np.ndarray,
    references: Mapping[str, np.ndarray],
    *,
    center: bool,
    mean: np.ndarray | None = None,
) -> dict[str, float]:
    """Cosine of ``descriptor (D,)`` to each motion's centroid (mean of its unit, centred clips).

    ``references``: motion name -> ``(n_clips, D)``. ``mean``: the vector subtracted when
    ``center`` (default: :func:`reference_mean` of ``references``).
    """
    if not references:
        raise DataError("motion fidelity: no reference descriptors")
    if center:
        mean = reference_mean(references) if mean is None else mean
    else:
        mean = 0.0
    q = _unit(np.asarray(descriptor, np.float64) - mean)
    out = {}
    for name, refs in references.items():
        refs = np.atleast_2d(refs)
        if len(refs) == 0:
            raise DataError(f"motion fidelity: motion {name!r} has no reference descriptors")
        out[name] = float(q @ _unit(_unit(refs - mean).mean(axis=0)))
    return out


def rank_of(similarities: Mapping[str, float], intended: str) -> int:
    """1 + the number of motions strictly more similar than ``intended``."""
    if intended not in similarities:
        raise DataError(
            f"motion fidelity: intended motion {intended!r} is not among the references "
            f"({', '.join(sorted(similarities))})"
        )
    return 1 + sum(s > similarities[intended] for s in similarities.values())


def motion_fidelity(
    descriptor: np.ndarray, references: Mapping[str, np.ndarray], intended: str, *, center: bool
) -> tuple[float, int]:
    """(cosine to the intended motion's centroid, rank of the intended motion among all)."""
    sims = motion_similarities(descriptor, references, center=center)
    rank = rank_of(sims, intended)  # checks that the intended motion is there
    return sims[intended], rank


@dataclass(frozen=True)
class RetrievalResult:
    """Leave-one-clip-out retrieval over the reference clips of ``n_motions`` motions."""

    n_motions: int
    n_queries: int
    top1: float
    top5: float
    mean_rank: float
    mean_rank_se: float  # standard error of the mean rank (sd / sqrt(n_queries))
    same_mean: float  # cosine of two clips of the same motion (mean, sd over pairs)
    same_sd: float
    diff_mean: float  # cosine of two clips of different motions (mean, sd over pairs)
    diff_sd: float
    motions_same_gt_diff: (
        int  # motions whose mean same-pair cosine > their mean different-pair cosine
    )
    ranks: dict[str, list[int]]  # motion -> rank of each of its clips as the query

    @property
    def chance_top1(self) -> float:
        return 1.0 / self.n_motions

    @property
    def chance_mean_rank(self) -> float:
        return (self.n_motions + 1) / 2


def leave_one_clip_out(
    descriptors: Mapping[str, Sequence[np.ndarray]], *, center: bool
) -> RetrievalResult:
    """Each clip against the centroids of every motion computed without it.

    ``descriptors``: motion -> its clips' descriptors (every motion needs >= 2 clips). With
    ``center``, the mean subtracted is that of the other clips (the query never sees itself).
    Same/different cosines are over pairs of clips, centred on the mean of all clips.
    """
    names = list(descriptors)
    if len(names) < 2:
        raise DataError("leave-one-clip-out retrieval needs at least 2 motions")
    for name in names:
        if len(descriptors[name]) < 2:
            raise DataError(
                f"leave-one-clip-out retrieval: motion {name!r} has {len(descriptors[name])} clip(s), needs 2"
            )
    ranks: dict[str, list[int]] = {}
    for name in names:
        for i, query in enumerate(descriptors[name]):
            refs = {
                m: np.stack([d for j, d in enumerate(descriptors[m]) if m != name or j != i])
                for m in names
            }
            sims = motion_similarities(query, refs, center=center)
            ranks.setdefault(name, []).append(rank_of(sims, name))
    flat = np.array([r for rs in ranks.values() for r in rs])

    all_desc = np.concatenate([np.stack(descriptors[m]) for m in names])
    labels = np.concatenate([[k] * len(descriptors[m]) for k, m in enumerate(names)])
    z = _unit(all_desc - (all_desc.mean(axis=0) if center else 0.0))
    sim = z @ z.T
    off = ~np.eye(len(z), dtype=bool)
    same = (labels[:, None] == labels[None, :]) & off
    diff = labels[:, None] != labels[None, :]
    iu = np.triu(np.ones_like(off), 1)
    same_pairs, diff_pairs = sim[same & iu], sim[diff & iu]
    wins = sum(
        sim[same & (labels[:, None] == k)].mean() > sim[diff & (labels[:, None] == k)].mean()
        for k in range(len(names))
    )
    return RetrievalResult(
        n_motions=len(names),
        n_queries=len(flat),
        top1=float((flat == 1).mean()),
        top5=float((flat <= 5).mean()),
        mean_rank=float(flat.mean()),
        mean_rank_se=float(flat.std(ddof=1) / np.sqrt(len(flat))),
        same_mean=float(same_pairs.mean()),
        same_sd=float(same_pairs.std()),
        diff_mean=float(diff_pairs.mean()),
        diff_sd=float(diff_pairs.std()),
        motions_same_gt_diff=int(wins),
        ranks=ranks,
    )
