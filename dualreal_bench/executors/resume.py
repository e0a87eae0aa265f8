"""What of a case is already done, for a run that resumes: the validity checks of its records
and videos, and setting invalid ones aside so that their stages are redone.

A record is done when :func:`~dualreal_bench.records.record_problem` finds nothing wrong (it
parses, validates, holds every metric and is the record of its video); a video is done when it
decodes and its provenance file, if any, reads. An output that exists but is not done is moved
into the case's ``invalid/<time>/`` folder (kept, named in a warning and in the event log).
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from pathlib import Path

from .. import metrics
from ..errors import DataError, MediaError
from ..io import read_json
from ..media import probe_video
from ..provenance import now_stamp
from ..records import record_problem
from ..spec import Case
from ..store import CaseDir, EventLog

#: the case worker's logger (the stages are the worker's: one name for all its lines)
logger = logging.getLogger("dualreal_bench.executors.worker")

#: one (prompt index, seed) of a case: one video and its record
Key = tuple[int, int]


class OutputChecks:
    """The done-checks of one method label's outputs. A file found valid is remembered by
    (path, size, mtime), so each version is parsed or decoded once per process (a resumed run
    asks twice: while checking, then per case)."""

    def __init__(self, label: str) -> None:
        self.label = label
        self._good_files: set[tuple[str, int, int]] = set()

    def record_problem(self, cdir: CaseDir, case: Case, key: Key) -> str | None:
        """None if the record of ``key`` is done (valid and complete), else why not
        (``"missing"`` or a message naming the file)."""
        path = cdir.record(*key)
        try:
            st = path.stat()
        except FileNotFoundError:
            return "missing"
        stamp = (str(path), st.st_size, st.st_mtime_ns)
        if stamp in self._good_files:
            return None
        problem = record_problem(
            path, fields=metrics.METRIC_FIELDS, key=(self.label, case.case_id, *key)
        )
        if problem is None:
            self._good_files.add(stamp)
        return problem

    def video_problem(self, cdir: CaseDir, key: Key) -> str | None:
        """None if the generated video of ``key`` is done (it decodes, with at least one frame,
        and its provenance file, if any, reads), else why not (``"missing"`` or a message
        naming the file)."""
        path = cdir.video(*key)
        if not path.is_file():
            return "missing"
        st = path.stat()
        stamp = (str(path), st.st_size, st.st_mtime_ns)
        if stamp not in self._good_files:
            try:
                probe_video(path)
            except MediaError as exc:
                return str(exc)
            self._good_files.add(stamp)
        info = cdir.generation_info(*key)
        if info.is_file():
            try:
                doc = read_json(info)
            except DataError as exc:
                return str(exc)
            if not isinstance(doc, dict):
                return f"{info}: holds {type(doc).__name__} JSON, not an object"
        return None

    def set_aside_invalid(
        self, case: Case, cdir: CaseDir, keys: list[Key], events: EventLog, counts: Counter
    ) -> list[Key]:
        """Of ``keys``, those still to do; their invalid records and videos moved aside first
        (call it under the case's lock), so that the stages redo them."""
        stamp = f"{now_stamp()}-{os.getpid()}"
        pending = []
        for key in keys:
            problem = self.record_problem(cdir, case, key)
            if problem is None:
                continue
            pending.append(key)
            if problem != "missing":
                _set_aside(case, cdir, [cdir.record(*key)], problem, stamp, events, counts)
            problem = self.video_problem(cdir, key)
            if problem not in (None, "missing"):
                _set_aside(case, cdir, cdir.video_files(*key), problem, stamp, events, counts)
        return pending


def _set_aside(
    case: Case,
    cdir: CaseDir,
    paths: list[Path],
    problem: str,
    stamp: str,
    events: EventLog,
    counts: Counter,
) -> None:
    """Move ``paths`` into ``invalid/<stamp>/``, saying so in a warning and the event log."""
    moved = cdir.set_aside(paths, stamp)
    if not moved:
        return
    logger.warning(
        "%s; moved to %s, to be redone",
        problem,
        ", ".join(str(p.relative_to(cdir.root)) for p in moved),
    )
    counts["set_aside"] += len(moved)
    events.write(
        "set_aside",
        case=case.case_id,
        problem=problem,
        moved=[str(p.relative_to(cdir.root)) for p in moved],
    )
