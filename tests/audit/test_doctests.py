"""Run the worked examples in the audit modules' docstrings."""

from __future__ import annotations

import pytest

from ..docstring_examples import check_examples

MODULES = ["codes", "coverage", "dead", "estimate", "expectations", "grouping", "kinds", "layer_map", "layout",
           "pattern", "schema", "sizing", "render.common", "render.html_data"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    check_examples(f"quantresolve.audit.{name}")
