"""Reading the runs under an output root: which there are, the latest, and each label's
progress (records written against every shard's plan)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..errors import DataError
from ..io import read_json_object


def list_runs(root: str | Path) -> list[str]:
    root = Path(root)
    return sorted(p.parent.name for p in root.glob("*/run.json"))


def run_modified(run_dir: str | Path) -> float:
    """When a run was last written to (seconds since the epoch): the newest modification time
    of ``run.json`` and of the run's folders. Every store write creates or replaces a file
    (atomically, or as a new per-process event log), which updates its folder's time, so
    folders suffice and a run of 50,000 videos costs a few thousand ``stat`` calls."""
    run_dir = Path(run_dir)
    newest = (run_dir / "run.json").stat().st_mtime
    for folder, _, _ in os.walk(run_dir):
        newest = max(newest, os.stat(folder).st_mtime)
    return newest


def latest_run(root: str | Path) -> str:
    """The run under ``root`` written to most recently (:func:`run_modified`); DataError if
    there is none."""
    runs = list_runs(root)
    if not runs:
        raise DataError(
            f"{root}: no runs found (run `dualreal-bench run` first, or pass --output-dir)"
        )
    return max(runs, key=lambda run_id: (run_modified(Path(root) / run_id), run_id))


def expected_videos(output_dir: str | Path, run_id: str) -> dict[str, dict[str, int]]:
    """method label -> case id -> number of videos every shard planned for it."""
    run_dir = Path(output_dir) / run_id
    out: dict[str, dict[str, int]] = {}
    for path in sorted(run_dir.glob("*/expected/*.json")):
        label = path.parent.parent.name
        for case_id, n in read_json_object(path).items():
            out.setdefault(label, {})[case_id] = max(n, out.get(label, {}).get(case_id, 0))
    return out


def run_status(output_dir: str | Path, run_id: str) -> list[dict[str, Any]]:
    """One row per method label (variant) of a run: its method name, the records written and
    the records expected (every shard's plan; None when no plan was written), in label order."""
    run_dir = Path(output_dir) / run_id
    expected = expected_videos(output_dir, run_id)
    rows = []
    for method_json in sorted(run_dir.glob("*/method.json")):
        label = method_json.parent.name
        try:
            name = read_json_object(method_json).get("name")
        except DataError:
            name = None
        records = sum(
            1 for p in (run_dir / label).glob("*/records/*.json") if not p.name.startswith(".")
        )
        plan = expected.get(label)
        rows.append(
            {
                "label": label,
                "method": name,
                "records": records,
                "expected": sum(plan.values()) if plan is not None else None,
                "cases": len(plan) if plan is not None else None,
            }
        )
    return rows
