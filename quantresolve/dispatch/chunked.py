"""Dequantize a large weight in row chunks, so the float32 intermediates stay one chunk's size.

A codec dequantizes in float32 with several full-size intermediates (unpacked
codes, repeated scales, their product): at 28672×8192 that is ~0.9 GB each
for a 470 MB bf16 result. Splitting the rows bounds them to one chunk. The
cuts reuse the tensor-parallel column slicers (:mod:`.slicing`, the layer below this one), which
already know where every format's packed words, row pairs, zero-point words,
scale blocks and bitsandbytes absmax blocks may be cut; each chunk is
dequantized by the codec itself, so the result is the whole-weight result bit
for bit (every codec's arithmetic is row-local). A weight no even cut fits
(e.g. a prime number of rows) is dequantized whole. Place in the flow: above :mod:`.slicing` and
:mod:`.codecs`, below :mod:`.shards` (whose ``dense()`` uses it) and the backends.

    >>> from quantresolve.formats.scheme import modelopt_scheme
    >>> from quantresolve.dispatch.codecs import codec_for
    >>> chunk_count(codec_for(modelopt_scheme("W4A16_AWQ", group_size=128)), 28672, 8192)
    14
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch

from quantresolve.dispatch.codecs.base import Tensors, WeightCodec
from quantresolve.dispatch.slicing import LAYOUTS, TPSpec, layout_for

#: Weight elements dequantized at a time: 16 Mi elements keep each float32 intermediate at 64 MiB.
CHUNK_ELEMENTS = 1 << 24


def chunk_count(codec: WeightCodec, n: int, k: int, budget: int | None = None) -> int:
    """The fewest equal row chunks of at most ``budget`` elements every tensor of the codec can be cut
    into — or, when a format's unit is larger than that, the most chunks it allows (1 = whole: small
    enough, or no even cut at all)."""
    budget = budget or CHUNK_ELEMENTS
    if n * k <= budget or codec.copy_free:
        return 1
    layout_fn = LAYOUTS.get(type(codec))
    if layout_fn is None:
        return 1
    layout = layout_fn(codec)
    suffixes = list(codec.expected(n, k))
    if any(s not in layout for s in suffixes):
        return 1

    def fits(world: int) -> bool:
        split = TPSpec("column", 0, world).split(n, k)
        return all(layout[s].violation(split) is None for s in suffixes)

    target = math.ceil(n * k / budget)
    divisors = _divisors(n)
    # the fewest chunks within the budget; failing that, the most chunks the format allows
    within = next((w for w in divisors if w >= target and fits(w)), None)
    if within is not None:
        return within
    return next((w for w in reversed(divisors) if w < target and fits(w)), 1)


def _divisors(n: int) -> list[int]:
    """The divisors of ``n`` above 1, ascending."""
    small = [d for d in range(1, math.isqrt(n) + 1) if n % d == 0]
    return sorted(d for d in {*small, *(n // d for d in small)} if d > 1)


def row_parts(codec: WeightCodec, tensors: Tensors, n: int, k: int,
              budget: int | None = None) -> Iterator[tuple[int, Tensors]]:
    """``(rows, tensors)`` of each row chunk in order: the checkpoint tensors cut to those rows."""
    chunks = chunk_count(codec, n, k, budget)
    if chunks == 1:
        yield n, tensors
        return
    layout = layout_for(codec)
    for index in range(chunks):
        split = TPSpec("column", index, chunks).split(n, k)
        yield n // chunks, {suffix: layout[suffix].slice(t, split, suffix) for suffix, t in tensors.items()}


def dequantize_into(codec: WeightCodec, tensors: Tensors, n: int, k: int, out: torch.Tensor,
                    budget: int | None = None) -> None:
    """Write the codec's dense ``[n, k]`` weight into ``out`` (any float dtype), chunk by chunk."""
    row = 0
    for rows, part in row_parts(codec, tensors, n, k, budget):
        out[row:row + rows].copy_(codec.dequantize(part, rows, k))
        row += rows
