"""Test-session defaults.

VBench's original code serves as the parity oracle. The README's install step puts it in
``.oracles/vbench`` (``pip install --no-deps --target ...``); point the parity tests at it
unless ``DUALREAL_BENCH_VBENCH_ORACLE`` names another directory.

The user cache (sample data, metric reference values; see ``dualreal_bench.cache``) is a
temporary folder for the session unless ``DUALREAL_BENCH_CACHE`` names one (CI does): tests
neither read nor fill the developer's ``~/.cache/dualreal-bench``.

As the CLI does, idle OpenMP threads sleep (``OMP_WAIT_POLICY=PASSIVE``, set before torch
loads): on a busy machine spinning threads slow small ops several-fold; no result changes.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

_ORACLE = Path(__file__).resolve().parent.parent / ".oracles" / "vbench"
if not os.environ.get("DUALREAL_BENCH_VBENCH_ORACLE") and _ORACLE.is_dir():
    os.environ["DUALREAL_BENCH_VBENCH_ORACLE"] = str(_ORACLE)

if not os.environ.get("DUALREAL_BENCH_CACHE"):
    _CACHE = tempfile.mkdtemp(prefix="dualreal-bench-test-cache-")
    os.environ["DUALREAL_BENCH_CACHE"] = _CACHE
    atexit.register(shutil.rmtree, _CACHE, True)

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
