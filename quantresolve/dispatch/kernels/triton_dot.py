"""The packed weight on tensor cores: ``y = x · Wᵀ`` for 2 … 64 rows of ``x`` with ``tl.dot``.

The GEMV (:mod:`.triton_gemv`) spends one FMA per weight *per row of x*; from a few rows on, the
decoded tile is better handed to the tensor cores. Per ``[BLOCK_N, BLOCK_KW]`` tile of words this
kernel decodes each slot with the GEMV's own ``tiles.slot`` / ``tiles.scale`` (float32, scale and zero point
applied: the dequantized weight, rounded once to bf16 / fp16 as ``dense_dequant`` rounds it), joins
the slots into a ``[BLOCK_N, BLOCK_K]`` operand and accumulates ``tl.dot`` in float32. K splits meet
in an atomic float32 add, NVFP4's per-row tensor scale multiplies the sums, as in the GEMV.

The joined operand's K order is not the element order: ``tl.join`` stacks slot ``j`` of the words'
codes as the innermost axes, so column ``p = (c·S + s)·VPW + q`` of a tile holds slot
``j = bit-reverse(q)`` of word ``s`` of chunk ``c`` — element ``c·S·VPW + j·S + s``. A dot product
does not care about the order of K as long as ``x`` is read the same way, so ``x`` is gathered with
that map (:func:`operand_elements`) and nothing is shuffled:

    >>> operand_elements(block_kw=8, stripe=4, vpw=8)[:10]  # word 0's slots, then word 1's
    [0, 16, 8, 24, 4, 20, 12, 28, 1, 17]
"""

from __future__ import annotations

import math

import torch

from quantresolve.dispatch.kernels import triton_tiles as tiles
from quantresolve.dispatch.kernels.gemv_configs import GemvConfig
from quantresolve.dispatch.kernels.gemv_layout import ROW_ALIGN, WORD_ALIGN, GemvWeights

try:
    import triton
    import triton.language as tl
except ImportError:  # pragma: no cover - exercised on machines without Triton
    triton = None
    tl = None

__all__ = ["DOT_MAX_M", "gemm_small", "operand_elements"]

#: Most rows of x one launch takes (its BLOCK_M); more rows dequantize and use the dense matmul.
DOT_MAX_M = 64


def _bit_reverse(q: int, bits: int) -> int:
    return int(f"{q:0{bits}b}"[::-1], 2) if bits else 0


def operand_elements(block_kw: int, stripe: int, vpw: int) -> list[int]:
    """Tile element (from the tile's first element) held by each column of the joined operand."""
    bits = int(math.log2(vpw))
    out = []
    for c in range(block_kw // stripe):
        for s in range(stripe):
            out += [c * stripe * vpw + _bit_reverse(q, bits) * stripe + s for q in range(vpw)]
    return out


if triton is not None:

    @triton.jit
    def _decoded(words, magic, scale, zp, J: tl.constexpr, FORMAT: tl.constexpr, OFFSET: tl.constexpr,
                 HAS_ZERO: tl.constexpr, HALF_ASM: tl.constexpr, DTYPE: tl.constexpr):
        """Slot ``J`` dequantized (``[rows, chunks, stripe]``) in the dot's operand dtype."""
        v = tiles.slot(words, magic, J, FORMAT, OFFSET, HALF_ASM)
        if HAS_ZERO:
            v = v - zp[:, :, None]
        return (v * scale[:, :, None]).to(DTYPE)

    @triton.jit
    def _gemm_small_kernel(x_ptr, w_ptr, s_ptr, z_ptr, r_ptr, out_ptr,
                           M, N, K, KW, kw_per_split, stride_xm, stride_wn, stride_sn, stride_om, magic,
                           FORMAT: tl.constexpr, OFFSET: tl.constexpr, VPW: tl.constexpr, GROUP: tl.constexpr,
                           STRIPE: tl.constexpr, SUBS: tl.constexpr, HAS_ZERO: tl.constexpr,
                           HAS_ROW_SCALE: tl.constexpr, HALF_ASM: tl.constexpr, ATOMIC: tl.constexpr,
                           BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_KW: tl.constexpr,
                           NUM_STAGES: tl.constexpr, DTYPE: tl.constexpr):
        CH: tl.constexpr = BLOCK_KW // STRIPE
        PER_SUB: tl.constexpr = VPW // SUBS
        BLOCK_K: tl.constexpr = BLOCK_KW * VPW
        rn, pid_k, rm, kr, ch = tiles.coordinates(BLOCK_N, BLOCK_M, BLOCK_KW, STRIPE)
        kk = tl.arange(0, BLOCK_K)
        w_rows, s_rows = tiles.row_pointers(w_ptr, rn, stride_wn, stride_sn)
        x_rows = x_ptr + rm[:, None] * stride_xm
        m_ok = (rm < M)[:, None]
        acc = tl.zeros([BLOCK_M, BLOCK_N], dtype=tl.float32)
        kw_lo = pid_k * kw_per_split
        for t in tl.range(0, kw_per_split // BLOCK_KW, num_stages=NUM_STAGES):
            kw0 = kw_lo + t * BLOCK_KW
            words = tl.reshape(tl.load(w_rows + (kw0 + kr)[None, :]), [BLOCK_N, CH, STRIPE])
            first = (kw0 // STRIPE + ch) * (STRIPE * VPW)
            col = s_rows + (first // GROUP)[None, :]
            scale = tiles.scale(tl.load(s_ptr + col), FORMAT)
            zp = scale
            if HAS_ZERO:
                zp = tl.load(z_ptr + col).to(tl.float32)
            if SUBS == 2:  # the second half of each chunk's slots lies in the next group
                col2 = s_rows + ((first + PER_SUB * STRIPE) // GROUP)[None, :]
                scale2 = tiles.scale(tl.load(s_ptr + col2), FORMAT)
                zp2 = scale2
                if HAS_ZERO:
                    zp2 = tl.load(z_ptr + col2).to(tl.float32)
            else:
                scale2 = scale
                zp2 = zp
            d0 = _decoded(words, magic, scale, zp, 0, FORMAT, OFFSET, HAS_ZERO, HALF_ASM, DTYPE)
            d1 = _decoded(words, magic, scale, zp, 1, FORMAT, OFFSET, HAS_ZERO, HALF_ASM, DTYPE)
            if VPW == 8:
                d2 = _decoded(words, magic, scale, zp, 2, FORMAT, OFFSET, HAS_ZERO, HALF_ASM, DTYPE)
                d3 = _decoded(words, magic, scale, zp, 3, FORMAT, OFFSET, HAS_ZERO, HALF_ASM, DTYPE)
                d4 = _decoded(words, magic, scale2, zp2, 4, FORMAT, OFFSET, HAS_ZERO, HALF_ASM, DTYPE)
                d5 = _decoded(words, magic, scale2, zp2, 5, FORMAT, OFFSET, HAS_ZERO, HALF_ASM, DTYPE)
                d6 = _decoded(words, magic, scale2, zp2, 6, FORMAT, OFFSET, HAS_ZERO, HALF_ASM, DTYPE)
                d7 = _decoded(words, magic, scale2, zp2, 7, FORMAT, OFFSET, HAS_ZERO, HALF_ASM, DTYPE)
                joined = tl.join(tl.join(tl.join(d0, d1), tl.join(d2, d3)), tl.join(tl.join(d4, d5), tl.join(d6, d7)))
                # [rows, chunks, words, a, b, c] with slot j = a + 2b + 4c → [rows, chunks, c, b, a, words]:
                # element order (chunk·S·VPW + j·S + word), all axes but rows and chunks within a thread
                joined = tl.permute(joined, (0, 1, 5, 4, 3, 2))
            else:
                d2 = _decoded(words, magic, scale2, zp2, 2, FORMAT, OFFSET, HAS_ZERO, HALF_ASM, DTYPE)
                d3 = _decoded(words, magic, scale2, zp2, 3, FORMAT, OFFSET, HAS_ZERO, HALF_ASM, DTYPE)
                joined = tl.permute(tl.join(tl.join(d0, d1), tl.join(d2, d3)), (0, 1, 4, 3, 2))
            w_tile = tl.reshape(joined, [BLOCK_N, BLOCK_K])
            e = (kw0 // STRIPE) * (STRIPE * VPW) + kk
            x_tile = tl.load(x_rows + e[None, :], mask=m_ok & (e < K)[None, :], other=0.0).to(DTYPE)
            acc = tl.dot(x_tile, tl.trans(w_tile), acc)
        tiles.write(acc, out_ptr, r_ptr, rm, rn, m_ok, N, stride_om, HAS_ROW_SCALE, ATOMIC)


def gemm_small(x: torch.Tensor, w: GemvWeights, cfg: GemvConfig, out_dtype: torch.dtype | None = None) -> torch.Tensor:
    """``x · Wᵀ`` for row-major ``x`` ``[M ≤ 64, K]`` on tensor cores → ``[M, N]`` (float32 when K is split)."""
    m, k = x.shape
    if m > DOT_MAX_M or k != w.k:
        raise ValueError(f"gemm_small takes x [≤ {DOT_MAX_M}, {w.k}], got {list(x.shape)}")
    if ROW_ALIGN % cfg.block_n or WORD_ALIGN % cfg.block_kw or cfg.block_kw % w.stripe or cfg.block_n < 16:
        raise ValueError(f"{cfg.text()}: tiles must divide the padding ({ROW_ALIGN} rows, {WORD_ALIGN} words), "
                         f"hold whole chunks of {w.stripe} words, and have ≥ 16 rows")
    if tiles.format_args(w)["SUBS"] > 2:
        raise ValueError(f"{w.fmt} group {w.group}: at most two scale groups per chunk of {w.stripe} words")
    dtype = tl.float16 if x.dtype == torch.float16 else tl.bfloat16
    if triton.knobs.runtime.interpret:  # the interpreter's dot misreads bf16 operands: check the logic in fp32
        dtype = tl.float32
    return tiles.launch(_gemm_small_kernel, x, w, cfg, out_dtype or x.dtype, max(16, triton.next_power_of_2(m)),
                  DTYPE=dtype)
