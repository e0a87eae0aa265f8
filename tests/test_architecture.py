"""The import architecture holds, and its checks bite; the light modules stay light.

``scripts/check_architecture.py`` runs import-linter's contracts (pyproject.toml: the core never
imports methods, metrics, the run or the CLI; metrics never import the backbone or a method;
methods never import the run or the CLI; the report never imports a method or the backbone;
executors never import the runner; a layers contract over the whole package) and forbids import
cycles. The tree must pass; a copy of it with one wrong import added must fail, naming it.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
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
    _append(
        tree_copy / "dualreal_bench" / "store" / "__init__.py",
        "import dualreal_bench.runner  # scratch",
    )
    ok, report = arch.check(tree_copy)
    assert not ok
    assert "the core imports no method, metric, backbone, run, report, analysis or CLI BROKEN" in (
        report
    )
    assert "dualreal_bench.store -> dualreal_bench.runner" in report


def test_a_method_importing_the_runner_breaks_the_methods_contract(tree_copy):
    # methods/ installs as dualreal_bench.methods: the check must see it through the staging
    _append(
        tree_copy / "methods" / "lora" / "__init__.py",
        "from dualreal_bench import runner  # scratch",
    )
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


#: modules whose import must not load a heavy library: the CLI builds its parser from every
#: command (and sets OMP_WAIT_POLICY before torch loads), `import dualreal_bench` is for
#: plug-in authors, and the store, spec, records, runner and report need no model code
LIGHT = [
    "dualreal_bench",
    "dualreal_bench.cli",
    *(f"dualreal_bench.commands.{c}" for c in ("run", "evaluate", "report", "list", "inspect")),
    "dualreal_bench.commands.estimate",
    "dualreal_bench.runner",
    "dualreal_bench.run_config",
    "dualreal_bench.executors.worker",
    "dualreal_bench.executors.local",
    "dualreal_bench.executors.ray_executor",
    "dualreal_bench.report",
    "dualreal_bench.analysis.cost",
    "dualreal_bench.metrics",
    "dualreal_bench.method",
    "dualreal_bench.store",
    "dualreal_bench.records",
    "dualreal_bench.spec",
    "dualreal_bench.media",
    "dualreal_bench.sample_data",
]
HEAVY = ("torch", "diffusers", "transformers", "open_clip", "peft", "ray", "matplotlib", "pandas")


def test_light_modules_import_no_heavy_library():
    code = (
        "import importlib, json, sys\n"
        "for name in sys.argv[1:]:\n"
        "    importlib.import_module(name)\n"
        f"    heavy = [h for h in {HEAVY!r} if h in sys.modules]\n"
        "    if heavy:\n"
        "        print(json.dumps([name, heavy]))\n"
        "        break\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, *LIGHT], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    first = json.loads(done.stdout) if done.stdout.strip() else None
    assert first is None, f"importing {first[0]} loads {', '.join(first[1])}"


def test_the_readme_map_names_every_room():
    """ "Where things are" in the README names every public top-level module and package of
    ``dualreal_bench/`` and ``methods/`` (so a new room cannot land without its line)."""
    text = (ROOT / "README.md").read_text()
    start = text.index("## Where things are")
    block = text[start : text.index("```", text.index("```", start) + 3)]
    missing = []
    for folder in ("dualreal_bench", "methods"):
        for path in sorted((ROOT / folder).iterdir()):
            if path.name.startswith("__") or (path.is_file() and path.name.startswith("_")):
                continue
            name = f"{path.name}/" if path.is_dir() else path.name
            if (path.is_dir() or path.suffix == ".py") and name not in block:
                missing.append(f"{folder}/{name}")
    assert not missing, f"README's 'Where things are' lacks {', '.join(missing)}"
