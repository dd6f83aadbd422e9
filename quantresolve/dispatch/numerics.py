"""Bit-level helpers shared by the weight codecs: unpacking and small-float tables.

Everything here is a pure function on tensors; nothing knows about layers. Place in the flow: the
bottom of the dispatcher, with :mod:`.specs` — it imports torch only.

    >>> import torch
    >>> unpack_nibbles(torch.tensor([[0x21]], dtype=torch.uint8), low_first=True).tolist()
    [[1, 2]]
    >>> fp4_e2m1_values(torch.tensor([0x7, 0xF], dtype=torch.uint8)).tolist()
    [6.0, -6.0]
"""

from __future__ import annotations

import math

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
    """One LSB-first bitstream of ``num_bits`` per row (compressed-tensors ≥ 0.17; GPTQ along a column).

    Element ``i`` of a row starts at bit ``i * num_bits`` of the row's little-endian
    int32 words, values may straddle word boundaries (GPTQ's 3-bit: 32 values in
    three words, values 10 and 21 straddling). Returns unsigned codes
    ``[rows, count]`` as int32. Works one period of ``lcm(32, num_bits)`` bits at a
    time, so the intermediates are a few int64 per value (not per bit).

        >>> words = torch.tensor([[0b011_010_001_000 | (3 << 30), 0b1, 0]], dtype=torch.int64).to(torch.int32)
        >>> unpack_int32_dense(words, 3, 11).tolist()   # value 10: bits 30-31 of word 0, bit 0 of word 1
        [[0, 1, 2, 3, 0, 0, 0, 0, 0, 0, 7]]
    """
    period = math.lcm(32, num_bits)
    per_words, per_values = period // 32, period // num_bits
    words = packed.to(torch.int64) & 0xFFFFFFFF
    periods = -(-words.shape[1] // per_words)
    if words.shape[1] < periods * per_words + 1:  # whole periods, plus one spare word for the straddle gather
        words = torch.nn.functional.pad(words, (0, periods * per_words + 1 - words.shape[1]))
    start = torch.arange(per_values, device=packed.device, dtype=torch.int64) * num_bits
    word, shift = start // 32, start % 32
    index = (torch.arange(periods, device=packed.device, dtype=torch.int64).unsqueeze(1) * per_words
             + word).reshape(-1)
    shifts = shift.repeat(periods)
    low = words[:, index] >> shifts
    high = torch.where(shifts + num_bits > 32, words[:, index + 1] << (32 - shifts), 0)
    codes = (low | high) & ((1 << num_bits) - 1)
    if codes.shape[1] < count:
        codes = torch.nn.functional.pad(codes, (0, count - codes.shape[1]))
    return codes[:, :count].to(torch.int32)


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


def mxfp4_dense(packed: torch.Tensor, exponents: torch.Tensor, group: int, k: int) -> torch.Tensor:
    """MXFP4 → float32 ``[N, k]``: ``e2m1(code) · 2^(e − 127)``, exact (every producer's formula).

    ``packed`` ``[N, ⌈k/2⌉]`` holds two E2M1 codes per byte, the even element in the low nibble;
    ``exponents`` ``[N, ⌈k/group⌉]`` the E8M0 scales (ModelOpt, compressed-tensors and gpt-oss alike).

        >>> mxfp4_dense(torch.tensor([[0x72]], dtype=torch.uint8), torch.tensor([[128]], dtype=torch.uint8), 32, 2)
        tensor([[ 2., 12.]])
    """
    codes = unpack_nibbles(packed, low_first=True)[..., :k]
    return fp4_e2m1_values(codes) * repeat_groups(e8m0_to_float(exponents), group, k)


def expand_blocks(scale: torch.Tensor, block: tuple[int, int], n: int, k: int) -> torch.Tensor:
    """Expand a ``[ceil(N/bn), ceil(K/bk)]`` block scale to ``[N, K]`` (cropped)."""
    bn, bk = block
    return scale.repeat_interleave(bn, dim=0).repeat_interleave(bk, dim=1)[:n, :k]


#: Midpoints between consecutive E2M1 magnitudes: the rounding boundaries.
E2M1_BOUNDS = (0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0)


#: float dtype → (same-width integer dtype, exponent-field mask, the exponent's unit): reading a
#: value's binade off its bit pattern.
_EXPONENT_BITS = {
    torch.float64: (torch.int64, 0x7FF0000000000000, 1 << 52),
    torch.float32: (torch.int32, 0x7F800000, 1 << 23),
    torch.bfloat16: (torch.int16, 0x7F80, 1 << 7),
    torch.float16: (torch.int16, 0x7C00, 1 << 10),
}


def round_e2m1_half_even(x: torch.Tensor) -> torch.Tensor:
    """Nearest E2M1 value, a tie going to the even code (0.75 → 1, 1.25 → 1, 2.5 → 2, 5 → 4), saturating
    at ±6: NVIDIA's NVFP4 cast (ModelOpt ``NVFP4QTensor``) and compressed-tensors' ``cast_to_fp4``.

    Whole-tensor arithmetic, no table look-up: E2M1 has one mantissa bit, so its grid step is 0.5
    below 2 (the subnormals and the binade [1, 2)) and half the binade's power of two above (1 in
    [2, 4), 2 in [4, 6]); the step is read off the exponent bits of ``max(|x|, 1)``, and ``x / step``
    rounded half to even (an exact power-of-two division) lands on the even code at every tie. A
    result of zero keeps ``x``'s sign except for ``x = −0``, which gives +0 (as the sign test
    ``x < 0`` of the code table does); ``±inf`` saturates and NaN gives +6, as the table did. In
    ``x``'s dtype, ``x`` left alone.

        >>> round_e2m1_half_even(torch.tensor([0.25, 0.75, 1.25, 2.5, 5.0, -7.0, -0.1, -0.0])).tolist()
        [0.0, 1.0, 1.0, 2.0, 4.0, -6.0, -0.0, 0.0]
    """
    int_dtype, mask, unit = _EXPONENT_BITS[x.dtype]
    t = torch.nan_to_num(x, nan=E2M1_MAX)  # a fresh tensor to round in place; NaN as the table had it
    t.clamp_(-E2M1_MAX, E2M1_MAX).add_(0.0)  # −0 + 0 is +0
    # 2^(floor(log2(max(|t|, 1))) − 1): the exponent field of max(|t|, 1), less one
    step = t.abs().clamp_(min=1.0).view(int_dtype).bitwise_and_(mask).sub_(unit).view(x.dtype)
    return t.div_(step).round_().mul_(step)


def round_e2m1_ties_down(x: torch.Tensor) -> torch.Tensor:
    """Nearest E2M1 value, a tie going to the smaller magnitude, saturating at ±6: ModelOpt's
    ``MXFP4QTensor`` cast (it counts the boundaries a magnitude strictly exceeds).

        >>> round_e2m1_ties_down(torch.tensor([0.25, 0.75, 1.25, 2.5, 5.0, -7.0])).tolist()
        [0.0, 0.5, 1.0, 2.0, 4.0, -6.0]
    """
    mags = torch.tensor(E2M1_MAGNITUDES, dtype=x.dtype, device=x.device)
    bounds = torch.tensor(E2M1_BOUNDS, dtype=x.dtype, device=x.device)
    idx = torch.bucketize(x.abs(), bounds)
    return torch.where(x < 0, -mags[idx], mags[idx])


#: float dtype → (same-width integer dtype, mantissa bits).
_FLOAT_BITS = {torch.bfloat16: (torch.int16, 7), torch.float16: (torch.int16, 10), torch.float32: (torch.int32, 23)}


def round_pow2_by_bits(x: torch.Tensor, elem_mantissa: int) -> torch.Tensor:
    """compressed-tensors' MX scale rounding: add ``2^(m − elem_mantissa − 1)`` to the bit pattern of
    ``x`` (``m`` = mantissa bits of ``x.dtype``) and clear the mantissa — a power of two, rounded up
    when the significand reaches ``2 − 2^−(elem_mantissa+1)`` (1.75 for E2M1 / E4M3's rule).

        >>> round_pow2_by_bits(torch.tensor([1.7, 1.75, 3.0, 3.5, 0.0], dtype=torch.bfloat16), 1).tolist()
        [1.0, 2.0, 2.0, 4.0, 0.0]
    """
    int_dtype, mantissa = _FLOAT_BITS[x.dtype]
    bits = x.view(int_dtype).to(torch.int64) & ((1 << (8 * x.element_size())) - 1)
    keep = ~((1 << mantissa) - 1)  # sign and exponent
    rounded = (bits + (1 << (mantissa - elem_mantissa - 1))) & keep
    # back to the signed integer of the same width, then reinterpret as the float dtype
    width = 8 * x.element_size()
    signed = torch.where(rounded >= (1 << (width - 1)), rounded - (1 << width), rounded)
    return signed.to(int_dtype).view(x.dtype)
