"""``int_mm_cpu``: ``torch._int_mm`` for W8A8 — real int8 activation codes × int8 per-channel weights.

The activations are quantized here (dynamic per-token or static per-tensor
scale), the GEMM accumulates in int32, and ``y = acc · s_x · s_w``.

    >>> from quantresolve.dispatch.specs import DeviceInfo, Shapes
    >>> from quantresolve.formats.scheme import modelopt_scheme
    >>> IntMM().supports(DeviceInfo(), None, Shapes(8, 8), modelopt_scheme("W8A16")).reason
    'needs int8 activation quantization (scheme is weight-only or not int8)'
"""

from __future__ import annotations

from typing import Any

import torch

from quantresolve.dispatch.backends import needs
from quantresolve.dispatch.backends.base import Ask
from quantresolve.dispatch.backends.int_weights import Int8MatrixBackend
from quantresolve.dispatch.backends.registry import register_backend
from quantresolve.dispatch.codecs.base import IntWeights, act_kind
from quantresolve.dispatch.shards import ShardGroup
from quantresolve.dispatch.specs import Verdict


def _int8_activations(ask: Ask) -> Verdict | None:
    if act_kind(ask.scheme) == "int8":  # type: ignore[arg-type]
        return None
    return Verdict.no("needs int8 activation quantization (scheme is weight-only or not int8)")


def _row_wide_activation_scales(ask: Ask) -> Verdict | None:
    if ask.scheme.input_activations.strategy in ("token", "tensor"):  # type: ignore[union-attr]
        return None
    return Verdict.no("needs per-token or per-tensor activation scales")


def _int8_channel_symmetric(ask: Ask) -> Verdict | None:
    w = ask.weights
    if w.num_bits == 8 and w.strategy == "channel" and w.symmetric:  # type: ignore[union-attr]
        return None
    return Verdict.no("needs int8 symmetric per-channel weights")


@register_backend
class IntMM(Int8MatrixBackend):
    """``torch._int_mm``: ``y = (x_q · w_qᵀ) · s_x · s_w`` with real int8 codes."""

    name = "int_mm_cpu"
    description = "torch._int_mm (W8A8, int8 activations)"
    guards = (needs.cpu, needs.integer_weights, _int8_activations, _row_wide_activation_scales,
              _int8_channel_symmetric)

    def scale(self, view: IntWeights) -> torch.Tensor:
        return view.scale.reshape(1, -1)

    def apply(self, state: Any, x: torch.Tensor, group: ShardGroup) -> torch.Tensor:
        wq, ws, _ = state
        act = group.transform.act
        assert act is not None
        codes, sx = act.quantize(group.transform.smooth(x))  # the producer's int8 codes and scale
        acc = torch._int_mm(codes.to(torch.int8), wq.t())
        return acc.float() * sx * ws
