"""``scaled_mm_cuda``: ``torch._scaled_mm`` for FP8 weights with FP8 activations (CUDA, SM 8.9+).

The activations are quantized to real FP8 here (static ``input_scale`` or
dynamic per-token). Two scalings, chosen per layer at ``prepare()``:

- **per-tensor** (one scalar per operand): an unfused per-tensor checkpoint with
  a static activation scale. torch runs it through cuBLAS on every SM ≥ 8.9
  with any output dtype.
- **row-wise** (``[M, 1]`` activation and ``[1, N]`` weight scales): per-channel
  weights, dynamic per-token activations, or fused shards whose scales differ.
  torch sends row-wise scales to cuBLAS only on SM 9.x with cuBLAS ≥ 12.9, which
  writes any output dtype; everywhere else — SM 8.9 (a CUTLASS kernel since torch
  2.7), SM 10+, older cuBLAS — to its CUTLASS kernel, which takes a **bfloat16
  output** only. So a row-wise layer needs the bfloat16 compute dtype unless the
  GPU is SM 9.x and torch's CUDA is ≥ 12.9 (its cuBLAS); anything else is
  declined rather than left to fail in the first forward.

Without a CUDA device it reports ``unavailable: no CUDA device`` and is never
selected. Checked on an H100 (SM 9.0, torch 2.11 + CUDA 13.0): both scalings
agree with the layer's float32 reference, and row-wise fp16/fp32 outputs run.

    >>> from quantresolve.dispatch.specs import DeviceInfo
    >>> ScaledMM().supports(DeviceInfo(), None, Shapes(16, 16), None).reason
    'unavailable: no CUDA device'
"""

from __future__ import annotations

from typing import Any

import torch

from quantresolve.dispatch.backends import needs
from quantresolve.dispatch.backends.base import Ask, Backend
from quantresolve.dispatch.backends.registry import register_backend
from quantresolve.dispatch.codecs.base import act_kind
from quantresolve.dispatch.codecs.registry import codec_overrides
from quantresolve.dispatch.shards import ShardGroup, share_rows
from quantresolve.dispatch.specs import Shapes, Verdict
from quantresolve.formats.scheme import QuantScheme

__all__ = ["ROWWISE_DTYPE", "cublas_rowwise", "per_tensor_scheme"]

#: The only output dtype torch's row-wise FP8 GEMM takes on every SM ≥ 8.9 (see the module docstring).
ROWWISE_DTYPE = "bfloat16"


def per_tensor_scheme(scheme: QuantScheme | None, shapes: Shapes) -> bool:
    """True when the layer can run with one scalar scale per operand: per-tensor weights,
    a static per-tensor activation scale, and no fused shards (whose scales may differ)."""
    w = scheme.weights if scheme is not None else None
    a = scheme.input_activations if scheme is not None else None
    return (w is not None and w.strategy == "tensor" and a is not None and a.strategy == "tensor"
            and not a.dynamic and not shapes.shard_sizes)


def cublas_rowwise(capability: tuple[int, int] | None) -> bool:
    """True when torch runs row-wise FP8 scales through cuBLAS (any output dtype): SM 9.x and a
    torch built with CUDA ≥ 12.9 (whose cuBLAS first has row-wise scaling)."""
    cuda = torch.version.cuda
    if capability is None or capability[0] != 9 or not cuda:
        return False
    major, minor = (int(p) for p in cuda.split(".")[:2])
    return (major, minor) >= (12, 9)


def _fp8_weights(ask: Ask) -> Verdict | None:
    w = ask.weights
    if w is not None and w.type == "float" and w.num_bits == 8 and w.strategy in ("tensor", "channel") \
            and w.scale_dtype != "uint8" and codec_overrides(ask.scheme, "fp8_weights"):
        return None
    return Verdict.no("needs FP8 weights with tensor or channel scales")


def _fp8_activations(ask: Ask) -> Verdict | None:
    if act_kind(ask.scheme) == "fp8" and ask.scheme.input_activations.strategy in ("tensor", "token"):  # type: ignore[arg-type, union-attr]
        return None
    return Verdict.no("needs FP8 per-tensor or per-token activations")


def _nk_multiples_of_16(ask: Ask) -> Verdict | None:
    n, k = ask.shapes.n, ask.shapes.k
    return None if k % 16 == 0 and n % 16 == 0 else Verdict.no(f"needs N and K multiples of 16 (N={n}, K={k})")


def _output_dtype(ask: Ask) -> Verdict | None:
    shapes = ask.shapes
    if shapes.dtype == ROWWISE_DTYPE or per_tensor_scheme(ask.scheme, shapes) or cublas_rowwise(ask.capability):
        return None
    return Verdict.no(f"row-wise FP8 scales need a {ROWWISE_DTYPE} output here (torch's CUTLASS row-wise kernel; "
                      f"cuBLAS takes others on SM 9.x with CUDA ≥ 12.9), compute dtype is {shapes.dtype}; only "
                      "unfused per-tensor checkpoints run in other dtypes")


@register_backend
class ScaledMM(Backend):
    """FP8 × FP8 GEMM with per-tensor or row-wise scales."""

    name = "scaled_mm_cuda"
    description = "torch._scaled_mm (FP8, SM89+)"
    guards = (needs.cuda, needs.capability((8, 9)), _fp8_weights, _fp8_activations, _nk_multiples_of_16,
              _output_dtype)

    def prepare(self, group: ShardGroup) -> Any:
        w8, rows = [], []
        for s in group.shards:
            view = group.codec.fp8_weights(s.tensors, s.n, group.k)
            assert view is not None  # the guard checked that the codec has an FP8 view
            w8.append(view.weight.to(group.device))
            # A per-row weight scale [N] covers tensor and channel checkpoints and unequal shard scales.
            rows.append(view.scale.float().reshape(-1).expand(s.n).to(group.device))
        w_rows = torch.cat(rows)
        act = group.transform.act
        assert act is not None
        per_tensor = (act.static_scale is not None and act.granularity == "tensor"
                      and bool((w_rows == w_rows[0]).all()))
        w_scale = w_rows[0].reshape(()) if per_tensor else w_rows.reshape(1, -1)
        stacked = torch.cat(w8)
        share_rows(group, stacked)  # dequantize() reads the same FP8 rows: held once
        return stacked.t(), w_scale, per_tensor

    def apply(self, state: Any, x: torch.Tensor, group: ShardGroup) -> torch.Tensor:
        wt, w_scale, per_tensor = state
        act = group.transform.act
        assert act is not None
        codes, sx = act.quantize(group.transform.smooth(x))  # the producer's E4M3 codes and scale
        sx = sx.reshape(()) if per_tensor else sx.reshape(-1, 1).expand(codes.shape[0], 1).contiguous()
        xq = codes.to(torch.float8_e4m3fn)
        return torch._scaled_mm(xq, wt, scale_a=sx, scale_b=w_scale, out_dtype=group.dtype)
