"""ModelOpt's activation rounding, step by step (``TensorQuantizer`` on CPU, ``NVFP4QTensor`` /
``MXFP4QTensor`` / ``MXFP8QTensor`` for the block formats), and the FP8 helpers its weight codecs share.

Facts read from nvidia-modelopt 0.47 and checked bit for bit against its own functions in
``tests/dispatch/test_act_arith.py``:

- FP8: float32 multiplier ``448 / amax`` (``amax`` per tensor from the exported
  ``input_scale``, see below, or per token from the bf16 activation), ``x · m``
  clamped and cast, dequantized by ``· (1 / m)``, the result rounded to the activation
  dtype; an ``amax`` ≤ 2⁻²⁴ counts as 1. ``1 / m`` is not the exported ``amax / 448``:
  they differ in the last float32 bit for some ``amax``, and a product that falls
  on a bf16 tie then rounds the other way. The same quantizer rounds the FP8
  weights and the FP8 KV cache (the weight codec and :mod:`quantresolve.dispatch.kv_cache`
  use :func:`modelopt_amax` too).
- A calibrated ``amax`` is exported as the scale ``amax / qmax`` (float32) and is read
  back by :func:`modelopt_amax`: ``scale · qmax``, or that value rounded to the
  activation dtype when it divides back to ``scale`` exactly — a calibrated amax is the
  largest magnitude the quantizer saw, a value of the dtype it ran in, and
  ``scale · qmax`` can be one float32 step away from it.
- INT8 (SmoothQuant): ``m = 127 / amax``, ``round(x · m)`` clamped to −128..127 (its
  ``narrow_range`` is off by default), dequantized by ``/ m``.
- NVFP4: block scale ``amax / (6 · s₂)`` (``6 · s₂`` rounded first), a zero
  block scale is 1, clamped to [2⁻⁹, 448] before the E4M3 cast; E2M1 ties to even. Whole-tensor
  ops over ``[..., K/16, 16]`` blocks, the E2M1 rounding by arithmetic on the exponent bits
  (:func:`~quantresolve.dispatch.numerics.round_e2m1_half_even`), no per-element table look-up.
- MXFP4: exponent ``ceil(log2(amax / 6))`` (at least −127); E2M1 ties go *down*.
  MXFP8: ``ceil(log2(amax / 448))`` clamped to ±127.

    >>> sorted(MODELOPT.fakes)
    ['fp8', 'int8', 'mxfp4', 'mxfp8', 'nvfp4']
"""

from __future__ import annotations

import functools

import torch

from quantresolve.dispatch.activations.blocks import join_blocks, row_amax, split_blocks
from quantresolve.dispatch.activations.quant import ROW_WIDE, ActQuant, register_arithmetic
from quantresolve.dispatch.numerics import (
    E2M1_MAX,
    E4M3_MAX,
    round_e2m1_half_even,
    round_e2m1_ties_down,
)

Tensor = torch.Tensor

#: ModelOpt treats an amax at or below this as zero (its ``_fp8_eager`` / ``_tensor_quant`` epsilon).
_MODELOPT_EPS = 1.0 / (1 << 24)


def modelopt_amax(scale: Tensor, qmax: float, dtype: torch.dtype) -> Tensor:
    """The float32 ``amax`` behind ModelOpt's exported ``scale = amax / qmax`` (elementwise).

    ``scale · qmax`` in float32 is not always the amax the quantizer held. The
    calibrated amax is a magnitude the quantizer saw, so a value of ``dtype`` (the
    dtype the model ran in); when ``scale · qmax`` rounded to ``dtype`` divides back
    to ``scale`` exactly, that is the amax. Otherwise (an amax that is no value of
    ``dtype``) ``scale · qmax`` is kept. Example, the ``v_scale`` of
    ``modelopt-w4a16-nvfp4-fp8kv``'s layer 0, from an amax of 0.91796875:

        >>> s = torch.tensor(0.91796875) / 448
        >>> float(s * 448), float(modelopt_amax(s, 448.0, torch.bfloat16))
        (0.9179688096046448, 0.91796875)
        >>> float(modelopt_amax(torch.tensor(5.3) / 448, 448.0, torch.bfloat16))  # 5.3 is no bf16 value
        5.300000190734863
    """
    scale = scale.float()
    amax = scale * qmax
    rounded = amax.to(dtype).float()
    return torch.where(rounded / qmax == scale, rounded, amax)


@functools.lru_cache(maxsize=1024)
def _static_amax(scale: float, qmax: float, dtype: torch.dtype) -> float:
    # Once per (checkpoint scale, activation dtype): the per-call cost stays one scalar tensor.
    return float(modelopt_amax(torch.tensor(scale, dtype=torch.float32), qmax, dtype))


def _modelopt_amax(act: ActQuant, x: Tensor, qmax: float) -> Tensor:
    """float32 amax: the calibrated one (read back from ``input_scale``) or the live one."""
    if act.static_scale is not None:
        return torch.tensor(_static_amax(act.static_scale, qmax, x.dtype), dtype=torch.float32, device=x.device)
    return row_amax(act, x).float()


def modelopt_fp8_dequant(scale: Tensor, dtype: torch.dtype) -> Tensor:
    """ModelOpt's FP8 dequantizing multiplier ``1 / (448 / amax)`` for exported scales ``amax / 448``.

    What its fake quantizer multiplies the E4M3 codes by (float32; a zero scale gives 0).
    It is not always the scale itself. An amax of 0.07177734375 (147 · 2⁻¹¹ = 7 · 21 · 2⁻¹¹,
    a bf16 value; a row of ``modelopt-fp8-pc-pt``'s layer-0 ``q_proj``) makes the scale
    exactly 21 · 2⁻¹⁷, while ``448 / amax`` is inexact and its reciprocal one float32 step
    larger. Code 26 times the scale is a bf16 tie, which the larger multiplier breaks upward:

        >>> s = torch.tensor(0.07177734375) / 448
        >>> m = modelopt_fp8_dequant(s, torch.bfloat16)
        >>> float(s), float(m)
        (0.00016021728515625, 0.00016021729970816523)
        >>> float((26 * s).bfloat16()), float((26 * m).bfloat16())
        (0.004150390625, 0.004180908203125)
    """
    return 1.0 / (E4M3_MAX / modelopt_amax(scale, E4M3_MAX, dtype))


def modelopt_mult(amax: Tensor, qmax: float) -> Tensor:
    """ModelOpt's quantizing multiplier ``qmax / amax`` (float32), an amax at or below its epsilon taken as 1.

        >>> modelopt_mult(torch.tensor([0.0, 2.0]), 448.0).tolist()
        [448.0, 224.0]
    """
    return qmax / torch.where(amax <= _MODELOPT_EPS, torch.ones_like(amax), amax)


def modelopt_e4m3(x: Tensor, mult: Tensor) -> Tensor:
    """ModelOpt's FP8 codes of ``x · mult`` (float32 product, saturated at ±448), as float32; its fake
    quantizer then multiplies them by ``1 / mult``."""
    return (x.float() * mult).clamp(-E4M3_MAX, E4M3_MAX).to(torch.float8_e4m3fn).float()


def _modelopt_parts(act: ActQuant, x: Tensor) -> tuple[Tensor, Tensor]:
    """(codes, multiplier ``m``): FP8 dequantizes by ``· (1 / m)``, INT8 by ``/ m``."""
    qmax = E4M3_MAX if act.kind == "fp8" else 127.0
    amax = _modelopt_amax(act, x, qmax)
    mult = modelopt_mult(amax, qmax)
    if act.kind == "fp8":
        return modelopt_e4m3(x, mult), mult
    zero = amax <= _MODELOPT_EPS
    xf = x.float()
    # INT8 (narrow_range off by default: -128..127): a zero amax quantizes everything to 0, then divides by 1
    codes = torch.round(xf * torch.where(zero, torch.zeros_like(mult), mult)).clamp(-128.0, 127.0)
    return codes, torch.where(zero, torch.ones_like(mult), mult)


def _modelopt_scalar(act: ActQuant, x: Tensor) -> Tensor:
    codes, mult = _modelopt_parts(act, x)
    out = codes / mult if act.kind == "int8" else codes * (1.0 / mult)
    return out.to(x.dtype)


def _modelopt_nvfp4(act: ActQuant, x: Tensor) -> Tensor:
    xf = x.float()
    s2 = torch.tensor(act.static_scale, dtype=torch.float32, device=x.device) if act.static_scale is not None \
        else xf.abs().amax() / (E2M1_MAX * E4M3_MAX)
    blocks, k = split_blocks(xf, act.group or 16)
    per_block = blocks.abs().amax(dim=-1, keepdim=True) / (E2M1_MAX * s2)
    per_block = torch.where(per_block == 0, torch.ones_like(per_block), per_block)
    eff = per_block.clamp(min=2.0 ** -9, max=E4M3_MAX).to(torch.float8_e4m3fn).float() * s2
    return join_blocks(round_e2m1_half_even(blocks / eff).mul_(eff), k).to(x.dtype)


def _modelopt_mxfp4(act: ActQuant, x: Tensor) -> Tensor:
    blocks, k = split_blocks(x.float(), act.group or 32)
    descale = blocks.abs().amax(dim=-1, keepdim=True) / E2M1_MAX
    scale = torch.exp2(torch.ceil(torch.maximum(torch.log2(descale), torch.tensor(-127.0, device=x.device))))
    return join_blocks(round_e2m1_ties_down(blocks / scale) * scale, k).to(x.dtype)


def _modelopt_mxfp8(act: ActQuant, x: Tensor) -> Tensor:
    blocks, k = split_blocks(x, act.group or 32)
    descale = blocks.abs().amax(dim=-1, keepdim=True).float() / E4M3_MAX
    log2 = torch.where(descale > 0, torch.log2(descale), torch.tensor(-127.0, device=x.device))
    exp = torch.ceil(log2).clamp(-127, 127)
    q = (blocks.float() * torch.exp2(-exp)).clamp(-E4M3_MAX, E4M3_MAX).to(torch.float8_e4m3fn)
    return join_blocks(q.float() * torch.exp2(exp), k).to(x.dtype)


def _modelopt_codes(act: ActQuant, x: Tensor) -> tuple[Tensor, Tensor]:
    codes, mult = _modelopt_parts(act, x)
    return codes, 1.0 / mult


#: ModelOpt's quantizers (module docstring).
MODELOPT = register_arithmetic(
    "modelopt",
    {"fp8": _modelopt_scalar, "int8": _modelopt_scalar, "nvfp4": _modelopt_nvfp4, "mxfp4": _modelopt_mxfp4,
     "mxfp8": _modelopt_mxfp8},
    {"fp8": ROW_WIDE, "int8": ROW_WIDE, "nvfp4": ("group",), "mxfp4": ("group",), "mxfp8": ("group",)},
    _modelopt_codes)
