"""Slicers shared by several producers' layouts: plain matrices and scales by quantization strategy.

    >>> from quantresolve.formats.scheme import QuantArgs
    >>> w = QuantArgs(num_bits=4, type="int", strategy="group", group_size=128)
    >>> scale_slicer(w).k.boundary
    'a group of 128 input columns'
"""

from __future__ import annotations

from collections.abc import Callable

from quantresolve.dispatch.slicing.slicers import REPLICATED, Axis, AxisSlicer, Slicer
from quantresolve.errors import DispatchError
from quantresolve.formats.scheme import QuantArgs

#: An unpacked ``[N, K]`` matrix (int8 / FP8 / dense weights).
MATRIX = AxisSlicer(n=Axis(0), k=Axis(1))
#: A per-output-row vector or ``[N, 1]`` column (per-channel scales, bias, LLM.int8 ``SCB``).
ROWS = AxisSlicer(n=Axis(0))
#: A per-input-column vector ``[K]`` (``pre_quant_scale``): split by row-parallel, replicated by column.
COLUMNS = AxisSlicer(k=Axis(0))
#: Packed E2M1 codes ``[N, K/2]`` (ModelOpt and compressed-tensors NVFP4 / MXFP4): a byte holds two input columns.
FP4_BYTES = AxisSlicer(n=Axis(0), k=Axis(1, 2, boundary="a byte of two FP4 values"))


def group_axis(dim: int, group: int) -> Axis:
    return Axis(dim, group, boundary=f"a group of {group} input columns")


def _group(w: QuantArgs) -> Slicer:
    if not w.group_size:  # a group of all of K is a per-channel scale
        return ROWS
    return AxisSlicer(n=Axis(0), k=group_axis(1, int(w.group_size)))


def _block(w: QuantArgs) -> Slicer:
    bn, bk = w.block_structure or (128, 128)
    block = f"a {bn}×{bk} scale block"
    return AxisSlicer(n=Axis(0, bn, boundary=block), k=Axis(1, bk, boundary=block))


#: weight strategy → slicer of its scale (and of a zero point shaped like it).
SCALE_SLICERS: dict[str, Callable[[QuantArgs], Slicer]] = {
    "tensor": lambda w: REPLICATED,
    "channel": lambda w: ROWS,
    "group": _group,
    "tensor_group": _group,
    "block": _block,
}


def scale_slicer(w: QuantArgs | None) -> Slicer:
    """The slicer of a weight scale ``[1]`` / ``[N]`` / ``[N, 1]`` / ``[N, K/g]`` / ``[N/bn, K/bk]``."""
    if w is None or w.strategy not in SCALE_SLICERS:
        strategy = None if w is None else w.strategy
        raise DispatchError(f"no tensor-parallel rule for weight scales of strategy {strategy!r}",
                            field="tp.weight_scale")
    return SCALE_SLICERS[w.strategy](w)
