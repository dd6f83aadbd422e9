"""Device-neutral backends: dequantize once at load, and dequantize on every call.

Both apply the emulated activation quantization (:mod:`..activations`), so they
follow the producer's numerics for W8A8 / FP8 / NVFP4 / MXFP4 / W4A8 schemes.
They run any scheme that has a codec — on CPU this is the path for FP8, NVFP4,
MXFP4 and odd bit widths, on CUDA the cuBLAS fallback.

    >>> BACKENDS["dense_dequant"].supports(DeviceInfo(), None, Shapes(8, 8), None).ok
    True
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from quantresolve.dispatch.backends.base import BACKENDS, Backend, ShardGroup, register_backend
from quantresolve.dispatch.specs import DeviceInfo, Shapes, Verdict
from quantresolve.formats.scheme import QuantScheme

__all__ = ["BACKENDS"]


def _transformed(x: torch.Tensor, group: ShardGroup) -> torch.Tensor:
    if group.transform.pre_quant_scale is None and group.transform.act is None:
        return x
    return group.transform.apply(x)


class _AnyScheme(Backend):
    def supports(self, device: DeviceInfo, capability: tuple[int, int] | None, shapes: Shapes,
                 scheme: QuantScheme | None) -> Verdict:
        return Verdict.yes()


@register_backend
class DenseDequant(_AnyScheme):
    """Dequantize once at ``finalize()``; every call is one dense matmul in the compute dtype
    (cuBLAS on CUDA). Memory: the full dense weight."""

    name = "dense_dequant"
    description = "dequantize once at load + dense matmul"

    def prepare(self, group: ShardGroup) -> Any:
        return group.dense().to(group.device)

    def apply(self, state: Any, x: torch.Tensor, group: ShardGroup) -> torch.Tensor:
        xt = _transformed(x, group).to(state.dtype)
        return xt @ state.t()

    def rebuild(self, state: Any, group: ShardGroup) -> Callable[[], torch.Tensor] | None:
        return lambda: state  # the state *is* group.dense(): the checkpoint tensors are not needed again


@register_backend
class PerCallDequant(_AnyScheme):
    """Keep the checkpoint tensors; dequantize on every call (memory-saving mode and tests)."""

    name = "per_call_dequant"
    description = "dequantize on every call (reference, memory-saving)"

    def prepare(self, group: ShardGroup) -> Any:
        return None

    def apply(self, state: Any, x: torch.Tensor, group: ShardGroup) -> torch.Tensor:
        w = group.dense()
        return _transformed(x, group).to(w.dtype) @ w.t()


assert "dense_dequant" in BACKENDS
