"""The architecture of docs/architecture.md, enforced: layers, independence, no import circle, torch-free core.

1. Every import-linter contract of ``pyproject.toml`` ([tool.importlinter]: the top-level layers,
   the independent siblings, the name-free dispatcher, the torch-free core) holds — run through
   the environment's ``lint-imports``; a broken contract fails with its report.
2. No module-level import circle anywhere in ``quantresolve``: the strongly connected components
   of grimp's module graph (every import counts, lazy and ``TYPE_CHECKING`` ones too) are single
   modules.
3. Nothing below the root facade imports the root package ``quantresolve`` (a layers contract
   cannot say it: the root is the container of the layers).
4. The torch-free core at run time: importing every core package leaves torch out of
   ``sys.modules`` (the static half is the ``torch-free-core`` contract of 1).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

from tests.checkpoint.test_torch_free import _torch_loaded_after

REPO = Path(__file__).resolve().parents[1]

#: The packages that must run without torch.
TORCH_FREE_CORE = ("errors", "util", "formats", "naming", "checkpoint", "resolve", "audit")


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph("quantresolve", cache_dir=None)


def _lint_imports_command() -> list[str]:
    beside = Path(sys.executable).with_name("lint-imports")
    found = str(beside) if beside.exists() else shutil.which("lint-imports")
    if found is None:
        pytest.fail("lint-imports not found: install the dev extra (pip install -e '.[dev]'), which has import-linter")
    return [found, "--no-cache", "--no-logo", str(REPO / "pyproject.toml")]


def test_import_contracts_hold() -> None:
    proc = subprocess.run(_lint_imports_command(), cwd=REPO, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, f"import contract broken (see docs/architecture.md):\n{proc.stdout}{proc.stderr}"
    assert "broken" in proc.stdout and " 0 broken" in proc.stdout  # it really checked the contracts


def strongly_connected(graph: grimp.ImportGraph) -> list[frozenset[str]]:
    """The import circles: strongly connected components of more than one module (Tarjan, iterative)."""
    modules = sorted(graph.modules)
    edges = {m: sorted(graph.find_modules_directly_imported_by(m)) for m in modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[frozenset[str]] = []
    for root in modules:
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            node, i = work.pop()
            if i == 0:
                index[node] = low[node] = len(index)
                stack.append(node)
                on_stack.add(node)
            for j in range(i, len(edges[node])):
                nxt = edges[node][j]
                if nxt not in index:
                    work.append((node, j + 1))
                    work.append((nxt, 0))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                if low[node] == index[node]:
                    component = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.add(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(frozenset(component))
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
    return found


def _describe(graph: grimp.ImportGraph, cycle: frozenset[str]) -> str:
    first = min(cycle)
    back = next(m for m in sorted(cycle) if first in graph.find_modules_directly_imported_by(m))
    path = graph.find_shortest_chain(importer=first, imported=back) or (first, back)
    return f"{len(cycle)} modules, e.g. {' -> '.join(path)} -> {first}"


def test_no_import_circle(graph: grimp.ImportGraph) -> None:
    cycles = strongly_connected(graph)
    assert not cycles, "import circles (break each by moving the shared thing down or by a registry):\n" + "\n".join(
        _describe(graph, c) for c in sorted(cycles, key=min))


def test_strongly_connected_finds_a_circle() -> None:
    # The check itself must be able to fail.
    g = grimp.ImportGraph()
    for a, b in (("p.a", "p.b"), ("p.b", "p.c"), ("p.c", "p.a"), ("p.c", "p.d")):
        g.add_import(importer=a, imported=b)
    assert strongly_connected(g) == [frozenset({"p.a", "p.b", "p.c"})]


def test_nothing_imports_the_root_facade(graph: grimp.ImportGraph) -> None:
    assert graph.find_modules_that_directly_import("quantresolve") == set(), (
        "import the specific module (e.g. quantresolve.util.version), not the root facade")


def test_core_runs_without_torch() -> None:
    packages = ", ".join(f"quantresolve.{name}" for name in TORCH_FREE_CORE)
    code = (f"import {packages}\n"
            "import quantresolve.formats.loader, quantresolve.resolve.resolver, quantresolve.audit.engine\n"
            "import quantresolve.audit.render.terminal, quantresolve.audit.render.html")
    assert not _torch_loaded_after(code)
