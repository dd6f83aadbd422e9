"""HF fine-grained FP8 layout: an E4M3 matrix and its block (or per-tensor) scale.

The weight cuts anywhere; a block scale ``[ceil(N/bn), ceil(K/bk)]`` only on a block boundary (a cut
inside a block would split one scale between two ranks). Per-tensor weight and activation scales are
replicated. Both dialects' names are listed (``weight_scale_inv`` / ``activation_scale`` of transformers'
FP8Linear, ``weight_scale`` / ``input_scale`` of AutoFP8).

    >>> from quantresolve.dispatch.codecs import codec_for
    >>> from quantresolve.dispatch.slicing.split import TPSpec
    >>> from quantresolve.formats.normalize_fp8 import FINEGRAINED, fp8_scheme
    >>> layout = layout_for(codec_for(fp8_scheme((128, 128), "dynamic", dialect=FINEGRAINED)))
    >>> layout["weight_scale_inv"].violation(TPSpec("column", 0, 2).split(320, 256))
    'a cut at output row 160 falls inside a 128×128 scale block (128 output rows)'
"""

from __future__ import annotations

from quantresolve.dispatch.codecs import fp8 as codecs
from quantresolve.dispatch.codecs.base import WeightCodec
from quantresolve.dispatch.slicing.common import MATRIX, scale_slicer
from quantresolve.dispatch.slicing.registry import Layout, layout_for, register_layout
from quantresolve.dispatch.slicing.slicers import REPLICATED

__all__ = ["layout_for"]


@register_layout(codecs.HFFineGrainedFP8)
def _fp8(codec: WeightCodec) -> Layout:
    scale = scale_slicer(codec.scheme.weights)
    return {"weight": MATRIX, "weight_scale_inv": scale, "weight_scale": scale,
            "activation_scale": REPLICATED, "input_scale": REPLICATED}
