"""The family tables (fixtures/families/_tools/tables) build exactly the committed family files, and
the builder's worked examples hold.

Run in a subprocess: the builder's modules import each other by bare names (``layout``, ``tables``)
from their own folder, which must not land on this process's ``sys.path``.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import FIXTURES

TOOLS = FIXTURES / "families" / "_tools"


def test_committed_family_files_are_what_the_tables_build() -> None:
    done = subprocess.run([sys.executable, TOOLS / "build_families.py", "--check"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.endswith("0 problem(s)\n")


@pytest.mark.parametrize("module", ["layout", "parts", "configs", "family"])
def test_builder_docstring_examples(module: str) -> None:
    done = subprocess.run([sys.executable, "-m", "doctest", f"{module}.py"], cwd=TOOLS,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
