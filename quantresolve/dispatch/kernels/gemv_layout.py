"""The packed layout the Triton GEMV reads: codes in int32 words, striped along K, padded to whole tiles.

Every 4-bit format (integer codes, NVFP4 and MXFP4 E2M1 codes) and 8-bit integer codes are
repacked at ``finalize()`` into one layout, so one kernel streams them all:

- **words**: int32 ``[N_pad, KW_pad]``; a word holds ``VPW = 32 / bits`` codes (8 nibbles, or 4
  bytes), code ``j`` at bits ``bits·j … bits·j + bits − 1`` (low first);
- **stripe** ``S``: ``S`` consecutive words of a row form a *chunk* of ``S·VPW`` elements, and slot
  ``j`` of word ``kw`` holds element::

      k = (kw // S) · S·VPW + j · S + kw % S

  so the ``j``-th codes of the ``S`` words of a chunk are ``S`` *consecutive* elements: a thread
  holding 4 words (one 16-byte load) multiplies them with 4 consecutive activations (one 8-byte
  load) per slot. ``S = 1`` is the plain sequential order (compressed-tensors' own packing);
- **padding**: rows to a multiple of :data:`ROW_ALIGN`, words to a multiple of :data:`WORD_ALIGN`,
  with the code of zero (integer: the offset; E2M1: 0), and the scales padded with 0 — so no tile
  of the kernel needs a mask on the weight, and padded elements multiply masked (zero) activations;
- **scales**: one per ``group`` elements of a row, ``[N_pad, ⌈K_pad / group⌉]`` (channel-wise: one
  column, read with a group larger than any K); integer scales in the narrowest float dtype that
  holds them exactly, NVFP4 E4M3 and MXFP4 E8M0 scales kept as their bytes (decoded in the kernel);
- integer **zero**: the zero point ``zp`` as float16 (``W = (q − zp) · scale``, the kernel decoding
  ``q = u − offset`` from the unsigned code ``u``), absent when symmetric; NVFP4's per-tensor scale
  is a per-row float32 vector (fused shards keep their own).

Worked example, 4-bit codes of one row of K = 64 with ``S = 4`` (chunks of 32 elements): word 0
holds elements 0, 4, 8, …, 28, word 1 holds 1, 5, …, 29, word 4 holds 32, 36, …, 60:

    >>> import torch
    >>> codes = torch.arange(64).remainder(16).to(torch.uint8).reshape(1, 64)
    >>> words = pack_codes(codes, bits=4, stripe=4, fill=0, rows=1)
    >>> words.shape, [slot_element(0, j, 4, 8) for j in range(8)]
    (torch.Size([1, 64]), [0, 4, 8, 12, 16, 20, 24, 28])
    >>> hex(words[0, 0].item() & 0xFFFFFFFF)  # element 4j at nibble j: 0, 4, 8, 12, 0, 4, 8, 12
    '0xc840c840'
    >>> torch.equal(unpack_codes(words, 1, 64, bits=4, stripe=4), codes)
    True
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

#: Rows are padded to a multiple of this (the largest BLOCK_N), so weight loads need no row mask.
ROW_ALIGN = 256
#: Words per row are padded to a multiple of this (the largest BLOCK_KW): no tile straddles the end.
WORD_ALIGN = 64
#: Stripe of the packed layout (words per chunk); 4 = one 16-byte load per thread and slot.
DEFAULT_STRIPE = 4
#: Rows repacked at a time: the int64 intermediates stay ≤ 8 bytes × 2^22 elements (32 MiB) a chunk.
PACK_ELEMENTS = 1 << 22


def values_per_word(bits: int) -> int:
    return 32 // bits


def slot_element(kw: int, j: int, stripe: int, vpw: int) -> int:
    """The element (column) held by slot ``j`` of word ``kw``."""
    return (kw // stripe) * stripe * vpw + j * stripe + kw % stripe


def padded_words(k: int, bits: int) -> int:
    """Words per row for ``k`` elements: whole chunks of every stripe, rounded up to :data:`WORD_ALIGN`."""
    words = math.ceil(k / values_per_word(bits))
    return math.ceil(words / WORD_ALIGN) * WORD_ALIGN


def padded_rows(n: int) -> int:
    return math.ceil(n / ROW_ALIGN) * ROW_ALIGN


def _pack_rows(codes: torch.Tensor, bits: int, stripe: int, fill: int, kw: int) -> torch.Tensor:
    """int32 ``[rows, kw]`` words from unsigned codes ``[rows, k]`` (one chunk of rows)."""
    rows, k = codes.shape
    vpw = values_per_word(bits)
    full = torch.full((rows, kw * vpw), fill, dtype=torch.int64, device=codes.device)
    full[:, :k] = codes.to(torch.int64)
    # element (chunk c, slot j, word-in-chunk i) sits at c·S·VPW + j·S + i: group by word, then slots
    by_word = full.reshape(rows, kw // stripe, vpw, stripe).transpose(2, 3)
    shifts = torch.arange(vpw, device=codes.device, dtype=torch.int64) * bits
    words = (by_word << shifts).sum(dim=-1).reshape(rows, kw)
    return torch.where(words >= 2**31, words - 2**32, words).to(torch.int32)  # the bit pattern, signed


def pack_codes(codes: torch.Tensor, *, bits: int, stripe: int, fill: int, rows: int | None = None,
               out: torch.Tensor | None = None, row0: int = 0) -> torch.Tensor:
    """Pack unsigned codes ``[n, k]`` (values ``0 … 2^bits − 1``) into the striped word layout.

    ``rows``: the padded row count of a new result (default :func:`padded_rows`); or ``out`` (a
    result being filled shard by shard) with ``row0`` the first row to write.
    """
    n, k = codes.shape
    kw = padded_words(k, bits)
    if out is None:
        out = torch.zeros(rows if rows is not None else padded_rows(n), kw, dtype=torch.int32,
                          device=codes.device)
        if out.shape[0] > n:  # padded rows hold the code of zero as well
            out[n:] = _pack_rows(torch.full((1, k), fill, dtype=torch.uint8, device=codes.device),
                                 bits, stripe, fill, kw)
    step = max(1, PACK_ELEMENTS // max(1, kw * values_per_word(bits)))
    for i in range(0, n, step):
        out[row0 + i:row0 + min(n, i + step)] = _pack_rows(codes[i:i + step], bits, stripe, fill, kw)
    return out


def unpack_codes(words: torch.Tensor, n: int, k: int, *, bits: int, stripe: int) -> torch.Tensor:
    """The inverse of :func:`pack_codes`: uint8 codes ``[n, k]`` (padding dropped), unpacked a row
    chunk at a time (the int64 intermediates stay ≤ :data:`PACK_ELEMENTS` elements)."""
    vpw = values_per_word(bits)
    kw = words.shape[1]
    shifts = torch.arange(vpw, device=words.device, dtype=torch.int64) * bits
    out = torch.empty(n, k, dtype=torch.uint8, device=words.device)
    step = max(1, PACK_ELEMENTS // max(1, kw * vpw))
    for i in range(0, n, step):
        w = words[i:min(n, i + step)].to(torch.int64) & 0xFFFFFFFF
        slots = (w.unsqueeze(-1) >> shifts) & ((1 << bits) - 1)  # [rows, kw, vpw]
        rows = w.shape[0]
        by_element = slots.reshape(rows, kw // stripe, stripe, vpw).transpose(2, 3).reshape(rows, kw * vpw)
        out[i:i + rows] = by_element[:, :k]
    return out


def pad_matrix(t: torch.Tensor, rows: int, cols: int, value: float = 0) -> torch.Tensor:
    """``t`` ``[r, c]`` in the top-left corner of a ``[rows, cols]`` matrix filled with ``value``."""
    if tuple(t.shape) == (rows, cols):
        return t.contiguous()
    out = torch.full((rows, cols), value, dtype=t.dtype, device=t.device)
    out[:t.shape[0], :t.shape[1]] = t
    return out


def exact_float(t: torch.Tensor) -> torch.Tensor:
    """float32 ``t`` in the narrowest of bfloat16 / float16 / float32 that holds every value exactly
    (the kernel reads scales as they are, so a narrower copy streams fewer bytes)."""
    for dtype in (torch.bfloat16, torch.float16):
        narrow = t.to(dtype)
        if torch.equal(narrow.float(), t.float()):
            return narrow
    return t.float()


@dataclass
class GemvWeights:
    """A repacked weight: ``W[n, k]`` as the kernel reads it (see the module docstring).

    ``fmt`` names a :data:`~quantresolve.dispatch.kernels.gemv_formats.FORMATS` entry; ``group``
    the elements per scale (``0`` = channel-wise); ``row_scale`` NVFP4's per-row tensor scale.
    """

    fmt: str
    n: int
    k: int
    words: torch.Tensor
    scale: torch.Tensor
    group: int
    stripe: int
    zero: torch.Tensor | None = None
    row_scale: torch.Tensor | None = None

    @property
    def nbytes(self) -> int:
        """Bytes one GEMV streams (codes, scales, zero points, row scales) — padding included."""
        parts = (self.words, self.scale, self.zero, self.row_scale)
        return sum(t.numel() * t.element_size() for t in parts if t is not None)
