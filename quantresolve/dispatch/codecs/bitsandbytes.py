"""bitsandbytes serialized formats: NF4 / FP4 (± double quantization) and LLM.int8.

4-bit: ``weight`` uint8 ``[ceil(N·K/2), 1]`` (element 2i in the **high** nibble),
``weight.absmax``, ``weight.quant_map`` ``[16]``, and with double quantization
``weight.nested_absmax`` / ``weight.nested_quant_map`` ``[256]``; the JSON quant
state (``weight.quant_state.bitsandbytes__nf4``) carries blocksize and offset.
``W = quant_map[code] · absmax[i // blocksize]`` with, under double
quantization, ``absmax = nested_quant_map[a8] · nested_absmax[j // 256] + offset``
— bnb's own order of operations, so the result is bit-identical in float32.

    >>> from quantresolve.formats.scheme import bnb_scheme
    >>> sorted(codec_for(bnb_scheme("BNB_INT8")).expected(4, 8))
    ['SCB', 'weight', 'weight_format']
"""

from __future__ import annotations

import json
import math

import torch

from quantresolve.dispatch.activations import ActQuant
from quantresolve.dispatch.activations.bitsandbytes import scheme_threshold
from quantresolve.dispatch.codecs.base import IntWeights, Tensors, WeightCodec, row_scale
from quantresolve.dispatch.codecs.registry import codec_for, register_codec
from quantresolve.dispatch.numerics import unpack_nibbles
from quantresolve.dispatch.specs import ANY_DTYPE, TensorSpec
from quantresolve.errors import LoadError

__all__ = ["codec_for"]

#: bitsandbytes' reciprocal of 127, as its int8 dequantization multiplies it.
_INV127 = 7.874015718698502e-3


@register_codec("bitsandbytes", "BNB_NF4", "BNB_FP4")
class BnB4bit(WeightCodec):
    """NF4 / FP4 blockwise codes (see module docstring)."""

    @property
    def quant_type(self) -> str:
        return "nf4" if self.scheme.algo == "BNB_NF4" else "fp4"

    @property
    def double_quant(self) -> bool:
        return bool(self.scheme.options.get("double_quant", False))

    @property
    def blocksize(self) -> int:
        return int(self.scheme.options.get("blocksize", 64))

    def expected(self, n: int, k: int) -> dict[str, TensorSpec]:
        blocks = math.ceil(n * k / self.blocksize)
        specs = {"weight": TensorSpec((math.ceil(n * k / 2), 1), "uint8", flexible=True),
                 "weight.quant_map": TensorSpec((16,), "float32"),
                 f"weight.quant_state.bitsandbytes__{self.quant_type}": TensorSpec(None, "uint8")}
        if self.double_quant:
            specs |= {"weight.absmax": TensorSpec((blocks,), "uint8"),
                      "weight.nested_absmax": TensorSpec((math.ceil(blocks / 256),), "float32"),
                      "weight.nested_quant_map": TensorSpec((256,), "float32")}
        else:
            specs["weight.absmax"] = TensorSpec((blocks,), "float32")
        return specs

    def quant_state_json(self, t: Tensors) -> dict[str, object]:
        raw = t[f"weight.quant_state.bitsandbytes__{self.quant_type}"]
        try:
            return json.loads(bytes(raw.to(torch.uint8).tolist()).decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise LoadError(f"quant state is not JSON: {err}",
                            field=f"weight.quant_state.bitsandbytes__{self.quant_type}") from err

    def absmax(self, t: Tensors) -> torch.Tensor:
        """Per-block float32 absmax (nested dequantization applied)."""
        if not self.double_quant:
            return t["weight.absmax"].float()
        state = self.quant_state_json(t)
        nested_block = int(state.get("nested_blocksize", 256))  # type: ignore[arg-type]
        codes = t["weight.absmax"].long()
        values = t["weight.nested_quant_map"].float()[codes]
        nested = t["weight.nested_absmax"].float().repeat_interleave(nested_block)[: codes.numel()]
        return values * nested + float(state.get("nested_offset", 0.0))  # type: ignore[arg-type]

    def dequantize(self, t: Tensors, n: int, k: int) -> torch.Tensor:
        codes = unpack_nibbles(t["weight"].reshape(-1), low_first=False)[: n * k]
        values = t["weight.quant_map"].float()[codes.long()]
        absmax = self.absmax(t).repeat_interleave(self.blocksize)[: n * k]
        return (values * absmax).reshape(n, k)


@register_codec("bitsandbytes", "BNB_INT8")
class BnBInt8(WeightCodec):
    """LLM.int8: ``weight`` int8 ``[N, K]``, ``SCB`` float32 ``[N]`` → ``W = w · SCB · (1/127)``.

    The activations are quantized too, as bitsandbytes does at inference: int8
    rows, and the columns with an outlier above the scheme's ``threshold`` in
    16 bits against the dequantized weight columns (:mod:`..activations.bitsandbytes`).
    """

    def act_quant(self, t: Tensors) -> ActQuant | None:
        return ActQuant(kind="llm_int8", granularity="token", threshold=scheme_threshold(self.scheme),
                        arith="bitsandbytes")

    def expected(self, n: int, k: int) -> dict[str, TensorSpec]:
        return {"weight": TensorSpec((n, k), "int8"), "SCB": TensorSpec((n,), "float32", flexible=True),
                "weight_format": TensorSpec(None, ANY_DTYPE, optional=True)}

    def dequantize(self, t: Tensors, n: int, k: int) -> torch.Tensor:
        return t["weight"] * row_scale(t, "SCB", n) * _INV127  # bitsandbytes' order: (w · SCB) / 127

    def int_weights(self, t: Tensors, n: int, k: int) -> IntWeights | None:
        return IntWeights(q=t["weight"], scale=row_scale(t, "SCB", n) * _INV127, zero=None, group=k, bits=8)
