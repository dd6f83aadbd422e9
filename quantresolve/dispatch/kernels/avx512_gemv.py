"""The AVX-512 BF16 weight-only GEMV (``avx512_gemv_cpu``'s kernel): its loader, its packed layout, its groups.

int4: a bf16 GEMV on the dequantized weight, exactly as the producers and ``dense_dequant`` compute it —
per (row, group) a 16-entry bf16 table ``bf16(s·(q − z))`` indexed by the codes (``vpermw``), multiplied
by ``vdpbf16ps`` and summed over the row in float32, so the result is ``x @ dequantize()ᵀ`` up to float32
summation order (bf16 and float32 scales; a float16 scale's product rounds to float16 first there, and the
table does not). int8: ``y[m, n] = Σ_g s[n,g] · Σ_{k∈g} x[m,k] · q[n,k] − s·z · Σ_{k∈g} x`` with the codes
widened to float32 and multiplied by FMA, the scale applied per group in float32. Weights are repacked
(:func:`pack_int4`, :func:`pack_int8`, :func:`pack_scales`) into one sequential stream per 4 output rows
(layout: :mod:`.avx512_gemv_src`) on transparent huge pages and read with software prefetch: measured,
4 KiB pages made the stream TLB-bound and a short prefetch left DRAM idle.

The C++ source is compiled on first use by :func:`torch.utils.cpp_extension.load_inline` (cached
in torch's extensions directory; ≈ 25 s the first time), never at import. :func:`missing_cpu_flags`
and :func:`toolchain_problem` say why it cannot run here; a failed compilation is a
:class:`~quantresolve.errors.BackendUnavailableError` carrying the compiler's reason (:func:`kernels`).

Place in the flow: a kernel — codes, scales and activations in, ``y`` out; it knows no checkpoint
format (the backend, :mod:`quantresolve.dispatch.backends.avx512_gemv`, turns a layer's integer view
into its operands).

    >>> kernel_group(4, "group", 128, 8192), kernel_group(4, "channel", None, 96), kernel_group(8, "group", 32, 256)
    (128, 32, None)
    >>> kernel_group(4, "channel", None, 192), kernel_group(4, "group", 192, 384)
    (64, None)
    >>> import torch
    >>> q = torch.randint(-8, 8, (6, 96), dtype=torch.int8)
    >>> torch.equal(unpack_int4(pack_int4(q), 6, 96), q)
    True
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import torch

from quantresolve.dispatch.kernels import avx512_gemv_src, native

__all__ = ["gemv", "kernel_group", "kernels", "pack_int4", "pack_int8", "pack_scales", "unpack_int4", "unpack_int8"]

#: Rows per tile of the packed layout (``R`` in the C++ source) and the K blocks (weights) of int4 and int8.
TILE, BLOCK4, BLOCK = 4, 128, 64
#: Rows the kernel takes per call; ``apply`` runs larger inputs in slices of this many.
KERNEL_ROWS = 4
#: CPU flags the compiled code needs (``/proc/cpuinfo`` spelling).
CPU_FLAGS = ("avx512f", "avx512bw", "avx512vl", "avx512_bf16")


@functools.cache
def missing_cpu_flags() -> tuple[str, ...]:
    """The flags of :data:`CPU_FLAGS` this CPU lacks (all of them when ``/proc/cpuinfo`` is unreadable)."""
    have = native.read_cpu_flags()
    return tuple(f for f in CPU_FLAGS if f not in have)


#: Why the kernel cannot be compiled here (no C++ compiler, no ninja), or ``None`` — asked once per process.
toolchain_problem = native.toolchain_problem

_BUILD: dict[str, Any] = {}


def kernels() -> Any:
    """The compiled extension, built on first call; a failure is remembered and re-raised as a
    :class:`BackendUnavailableError` with the compiler's message, never retried in the same process."""
    return native.build(_BUILD, "quantresolve_avx512_gemv", avx512_gemv_src.SOURCE, avx512_gemv_src.FUNCTIONS,
                        avx512_gemv_src.CFLAGS, label="avx512_gemv_cpu: compiling the AVX-512 kernel")


def kernel_group(bits: int, strategy: str, group_size: int | None, k: int) -> int | None:
    """The kernel's group at in_features ``k``, or ``None``. int4: 32, 64 or a multiple of 128 dividing
    ``k`` (its blocks are 128 weights); int8: a multiple of 64 dividing ``k``. Channel scales run as one
    group of ``k`` when ``k`` is a whole number of blocks, else (int4) as groups of 64 or 32, the scale
    repeated."""
    block = BLOCK4 if bits <= 4 else BLOCK
    if strategy == "channel":
        if k % block == 0:
            return k
        return next((g for g in (64, 32) if bits <= 4 and k % g == 0), None)
    if strategy != "group" or not group_size or k % group_size:
        return None
    return group_size if group_size % block == 0 or (bits <= 4 and group_size in (32, 64)) else None


def _tiles(t: torch.Tensor, n: int, cols: int) -> torch.Tensor:
    """``t`` ``[n, c ≤ cols]`` zero-padded to ``[⌈n/4⌉·4, cols]``."""
    out = t.new_zeros((-(-n // TILE) * TILE, cols))
    out[:n, : t.shape[1]] = t
    return out


def _padded_k(k: int, block: int = BLOCK) -> int:
    return -(-k // block) * block


#: Output rows repacked at a time: the padded copy and its nibble planes stay a few MiB per 1024 rows.
PACK_ROWS = 1024


def _buffer(shape: tuple[int, ...], dtype: torch.dtype, alloc: Callable[[int], torch.Tensor] | None) -> torch.Tensor:
    """An uninitialised ``shape`` tensor, from ``alloc(nbytes)`` (a uint8 buffer) when given."""
    if alloc is None:
        return torch.empty(shape, dtype=dtype)
    return alloc(math.prod(shape) * dtype.itemsize).view(dtype).view(shape)


def pack_int4(q: torch.Tensor, alloc: Callable[[int], torch.Tensor] | None = None) -> torch.Tensor:
    """Signed 4-bit codes ``[n, k]`` → the kernel's bytes ``[⌈n/4⌉, k'/128, 4, 64]`` (``k'`` = ``k`` rounded
    up to 128): ``u = q + 8``; 16-bit lane ``i`` of a (block, row) = ``u[i] | u[32+i] << 4 | u[64+i] << 8 |
    u[96+i] << 12`` (little-endian)."""
    n, k = q.shape
    kp = _padded_k(k, BLOCK4)
    out = _buffer((-(-n // TILE), kp // BLOCK4, TILE, 64), torch.uint8, alloc)
    for i in range(0, n, PACK_ROWS):
        u = _tiles((q[i:i + PACK_ROWS] + 8).to(torch.int16), min(PACK_ROWS, n - i), kp)
        u = u.reshape(-1, TILE, kp // BLOCK4, 4, 32)
        lanes = u[:, :, :, 0] | (u[:, :, :, 1] << 4) | (u[:, :, :, 2] << 8) | (u[:, :, :, 3] << 12)
        out[i // TILE: i // TILE + u.shape[0]] = lanes.transpose(1, 2).contiguous().view(torch.uint8)
    return out


def unpack_int4(packed: torch.Tensor, n: int, k: int) -> torch.Tensor:
    """The inverse of :func:`pack_int4`: signed int8 codes ``[n, k]``."""
    lanes = packed.contiguous().view(torch.int16).to(torch.int32) & 0xFFFF  # [T, B, R, 32]
    nibbles = torch.stack([(lanes >> (4 * j)) & 15 for j in range(4)], dim=3)  # [T, B, R, 4, 32]
    u = nibbles.permute(0, 2, 1, 3, 4).reshape(-1, packed.shape[1] * BLOCK4)
    return (u[:n, :k].to(torch.int8) - 8).contiguous()


def pack_int8(q: torch.Tensor, alloc: Callable[[int], torch.Tensor] | None = None) -> torch.Tensor:
    """Signed int8 codes ``[n, k]`` → ``[⌈n/4⌉, k'/64, 4, 64]``."""
    n, k = q.shape
    out = _buffer((-(-n // TILE), _padded_k(k) // BLOCK, TILE, BLOCK), torch.int8, alloc)
    for i in range(0, n, PACK_ROWS):
        t = _tiles(q[i:i + PACK_ROWS], min(PACK_ROWS, n - i), _padded_k(k))
        out[i // TILE: i // TILE + t.shape[0] // TILE] = t.reshape(-1, TILE, _padded_k(k) // BLOCK, BLOCK).transpose(1, 2)
    return out


def unpack_int8(packed: torch.Tensor, n: int, k: int) -> torch.Tensor:
    """The inverse of :func:`pack_int8`."""
    return packed.transpose(1, 2).reshape(-1, packed.shape[1] * BLOCK)[:n, :k].contiguous()


def _group_major(t: torch.Tensor, n: int) -> torch.Tensor:
    """float32 ``[n, G]`` → ``[⌈n/4⌉, G, 4]`` (a tile's scales read as one stream)."""
    return _tiles(t.float(), n, t.shape[1]).reshape(-1, TILE, t.shape[1]).transpose(1, 2).contiguous()


def pack_scales(scale: torch.Tensor, zc: torch.Tensor | None, bits: int, k: int, g: int
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """The kernel's scales and ``scale · zero`` (empty when symmetric) from float32 ``[n, k/g]``: groups
    of the padded tail block (int4 groups of 32 / 64 when ``k`` is not a whole number of blocks) get
    scale 0, and both go tile-major."""
    n = scale.shape[0]
    groups = _padded_k(k, BLOCK4 if bits <= 4 else BLOCK) // g
    pad = lambda t: torch.cat([t.float(), t.new_zeros(n, groups - t.shape[1])], dim=1)  # noqa: E731
    return _group_major(pad(scale), n), (_group_major(pad(zc), n) if zc is not None else torch.empty(0))


def gemv(x: torch.Tensor, codes: torch.Tensor, scale: torch.Tensor, zc: torch.Tensor, n: int, k: int, g: int,
         bits: int) -> torch.Tensor:
    """``x · Wᵀ`` (float32 ``[M, n]``) for row-major bf16 ``x`` ``[M, k]`` and the packed operands, the
    kernel taking :data:`KERNEL_ROWS` rows of ``x`` per call."""
    run = kernels().gemv_int4 if bits == 4 else kernels().gemv_int8
    if x.shape[0] == 0:
        return x.new_zeros((0, n), dtype=torch.float32)
    parts = [run(x[i:i + KERNEL_ROWS], codes, scale, zc, n, k, g) for i in range(0, x.shape[0], KERNEL_ROWS)]
    return parts[0] if len(parts) == 1 else torch.cat(parts)
