"""C++ source of the ``avx512_gemv_cpu`` kernels (compiled lazily by :mod:`.avx512_gemv`).

Layout (built by :func:`quantresolve.dispatch.kernels.avx512_gemv.pack_int4` / ``pack_int8``): output
rows in tiles of ``R = 4``, ``N`` padded to a multiple of 4 and ``K`` to a whole block (padded codes
meet zero activations). One tile is one sequential stream, ``[K/block, R, bytes per block]``:

- int4: 64 bytes per (128-weight block, row), ``u = q + 8`` (0..15); 16-bit lane ``i`` holds weights
  ``i, 32+i, 64+i, 96+i`` in its four nibbles. Per (row, group) the kernel builds the bf16 table
  ``T[u] = bf16(s·(u − 8 − z))`` — the float32 product rounded once to nearest-even, i.e. exactly the
  dequantized weight (``IntWeights.dense`` for bf16 and float32 scales, then bf16) — looks the nibbles up
  with ``vpermw`` and accumulates ``vdpbf16ps`` over the whole row in float32: a bf16 GEMV on
  ``QuantLinear.dequantize()``, as the producers compute it, up to float32 summation order. (Before: the
  nibbles became bf16 ``128 + u`` by a shift and a ``vpternlogd``, float32 group sums were scaled
  afterwards — more precise than the producers, and not the same: a greedy near-tie of ``ct-w4a16-asym``
  went the other way. The table costs 4–7 % at 28672x8192, batch 1.)
- int8: 64 signed bytes per (64-weight block, row), widened to float32 and multiplied by FMA.

Scales ``[N/R, G, R]`` float32. Asymmetric int4 passes the zero points ``z`` of the same shape; asymmetric
int8 passes ``zc = scale · zero``: ``y = Σ_g s·Σ_k x·q − Σ_g zc·Σ_k x`` — the second term uses the per-call
group sums of ``x``.

    >>> "dpbf16" in SOURCE
    True
"""

from quantresolve.dispatch.kernels import native

SOURCE = r"""
#include <torch/extension.h>
#include <ATen/Parallel.h>
#include <immintrin.h>
#include <sys/mman.h>
#include <cstdlib>
#include <vector>

namespace {

constexpr int R = 4;  // rows per tile

// x (bf16 bits [M, K]) -> zero-padded [M, Kp] bf16 bits and, per (m, group), a vector whose lanes sum
// to the group's sum of x (lane 0 = the sum): the zero-point term is then one fnmadd per group.
void prep_x(const uint16_t* x, int64_t M, int64_t K, int64_t Kp, int64_t g, int64_t G,
            std::vector<uint16_t>& xp, std::vector<float>& xs, bool want_sums) {
  xp.assign(M * Kp, 0);
  for (int64_t m = 0; m < M; ++m) std::memcpy(&xp[m * Kp], x + m * K, K * sizeof(uint16_t));
  if (!want_sums) return;
  xs.assign(M * G * 16, 0.f);
  for (int64_t m = 0; m < M; ++m)
    for (int64_t gi = 0; gi < G; ++gi) {
      float s = 0.f;
      for (int64_t k = gi * g; k < std::min(K, (gi + 1) * g); ++k) {
        uint32_t bits = uint32_t(xp[m * Kp + k]) << 16;
        float f;
        std::memcpy(&f, &bits, 4);
        s += f;
      }
      xs[(m * G + gi) * 16] = s;
    }
}

// Software prefetch PF bytes ahead of the block being read, every line of it, into L2. Measured at
// 28672x8192 int4 on 2 Sapphire Rapids cores, weights in L3: no prefetch 9.6 GB/s, 1 KiB 21 GB/s, 4 KiB
// 26.7 GB/s (the hardware prefetcher alone does not run far enough ahead). From DRAM, six layers cycled
// (session 4): into L1 (T0) at 4 KiB 7.2 ms, into L2 (T1) at 4 KiB 6.3 ms, at 8 KiB 6.1 ms, at 16 KiB
// 6.2 ms; non-temporal 9.2 ms. Prefetches past the end never fault.
constexpr int64_t PF = 8192;
inline void prefetch_lines(const void* p, int bytes) {
  for (int o = 0; o < bytes; o += 64) _mm_prefetch((const char*)p + PF + o, _MM_HINT_T1);
}

inline float hsum(__m512 v) { return _mm512_reduce_add_ps(v); }

// One tile of R rows, RS of them at a time. A 16-bit lane of a (128-weight block, row) holds 4 nibbles,
// weights i, 32+i, 64+i, 96+i, as u = q + 8. Per (row, group) a 16-entry bf16 table T[u] = bf16(s·(u − 8 − z))
// (float32 product, one round-to-nearest-even: the dequantized weight exactly, as IntWeights.dense() then
// .to(bfloat16) computes it for float32 and bf16 scales) is built with a sub, a mul and a vcvtne2ps2bf16; the
// nibbles index it with vpermw, and vdpbf16ps accumulates the whole row in float32 — a bf16 GEMV on the
// dequantized weight, no per-group scaling. CPG: 32-weight chunks per group (1, 2), 0 = whole blocks.
//
// Port pressure, measured on this machine (session 4): zmm shifts, vpermw and vcvtne*2bf16 share one
// execution port, vdpbf16ps costs ≈ 2 cycles of it, while vpmulhuw and the bitwise ops issue on two. So the
// nibbles are moved down by multiplying high (vpmulhuw by 2^(16-4j) is a logical right shift by 4j), and the
// table fills both 16-entry halves of the register: vpermw reads index bits 0-4, bit 4 (the next nibble's
// low bit) then picks an identical copy, and no mask is needed. 18 → 16.8 cycles per 128-weight row block
// in L1, single thread; 28672x8192 from DRAM 6.3 → 5.9 ms with the prefetch above.
template <int M, int RS, int CPG, bool ZERO>
void int4_tile(const uint8_t* codes, const float* sc, const float* zp, const uint16_t* xp,
               int64_t Kp, int64_t g, float* acc_out) {
  const int64_t nb = Kp / 128, bpg = CPG == 0 ? g / 128 : 1;
  const __m512 base = _mm512_setr_ps(-8.f, -7.f, -6.f, -5.f, -4.f, -3.f, -2.f, -1.f,
                                     0.f, 1.f, 2.f, 3.f, 4.f, 5.f, 6.f, 7.f);
  for (int r0 = 0; r0 < R; r0 += RS) {
    __m512 acc[RS][M];
    for (int r = 0; r < RS; ++r)
      for (int m = 0; m < M; ++m) acc[r][m] = _mm512_setzero_ps();
    // entries 0..15 in both 256-bit halves: index bit 4 is free
    auto table = [&](int r, int64_t gi) {
      __m512 c = base;
      if (ZERO) c = _mm512_sub_ps(c, _mm512_set1_ps(zp[gi * R + r0 + r]));
      const __m512 p = _mm512_mul_ps(c, _mm512_set1_ps(sc[gi * R + r0 + r]));
      return (__m512i)_mm512_cvtne2ps_pbh(p, p);
    };
    for (int64_t b = 0; b < nb; ++b) {
      if (r0 == 0) prefetch_lines(codes + b * R * 64, R * 64);
      for (int r = 0; r < RS; ++r) {
        const __m512i v = _mm512_loadu_si512(codes + (b * R + r0 + r) * 64);
        __m512i idx[4];
        idx[0] = v;
        idx[1] = _mm512_mulhi_epu16(v, _mm512_set1_epi16(1 << 12));
        idx[2] = _mm512_mulhi_epu16(v, _mm512_set1_epi16(1 << 8));
        idx[3] = _mm512_mulhi_epu16(v, _mm512_set1_epi16(1 << 4));
        __m512i tab = CPG == 0 ? table(r, bpg == 1 ? b : b / bpg) : _mm512_setzero_si512();  // no idiv at g = 128
        for (int j = 0; j < 4; ++j) {
          if (CPG == 1) tab = table(r, 4 * b + j);
          if (CPG == 2 && !(j & 1)) tab = table(r, 2 * b + j / 2);
          const __m512bh w = (__m512bh)_mm512_permutexvar_epi16(idx[j], tab);
          for (int m = 0; m < M; ++m)
            acc[r][m] = _mm512_dpbf16_ps(acc[r][m], w, (__m512bh)_mm512_loadu_si512(xp + m * Kp + b * 128 + 32 * j));
        }
      }
    }
    for (int r = 0; r < RS; ++r)
      for (int m = 0; m < M; ++m) acc_out[m * R + r0 + r] = hsum(acc[r][m]);
  }
}

template <int M, bool ZERO>
void int8_tile(const int8_t* codes, const float* sc, const float* zc, const float* xf, const float* xs,
               int64_t Kp, int64_t g, int64_t G, float* acc_out) {
  constexpr int RS = M <= 2 ? 4 : 2;
  const int64_t bpg = g / 64;
  for (int r0 = 0; r0 < R; r0 += RS) {
    __m512 racc[RS][M];
    for (int r = 0; r < RS; ++r)
      for (int m = 0; m < M; ++m) racc[r][m] = _mm512_setzero_ps();
    for (int64_t gi = 0; gi < G; ++gi) {
      __m512 acc[RS][M];
      for (int r = 0; r < RS; ++r)
        for (int m = 0; m < M; ++m) acc[r][m] = _mm512_setzero_ps();
      for (int64_t b = gi * bpg; b < (gi + 1) * bpg; ++b) {
        const int8_t* blk = codes + (b * R + r0) * 64;
        if (r0 == 0) prefetch_lines(codes + b * R * 64, R * 64);
        for (int r = 0; r < RS; ++r)
          for (int q = 0; q < 4; ++q) {
            __m512 w = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i*)(blk + r * 64 + q * 16))));
            for (int m = 0; m < M; ++m)
              acc[r][m] = _mm512_fmadd_ps(w, _mm512_loadu_ps(xf + m * Kp + b * 64 + q * 16), acc[r][m]);
          }
      }
      for (int r = 0; r < RS; ++r) {
        __m512 s = _mm512_set1_ps(sc[gi * R + r0 + r]);
        for (int m = 0; m < M; ++m) {
          racc[r][m] = _mm512_fmadd_ps(acc[r][m], s, racc[r][m]);
          if (ZERO)
            racc[r][m] = _mm512_fnmadd_ps(_mm512_set1_ps(zc[gi * R + r0 + r]),
                                          _mm512_loadu_ps(xs + (m * G + gi) * 16), racc[r][m]);
        }
      }
    }
    for (int r = 0; r < RS; ++r)
      for (int m = 0; m < M; ++m) acc_out[m * R + r0 + r] = hsum(racc[r][m]);
  }
}

template <typename F>
void over_tiles(int64_t tiles, int64_t M, int64_t N, float* y, F tile) {
  at::parallel_for(0, tiles, 8, [&](int64_t t0, int64_t t1) {
    float out[4 * R];
    for (int64_t t = t0; t < t1; ++t) {
      tile(t, out);
      for (int64_t m = 0; m < M; ++m)
        for (int r = 0; r < R; ++r)
          if (t * R + r < N) y[m * N + t * R + r] = out[m * R + r];
    }
  });
}

void check(const torch::Tensor& x, const torch::Tensor& codes, const torch::Tensor& sc, const torch::Tensor& zc,
           int64_t K, int64_t g) {
  TORCH_CHECK(x.dim() == 2 && x.scalar_type() == at::kBFloat16 && x.is_contiguous(), "x: contiguous bf16 [M, K]");
  TORCH_CHECK(x.size(1) == K && x.size(0) >= 1 && x.size(0) <= 4, "x: [M <= 4, K]");
  TORCH_CHECK(codes.is_contiguous() && sc.is_contiguous() && sc.scalar_type() == at::kFloat, "packed operands");
  TORCH_CHECK(!zc.defined() || zc.numel() == 0 || (zc.is_contiguous() && zc.numel() == sc.numel()), "zc");
  TORCH_CHECK(g > 0 && g % 32 == 0, "group");
}

}  // namespace

""" + native.HUGE_EMPTY + r"""
torch::Tensor gemv_int4(torch::Tensor x, torch::Tensor codes, torch::Tensor sc, torch::Tensor zp, int64_t N,
                        int64_t K, int64_t g) {
  check(x, codes, sc, zp, K, g);
  const int64_t M = x.size(0), Kp = (K + 127) / 128 * 128, G = Kp / g, tiles = (N + R - 1) / R;
  TORCH_CHECK(g == 32 || g == 64 || (g % 128 == 0 && K % g == 0), "int4: group 32, 64 or a multiple of 128 dividing K");
  TORCH_CHECK(codes.numel() == tiles * R * Kp / 2 && sc.numel() == tiles * R * G, "int4: packed sizes");
  const bool zero = zp.numel() > 0;
  std::vector<uint16_t> xp;
  std::vector<float> xs;
  prep_x((const uint16_t*)x.data_ptr(), M, K, Kp, g, G, xp, xs, false);
  auto y = torch::empty({M, N}, x.options().dtype(at::kFloat));
  const uint8_t* cp = codes.data_ptr<uint8_t>();
  const float* sp = sc.data_ptr<float>();
  const float* zpp = zero ? zp.data_ptr<float>() : nullptr;
  const uint16_t* xpp = xp.data();
  const int64_t cstride = R * Kp / 2, sstride = R * G;
#define QR_INT4_CPG(MM, RS, CPG)                                                                         \
  over_tiles(tiles, M, N, y.data_ptr<float>(), [&](int64_t t, float* out) {                              \
    if (zero) int4_tile<MM, RS, CPG, true>(cp + t * cstride, sp + t * sstride, zpp + t * sstride, xpp, Kp, g, out); \
    else int4_tile<MM, RS, CPG, false>(cp + t * cstride, sp + t * sstride, nullptr, xpp, Kp, g, out);   \
  })
#define QR_INT4(MM, RS)                                                                                  \
  if (g == 32) QR_INT4_CPG(MM, RS, 1); else if (g == 64) QR_INT4_CPG(MM, RS, 2); else QR_INT4_CPG(MM, RS, 0)
  switch (M) {
    case 1: QR_INT4(1, 4); break;
    case 2: QR_INT4(2, 4); break;
    case 3: QR_INT4(3, 2); break;
    default: QR_INT4(4, 2); break;
  }
#undef QR_INT4
#undef QR_INT4_CPG
  return y;
}

torch::Tensor gemv_int8(torch::Tensor x, torch::Tensor codes, torch::Tensor sc, torch::Tensor zc, int64_t N,
                        int64_t K, int64_t g) {
  check(x, codes, sc, zc, K, g);
  const int64_t M = x.size(0), Kp = (K + 63) / 64 * 64, G = Kp / g, tiles = (N + R - 1) / R;
  TORCH_CHECK(g % 64 == 0 && K % g == 0, "int8: group a multiple of 64 dividing K");
  TORCH_CHECK(codes.numel() == tiles * R * Kp && sc.numel() == tiles * R * G, "int8: packed sizes");
  const bool zero = zc.numel() > 0;
  std::vector<uint16_t> xp;
  std::vector<float> xs;
  prep_x((const uint16_t*)x.data_ptr(), M, K, Kp, g, G, xp, xs, zero);
  std::vector<float> xf(M * Kp);
  for (int64_t i = 0; i < M * Kp; ++i) {
    uint32_t bits = uint32_t(xp[i]) << 16;
    std::memcpy(&xf[i], &bits, 4);
  }
  auto y = torch::empty({M, N}, x.options().dtype(at::kFloat));
  const int8_t* cp = (const int8_t*)codes.data_ptr();
  const float* sp = sc.data_ptr<float>();
  const float* zp = zero ? zc.data_ptr<float>() : nullptr;
  const float* xfp = xf.data();
  const float* xsp = xs.data();
  const int64_t cstride = R * Kp, sstride = R * G;
#define QR_INT8(MM)                                                                                      \
  over_tiles(tiles, M, N, y.data_ptr<float>(), [&](int64_t t, float* out) {                              \
    if (zero) int8_tile<MM, true>(cp + t * cstride, sp + t * sstride, zp + t * sstride, xfp, xsp, Kp, g, G, out); \
    else int8_tile<MM, false>(cp + t * cstride, sp + t * sstride, nullptr, xfp, xsp, Kp, g, G, out);     \
  })
  switch (M) {
    case 1: QR_INT8(1); break;
    case 2: QR_INT8(2); break;
    case 3: QR_INT8(3); break;
    default: QR_INT8(4); break;
  }
#undef QR_INT8
  return y;
}
"""

#: The functions :func:`torch.utils.cpp_extension.load_inline` binds.
FUNCTIONS = ["gemv_int4", "gemv_int8", "huge_empty"]

#: This CPU family's flags (Sapphire Rapids and later, Zen 4): AVX-512 F/BW/VL and BF16 dot products.
CFLAGS = ["-O3", "-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512bf16", "-mfma", "-fopenmp"]
