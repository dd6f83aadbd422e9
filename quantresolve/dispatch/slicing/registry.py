"""Tensor-parallel layouts: codec class → ``{suffix: Slicer}`` for every tensor the codec expects.

Keyed by the exact codec class (no inheritance): a new codec has no layout
until someone states how its tensors split, and using it under tensor
parallelism is an error naming it — never a guess.

    >>> from quantresolve.formats.scheme import modelopt_scheme
    >>> from quantresolve.dispatch.codecs import codec_for
    >>> sorted(layout_for(codec_for(modelopt_scheme("W4A16_AWQ"))))
    ['input_scale', 'pre_quant_scale', 'weight', 'weight_scale', 'weight_scale_2']
"""

from __future__ import annotations

from collections.abc import Callable

from quantresolve.dispatch.codecs.base import WeightCodec
from quantresolve.dispatch.slicing.slicers import Slicer
from quantresolve.errors import DispatchError

Layout = dict[str, Slicer]
LayoutFn = Callable[[WeightCodec], Layout]

#: codec class → function of the codec instance (its bits, groups, strategy) giving the layout.
LAYOUTS: dict[type[WeightCodec], LayoutFn] = {}


def register_layout(*codecs: type[WeightCodec]) -> Callable[[LayoutFn], LayoutFn]:
    def deco(fn: LayoutFn) -> LayoutFn:
        for cls in codecs:
            LAYOUTS[cls] = fn
        return fn
    return deco


def layout_for(codec: WeightCodec) -> Layout:
    """The layout of ``codec``'s tensors; a codec without one is an error naming it."""
    fn = LAYOUTS.get(type(codec))
    if fn is None:
        what = codec.scheme.summary() if codec.scheme is not None else "dense"
        raise DispatchError(f"no tensor-parallel layout for codec {type(codec).__name__} ({what}); "
                            "its tensors cannot be sharded", field="tp")
    return fn(codec)
