"""gpt-oss MXFP4 layout: one expert projection's ``blocks`` ``[N, K/32, 16]`` and E8M0 ``scales`` ``[N, K/32]``.

Rows cut anywhere; along K a cut must fall on a group of 32 values — one E8M0 scale, one 16-byte
block — so both tensors are cut on their group dimension (1).

    >>> from quantresolve.dispatch.codecs import codec_for
    >>> from quantresolve.dispatch.slicing.split import TPSpec
    >>> from quantresolve.formats.normalize_mxfp4 import MXFP4_SCHEME
    >>> layout = layout_for(codec_for(MXFP4_SCHEME))
    >>> layout["blocks"].violation(TPSpec("row", 0, 4).split(64, 96))
    'a cut at input column 24 falls inside an E8M0 group of 32 FP4 values (32 input columns)'
"""

from __future__ import annotations

from quantresolve.dispatch.codecs import mxfp4 as codecs
from quantresolve.dispatch.codecs.base import WeightCodec
from quantresolve.dispatch.slicing.registry import Layout, layout_for, register_layout
from quantresolve.dispatch.slicing.slicers import Axis, AxisSlicer

__all__ = ["layout_for"]

_GROUP = Axis(1, codecs.GROUP, boundary=f"an E8M0 group of {codecs.GROUP} FP4 values")


@register_layout(codecs.GptOssMXFP4)
def _mxfp4(codec: WeightCodec) -> Layout:
    return {"blocks": AxisSlicer(n=Axis(0), k=_GROUP), "scales": AxisSlicer(n=Axis(0), k=_GROUP)}
