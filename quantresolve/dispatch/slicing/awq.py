"""AWQ GEMM layouts: ``qweight`` ``[K, N/8]`` and ``qzeros`` ``[G, N/8]`` hold eight output columns per
int32 word, so a column-parallel cut falls on a multiple of 8 output rows; ``scales`` ``[G, N]`` and the
zero points follow groups along K.

    >>> from quantresolve.formats.normalize_awq import awq_scheme
    >>> from quantresolve.dispatch.codecs import codec_for
    >>> from quantresolve.dispatch.slicing.split import TPSpec
    >>> layout = layout_for(codec_for(awq_scheme(64)))
    >>> layout["qweight"].violation(TPSpec("column", 0, 4).split(16, 128))
    'a cut at output row 4 falls inside an int32 word of 8 output columns (8 output rows)'
    >>> layout["scales"].violation(TPSpec("row", 0, 4).split(16, 128))
    'a cut at input column 32 falls inside a group of 64 input columns (64 input columns)'
"""

from __future__ import annotations

from quantresolve.dispatch.codecs import awq as codecs
from quantresolve.dispatch.codecs.base import WeightCodec
from quantresolve.dispatch.slicing.common import group_axis
from quantresolve.dispatch.slicing.registry import Layout, layout_for, register_layout
from quantresolve.dispatch.slicing.slicers import Axis, AxisSlicer

__all__ = ["layout_for"]

_WORDS = Axis(1, 8, boundary="an int32 word of 8 output columns")


@register_layout(codecs.AwqGemmCodec)
def _gemm(codec: WeightCodec) -> Layout:
    assert isinstance(codec, codecs.AwqGemmCodec)
    groups = group_axis(0, codec.group_size) if codec.group_size else None
    return {"qweight": AxisSlicer(n=_WORDS, k=Axis(0)), "qzeros": AxisSlicer(n=_WORDS, k=groups),
            "scales": AxisSlicer(n=Axis(1), k=groups)}
