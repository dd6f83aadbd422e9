"""CPU kernels of torch and bitsandbytes, with the guards of field notes §6 as ``supports()`` conditions.

- ``int_mm_cpu``: ``torch._int_mm`` — int8 per-channel weights × int8 activations
  (dynamic per-token or static per-tensor), int32 accumulation. Quantizes the
  activations to real int8 codes itself.
- ``int4pack_cpu``: ``torch.ops.aten._weight_int4pack_mm_for_cpu`` — int ≤ 4-bit
  group weights (compressed-tensors pack-/int-quantized, ModelOpt AWQ after
  unpacking); needs N % 16 == 0 and group 32/64/128/256.
- ``int8pack_cpu``: ``torch._weight_int8pack_mm`` — int8 per-channel symmetric
  weights (CT W8A16, ModelOpt W8A16, LLM.int8); needs K % 16 == 0.
- ``bnb_cpu``: bitsandbytes' CPU 4-bit kernel (NF4/FP4); needs N % 32 == 0, eval mode.

The weight-only kernels take bf16 activations: fp32 inputs are cast to bf16
and the result back (fp32 runs them 20–100× slower). Schemes with activation
quantization run these with the emulated (fake-quantized) activations.

    >>> from quantresolve.formats.scheme import modelopt_scheme
    >>> BACKENDS["int4pack_cpu"].supports(DeviceInfo(), None, Shapes(24, 256), modelopt_scheme("W4A16_AWQ")).reason
    'needs N % 16 == 0 (N=24)'
"""

from __future__ import annotations

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
from quantresolve.dispatch.backends.bnb_common import (
    bnb_apply,
    bnb_available,
    bnb_prepare,
    bnb_scheme,
)
from quantresolve.dispatch.codecs.base import IntWeights, act_kind
from quantresolve.dispatch.specs import DeviceInfo, Shapes, Verdict
from quantresolve.errors import DispatchError
from quantresolve.formats.scheme import QuantScheme

__all__ = ["BACKENDS"]

#: (producer, format-or-algo) pairs whose codecs give an integer view of the weight.
_INT_VIEW = {("compressed-tensors", "pack-quantized"), ("compressed-tensors", "int-quantized"),
             ("modelopt", "W4A16_AWQ"), ("modelopt", "W4A8_AWQ"), ("modelopt", "W8A8_SQ_PER_CHANNEL"),
             ("modelopt", "W8A16"), ("bitsandbytes", "BNB_INT8")}
INT4_GROUPS = (32, 64, 128, 256)


def _int_scheme(scheme: QuantScheme | None) -> Verdict | None:
    if scheme is None or scheme.weights is None:
        return Verdict.no("handles integer-quantized weights only (layer is dense)")
    key = (scheme.producer, scheme.format if scheme.producer == "compressed-tensors" else scheme.algo)
    if key not in _INT_VIEW or scheme.weights.type != "int":
        return Verdict.no(f"handles integer weights only ({scheme.algo} is {scheme.weights.type})")
    if scheme.weights.strategy not in ("group", "channel"):
        return Verdict.no(f"needs group or channel weight scales, got {scheme.weights.strategy}")
    return None


def _int_view(group: ShardGroup) -> IntWeights:
    views = [group.codec.int_weights(s.tensors, s.n, group.k) for s in group.shards]
    if any(v is None for v in views):
        raise DispatchError(f"{group.codec.scheme.algo}: no integer view of the weight", field="backend")
    first = views[0]
    assert first is not None
    zeros = [v.zero for v in views]  # type: ignore[union-attr]
    zero = None
    if any(z is not None for z in zeros):
        zero = torch.cat([z if z is not None else torch.zeros_like(v.scale)  # type: ignore[union-attr]
                          for z, v in zip(zeros, views, strict=True)])
    return IntWeights(q=torch.cat([v.q for v in views]), scale=torch.cat([v.scale for v in views]),  # type: ignore[union-attr]
                      zero=zero, group=first.group, bits=first.bits)


def _bf16_in(x: torch.Tensor) -> torch.Tensor:
    return x if x.dtype == torch.bfloat16 else x.to(torch.bfloat16)


def _weight_only_input(x: torch.Tensor, group: ShardGroup) -> torch.Tensor:
    t = group.transform
    return x if t.pre_quant_scale is None and t.act is None else t.apply(x)


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
            lambda: _int_scheme(scheme),
            lambda: None if act_kind(scheme) == "int8" else Verdict.no(  # type: ignore[arg-type]
                "needs int8 activation quantization (scheme is weight-only or not int8)"),
            lambda: None if scheme.input_activations.strategy in ("token", "tensor") else Verdict.no(  # type: ignore[union-attr]
                "needs per-token or per-tensor activation scales"),
            lambda: None if w.num_bits == 8 and w.strategy == "channel" and w.symmetric else Verdict.no(  # type: ignore[union-attr]
                "needs int8 symmetric per-channel weights"),
        )

    def prepare(self, group: ShardGroup) -> Any:
        view = _int_view(group)
        return view.q.contiguous(), view.scale.reshape(1, -1)

    def apply(self, state: Any, x: torch.Tensor, group: ShardGroup) -> torch.Tensor:
        wq, ws = state
        act = group.transform.act
        assert act is not None
        codes, sx = act.quantize_int8(group.transform.smooth(x))
        acc = torch._int_mm(codes, wq.t())
        return acc.float() * sx * ws


@register_backend
class Int4PackCPU(Backend):
    """``_weight_int4pack_mm_for_cpu``: ``W = (u − 8)·s + z`` with u = q + 8 and z = −zp·s."""

    name = "int4pack_cpu"
    description = "torch.ops.aten._weight_int4pack_mm_for_cpu (int4 group)"

    def supports(self, device: DeviceInfo, capability: tuple[int, int] | None, shapes: Shapes,
                 scheme: QuantScheme | None) -> Verdict:
        w = scheme.weights if scheme else None
        sizes = shapes.shard_sizes or (shapes.n,)
        return first_failure(
            lambda: needs_cpu(device),
            lambda: _int_scheme(scheme),
            lambda: None if w.num_bits <= 4 else Verdict.no(f"needs ≤ 4-bit weights, got {w.num_bits}"),  # type: ignore[union-attr]
            lambda: None if w.strategy == "group" and w.group_size in INT4_GROUPS else Verdict.no(  # type: ignore[union-attr]
                f"needs group size 32/64/128/256, got {w.strategy} {w.group_size or ''}".rstrip()),  # type: ignore[union-attr]
            lambda: None if shapes.k % int(w.group_size or 1) == 0 else Verdict.no(  # type: ignore[union-attr]
                f"needs K % group == 0 (K={shapes.k})"),
            lambda: None if all(n % 16 == 0 for n in (shapes.n, *sizes)) else Verdict.no(
                f"needs N % 16 == 0 (N={shapes.n}" + (f", shards {list(sizes)})" if shapes.shard_sizes else ")")),
            lambda: None if shapes.batch is None or shapes.batch <= 16 else Verdict.no(
                f"batch {shapes.batch} > 16: the dense matmul is faster than int4pack here"),
        )

    def prepare(self, group: ShardGroup) -> Any:
        view = _int_view(group)
        u = (view.q.to(torch.int32) + 8).clamp(0, 15)
        packed = torch.ops.aten._convert_weight_to_int4pack_for_cpu(u.contiguous(), 1)
        scale = view.scale.float()
        zero = -view.zero * scale if view.zero is not None else torch.zeros_like(scale)
        scales_zeros = torch.stack([scale.t(), zero.t()], dim=-1).to(torch.bfloat16).contiguous()
        return packed, view.group, scales_zeros

    def apply(self, state: Any, x: torch.Tensor, group: ShardGroup) -> torch.Tensor:
        packed, g, sz = state
        xin = _bf16_in(_weight_only_input(x, group))
        return torch.ops.aten._weight_int4pack_mm_for_cpu(xin, packed, g, sz)


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
            lambda: _int_scheme(scheme),
            lambda: None if w.num_bits == 8 and w.strategy == "channel" else Verdict.no(  # type: ignore[union-attr]
                f"needs int8 per-channel scales, got int{w.num_bits} {w.strategy}"),  # type: ignore[union-attr]
            lambda: None if w.symmetric else Verdict.no("needs symmetric weights (no zero point)"),  # type: ignore[union-attr]
            lambda: None if shapes.k % 16 == 0 else Verdict.no(f"needs K % 16 == 0 (K={shapes.k})"),
            lambda: None if shapes.batch is None or shapes.batch <= 16 else Verdict.no(
                f"batch {shapes.batch} > 16: the dense matmul is faster than int8pack here"),
        )

    def prepare(self, group: ShardGroup) -> Any:
        view = _int_view(group)
        return view.q.contiguous(), view.scale.reshape(-1).to(torch.bfloat16)

    def apply(self, state: Any, x: torch.Tensor, group: ShardGroup) -> torch.Tensor:
        wq, scale = state
        return torch._weight_int8pack_mm(_bf16_in(_weight_only_input(x, group)), wq, scale)


@register_backend
class BnBCPU(Backend):
    """bitsandbytes ``Linear4bit`` on CPU (its own fused 4-bit GEMV / dequantize path)."""

    name = "bnb_cpu"
    description = "bitsandbytes CPU 4-bit kernel"

    def supports(self, device: DeviceInfo, capability: tuple[int, int] | None, shapes: Shapes,
                 scheme: QuantScheme | None) -> Verdict:
        sizes = shapes.shard_sizes or (shapes.n,)
        return first_failure(
            lambda: needs_cpu(device),
            lambda: bnb_scheme(scheme),
            bnb_available,
            lambda: None if all(n % 32 == 0 for n in sizes) else Verdict.no(
                f"needs N % 32 == 0 (N={list(sizes) if shapes.shard_sizes else shapes.n})"),
            lambda: None if shapes.k % 2 == 0 else Verdict.no(f"needs even K (K={shapes.k})"),
            lambda: Verdict.no("needs eval mode (the CPU kernel rewrites weights on first forward)")
            if device.training else None,
            lambda: None if shapes.batch is None or shapes.batch <= 16 else Verdict.no(
                f"batch {shapes.batch} > 16: the dense matmul is faster than bitsandbytes here"),
        )

    def prepare(self, group: ShardGroup) -> Any:
        return bnb_prepare(group)

    def apply(self, state: Any, x: torch.Tensor, group: ShardGroup) -> torch.Tensor:
        return bnb_apply(state, x, group)
