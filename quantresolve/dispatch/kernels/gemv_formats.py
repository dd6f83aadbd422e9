"""The weight formats the Triton GEMV decodes, and how each turns a code into a number.

Integer codes are stored unsigned (``u = q + offset``) and decoded exactly with the float32
*magic number*: the bit pattern ``0x4B000000 | u`` is the float ``2^23 + u``, so one OR and one
subtraction of ``2^23 + zero`` give ``u − zero = q − zero_point`` with no integer→float
conversion instruction (those run at a quarter of the FMA rate). E2M1 codes (NVFP4, MXFP4) are
decoded two at a time into a pair of float16 whose exponent and mantissa fields hold the code's
(``(code & 7) << 9``, sign ``<< 12``): the value × 2^-14 (a subnormal for codes 0, 1), widened to
float32 by one half-precision add; the 2^14 joins the scale, which E4M3 and E8M0 bytes give from
their bits the same way. All exact:

    >>> import struct
    >>> magic = lambda u: struct.unpack("<f", struct.pack("<I", 0x4B000000 | u))[0]
    >>> magic(5) - (2**23 + 8)  # code 5 of a symmetric int4 weight: q = 5 − 8
    -3.0
    >>> [e2m1(c) for c in range(16)]
    [0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, -0.0, -0.5, -1.0, -1.5, -2.0, -3.0, -4.0, -6.0]
    >>> e4m3(0x38), e4m3(0x01), e8m0(127), e8m0(0)  # 1.0, the smallest subnormal, 1.0, 2^-127
    (1.0, 0.001953125, 1.0, 5.877471754111438e-39)
"""

from __future__ import annotations

import struct
from dataclasses import dataclass


def _f32(bits: int) -> float:
    return struct.unpack("<f", struct.pack("<I", bits & 0xFFFFFFFF))[0]


def e2m1(code: int) -> float:
    """What the kernel computes for an E2M1 code: the float16 ``(code & 7) << 9 | (code & 8) << 12`` × 2^14."""
    return struct.unpack("<e", struct.pack("<H", ((code & 7) << 9) | ((code & 8) << 12)))[0] * 2.0**14


def e4m3(byte: int) -> float:
    """An E4M3 scale byte (bias 7) from its bits: ``(byte & 0x7F) << 20`` (sign at bit 31) × 2^120."""
    return _f32(((byte & 0x7F) << 20) | ((byte & 0x80) << 24)) * 2.0**120


def e8m0(byte: int) -> float:
    """An E8M0 scale byte: the float32 exponent field itself (0 is 2^-127, a denormal)."""
    return _f32(byte << 23) if byte else 2.0**-127


@dataclass(frozen=True)
class GemvFormat:
    """One format: kernel id, bits per code, the unsigned offset of integer codes, the scale encoding."""

    kernel_id: int
    bits: int
    offset: int | None
    scale: str  # "float" (bf16/fp16/fp32 as stored), "e4m3" or "e8m0" (bytes)
    fill: int  # the code of 0.0, for padding


#: name → format. ``kernel_id`` is the ``FORMAT`` constexpr of the kernel (Triton branches on it).
FORMATS: dict[str, GemvFormat] = {
    "int4": GemvFormat(0, 4, 8, "float", 8),
    "int8": GemvFormat(1, 8, 128, "float", 128),
    "nvfp4": GemvFormat(2, 4, None, "e4m3", 0),
    "mxfp4": GemvFormat(3, 4, None, "e8m0", 0),
}
INT4, INT8, NVFP4, MXFP4 = (FORMATS[k].kernel_id for k in ("int4", "int8", "nvfp4", "mxfp4"))

#: The kernel's group for channel-wise scales: larger than any K, so every element reads column 0.
CHANNEL_GROUP = 1 << 30


def int_format(bits: int) -> str:
    """The container of ``bits``-bit integer codes: 4-bit for ≤ 4 bits, 8-bit for 5..8."""
    return "int4" if bits <= 4 else "int8"
