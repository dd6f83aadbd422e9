"""Run the worked examples in the checkpoint modules' docstrings."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "catalog",
    "dtypes",
    "evidence",
    "grouping",
    "header",
    "inventory",
    "jsonutil",
    "reader",
    "suffixes",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(f"quantresolve.checkpoint.{name}")
    result = doctest.testmod(module)
    assert result.failed == 0
    assert result.attempted > 0


@pytest.mark.parametrize("name", ["gcpause", "containment", "jsonfile", "patterns"])
def test_util_docstring_examples(name: str) -> None:
    module = importlib.import_module(f"quantresolve.util.{name}")
    result = doctest.testmod(module)
    assert result.failed == 0
    assert result.attempted > 0
