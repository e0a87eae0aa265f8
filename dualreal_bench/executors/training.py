"""The training stage of a case: train the method and save its state, or load the state a
previous run saved (a complete ``state/`` marks the stage done; a state that does not read is
an error naming the file, since training is too costly to redo behind the user's back)."""

from __future__ import annotations

import time
from collections import Counter
from typing import TYPE_CHECKING, Any

from ..errors import WeightsError
from ..io import atomic_write_json, failpoint
from ..method import Method
from ..provenance import now_iso
from ..spec import Case
from ..store import CaseDir, EventLog
from .seeding import global_seed, seed_global_rngs

if TYPE_CHECKING:
    from ..progress import RunProgress


def train_or_load(
    method: Method,
    case: Case,
    cdir: CaseDir,
    *,
    method_seed: int,
    memory_plan: Any,
    events: EventLog,
    counts: Counter,
    progress: RunProgress | None,
) -> None:
    """Train ``method`` on ``case`` and save its state, or load the state a run saved.

    ``method_seed``: the method config's seed (the stage's global generators derive from it);
    ``memory_plan``: the settings chosen under ``memory_budget`` (None without one), whose
    summary the training statistics keep."""
    if not method.trains:
        return
    if cdir.state_complete:
        _load_state(method, cdir)
        counts["loaded"] += 1
        events.write("loaded", case=case.case_id)
        return
    task = progress.add_task("train", total=None) if progress else None
    method.progress_callback = _on_progress(progress, task)
    seed_global_rngs(global_seed(method_seed, case.case_id, "train"))
    started = now_iso()
    t0 = time.perf_counter()
    stats = method.train(case) or {}
    seconds = time.perf_counter() - t0
    if memory_plan is not None:
        stats["memory_plan"] = memory_plan.summary()
    atomic_write_json(
        cdir.train_stats,
        {"started": started, "finished": now_iso(), "seconds": seconds, **stats},
    )
    method.save(cdir.state)  # the complete state marks the training stage done
    counts["trained"] += 1
    events.write("trained", case=case.case_id, seconds=round(seconds, 3))
    if progress:
        progress.remove_task(task)


def _load_state(method: Method, cdir: CaseDir) -> None:
    """Restore the state a run saved; a WeightsError names the state folder."""
    try:
        method.load(cdir.state)
    except WeightsError as exc:
        msg = str(exc)
        raise WeightsError(msg if str(cdir.state) in msg else f"{cdir.state}: {msg}") from None


def _on_progress(progress: RunProgress | None, task: Any):
    """The method's progress callback: the training row of ``progress`` (the loss has its own
    column; the variant and case are in the header), and the ``train_step`` failpoint."""

    def on_progress(stage: str, step: int, total: int, info: dict[str, Any]) -> None:
        if progress:
            loss = info.get("loss")
            progress.update(
                task,
                completed=step,
                total=total,
                description=stage,
                loss=None if loss is None else float(loss),
            )
        if stage.startswith("train"):
            failpoint("train_step")

    return on_progress
