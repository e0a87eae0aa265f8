"""Test-session defaults.

VBench's original code serves as the parity oracle. The README's install step puts it in
``.oracles/vbench`` (``pip install --no-deps --target ...``); point the parity tests at it
unless ``DUALREAL_BENCH_VBENCH_ORACLE`` names another directory.
"""

from __future__ import annotations

import os
from pathlib import Path

_ORACLE = Path(__file__).resolve().parent.parent / ".oracles" / "vbench"
if not os.environ.get("DUALREAL_BENCH_VBENCH_ORACLE") and _ORACLE.is_dir():
    os.environ["DUALREAL_BENCH_VBENCH_ORACLE"] = str(_ORACLE)
