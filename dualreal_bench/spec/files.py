"""Reading the benchmark's text files: the shipped manifests' folder, UTF-8 text with errors
that name the file, and header-checked CSV rows with their line numbers."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

from ..errors import ConfigError


def benchmark_dir() -> Path:
    """The folder of the shipped manifests (``benchmark/`` in the repository)."""
    return Path(str(resources.files("dualreal_bench.benchmark")))


def manifest_path(path: str | Path | None, default: str) -> Path:
    """``path``, else the shipped manifest ``default`` (a file name in :func:`benchmark_dir`)."""
    return Path(path) if path is not None else benchmark_dir() / default


def read_text(
    path: Path, error: type[Exception], *, what: str = "file", expected: str = "a file"
) -> str:
    """The UTF-8 text of ``path`` (a BOM is allowed). ``error`` (naming the file, and the byte
    and offset of a decoding error) if it is missing, a directory, unreadable or not UTF-8;
    ``what`` / ``expected`` word the first two (``"cases file"``, ``"a CSV file of ..."``)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise error(f"{path}: {what} not found") from None
    except IsADirectoryError:
        raise error(f"{path}: is a directory, expected {expected}") from None
    except OSError as exc:
        raise error(f"{path}: cannot read ({exc.strerror})") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise error(
            f"{path}: not UTF-8 text (invalid byte 0x{data[exc.start]:02x} at offset {exc.start})"
        ) from None


def read_csv(path: Path, columns: Sequence[str]) -> list[tuple[int, dict[str, str]]]:
    """Rows of a manifest CSV with their line numbers; the header must name ``columns``."""
    reader = csv.reader(io.StringIO(read_text(path, ConfigError), newline=""))
    header = next(reader, None)
    if header is None or [h.strip() for h in header] != list(columns):
        raise ConfigError(f"{path}: header must be {','.join(columns)!r}, found {header!r}")
    rows = []
    for values in reader:
        line = reader.line_num
        if not any(v.strip() for v in values):
            continue
        if len(values) != len(columns):
            raise ConfigError(
                f"{path}, line {line}: expected {len(columns)} fields, found {len(values)}"
            )
        rows.append((line, {c: v.strip() for c, v in zip(columns, values, strict=True)}))
    if not rows:
        raise ConfigError(f"{path}: no rows")
    return rows
