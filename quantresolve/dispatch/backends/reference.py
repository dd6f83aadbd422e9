"""Device-neutral backends: dequantize once at load, and dequantize on every call.

Both apply the emulated activation quantization (:mod:`..activations`), so they
follow the producer's numerics for W8A8 / FP8 / NVFP4 / MXFP4 / W4A8 schemes.
They run any scheme that has a codec — on CPU this is the path for FP8, NVFP4,
MXFP4 and odd bit widths, on CUDA the cuBLAS fallback.

    >>> from quantresolve.dispatch.specs import DeviceInfo, Shapes
    >>> DenseDequant().supports(DeviceInfo(), None, Shapes(8, 8), None).ok  # no guards: any scheme, any device
    True
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from quantresolve.dispatch.backends.base import Backend
from quantresolve.dispatch.backends.inputs import weight_only_input
from quantresolve.dispatch.backends.registry import register_backend
from quantresolve.dispatch.shards import ShardGroup


@register_backend
class DenseDequant(Backend):
    """Dequantize once at ``finalize()``; every call is one dense matmul in the compute dtype
    (cuBLAS on CUDA). Memory: the full dense weight."""

    name = "dense_dequant"
    description = "dequantize once at load + dense matmul"

    def prepare(self, group: ShardGroup) -> Any:
        return group.dense().to(group.device)

    def apply(self, state: Any, x: torch.Tensor, group: ShardGroup) -> torch.Tensor:
        xt = weight_only_input(x, group).to(state.dtype)
        return xt @ state.t()

    def rebuild(self, state: Any, group: ShardGroup) -> Callable[[], torch.Tensor] | None:
        return lambda: state  # the state *is* group.dense(): the checkpoint tensors are not needed again


@register_backend
class PerCallDequant(Backend):
    """Keep the checkpoint tensors; dequantize on every call (memory-saving mode and tests)."""

    name = "per_call_dequant"
    description = "dequantize on every call (reference, memory-saving)"

    def prepare(self, group: ShardGroup) -> Any:
        return None

    def apply(self, state: Any, x: torch.Tensor, group: ShardGroup) -> torch.Tensor:
        w = group.dense()
        return weight_only_input(x, group).to(w.dtype) @ w.t()
