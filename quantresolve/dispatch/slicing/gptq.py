"""GPTQ layouts: ``qweight`` words along **K**, ``qzeros`` words along **N**, ``[G, N]`` scales, ``g_idx``.

``qweight`` ``[K·b/32, N]`` is cut along N anywhere and along K only on whole words (8 int4 codes;
32 codes — three words — for 3 bits); ``qzeros`` ``[G, N·b/32]`` along N only on whole words of zero
points and along K on groups; ``scales`` ``[G, N]`` on groups. ``g_idx`` ``[K]`` is kept whole by a
column-parallel split and cut and rebased to the rank's first group by a row-parallel one. With
act-order (``desc_act``) the input columns of any slice of K belong to groups all over the matrix,
so a row-parallel split is refused (vLLM replicates the scales instead; here the layer then runs
unsplit along K).

    >>> from quantresolve.formats.normalize_gptq import gptq_scheme
    >>> from quantresolve.dispatch.codecs import codec_for
    >>> from quantresolve.dispatch.slicing.split import TPSpec
    >>> layout = layout_for(codec_for(gptq_scheme(3, 32, True, False)))
    >>> layout["qweight"].violation(TPSpec("row", 0, 4).split(64, 64))
    'a cut at input column 16 falls inside 3 int32 words of 32 3-bit codes (32 input columns)'
    >>> layout["qzeros"].violation(TPSpec("column", 0, 4).split(64, 64))
    'a cut at output row 16 falls inside 3 int32 words of 32 zero points (32 output rows)'
    >>> act = layout_for(codec_for(gptq_scheme(4, 32, True, True)))
    >>> act["g_idx"].violation(TPSpec("row", 0, 2).split(64, 128))
    'act-order (desc_act) weights cannot be split along K: the input columns of a slice belong to groups all over the matrix'
"""

from __future__ import annotations

import math

import torch

from quantresolve.dispatch.codecs import gptq as codecs
from quantresolve.dispatch.codecs.base import WeightCodec
from quantresolve.dispatch.slicing.common import group_axis
from quantresolve.dispatch.slicing.registry import Layout, layout_for, register_layout
from quantresolve.dispatch.slicing.slicers import Axis, AxisSlicer, Slicer
from quantresolve.dispatch.slicing.split import Split

__all__ = ["layout_for"]


def word_axis(dim: int, bits: int, what: str) -> Axis:
    """Axis ``dim`` of int32 words holding one LSB-first bitstream of ``bits``-bit ``what``."""
    g = math.gcd(32, bits)
    elements, indices = 32 // g, bits // g
    words = f"{indices} int32 words" if indices > 1 else "an int32 word"
    return Axis(dim, elements, indices, boundary=f"{words} of {elements} {what}")


class GroupIndexSlicer(Slicer):
    """``g_idx`` ``[K]``: whole under a column split; under a row split cut on groups and rebased so the
    rank's first group is 0 — refused with act-order, whose groups are scattered over K. Per channel
    (``group`` ``None``: one group spanning K) every entry is 0 and any cut keeps them so."""

    def __init__(self, group: int | None, act_order: bool) -> None:
        self.group, self.act_order = group, act_order
        self.axis = group_axis(0, group) if group else Axis(0)

    def violation(self, split: Split) -> str | None:
        if split.axis != "k" or split.world == 1:
            return None
        if self.act_order:
            return ("act-order (desc_act) weights cannot be split along K: the input columns of a slice belong "
                    "to groups all over the matrix")
        return self.axis.violation(split)

    def slice(self, tensor: torch.Tensor, split: Split, where: str) -> torch.Tensor:
        if split.axis != "k":
            return tensor
        first_group = split.start // self.group if self.group else 0
        return (Axis(0).take(tensor, split) - first_group).clone()  # one entry per input column


@register_layout(codecs.GptqCodec)
def _gptq(codec: WeightCodec) -> Layout:
    assert isinstance(codec, codecs.GptqCodec)
    group = codec.group_size
    groups = group_axis(0, group) if group else None  # per-channel: one group, kept whole along K
    return {
        "qweight": AxisSlicer(n=Axis(1), k=word_axis(0, codec.bits, f"{codec.bits}-bit codes")),
        "qzeros": AxisSlicer(n=word_axis(1, codec.bits, "zero points"), k=groups),
        "scales": AxisSlicer(n=Axis(1), k=groups),
        "g_idx": GroupIndexSlicer(group or None, codec.act_order),
    }
