"""Run the worked examples in the checkpoint modules' docstrings."""

from __future__ import annotations

import pytest

from ..docstring_examples import check_examples

MODULES = [
    "catalog",
    "dtypes",
    "evidence",
    "grouping",
    "header",
    "inventory",
    "jsonutil",
    "locate",
    "reader",
    "remote",
    "shapes",
    "suffixes",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    check_examples(f"quantresolve.checkpoint.{name}")


@pytest.mark.parametrize("name", ["gcpause", "containment", "jsonfile", "patterns"])
def test_util_docstring_examples(name: str) -> None:
    check_examples(f"quantresolve.util.{name}")
