"""gpt-oss MXFP4 (``quant_method: mxfp4``): one expert projection's slice of the fused expert tensors.

gpt-oss stores every expert of a layer together, on the experts module: ``<proj>_blocks`` uint8
``[E, N, K/32, 16]`` and ``<proj>_scales`` uint8 ``[E, N, K/32]`` (plus ``<proj>_bias`` ``[E, N]``), with
``N`` the projection's output rows (``gate_up_proj``: ``2·I`` rows, gate and up interleaved; ``down_proj``:
``H``). One expert's projection is a linear of its own — the loader hands it ``blocks`` ``[N, K/32, 16]``
and ``scales`` ``[N, K/32]`` (:mod:`quantresolve.integrations.transformers.expert_containers`):

- byte ``j`` of a 16-byte block holds elements ``2j`` (low nibble) and ``2j + 1`` (high nibble) of a
  32-value group along K, each an E2M1 code (bit 3 the sign, bits 0–2 index ``0, .5, 1, 1.5, 2, 3, 4, 6``);
- each group's scale is E8M0: ``2^(s − 127)`` (``s = 255`` is NaN in the OCP MX spec; it decodes to
  infinity here, as transformers' ``ldexp`` gives).

``W[n, k] = e2m1(code) · 2^(scale[n, k // 32] − 127)``: exact in float32 and bfloat16 alike, so it equals
transformers' ``Mxfp4Config(dequantize=True)`` load, which computes in the model's dtype (transposed to
``[E, K, N]`` there, for ``x @ W``). The packed view (:meth:`fp4_weights`) is the same bytes as
compressed-tensors' ``mxfp4-pack-quantized`` ``[N, K/2]`` with its ``[N, K/32]`` scales.

    >>> import torch
    >>> from quantresolve.formats.normalize_mxfp4 import MXFP4_SCHEME
    >>> codec = codec_for(MXFP4_SCHEME)
    >>> {k: v.describe() for k, v in codec.expected(6, 64).items()}
    {'blocks': '(6, 2, 16) uint8', 'scales': '(6, 2) uint8'}
    >>> blocks = torch.zeros(6, 2, 16, dtype=torch.uint8); blocks[0, 0, 0] = 0x72   # elements 0, 1: 1.0, 6.0
    >>> scales = torch.full((6, 2), 128, dtype=torch.uint8)                         # 2^1
    >>> codec.dequantize({"blocks": blocks, "scales": scales}, 6, 64)[0, :3].tolist()
    [2.0, 12.0, 0.0]
"""

from __future__ import annotations

import torch

from quantresolve.dispatch.codecs.base import FP4Weights, Tensors, WeightCodec
from quantresolve.dispatch.codecs.registry import codec_for, register_codec
from quantresolve.dispatch.numerics import (
    mxfp4_dense,
)
from quantresolve.dispatch.specs import TensorSpec
from quantresolve.errors import DispatchError

__all__ = ["GptOssMXFP4", "codec_for"]

#: Values per E8M0 scale, and bytes per group of them.
GROUP = 32
GROUP_BYTES = GROUP // 2


@register_codec("mxfp4", "MXFP4A16")
class GptOssMXFP4(WeightCodec):
    """One expert projection of gpt-oss' fused MXFP4 experts: ``blocks`` and ``scales``, 32 values per scale."""

    def _groups(self, k: int) -> int:
        if k % GROUP:
            raise DispatchError(f"gpt-oss MXFP4 stores whole groups of {GROUP} input values; K = {k} is not a "
                                f"multiple of {GROUP}", field="in_features")
        return k // GROUP

    def expected(self, n: int, k: int) -> dict[str, TensorSpec]:
        groups = self._groups(k)
        return {"blocks": TensorSpec((n, groups, GROUP_BYTES), "uint8"), "scales": TensorSpec((n, groups), "uint8")}

    def fp4_weights(self, t: Tensors, n: int, k: int) -> FP4Weights | None:
        return FP4Weights(packed=t["blocks"].reshape(n, k // 2), scale=t["scales"], group=GROUP, kind="mxfp4",
                          tensor_scale=None, packed_key="blocks", scale_key="scales")

    def dequantize(self, t: Tensors, n: int, k: int) -> torch.Tensor:
        return mxfp4_dense(t["blocks"].reshape(n, k // 2), t["scales"], GROUP, k)
