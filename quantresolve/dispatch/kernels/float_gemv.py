"""Packed float kernels on CPU (``float_gemv_cpu``'s kernels): E2M1 and E4M3 weights streamed as packed bytes.

Two families (C++ and the arithmetic: :mod:`.float_gemv_src`):

- **E2M1** — NVFP4 (E4M3 group-16 scales and a per-tensor float32 that the producer multiplies by, ModelOpt,
  or divides by, compressed-tensors) and MXFP4 (E8M0 group-32 scales): 4 bits per weight plus one scale
  byte per group, as in the checkpoint, repacked (:func:`pack_e2m1`, :func:`pack_group_scales`).
- **E4M3** — FP8 with per-tensor, per-channel or block (e.g. 128×128) float32 multipliers: one byte per
  weight (:func:`pack_e4m3`) and the multiplier grid.

:func:`matmul` runs ``y = x · Wᵀ`` (float32 ``[M, N]``) on the packed operands: the GEMV kernels for up to
:data:`GEMV_MAX_ROWS` rows of ``x`` (four rows per pass over the weight), and above that a tile at a time —
:data:`TILE_ROWS` output rows dequantized into a float32 buffer and multiplied by ``torch.mm`` — so the dense
weight is never held. Either way the weights are exactly ``dequantize()``'s, rounded to the compute dtype,
and the sums float32. Repacking happens once, at ``finalize()``, a row chunk at a time
(:data:`PACK_ROWS`), into buffers on transparent huge pages; :func:`unpack_e2m1`, :func:`unpack_group_scales`
and :func:`unpack_e4m3` give the checkpoint's bytes back, bit for bit.

Runtime ISA selection: :data:`ISAS` lists the builds, first match wins. The AVX2 + FMA + F16C build runs on
every x86-64 CPU of the last decade (Haswell, Zen and later), AVX-512 machines included; an AVX-512 build
is not written yet — there was no AVX-512 machine to measure it on (the AVX2 one runs there unchanged).
:func:`unavailable` says why the kernels cannot run here (CPU flags, toolchain, a failed build), and
nothing is compiled until :func:`kernels` is first called (``finalize()``), ≈ 40 s once per machine (cached
in torch's extensions directory).

Place in the flow: a kernel — packed bytes, scales and ``x`` in, ``y`` out; it knows no checkpoint format
(the backend, :mod:`quantresolve.dispatch.backends.float_gemv`, turns a codec's float view into these
operands).

    >>> import torch
    >>> codes = torch.randint(0, 256, (6, 40), dtype=torch.uint8)
    >>> torch.equal(unpack_e2m1(pack_e2m1(codes, 80), 6, 80), codes)
    True
    >>> x_order(1)[:8].tolist()
    [0, 2, 4, 6, 32, 34, 36, 38]
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from quantresolve.dispatch.kernels import float_gemv_src, native

__all__ = ["ISAS", "Isa", "alloc", "kernels", "matmul", "pack_e2m1", "pack_e4m3", "pack_group_scales", "unavailable",
           "unpack_e2m1", "unpack_e4m3", "unpack_group_scales", "x_order"]

#: Output rows per tile and weights per block of the packed layouts (``R`` and ``KB`` in the C++ source).
TILE, BLOCK = 4, 64
#: Rows of ``x`` up to which :func:`matmul` runs the GEMV kernels (four rows per pass over the weight); above,
#: a tile at a time through ``torch.mm``. Measured crossover: docs/benchmarks.md, "packed float kernels".
GEMV_MAX_ROWS = 8
#: Output rows dequantized per ``torch.mm`` call above :data:`GEMV_MAX_ROWS` (a float32 buffer of
#: ``TILE_ROWS × K``: 8 MiB at K = 8192).
TILE_ROWS = 256
#: Output rows repacked at a time at ``finalize()`` (the transient copies stay a few MiB per 1024 rows).
PACK_ROWS = 1024
#: A packed buffer goes on transparent huge pages (:func:`alloc`) from this size, or when it is a whole number of
#: 2 MiB pages: a huge page is resident whole once touched, so a small buffer on one would hold up to 2 MiB for
#: a few KiB (a tiny model's layers would take megabytes each), and a large one's last page at most 2 MiB more.
HUGE_PAGE, HUGE_MIN = 2 << 20, 32 << 20
#: ``kind`` of the E2M1 kernel: NVFP4 (E4M3 group-16 scales) or MXFP4 (E8M0 group-32 scales).
NVFP4, MXFP4 = 0, 1
#: Rounding codes of the E4M3 kernel: none (float32), bf16, fp16 — by the dtype rounded to.
ROUNDING = {torch.float32: 0, torch.bfloat16: 1, torch.float16: 2}


@dataclass(frozen=True)
class Isa:
    """One build of the kernels: the CPU flags it needs (``/proc/cpuinfo`` spelling) and its compiler flags."""

    name: str
    flags: tuple[str, ...]
    cflags: tuple[str, ...]


#: The builds, most specific first; the first whose flags the CPU has is used.
ISAS: tuple[Isa, ...] = (Isa("avx2", ("avx2", "fma", "f16c"), tuple(float_gemv_src.CFLAGS)),)


@functools.cache
def isa() -> Isa | None:
    """The build this CPU runs, or ``None`` (see :func:`missing_cpu_flags`)."""
    have = native.read_cpu_flags()
    return next((i for i in ISAS if all(f in have for f in i.flags)), None)


def missing_cpu_flags() -> tuple[str, ...]:
    """The flags the most general build needs that this CPU lacks (empty when one build fits)."""
    if isa() is not None:
        return ()
    have = native.read_cpu_flags()
    return tuple(f for f in ISAS[-1].flags if f not in have)


#: Why the kernels cannot be compiled here (no C++ compiler, no ninja), or ``None`` — asked once per process.
toolchain_problem = native.toolchain_problem

_BUILD: dict[str, Any] = {}


def unavailable() -> str | None:
    """Why the kernels cannot run on this machine, or ``None``: CPU flags, toolchain, an earlier failed build."""
    missing = missing_cpu_flags()
    if missing:
        return "CPU lacks " + ", ".join(missing)
    problem = toolchain_problem()
    if problem:
        return problem
    return f"compiling the kernels failed: {_BUILD['error'][:200]}" if "error" in _BUILD else None


def kernels() -> Any:
    """The compiled extension for this CPU's build, built on first call (a failure is remembered and re-raised
    as a :class:`~quantresolve.errors.BackendUnavailableError`)."""
    chosen = isa() or ISAS[-1]
    return native.build(_BUILD, f"quantresolve_float_gemv_{chosen.name}", float_gemv_src.SOURCE,
                        float_gemv_src.FUNCTIONS, list(chosen.cflags), label="float_gemv_cpu: compiling the kernels")


# ------------------------------------------------------------------------------------------------ layouts


def padded(k: int) -> int:
    """``k`` rounded up to whole blocks."""
    return -(-k // BLOCK) * BLOCK


def tiles(n: int) -> int:
    return -(-n // TILE)


def alloc(nbytes: int) -> torch.Tensor:
    """An uninitialised uint8 buffer for a packed operand: on huge pages (compiling the kernels) when it is
    large or a whole number of them (:data:`HUGE_MIN`), ordinary memory otherwise."""
    if nbytes >= HUGE_MIN or (nbytes and nbytes % HUGE_PAGE == 0):
        return kernels().huge_empty(nbytes)
    return torch.empty(nbytes, dtype=torch.uint8)


def _buffer(nbytes: int, alloc: Callable[[int], torch.Tensor] | None) -> torch.Tensor:
    """An uninitialised uint8 buffer of ``nbytes`` (from ``alloc`` when given: huge pages)."""
    return alloc(nbytes) if alloc is not None else torch.empty(nbytes, dtype=torch.uint8)


def pack_e2m1(codes: torch.Tensor, k: int, alloc: Callable[[int], torch.Tensor] | None = None) -> torch.Tensor:
    """E2M1 bytes ``[n, ⌈k/2⌉]`` (low nibble = even element) → the kernel's ``[⌈n/4⌉, K'/64, 4, 32]``: byte
    ``i`` of lane ``L`` (16 bytes) = element ``32L + i`` (low nibble) | element ``32L + 16 + i`` (high)."""
    n, kp = codes.shape[0], padded(k)
    out = _buffer(tiles(n) * TILE * kp // 2, alloc).view(tiles(n), kp // BLOCK, TILE, 32)
    for i in range(0, n, PACK_ROWS):
        part = codes[i:i + PACK_ROWS]
        rows = -(-part.shape[0] // TILE) * TILE
        u = torch.zeros(rows, kp, dtype=torch.uint8)
        u[: part.shape[0], 0:2 * part.shape[1]:2] = part & 15
        u[: part.shape[0], 1:2 * part.shape[1]:2] = part >> 4
        u = u.view(rows // TILE, TILE, kp // BLOCK, 2, 2, 16)  # [tile, row, block, lane, half, i]
        packed = u[..., 0, :] | (u[..., 1, :] << 4)
        out[i // TILE: i // TILE + rows // TILE] = packed.reshape(rows // TILE, TILE, kp // BLOCK, 32).transpose(1, 2)
    return out


def unpack_e2m1(packed: torch.Tensor, n: int, k: int) -> torch.Tensor:
    """The inverse of :func:`pack_e2m1`: the checkpoint's bytes ``[n, ⌈k/2⌉]``."""
    t, nb = packed.shape[0], packed.shape[1]
    b = packed.transpose(1, 2).reshape(t * TILE, nb, 2, 1, 16)
    u = torch.cat([b & 15, b >> 4], dim=3).reshape(t * TILE, nb * BLOCK)
    return (u[:n, 0::2] | (u[:n, 1::2] << 4))[:, : -(-k // 2)].contiguous()


def pack_group_scales(scale: torch.Tensor, group: int, k: int,
                      alloc: Callable[[int], torch.Tensor] | None = None) -> torch.Tensor:
    """Group scale bytes ``[n, ⌈k/group⌉]`` → ``[⌈n/4⌉, K'/64, 4, 64/group]`` (padded groups 0)."""
    n, per = scale.shape[0], BLOCK // group
    groups = padded(k) // group
    out = _buffer(tiles(n) * TILE * groups, alloc).view(tiles(n), padded(k) // BLOCK, TILE, per)
    full = torch.zeros(tiles(n) * TILE, groups, dtype=torch.uint8)
    full[:n, : scale.shape[1]] = scale.view(torch.uint8)
    out.copy_(full.view(tiles(n), TILE, padded(k) // BLOCK, per).transpose(1, 2))
    return out


def unpack_group_scales(packed: torch.Tensor, n: int, groups: int) -> torch.Tensor:
    """The inverse of :func:`pack_group_scales`: uint8 ``[n, groups]``."""
    t, nb, _, per = packed.shape
    return packed.transpose(1, 2).reshape(t * TILE, nb * per)[:n, :groups].contiguous()


def pack_e4m3(codes: torch.Tensor, alloc: Callable[[int], torch.Tensor] | None = None) -> torch.Tensor:
    """E4M3 bytes ``[n, k]`` → ``[⌈n/4⌉, K'/64, 4, 64]`` (padding 0)."""
    n, k = codes.shape
    kp = padded(k)
    out = _buffer(tiles(n) * TILE * kp, alloc).view(tiles(n), kp // BLOCK, TILE, BLOCK)
    for i in range(0, n, PACK_ROWS):
        part = codes[i:i + PACK_ROWS].view(torch.uint8)
        rows = -(-part.shape[0] // TILE) * TILE
        u = torch.zeros(rows, kp, dtype=torch.uint8)
        u[: part.shape[0], :k] = part
        out[i // TILE: i // TILE + rows // TILE] = u.view(rows // TILE, TILE, kp // BLOCK, BLOCK).transpose(1, 2)
    return out


def unpack_e4m3(packed: torch.Tensor, n: int, k: int) -> torch.Tensor:
    """The inverse of :func:`pack_e4m3`: uint8 ``[n, k]``."""
    t, nb = packed.shape[0], packed.shape[1]
    return packed.transpose(1, 2).reshape(t * TILE, nb * BLOCK)[:n, :k].contiguous()


def row_values(values: torch.Tensor, n: int) -> torch.Tensor:
    """A float32 per output row ``[n]`` padded to whole tiles (padding 1)."""
    out = torch.ones(tiles(n) * TILE, dtype=torch.float32)
    out[:n] = values.float().reshape(-1)
    return out


def x_order(blocks: int) -> torch.Tensor:
    """The order the E2M1 kernels read ``x`` in (and the tiled path's dequantized columns are in): position
    ``16q + 8h + 4L + d`` of a block holds element ``32L + 8q + 2d + h`` — the order the decode produces the
    weights in (bf16 words widened to float32 by a shift for the even and a mask for the odd ones)."""
    q, h, lane, d = torch.meshgrid(*(torch.arange(s) for s in (4, 2, 2, 4)), indexing="ij")
    one = (32 * lane + 8 * q + 2 * d + h).reshape(-1)
    return torch.cat([one + BLOCK * b for b in range(blocks)])


def e2m1_bytes(n: int, k: int, group: int) -> int:
    """Bytes of a packed E2M1 weight: codes, group scales, row scales."""
    return tiles(n) * TILE * (padded(k) // 2 + padded(k) // group + 4)


def e4m3_bytes(n: int, k: int) -> int:
    return tiles(n) * TILE * padded(k)


# ------------------------------------------------------------------------------------------------ compute


@dataclass
class E2M1Operands:
    """A packed E2M1 weight: ``kind`` (:data:`NVFP4` / :data:`MXFP4`), ``divide`` (the row scale divides)."""

    codes: torch.Tensor
    scales: torch.Tensor
    rows: torch.Tensor
    n: int
    k: int
    kind: int
    divide: bool

    def gemv(self, x: torch.Tensor) -> torch.Tensor:
        return kernels().e2m1_gemv(x, self.codes, self.scales, self.rows, self.n, self.k, self.kind, self.divide)

    def tile(self, row0: int, rows: int, buf: torch.Tensor) -> None:
        kernels().e2m1_dequant(self.codes, self.scales, self.rows, self.k, self.kind, self.divide, row0, rows, buf)

    def x_tiled(self, x: torch.Tensor) -> torch.Tensor:
        return kernels().e2m1_x(x, self.k)


@dataclass
class E4M3Operands:
    """A packed E4M3 weight: multipliers ``mult`` per ``(bn, bk)`` block, ``rounding`` (intermediate, compute)."""

    codes: torch.Tensor
    mult: torch.Tensor
    n: int
    k: int
    bn: int
    bk: int
    rounding: tuple[int, int]

    def gemv(self, x: torch.Tensor) -> torch.Tensor:
        return kernels().e4m3_gemv(x, self.codes, self.mult, self.n, self.k, self.bn, self.bk, *self.rounding)

    def tile(self, row0: int, rows: int, buf: torch.Tensor) -> None:
        kernels().e4m3_dequant(self.codes, self.mult, self.n, self.k, self.bn, self.bk, *self.rounding, row0, rows,
                               buf)

    def x_tiled(self, x: torch.Tensor) -> torch.Tensor:
        xf = x.float()
        return torch.nn.functional.pad(xf, (0, padded(self.k) - self.k)) if padded(self.k) != self.k else xf.contiguous()


Operands = E2M1Operands | E4M3Operands


def matmul(x: torch.Tensor, ops: Operands) -> torch.Tensor:
    """``x @ Wᵀ`` as float32 ``[M, n]`` for ``x`` ``[M, k]`` (any float dtype, any strides)."""
    m = x.shape[0]
    if m == 0:
        return x.new_zeros((0, ops.n), dtype=torch.float32)
    if m <= GEMV_MAX_ROWS:
        return ops.gemv(x)
    xt = ops.x_tiled(x)
    kp = xt.shape[1]
    rows = min(TILE_ROWS, tiles(ops.n) * TILE)
    buf = torch.empty(rows, kp, dtype=torch.float32)
    yt = torch.empty(tiles(ops.n) * TILE, m, dtype=torch.float32)
    for row0 in range(0, tiles(ops.n) * TILE, rows):
        count = min(rows, tiles(ops.n) * TILE - row0)
        ops.tile(row0, count, buf)
        torch.mm(buf[:count], xt.t(), out=yt[row0:row0 + count])
    return yt[: ops.n].t()
