"""``gemlite_cuda``: gemlite's Triton weight-only GEMMs for integer, NVFP4 and MXFP4 weights (CUDA).

gemlite is an optional extra (``pip install 'quantresolve[cuda]'``; it pulls
Triton, no CUDA packages and no torch change) and is imported only in
``prepare()``: it queries the GPU at import time. Its public helpers build
one ``GemLiteLinearTriton`` per shard (fused shards may carry different
tensor scales), following its documented conventions:

- integer (``A16Wn``): unsigned codes ``W_q = q + 2^(b−1)`` (uint8 ``[N, K]``,
  packed by gemlite), scales and zero points ``[N, K/group]`` in the compute
  dtype with ``W = (W_q − zeros) · scales`` — so ``zeros = zp + 2^(b−1)``;
  1/2/4/8-bit, group a multiple of 32 (or channel-wise), K % 32 == 0;
- NVFP4 (``A16W4_NVFP``): the checkpoint's packed bytes (low nibble = even
  element, as gemlite packs), E4M3 block scales, and ``meta_scale`` = 1 /
  per-tensor multiplier (gemlite multiplies by its reciprocal);
- MXFP4 (``A16W4_MXFP``): packed bytes and E8M0 scales as stored.

Activation quantization (W4A8, NVFP4 W4A4) and pre-quant scales are applied
as emulation before the weight-only GEMM, as on every weight-only backend.
Not run on a GPU in this version's tests (none was available); the operand
conversion below is tested on CPU.

    >>> import torch
    >>> from quantresolve.dispatch.codecs.base import IntWeights
    >>> view = IntWeights(q=torch.tensor([[-8, 7]], dtype=torch.int8), scale=torch.tensor([[0.5]]),
    ...                   zero=None, group=2, bits=4)
    >>> w_q, scales, zeros = int_operands(view, torch.float16)
    >>> w_q.tolist(), ((w_q.float() - zeros.float()) * scales.float()).tolist()
    ([[0, 15]], [[-4.0, 3.5]])
"""

from __future__ import annotations

import importlib.util
from typing import Any

import torch

from quantresolve.dispatch.backends import needs
from quantresolve.dispatch.backends.base import Ask, Backend
from quantresolve.dispatch.backends.inputs import int_kernel_input, row_major
from quantresolve.dispatch.backends.registry import register_backend
from quantresolve.dispatch.codecs.base import IntWeights
from quantresolve.dispatch.codecs.registry import codec_overrides
from quantresolve.dispatch.shards import ShardGroup
from quantresolve.dispatch.specs import Verdict

__all__ = ["int_operands"]

#: Weight bit widths gemlite packs.
GEMLITE_BITS = (1, 2, 4, 8)
#: gemlite's FP4 kernels use Triton's ``dot_scaled``; gemlite targets Hopper and Blackwell for them.
FP4_CAPABILITY = (9, 0)
INT_CAPABILITY = (8, 0)


#: gemlite's FP4 paths are declined until they are verified on a GPU: on an H100 (torch 2.11, Triton 3.6,
#: gemlite 0.6.0.post2, 2026-11-22) its NVFP4 kernels failed to compile (Triton PassManager error) and the
#: MXFP4 layer built from our repack gave a relative error of 3e2 against the reference.
FP4_VERIFIED = False
FP4_UNVERIFIED = ("NVFP4/MXFP4 through gemlite are not verified (NVFP4 kernels failed to compile and MXFP4 "
                  "results were wrong on an H100 with gemlite 0.6.0.post2 / Triton 3.6)")


def gemlite_installed() -> bool:
    return importlib.util.find_spec("gemlite") is not None


def int_operands(view: IntWeights, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """gemlite's ``(W_q uint8 [N, K], scales, zeros)`` for ``W = (q − zp) · repeat(scale, group)``."""
    offset = 1 << (view.bits - 1)
    w_q = (view.q.to(torch.int16) + offset).to(torch.uint8)
    zero = view.zero.float() if view.zero is not None else torch.zeros_like(view.scale, dtype=torch.float32)
    return w_q, view.scale.to(dtype), (zero + offset).to(dtype)


def _installed(ask: Ask) -> Verdict | None:
    if gemlite_installed():  # looked up at call time: tests switch it
        return None
    return Verdict.no("unavailable: gemlite is not installed (pip install 'quantresolve[cuda]')")


def _format_guard(ask: Ask) -> Verdict | None:
    scheme, shapes, capability = ask.scheme, ask.shapes, ask.capability
    w = scheme.weights if scheme is not None else None
    if scheme is None or w is None:
        return Verdict.no("handles quantized weights only (layer is dense)")
    cap = capability or (0, 0)
    if codec_overrides(scheme, "fp4_weights"):
        if not FP4_VERIFIED:
            return Verdict.no(FP4_UNVERIFIED)
        return None if cap >= FP4_CAPABILITY else Verdict.no(
            f"NVFP4/MXFP4 need compute capability ≥ {FP4_CAPABILITY[0]}.{FP4_CAPABILITY[1]}, got {capability}")
    if w.type != "int" or not needs.has_int_view(scheme):
        return Verdict.no(f"handles integer, NVFP4 and MXFP4 weights only ({scheme.algo} is {w.type})")
    if w.num_bits not in GEMLITE_BITS:
        return Verdict.no(f"needs 1/2/4/8-bit weights, got {w.num_bits}")
    if w.strategy == "group" and (w.group_size or 0) % 32:
        return Verdict.no(f"needs a group size that is a multiple of 32, got {w.group_size}")
    if w.strategy not in ("group", "channel"):
        return Verdict.no(f"needs group or channel weight scales, got {w.strategy}")
    if shapes.k % int(w.group_size or 32):
        return Verdict.no(f"needs K % group == 0 (K={shapes.k}, group {w.group_size})")
    return None if cap >= INT_CAPABILITY else Verdict.no(
        f"needs compute capability ≥ {INT_CAPABILITY[0]}.{INT_CAPABILITY[1]}, got {capability}")


@register_backend
class Gemlite(Backend):
    """gemlite (Triton) weight-only GEMMs, one gemlite layer per shard."""

    name = "gemlite_cuda"
    description = "gemlite (int / NVFP4 / MXFP4 weight-only)"

    guards = (needs.cuda, _installed, needs.k_multiple(32), _format_guard)

    def prepare(self, group: ShardGroup) -> Any:
        from gemlite.helper import (  # lazy: gemlite queries the GPU on import
            A16W4_MXFP,
            A16W4_NVFP,
            A16Wn,
        )

        dev, dtype = str(group.device), group.dtype
        modules = []
        for shard in group.shards:
            fp4 = group.codec.fp4_weights(shard.tensors, shard.n, group.k)
            if fp4 is not None and fp4.kind == "nvfp4":
                meta = 1.0 / fp4.tensor_scale if fp4.tensor_scale is not None else torch.tensor(1.0)
                modules.append(A16W4_NVFP(device=dev, dtype=dtype).from_packed_weights(
                    fp4.packed, scales=fp4.scale, meta_scale=meta))
            elif fp4 is not None:
                modules.append(A16W4_MXFP(device=dev, dtype=dtype).from_packed_weights(fp4.packed, fp4.scale))
            else:
                view = group.codec.int_weights(shard.tensors, shard.n, group.k)
                assert view is not None  # supports() admitted integer schemes only
                w_q, scales, zeros = int_operands(view, dtype)
                modules.append(A16Wn(device=dev, dtype=dtype).from_weights(
                    w_q, scales, zeros, W_nbits=view.bits, group_size=view.group))
        return modules

    def apply(self, state: Any, x: torch.Tensor, group: ShardGroup) -> torch.Tensor:
        xin = row_major(int_kernel_input(x, group).to(group.dtype))
        outs = [m(xin) for m in state]
        return torch.cat(outs, dim=-1) if len(outs) > 1 else outs[0]
