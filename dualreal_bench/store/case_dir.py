"""One (method, case) folder of a run: the paths of its state, videos and records, its lock,
and setting invalid outputs aside."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from .names import video_key


class CaseDir:
    """Paths of one (method, case) inside a run."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.state = root / "state"
        self.videos = root / "videos"
        self.records = root / "records"
        self.train_stats = root / "train.json"

    @property
    def state_complete(self) -> bool:
        return (self.state / "COMPLETE").is_file()

    def video(self, prompt_index: int, seed: int) -> Path:
        return self.videos / f"{video_key(prompt_index, seed)}.mp4"

    def extras(self, prompt_index: int, seed: int) -> Path:
        return self.videos / f"{video_key(prompt_index, seed)}.extras.npz"

    def generation_info(self, prompt_index: int, seed: int) -> Path:
        """Provenance of a generated video (when, on which backbone), kept for its record."""
        return self.videos / f"{video_key(prompt_index, seed)}.json"

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold an exclusive advisory lock on the case (waits while another process has it).

        The lock is ``flock`` on the case directory itself, so it leaves no file behind, and
        the kernel releases it when its holder dies: a killed run never leaves a stale lock.
        Where ``fcntl`` is missing (Windows) this is a no-op.
        """
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows
            yield
            return
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.root, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock

    def record(self, prompt_index: int, seed: int) -> Path:
        return self.records / f"{video_key(prompt_index, seed)}.json"

    def video_files(self, prompt_index: int, seed: int) -> list[Path]:
        """Every file the generation stage writes for one video (sidecars first)."""
        return [
            self.extras(prompt_index, seed),
            self.generation_info(prompt_index, seed),
            self.video(prompt_index, seed),
        ]

    def set_aside(self, paths: list[Path], stamp: str) -> list[Path]:
        """Move ``paths`` (files of this case) that exist into ``invalid/<stamp>/``, keeping
        their place in the case (``records/p000_s0.json`` -> ``invalid/<stamp>/records/
        p000_s0.json``); return where they went. Readers' globs never look there, and a
        resumed run redoes what was moved. Call it under :meth:`lock`."""
        moved = []
        for path in paths:
            if not (path.is_file() or path.is_symlink()):
                continue
            target = self.root / "invalid" / stamp / path.relative_to(self.root)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, target)
            moved.append(target)
        return moved

    def remove_stale_temps(self) -> None:
        """Remove the temp files and directories killed writers left in the case: hidden
        ``.name...tmp*`` files and ``.state.*`` directories. Call it under :meth:`lock`, when
        no other writer can be inside."""
        for folder in (self.root, self.videos, self.records):
            if not folder.is_dir():
                continue
            for entry in folder.iterdir():
                name = entry.name
                if not name.startswith("."):
                    continue
                if entry.is_dir() and name.startswith(f".{self.state.name}."):
                    shutil.rmtree(entry, ignore_errors=True)
                elif entry.is_file() and ".tmp" in name:
                    entry.unlink(missing_ok=True)
