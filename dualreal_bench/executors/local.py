"""The local executor: cases one after another in this process, with one backbone and one
evaluator kept across cases."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..spec import Case
from .worker import CaseWorker

if TYPE_CHECKING:
    from ..progress import RunProgress


def run_local(
    worker: CaseWorker, cases: Sequence[Case], progress: RunProgress | None = None
) -> Counter:
    """Run ``cases`` with ``worker``; the summed stage counts. ``progress``: a
    :class:`~dualreal_bench.progress.RunProgress` (its header names the variant and the
    current case) or None."""
    counts: Counter = Counter()
    task = progress.add_task("cases", total=len(cases)) if progress else None
    for case in cases:
        counts.update(worker.run_case(case, progress))
        if progress:
            progress.advance(task)
    return counts
