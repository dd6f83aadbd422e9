"""ModelOpt export layouts: FP4 bytes along K, INT4 AWQ bytes along **N**, group / block / channel scales.

INT4 AWQ (and W4A8 AWQ) store two *output rows* per byte (``weight`` ``[N/2, K]``),
so a column-parallel cut must fall on an even row. ``pre_quant_scale`` ``[K]``
follows a row-parallel split and is replicated by a column-parallel one; the
per-tensor ``weight_scale_2`` and ``input_scale`` are replicated.

    >>> from quantresolve.formats.scheme import modelopt_scheme
    >>> from quantresolve.dispatch.codecs import codec_for
    >>> from quantresolve.dispatch.slicing.split import TPSpec
    >>> layout = layout_for(codec_for(modelopt_scheme("W4A16_AWQ", group_size=128)))
    >>> layout["weight"].violation(TPSpec("column", 0, 2).split(6, 256))
    'a cut at output row 3 falls inside a byte holding two output rows (2 output rows)'
    >>> layout["weight_scale"].violation(TPSpec("row", 0, 4).split(8, 256))
    'a cut at input column 64 falls inside a group of 128 input columns (128 input columns)'
"""

from __future__ import annotations

from quantresolve.dispatch.codecs import modelopt as codecs
from quantresolve.dispatch.codecs.base import WeightCodec
from quantresolve.dispatch.slicing.common import COLUMNS, FP4_BYTES, MATRIX, scale_slicer
from quantresolve.dispatch.slicing.registry import Layout, layout_for, register_layout
from quantresolve.dispatch.slicing.slicers import REPLICATED, Axis, AxisSlicer

__all__ = ["layout_for"]

#: Per-tensor scalars every rank keeps whole.
_SCALARS = {"weight_scale_2": REPLICATED, "input_scale": REPLICATED}


@register_layout(codecs.ModelOptFP8, codecs.ModelOptMXFP8, codecs.ModelOptInt8)
def _unpacked(codec: WeightCodec) -> Layout:
    return {"weight": MATRIX, "weight_scale": scale_slicer(codec.scheme.weights),
            "pre_quant_scale": COLUMNS} | _SCALARS


@register_layout(codecs.ModelOptNVFP4, codecs.ModelOptMXFP4)
def _fp4(codec: WeightCodec) -> Layout:
    return {"weight": FP4_BYTES, "weight_scale": scale_slicer(codec.scheme.weights),
            "pre_quant_scale": COLUMNS} | _SCALARS


@register_layout(codecs.ModelOptInt4AWQ, codecs.ModelOptW4A8AWQ)
def _int4_awq(codec: WeightCodec) -> Layout:
    return {"weight": AxisSlicer(n=Axis(0, 2, boundary="a byte holding two output rows"), k=Axis(1)),
            "weight_scale": scale_slicer(codec.scheme.weights), "pre_quant_scale": COLUMNS} | _SCALARS
