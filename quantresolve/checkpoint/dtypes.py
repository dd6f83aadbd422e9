"""The safetensors dtype vocabulary and the storage width of each code.

The safetensors header names dtypes with short codes (``"BF16"``, ``"F8_E4M3"``,
``"U8"``...). The reader needs each code's width in bits to check that a
tensor's byte span matches its shape; an unknown code is a hostile or
unsupported file and is refused.

Sub-byte codes (``F4``, ``F6_*``) count *logical* elements in the shape, so
their byte size is ``numel * bits / 8`` and must come out whole::

    >>> tensor_nbytes("F4", (4, 6))
    12
    >>> tensor_nbytes("BF16", (2, 3))
    12
    >>> tensor_nbytes("F32", ())
    4
"""

from __future__ import annotations

import math
from collections.abc import Sequence

#: Bits per element for every dtype code the safetensors format defines.
DTYPE_BITS: dict[str, int] = {
    "BOOL": 8,
    "F4": 4,
    "F6_E2M3": 6,
    "F6_E3M2": 6,
    "U8": 8,
    "I8": 8,
    "F8_E5M2": 8,
    "F8_E4M3": 8,
    "F8_E8M0": 8,
    "F8_E4M3FNUZ": 8,
    "F8_E5M2FNUZ": 8,
    "I16": 16,
    "U16": 16,
    "F16": 16,
    "BF16": 16,
    "I32": 32,
    "U32": 32,
    "F32": 32,
    "C64": 64,
    "I64": 64,
    "U64": 64,
    "F64": 64,
}

#: Floating-point codes wide enough to hold unquantized (dense) weights or scales.
FLOAT_DTYPES: frozenset[str] = frozenset({"F16", "BF16", "F32", "F64"})

#: Eight-bit float codes used for FP8 weights and NVFP4 block scales.
FP8_DTYPES: frozenset[str] = frozenset({"F8_E4M3", "F8_E5M2", "F8_E4M3FNUZ", "F8_E5M2FNUZ"})

#: Codes an E8M0 (power-of-two) MX block scale is stored as; producers often use plain U8.
E8M0_DTYPES: frozenset[str] = frozenset({"F8_E8M0", "U8"})


def tensor_nbytes(dtype: str, shape: Sequence[int]) -> int:
    """Bytes a tensor of ``dtype`` and ``shape`` occupies; ``ValueError`` if not whole bytes."""
    bits = DTYPE_BITS[dtype] * math.prod(shape)
    if bits % 8:
        raise ValueError(f"{dtype} tensor of shape {list(shape)} does not fill whole bytes")
    return bits // 8
