"""Hugging Face fine-grained FP8 (``quant_method: fp8``): E4M3 weights with block or per-tensor float scales.

Two tensor dialects (the scheme's ``format``, :mod:`quantresolve.formats.normalize_fp8`):

- ``finegrained-fp8`` (transformers' ``FP8Linear``, DeepSeek, Qwen3-*-FP8): ``weight`` E4M3 ``[N, K]`` and
  ``weight_scale_inv`` — despite its name the multiplier — ``[ceil(N/bn), ceil(K/bk)]`` float32 for
  ``weight_block_size [bn, bk]`` (``scale_fmt: ue8m0``: one byte per block, ``2^(b − 127)``), or a scalar
  without blocks; ``activation_scale`` for static activations;
- ``autofp8`` (AutoFP8 / vLLM per-tensor): ``weight_scale`` and ``input_scale``.

``W[n, k] = float(q[n, k]) · S[n // bn, k // bk]`` in float32, as transformers' dequantizing loader and
DeepSeek's ``weight_dequant`` compute it. The block comes from the config and the scale grid is cropped
to the weight: transformers' loader instead infers the block from the grid (``rows // grid_rows``), which
is wrong for a dimension that is not a multiple of the block yet divides evenly by the grid (192 or 200
rows under 128-row blocks: silently mis-scaled), and raises for the others (129, 320, DeepSeek-V3's 576).

    >>> import torch
    >>> from quantresolve.formats.normalize_fp8 import FINEGRAINED, fp8_scheme
    >>> codec = codec_for(fp8_scheme((128, 128), "dynamic", dialect=FINEGRAINED))
    >>> {k: v.describe() for k, v in codec.expected(200, 256).items()}
    {'weight': '(200, 256) float8_e4m3fn', 'weight_scale_inv': '(2, 2) float'}
    >>> q = torch.ones(200, 256).to(torch.float8_e4m3fn)
    >>> w = codec.dequantize({"weight": q, "weight_scale_inv": torch.tensor([[1.0, 2.0], [3.0, 4.0]])}, 200, 256)
    >>> w[127, 127].item(), w[128, 128].item(), w[199, 255].item()
    (1.0, 4.0, 4.0)
"""

from __future__ import annotations

import math

import torch

from quantresolve.dispatch.activations import ActQuant
from quantresolve.dispatch.codecs.base import (
    FP8Weights,
    Tensors,
    WeightCodec,
    act_from_scheme,
    dtype_name,
)
from quantresolve.dispatch.codecs.registry import codec_for, register_codec
from quantresolve.dispatch.numerics import e8m0_to_float
from quantresolve.dispatch.specs import ANY_DTYPE, ANY_FLOAT, TensorSpec

__all__ = ["HFFineGrainedFP8", "codec_for"]

#: The scale tensors' names in each tensor dialect: (weight scale, static activation scale).
SCALE_NAMES = {"finegrained-fp8": ("weight_scale_inv", "activation_scale"), "autofp8": ("weight_scale", "input_scale")}

_SCALAR = TensorSpec((), ANY_FLOAT, flexible=True)


@register_codec("fp8", "FP8_BLOCK", "FP8", "FP8_DYNAMIC")
class HFFineGrainedFP8(WeightCodec):
    """E4M3 weights times their block (or per-tensor) scale, read from either dialect's tensor names."""

    def __init__(self, scheme) -> None:  # type: ignore[no-untyped-def]
        super().__init__(scheme)
        self.weight_scale, self.input_scale = SCALE_NAMES[scheme.format]
        w = scheme.weights
        self.block: tuple[int, int] | None = tuple(w.block_structure) if w.strategy == "block" else None  # type: ignore[assignment]
        self.ue8m0 = scheme.options.get("scale_fmt") == "ue8m0"

    def expected(self, n: int, k: int) -> dict[str, TensorSpec]:
        if self.block is None:
            scale = _SCALAR
        else:
            bn, bk = self.block
            # UE8M0 scales are one byte: float8_e8m0fnu, or uint8 exponents
            scale = TensorSpec((math.ceil(n / bn), math.ceil(k / bk)), ANY_DTYPE if self.ue8m0 else ANY_FLOAT)
        specs = {"weight": TensorSpec((n, k), "float8_e4m3fn"), self.weight_scale: scale}
        a = self.scheme.input_activations
        if a is not None and not a.dynamic:
            specs[self.input_scale] = _SCALAR
        return specs

    def _scale(self, t: Tensors) -> torch.Tensor:
        s = t[self.weight_scale]
        if s.dtype == torch.uint8:
            return e8m0_to_float(s)
        return s.float()

    def dequantize(self, t: Tensors, n: int, k: int) -> torch.Tensor:
        view = self.fp8_weights(t, n, k)
        assert view is not None
        return view.dense()

    def fp8_weights(self, t: Tensors, n: int, k: int) -> FP8Weights | None:
        """The codes and their float32 multipliers (one per tensor, or the block grid): ``dequantize()`` is this
        view's ``dense()``, and the packed FP8 kernels (``float_gemv_cpu``) and ``scaled_mm_cuda`` read it."""
        scale = self._scale(t)
        if self.block is None:
            return FP8Weights(t["weight"], scale.reshape(1, 1), (n, k))
        return FP8Weights(t["weight"], scale, self.block)

    def static_input_scale(self, t: Tensors) -> float | None:
        s = t.get(self.input_scale)
        return float(s.float().reshape(-1)[0]) if s is not None else None

    def act_quant(self, t: Tensors) -> ActQuant | None:
        s = t.get(self.input_scale)
        return act_from_scheme(self.scheme, self.static_input_scale(t),
                               static_dtype=dtype_name(s) if s is not None else None)
