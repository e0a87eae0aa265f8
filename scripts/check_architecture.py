"""Check the import architecture: import-linter's contracts (pyproject.toml) and no cycles.

    python scripts/check_architecture.py            # exit 0 if every contract holds

``methods/`` and ``benchmark/`` install as ``dualreal_bench.methods`` / ``dualreal_bench.benchmark``
(a package-dir mapping). import-linter and grimp find a package's modules by walking its
folder, so they would not see ``dualreal_bench.methods`` in the source tree; this script copies
the three folders into the installed layout in a temporary directory and checks that copy.

Cycles: grimp's graph of ``dualreal_bench`` (imports inside functions included) must have no
cycle of two or more modules. A package's ``__init__`` that imports its submodules counts as an
edge like any other, so a submodule must not import names back from its own package. Imports
under ``if TYPE_CHECKING:`` are left out of the cycle check (they never run: an annotation may
name a type from a module that imports this one) but count for the contracts.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAYOUT = {"dualreal_bench": "dualreal_bench", "methods": "dualreal_bench/methods",
          "benchmark": "dualreal_bench/benchmark"}  # fmt: skip


def stage(root: Path, dest: Path) -> Path:
    """Copy the package folders of ``root`` into the installed layout under ``dest``."""
    for folder, installed in LAYOUT.items():
        shutil.copytree(
            root / folder, dest / installed, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
        )
    shutil.copy2(root / "pyproject.toml", dest / "pyproject.toml")
    return dest


def find_cycles(staged: Path) -> list[list[str]]:
    """Strongly connected components of two or more modules in the import graph.

    grimp finds the package through the import system, which answers with the copy already
    imported if there is one: the graph is built in a fresh interpreter that sees the staged
    copy first (``--edges``)."""
    done = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--edges"],
        cwd=staged,
        env={**os.environ, "PYTHONPATH": str(staged)},
        capture_output=True,
        text=True,
        check=True,
    )
    return _strongly_connected(json.loads(done.stdout))


def _package_edges() -> dict[str, list[str]]:
    """module -> the package's modules it imports (TYPE_CHECKING imports left out)."""
    import grimp

    graph = grimp.build_graph("dualreal_bench", cache_dir=None, exclude_type_checking_imports=True)
    return {
        m: sorted(
            i for i in graph.find_modules_directly_imported_by(m) if i.startswith("dualreal_bench")
        )
        for m in graph.modules
    }


def _strongly_connected(edges: dict[str, list[str]]) -> list[list[str]]:
    """Tarjan's algorithm (iterative); components with one module are dropped."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    counter = 0
    for start in sorted(edges):
        if start in index:
            continue
        work = [(start, iter(edges.get(start, ())))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(edges.get(child, ()))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        out.append(sorted(component))
    return out


def lint_imports(staged: Path) -> subprocess.CompletedProcess:
    """import-linter's ``lint-imports`` on the staged copy, through this interpreter (its console
    script need not be on PATH), with the staged package first on the path."""
    env = {**os.environ, "PYTHONPATH": str(staged)}
    command = "from importlinter.cli import lint_imports_command; lint_imports_command()"
    return subprocess.run(
        [sys.executable, "-c", command, "--no-cache", "--no-logo"],
        cwd=staged,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def check(root: Path = ROOT) -> tuple[bool, str]:
    """(ok, report) for the tree at ``root``."""
    with tempfile.TemporaryDirectory(prefix="dualreal-arch-") as tmp:
        staged = stage(root, Path(tmp))
        done = lint_imports(staged)
        cycles = find_cycles(staged)
    lines = [done.stdout.strip(), done.stderr.strip()]
    lines += [f"import cycle: {' <-> '.join(c)}" for c in cycles] or ["no import cycles"]
    return done.returncode == 0 and not cycles, "\n".join(line for line in lines if line)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=ROOT, help="repository root to check")
    parser.add_argument("--edges", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.edges:  # find_cycles' helper: the graph of the importable package, as JSON
        print(json.dumps(_package_edges()))
        return 0
    ok, report = check(args.root)
    print(report)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
