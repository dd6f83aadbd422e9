"""Draw quantresolve's package-level import graph (docs/import_graph.svg) from the code itself.

Nodes are the top-level packages and modules of ``quantresolve`` (``--expand PACKAGE`` draws a
package's children instead, e.g. ``--expand quantresolve.dispatch``); an arrow ``a → b`` means
some module of ``a`` imports some module of ``b`` (lazy imports included), labelled with how many
module pairs do. Nodes sit in the rows of the ``layers`` contract of ``pyproject.toml``
([tool.importlinter]), top layer first, so an arrow pointing up would be a broken contract.
The graph comes from grimp; the drawing from Graphviz's ``dot`` (``apt-get install graphviz``)::

    .venv/bin/python docs/import_graph.py                 # writes docs/import_graph.svg
    .venv/bin/python docs/import_graph.py --dot -         # the DOT text on stdout
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections import Counter
from pathlib import Path

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

import grimp

REPO = Path(__file__).resolve().parents[1]
ROOT = "quantresolve"
#: Packages whose modules import torch (the rest is the torch-free core).
TORCH = {"quantresolve.dispatch", "quantresolve.integrations", "quantresolve.cli", "quantresolve.__main__"}


def contract_layers() -> list[list[str]]:
    """The rows of the ``layers`` contract, top first, as absolute module names."""
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    contract = next(c for c in config["tool"]["importlinter"]["contracts"] if c["id"] == "layers")
    rows = []
    for row in contract["layers"]:
        names = row.replace("|", ":").split(":")
        rows.append([f"{ROOT}.{n.strip()}" for n in names])
    return rows


def node_of(module: str, expand: set[str]) -> str:
    """The drawn node a module belongs to: its top-level package, or its child of an expanded package."""
    parts = module.split(".")
    if len(parts) == 1:
        return module
    node = ".".join(parts[:2])
    while node in expand and len(parts) > node.count(".") + 1:
        node = ".".join(parts[: node.count(".") + 2])
    return node


def edges(graph: grimp.ImportGraph, expand: set[str]) -> Counter[tuple[str, str]]:
    found: Counter[tuple[str, str]] = Counter()
    for module in graph.modules:
        for imported in graph.find_modules_directly_imported_by(module):
            a, b = node_of(module, expand), node_of(imported, expand)
            if a != b:
                found[(a, b)] += 1
    return found


def to_dot(graph: grimp.ImportGraph, expand: set[str]) -> str:
    found = edges(graph, expand)
    counts = Counter(node_of(m, expand) for m in graph.modules)
    lines = ["digraph quantresolve {",
             '  graph [rankdir=TB, ranksep=0.55, nodesep=0.35, fontname="Helvetica", fontsize=11, '
             'label="quantresolve: package imports (arrow = imports; label = module pairs). '
             'Green: torch-free core. Regenerate: python docs/import_graph.py", labelloc=b];',
             '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=11];',
             '  edge [color="#555555", fontname="Helvetica", fontsize=9, arrowsize=0.6];']
    placed: set[str] = set()
    for i, row in enumerate(contract_layers()):
        members = sorted(n for n in counts if any(n == r or n.startswith(r + ".") for r in row))
        lines.append(f"  subgraph layer{i} {{ rank=same;")
        if i == 0:  # the root facade sits above every layer
            lines.append(f'    "{ROOT}" [label="quantresolve (facade)\\n__init__", fillcolor="#e3f2fd"];')
        for node in members:
            placed.add(node)
            torch = any(node == t or node.startswith(t + ".") for t in TORCH)
            colour = "#ffe0b2" if torch else "#c8e6c9"
            label = f"{node.removeprefix(ROOT + '.')}\\n{counts[node]} module{'s' if counts[node] > 1 else ''}"
            lines.append(f'    "{node}" [label="{label}", fillcolor="{colour}"];')
        lines.append("  }")
    for node in sorted(set(counts) - placed - {ROOT}):
        lines.append(f'  "{node}" [fillcolor="#ffcdd2"];  // in no layer: the contract is not exhaustive')
    for (a, b), n in sorted(found.items()):
        lines.append(f'  "{a}" -> "{b}" [label="{n}"];')
    lines.append("}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--expand", action="append", default=[], help="draw this package's children (repeatable)")
    parser.add_argument("--dot", help="write the DOT text here ('-': stdout) instead of the SVG")
    parser.add_argument("--output", type=Path, default=REPO / "docs" / "import_graph.svg")
    args = parser.parse_args(argv)
    dot = to_dot(grimp.build_graph(ROOT, cache_dir=None), set(args.expand))
    if args.dot:
        if args.dot == "-":
            sys.stdout.write(dot)
        else:
            Path(args.dot).write_text(dot, encoding="utf-8")
        return 0
    svg = subprocess.run(["dot", "-Tsvg"], input=dot, capture_output=True, text=True, check=True).stdout
    args.output.write_text(svg, encoding="utf-8")
    print(args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
