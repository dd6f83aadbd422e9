"""``int8pack_cpu``: ``torch._weight_int8pack_mm`` — int8 per-channel symmetric weights, bf16 activations.

Guards (field notes §6): per-channel scales only; ``K % 16 == 0`` (otherwise
the kernel returns inf/nan or crashes).

    >>> from quantresolve.dispatch.specs import DeviceInfo, Shapes
    >>> from quantresolve.formats.scheme import modelopt_scheme
    >>> Int8PackCPU().supports(DeviceInfo(), None, Shapes(64, 200), modelopt_scheme("W8A16")).reason
    'needs K % 16 == 0 (K=200)'
"""

from __future__ import annotations

from typing import Any

import torch

from quantresolve.dispatch.backends import needs
from quantresolve.dispatch.backends.base import Ask
from quantresolve.dispatch.backends.inputs import bf16_in, int_kernel_input
from quantresolve.dispatch.backends.int_weights import Int8MatrixBackend
from quantresolve.dispatch.backends.registry import register_backend
from quantresolve.dispatch.codecs.base import IntWeights
from quantresolve.dispatch.shards import ShardGroup
from quantresolve.dispatch.specs import Verdict


def _int8_channel(ask: Ask) -> Verdict | None:
    w = ask.weights
    if w.num_bits == 8 and w.strategy == "channel":  # type: ignore[union-attr]
        return None
    return Verdict.no(f"needs int8 per-channel scales, got int{w.num_bits} {w.strategy}")  # type: ignore[union-attr]


def _symmetric(ask: Ask) -> Verdict | None:
    return None if ask.weights.symmetric else Verdict.no("needs symmetric weights (no zero point)")  # type: ignore[union-attr]


@register_backend
class Int8PackCPU(Int8MatrixBackend):
    """``torch._weight_int8pack_mm``: ``y = x · w_qᵀ · s`` for per-channel symmetric int8."""

    name = "int8pack_cpu"
    description = "torch._weight_int8pack_mm (int8 per-channel)"
    guards = (needs.cpu, needs.integer_weights, _int8_channel, _symmetric, needs.k_multiple(16),
              needs.small_batch("int8pack"))

    def scale(self, view: IntWeights) -> torch.Tensor:
        return view.scale.reshape(-1).to(torch.bfloat16)

    def apply(self, state: Any, x: torch.Tensor, group: ShardGroup) -> torch.Tensor:
        wq, scale, _ = state
        return torch._weight_int8pack_mm(bf16_in(int_kernel_input(x, group)), wq, scale)
