"""The worked examples in the dispatch docstrings run."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import quantresolve.dispatch as dispatch

MODULES = sorted(m.name for m in pkgutil.walk_packages(dispatch.__path__, "quantresolve.dispatch."))


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("name", ["quantresolve.dispatch", *MODULES, "quantresolve.cli.kernels"])
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
