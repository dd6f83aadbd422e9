"""Backends in preference order: the import order below *is* the registry's order.

Only backends of the same device compete, so the order that matters is within
CPU and within CUDA: the specialised kernels first, then bitsandbytes' own,
then the two dequantizing references (any device, any scheme).
"""

from quantresolve.dispatch.backends import scaled_mm  # noqa: F401  scaled_mm_cuda

from quantresolve.dispatch.backends import gemlite  # noqa: F401  gemlite_cuda  isort: skip

# Weight-only kernels first: at small batch they beat torch._int_mm even for W8A8 (with the
# activation quantization emulated); they decline large batch hints, where int_mm wins.
from quantresolve.dispatch.backends import int8pack  # noqa: F401  int8pack_cpu  isort: skip
from quantresolve.dispatch.backends import int4pack  # noqa: F401  int4pack_cpu, int8split_cpu  isort: skip
from quantresolve.dispatch.backends import int_mm  # noqa: F401  int_mm_cpu  isort: skip
from quantresolve.dispatch.backends import bnb  # noqa: F401  bnb_cuda, bnb_cpu  isort: skip
from quantresolve.dispatch.backends import reference  # noqa: F401  isort: skip
from quantresolve.dispatch.backends.base import BACKENDS, Backend, Shard, ShardGroup  # isort: skip

__all__ = ["BACKENDS", "Backend", "Shard", "ShardGroup"]
