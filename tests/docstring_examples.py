"""One check for the worked examples in a module's docstrings (used by the per-package doctest tests)."""

from __future__ import annotations

import doctest
import importlib


def check_examples(module_name: str, *, required: bool = True) -> None:
    """Every example in ``module_name``'s docstrings passes (and, when ``required``, there is one)."""
    result = doctest.testmod(importlib.import_module(module_name))
    assert result.failed == 0
    assert result.attempted > 0 or not required
