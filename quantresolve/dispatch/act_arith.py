"""Each producer's activation rounding, step by step: the registry behind :class:`ActQuant`.

The producers agree on the grids (E4M3, int8, E2M1 with E4M3 or E8M0 block
scales) and disagree on everything around them. Facts read from their 2025
releases (nvidia-modelopt 0.47, compressed-tensors 0.20) and checked bit for
bit against their own functions in ``tests/dispatch/test_act_arith.py``:

ModelOpt (``TensorQuantizer`` on CPU, ``NVFP4QTensor`` / ``MXFP4QTensor`` /
``MXFP8QTensor`` for the block formats):

- FP8: float32 multiplier ``448 / amax`` (``amax`` per tensor from the exported
  ``input_scale``, see below, or per token from the bf16 activation), ``x · m``
  clamped and cast, dequantized by ``· (1 / m)``, the result rounded to the activation
  dtype; an ``amax`` ≤ 2⁻²⁴ counts as 1. ``1 / m`` is not the exported ``amax / 448``:
  they differ in the last float32 bit for some ``amax``, and a product that falls
  on a bf16 tie then rounds the other way. The same quantizer rounds the FP8
  weights and the FP8 KV cache (the weight codec and :mod:`..kv_cache` use
  :func:`modelopt_amax` too).
- A calibrated ``amax`` is exported as the scale ``amax / qmax`` (float32) and is read
  back by :func:`modelopt_amax`: ``scale · qmax``, or that value rounded to the
  activation dtype when it divides back to ``scale`` exactly — a calibrated amax is the
  largest magnitude the quantizer saw, a value of the dtype it ran in, and
  ``scale · qmax`` can be one float32 step away from it.
- INT8 (SmoothQuant): ``m = 127 / amax``, ``round(x · m)`` clamped to −128..127 (its
  ``narrow_range`` is off by default), dequantized by ``/ m``.
- NVFP4: block scale ``amax / (6 · s₂)`` (``6 · s₂`` rounded first), a zero
  block scale is 1, clamped to [2⁻⁹, 448] before the E4M3 cast; E2M1 ties to even.
- MXFP4: exponent ``ceil(log2(amax / 6))`` (at least −127); E2M1 ties go *down*.
  MXFP8: ``ceil(log2(amax / 448))`` clamped to ±127.

compressed-tensors (``forward_quantize``): everything in the activation's own
dtype (bf16 for a bf16 model), static scales in their stored dtype:

- dynamic FP8 / INT8: scale ``amax / (range / 2)`` rounded to the activation
  dtype — ``range / 2`` is 448 for FP8 but **127.5** for int8 (its range is
  −128..127); a zero scale becomes the dtype's epsilon; ``x / scale`` is rounded
  to the dtype before the grid, and ``q · scale`` after it.
- NVFP4: ``amax / 6`` in the activation dtype, times ``input_global_scale`` in
  float32, E4M3-cast (a zero becomes 0.125), divided by the global scale again;
  E2M1 ties to even.
- MXFP4 / MXFP8: the block max rounded to a power of two on its bit pattern
  (:func:`~..numerics.round_pow2_by_bits`), exponent ``floor(log2) − 2`` (E2M1) or
  ``− 8`` (E4M3), all in the activation dtype.

    >>> sorted(ARITHMETIC)
    ['bitsandbytes', 'compressed-tensors', 'float32', 'modelopt']
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch

from quantresolve.dispatch.activations import ActQuant, check_granularity
from quantresolve.dispatch.llm_int8 import llm_int8_fake
from quantresolve.dispatch.numerics import (
    E2M1_MAX,
    E4M3_MAX,
    round_e2m1_half_even,
    round_e2m1_ties_down,
    round_pow2_by_bits,
)
from quantresolve.errors import DispatchError

Tensor = torch.Tensor
Fake = Callable[[ActQuant, Tensor], Tensor]
_SCALAR_KINDS = ("fp8", "int8")
_ROW_WIDE = ("tensor", "token")


def _blocks(x: Tensor, group: int) -> tuple[Tensor, int]:
    """``x`` ``[..., K]`` → ``[..., K'/group, group]`` (zero-padded to whole blocks) and K."""
    k = x.shape[-1]
    pad = (-k) % group
    xp = torch.nn.functional.pad(x, (0, pad)) if pad else x
    return xp.unflatten(-1, (-1, group)), k


def _unblock(blocks: Tensor, k: int) -> Tensor:
    return blocks.flatten(-2)[..., :k]


def _row_amax(act: ActQuant, x: Tensor) -> Tensor:
    """Dynamic amax over the tensor or each row (in ``x``'s dtype: a max is exact in any dtype)."""
    return x.abs().amax() if act.granularity == "tensor" else x.abs().amax(dim=-1, keepdim=True)


Codes = Callable[[ActQuant, Tensor], tuple[Tensor, Tensor]]


class Arithmetic:
    """One producer's rounding: ``fakes`` maps kind → quantize-dequantize, ``granularities`` the
    scale granularities each kind implements, ``codes`` (optional) real codes and their
    dequantizing multiplier for the scalar kinds (fp8 / int8) with tensor or token scales."""

    def __init__(self, name: str, fakes: dict[str, Fake], granularities: dict[str, tuple[str, ...]],
                 codes: Codes | None = None) -> None:
        self.name, self.fakes, self.granularities, self.codes = name, fakes, granularities, codes

    def check(self, act: ActQuant) -> None:
        if act.kind not in self.fakes:
            raise DispatchError(f"{self.name} activation arithmetic has no {act.kind} "
                                f"(known: {', '.join(sorted(self.fakes))})", field="input_activations")
        check_granularity(act, self.granularities[act.kind])

    def fake(self, act: ActQuant, x: Tensor) -> Tensor:
        return self.fakes[act.kind](act, x)

    def quantize(self, act: ActQuant, x: Tensor) -> tuple[Tensor, Tensor]:
        if self.codes is None or act.kind not in _SCALAR_KINDS or act.granularity not in _ROW_WIDE:
            raise DispatchError(f"{self.name} {act.kind} activations with {act.granularity} scales have no "
                                "integer / FP8 codes here", field="input_activations")
        return self.codes(act, x)


# --------------------------------------------------------------------------- plain float32

def _f32_scalar_codes(act: ActQuant, x: Tensor) -> tuple[Tensor, Tensor]:
    xf = x.float()
    qmax = E4M3_MAX if act.kind == "fp8" else 127.0
    if act.static_scale is not None:
        scale = torch.tensor(act.static_scale, dtype=torch.float32, device=x.device)
    else:
        scale = (_row_amax(act, xf) / qmax).clamp(min=1e-12)
    if act.kind == "int8":
        return torch.round(xf / scale).clamp(-128, 127), scale
    return (xf / scale).clamp(-E4M3_MAX, E4M3_MAX).to(torch.float8_e4m3fn).float(), scale


def _f32_scalar(act: ActQuant, x: Tensor) -> Tensor:
    codes, scale = _f32_scalar_codes(act, x)
    return codes * scale


#: Round-to-nearest in float32 with ``scale = amax / qmax`` — no producer's quirks. For activation
#: quantizers built directly (tests, tools), never for a checkpoint's.
FLOAT32 = Arithmetic("float32", {"fp8": _f32_scalar, "int8": _f32_scalar}, {"fp8": _ROW_WIDE, "int8": _ROW_WIDE},
                     _f32_scalar_codes)


# --------------------------------------------------------------------------- ModelOpt

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
    return _row_amax(act, x).float()


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
    blocks, k = _blocks(xf, act.group or 16)
    per_block = blocks.abs().amax(dim=-1, keepdim=True) / (E2M1_MAX * s2)
    per_block = torch.where(per_block == 0, torch.ones_like(per_block), per_block)
    eff = per_block.clamp(min=2.0 ** -9, max=E4M3_MAX).to(torch.float8_e4m3fn).float() * s2
    return _unblock(round_e2m1_half_even(blocks / eff) * eff, k).to(x.dtype)


def _modelopt_mxfp4(act: ActQuant, x: Tensor) -> Tensor:
    blocks, k = _blocks(x.float(), act.group or 32)
    descale = blocks.abs().amax(dim=-1, keepdim=True) / E2M1_MAX
    scale = torch.exp2(torch.ceil(torch.maximum(torch.log2(descale), torch.tensor(-127.0, device=x.device))))
    return _unblock(round_e2m1_ties_down(blocks / scale) * scale, k).to(x.dtype)


def _modelopt_mxfp8(act: ActQuant, x: Tensor) -> Tensor:
    blocks, k = _blocks(x, act.group or 32)
    descale = blocks.abs().amax(dim=-1, keepdim=True).float() / E4M3_MAX
    log2 = torch.where(descale > 0, torch.log2(descale), torch.tensor(-127.0, device=x.device))
    exp = torch.ceil(log2).clamp(-127, 127)
    q = (blocks.float() * torch.exp2(-exp)).clamp(-E4M3_MAX, E4M3_MAX).to(torch.float8_e4m3fn)
    return _unblock(q.float() * torch.exp2(exp), k).to(x.dtype)


def _modelopt_codes(act: ActQuant, x: Tensor) -> tuple[Tensor, Tensor]:
    codes, mult = _modelopt_parts(act, x)
    return codes, 1.0 / mult


#: ModelOpt's quantizers (module docstring).
MODELOPT = Arithmetic(
    "modelopt",
    {"fp8": _modelopt_scalar, "int8": _modelopt_scalar, "nvfp4": _modelopt_nvfp4, "mxfp4": _modelopt_mxfp4,
     "mxfp8": _modelopt_mxfp8},
    {"fp8": _ROW_WIDE, "int8": _ROW_WIDE, "nvfp4": ("group",), "mxfp4": ("group",), "mxfp8": ("group",)},
    _modelopt_codes)


# --------------------------------------------------------------------------- compressed-tensors

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
        blocks, _ = _blocks(x, act.group or x.shape[-1])
        scale = _ct_scale(act, x, blocks.abs().amax(dim=-1, keepdim=True))
        return _ct_grid(act.kind, blocks.to(_ct_dtype(act, x)) / scale), scale
    scale = _ct_scale(act, x, _row_amax(act, x))
    return _ct_grid(act.kind, x.to(_ct_dtype(act, x)) / scale), scale


def _ct_scalar(act: ActQuant, x: Tensor) -> Tensor:
    codes, scale = _ct_scalar_parts(act, x)
    out = codes.to(scale.dtype) * scale
    return _unblock(out, x.shape[-1]) if act.granularity == "group" else out


def _ct_nvfp4(act: ActQuant, x: Tensor) -> Tensor:
    if act.global_scale is None:
        raise DispatchError("compressed-tensors NVFP4 activations need input_global_scale",
                            field="input_global_scale")
    # shape [1] as stored: a 0-dim float32 tensor would not promote a bf16 product to float32
    g = torch.tensor([act.global_scale], dtype=torch.float32, device=x.device)
    blocks, k = _blocks(x, act.group or 16)
    local = blocks.abs().amax(dim=-1, keepdim=True) / torch.tensor(E2M1_MAX, dtype=x.dtype, device=x.device)
    scale = (g * local).clamp(-E4M3_MAX, E4M3_MAX).to(torch.float8_e4m3fn).float()
    scale = torch.where(scale == 0, torch.full_like(scale, 0.125), scale) / g
    fp4 = round_e2m1_half_even((blocks / scale).clamp(-E2M1_MAX, E2M1_MAX))
    return _unblock(fp4 * scale, k).to(x.dtype)


def _ct_mx(act: ActQuant, x: Tensor) -> Tensor:
    offset, mantissa, qmax = _CT_MX[act.kind]
    blocks, k = _blocks(x, act.group or 32)
    p2 = round_pow2_by_bits(blocks.abs().amax(dim=-1, keepdim=True), mantissa)
    biased = (127 + torch.floor(torch.log2(p2)) - offset).clamp(0, 255).round()
    scale = torch.exp2(biased.float() - 127).to(x.dtype)
    scale = torch.where(scale == 0, torch.ones_like(scale), scale)  # 2^-127 underflows in float16: its eps (1)
    scaled = (blocks / scale).clamp(-qmax, qmax)
    q = round_e2m1_half_even(scaled) if act.kind == "mxfp4" else scaled.to(torch.float8_e4m3fn).to(x.dtype)
    return _unblock(q * scale, k)


def _ct_codes(act: ActQuant, x: Tensor) -> tuple[Tensor, Tensor]:
    codes, scale = _ct_scalar_parts(act, x)
    return codes.float(), scale.float()


#: compressed-tensors' ``forward_quantize`` (module docstring).
COMPRESSED_TENSORS = Arithmetic(
    "compressed-tensors",
    {"fp8": _ct_scalar, "int8": _ct_scalar, "nvfp4": _ct_nvfp4, "mxfp4": _ct_mx, "mxfp8": _ct_mx},
    {"fp8": (*_ROW_WIDE, "group"), "int8": (*_ROW_WIDE, "group"), "nvfp4": ("group",), "mxfp4": ("group",),
     "mxfp8": ("group",)},
    _ct_codes)


# --------------------------------------------------------------------------- bitsandbytes

#: LLM.int8 (:mod:`..llm_int8`).
BITSANDBYTES = Arithmetic("bitsandbytes", {"llm_int8": lambda act, x: llm_int8_fake(x, act.threshold or 0.0)},
                          {"llm_int8": ("token",)})

#: ``ActQuant.arith`` → its arithmetic.
ARITHMETIC: dict[str, Arithmetic] = {a.name: a for a in (FLOAT32, MODELOPT, COMPRESSED_TENSORS, BITSANDBYTES)}


def arithmetic(act: ActQuant) -> Arithmetic:
    """The registered arithmetic of ``act``, checked to implement its kind and granularity."""
    found = ARITHMETIC.get(act.arith)
    if found is None:
        raise DispatchError(f"unknown activation arithmetic {act.arith!r}; known: {', '.join(sorted(ARITHMETIC))}",
                            field="input_activations")
    found.check(act)
    return found
