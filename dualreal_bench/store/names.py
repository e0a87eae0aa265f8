"""What a folder or file name of the store may be: labels and ids checked for their characters
and for the filesystem's name length, and the key of one video (``p007_s0``)."""

from __future__ import annotations

import os
import re
from pathlib import Path

from ..errors import ConfigError

_LABEL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.,=+\[\]-]*$")


# ---- the store ---------------------------------------------------------------------------


def video_key(prompt_index: int, seed: int) -> str:
    return f"p{prompt_index:03d}_s{seed}"


def check_label(label: str, what: str = "method label") -> str:
    if not _LABEL_RE.match(label) or ".." in label:
        raise ConfigError(f"invalid {what} {label!r}: use letters, digits and _ . , = + [ ] -")
    return label


#: NAME_MAX where the filesystem does not say (ext4, xfs, btrfs, tmpfs, NFS: 255 bytes)
DEFAULT_NAME_MAX = 255


def name_max(path: Path) -> int:
    """The longest file or folder name (bytes) the filesystem holding ``path`` (or its nearest
    existing ancestor) allows."""
    for folder in (path, *path.parents):
        try:
            if folder.is_dir():
                return int(os.pathconf(folder, "PC_NAME_MAX"))
        except (OSError, ValueError, AttributeError):  # no pathconf (Windows), a long name
            continue
    return DEFAULT_NAME_MAX


def check_name_length(name: str, what: str, root: Path, hint: str, limit: int) -> str:
    """``name`` if it fits in one path component under ``root`` (``limit`` bytes), else a
    ConfigError saying which name, how long, the limit and ``hint`` (what to shorten)."""
    size = len(name.encode("utf-8"))
    if size > limit:
        shown = name if len(name) <= 48 else name[:45] + "..."
        raise ConfigError(
            f"{what} {shown!r} is {size} bytes long, but the filesystem of {root} allows at "
            f"most {limit} per file or folder name; {hint}"
        )
    return name
