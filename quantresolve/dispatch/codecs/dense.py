"""The unquantized layer's codec: one float ``weight`` ``[N, K]``, returned as it is.

Not in the registry (a dense layer has no scheme); :class:`~quantresolve.dispatch.linear.QuantLinear`
uses it for ``scheme=None``, so a dense layer runs through the same backends and slicers.

    >>> import torch
    >>> codec = DenseCodec()
    >>> sorted(codec.expected(2, 4)), codec.dequantize({"weight": torch.eye(2, 4)}, 2, 4).shape
    (['weight'], torch.Size([2, 4]))
"""

from __future__ import annotations

import torch

from quantresolve.dispatch.codecs.base import Tensors, WeightCodec
from quantresolve.dispatch.specs import ANY_FLOAT, TensorSpec


class DenseCodec(WeightCodec):
    """An unquantized layer: ``weight`` in any float dtype."""

    copy_free = True

    def __init__(self) -> None:  # no scheme
        self.scheme = None  # type: ignore[assignment]

    def expected(self, n: int, k: int) -> dict[str, TensorSpec]:
        return {"weight": TensorSpec((n, k), ANY_FLOAT)}

    def dequantize(self, t: Tensors, n: int, k: int) -> torch.Tensor:
        return t["weight"]

    def act_quant(self, t: Tensors) -> None:
        return None
