"""compressed-tensors' activation rounding (``forward_quantize``), step by step.

Everything in the activation's own dtype (bf16 for a bf16 model), static scales in their stored
dtype. Facts read from compressed-tensors 0.20 and checked bit for bit against its own functions in
``tests/dispatch/test_act_arith.py``:

- dynamic FP8 / INT8: scale ``amax / (range / 2)`` rounded to the activation
  dtype — ``range / 2`` is 448 for FP8 but **127.5** for int8 (its range is
  −128..127); a zero scale becomes the dtype's epsilon; ``x / scale`` is rounded
  to the dtype before the grid, and ``q · scale`` after it.
- NVFP4: ``amax / 6`` in the activation dtype, times ``input_global_scale`` in
  float32, E4M3-cast (a zero becomes 0.125), divided by the global scale again;
  E2M1 ties to even (whole-tensor ops over blocks of 16, as ModelOpt's).
- MXFP4 / MXFP8: the block max rounded to a power of two on its bit pattern
  (:func:`~quantresolve.dispatch.numerics.round_pow2_by_bits`), exponent ``floor(log2) − 2`` (E2M1) or
  ``− 8`` (E4M3), all in the activation dtype.

    >>> import torch
    >>> act = ActQuant(kind="int8", granularity="token", arith="compressed-tensors")
    >>> act.fake(torch.tensor([[127.5, 1.0]])).tolist()   # scale 127.5 / 127.5 = 1
    [[127.0, 1.0]]
"""

from __future__ import annotations

import torch

from quantresolve.dispatch.activations.blocks import join_blocks, row_amax, split_blocks
from quantresolve.dispatch.activations.quant import ROW_WIDE, ActQuant, register_arithmetic
from quantresolve.dispatch.numerics import (
    E2M1_MAX,
    E4M3_MAX,
    round_e2m1_half_even,
    round_pow2_by_bits,
)
from quantresolve.errors import DispatchError

Tensor = torch.Tensor

#: compressed-tensors' half range of a grid, as it divides the amax: (q_max − q_min) / 2.
_CT_HALF_RANGE = {"fp8": E4M3_MAX, "int8": 127.5}
_CT_GRID = {"fp8": (-E4M3_MAX, E4M3_MAX), "int8": (-128.0, 127.0)}
#: MX element formats: (E2M1 / E4M3 exponent offset, mantissa bits used to round the block max).
_CT_MX = {"mxfp4": (2, 1, E2M1_MAX), "mxfp8": (8, 1, E4M3_MAX)}


def _ct_dtype(act: ActQuant, x: Tensor) -> torch.dtype:
    if act.static_scale is None or act.static_dtype is None:
        return x.dtype
    return torch.promote_types(x.dtype, getattr(torch, act.static_dtype))


def _ct_scale(act: ActQuant, x: Tensor, amax_of: Tensor) -> Tensor:
    """The scale compressed-tensors divides by, in the dtype it divides in."""
    if act.static_scale is not None:
        dtype = getattr(torch, act.static_dtype) if act.static_dtype else torch.float32
        return torch.tensor(act.static_scale, dtype=dtype, device=x.device)
    half = torch.tensor(_CT_HALF_RANGE[act.kind], dtype=amax_of.dtype, device=x.device)
    scale = amax_of / half
    eps = torch.finfo(scale.dtype).eps
    return torch.where(scale == 0, torch.tensor(eps, dtype=scale.dtype, device=x.device), scale)


def _ct_grid(kind: str, scaled: Tensor) -> Tensor:
    lo, hi = _CT_GRID[kind]
    clamped = scaled.clamp(lo, hi)
    if kind == "int8":
        return torch.round(clamped)
    return clamped.to(torch.float8_e4m3fn).to(scaled.dtype)


def _ct_scalar_parts(act: ActQuant, x: Tensor) -> tuple[Tensor, Tensor]:
    """(codes in the arithmetic dtype, scale) for tensor / token / group granularities."""
    if act.granularity == "group":
        blocks, _ = split_blocks(x, act.group or x.shape[-1])
        scale = _ct_scale(act, x, blocks.abs().amax(dim=-1, keepdim=True))
        return _ct_grid(act.kind, blocks.to(_ct_dtype(act, x)) / scale), scale
    scale = _ct_scale(act, x, row_amax(act, x))
    return _ct_grid(act.kind, x.to(_ct_dtype(act, x)) / scale), scale


def _ct_scalar(act: ActQuant, x: Tensor) -> Tensor:
    codes, scale = _ct_scalar_parts(act, x)
    out = codes.to(scale.dtype) * scale
    return join_blocks(out, x.shape[-1]) if act.granularity == "group" else out


def _ct_nvfp4(act: ActQuant, x: Tensor) -> Tensor:
    if act.global_scale is None:
        raise DispatchError("compressed-tensors NVFP4 activations need input_global_scale",
                            field="input_global_scale")
    # shape [1] as stored: a 0-dim float32 tensor would not promote a bf16 product to float32
    g = torch.tensor([act.global_scale], dtype=torch.float32, device=x.device)
    blocks, k = split_blocks(x, act.group or 16)
    local = blocks.abs().amax(dim=-1, keepdim=True) / torch.tensor(E2M1_MAX, dtype=x.dtype, device=x.device)
    scale = (g * local).clamp(-E4M3_MAX, E4M3_MAX).to(torch.float8_e4m3fn).float()
    scale = torch.where(scale == 0, torch.full_like(scale, 0.125), scale) / g
    fp4 = round_e2m1_half_even(blocks / scale)  # saturates at ±6: compressed-tensors' clamp before its cast
    return join_blocks(fp4.mul_(scale), k).to(x.dtype)


def _ct_mx(act: ActQuant, x: Tensor) -> Tensor:
    offset, mantissa, qmax = _CT_MX[act.kind]
    blocks, k = split_blocks(x, act.group or 32)
    p2 = round_pow2_by_bits(blocks.abs().amax(dim=-1, keepdim=True), mantissa)
    biased = (127 + torch.floor(torch.log2(p2)) - offset).clamp(0, 255).round()
    scale = torch.exp2(biased.float() - 127).to(x.dtype)
    scale = torch.where(scale == 0, torch.ones_like(scale), scale)  # 2^-127 underflows in float16: its eps (1)
    scaled = (blocks / scale).clamp(-qmax, qmax)
    q = round_e2m1_half_even(scaled) if act.kind == "mxfp4" else scaled.to(torch.float8_e4m3fn).to(x.dtype)
    return join_blocks(q * scale, k)


def _ct_codes(act: ActQuant, x: Tensor) -> tuple[Tensor, Tensor]:
    codes, scale = _ct_scalar_parts(act, x)
    return codes.float(), scale.float()


#: compressed-tensors' ``forward_quantize`` (module docstring).
COMPRESSED_TENSORS = register_arithmetic(
    "compressed-tensors",
    {"fp8": _ct_scalar, "int8": _ct_scalar, "nvfp4": _ct_nvfp4, "mxfp4": _ct_mx, "mxfp8": _ct_mx},
    {"fp8": (*ROW_WIDE, "group"), "int8": (*ROW_WIDE, "group"), "nvfp4": ("group",), "mxfp4": ("group",),
     "mxfp8": ("group",)},
    _ct_codes)
