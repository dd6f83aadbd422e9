"""The worked examples in the transformers integration's docstrings run."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import quantresolve.integrations.transformers as package

MODULES = sorted(m.name for m in pkgutil.walk_packages(package.__path__, f"{package.__name__}."))


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("name", [package.__name__, *MODULES, "quantresolve.cli.run"])
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
