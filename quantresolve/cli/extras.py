"""Which optional install a command needs, and the one line that says so when it is missing.

The plain install does the main job (``inspect``, ``resolve``, ``audit``, ``schema``) torch-free.
``run`` and ``kernels`` need torch and friends; they are an extra of the package
(``pyproject.toml`` ``[project.optional-dependencies]``). Instead of a ``ModuleNotFoundError``
traceback, the CLI names the extra::

    >>> missing_extra_message("torch")
    "needs torch, which is not installed: install the 'run' extra: pip install 'quantresolve[run]' (from a clone: pip install -c constraints.txt -e '.[run]')"
    >>> missing_for("schema") is None
    True
"""

from __future__ import annotations

import importlib.util

#: Top-level module → the extra that installs it.
EXTRA_OF: dict[str, str] = {
    "torch": "run", "transformers": "run", "accelerate": "run", "compressed_tensors": "run",
    "bitsandbytes": "bnb", "triton": "cuda", "gemlite": "cuda", "yaml": "yaml", "modelopt": "producers",
}

#: Sub-command → the modules it cannot start without (checked before it runs).
COMMAND_NEEDS: dict[str, tuple[str, ...]] = {
    "run": ("torch", "transformers", "accelerate"),
    "kernels": ("torch",),
}


def missing_extra_message(module: str) -> str:
    """The one-line advice for a missing ``module`` (top-level name)."""
    extra = EXTRA_OF.get(module)
    if extra is None:
        return f"needs the Python module {module!r}, which is not installed"
    return (f"needs {module}, which is not installed: install the {extra!r} extra: "
            f"pip install 'quantresolve[{extra}]' (from a clone: pip install -c constraints.txt -e '.[{extra}]')")


def missing_for(command: str) -> str | None:
    """The advice line when a module ``command`` needs is absent, else ``None``."""
    for module in COMMAND_NEEDS.get(command, ()):
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):  # a broken or blocked install counts as missing
            found = False
        if not found:
            return missing_extra_message(module)
    return None


__all__ = ["COMMAND_NEEDS", "EXTRA_OF", "missing_extra_message", "missing_for"]
