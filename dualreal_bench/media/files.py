"""Finding media files: image and video files of a folder in a stable (natural) order, and the
checks every reader makes before decoding a file."""

from __future__ import annotations

import errno
import os
import re
from pathlib import Path

from ..errors import MediaError

IMAGE_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".webp", ".bmp")
VIDEO_EXTENSIONS: tuple[str, ...] = (".avi", ".mp4", ".mov", ".mkv", ".webm")

PathLike = str | os.PathLike


def _natural_key(path: Path) -> tuple[list[object], str]:
    """Sort key that orders ``img2`` before ``img10`` (digits compare as numbers, letters
    case-insensitively; the exact name breaks ties so the order never depends on the OS)."""
    parts = [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", path.name)]
    return parts, path.name


def _list_files(
    directory: PathLike, extensions: tuple[str, ...], kind: str, allow_empty: bool
) -> list[Path]:
    d = Path(directory)
    if not d.exists():
        raise MediaError(f"{d}: no such directory")
    if not d.is_dir():
        raise MediaError(f"{d}: not a directory")
    files = []
    for p in d.iterdir():
        if p.name.startswith(".") or p.suffix.lower() not in extensions:
            continue
        if p.is_file():
            files.append(p)
        elif p.is_symlink() and not p.is_dir():  # a broken link or a loop: never skipped
            raise MediaError(f"{p}: {_not_a_file(p)}; remove it or fix it")
    if not files and not allow_empty:
        raise MediaError(f"{d}: no {kind} files (looked for {', '.join(extensions)})")
    return sorted(files, key=_natural_key)


def _not_a_file(path: Path) -> str:
    """What the symbolic link ``path`` is, given it leads to no regular file."""
    try:
        target = os.readlink(path)
    except OSError:
        target = "?"
    try:
        path.stat()
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return f"symbolic link loop (-> {target})"
        return f"broken symbolic link (-> {target}, which does not exist)"
    return f"symbolic link to something that is not a file (-> {target})"


def list_images(directory: PathLike, *, allow_empty: bool = False) -> list[Path]:
    """Image files (jpg, jpeg, png, webp, bmp; any case) directly in ``directory``.

    Sorted by name with numbers compared numerically; hidden files (``.*``) are skipped.
    Raises MediaError if the directory is missing or (unless ``allow_empty``) holds no image,
    or if an entry named as an image is a symbolic link that leads to no file (broken, a
    loop): a reference the user meant to give is never skipped in silence. Folders are
    skipped.
    """
    return _list_files(directory, IMAGE_EXTENSIONS, "image", allow_empty)


def list_videos(directory: PathLike, *, allow_empty: bool = False) -> list[Path]:
    """Video files (avi, mp4, mov, mkv, webm; any case) directly in ``directory``.

    Same ordering and errors as :func:`list_images`.
    """
    return _list_files(directory, VIDEO_EXTENSIONS, "video", allow_empty)


def check_file(path: PathLike) -> Path:
    """``path`` as a Path; MediaError if it is missing, a directory or empty."""
    p = Path(path)
    if not p.exists():
        raise MediaError(f"{p}: no such file")
    if p.is_dir():
        raise MediaError(f"{p}: is a directory, not a file")
    if p.stat().st_size == 0:
        raise MediaError(f"{p}: empty file (0 bytes)")
    return p


def one_line(error: BaseException) -> str:
    """An exception's message on one line (for a ``"<path>: <problem>"`` error)."""
    return " ".join(str(error).split()) or type(error).__name__
