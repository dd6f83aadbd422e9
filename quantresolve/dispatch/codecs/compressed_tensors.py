"""compressed-tensors formats (field notes §5): pack-, int-, float-, nvfp4-pack- and mxfp4-pack-quantized.

Dequantization follows the library's own arithmetic — ``(q.to(scale.dtype) -
zp) * scale`` in the scale's dtype, ``scale / global_scale`` first for NVFP4 —
so results are bit-identical to its decompressors.

    >>> import torch
    >>> from quantresolve.formats.scheme import QuantArgs, QuantScheme
    >>> w = QuantArgs(num_bits=4, type="int", strategy="group", group_size=32)
    >>> s = QuantScheme(algo="W4A16", producer="compressed-tensors", format="pack-quantized", weights=w)
    >>> sorted(codec_for(s).expected(8, 64))
    ['weight_packed', 'weight_scale', 'weight_shape']
"""

from __future__ import annotations

import math

import torch

from quantresolve.dispatch.activations import ActQuant
from quantresolve.dispatch.codecs.base import (
    FP4Weights,
    FP8Weights,
    IntWeights,
    Tensors,
    WeightCodec,
    act_from_scheme,
)
from quantresolve.dispatch.codecs.registry import codec_for, register_codec
from quantresolve.dispatch.numerics import (
    expand_blocks,
    fp4_e2m1_values,
    mxfp4_dense,
    packing_is_legacy,
    repeat_groups,
    unpack_int32_dense,
    unpack_int32_legacy,
    unpack_nibbles,
)
from quantresolve.dispatch.specs import ANY_DTYPE, ANY_FLOAT, TensorSpec
from quantresolve.errors import DispatchError

__all__ = ["codec_for"]


def _groups(codec: WeightCodec, k: int) -> tuple[int, int]:
    """(number of scale columns, group width) of the weight args."""
    w = codec.scheme.weights
    assert w is not None
    if w.strategy in ("group", "tensor_group"):
        g = int(w.group_size or k)
        return math.ceil(k / g), g
    return 1, k


def _scale_shape(codec: WeightCodec, n: int, k: int) -> tuple[int, ...]:
    w = codec.scheme.weights
    assert w is not None
    if w.strategy == "tensor":
        return (1,)
    if w.strategy == "block":
        bn, bk = w.block_structure or (128, 128)
        return (math.ceil(n / bn), math.ceil(k / bk))
    return (n, _groups(codec, k)[0])


def _broadcast_scale(codec: WeightCodec, scale: torch.Tensor, n: int, k: int) -> torch.Tensor:
    """Scale (or zero point) expanded to ``[n, k]``."""
    w = codec.scheme.weights
    assert w is not None
    if w.strategy == "tensor":
        return scale.reshape(1, 1).expand(n, k)
    if w.strategy == "block":
        return expand_blocks(scale, tuple(w.block_structure or (128, 128)), n, k)  # type: ignore[arg-type]
    _, g = _groups(codec, k)
    return repeat_groups(scale.reshape(n, -1), g, k)


def _ct_dequant(q: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor | None) -> torch.Tensor:
    """compressed-tensors' ``_dequantize``: ``(q.to(s.dtype) - zp.to(s.dtype)) * s``."""
    out = q.to(scale.dtype)
    if zero is not None:
        out = out - zero.to(scale.dtype)
    return out * scale


def _activation_specs(codec: WeightCodec) -> dict[str, TensorSpec]:
    a = codec.scheme.input_activations
    if a is None:
        return {}
    if a.strategy == "tensor_group":
        return {"input_global_scale": TensorSpec((1,), "float32", flexible=True)}
    if not a.dynamic:
        return {"input_scale": TensorSpec((1,), ANY_FLOAT, flexible=True)}
    return {}


def _int_view(codec: WeightCodec, q: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor | None,
              n: int, k: int) -> IntWeights:
    """The integer view shared by pack- and int-quantized: float32 ``[N, groups]`` scale and zero point."""
    w = codec.scheme.weights
    assert w is not None
    return IntWeights(q=q, scale=scale.reshape(n, -1).float(),
                      zero=zero.reshape(n, -1).float() if zero is not None else None,
                      group=_groups(codec, k)[1], bits=w.num_bits, dtype=scale.dtype)


def _int_strategy(codec: WeightCodec) -> bool:
    """Group and channel scales: the integer view exists, and the dense weight is computed from it."""
    return codec.scheme.weights.strategy in ("group", "channel")  # type: ignore[union-attr]


def _check_int_weights(codec: WeightCodec, formats: str) -> None:
    w = codec.scheme.weights
    if w is None or w.type != "int" or not 1 <= w.num_bits <= 8:
        raise DispatchError(f"{formats} needs integer weights of 1..8 bits, got "
                            f"{codec.scheme.summary()}", field="scheme.weights")


@register_codec("compressed-tensors", "pack-quantized")
class CTPackQuantized(WeightCodec):
    """``pack-quantized``: int1..8 codes packed into int32 words along K; zero points along N.

    Packing before compressed-tensors 0.17 (``options["version"]``) put
    ``32 // bits`` whole values in each word; 0.17+ writes a dense bitstream.
    The two agree for 2, 4 and 8 bits.
    """

    def __init__(self, scheme) -> None:  # type: ignore[no-untyped-def]
        super().__init__(scheme)
        _check_int_weights(self, "pack-quantized")
        self.bits = scheme.weights.num_bits
        self.legacy = packing_is_legacy(scheme.options.get("version")) and self.bits not in (2, 4, 8)

    def _words(self, count: int) -> int:
        if self.legacy:
            return math.ceil(count / (32 // self.bits))
        return math.ceil(count * self.bits / 32)

    def expected(self, n: int, k: int) -> dict[str, TensorSpec]:
        specs = {
            "weight_packed": TensorSpec((n, self._words(k)), "int32"),
            "weight_scale": TensorSpec(_scale_shape(self, n, k), ANY_FLOAT, flexible=True),
            "weight_shape": TensorSpec((2,), "int64"),
        }
        if not self.scheme.weights.symmetric:  # type: ignore[union-attr]
            specs["weight_zero_point"] = TensorSpec((self._words(n), _groups(self, k)[0]), "int32")
        return specs | _activation_specs(self)

    def _unpack(self, packed: torch.Tensor, count: int) -> torch.Tensor:
        """Signed codes ``[rows, count]`` (int8)."""
        if self.bits in (4, 8):
            # through 1-D: a [rows, 1] tensor counts as contiguous with any last stride, which .view refuses
            raw = packed.contiguous().reshape(-1).view(torch.uint8).reshape(packed.shape[0], -1)
            codes = unpack_nibbles(raw, low_first=True) if self.bits == 4 else raw
            codes = codes[:, :count].to(torch.int16)
        elif self.legacy:
            codes = unpack_int32_legacy(packed, self.bits, count)
        else:
            codes = unpack_int32_dense(packed, self.bits, count)
        return (codes - (1 << (self.bits - 1))).to(torch.int8)

    def _codes(self, t: Tensors, n: int, k: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        q = self._unpack(t["weight_packed"], k)
        zero = None
        if "weight_zero_point" in t:
            groups = _groups(self, k)[0]
            zero = self._unpack(t["weight_zero_point"].t().contiguous(), n).t().reshape(n, groups)
        return q, zero

    def dequantize(self, t: Tensors, n: int, k: int) -> torch.Tensor:
        if _int_strategy(self):  # the same arithmetic, through the view integer kernels also use
            return self._view(t, n, k).dense(k)
        q, zero = self._codes(t, n, k)
        scale = _broadcast_scale(self, t["weight_scale"], n, k)
        zfull = _broadcast_scale(self, zero, n, k) if zero is not None else None
        return _ct_dequant(q, scale, zfull)

    def _view(self, t: Tensors, n: int, k: int) -> IntWeights:
        q, zero = self._codes(t, n, k)
        return _int_view(self, q, t["weight_scale"], zero, n, k)

    def int_weights(self, t: Tensors, n: int, k: int) -> IntWeights | None:
        return self._view(t, n, k) if _int_strategy(self) else None

    def dense_is_int_view(self) -> bool:
        return _int_strategy(self)


@register_codec("compressed-tensors", "int-quantized", "naive-quantized")
class CTIntQuantized(WeightCodec):
    """``int-quantized``: one int8 per value (W8A8; W4A8 keeps int4 values in int8)."""

    def __init__(self, scheme) -> None:  # type: ignore[no-untyped-def]
        super().__init__(scheme)
        _check_int_weights(self, "int-quantized")

    def expected(self, n: int, k: int) -> dict[str, TensorSpec]:
        specs = {"weight": TensorSpec((n, k), "int8"),
                 "weight_scale": TensorSpec(_scale_shape(self, n, k), ANY_FLOAT, flexible=True)}
        if not self.scheme.weights.symmetric:  # type: ignore[union-attr]
            specs["weight_zero_point"] = TensorSpec(_scale_shape(self, n, k), ANY_DTYPE, flexible=True)
        return specs | _activation_specs(self)

    def dequantize(self, t: Tensors, n: int, k: int) -> torch.Tensor:
        if _int_strategy(self):  # the same arithmetic, through the view integer kernels also use
            return _int_view(self, t["weight"], t["weight_scale"], t.get("weight_zero_point"), n, k).dense(k)
        scale = _broadcast_scale(self, t["weight_scale"], n, k)
        zp = t.get("weight_zero_point")
        return _ct_dequant(t["weight"], scale, _broadcast_scale(self, zp, n, k) if zp is not None else None)

    def int_weights(self, t: Tensors, n: int, k: int) -> IntWeights | None:
        if not _int_strategy(self):
            return None
        return _int_view(self, t["weight"], t["weight_scale"], t.get("weight_zero_point"), n, k)

    def dense_is_int_view(self) -> bool:
        return _int_strategy(self)


@register_codec("compressed-tensors", "float-quantized")
class CTFloatQuantized(WeightCodec):
    """``float-quantized``: FP8 E4M3 weights with tensor, channel or 128×128 block scales."""

    def expected(self, n: int, k: int) -> dict[str, TensorSpec]:
        return {"weight": TensorSpec((n, k), "float8_e4m3fn"),
                "weight_scale": TensorSpec(_scale_shape(self, n, k), ANY_FLOAT, flexible=True),
                } | _activation_specs(self)

    def fp8_weights(self, t: Tensors, n: int, k: int) -> FP8Weights | None:
        # the scale as stored, multiplied in its own dtype (compressed-tensors' _dequantize)
        w = self.scheme.weights
        assert w is not None
        scale = t["weight_scale"]
        if w.strategy == "tensor":
            mult, block = scale.reshape(1, 1), (n, k)
        elif w.strategy == "block":
            bn, bk = w.block_structure or (128, 128)
            mult, block = scale.reshape(math.ceil(n / bn), math.ceil(k / bk)), (bn, bk)
        else:
            mult, block = scale.reshape(n, -1), (1, _groups(self, k)[1])
        return FP8Weights(weight=t["weight"], scale=mult, block=(int(block[0]), int(block[1])), product_dtype=scale.dtype)

    def dequantize(self, t: Tensors, n: int, k: int) -> torch.Tensor:
        view = self.fp8_weights(t, n, k)
        assert view is not None
        return view.dense()


class _CTFP4(WeightCodec):
    group = 16

    def _fp4(self, t: Tensors, k: int) -> torch.Tensor:
        return fp4_e2m1_values(unpack_nibbles(t["weight_packed"], low_first=True)[:, :k])

    def expected(self, n: int, k: int) -> dict[str, TensorSpec]:
        return {"weight_packed": TensorSpec((n, math.ceil(k / 2)), "uint8"),
                "weight_scale": TensorSpec((n, math.ceil(k / self.group)), self.scale_dtype)}

    scale_dtype = "float8_e4m3fn"
    kind = "nvfp4"

    def tensor_scale(self, t: Tensors) -> torch.Tensor | None:
        return None

    def divisor(self, t: Tensors) -> torch.Tensor | None:
        return None

    def fp4_weights(self, t: Tensors, n: int, k: int) -> FP4Weights | None:
        return FP4Weights(packed=t["weight_packed"], scale=t["weight_scale"], group=self.group, kind=self.kind,
                          tensor_scale=self.tensor_scale(t), divisor=self.divisor(t), packed_key="weight_packed")


@register_codec("compressed-tensors", "nvfp4-pack-quantized")
class CTNVFP4(_CTFP4):
    """``nvfp4-pack-quantized``: ``W = fp4 · repeat(weight_scale / weight_global_scale, 16)``.

    W4A4 (NVFP4) adds ``input_global_scale``; activations are quantized with
    ``1 / input_global_scale`` as the second-level scale.
    """

    def expected(self, n: int, k: int) -> dict[str, TensorSpec]:
        specs = super().expected(n, k) | {"weight_global_scale": TensorSpec((1,), "float32", flexible=True)}
        if self.scheme.input_activations is not None:
            specs["input_global_scale"] = TensorSpec((1,), "float32", flexible=True)
        return specs

    def dequantize(self, t: Tensors, n: int, k: int) -> torch.Tensor:
        eff = t["weight_scale"].to(torch.float32) / t["weight_global_scale"].float().reshape(1, 1)
        return self._fp4(t, k) * repeat_groups(eff, self.group, k)

    def tensor_scale(self, t: Tensors) -> torch.Tensor | None:
        return 1.0 / t["weight_global_scale"].float().reshape(())

    def divisor(self, t: Tensors) -> torch.Tensor | None:
        return t["weight_global_scale"].float().reshape(())

    def static_input_scale(self, t: Tensors) -> float | None:
        g = t.get("input_global_scale")
        return 1.0 / float(g.float().reshape(-1)[0]) if g is not None else None

    def act_quant(self, t: Tensors) -> ActQuant | None:
        # compressed-tensors multiplies and divides by the global scale itself, not by its reciprocal
        g = t.get("input_global_scale")
        return act_from_scheme(self.scheme, self.static_input_scale(t), static_dtype="float32",
                               global_scale=float(g.float().reshape(-1)[0]) if g is not None else None)


@register_codec("compressed-tensors", "mxfp4-pack-quantized")
class CTMXFP4(_CTFP4):
    """``mxfp4-pack-quantized``: ``W = fp4 · 2^(weight_scale − 127)`` per 32 values."""

    group = 32
    scale_dtype = "uint8"
    kind = "mxfp4"

    def dequantize(self, t: Tensors, n: int, k: int) -> torch.Tensor:
        return mxfp4_dense(t["weight_packed"], t["weight_scale"], self.group, k)
