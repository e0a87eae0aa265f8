"""The import architecture holds, and its checks bite.

``scripts/check_architecture.py`` runs import-linter's contracts (pyproject.toml: the core never
imports methods, metrics, the run or the CLI; metrics never import the backbone or a method;
methods never import the run or the CLI; the report never imports a method or the backbone;
executors never import the runner; a layers contract over the whole package) and forbids import
cycles. The tree must pass; a copy of it with one wrong import added must fail, naming it.
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load_script():
    spec = importlib.util.spec_from_file_location(
        "check_architecture", ROOT / "scripts" / "check_architecture.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


arch = _load_script()


@pytest.fixture
def tree_copy(tmp_path) -> Path:
    """The source tree's package folders and pyproject.toml, in the source layout."""
    for folder in arch.LAYOUT:
        shutil.copytree(
            ROOT / folder, tmp_path / folder, ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copy2(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def _append(path: Path, line: str) -> None:
    path.write_text(path.read_text() + f"\n{line}\n")


def test_the_tree_keeps_every_contract_and_has_no_cycle():
    ok, report = arch.check(ROOT)
    assert ok, report
    assert "0 broken" in report and "no import cycles" in report
    # every contract of pyproject.toml was checked (a contract that fails to load is no check)
    assert report.count(" KEPT") >= 6, report


def test_a_core_module_importing_the_runner_breaks_the_core_contract(tree_copy):
    _append(tree_copy / "dualreal_bench" / "store.py", "import dualreal_bench.runner  # scratch")
    ok, report = arch.check(tree_copy)
    assert not ok
    assert "the core imports no method, metric, backbone, run, report, analysis or CLI BROKEN" in (
        report
    )
    assert "dualreal_bench.store -> dualreal_bench.runner" in report


def test_a_method_importing_the_runner_breaks_the_methods_contract(tree_copy):
    # methods/ installs as dualreal_bench.methods: the check must see it through the staging
    _append(tree_copy / "methods" / "lora.py", "from dualreal_bench import runner  # scratch")
    ok, report = arch.check(tree_copy)
    assert not ok
    assert "methods import no run, report, analysis or CLI BROKEN" in report
    assert "dualreal_bench.methods.lora -> dualreal_bench.runner" in report


def test_an_import_inside_a_function_counts(tree_copy):
    _append(
        tree_copy / "dualreal_bench" / "metrics" / "functional.py",
        "def _scratch():\n    from ..backbone import load_backbone\n\n    return load_backbone",
    )
    ok, report = arch.check(tree_copy)
    assert not ok
    assert "metrics import no backbone, method, run, report or CLI BROKEN" in report


def test_an_import_cycle_fails_even_where_no_contract_breaks(tree_copy):
    # spec.manifests imports spec.files; the reverse closes a cycle inside one room
    _append(
        tree_copy / "dualreal_bench" / "spec" / "files.py", "from . import manifests  # scratch"
    )
    ok, report = arch.check(tree_copy)
    assert not ok
    assert "0 broken" in report
    assert "import cycle: dualreal_bench.spec.files <-> dualreal_bench.spec.manifests" in report
