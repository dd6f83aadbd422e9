"""Bytes a module would take on disk, estimated from its shape and its resolved scheme.

Used where no shard header tells the real size (an index-only or config-only audit, shapes taken
from the model ``config.json`` describes). The estimate counts what every producer stores for a
weight-quantized linear: the codes (``num_bits`` per element) and the weight scales — one per
group of ``group_size`` input elements (``group`` / ``tensor_group``), per output row
(``channel``), per ``block_structure`` block, or one (``tensor``) — in the scheme's
``scale_dtype`` (1 byte for FP8 / E8M0 scales, else 2), plus a 4-byte second-level scale for
``tensor_group`` (NVFP4's ``weight_scale_2``) and a 4-byte input scale unless activations are
fully dynamic. Zero points,
``g_idx`` and bitsandbytes' quant-state blobs are left out: the estimate is within a few percent
of real exports, and the report says it is an estimate.

    >>> from quantresolve.formats.scheme import modelopt_scheme
    >>> nvfp4 = modelopt_scheme("NVFP4", group_size=16)
    >>> weight_bytes(nvfp4, (7168, 2048), dense_bits=16)   # codes 7.3 MB + e4m3 scales 0.9 MB + 2 fp32
    8257544
    >>> weight_bytes(None, (7168, 2048), dense_bits=16)
    29360128
"""

from __future__ import annotations

import math

from quantresolve.formats.scheme import QuantScheme

#: Bytes per scale when a scheme names its scale dtype; everything else is 16-bit.
_ONE_BYTE_SCALES = ("float8", "uint8", "e8m0", "int8")


def _scale_bytes(dtype: str | None) -> int:
    return 1 if dtype is not None and dtype.startswith(_ONE_BYTE_SCALES) else 2


def weight_bytes(scheme: QuantScheme | None, shape: tuple[int, ...], *, dense_bits: int) -> int:
    """Estimated stored bytes of a weight of logical ``shape`` (``[out, in]``, or ``[E, out, in]``)."""
    numel = math.prod(shape)
    if scheme is None or scheme.weights is None or len(shape) < 2:
        return numel * dense_bits // 8
    w = scheme.weights
    rows, k = math.prod(shape[:-1]), shape[-1]
    codes = math.ceil(numel * w.num_bits / 8)
    if w.strategy in ("group", "tensor_group") and w.group_size:
        scales = rows * math.ceil(k / w.group_size)
    elif w.strategy == "channel":
        scales = rows
    elif w.strategy == "block" and w.block_structure:
        scales = math.ceil(rows / w.block_structure[0]) * math.ceil(k / w.block_structure[1])
    else:
        scales = 1
    extra = 4 if w.strategy == "tensor_group" else 0
    a = scheme.input_activations
    if a is not None and a.dynamic is not True:  # static, or NVFP4's static global over local scales
        extra += 4
    return codes + scales * _scale_bytes(w.scale_dtype) + extra


__all__ = ["weight_bytes"]
