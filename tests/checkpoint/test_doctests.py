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
    "locate",
    "paths",
    "reader",
    "remote",
    "shapes",
    "suffixes",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(f"quantresolve.checkpoint.{name}")
    result = doctest.testmod(module)
    assert result.failed == 0
    assert result.attempted > 0


def test_gc_pause_docstring_examples() -> None:
    module = importlib.import_module("quantresolve.util.gcpause")
    result = doctest.testmod(module)
    assert result.failed == 0
    assert result.attempted > 0
