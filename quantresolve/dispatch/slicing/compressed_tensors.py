"""compressed-tensors layouts: int32 words along K, zero points packed along N, FP4 bytes, group and block scales.

``pack-quantized`` packs each row's codes into int32 words along K, so a
row-parallel cut must fall on a word (8 int4 or 4 int8 values; 32 values —
``bits`` words — for the dense bitstream of odd widths; ``32 // bits`` values
for the legacy layout) *and* on a group. Asymmetric zero points are packed the
same way along **N**, so a column-parallel cut must fall on one of their words.
``weight_shape`` is rewritten to the rank's shape.

    >>> import torch
    >>> from quantresolve.formats.scheme import QuantArgs, QuantScheme
    >>> from quantresolve.dispatch.codecs import codec_for
    >>> from quantresolve.dispatch.slicing.split import TPSpec
    >>> w = QuantArgs(num_bits=4, type="int", strategy="group", group_size=32, symmetric=False)
    >>> s = QuantScheme(algo="W4A16_ASYM", producer="compressed-tensors", format="pack-quantized", weights=w)
    >>> layout = layout_for(codec_for(s))
    >>> layout["weight_zero_point"].violation(TPSpec("column", 0, 4).split(16, 64))
    'a cut at output row 4 falls inside an int32 word of 8 zero points (8 output rows)'
    >>> layout["weight_shape"].slice(torch.tensor([16, 64]), TPSpec("row", 1, 2).split(16, 64), "weight_shape").tolist()
    [16, 32]
"""

from __future__ import annotations

import math

import torch

from quantresolve.dispatch.codecs import compressed_tensors as codecs
from quantresolve.dispatch.codecs.base import WeightCodec
from quantresolve.dispatch.slicing.common import FP4_BYTES, MATRIX, group_axis, scale_slicer
from quantresolve.dispatch.slicing.registry import Layout, layout_for, register_layout
from quantresolve.dispatch.slicing.slicers import REPLICATED, Axis, AxisSlicer, Slicer
from quantresolve.dispatch.slicing.split import Split
from quantresolve.errors import LoadError

__all__ = ["layout_for"]

#: Per-tensor activation scales: every rank quantizes its input with the same scale.
_ACTIVATION = {"input_scale": REPLICATED, "input_global_scale": REPLICATED}


class ShapeTensor(Slicer):
    """``weight_shape`` (int64 ``[2]``): checked against the full shape, rewritten to the rank's."""

    def violation(self, split: Split) -> str | None:
        return None

    def slice(self, tensor: torch.Tensor, split: Split, where: str) -> torch.Tensor:
        if tensor.reshape(-1).tolist() != [split.n, split.k]:
            raise LoadError(f"holds {tensor.tolist()}, but the layer is [{split.n}, {split.k}]", field=where)
        return torch.tensor(split.local_nk, dtype=tensor.dtype)


def _word_axis(codec: codecs.CTPackQuantized, dim: int, what: str) -> Axis:
    """Axis of int32 words holding ``what``, in whole-value units."""
    bits = codec.bits
    if codec.legacy:  # whole values per word, the remaining bits unused
        elements, indices = 32 // bits, 1
    else:  # one bitstream: values straddle words; a run of bits/g words holds 32/g values
        g = math.gcd(32, bits)
        elements, indices = 32 // g, bits // g
    words = f"{indices} int32 words" if indices > 1 else "an int32 word"
    return Axis(dim, elements, indices, boundary=f"{words} of {elements} {what}")


@register_layout(codecs.CTPackQuantized)
def _pack_quantized(codec: WeightCodec) -> Layout:
    assert isinstance(codec, codecs.CTPackQuantized)
    w = codec.scheme.weights
    scale = scale_slicer(w)
    bits = f"int{codec.bits} values"
    return {
        "weight_packed": AxisSlicer(n=Axis(0), k=_word_axis(codec, 1, bits)),
        "weight_scale": scale,
        # Zero points: one per (row, group), packed along N; their K dimension follows the scale's.
        "weight_zero_point": AxisSlicer(n=_word_axis(codec, 0, "zero points"),
                                        k=scale.k if isinstance(scale, AxisSlicer) else None),
        "weight_shape": ShapeTensor(),
    } | _ACTIVATION


@register_layout(codecs.CTIntQuantized, codecs.CTFloatQuantized)
def _unpacked(codec: WeightCodec) -> Layout:
    scale = scale_slicer(codec.scheme.weights)
    return {"weight": MATRIX, "weight_scale": scale, "weight_zero_point": scale} | _ACTIVATION


@register_layout(codecs.CTNVFP4, codecs.CTMXFP4)
def _fp4(codec: WeightCodec) -> Layout:
    assert isinstance(codec, codecs.CTNVFP4 | codecs.CTMXFP4)
    group = codec.group
    return {
        "weight_packed": FP4_BYTES,
        "weight_scale": AxisSlicer(n=Axis(0), k=group_axis(1, group)),
        "weight_global_scale": REPLICATED,
    } | _ACTIVATION
