"""``scaled_mm_cuda``: ``torch._scaled_mm`` for FP8 weights with FP8 activations (CUDA, SM 8.9+).

Per-tensor or per-row weight scales (a per-row scale ``[N]`` covers both, and
unequal scales of fused shards); the activations are quantized to real FP8
here (static ``input_scale`` or dynamic per-token). Without a CUDA device it
reports ``unavailable: no CUDA device`` and is never selected.

    >>> BACKENDS["scaled_mm_cuda"].supports(DeviceInfo(), None, Shapes(16, 16), None).reason
    'unavailable: no CUDA device'
"""

from __future__ import annotations

from typing import Any

import torch

from quantresolve.dispatch.backends.base import (
    BACKENDS,
    Backend,
    ShardGroup,
    first_failure,
    needs_cuda,
    register_backend,
)
from quantresolve.dispatch.codecs.base import act_kind
from quantresolve.dispatch.numerics import E4M3_MAX
from quantresolve.dispatch.specs import DeviceInfo, Shapes, Verdict
from quantresolve.formats.scheme import QuantScheme

__all__ = ["BACKENDS"]


@register_backend
class ScaledMM(Backend):
    """FP8 × FP8 GEMM with per-tensor / per-row scales."""

    name = "scaled_mm_cuda"
    description = "torch._scaled_mm (FP8, SM89+)"

    def supports(self, device: DeviceInfo, capability: tuple[int, int] | None, shapes: Shapes,
                 scheme: QuantScheme | None) -> Verdict:
        w = scheme.weights if scheme else None
        return first_failure(
            lambda: needs_cuda(device),
            lambda: None if capability is not None and capability >= (8, 9) else Verdict.no(
                f"needs compute capability ≥ 8.9, got {capability}"),
            lambda: None if w is not None and w.type == "float" and w.num_bits == 8
            and w.strategy in ("tensor", "channel") and w.scale_dtype != "uint8" else Verdict.no(
                "needs FP8 weights with tensor or channel scales"),
            lambda: None if act_kind(scheme) == "fp8" and scheme.input_activations.strategy in (  # type: ignore[arg-type, union-attr]
                "tensor", "token") else Verdict.no("needs FP8 per-tensor or per-token activations"),
            lambda: None if shapes.k % 16 == 0 and shapes.n % 16 == 0 else Verdict.no(
                f"needs N and K multiples of 16 (N={shapes.n}, K={shapes.k})"),
        )

    def prepare(self, group: ShardGroup) -> Any:
        # Per-row weight scale [N] covers both tensor and channel checkpoints (and unequal shard scales).
        w8, rows = [], []
        for s in group.shards:
            t = s.tensors
            w8.append(t["weight"].to(group.device))
            rows.append(t["weight_scale"].float().reshape(-1).expand(s.n).to(group.device))
        return torch.cat(w8).t(), torch.cat(rows).reshape(1, -1)

    def apply(self, state: Any, x: torch.Tensor, group: ShardGroup) -> torch.Tensor:
        wt, w_scale = state
        act = group.transform.act
        assert act is not None
        xf = group.transform.smooth(x)
        sx = act.scales(xf).reshape(-1, 1).expand(xf.shape[0], 1).contiguous()
        xq = (xf / sx).clamp(-E4M3_MAX, E4M3_MAX).to(torch.float8_e4m3fn)
        return torch._scaled_mm(xq, wt, scale_a=sx, scale_b=w_scale, out_dtype=group.dtype)
