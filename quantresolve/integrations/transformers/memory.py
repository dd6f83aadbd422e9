"""Hand freed heap memory back to the operating system between layers (glibc ``malloc_trim``).

Repacking a layer for its backend allocates transient buffers several times the layer's
quantized size (int32 codes, unpacked views). glibc keeps freed buffers inside its heaps, where
the long-lived results allocated in between pin them, so without a trim the process keeps
hundreds of MB it no longer uses: on a 270 M-parameter compressed-tensors W4A16 Llama, peak RSS
above baseline was 293–612 MB without (455 MB typical) and 263 MB with a trim after every layer,
for about 3 ms per trim (``benchmarks/load_memory.py``, docs/benchmarks.md "Loading memory"). Other C libraries
(musl, macOS) return memory differently and have no such call: there this is a no-op.

    >>> release_freed_memory() in (True, False)
    True
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from collections.abc import Callable
from functools import cache


@cache
def _trim() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else ctypes.CDLL(None)
    except OSError:
        return None
    return getattr(libc, "malloc_trim", None)  # absent outside glibc


def release_freed_memory() -> bool:
    """Trim the C heap; True when the platform's allocator supports it."""
    trim = _trim()
    if trim is None:
        return False
    trim(0)
    return True

