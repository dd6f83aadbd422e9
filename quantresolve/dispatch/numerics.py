"""Bit-level helpers shared by the weight codecs: unpacking and small-float tables.

Everything here is a pure function on tensors; nothing knows about layers.

    >>> import torch
    >>> unpack_nibbles(torch.tensor([[0x21]], dtype=torch.uint8), low_first=True).tolist()
    [[1, 2]]
    >>> fp4_e2m1_values(torch.tensor([0x7, 0xF], dtype=torch.uint8)).tolist()
    [6.0, -6.0]
"""

from __future__ import annotations

import torch

#: Magnitudes of the E2M1 (FP4) codes 0..7; bit 3 is the sign.
E2M1_MAGNITUDES = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0)
E2M1_MAX = 6.0
E4M3_MAX = 448.0


def _e2m1_table(device: torch.device | str = "cpu") -> torch.Tensor:
    mags = torch.tensor(E2M1_MAGNITUDES, dtype=torch.float32, device=device)
    return torch.cat([mags, -mags])


def unpack_nibbles(packed: torch.Tensor, *, low_first: bool) -> torch.Tensor:
    """Split each byte of ``[..., C]`` into two 4-bit codes → ``[..., 2C]`` (uint8 values 0..15).

    ``low_first``: the low nibble holds the even element (compressed-tensors,
    ModelOpt NVFP4); otherwise the high nibble does (bitsandbytes).
    """
    b = packed.view(torch.uint8) if packed.dtype != torch.uint8 else packed
    lo, hi = b & 0x0F, b >> 4
    pair = (lo, hi) if low_first else (hi, lo)
    return torch.stack(pair, dim=-1).flatten(-2)


def fp4_e2m1_values(codes: torch.Tensor) -> torch.Tensor:
    """E2M1 code (0..15, uint8) → float32 value."""
    return _e2m1_table(codes.device)[codes.long()]


def e8m0_to_float(exponents: torch.Tensor) -> torch.Tensor:
    """E8M0 biased exponent (uint8) → float32 power of two ``2**(e - 127)``."""
    return torch.exp2(exponents.to(torch.int32).to(torch.float32) - 127.0)


def unpack_int32_dense(packed: torch.Tensor, num_bits: int, count: int) -> torch.Tensor:
    """compressed-tensors ≥ 0.17 packing: one LSB-first bitstream of ``num_bits`` per row.

    Element ``i`` of a row starts at bit ``i * num_bits`` of the row's little-endian
    int32 words, values may straddle word boundaries. Returns unsigned codes
    ``[rows, count]`` as int32.
    """
    rows = packed.shape[0]
    words = packed.to(torch.int64) & 0xFFFFFFFF
    # Little-endian bit matrix: [rows, words * 32].
    shifts = torch.arange(32, device=packed.device, dtype=torch.int64)
    bits = ((words.unsqueeze(-1) >> shifts) & 1).reshape(rows, -1)
    need = count * num_bits
    if bits.shape[1] < need:
        bits = torch.nn.functional.pad(bits, (0, need - bits.shape[1]))
    bits = bits[:, :need].reshape(rows, count, num_bits)
    weights = (1 << torch.arange(num_bits, device=packed.device, dtype=torch.int64))
    return (bits * weights).sum(-1).to(torch.int32)


def unpack_int32_legacy(packed: torch.Tensor, num_bits: int, count: int) -> torch.Tensor:
    """compressed-tensors < 0.17 packing: ``32 // num_bits`` whole values per int32 word.

    Value ``j`` of word ``w`` sits at bit ``j * num_bits``; the leftover high bits
    of each word are padding (identical to the dense layout for 2, 4 and 8 bits).
    """
    per_word = 32 // num_bits
    words = packed.to(torch.int64) & 0xFFFFFFFF
    shifts = torch.arange(per_word, device=packed.device, dtype=torch.int64) * num_bits
    codes = (words.unsqueeze(-1) >> shifts) & ((1 << num_bits) - 1)
    return codes.reshape(packed.shape[0], -1)[:, :count].to(torch.int32)


def packing_is_legacy(version: str | None) -> bool:
    """True when a compressed-tensors ``version`` string predates the 0.17 packing change.

    A missing version means a current writer.

        >>> packing_is_legacy("0.16.1"), packing_is_legacy("0.17.0"), packing_is_legacy(None)
        (True, False, False)
    """
    if not version:
        return False
    parts: list[int] = []
    for piece in version.split(".")[:2]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    while len(parts) < 2:
        parts.append(0)
    return (parts[0], parts[1]) < (0, 17)


def repeat_groups(scale: torch.Tensor, group: int, k: int) -> torch.Tensor:
    """Repeat each column of ``[N, G]`` ``group`` times along K and crop to ``k``."""
    return scale.repeat_interleave(group, dim=-1)[..., :k]


def expand_blocks(scale: torch.Tensor, block: tuple[int, int], n: int, k: int) -> torch.Tensor:
    """Expand a ``[ceil(N/bn), ceil(K/bk)]`` block scale to ``[N, K]`` (cropped)."""
    bn, bk = block
    return scale.repeat_interleave(bn, dim=0).repeat_interleave(bk, dim=1)[:n, :k]
