"""Packing for torch's CPU int4 kernel (``torch.ops.aten._weight_int4pack_mm_for_cpu``), and its inverse.

The kernel computes ``W = (u − 8) · scale + zero`` per group with ``u`` in 0..15, bf16 ``scale`` /
``zero`` per (group, row), group 32/64/128/256 (:func:`kernel_group`), and needs ``N % 16 == 0``
(field notes §6). :func:`pack` builds its operands from signed codes a row chunk at a time;
:func:`unpack_int4pack` reads the packer's layout back (:func:`layout_known` says whether it can on
this CPU); :func:`split_halves` is the two-int4-halves form of 5..8-bit codes (``int8split_cpu``).

Place in the flow: a kernel helper — codes and scales in, the op's operands out; the backends of
:mod:`quantresolve.dispatch.backends.int4pack` turn a layer's integer view into those codes.

    >>> kernel_group("channel", None, 384), kernel_group("group", 16, 384)
    (128, None)
    >>> import torch
    >>> split_halves(torch.tensor([[-128, 127, 5]], dtype=torch.int8).to(torch.int32)).tolist()
    [[0, 15, 8, 0, 15, 5]]
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch

__all__ = ["kernel_group", "layout_known", "pack", "split_halves", "unpack_int4pack"]

INT4_GROUPS = (32, 64, 128, 256)


def kernel_group(strategy: str, group_size: int | None, k: int) -> int | None:
    """The kernel group for a scheme's scales at in_features ``k``, or ``None`` if none fits."""
    if strategy == "group":
        return group_size if group_size in INT4_GROUPS and k % group_size == 0 else None
    if strategy == "channel":
        return next((g for g in reversed(INT4_GROUPS) if k % g == 0), None)
    return None


#: Most rows packed at a time. The packed layout is blocked by 64 rows, so packing row chunks that
#: are multiples of 64 and concatenating equals packing the whole — and the int32 copies the packer
#: wants (4 bytes per weight: 0.9 GiB at 28672×8192) stay one chunk's size: at most
#: :data:`~quantresolve.dispatch.chunked.CHUNK_ELEMENTS` per copy (2048 rows at K = 8192, 1024 for
#: int8split's doubled K).
CHUNK_ROWS = 4096


def _chunk_rows(k: int, budget: int) -> int:
    return max(64, min(CHUNK_ROWS, budget // k // 64 * 64))


def pack(q: torch.Tensor, unsigned: Callable[[torch.Tensor], torch.Tensor], scale: torch.Tensor,
         offset: torch.Tensor, budget: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Kernel operands from signed codes ``q`` ``[N, K]`` (mapped to 0..15 by ``unsigned``, per row
    chunk of at most ``budget`` elements) and float32 ``scale``/``offset`` ``[N, K'/g]``."""
    packed: torch.Tensor | None = None
    rows = _chunk_rows(2 * q.shape[1], budget)  # int8split's halves double K; int4pack's stay under the budget too
    for i in range(0, q.shape[0], rows):
        part = torch.ops.aten._convert_weight_to_int4pack_for_cpu(
            unsigned(q[i:i + rows].to(torch.int32)).contiguous(), 1)
        if packed is None:  # written chunk by chunk: no list of parts and concatenated copy side by side
            packed = part if part.shape[0] == q.shape[0] else part.new_empty((q.shape[0], *part.shape[1:]))
        if packed is not part:
            packed[i:i + part.shape[0]] = part
    assert packed is not None
    scales_zeros = torch.stack([scale.t(), offset.t()], dim=-1).to(torch.bfloat16).contiguous()
    return packed, scales_zeros


def unpack_int4pack(packed: torch.Tensor, n: int, block: int | None = None) -> torch.Tensor:
    """The inverse of ``_convert_weight_to_int4pack_for_cpu``: uint8 codes 0..15 ``[n, K]`` from its
    ``[n, K/2]`` bytes. torch 2.13's layout, read off the packer (and checked by :func:`layout_known`):
    rows in blocks of ``block`` (64 where torch's CPU kernels use AVX-512, 32 on AVX2 machines), each
    block ``[K, block/2]`` bytes whose low nibble is row ``d`` and high nibble row ``block/2 + d``; the
    rows after the last full block (a multiple of 16) as ``[K, rows/2]`` bytes holding row ``2j`` low
    and ``2j + 1`` high. ``block=None`` takes this machine's block (:func:`packer_block_rows`)."""
    block = block or packer_block_rows() or 64
    k = packed.numel() * 2 // n
    flat = packed.reshape(-1)
    full = n // block * block
    head = flat[: full * k // 2].reshape(full // block, k, block // 2)
    parts = [torch.stack([head & 15, head >> 4], dim=1).transpose(2, 3).reshape(full, k)]
    if n > full:
        tail = flat[full * k // 2:].reshape(k, (n - full) // 2)
        parts.append(torch.stack([tail & 15, tail >> 4], dim=-1).reshape(k, n - full).t())
    return torch.cat(parts) if len(parts) > 1 else parts[0].contiguous()


@functools.cache
def packer_block_rows() -> int | None:
    """The row block this torch's packer uses on this CPU (64 or 32), or None when
    :func:`unpack_int4pack` inverts it with neither (full blocks and every tail size tried)."""
    codes = torch.randint(0, 16, (64 * 2 + 48, 64), generator=torch.Generator().manual_seed(0), dtype=torch.int32)
    packed = {rows: torch.ops.aten._convert_weight_to_int4pack_for_cpu(codes[:rows].contiguous(), 1)
              for rows in (16, 32, 48, 64, 80, 96, 112, 176)}
    for block in (64, 32):
        if all(torch.equal(unpack_int4pack(p, rows, block).to(torch.int32), codes[:rows])
               for rows, p in packed.items()):
            return block
    return None


def layout_known() -> bool:
    """True when :func:`unpack_int4pack` inverts this torch's packer on this CPU; otherwise the layers
    keep their checkpoint tensors for ``dequantize()``."""
    return packer_block_rows() is not None


def split_halves(q: torch.Tensor) -> torch.Tensor:
    """``[h + 8 | l]`` along K for ``q = 16·h + l`` (arithmetic shift: ``h = floor(q / 16)``)."""
    return torch.cat([(q >> 4) + 8, q & 15], dim=1)
