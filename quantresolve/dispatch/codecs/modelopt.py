"""ModelOpt export formats (field notes §5).

    >>> from quantresolve.formats.scheme import modelopt_scheme
    >>> sorted(codec_for(modelopt_scheme("W4A16_AWQ")).expected(4, 256))
    ['pre_quant_scale', 'weight', 'weight_scale']
"""

from __future__ import annotations

import math

import torch

from quantresolve.dispatch.activations.modelopt import (
    modelopt_amax,
    modelopt_e4m3,
    modelopt_fp8_dequant,
    modelopt_mult,
)
from quantresolve.dispatch.codecs.base import (
    FP4Weights,
    FP8Weights,
    IntCodec,
    IntWeights,
    Tensors,
    WeightCodec,
    row_scale,
)
from quantresolve.dispatch.codecs.registry import codec_for, register_codec
from quantresolve.dispatch.numerics import (
    E4M3_MAX,
    e8m0_to_float,
    fp4_e2m1_values,
    mxfp4_dense,
    repeat_groups,
    unpack_nibbles,
)
from quantresolve.dispatch.specs import ANY_FLOAT, TensorSpec

__all__ = ["codec_for"]

_SCALAR = TensorSpec((), "float32", flexible=True)
_SCALAR_ANY = TensorSpec((), ANY_FLOAT, flexible=True)


def _group(codec: WeightCodec, k: int) -> int:
    w = codec.scheme.weights
    return int(w.group_size) if w is not None and w.group_size else k


@register_codec("modelopt", "FP8", "FP8_PER_CHANNEL_PER_TOKEN", "FP8_PB_WO")
class ModelOptFP8(WeightCodec):
    """FP8 E4M3 weights: ``W = w · weight_scale`` with a scalar, per-row ``[N]`` or 128×128 block scale,
    the product computed as ModelOpt's fake quantizer computes it (``w · (1 / (448 / amax))``).

    ``FP8`` adds a static per-tensor ``input_scale``; ``FP8_PER_CHANNEL_PER_TOKEN``
    quantizes activations per token at run time; ``FP8_PB_WO`` is weight-only.
    """

    def _scale_spec(self, n: int, k: int) -> TensorSpec:
        w = self.scheme.weights
        assert w is not None
        if w.strategy == "channel":
            return TensorSpec((n,), ANY_FLOAT, flexible=True)
        if w.strategy == "block":
            bn, bk = w.block_structure or (128, 128)
            return TensorSpec((math.ceil(n / bn), math.ceil(k / bk)), ANY_FLOAT)
        return _SCALAR_ANY

    def expected(self, n: int, k: int) -> dict[str, TensorSpec]:
        specs = {"weight": TensorSpec((n, k), "float8_e4m3fn"), "weight_scale": self._scale_spec(n, k)}
        a = self.scheme.input_activations
        if a is not None and not a.dynamic:
            specs["input_scale"] = _SCALAR_ANY
        return specs

    def fp8_weights(self, t: Tensors, n: int, k: int) -> FP8Weights | None:
        # ModelOpt's model multiplies the codes by its quantizer's 1 / (448 / amax), not by the
        # exported amax / 448: a product on a bf16 tie rounds the other way (0.17 % of
        # modelopt-fp8-pc-pt's weights; activations.modelopt.modelopt_fp8_dequant).
        w = self.scheme.weights
        assert w is not None
        if w.strategy == "channel":
            mult, block = modelopt_fp8_dequant(row_scale(t, "weight_scale", n), self.model_dtype), (1, k)
        elif w.strategy == "block":
            bn, bk = w.block_structure or (128, 128)
            mult, block = modelopt_fp8_dequant(t["weight_scale"].float(), self.model_dtype), (bn, bk)
        else:
            mult, block = modelopt_fp8_dequant(t["weight_scale"].float(), self.model_dtype).reshape(1, 1), (n, k)
        return FP8Weights(weight=t["weight"], scale=mult, block=block)

    def dequantize(self, t: Tensors, n: int, k: int) -> torch.Tensor:
        view = self.fp8_weights(t, n, k)
        assert view is not None
        return view.dense()


@register_codec("modelopt", "NVFP4", "W4A16_NVFP4", "NVFP4_AWQ", "W4A8_NVFP4_FP8")
class ModelOptNVFP4(WeightCodec):
    """NVFP4: ``W = fp4 · repeat(weight_scale.float() · weight_scale_2, 16)`` — ModelOpt's own order.

    ``input_scale`` (NVFP4, W4A8) is the activations' per-tensor scale; fused
    q/k/v (gate/up) shards of an export carry equal ``weight_scale_2`` and
    ``input_scale``, but each shard keeps its own here, so unequal values stay exact.
    """

    def expected(self, n: int, k: int) -> dict[str, TensorSpec]:
        g = _group(self, k)
        specs = {"weight": TensorSpec((n, math.ceil(k / 2)), "uint8"),
                 "weight_scale": TensorSpec((n, math.ceil(k / g)), "float8_e4m3fn"),
                 "weight_scale_2": _SCALAR}
        if self.scheme.input_activations is not None:
            specs["input_scale"] = _SCALAR
        if self.scheme.options.get("pre_quant_scale"):
            specs["pre_quant_scale"] = TensorSpec((k,), ANY_FLOAT)
        return specs

    def fp4_weights(self, t: Tensors, n: int, k: int) -> FP4Weights | None:
        return FP4Weights(packed=t["weight"], scale=t["weight_scale"], group=_group(self, k), kind="nvfp4",
                          tensor_scale=t["weight_scale_2"].float().reshape(()))

    def dequantize(self, t: Tensors, n: int, k: int) -> torch.Tensor:
        g = _group(self, k)
        per_block = t["weight_scale"].to(torch.float32) * t["weight_scale_2"].float().reshape(())
        fp4 = fp4_e2m1_values(unpack_nibbles(t["weight"], low_first=True))
        return (fp4.unflatten(-1, (-1, g)) * per_block.unsqueeze(-1)).flatten(-2)[:, :k]


@register_codec("modelopt", "MXFP4", "W4A8_MXFP4_FP8")
class ModelOptMXFP4(WeightCodec):
    """MXFP4: packed E2M1 ``weight`` ``[N, K/2]`` and E8M0 ``weight_scale`` ``[N, K/32]``."""

    def expected(self, n: int, k: int) -> dict[str, TensorSpec]:
        specs = {"weight": TensorSpec((n, math.ceil(k / 2)), "uint8"),
                 "weight_scale": TensorSpec((n, math.ceil(k / _group(self, k))), "uint8")}
        a = self.scheme.input_activations
        if a is not None and not a.dynamic:
            specs["input_scale"] = _SCALAR_ANY
        return specs

    def fp4_weights(self, t: Tensors, n: int, k: int) -> FP4Weights | None:
        return FP4Weights(packed=t["weight"], scale=t["weight_scale"], group=_group(self, k), kind="mxfp4",
                          tensor_scale=None)

    def dequantize(self, t: Tensors, n: int, k: int) -> torch.Tensor:
        return mxfp4_dense(t["weight"], t["weight_scale"], _group(self, k), k)


@register_codec("modelopt", "MXFP8")
class ModelOptMXFP8(WeightCodec):
    """MXFP8: E4M3 ``weight`` ``[N, K]`` and E8M0 ``weight_scale`` ``[N, K/32]``."""

    def expected(self, n: int, k: int) -> dict[str, TensorSpec]:
        return {"weight": TensorSpec((n, k), "float8_e4m3fn"),
                "weight_scale": TensorSpec((n, math.ceil(k / _group(self, k))), "uint8")}

    def dequantize(self, t: Tensors, n: int, k: int) -> torch.Tensor:
        return t["weight"].float() * repeat_groups(e8m0_to_float(t["weight_scale"]), _group(self, k), k)


def _awq_expected(codec: WeightCodec, n: int, k: int) -> dict[str, TensorSpec]:
    return {"weight": TensorSpec((math.ceil(n / 2), k), "uint8"),
            "weight_scale": TensorSpec((n, math.ceil(k / _group(codec, k))), ANY_FLOAT),
            "pre_quant_scale": TensorSpec((k,), ANY_FLOAT, optional=True)}


def _awq_int_view(codec: WeightCodec, t: Tensors, n: int, k: int) -> IntWeights:
    """``q · repeat(weight_scale, group)`` with the nibbles unpacked along N (two's complement)."""
    codes = unpack_nibbles(t["weight"].t().contiguous(), low_first=True).t()[:n]
    q = ((codes.to(torch.int16) ^ 8) - 8).to(torch.int8)
    return IntWeights(q=q, scale=t["weight_scale"].float(), zero=None, group=_group(codec, k), bits=4)


@register_codec("modelopt", "W4A16_AWQ")
class ModelOptInt4AWQ(IntCodec):
    """INT4 AWQ / block-wise: ``weight`` uint8 ``[N/2, K]`` — two output rows per byte, low nibble = even row.

    ``W = q · repeat(weight_scale, group)``; ``y = (x · pre_quant_scale) @ Wᵀ``.
    ``pre_quant_scale`` is optional (block-wise INT4 has none).
    """

    def expected(self, n: int, k: int) -> dict[str, TensorSpec]:
        return _awq_expected(self, n, k)

    def int_weights(self, t: Tensors, n: int, k: int) -> IntWeights | None:
        return _awq_int_view(self, t, n, k)


@register_codec("modelopt", "W4A8_AWQ")
class ModelOptW4A8AWQ(WeightCodec):
    """W4A8 AWQ: the INT4 AWQ layout, then a second rounding to FP8 E4M3 with ``weight_scale_2``.

    ModelOpt quantizes a W4A8 weight with two quantizers in sequence — INT4 blocks, then FP8
    per tensor (``weight_scale_2 = amax / 448`` of the first one's output) — and the kernels it
    targets multiply FP8 weights with FP8 activations. The weight the producer's model computes
    with is therefore::

        W = e4m3(w₁ · m) · (1 / m),   m = 448 / amax,   w₁ = q · repeat(weight_scale, group)

    in float32, with ``amax`` recovered from ``weight_scale_2 = amax / 448`` by
    :func:`~quantresolve.dispatch.activations.modelopt.modelopt_amax` (``e4m3(w₁ / weight_scale_2) · weight_scale_2``
    is the same weight mathematically, not in float32: for a bf16 amax of 147 · 2⁻¹¹, 6 % of a test
    weight's elements came out one bf16 step off), and with ``w₁`` first rounded to the dtype the model
    computes in (ModelOpt's first quantizer returns the weight's dtype; here :attr:`model_dtype`, the layer's compute dtype — which a
    loaded checkpoint takes from ``config.json``, the dtype ModelOpt ran in). Checked against
    ModelOpt 0.47's fake-quant weights of ``modelopt-w4a8-awq``: every element equal except the
    0.03 % whose INT4 code the export itself rounded differently; without the bf16 step 1 % differ,
    and the plain product ``q · s`` differs in 78 %.
    ``weight_scale_2`` is still not a factor of the plain product — it is the FP8 step's scale.
    Not an integer weight, so the integer kernels decline it; it *is* an FP8 weight with one per-tensor
    multiplier ``1 / m``, which :meth:`fp8_weights` gives the FP8 kernels (one byte per weight: twice the
    checkpoint's int4 codes, half of bf16), and :meth:`dequantize` computes through that same view.
    """

    def expected(self, n: int, k: int) -> dict[str, TensorSpec]:
        return _awq_expected(self, n, k) | {"weight_scale_2": _SCALAR_ANY, "input_scale": _SCALAR_ANY}

    def fp8_weights(self, t: Tensors, n: int, k: int) -> FP8Weights | None:
        w1 = _awq_int_view(self, t, n, k).dense(k).to(self.model_dtype)
        # the FP8 step in ModelOpt's own float32 arithmetic (class docstring), as its activations get it
        mult = modelopt_mult(modelopt_amax(t["weight_scale_2"].reshape(()), E4M3_MAX, self.model_dtype), E4M3_MAX)
        codes = modelopt_e4m3(w1, mult).to(torch.float8_e4m3fn)  # exact: the values are E4M3 codes
        return FP8Weights(weight=codes, scale=(1.0 / mult).reshape(1, 1), block=(n, k))

    def dequantize(self, t: Tensors, n: int, k: int) -> torch.Tensor:
        view = self.fp8_weights(t, n, k)
        assert view is not None
        return view.dense()


@register_codec("modelopt", "W8A8_SQ_PER_CHANNEL", "W8A16")
class ModelOptInt8(IntCodec):
    """INT8 per-channel ``weight`` with ``weight_scale`` ``[N]``: ``W = w · weight_scale``.

    SmoothQuant (W8A8_SQ_PER_CHANNEL) adds the static int8 ``input_scale`` and an
    optional ``pre_quant_scale`` (absent when the export folded it into the norm).
    """

    def expected(self, n: int, k: int) -> dict[str, TensorSpec]:
        specs = {"weight": TensorSpec((n, k), "int8"),
                 "weight_scale": TensorSpec((n,), ANY_FLOAT, flexible=True)}
        if self.scheme.input_activations is not None:
            specs["input_scale"] = _SCALAR_ANY
            specs["pre_quant_scale"] = TensorSpec((k,), ANY_FLOAT, optional=True)
        return specs

    def int_weights(self, t: Tensors, n: int, k: int) -> IntWeights | None:
        return IntWeights(q=t["weight"], scale=row_scale(t, "weight_scale", n), zero=None, group=k, bits=8)
