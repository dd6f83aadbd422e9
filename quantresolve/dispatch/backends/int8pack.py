"""``int8pack_cpu``: ``torch._weight_int8pack_mm`` — int8 per-channel symmetric weights, bf16 activations.

Guards (field notes §6): per-channel scales only; ``K % 16 == 0`` (otherwise
the kernel returns inf/nan or crashes).

    >>> from quantresolve.formats.scheme import modelopt_scheme
    >>> BACKENDS["int8pack_cpu"].supports(DeviceInfo(), None, Shapes(64, 200), modelopt_scheme("W8A16")).reason
    'needs K % 16 == 0 (K=200)'
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from quantresolve.dispatch.backends.base import (
    BACKENDS,
    Backend,
    ShardGroup,
    batch_guard,
    first_failure,
    needs_cpu,
    register_backend,
)
from quantresolve.dispatch.backends.int_weights import (
    bf16_in,
    group_int_view,
    int_scheme_guard,
    rebuild_from_codes,
    scales_only,
    share_rows,
    weight_only_input,
)
from quantresolve.dispatch.specs import DeviceInfo, Shapes, Verdict
from quantresolve.formats.scheme import QuantScheme

__all__ = ["BACKENDS"]


@register_backend
class Int8PackCPU(Backend):
    """``torch._weight_int8pack_mm``: ``y = x · w_qᵀ · s`` for per-channel symmetric int8."""

    name = "int8pack_cpu"
    description = "torch._weight_int8pack_mm (int8 per-channel)"

    def supports(self, device: DeviceInfo, capability: tuple[int, int] | None, shapes: Shapes,
                 scheme: QuantScheme | None) -> Verdict:
        w = scheme.weights if scheme else None
        return first_failure(
            lambda: needs_cpu(device),
            lambda: int_scheme_guard(scheme),
            lambda: None if w.num_bits == 8 and w.strategy == "channel" else Verdict.no(  # type: ignore[union-attr]
                f"needs int8 per-channel scales, got int{w.num_bits} {w.strategy}"),  # type: ignore[union-attr]
            lambda: None if w.symmetric else Verdict.no("needs symmetric weights (no zero point)"),  # type: ignore[union-attr]
            lambda: None if shapes.k % 16 == 0 else Verdict.no(f"needs K % 16 == 0 (K={shapes.k})"),
            lambda: batch_guard(shapes, self.name, "int8pack"),
        )

    def prepare(self, group: ShardGroup) -> Any:
        view = group_int_view(group)
        wq = view.q.contiguous()
        share_rows(group, wq)  # a checkpoint int8 matrix (LLM.int8, W8A8) is kept once
        return wq, view.scale.reshape(-1).to(torch.bfloat16), scales_only(view)

    def apply(self, state: Any, x: torch.Tensor, group: ShardGroup) -> torch.Tensor:
        wq, scale, _ = state
        return torch._weight_int8pack_mm(bf16_in(weight_only_input(x, group)), wq, scale)

    def rebuild(self, state: Any, group: ShardGroup) -> Callable[[], torch.Tensor] | None:
        wq, _, view = state
        return rebuild_from_codes(group, view, lambda: wq)
