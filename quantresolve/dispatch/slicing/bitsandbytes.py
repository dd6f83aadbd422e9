"""bitsandbytes layouts: the flat 4-bit buffer and its blockwise absmax; LLM.int8 rows and ``SCB``.

A 4-bit weight is one flat buffer over the row-major ``[N, K]`` matrix
(``[N·K/2, 1]`` bytes) with one absmax per ``blocksize`` (64) consecutive
weights and, under double quantization, one ``nested_absmax`` per 256 absmax
values (16,384 weights). A rank's weights must be whole blocks of both levels:

- column-parallel: each rank's ``N/W`` rows are contiguous, so ``(N/W)·K`` must
  be a multiple of 64 (16,384 with double quantization);
- row-parallel: every row contributes a run of ``K/W`` weights, so ``K`` and
  ``K/W`` must both be multiples of 64 (16,384 with double quantization).

Anything else would need re-quantizing the absmax, which is refused. The JSON
quant state's ``shape`` is rewritten to the rank's shape (its ``nested_offset``
is global and stays).

    >>> from quantresolve.formats.scheme import bnb_scheme
    >>> from quantresolve.dispatch.codecs import codec_for
    >>> from quantresolve.dispatch.slicing.split import TPSpec
    >>> layout = layout_for(codec_for(bnb_scheme("BNB_NF4", double_quant=True)))
    >>> layout["weight.nested_absmax"].violation(TPSpec("row", 0, 2).split(128, 256))
    'rows of 256 weights do not start on a nested absmax block of 256 absmax values (16384 weights) of the flat buffer'
    >>> layout["weight.nested_absmax"].violation(TPSpec("column", 0, 2).split(256, 128)) is None
    True
"""

from __future__ import annotations

import json

import torch

from quantresolve.dispatch.codecs.base import WeightCodec
from quantresolve.dispatch.codecs.bitsandbytes import BnB4bit, BnBInt8
from quantresolve.dispatch.slicing.common import MATRIX, ROWS
from quantresolve.dispatch.slicing.registry import Layout, layout_for, register_layout
from quantresolve.dispatch.slicing.slicers import REPLICATED, FlatSlicer, Slicer
from quantresolve.dispatch.slicing.split import Split
from quantresolve.errors import LoadError

__all__ = ["layout_for"]

#: bitsandbytes quantizes the absmax vector in blocks of 256 (its ``nested_blocksize``).
NESTED_BLOCK = 256


class QuantStateJSON(Slicer):
    """The serialized quant state: ``shape`` checked against the full weight, rewritten to the rank's."""

    def violation(self, split: Split) -> str | None:
        return None

    def slice(self, tensor: torch.Tensor, split: Split, where: str) -> torch.Tensor:
        try:
            state = json.loads(bytes(tensor.to(torch.uint8).tolist()).decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise LoadError(f"quant state is not JSON: {err}", field=where) from err
        if list(state.get("shape", [])) != [split.n, split.k]:
            raise LoadError(f"quant state shape {state.get('shape')} is not the layer's [{split.n}, {split.k}]",
                            field=where)
        state["shape"] = list(split.local_nk)
        return torch.tensor(list(json.dumps(state).encode("utf-8")), dtype=torch.uint8)


@register_layout(BnB4bit)
def _four_bit(codec: WeightCodec) -> Layout:
    assert isinstance(codec, BnB4bit)
    block = codec.blocksize
    nested = block * NESTED_BLOCK
    return {
        "weight": FlatSlicer(2, "a byte of two 4-bit codes"),
        "weight.absmax": FlatSlicer(block, "an absmax block"),
        "weight.nested_absmax": FlatSlicer(nested, f"a nested absmax block of {NESTED_BLOCK} absmax values"),
        "weight.quant_map": REPLICATED,
        "weight.nested_quant_map": REPLICATED,
        f"weight.quant_state.bitsandbytes__{codec.quant_type}": QuantStateJSON(),
    }


@register_layout(BnBInt8)
def _int8(codec: WeightCodec) -> Layout:
    return {"weight": MATRIX, "SCB": ROWS, "weight_format": REPLICATED}
