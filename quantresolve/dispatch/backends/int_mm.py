"""``int_mm_cpu``: ``torch._int_mm`` for W8A8 — real int8 activation codes × int8 per-channel weights.

The activations are quantized here (dynamic per-token or static per-tensor
scale), the GEMM accumulates in int32, and ``y = acc · s_x · s_w``.

    >>> from quantresolve.formats.scheme import modelopt_scheme
    >>> BACKENDS["int_mm_cpu"].supports(DeviceInfo(), None, Shapes(8, 8), modelopt_scheme("W8A16")).reason
    'needs int8 activation quantization (scheme is weight-only or not int8)'
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from quantresolve.dispatch.backends.base import (
    BACKENDS,
    Backend,
    ShardGroup,
    first_failure,
    needs_cpu,
    register_backend,
)
from quantresolve.dispatch.backends.int_weights import (
    group_int_view,
    int_scheme_guard,
    rebuild_from_codes,
    scales_only,
    share_rows,
)
from quantresolve.dispatch.codecs.base import act_kind
from quantresolve.dispatch.specs import DeviceInfo, Shapes, Verdict
from quantresolve.formats.scheme import QuantScheme

__all__ = ["BACKENDS"]


@register_backend
class IntMM(Backend):
    """``torch._int_mm``: ``y = (x_q · w_qᵀ) · s_x · s_w`` with real int8 codes."""

    name = "int_mm_cpu"
    description = "torch._int_mm (W8A8, int8 activations)"

    def supports(self, device: DeviceInfo, capability: tuple[int, int] | None, shapes: Shapes,
                 scheme: QuantScheme | None) -> Verdict:
        w = scheme.weights if scheme else None
        return first_failure(
            lambda: needs_cpu(device),
            lambda: int_scheme_guard(scheme),
            lambda: None if act_kind(scheme) == "int8" else Verdict.no(  # type: ignore[arg-type]
                "needs int8 activation quantization (scheme is weight-only or not int8)"),
            lambda: None if scheme.input_activations.strategy in ("token", "tensor") else Verdict.no(  # type: ignore[union-attr]
                "needs per-token or per-tensor activation scales"),
            lambda: None if w.num_bits == 8 and w.strategy == "channel" and w.symmetric else Verdict.no(  # type: ignore[union-attr]
                "needs int8 symmetric per-channel weights"),
        )

    def prepare(self, group: ShardGroup) -> Any:
        view = group_int_view(group)
        wq = view.q.contiguous()
        share_rows(group, wq)  # the checkpoint's int8 matrix is kept once
        return wq, view.scale.reshape(1, -1), scales_only(view)

    def apply(self, state: Any, x: torch.Tensor, group: ShardGroup) -> torch.Tensor:
        wq, ws, _ = state
        act = group.transform.act
        assert act is not None
        codes, sx = act.quantize(group.transform.smooth(x))  # the producer's int8 codes and scale
        acc = torch._int_mm(codes.to(torch.int8), wq.t())
        return acc.float() * sx * ws

    def rebuild(self, state: Any, group: ShardGroup) -> Callable[[], torch.Tensor] | None:
        wq, _, view = state
        return rebuild_from_codes(group, view, lambda: wq)
