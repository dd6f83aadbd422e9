"""Backends on ``torch.ops.aten._weight_int4pack_mm_for_cpu`` (the fastest CPU kernel for integer weights).

The kernel computes ``W = (u − 8) · scale + zero`` per group with ``u`` in
0..15, bf16 ``scale``/``zero`` per (group, row), group 32/64/128/256, and
needs ``N % 16 == 0`` (field notes §6; packing: :mod:`quantresolve.dispatch.kernels.int4pack`).

- ``int4pack_cpu``: ≤ 4-bit codes directly: ``u = q + 8``, ``zero = −zp · s``.
- ``int8split_cpu``: 5..8-bit codes as two 4-bit halves, ``q = 16·h + l`` with
  ``h = q >> 4`` (−8..7) and ``l = q & 15`` (0..15), so
  ``(q − zp)·s = (16s)·h + [(l − 8)·s + (8s − zp·s)]``: exact in bf16 when
  ``s`` is bf16 (×16 and ×8 are exponent shifts). Both halves sit side by
  side along K and ``x`` is given twice, so one kernel call with float32
  accumulation computes the layer — the fast path for group-wise int8
  (compressed-tensors W8A16 is int8 group-128), which ``_weight_int8pack_mm``
  cannot run (per-channel scales only).

Channel-wise scales run as the largest kernel group dividing K, the scale
repeated over it.

    >>> from quantresolve.dispatch.specs import DeviceInfo, Shapes
    >>> from quantresolve.formats.scheme import modelopt_scheme
    >>> Int4PackCPU().supports(DeviceInfo(), None, Shapes(24, 256), modelopt_scheme("W4A16_AWQ")).reason
    'needs N % 16 == 0 (N=24)'
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from quantresolve.dispatch import chunked
from quantresolve.dispatch.backends import needs
from quantresolve.dispatch.backends.base import Ask
from quantresolve.dispatch.backends.inputs import bf16_in, int_kernel_input
from quantresolve.dispatch.backends.int_weights import IntegerKernelBackend
from quantresolve.dispatch.backends.registry import register_backend
from quantresolve.dispatch.codecs.base import IntWeights
from quantresolve.dispatch.kernels import int4pack as kernel
from quantresolve.dispatch.shards import ShardGroup
from quantresolve.dispatch.specs import Verdict


def _shape_fits(ask: Ask) -> Verdict | None:
    w, shapes = ask.weights, ask.shapes
    assert w is not None  # needs.integer_weights ran first
    if kernel.kernel_group(w.strategy, w.group_size, shapes.k) is None:
        got = f"{w.strategy} {w.group_size or ''}".rstrip()
        return Verdict.no(f"needs group size 32/64/128/256 dividing K (K={shapes.k}) "
                          f"or channel scales with K % 32 == 0, got {got}")
    sizes = shapes.shard_sizes or (shapes.n,)
    if any(n % 16 for n in (shapes.n, *sizes)):
        return Verdict.no(f"needs N % 16 == 0 (N={shapes.n}"
                          + (f", shards {list(sizes)})" if shapes.shard_sizes else ")"))
    return None


#: ``(unsigned, scale, offset)``: signed codes → the kernel's 0..15, and its float32 scale and offset per group.
Operands = tuple[Callable[[torch.Tensor], torch.Tensor], torch.Tensor, torch.Tensor]


class _Int4PackBackend(IntegerKernelBackend):
    """Integer codes on the int4 kernel: subclasses map the view to the kernel's unsigned codes and
    bf16 scale / offset (:meth:`operands`), and back (:meth:`signed`)."""

    def operands(self, scale: torch.Tensor, zero: torch.Tensor) -> Operands:
        """``(unsigned, scale, offset)`` for :func:`~quantresolve.dispatch.kernels.int4pack.pack`."""
        raise NotImplementedError

    def signed(self, codes: torch.Tensor, group: ShardGroup) -> torch.Tensor:
        """The kernel's unsigned codes ``[N, K']`` (uint8) back to the view's signed int8 ``[N, K]``."""
        raise NotImplementedError

    def pack(self, view: IntWeights, group: ShardGroup) -> tuple[Any, ...]:
        w = group.codec.scheme.weights
        g = kernel.kernel_group(w.strategy, w.group_size, group.k)  # type: ignore[union-attr]
        assert g is not None
        scale, zero = view.regroup(g)
        unsigned, scale, offset = self.operands(scale, zero if zero is not None else torch.zeros_like(scale))
        packed, sz = kernel.pack(view.q, unsigned, scale, offset, chunked.CHUNK_ELEMENTS)
        return packed, g, sz

    def unpacks(self) -> bool:
        return kernel.layout_known()

    def codes(self, packed: tuple[Any, ...], group: ShardGroup) -> torch.Tensor:
        return self.signed(kernel.unpack_int4pack(packed[0], group.n), group)

    def inputs(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def apply(self, state: Any, x: torch.Tensor, group: ShardGroup) -> torch.Tensor:
        packed, g, sz, _ = state
        xin = self.inputs(bf16_in(int_kernel_input(x, group)))
        return torch.ops.aten._weight_int4pack_mm_for_cpu(xin, packed, g, sz)


@register_backend
class Int4PackCPU(_Int4PackBackend):
    """≤ 4-bit integer weights: ``u = q + 8``, ``zero = −zp · s``."""

    name = "int4pack_cpu"
    description = "torch.ops.aten._weight_int4pack_mm_for_cpu (int4 group)"
    guards = (needs.cpu, needs.integer_weights, needs.bits(4), _shape_fits, needs.small_batch("int4pack"))

    def operands(self, scale: torch.Tensor, zero: torch.Tensor) -> Operands:
        return (lambda q: q + 8), scale, -zero * scale

    def signed(self, codes: torch.Tensor, group: ShardGroup) -> torch.Tensor:
        return codes.to(torch.int8) - 8


@register_backend
class Int8SplitCPU(_Int4PackBackend):
    """5..8-bit integer weights as two int4 halves along K (see the module docstring)."""

    name = "int8split_cpu"
    description = "int8 group weights as two int4 halves on _weight_int4pack_mm_for_cpu"
    guards = (needs.cpu, needs.integer_weights, needs.bits(8, least=5), _shape_fits,
              needs.small_batch("int8split"))

    def operands(self, scale: torch.Tensor, zero: torch.Tensor) -> Operands:
        return (kernel.split_halves, torch.cat([16 * scale, scale], dim=1),
                torch.cat([torch.zeros_like(scale), (8 - zero) * scale], dim=1))

    def signed(self, codes: torch.Tensor, group: ShardGroup) -> torch.Tensor:
        halves = codes.to(torch.int16)  # [h + 8 | l] along K back to q = 16·h + l
        high, low = halves[:, : group.k] - 8, halves[:, group.k:]
        return (16 * high + low).to(torch.int8)

    def inputs(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, x], dim=-1)  # one x per half
