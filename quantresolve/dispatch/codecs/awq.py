"""AWQ GEMM (AutoAWQ; ``exllama`` / ``ipex`` checkpoints are the same tensors): int4 packed along **N**.

Tensors of a linear with ``K`` inputs, ``N`` outputs and group ``g`` (AutoAWQ ``WQLinear_GEMM``):

- ``qweight`` int32 ``[K, N/8]`` — stored transposed to ``nn.Linear`` — word ``c`` of row ``k`` holds
  columns ``8c + [0, 2, 4, 6, 1, 3, 5, 7][i]`` in its nibbles ``i`` (bits ``4i..4i+3``);
- ``qzeros`` int32 ``[K/g, N/8]``, packed the same way; ``scales`` float ``[K/g, N]``.

``W[n, k] = (q[k, n] − z[k // g, n]) · s[k // g, n]``: unsigned 4-bit codes and zero points, no offset.
The integer difference times the stored scale is exact in float32, so the one rounding is the cast to
the model's dtype (AutoAWQ's ``dequantize_gemm`` computes the difference and one fp16 multiply: the
same bits in fp16).

    >>> import torch
    >>> from quantresolve.formats.normalize_awq import awq_scheme
    >>> codec = codec_for(awq_scheme(64))
    >>> sorted((k, s.shape) for k, s in codec.expected(16, 128).items())
    [('qweight', (128, 2)), ('qzeros', (2, 2)), ('scales', (2, 16))]
    >>> word = torch.tensor([[0x76543210]], dtype=torch.int32)  # nibble i holds value i
    >>> unpack_awq(word, 8).tolist()   # nibble i is column [0, 2, 4, 6, 1, 3, 5, 7][i]
    [[0, 4, 1, 5, 2, 6, 3, 7]]
"""

from __future__ import annotations

import math

import torch

from quantresolve.dispatch.codecs.base import IntWeights, Tensors, WeightCodec
from quantresolve.dispatch.codecs.registry import codec_for, register_codec
from quantresolve.dispatch.numerics import unpack_int32_dense
from quantresolve.dispatch.specs import ANY_FLOAT, TensorSpec
from quantresolve.errors import DispatchError

__all__ = ["AwqGemmCodec", "codec_for", "unpack_awq"]

#: Column of each nibble of a word (AutoAWQ's pack order) and, inverted, the nibble of each column.
AWQ_ORDER = (0, 2, 4, 6, 1, 3, 5, 7)
AWQ_REVERSE = tuple(AWQ_ORDER.index(c) for c in range(8))


def unpack_awq(packed: torch.Tensor, count: int) -> torch.Tensor:
    """Unsigned codes ``[rows, count]`` (int32) of rows packed AWQ-style (eight nibbles per word, AWQ order)."""
    nibbles = unpack_int32_dense(packed, 4, packed.shape[1] * 8).reshape(packed.shape[0], -1, 8)
    columns = nibbles[..., list(AWQ_REVERSE)]
    return columns.reshape(packed.shape[0], -1)[:, :count]


@register_codec("awq", "W4A16_ASYM")
class AwqGemmCodec(WeightCodec):
    """AWQ GEMM ``qweight`` / ``qzeros`` / ``scales`` (see the module docstring)."""

    def __init__(self, scheme) -> None:  # type: ignore[no-untyped-def]
        super().__init__(scheme)
        w = scheme.weights
        if w is None or w.type != "int" or w.num_bits != 4 or w.symmetric:
            raise DispatchError(f"AWQ GEMM stores 4-bit codes with zero points, got {scheme.summary()}",
                                field="scheme.weights")
        self.group_size: int | None = w.group_size if w.strategy == "group" else None

    def _groups(self, k: int) -> tuple[int, int]:
        g = self.group_size or k
        return math.ceil(k / g), g

    def expected(self, n: int, k: int) -> dict[str, TensorSpec]:
        if n % 8:
            raise DispatchError(f"out_features {n} is not a multiple of 8: AWQ packs eight output columns per "
                                "int32 word", field="scheme")
        groups, _ = self._groups(k)
        return {"qweight": TensorSpec((k, n // 8), "int32"), "qzeros": TensorSpec((groups, n // 8), "int32"),
                "scales": TensorSpec((groups, n), ANY_FLOAT)}

    def int_weights(self, t: Tensors, n: int, k: int) -> IntWeights:
        codes = unpack_awq(t["qweight"], n).t()  # [N, K] unsigned
        zeros = unpack_awq(t["qzeros"], n)  # [G, N]
        return IntWeights(q=(codes - 8).to(torch.int8).contiguous(), scale=t["scales"].t().float().contiguous(),
                          zero=(zeros - 8).t().float().contiguous(), group=self._groups(k)[1], bits=4)

    def dequantize(self, t: Tensors, n: int, k: int) -> torch.Tensor:
        return self.int_weights(t, n, k).dense(k)

    def dense_is_int_view(self) -> bool:
        return True
