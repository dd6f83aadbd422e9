"""Backends on ``torch.ops.aten._weight_int4pack_mm_for_cpu`` (the fastest CPU kernel for integer weights).

The kernel computes ``W = (u − 8) · scale + zero`` per group with ``u`` in
0..15, bf16 ``scale``/``zero`` per (group, row), group 32/64/128/256, and
needs ``N % 16 == 0`` (field notes §6).

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

    >>> from quantresolve.formats.scheme import modelopt_scheme
    >>> BACKENDS["int4pack_cpu"].supports(DeviceInfo(), None, Shapes(24, 256), modelopt_scheme("W4A16_AWQ")).reason
    'needs N % 16 == 0 (N=24)'
    >>> kernel_group("channel", None, 384), kernel_group("group", 16, 384)
    (128, None)
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import torch

from quantresolve.dispatch import chunked
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
    bits_guard,
    group_int_view,
    int_scheme_guard,
    rebuild_from_codes,
    scales_only,
    weight_only_input,
)
from quantresolve.dispatch.codecs.base import IntWeights
from quantresolve.dispatch.specs import DeviceInfo, Shapes, Verdict
from quantresolve.formats.scheme import QuantScheme

__all__ = ["BACKENDS", "kernel_group"]

INT4_GROUPS = (32, 64, 128, 256)


def kernel_group(strategy: str, group_size: int | None, k: int) -> int | None:
    """The kernel group for a scheme's scales at in_features ``k``, or ``None`` if none fits."""
    if strategy == "group":
        return group_size if group_size in INT4_GROUPS and k % group_size == 0 else None
    if strategy == "channel":
        return next((g for g in reversed(INT4_GROUPS) if k % g == 0), None)
    return None


def _shape_guards(shapes: Shapes, scheme: QuantScheme | None) -> Verdict | None:
    w = scheme.weights if scheme else None
    assert w is not None  # int_scheme_guard ran first
    if kernel_group(w.strategy, w.group_size, shapes.k) is None:
        got = f"{w.strategy} {w.group_size or ''}".rstrip()
        return Verdict.no(f"needs group size 32/64/128/256 dividing K (K={shapes.k}) "
                          f"or channel scales with K % 32 == 0, got {got}")
    sizes = shapes.shard_sizes or (shapes.n,)
    if any(n % 16 for n in (shapes.n, *sizes)):
        return Verdict.no(f"needs N % 16 == 0 (N={shapes.n}"
                          + (f", shards {list(sizes)})" if shapes.shard_sizes else ")"))
    return None


def _regrouped(view: IntWeights, g: int) -> tuple[torch.Tensor, torch.Tensor]:
    """float32 scale and zero point ``[N, K/g]`` (zero point 0 when symmetric)."""
    reps = view.group // g
    scale = view.scale.float().repeat_interleave(reps, dim=1)
    zero = (view.zero.float().repeat_interleave(reps, dim=1) if view.zero is not None
            else torch.zeros_like(scale))
    return scale, zero


#: Most rows packed at a time. The packed layout is blocked by 64 rows, so packing row chunks that
#: are multiples of 64 and concatenating equals packing the whole — and the int32 copies the packer
#: wants (4 bytes per weight: 0.9 GiB at 28672×8192) stay one chunk's size: at most
#: :data:`~quantresolve.dispatch.chunked.CHUNK_ELEMENTS` per copy (2048 rows at K = 8192, 1024 for
#: int8split's doubled K).
CHUNK_ROWS = 4096


def _chunk_rows(k: int) -> int:
    return max(64, min(CHUNK_ROWS, chunked.CHUNK_ELEMENTS // k // 64 * 64))


def _pack(q: torch.Tensor, unsigned: Callable[[torch.Tensor], torch.Tensor], scale: torch.Tensor,
          offset: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Kernel operands from signed codes ``q`` ``[N, K]`` (mapped to 0..15 by ``unsigned``, per row
    chunk) and float32 ``scale``/``offset`` ``[N, K'/g]``."""
    packed: torch.Tensor | None = None
    rows = _chunk_rows(2 * q.shape[1])  # int8split's halves double K; int4pack's stay under the budget too
    for i in range(0, q.shape[0], rows):
        part = torch.ops.aten._convert_weight_to_int4pack_for_cpu(
            unsigned(q[i:i + rows].to(torch.int32)).contiguous(), 1)
        if packed is None:  # written chunk by chunk: no list of parts and concatenated copy side by side
            packed = part if part.shape[0] == q.shape[0] else part.new_empty((q.shape[0], *part.shape[1:]))
        if packed is not part:
            packed[i:i + part.shape[0]] = part
    assert packed is not None
    scales_zeros = torch.stack([scale.t(), offset.t()], dim=-1).to(torch.bfloat16).contiguous()
    return packed, scales_zeros


def unpack_int4pack(packed: torch.Tensor, n: int, block: int | None = None) -> torch.Tensor:
    """The inverse of ``_convert_weight_to_int4pack_for_cpu``: uint8 codes 0..15 ``[n, K]`` from its
    ``[n, K/2]`` bytes. torch 2.13's layout, read off the packer (and checked by :func:`layout_known`):
    rows in blocks of ``block`` (64 where torch's CPU kernels use AVX-512, 32 on AVX2 machines), each
    block ``[K, block/2]`` bytes whose low nibble is row ``d`` and high nibble row ``block/2 + d``; the
    rows after the last full block (a multiple of 16) as ``[K, rows/2]`` bytes holding row ``2j`` low
    and ``2j + 1`` high. ``block=None`` takes this machine's block (:func:`packer_block_rows`)."""
    block = block or packer_block_rows() or 64
    k = packed.numel() * 2 // n
    flat = packed.reshape(-1)
    full = n // block * block
    head = flat[: full * k // 2].reshape(full // block, k, block // 2)
    parts = [torch.stack([head & 15, head >> 4], dim=1).transpose(2, 3).reshape(full, k)]
    if n > full:
        tail = flat[full * k // 2:].reshape(k, (n - full) // 2)
        parts.append(torch.stack([tail & 15, tail >> 4], dim=-1).reshape(k, n - full).t())
    return torch.cat(parts) if len(parts) > 1 else parts[0].contiguous()


@functools.cache
def packer_block_rows() -> int | None:
    """The row block this torch's packer uses on this CPU (64 or 32), or None when
    :func:`unpack_int4pack` inverts it with neither (full blocks and every tail size tried)."""
    codes = torch.randint(0, 16, (64 * 2 + 48, 64), generator=torch.Generator().manual_seed(0), dtype=torch.int32)
    packed = {rows: torch.ops.aten._convert_weight_to_int4pack_for_cpu(codes[:rows].contiguous(), 1)
              for rows in (16, 32, 48, 64, 80, 96, 112, 176)}
    for block in (64, 32):
        if all(torch.equal(unpack_int4pack(p, rows, block).to(torch.int32), codes[:rows])
               for rows, p in packed.items()):
            return block
    return None


def layout_known() -> bool:
    """True when :func:`unpack_int4pack` inverts this torch's packer on this CPU; otherwise the layers
    keep their checkpoint tensors for ``dequantize()``."""
    return packer_block_rows() is not None


def _split_halves(q: torch.Tensor) -> torch.Tensor:
    """``[h + 8 | l]`` along K for ``q = 16·h + l`` (arithmetic shift: ``h = floor(q / 16)``)."""
    return torch.cat([(q >> 4) + 8, q & 15], dim=1)


@register_backend
class Int4PackCPU(Backend):
    """≤ 4-bit integer weights: ``u = q + 8``, ``zero = −zp · s``."""

    name = "int4pack_cpu"
    description = "torch.ops.aten._weight_int4pack_mm_for_cpu (int4 group)"

    def supports(self, device: DeviceInfo, capability: tuple[int, int] | None, shapes: Shapes,
                 scheme: QuantScheme | None) -> Verdict:
        return first_failure(
            lambda: needs_cpu(device),
            lambda: int_scheme_guard(scheme),
            lambda: bits_guard(scheme, 4),
            lambda: _shape_guards(shapes, scheme),
            lambda: batch_guard(shapes, self.name, "int4pack"),
        )

    def prepare(self, group: ShardGroup) -> Any:
        view = group_int_view(group)
        w = group.codec.scheme.weights
        g = kernel_group(w.strategy, w.group_size, group.k)  # type: ignore[union-attr]
        assert g is not None
        scale, zp = _regrouped(view, g)
        packed, sz = _pack(view.q, lambda q: q + 8, scale, -zp * scale)
        return packed, g, sz, scales_only(view)

    def apply(self, state: Any, x: torch.Tensor, group: ShardGroup) -> torch.Tensor:
        packed, g, sz, _ = state
        return torch.ops.aten._weight_int4pack_mm_for_cpu(bf16_in(weight_only_input(x, group)), packed, g, sz)

    def rebuild(self, state: Any, group: ShardGroup) -> Callable[[], torch.Tensor] | None:
        packed, _, _, view = state
        if not layout_known():
            return None
        return rebuild_from_codes(group, view, lambda: (unpack_int4pack(packed, group.n).to(torch.int8) - 8))


@register_backend
class Int8SplitCPU(Backend):
    """5..8-bit integer weights as two int4 halves along K (see the module docstring)."""

    name = "int8split_cpu"
    description = "int8 group weights as two int4 halves on _weight_int4pack_mm_for_cpu"

    def supports(self, device: DeviceInfo, capability: tuple[int, int] | None, shapes: Shapes,
                 scheme: QuantScheme | None) -> Verdict:
        return first_failure(
            lambda: needs_cpu(device),
            lambda: int_scheme_guard(scheme),
            lambda: bits_guard(scheme, 8, least=5),
            lambda: _shape_guards(shapes, scheme),
            lambda: batch_guard(shapes, self.name, "int8split"),
        )

    def prepare(self, group: ShardGroup) -> Any:
        view = group_int_view(group)
        w = group.codec.scheme.weights
        g = kernel_group(w.strategy, w.group_size, group.k)  # type: ignore[union-attr]
        assert g is not None
        scale, zp = _regrouped(view, g)
        packed, sz = _pack(view.q, _split_halves, torch.cat([16 * scale, scale], dim=1),
                           torch.cat([torch.zeros_like(scale), (8 - zp) * scale], dim=1))
        return packed, g, sz, scales_only(view)

    def apply(self, state: Any, x: torch.Tensor, group: ShardGroup) -> torch.Tensor:
        packed, g, sz, _ = state
        xin = bf16_in(weight_only_input(x, group))
        return torch.ops.aten._weight_int4pack_mm_for_cpu(torch.cat([xin, xin], dim=-1), packed, g, sz)

    def rebuild(self, state: Any, group: ShardGroup) -> Callable[[], torch.Tensor] | None:
        packed, _, _, view = state
        if not layout_known():
            return None

        def codes() -> torch.Tensor:  # [h + 8 | l] along K back to q = 16·h + l
            halves = unpack_int4pack(packed, group.n).to(torch.int16)
            high, low = halves[:, : group.k] - 8, halves[:, group.k:]
            return (16 * high + low).to(torch.int8)

        return rebuild_from_codes(group, view, codes)
