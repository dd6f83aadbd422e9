"""Triton kernels: ``y = x · Wᵀ`` straight from the packed weight (GEMV, M ≤ 8), and its dequantization.

The GEMV streams the words of :mod:`.gemv_layout` once. Program ``(i, s)`` of a 2-D grid takes
rows ``i·BLOCK_N …`` and the ``s``-th split of the packed K (the grid, the decode, the write and the
launch: :mod:`.triton_tiles`, shared with :mod:`.triton_dot`); per ``[BLOCK_N, BLOCK_KW]`` tile of
words (16-byte loads along K) and per slot ``j`` of a word it decodes the codes to float32
(:mod:`.gemv_formats`: magic-number integers, denormal E2M1), multiplies the activations those
codes belong to (``S`` consecutive elements per thread, thanks to the stripe) and accumulates, in
float32, one partial sum per ``(x row, weight row, word)`` — the scale of a code's group is
applied once per word (per half-word for groups of 16), the reduction over the words once per
program, and splits of K meet in an atomic float32 add. For an integer weight, per group::

    y[m, n] = Σ_group scale[n, g] · Σ_{k ∈ g} (u[n, k] − zero[n, g]) · x[m, k]

e.g. a symmetric int4 group (offset 8) with codes ``u = (9, 6)``, scale 0.5 and ``x = (1, 2)``:
``0.5 · ((9 − 8)·1 + (6 − 8)·2) = −1.5``. NVFP4: ``y = t[n] · Σ_g e4m3[n, g] · Σ_k e2m1(u)·x`` with
``t`` the per-tensor scale; MXFP4 the same with ``2^(e8m0 − 127)`` and no ``t``.

Without Triton this module imports (the backend reports "Triton not installed") but defines no
kernel. Set ``TRITON_INTERPRET=1`` *before* importing it to run the kernels on CPU tensors with
Triton's interpreter (the tests do, in a subprocess).

    >>> from quantresolve.dispatch.kernels.gemv_configs import GEMV_MAX_M
    >>> GEMV_MAX_M, DEQUANT_ROWS
    (8, 4096)
"""

from __future__ import annotations

import math

import torch

from quantresolve.dispatch.kernels import triton_tiles as tiles
from quantresolve.dispatch.kernels.gemv_configs import GEMV_MAX_M, GemvConfig
from quantresolve.dispatch.kernels.gemv_layout import ROW_ALIGN, WORD_ALIGN, GemvWeights

try:  # the kernels exist only where Triton does; the backend checks before importing this module
    import triton
    import triton.language as tl
except ImportError:  # pragma: no cover - exercised on machines without Triton
    triton = None
    tl = None

__all__ = ["dequantize_rows", "gemv", "patch_interpreter_for_numpy2"]

#: Rows of the weight dequantized per launch by :func:`dequantize_rows` (bounds the scratch copy).
DEQUANT_ROWS = 4096


def patch_interpreter_for_numpy2() -> None:
    """Let Triton 3.6's CPU interpreter run these kernels under numpy ≥ 2.3: it turns a loop bound
    into an int with ``int(array)``, which those numpy versions refuse for its 1-element arrays, so
    read the element instead. Only for ``TRITON_INTERPRET=1`` (tests, ``gpu_gemv_sweep --cpu-check``)."""
    from triton.runtime import interpreter

    original = interpreter._patch_lang_tensor
    if getattr(original, "_one_element_index", False):
        return

    def patched(tensor, scope):  # type: ignore[no-untyped-def]
        original(tensor, scope)
        scope.set_attr(tensor, "__index__", lambda self: int(self.handle.data.reshape(-1)[0]))

    patched._one_element_index = True  # type: ignore[attr-defined]
    interpreter._patch_lang_tensor = patched


if triton is not None:

    @triton.jit
    def _gemv_kernel(x_ptr, w_ptr, s_ptr, z_ptr, r_ptr, out_ptr,
                     M, N, K, KW, kw_per_split, stride_xm, stride_wn, stride_sn, stride_om, magic,
                     FORMAT: tl.constexpr, OFFSET: tl.constexpr, VPW: tl.constexpr, GROUP: tl.constexpr,
                     STRIPE: tl.constexpr, SUBS: tl.constexpr, HAS_ZERO: tl.constexpr,
                     HAS_ROW_SCALE: tl.constexpr, HALF_ASM: tl.constexpr, ATOMIC: tl.constexpr, BLOCK_M: tl.constexpr,
                     BLOCK_N: tl.constexpr, BLOCK_KW: tl.constexpr, NUM_STAGES: tl.constexpr):
        # Tiles are [rows, chunks, words of a chunk] (a 4th, leading axis for x rows when M > 1):
        # the words load as [rows, words] (16-byte vectors along K) and are viewed as chunks, so
        # the activations of slot j are [chunks, STRIPE] consecutive elements.
        CH: tl.constexpr = BLOCK_KW // STRIPE
        PER_SUB: tl.constexpr = VPW // SUBS
        rn, pid_k, rm, kr, ch = tiles.coordinates(BLOCK_N, BLOCK_M, BLOCK_KW, STRIPE)
        st = tl.arange(0, STRIPE)
        w_rows, s_rows = tiles.row_pointers(w_ptr, rn, stride_wn, stride_sn)
        x_rows = x_ptr + rm[:, None, None] * stride_xm  # [BM, 1, 1]
        m_ok = (rm < M)[:, None, None]
        kw_lo = pid_k * kw_per_split
        if BLOCK_M == 1:
            acc1 = tl.zeros([BLOCK_N, CH, STRIPE], dtype=tl.float32)
        else:
            acc = tl.zeros([BLOCK_M, BLOCK_N, CH, STRIPE], dtype=tl.float32)
        for t in tl.range(0, kw_per_split // BLOCK_KW, num_stages=NUM_STAGES):
            kw0 = kw_lo + t * BLOCK_KW
            words = tl.reshape(tl.load(w_rows + (kw0 + kr)[None, :]), [BLOCK_N, CH, STRIPE])
            first = (kw0 // STRIPE + ch) * (STRIPE * VPW)  # [CH]: element of slot 0 of each chunk
            for sb in tl.static_range(SUBS):
                col = s_rows + ((first + sb * PER_SUB * STRIPE) // GROUP)[None, :]  # [BN, CH]
                scale = tiles.scale(tl.load(s_ptr + col), FORMAT)
                if BLOCK_M == 1:
                    part1 = tl.zeros([BLOCK_N, CH, STRIPE], dtype=tl.float32)
                    xsum1 = tl.zeros([CH, STRIPE], dtype=tl.float32)
                else:
                    part = tl.zeros([BLOCK_M, BLOCK_N, CH, STRIPE], dtype=tl.float32)
                    xsum = tl.zeros([BLOCK_M, CH, STRIPE], dtype=tl.float32)
                for jj in tl.static_range(PER_SUB):
                    # slot j = sb·PER_SUB + jj (spelled out: a name assigned a constexpr becomes a tensor)
                    e = (first + (sb * PER_SUB + jj) * STRIPE)[:, None] + st[None, :]  # [CH, STRIPE]
                    v = tiles.slot(words, magic, sb * PER_SUB + jj, FORMAT, OFFSET, HALF_ASM)
                    if BLOCK_M == 1:
                        xj1 = tl.load(x_ptr + e, mask=e < K, other=0.0).to(tl.float32)
                        part1 += v * xj1[None, :, :]
                        if HAS_ZERO:
                            xsum1 += xj1
                    else:
                        xj = tl.load(x_rows + e[None, :, :], mask=m_ok & (e < K)[None, :, :], other=0.0)
                        xj = xj.to(tl.float32)
                        part += v[None, :, :, :] * xj[:, None, :, :]
                        if HAS_ZERO:
                            xsum += xj
                if HAS_ZERO:  # Σ (q − zp)·x = Σ q·x − zp·Σ x, the zero point once per word
                    zp = tl.load(z_ptr + col).to(tl.float32)
                    if BLOCK_M == 1:
                        part1 -= zp[:, :, None] * xsum1[None, :, :]
                    else:
                        part -= zp[None, :, :, None] * xsum[:, None, :, :]
                if BLOCK_M == 1:
                    acc1 += part1 * scale[:, :, None]
                else:
                    acc += part * scale[None, :, :, None]
        if BLOCK_M == 1:
            y = tl.sum(tl.sum(acc1, axis=2), axis=1)[None, :]
        else:
            y = tl.sum(tl.sum(acc, axis=3), axis=2)
        tiles.write(y, out_ptr, r_ptr, rm, rn, (rm < M)[:, None], N, stride_om, HAS_ROW_SCALE, ATOMIC)

    @triton.jit
    def _dequant_kernel(w_ptr, s_ptr, z_ptr, r_ptr, out_ptr, N, K, row0, stride_wn, stride_sn, stride_on, magic,
                        FORMAT: tl.constexpr, OFFSET: tl.constexpr, VPW: tl.constexpr, GROUP: tl.constexpr,
                        STRIPE: tl.constexpr, SUBS: tl.constexpr, HAS_ZERO: tl.constexpr,
                        HAS_ROW_SCALE: tl.constexpr, HALF_ASM: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_KW: tl.constexpr):
        """``out[r − row0, k] = W[r, k]`` for rows ``row0 …`` (the same decode as the GEMV)."""
        rn = row0 + tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
        kw = tl.program_id(1) * BLOCK_KW + tl.arange(0, BLOCK_KW)
        words = tl.load(w_ptr + rn.to(tl.int64)[:, None] * stride_wn + kw[None, :])
        first = (kw // STRIPE) * (STRIPE * VPW) + kw % STRIPE
        rows_out = out_ptr + (rn - row0).to(tl.int64)[:, None] * stride_on
        ok_n = (rn < N)[:, None]
        if HAS_ROW_SCALE:
            row_scale = tl.load(r_ptr + rn)[:, None]
        for sb in tl.static_range(SUBS):
            col = rn[:, None] * stride_sn + ((first + sb * (VPW // SUBS) * STRIPE) // GROUP)[None, :]
            scale = tiles.scale(tl.load(s_ptr + col), FORMAT)
            if HAS_ROW_SCALE:
                scale = scale * row_scale
            for jj in tl.static_range(VPW // SUBS):
                e = first + (sb * (VPW // SUBS) + jj) * STRIPE
                v = tiles.slot(words, magic, sb * (VPW // SUBS) + jj, FORMAT, OFFSET, HALF_ASM)
                if HAS_ZERO:
                    v = v - tl.load(z_ptr + col).to(tl.float32)
                tl.store(rows_out + e[None, :], v * scale, mask=ok_n & (e < K)[None, :])


def gemv(x: torch.Tensor, w: GemvWeights, cfg: GemvConfig, out_dtype: torch.dtype | None = None) -> torch.Tensor:
    """``x · Wᵀ`` for row-major ``x`` ``[M ≤ 8, K]`` (any float dtype) → ``[M, N]`` in ``out_dtype``
    (default ``x``'s; float32 when K is split, as the splits add atomically into float32)."""
    m, k = x.shape
    if m > GEMV_MAX_M or k != w.k:
        raise ValueError(f"gemv takes x [≤ {GEMV_MAX_M}, {w.k}], got {list(x.shape)}")
    if ROW_ALIGN % cfg.block_n or WORD_ALIGN % cfg.block_kw or cfg.block_kw % w.stripe:
        raise ValueError(f"{cfg.text()}: tiles must divide the padding ({ROW_ALIGN} rows, {WORD_ALIGN} words) "
                         f"and hold whole chunks of {w.stripe} words")
    return tiles.launch(_gemv_kernel, x, w, cfg, out_dtype or x.dtype, max(1, triton.next_power_of_2(m)))


def dequantize_rows(w: GemvWeights, row0: int, rows: int, dtype: torch.dtype) -> torch.Tensor:
    """The dense rows ``row0 … row0 + rows − 1`` of ``W`` in ``dtype`` (float32 arithmetic, one rounding)."""
    out = torch.empty(rows, w.k, dtype=dtype, device=w.words.device)
    block_n, block_kw = 32, 16
    grid = (math.ceil(rows / block_n), math.ceil(w.words.shape[1] / block_kw))
    _dequant_kernel[grid](
        w.words, w.scale, w.zero if w.zero is not None else w.scale,
        w.row_scale if w.row_scale is not None else w.scale, out,
        row0 + rows, w.k, row0, w.words.stride(0), w.scale.stride(0), out.stride(0), tiles.MAGIC,
        **tiles.format_args(w), BLOCK_N=block_n, BLOCK_KW=block_kw, num_warps=4)
    return out
