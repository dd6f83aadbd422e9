"""What both Triton kernels over the packed weight share: a program's coordinates, decoding a word's
slots and a tile's scales, writing the output, and launching. The kernels call the ``@triton.jit``
helpers through the module (``tiles.coordinates(...)``, ``tiles.slot(...)``, ``tiles.write(...)``).

The GEMV (:mod:`.triton_gemv`, CUDA cores) and the small GEMM (:mod:`.triton_dot`, tensor cores) read
the same layout (:mod:`.gemv_layout`) with the same grid — program ``(i, s)`` takes rows
``i·BLOCK_N …`` and the ``s``-th of ``split_k`` equal runs of whole ``BLOCK_KW`` word tiles
(:func:`launch_grid`) — decode each code with :func:`slot` and each scale with :func:`scale`, and
meet in a float32 atomic add when K is split (:func:`launch`). Only the arithmetic between the
decode and the write is theirs. The helpers were cut where the compiled code stays the same: compiled
for sm_90, the 48 launch variants (4 formats, zero point or not, split K or not, 3 GEMV row counts)
give the very SASS the kernels had with this code written out in each. A word tile's load stays
written out in each kernel: as a helper it moved the software pipeline's registers.

Place in the flow: a kernel module — packed words, scales and ``x`` in, ``y`` out; imports Triton
when it is installed (the backend imports the kernels only in ``prepare()``).

    >>> from quantresolve.dispatch.kernels.gemv_configs import GemvConfig
    >>> launch_grid(n=4096, kw=512, cfg=GemvConfig(block_n=64, block_kw=32, split_k=8))
    ((64, 8), 64)
"""

from __future__ import annotations

import math
from typing import Any

import torch

from quantresolve.dispatch.kernels.gemv_configs import GemvConfig
from quantresolve.dispatch.kernels.gemv_formats import CHANNEL_GROUP, FORMATS
from quantresolve.dispatch.kernels.gemv_layout import GemvWeights, values_per_word

try:  # the kernels exist only where Triton does; the backend checks before importing this module
    import triton
    import triton.language as tl
except ImportError:  # pragma: no cover - exercised on machines without Triton
    triton = None
    tl = None

__all__ = ["MAGIC", "format_args", "launch", "launch_grid"]  # and, with Triton, the @triton.jit helpers below

#: The float32 exponent field of 2^23 (``150 << 23``), the integer decode's magic number.
MAGIC = 150 << 23


def launch_grid(n: int, kw: int, cfg: GemvConfig) -> tuple[tuple[int, int], int]:
    """``((row tiles, K splits), words per split)``. The splits are equal whole numbers of
    ``block_kw`` tiles — the most that divide the tiles evenly, up to ``cfg.split_k`` — so no
    program needs a bound on K (``kw`` is a multiple of every ``block_kw``, see ``WORD_ALIGN``)."""
    tiles = kw // cfg.block_kw
    split = max(d for d in range(1, max(1, min(cfg.split_k, tiles)) + 1) if tiles % d == 0)
    return (math.ceil(n / cfg.block_n), split), tiles // split * cfg.block_kw


def _kernel_group(w: GemvWeights) -> int:
    return w.group if w.group else CHANNEL_GROUP


def _sub_blocks(w: GemvWeights) -> int:
    """Scale groups per chunk of ``S·VPW`` elements (1, or 2 for NVFP4's groups of 16 at ``S = 4``)."""
    chunk = w.stripe * values_per_word(FORMATS[w.fmt].bits)
    group = _kernel_group(w)
    return chunk // group if group < chunk else 1


def format_args(w: GemvWeights) -> dict[str, object]:
    """The format's constexprs of a launch over ``w`` (both kernels take them by these names)."""
    fmt = FORMATS[w.fmt]
    return dict(FORMAT=fmt.kernel_id, OFFSET=fmt.offset or 0, VPW=values_per_word(fmt.bits),
                GROUP=_kernel_group(w), STRIPE=w.stripe, SUBS=_sub_blocks(w), HAS_ZERO=w.zero is not None,
                HAS_ROW_SCALE=w.row_scale is not None, HALF_ASM=not triton.knobs.runtime.interpret)


def launch(kernel: Any, x: torch.Tensor, w: GemvWeights, cfg: GemvConfig, out_dtype: torch.dtype,
           block_m: int, **constexprs: object) -> torch.Tensor:
    """Run ``kernel`` over the packed ``w`` for row-major ``x`` ``[M, K]`` on :func:`launch_grid`'s grid:
    the result ``[M, N]`` in ``out_dtype``, or in float32 (zeroed, added into atomically) when K is split.
    ``kernel`` takes the operands in the order both kernels declare them."""
    m, k = x.shape
    kw = w.words.shape[1]
    grid, per_split = launch_grid(w.n, kw, cfg)
    atomic = grid[1] > 1
    if atomic:
        out = torch.zeros(m, w.n, dtype=torch.float32, device=x.device)
    else:
        out = torch.empty(m, w.n, dtype=out_dtype, device=x.device)
    kernel[grid](
        x, w.words, w.scale, w.zero if w.zero is not None else w.scale,
        w.row_scale if w.row_scale is not None else w.scale, out,
        m, w.n, k, kw, per_split, x.stride(0), w.words.stride(0), w.scale.stride(0), out.stride(0), MAGIC,
        **format_args(w), ATOMIC=atomic, BLOCK_M=block_m, BLOCK_N=cfg.block_n, BLOCK_KW=cfg.block_kw,
        NUM_STAGES=cfg.num_stages, num_warps=cfg.num_warps, **constexprs)
    return out


if triton is not None:

    @triton.jit
    def slot(words, magic, J: tl.constexpr, FORMAT: tl.constexpr, OFFSET: tl.constexpr,
              HALF_ASM: tl.constexpr):
        """Slot ``J`` of every word as float32: ``q = u − offset`` for integer codes, the E2M1 value.

        An integer slot whose bits lie in the float32 mantissa (bits 0…22) stays in place (later
        slots are read from ``words >> 12``): ORed with the exponent that gives the slot's lowest
        bit ``P`` the weight 1, the word *is* the float ``2^(23 − P) + u`` — one LOP3, one FADD.
        """
        if FORMAT <= 1:
            BITS: tl.constexpr = 4 + 4 * FORMAT
            SHIFTED: tl.constexpr = (BITS * J + BITS) // 24  # 1 when the slot reaches bit 23
            P: tl.constexpr = BITS * J - 12 * SHIFTED  # its lowest bit in ``src``
            MASK: tl.constexpr = (15 + 240 * FORMAT) << P
            BIAS: tl.constexpr = (1 << (23 - P)) + OFFSET
            src = words
            if SHIFTED:
                src = words >> 12
            # ``magic`` is 150 << 23 passed at run time: held in a register, the AND and the OR fuse
            # into one LOP3 (an immediate exponent would take a second one)
            v = ((src & MASK) | (magic - (P << 23))).to(tl.float32, bitcast=True) - BIAS
        else:
            # E2M1, slots J % 4 and J % 4 + 4 at once, 16 bits apart: exponent+mantissa bits moved to
            # 9..11 (25..27), the sign to 15 (31), make each half the float16 whose exponent and
            # mantissa are the code's — E2M1 value × 2^-14 exactly (subnormal for codes 0 and 1; the
            # 2^14 is in the scale) — and float16 → float32 is one HADD2.F32 reading either half
            PAIR: tl.constexpr = J % 4
            if PAIR < 3:  # noqa: SIM108  (a static branch: each side a different shift)
                mag = (words << (9 - 4 * PAIR)) & 0x0E000E00
            else:
                mag = (words >> 3) & 0x0E000E00
            bits = mag | ((words << (12 - 4 * PAIR)) & -2147450880)  # sign mask 0x80008000
            if HALF_ASM:  # read the half in place (plain Triton repacks halves with a PRMT first)
                lo, hi = tl.inline_asm_elementwise(
                    "{.reg .b16 l, h; mov.b32 {l, h}, $2; cvt.f32.f16 $0, l; cvt.f32.f16 $1, h;}",
                    "=r,=r,r", [bits], dtype=(tl.float32, tl.float32), is_pure=True, pack=1)
                v = hi if J >= 4 else lo
            else:  # the interpreter's spelling of the same
                if J >= 4:
                    bits = bits >> 16
                v = bits.to(tl.int16).to(tl.float16, bitcast=True).to(tl.float32)
        return v

    @triton.jit
    def scale(raw, FORMAT: tl.constexpr):
        """A tile of scales as float32; E4M3 and E8M0 decoded from their bytes, times the 2^14 that
        the E2M1 decode leaves out."""
        if FORMAT == 2:  # E4M3: exponent+mantissa to bits 20..26, sign to 31: the value × 2^-120
            b = raw.to(tl.int32)
            s = (((b & 0x7F) << 20) | ((b & 0x80) << 24)).to(tl.float32, bitcast=True)
            s = s * 1.4757395258967641e20 * 1.4757395258967641e20  # × 2^67 · 2^67 = 2^(120 + 14)
        elif FORMAT == 3:  # E8M0: the float32 exponent field (0 is 2^-127, a subnormal)
            b = raw.to(tl.int32)
            s = tl.where(b == 0, 5.877471754111438e-39, (b << 23).to(tl.float32, bitcast=True)) * 16384.0
        else:
            s = raw.to(tl.float32)
        return s

    @triton.jit
    def coordinates(BLOCK_N: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_KW: tl.constexpr, STRIPE: tl.constexpr):
        """This program's rows of the weight ``rn``, its split of K ``pid_k``, the rows of x ``rm``, and
        the word and chunk indices of a tile (``arange(BLOCK_KW)``, ``arange(BLOCK_KW / STRIPE)``)."""
        pid_n = tl.program_id(0)
        pid_k = tl.program_id(1)
        rn = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
        return rn, pid_k, tl.arange(0, BLOCK_M), tl.arange(0, BLOCK_KW), tl.arange(0, BLOCK_KW // STRIPE)

    @triton.jit
    def row_pointers(w_ptr, rn, stride_wn, stride_sn):
        """The pointers to the rows' words ``[BLOCK_N, 1]`` and the rows' offsets into the scales."""
        return w_ptr + rn.to(tl.int64)[:, None] * stride_wn, rn[:, None] * stride_sn

    @triton.jit
    def write(y, out_ptr, r_ptr, rm, rn, rows_ok, N, stride_om, HAS_ROW_SCALE: tl.constexpr, ATOMIC: tl.constexpr):
        """``y`` ``[BLOCK_M, BLOCK_N]`` times the rows' tensor scale (NVFP4), stored or added atomically
        where ``rows_ok`` (``[BLOCK_M, 1]``: the rows of x that exist) and ``rn < N``."""
        if HAS_ROW_SCALE:
            y = y * tl.load(r_ptr + rn)[None, :]
        out = out_ptr + rm[:, None] * stride_om + rn[None, :]
        mask = rows_ok & (rn < N)[None, :]
        if ATOMIC:
            tl.atomic_add(out, y, mask=mask, sem="relaxed")
        else:
            tl.store(out, y, mask=mask)
