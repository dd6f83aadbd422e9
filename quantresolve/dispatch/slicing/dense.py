"""The dense (unquantized) layer: one ``[N, K]`` float ``weight``.

    >>> from quantresolve.dispatch.codecs.dense import DenseCodec
    >>> sorted(layout_for(DenseCodec()))
    ['weight']
"""

from __future__ import annotations

from quantresolve.dispatch.codecs.base import WeightCodec
from quantresolve.dispatch.codecs.dense import DenseCodec
from quantresolve.dispatch.slicing.common import MATRIX
from quantresolve.dispatch.slicing.registry import Layout, layout_for, register_layout

__all__ = ["layout_for"]


@register_layout(DenseCodec)
def _dense(codec: WeightCodec) -> Layout:
    return {"weight": MATRIX}
