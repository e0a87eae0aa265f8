"""The event log: what each process finished, one JSON line per stage, one file per process."""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import Any

from ..io import dumps_json, named_os_error
from ..provenance import now_iso, now_stamp


class EventLog:
    """Append-only JSON lines of finished stages, one file per process (no two writers share a
    file). Each line is written with one ``write`` call on an ``O_APPEND`` descriptor, so a
    killed process leaves whole lines. :func:`read_events` reads every process's log."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.path: Path | None = None

    def write(self, event: str, **fields: Any) -> None:
        if self.path is None:
            self.directory.mkdir(parents=True, exist_ok=True)
            stamp = now_stamp()
            self.path = (
                self.directory
                / f"{socket.gethostname()}-{os.getpid()}-{stamp}-{time.monotonic_ns() % 10**6}.jsonl"
            )
        line = dumps_json({"event": event, "time": now_iso(), **fields})
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, (line + "\n").encode("utf-8"))
            finally:
                os.close(fd)
        except OSError as exc:  # a full disk: name the log
            raise named_os_error(exc, self.path) from exc


def read_events(run_dir: str | Path, label: str | None = None) -> list[dict[str, Any]]:
    """Every event of a run (or of one method label), each with its log file as ``"log"``."""
    events = []
    for path in sorted(Path(run_dir).glob(f"{label or '*'}/events/*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                events.append({**json.loads(line), "log": path.name})
    return events
