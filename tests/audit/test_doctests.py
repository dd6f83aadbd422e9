"""The worked examples in the audit's sizing modules run."""

from __future__ import annotations

import doctest
import importlib

import pytest


@pytest.mark.parametrize("name", ["estimate", "sizing", "kinds", "coverage", "codes"])
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(f"quantresolve.audit.{name}"))
    assert result.failed == 0 and result.attempted > 0
