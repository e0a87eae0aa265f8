"""Cases files (``--cases FILE``: a CSV of identity,motion pairs, the layout of the authors'
``paper_cases.csv``) and shards (``--shard i/N``): which cases a run works on."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path
from typing import TypeVar

from ..errors import BenchmarkError, DataError
from .cases import Case, build_case
from .data_root import resolve_data_root
from .files import read_text
from .manifests import check_name
from .prompts import read_prompt_file

#: the suite name of a run whose cases come from a cases file (``--cases FILE``)
CUSTOM_SUITE = "custom"
#: header of a cases file (the layout of the authors' paper_cases.csv)
CASES_COLUMNS = ("identity", "motion")

T = TypeVar("T")


def read_cases_file(
    path: str | Path,
    *,
    data_root: str | Path | None = None,
    prompt_file: str | Path | None = None,
    num_prompts: int | None = None,
) -> list[Case]:
    """The cases of a CSV file with the header ``identity,motion`` (one pair a line, the
    layout of the authors' ``paper_cases.csv``), each found in ``data_root``.

    Errors name the file and line: not UTF-8, a wrong header, a path-like or unknown name, a
    duplicate pair, no pairs.
    """
    path = Path(path)
    text = read_text(path, DataError, what="cases file", expected="a CSV file of identity,motion")
    # what every line shares is checked once, so its errors name it rather than a line
    resolve_data_root(data_root)
    if prompt_file is not None:
        read_prompt_file(prompt_file)
    cases = []
    for where, identity, motion in _cases_file_pairs(path, text):
        try:
            cases.append(build_case(identity, motion, data_root, prompt_file, num_prompts))
        except BenchmarkError as exc:
            raise type(exc)(f"{where}: {exc}") from None
    if not cases:
        raise DataError(f"{path}: no identity,motion pairs")
    return cases


def _cases_file_pairs(path: Path, text: str) -> list[tuple[str, str, str]]:
    """``(where, identity, motion)`` of each line of a cases file (``where``: file and line),
    names checked, duplicates refused."""
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if header is None or [h.strip().lower() for h in header] != list(CASES_COLUMNS):
        raise DataError(f"{path}: header must be {','.join(CASES_COLUMNS)!r}, found {header!r}")
    pairs, seen = [], {}
    for values in reader:
        where = f"{path}, line {reader.line_num}"
        if not any(v.strip() for v in values):
            continue
        if len(values) != len(CASES_COLUMNS):
            raise DataError(f"{where}: expected 2 fields (identity,motion), found {len(values)}")
        identity, motion = (v.strip() for v in values)
        check_name(identity, f"{where}: identity", error=DataError)
        check_name(motion, f"{where}: motion", error=DataError)
        if (identity, motion) in seen:
            first = seen[identity, motion]
            raise DataError(f"{where}: duplicate pair {identity},{motion} (first on line {first})")
        seen[identity, motion] = reader.line_num
        pairs.append((where, identity, motion))
    return pairs


def shard_cases(cases: Sequence[T], index: int, count: int) -> list[T]:
    """Deterministic split for job arrays: case ``k`` goes to shard ``k % count``."""
    return list(cases[index::count])
