"""Run the worked examples in the audit modules' docstrings."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["codes", "coverage", "dead", "expectations", "grouping", "layer_map", "layout", "pattern", "schema",
           "render.common"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(f"quantresolve.audit.{name}")
    result = doctest.testmod(module)
    assert result.failed == 0
    assert result.attempted > 0
