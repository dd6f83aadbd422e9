"""``float_gemv_cpu``: FP4 (E2M1) and FP8 (E4M3) weights run packed on CPU, dequantized inside the kernel.

The kernels are :mod:`quantresolve.dispatch.kernels.float_gemv` (AVX2 + FMA + F16C, compiled on first use):
a GEMV for small batches and, above that, a tile of rows dequantized at a time into a small buffer for
``torch.mm`` — the layer holds the checkpoint's bytes (repacked, same size), never the dense weight. Every
product uses exactly the weight ``dequantize()`` returns, rounded to the compute dtype, and float32 sums.

**How a codec opts in** — through a codec-level view, as integer kernels read ``int_weights``
(:func:`~quantresolve.dispatch.backends.int_weights.group_int_view`):

- :meth:`~quantresolve.dispatch.codecs.base.WeightCodec.fp4_weights` →
  :class:`~quantresolve.dispatch.codecs.base.FP4Weights`: packed E2M1 bytes ``[N, K/2]`` (low nibble = even
  element), group scales ``[N, K/g]`` — E4M3 with ``g = 16`` (NVFP4) or E8M0 with ``g = 32`` (MXFP4) — the
  per-tensor float32 the producer multiplies the group scale by (``tensor_scale``) or divides it by
  (``divisor``), and the checkpoint names of the two tensors (``packed_key``, ``scale_key``).
- :meth:`~quantresolve.dispatch.codecs.base.WeightCodec.fp8_weights` →
  :class:`~quantresolve.dispatch.codecs.base.FP8Weights`: E4M3 ``weight`` ``[N, K]``, the multipliers the
  producer multiplies it by (``scale``), per ``(bn, bk)`` block (per tensor, per channel, 128×128 …), the dtype
  it multiplies in, and the codes' checkpoint name.

Codecs that opt in: ModelOpt and compressed-tensors NVFP4 / MXFP4 / FP8, Hugging Face fine-grained FP8
(``weight_scale_inv`` as the multiplier grid), gpt-oss MXFP4 experts (``blocks`` read as ``[N, K/2]``), and
ModelOpt W4A8_AWQ, whose producer computes with an FP8 weight derived from its int4 codes (one byte per
weight: held at twice its checkpoint's int4 bytes). An FP8 codec's ``dequantize()`` computes through the same
view (``FP8Weights.dense()``), so the two cannot drift. :meth:`FloatGemvCPU.supports` reads the scheme alone:
the view kind (``fp4_weights`` / ``fp8_weights`` overridden), the group (16 with E4M3 scales, 32 with E8M0),
FP8 column blocks of a multiple of 64, a bf16 compute dtype for E2M1 — a layer outside them runs on the next
backend (``dense_dequant``), the reason in ``quantresolve kernels``.

At ``finalize()`` the checkpoint's codes and group scales are repacked (the small tensors — per-tensor scales,
input scales — stay with the state), and :meth:`FloatGemvCPU.rebuild` gives ``dequantize()`` back from the
repacking, bit for bit (E2M1: the codec's own ``dequantize`` on the restored tensors; E4M3: the view's
``dense()``), so the layer releases the checkpoint tensors. A weight whose repacking
would not fit in the memory available fails before anything is allocated, naming the size.

    >>> from quantresolve.dispatch.specs import DeviceInfo, Shapes
    >>> from quantresolve.formats.scheme import modelopt_scheme
    >>> FloatGemvCPU().supports(DeviceInfo(), None, Shapes(64, 256, dtype="float16"), modelopt_scheme("NVFP4")).reason
    'E2M1 weights need a bfloat16 compute dtype (the kernel builds bf16 weights), got float16'
    >>> FloatGemvCPU().supports(DeviceInfo(), None, Shapes(64, 256), modelopt_scheme("W4A16_AWQ")).reason
    'no packed float view of W4A16_AWQ (its codec gives neither fp4_weights nor fp8_weights)'
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from quantresolve.dispatch.backends import needs
from quantresolve.dispatch.backends.base import Ask, Backend
from quantresolve.dispatch.backends.inputs import weight_only_input
from quantresolve.dispatch.backends.registry import register_backend
from quantresolve.dispatch.chunked import dequantize_into
from quantresolve.dispatch.codecs.base import FP4Weights, FP8Weights
from quantresolve.dispatch.codecs.registry import codec_overrides
from quantresolve.dispatch.kernels import float_gemv as kernel
from quantresolve.dispatch.shards import ShardGroup
from quantresolve.dispatch.specs import Verdict
from quantresolve.errors import DispatchError
from quantresolve.formats.scheme import QuantScheme
from quantresolve.util.memory import check_fits_in_memory

#: E2M1 group width by the group scales' format: E4M3 (NVFP4), E8M0 (MXFP4).
E2M1_GROUPS = {"float8_e4m3fn": (16, kernel.NVFP4), "uint8": (32, kernel.MXFP4)}


def view_kind(scheme: QuantScheme | None) -> str | None:
    """``"e2m1"`` / ``"e4m3"`` when the scheme's codec gives that view, else ``None``."""
    if scheme is None or scheme.weights is None:
        return None
    if codec_overrides(scheme, "fp4_weights"):
        return "e2m1"
    return "e4m3" if codec_overrides(scheme, "fp8_weights") else None


def _float_view(ask: Ask) -> Verdict | None:
    scheme = ask.scheme
    if scheme is None or scheme.weights is None:
        return Verdict.no("handles quantized float weights only (layer is dense)")
    if view_kind(scheme) is None:
        return Verdict.no(f"no packed float view of {scheme.algo} (its codec gives neither fp4_weights nor fp8_weights)")
    return None


def _layout(ask: Ask) -> Verdict | None:
    """What the kernels take: E2M1 groups of 16 (E4M3 scales) / 32 (E8M0) and a bf16 compute dtype; FP8
    column blocks a multiple of 64 wide (or the whole row)."""
    w, k = ask.weights, ask.shapes.k
    assert w is not None
    if view_kind(ask.scheme) == "e2m1":
        want = E2M1_GROUPS.get(w.scale_dtype or "")
        if want is None or w.group_size != want[0]:
            return Verdict.no(f"needs E2M1 groups of 16 with E4M3 scales or 32 with E8M0 scales, got group "
                              f"{w.group_size} with {w.scale_dtype} scales")
        if ask.shapes.dtype != "bfloat16":
            return Verdict.no(f"E2M1 weights need a bfloat16 compute dtype (the kernel builds bf16 weights), "
                              f"got {ask.shapes.dtype}")
        return None
    if w.type != "float":
        return None  # an FP8 weight derived from integer codes (ModelOpt W4A8_AWQ): one multiplier per tensor
    if w.strategy == "block":
        bk = (w.block_structure or (128, 128))[1]
    elif w.strategy == "group":
        bk = w.group_size or k
    else:
        return None
    if bk % kernel.BLOCK and bk < k:
        return Verdict.no(f"needs FP8 scale blocks a multiple of {kernel.BLOCK} columns wide (got {bk}, K={k})")
    return None


def _machine(ask: Ask) -> Verdict | None:
    why = kernel.unavailable()
    return Verdict.no(f"unavailable: {why}") if why else None


def _fp4_views(group: ShardGroup) -> list[FP4Weights]:
    views = [group.codec.fp4_weights(s.tensors, s.n, group.k) for s in group.shards]
    assert all(v is not None for v in views)
    return views  # type: ignore[return-value]


def _fp8_views(group: ShardGroup) -> list[FP8Weights]:
    views = [group.codec.fp8_weights(s.tensors, s.n, group.k) for s in group.shards]
    assert all(v is not None for v in views)
    return views  # type: ignore[return-value]


def _rows(tensors: list[torch.Tensor]) -> torch.Tensor:
    """The shards' tensors stacked along N (the tensor itself when there is one shard)."""
    return tensors[0] if len(tensors) == 1 else torch.cat(tensors)


def _e2m1(group: ShardGroup, views: list[FP4Weights]) -> kernel.E2M1Operands:
    group_width, kind = E2M1_GROUPS["uint8" if views[0].kind == "mxfp4" else "float8_e4m3fn"]
    divide = views[0].divisor is not None
    if kind == kernel.MXFP4:
        rows = torch.ones(group.n)
    else:  # the E4M3 step of the kernel reads each scale times 2^-8: its row factor carries the 2^8
        per_shard = [(v.divisor / 256.0) if divide else (v.tensor_scale * 256.0) for v in views]  # type: ignore[operator]
        rows = torch.cat([p.float().reshape(1).expand(s.n) for p, s in zip(per_shard, group.shards, strict=True)])
    codes = kernel.pack_e2m1(_rows([v.packed.view(torch.uint8) for v in views]), group.k, kernel.alloc)
    scales = kernel.pack_group_scales(_rows([v.scale.view(torch.uint8) for v in views]), group_width, group.k,
                                      kernel.alloc)
    return kernel.E2M1Operands(codes, scales, kernel.row_values(rows, group.n), group.n, group.k, kind, divide)


def _multipliers(group: ShardGroup, views: list[FP8Weights]) -> tuple[torch.Tensor, int, int]:
    """One multiplier grid for the group: a single shard's as it is; fused shards' expanded to one row each."""
    if len(views) == 1:
        v = views[0]
        return v.scale.float(), min(v.block[0], group.n), min(v.block[1], group.k)
    per_row = [v.scale.float().repeat_interleave(v.block[0], 0)[: s.n] if v.scale.shape[0] > 1 else
               v.scale.float().expand(s.n, -1) for v, s in zip(views, group.shards, strict=True)]
    bks = {min(v.block[1], group.k) for v in views}
    if len(bks) != 1:
        raise DispatchError(f"fused FP8 shards with different column blocks {sorted(bks)}", field="backend")
    return torch.cat(per_row), 1, bks.pop()


def _e4m3(group: ShardGroup, views: list[FP8Weights]) -> kernel.E4M3Operands:
    mult, bn, bk = _multipliers(group, views)
    rounding = (kernel.ROUNDING[views[0].product_dtype], kernel.ROUNDING[group.dtype])
    codes = kernel.pack_e4m3(_rows([v.weight.view(torch.uint8) for v in views]), kernel.alloc)
    # the kernel's E4M3 step reads each code times 2^-8: its multipliers carry the 2^8 (exact)
    return kernel.E4M3Operands(codes, (mult * 256.0).contiguous(), group.n, group.k, bn, bk, rounding)


def _rebuild_e2m1(state: kernel.E2M1Operands, group: ShardGroup) -> Callable[[], torch.Tensor]:
    """``group.dense()`` from the repacked E2M1 codes and group scales: unpacked back into each shard's
    checkpoint tensors, next to the small ones the closure keeps, and dequantized by the codec in row chunks."""
    v = _fp4_views(group)[0]
    keys, dtypes = (v.packed_key, v.scale_key), (v.packed.dtype, v.scale.dtype)
    groups = max(s.tensors[v.scale_key].shape[1] for s in group.shards)
    # the small tensors each shard keeps, and the checkpoint's own shapes of the two restored (gpt-oss MXFP4
    # stores its codes as [N, K/32, 16] blocks)
    kept = [({key: t for key, t in s.tensors.items() if key not in keys}, s.n,
             [s.tensors[key].shape[1:] for key in keys]) for s in group.shards]
    codec, k = group.codec, group.k

    def dense() -> torch.Tensor:
        full = (kernel.unpack_e2m1(state.codes, state.n, state.k),
                kernel.unpack_group_scales(state.scales, state.n, groups))
        out = torch.empty(state.n, k, dtype=torch.float32)
        row = 0
        for small, n, shapes in kept:
            tensors = dict(small)
            for key, dtype, t, shape in zip(keys, dtypes, full, shapes, strict=True):
                tensors[key] = t[row:row + n].view(dtype).reshape(n, *shape)
            dequantize_into(codec, tensors, n, k, out[row:row + n])
            row += n
        return out

    return dense


def _rebuild_e4m3(state: kernel.E4M3Operands, group: ShardGroup) -> Callable[[], torch.Tensor]:
    """``group.dense()`` from the repacked E4M3 codes and each shard's multipliers: every FP8 codec's
    ``dequantize()`` is its view's :meth:`~quantresolve.dispatch.codecs.base.FP8Weights.dense` (including the
    views derived from other codes, ModelOpt W4A8_AWQ's), so the codes and multipliers give it back exactly."""
    views = _fp8_views(group)
    small = [(v.scale, v.block, v.product_dtype, s.n) for v, s in zip(views, group.shards, strict=True)]
    del views

    def dense() -> torch.Tensor:
        codes = kernel.unpack_e4m3(state.codes, state.n, state.k).view(torch.float8_e4m3fn)
        out = torch.empty(state.n, state.k, dtype=torch.float32)
        row = 0
        for mult, block, product_dtype, n in small:
            out[row:row + n] = FP8Weights(codes[row:row + n], mult, block, product_dtype).dense()
            row += n
        return out

    return dense


@register_backend
class FloatGemvCPU(Backend):
    """E2M1 / E4M3 weights packed, dequantized in the kernel (see the module docstring)."""

    name = "float_gemv_cpu"
    description = "native AVX2 GEMV / tiled GEMM on packed FP4 (NVFP4, MXFP4) and FP8 weights"
    guards = (needs.cpu, needs.eval_mode("the kernels have no backward"), _float_view, _layout,
              needs.small_batch("the packed float kernels"), _machine)

    def prepare(self, group: ShardGroup) -> Any:
        kind = view_kind(group.codec.scheme)
        size = (kernel.e2m1_bytes(group.n, group.k, 16) if kind == "e2m1" else kernel.e4m3_bytes(group.n, group.k))
        # the repacking plus one packing chunk's transients (a few bytes per weight of PACK_ROWS rows)
        check_fits_in_memory(size + 8 * kernel.PACK_ROWS * kernel.padded(group.k),
                             what=f"repacking {group.codec.scheme.summary()} {group.n}x{group.k} for {self.name} would",
                             field="finalize")
        kernel.kernels()  # compile (or fail with the reason) at finalize(), not on the first forward
        return _e2m1(group, _fp4_views(group)) if kind == "e2m1" else _e4m3(group, _fp8_views(group))

    def apply(self, state: Any, x: torch.Tensor, group: ShardGroup) -> torch.Tensor:
        xin = weight_only_input(x, group)
        return kernel.matmul(xin if xin.dtype == group.dtype else xin.to(group.dtype), state)

    def rebuild(self, state: Any, group: ShardGroup) -> Callable[[], torch.Tensor] | None:
        """``group.dense()`` from the repacking alone, bit for bit (the checkpoint's codes are then released)."""
        if isinstance(state, kernel.E2M1Operands):
            return _rebuild_e2m1(state, group)
        return _rebuild_e4m3(state, group)
