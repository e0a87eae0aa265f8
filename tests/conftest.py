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


# after the environment above, which must precede any torch import (none of these imports torch)
import pytest  # noqa: E402
from test_resilience_helpers import torch_threads  # noqa: E402

from dualreal_bench.run_config import RunConfig  # noqa: E402
from dualreal_bench.runner import Runner  # noqa: E402
from dualreal_bench.sample_data import ensure_sample_data  # noqa: E402
from dualreal_bench.spec import build_cases  # noqa: E402


@pytest.fixture
def one_torch_thread():
    """torch on one thread during the test, restored after. Small tensors gain nothing from
    threads, and on a shared 2-core machine OpenMP spin-waiting makes them up to 20x slower.
    A module opts in with ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``."""
    with torch_threads(1):
        yield


@pytest.fixture(scope="module")
def backbone():
    """The tiny backbone (random weights, CPU), one per test module. A test that hooks or
    fine-tunes it must leave it as it found it (a method's ``teardown``), as the runner does;
    one that needs a private copy loads its own."""
    from dualreal_bench.backbone import load_backbone  # torch + diffusers: only where used

    return load_backbone("tiny")


@pytest.fixture(scope="session")
def smoke_case(tmp_path_factory):
    """The smoke suite's one case (an immutable ``Case``), on the sample data the project
    generates, in a folder of the session's own."""
    root = ensure_sample_data(tmp_path_factory.mktemp("sample") / "data")
    return build_cases("smoke", data_root=root)[0]


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory):
    """A real run of the pipeline (``base`` on the smoke suite, tiny backbone and metrics, one
    prompt, seed 0), in this process: ``(output_dir, run_id, summary)``. Shared by every test
    that reads what the runner writes."""
    out = tmp_path_factory.mktemp("smoke-run")
    config = RunConfig(method="base", suite="smoke", num_prompts=1, output_dir=str(out),
                       progress=False, run_id="smoke")  # fmt: skip
    return out, "smoke", Runner(config).run()


@pytest.fixture
def one_thread():
    """torch on one thread for the test (the tiny models are faster so on a shared machine),
    the previous count restored after."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
