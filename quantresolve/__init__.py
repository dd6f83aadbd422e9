"""quantresolve: for this quantized checkpoint and this model, how will every layer run?

The core (config models, resolver, audit) is torch-free; the dispatcher and the
integrations import torch on demand.

    >>> import quantresolve
    >>> cfg = quantresolve.load_config({"quant_method": "modelopt", "quant_algo": "FP8", "ignore": ["lm_head"]})
    >>> cfg.producer, cfg.quant_algo
    ('modelopt', 'FP8')
"""

from __future__ import annotations

from typing import Any

from quantresolve.errors import ConfigError, QuantResolveError
from quantresolve.formats.loader import load_config
from quantresolve.formats.normalized import Finding, NormalizedConfig
from quantresolve.formats.scheme import QuantArgs, QuantScheme
from quantresolve.util.version import __version__

# The resolver names are exported lazily so this module stays importable while
# they are being built and so `import quantresolve` stays cheap.
_LAZY = {
    "Resolver": "quantresolve.resolve.resolver",
    "Resolution": "quantresolve.resolve.resolution",
    "WeightsMapper": "quantresolve.naming.mapper",
    "load_profile": "quantresolve.naming.profiles",
    "Profile": "quantresolve.naming.profiles",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'quantresolve' has no attribute {name!r}")


__all__ = ["ConfigError", "Finding", "NormalizedConfig", "Profile", "QuantArgs", "QuantResolveError", "QuantScheme",
           "Resolution", "Resolver", "WeightsMapper", "__version__", "load_config", "load_profile"]
