"""Slicing: where every checkpoint tensor of a codec may be cut along N or K, and the cut itself.

Place in the flow: above :mod:`..codecs` (a layout is stated per codec class) and below everything
that cuts weights — :mod:`..chunked` (dequantizing a large weight in row chunks), the layer's
tensor-parallel plan (:mod:`.plan`, used by :mod:`..linear`) and :mod:`..tp`. Pieces: which part a
rank holds (:mod:`.split`), how one tensor follows a cut (:mod:`.slicers`), one layout module per
producer (:mod:`.modelopt`, :mod:`.compressed_tensors`, :mod:`.bitsandbytes`, :mod:`.gptq`, :mod:`.awq`, :mod:`.fp8`, :mod:`.mxfp4`,
:mod:`.dense`)
registering with :mod:`.registry` — which imports none of them; this package imports them all —
and the plan of one layer (:mod:`.plan`, :mod:`.shard`).

    >>> from quantresolve.formats.scheme import modelopt_scheme
    >>> from quantresolve.dispatch.codecs import codec_for
    >>> layout_for(codec_for(modelopt_scheme("NVFP4")))["weight"].k.boundary
    'a byte of two FP4 values'
"""

from quantresolve.dispatch.slicing import (  # noqa: F401
    awq,
    bitsandbytes,
    compressed_tensors,
    dense,
    fp8,
    gptq,
    modelopt,
    mxfp4,
)
from quantresolve.dispatch.slicing.plan import TPPlan, plan_tp
from quantresolve.dispatch.slicing.registry import LAYOUTS, Layout, layout_for, register_layout
from quantresolve.dispatch.slicing.shard import shard_tensor
from quantresolve.dispatch.slicing.slicers import REPLICATED, Axis, AxisSlicer, FlatSlicer, Slicer
from quantresolve.dispatch.slicing.split import MODES, Split, TPSpec

__all__ = ["LAYOUTS", "MODES", "REPLICATED", "Axis", "AxisSlicer", "FlatSlicer", "Layout", "Slicer", "Split",
           "TPPlan", "TPSpec", "layout_for", "plan_tp", "register_layout", "shard_tensor"]
