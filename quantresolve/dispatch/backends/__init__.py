"""Backends in preference order: CUDA kernels, CPU kernels, then the two dequantizing references.

Import order below *is* the preference order of the registry.
"""

from quantresolve.dispatch.backends import cuda_kernels  # noqa: F401  (registers CUDA backends first)

from quantresolve.dispatch.backends import cpu_kernels  # noqa: F401  isort: skip
from quantresolve.dispatch.backends import reference  # noqa: F401  isort: skip
from quantresolve.dispatch.backends.base import BACKENDS, Backend, Shard, ShardGroup  # isort: skip

__all__ = ["BACKENDS", "Backend", "Shard", "ShardGroup"]
