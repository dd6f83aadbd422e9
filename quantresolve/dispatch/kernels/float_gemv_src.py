"""C++ source of the packed float kernels (``float_gemv_cpu``; compiled lazily by :mod:`.float_gemv`): AVX2 + FMA + F16C.

Every kernel multiplies by exactly the weights the producer's dequantization gives, rounded to the compute
dtype, and sums in float32 — ``x @ dequantize()ᵀ`` up to float32 summation order. Layouts (built by
:mod:`.float_gemv`): output rows in tiles of ``R = 4`` (``N`` padded to a multiple of 4), ``K`` in blocks of
64 weights (padded; padded codes are 0 and meet zero activations), one sequential stream per tile.

**E2M1** (NVFP4, MXFP4): codes ``[N/4, K/64, 4, 32]`` bytes — byte ``i`` of 128-bit lane ``L`` of a (block,
row) holds weight ``32L + i`` in its low nibble and ``32L + 16 + i`` in its high nibble, so a lane's low
nibbles are one group of 16 (NVFP4: groups 0 and 2 of the block in lanes 0 and 1, the high nibbles groups 1
and 3) or half of one group of 32 (MXFP4: lane L = group L). Scales ``[N/4, K/64, 4, groups per block]`` bytes
(E4M3 for NVFP4, E8M0 for MXFP4), and a float32 per row: ModelOpt's ``weight_scale_2`` (multiplied) or
compressed-tensors' ``weight_global_scale`` (divided by, as the producer does), both pre-scaled by 2⁸ for
the E4M3 step below. Per (row, group) the effective scale ``s`` is computed as the producer computes it
(float32), and the weights are the 16-entry bf16 table ``T[c] = bf16(e2m1(c) · s)``. Since the E2M1
magnitudes are ``{0, ½, 1, 2, 4}`` and ``{1, 2, 4} · 1.5``, ``T`` needs only ``a = bf16(s)`` and
``b = bf16(1.5 s)``: ``[0, a/2, a, b, 2a, 2b, 4a, 4b]`` — scaling by a power of two is an exponent step on the
bf16 bits (exact away from the subnormal / overflow ends; a block whose ``a`` or ``b`` is near them, or zero,
builds its tables entry by entry instead). The table is split into a low-byte and a high-byte 16-entry table
(sign = high bit of the upper 8 entries) looked up with ``vpshufb``; bytes are interleaved into bf16 words and
widened to float32 by a shift / a mask, then FMA'd with ``x`` permuted once per call into the same order
(:func:`~quantresolve.dispatch.kernels.float_gemv.x_order`).

**E4M3** (FP8 per tensor / channel / block): codes ``[N/4, K/64, 4, 64]`` bytes; a float32 multiplier per
(``bn`` rows, ``bk`` columns) block (pre-scaled by 2⁸). Each byte becomes an fp16 bit pattern by shifts
(sign to bit 15, exponent and mantissa to bits 7–13) — exactly the E4M3 value times 2⁻⁸, subnormals
included — widened by ``vcvtph2ps``, multiplied by the block's multiplier (the product the producer
computes, in float32), rounded to the producer's intermediate dtype and to the compute dtype (integer
round-to-nearest-even for bf16, F16C for fp16), and FMA'd.

**Accumulation order** (the only difference from ``x @ dequantize()ᵀ`` in float64, bounded in the tests at
2e-6 of Σ|x·w|): per output and batch row, eight float32 lanes; block after block of 64 weights along K, each
weight's product with its ``x`` is FMA'd into lane ``j mod 8`` of the position ``j`` it has in the block's
decode order (E2M1: :func:`~quantresolve.dispatch.kernels.float_gemv.x_order`; E4M3: K order); at the end the
lanes are summed pairwise (``0+4, 1+5, 2+6, 3+7``, then ``+2``, then ``+1``). The row's result does not depend
on the batch it came in or the thread that computed it. Above 8 rows the tiled path multiplies the same
float32 weights with ``torch.mm`` (its own summation order).

Measured on a 2-core AMD EPYC (Zen 3, 3.2 GHz; one core, weights in L2): NVFP4 ≈ 0.10 ns per weight, of
which the lookups ≈ 0.05 and the per-(row, group) tables ≈ 0.035; a ``vpermps`` 8-entry float32 table with
a sign XOR per weight ≈ 0.14; FP8 ≈ 0.17 ns per weight (the per-element bf16 rounding ≈ 0.07 of it).
Zen 3 issues one 256-bit shuffle per cycle here, which is what the layout minimises.

    >>> "e2m1_gemv" in SOURCE and "e4m3_gemv" in SOURCE
    True
"""

from quantresolve.dispatch.kernels import native

SOURCE = r"""
#include <torch/extension.h>
#include <ATen/Parallel.h>
#include <immintrin.h>
#include <sys/mman.h>
#include <cstdlib>
#include <cstring>
#include <utility>
#include <vector>

namespace {

constexpr int R = 4;        // rows per tile
constexpr int KB = 64;      // weights per block
enum Rnd { NONE = 0, BF16 = 1, F16 = 2 };
enum Kind { NV = 0, MX = 1 };

template <int... I, class F> inline void sfor_(std::integer_sequence<int, I...>, F&& f) {
  (f(std::integral_constant<int, I>{}), ...);
}
template <int N, class F> inline void sfor(F&& f) { sfor_(std::make_integer_sequence<int, N>{}, f); }

// float32 -> bf16 round-to-nearest-even, kept as float32 bits with the low half zero
inline __m256i bf16_bits(__m256 v) {
  __m256i u = _mm256_castps_si256(v);
  const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
  u = _mm256_add_epi32(_mm256_add_epi32(u, _mm256_set1_epi32(0x7FFF)), lsb);
  return _mm256_and_si256(u, _mm256_set1_epi32((int)0xFFFF0000u));
}
inline uint32_t bf16_bits_scalar(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return (u + 0x7FFFu + ((u >> 16) & 1u)) & 0xFFFF0000u;
}

template <int RD> inline __m256 round_to(__m256 v) {
  if constexpr (RD == BF16) return _mm256_castsi256_ps(bf16_bits(v));
  else if constexpr (RD == F16) return _mm256_cvtph_ps(_mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  else return v;
}

// the low 8 bytes of b8, read as E4M3, times 2^-8: sign to bit 15, exponent and mantissa to bits 7-13 of an fp16
inline __m256 e4m3x8(__m128i b8) {
  __m128i w = _mm_unpacklo_epi8(_mm_setzero_si128(), b8);
  w = _mm_and_si128(_mm_srai_epi16(w, 1), _mm_set1_epi16((short)0xBF80));
  return _mm256_cvtph_ps(w);
}
inline float e4m3_scalar(uint8_t b) {  // the same value (times 2^-8) for one byte
  const uint16_t h = (uint16_t)(((b & 0x80) << 8) | ((b & 0x7F) << 7));
  return _cvtsh_ss(h);
}

template <int RS, int M> inline void zero(__m256 (&acc)[RS][M]) {
  for (int r = 0; r < RS; ++r)
    for (int m = 0; m < M; ++m) acc[r][m] = _mm256_setzero_ps();
}

inline float hsum(__m256 a) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

inline void prefetch(const void* p, int bytes, int ahead) {
  for (int o = 0; o < bytes; o += 64) _mm_prefetch((const char*)p + ahead + o, _MM_HINT_T0);
}

// ------------------------------------------------------------------------------------------------ E2M1

// Byte patterns building a lane's two 16-entry tables from its (a, b) pairs: bytes 0-3 of the lane hold
// the low-nibble group's pair (a_lo, a_hi, b_lo, b_hi), bytes 8-11 the high-nibble group's.
//   entry c (0..7) = 0, a/2, a, b, 2a, 2b, 4a, 4b; entries 8..15 the same, negative.
alignas(32) const int8_t PAT_LO[2][32] = {
  {-128, 0, 0, 2, 0, 2, 0, 2, -128, 0, 0, 2, 0, 2, 0, 2, -128, 0, 0, 2, 0, 2, 0, 2, -128, 0, 0, 2, 0, 2, 0, 2},
  {-128, 8, 8, 10, 8, 10, 8, 10, -128, 8, 8, 10, 8, 10, 8, 10, -128, 8, 8, 10, 8, 10, 8, 10, -128, 8, 8, 10, 8, 10, 8, 10}};
alignas(32) const int8_t PAT_HI[2][32] = {
  {-128, 1, 1, 3, 1, 3, 1, 3, -128, 1, 1, 3, 1, 3, 1, 3, -128, 1, 1, 3, 1, 3, 1, 3, -128, 1, 1, 3, 1, 3, 1, 3},
  {-128, 9, 9, 11, 9, 11, 9, 11, -128, 9, 9, 11, 9, 11, 9, 11, -128, 9, 9, 11, 9, 11, 9, 11, -128, 9, 9, 11, 9, 11, 9, 11}};
// ±128 on the bf16 word (a/2, 2a, 2b) flips bit 7 of the low byte and carries that bit into the high byte;
// +256 (4a, 4b) adds 1 to the high byte; the upper 8 entries add the sign (0x80) to the high byte.
alignas(32) const int8_t LO_XOR[32] = {0, -128, 0, 0, -128, -128, 0, 0, 0, -128, 0, 0, -128, -128, 0, 0,
                                       0, -128, 0, 0, -128, -128, 0, 0, 0, -128, 0, 0, -128, -128, 0, 0};
alignas(32) const int8_t HI_ADD[32] = {0, -1, 0, 0, 0, 0, 1, 1, -128, 127, -128, -128, -128, -128, -127, -127,
                                       0, -1, 0, 0, 0, 0, 1, 1, -128, 127, -128, -128, -128, -128, -127, -127};
alignas(32) const int8_t CARRY[32] = {0, 1, 0, 0, 1, 1, 0, 0, 0, 1, 0, 0, 1, 1, 0, 0,
                                      0, 1, 0, 0, 1, 1, 0, 0, 0, 1, 0, 0, 1, 1, 0, 0};
const float E2M1_MAG[8] = {0.f, 0.5f, 1.f, 1.5f, 2.f, 3.f, 4.f, 6.f};

inline __m256i ld(const int8_t* p) { return _mm256_load_si256((const __m256i*)p); }

struct Tables { __m256i lo_l, lo_h, hi_l, hi_h; };  // (low-nibble groups, high-nibble groups) x (low, high byte)

// tables from one row's pairs (fast path)
inline Tables tables_from_pairs(__m256i abr) {
  Tables t;
  const __m256i lx = _mm256_shuffle_epi8(abr, ld(PAT_LO[0])), ly = _mm256_shuffle_epi8(abr, ld(PAT_LO[1]));
  const __m256i carry = ld(CARRY), lox = ld(LO_XOR), hia = ld(HI_ADD);
  const __m256i cx = _mm256_and_si256(_mm256_srli_epi16(lx, 7), carry);
  const __m256i cy = _mm256_and_si256(_mm256_srli_epi16(ly, 7), carry);
  t.lo_l = _mm256_xor_si256(lx, lox);
  t.hi_l = _mm256_xor_si256(ly, lox);
  t.lo_h = _mm256_add_epi8(_mm256_add_epi8(_mm256_shuffle_epi8(abr, ld(PAT_HI[0])), hia), cx);
  t.hi_h = _mm256_add_epi8(_mm256_add_epi8(_mm256_shuffle_epi8(abr, ld(PAT_HI[1])), hia), cy);
  return t;
}

// The effective scale of one (row, group) as the producer computes it (float32), scalar.
template <int KIND, bool DIV> inline float group_scale(uint8_t code, float rp) {
  if constexpr (KIND == MX) {
    const uint32_t bits = code == 0 ? 0x00400000u : (uint32_t)code << 23;  // 2^(e - 127), e = 0 subnormal
    float s;
    std::memcpy(&s, &bits, 4);
    return s;
  } else {
    const float e = e4m3_scalar(code);
    return DIV ? e / rp : e * rp;
  }
}

// tables entry by entry (slow path: a zero, tiny or huge scale in the block)
template <int KIND, bool DIV> inline void tables_scalar(const uint8_t* sb, const float* rp, int r, Tables& t) {
  constexpr int GPB = KIND == NV ? 4 : 2;
  alignas(32) uint8_t buf[4][32];
  for (int L = 0; L < 2; ++L)
    for (int h = 0; h < 2; ++h) {
      const int g = KIND == NV ? 2 * L + h : L;
      const float s = group_scale<KIND, DIV>(sb[r * GPB + g], rp[r]);
      for (int c = 0; c < 8; ++c) {
        const uint32_t w = bf16_bits_scalar(E2M1_MAG[c] * s) >> 16;
        buf[2 * h][16 * L + c] = buf[2 * h][16 * L + c + 8] = (uint8_t)(w & 0xFF);
        buf[2 * h + 1][16 * L + c] = (uint8_t)(w >> 8);
        buf[2 * h + 1][16 * L + c + 8] = (uint8_t)((w >> 8) ^ 0x80);
      }
    }
  t.lo_l = _mm256_load_si256((const __m256i*)buf[0]);
  t.lo_h = _mm256_load_si256((const __m256i*)buf[1]);
  t.hi_l = _mm256_load_si256((const __m256i*)buf[2]);
  t.hi_h = _mm256_load_si256((const __m256i*)buf[3]);
}

// Per block: each row's (a, b) pairs arranged for tables_from_pairs, or false when the block needs the slow path.
// A tile's row factors as block_pairs reads them: rows (2h, 2h + 1) each broadcast over 4 lanes (NVFP4 only).
struct RowFactors { __m256 p[2]; };
inline RowFactors row_factors(const float* rp) {
  RowFactors f;
  for (int h = 0; h < 2; ++h)
    f.p[h] = _mm256_setr_ps(rp[2 * h], rp[2 * h], rp[2 * h], rp[2 * h],
                            rp[2 * h + 1], rp[2 * h + 1], rp[2 * h + 1], rp[2 * h + 1]);
  return f;
}

template <int KIND, bool DIV> inline bool block_pairs(const uint8_t* sb, const RowFactors& rf, __m256i* abr) {
  __m256i bad = _mm256_setzero_si256();
  if constexpr (KIND == NV) {
    const __m256 k15 = _mm256_set1_ps(1.5f);
    for (int h = 0; h < 2; ++h) {  // rows 2h, 2h + 1
      const __m256 p = rf.p[h];
      const __m256 e = e4m3x8(_mm_loadl_epi64((const __m128i*)(sb + 8 * h)));
      const __m256 s = DIV ? _mm256_div_ps(e, p) : _mm256_mul_ps(e, p);
      const __m256i a = bf16_bits(s), b = bf16_bits(_mm256_mul_ps(s, k15));
      const __m256i ea = _mm256_and_si256(_mm256_srli_epi32(a, 23), _mm256_set1_epi32(0xFF));
      const __m256i eb = _mm256_and_si256(_mm256_srli_epi32(b, 23), _mm256_set1_epi32(0xFF));
      const __m256i hb = _mm256_or_si256(_mm256_cmpgt_epi32(_mm256_set1_epi32(2), ea),
                                         _mm256_cmpgt_epi32(eb, _mm256_set1_epi32(252)));
      bad = _mm256_or_si256(bad, hb);
      const __m256i pair = _mm256_or_si256(b, _mm256_srli_epi32(a, 16));
      abr[2 * h] = _mm256_permutevar8x32_epi32(pair, _mm256_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3));
      abr[2 * h + 1] = _mm256_permutevar8x32_epi32(pair, _mm256_setr_epi32(4, 4, 5, 5, 6, 6, 7, 7));
    }
  } else {
    const __m256i e = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i*)sb));  // [r0g0 r0g1 r1g0 ...]
    bad = _mm256_or_si256(_mm256_cmpgt_epi32(_mm256_set1_epi32(2), e), _mm256_cmpgt_epi32(e, _mm256_set1_epi32(252)));
    const __m256i a = _mm256_slli_epi32(e, 7);                                            // bf16 of 2^(e-127)
    const __m256i pair = _mm256_or_si256(_mm256_slli_epi32(_mm256_or_si256(a, _mm256_set1_epi32(0x40)), 16), a);
    for (int r = 0; r < R; ++r)
      abr[r] = _mm256_permutevar8x32_epi32(pair, _mm256_setr_epi32(2 * r, 2 * r, 2 * r, 2 * r,
                                                                   2 * r + 1, 2 * r + 1, 2 * r + 1, 2 * r + 1));
  }
  return _mm256_testz_si256(bad, bad);
}

// One (block, row): the 64 weights as 8 float32 vectors, in the order of x_order (vector 2q + h).
inline void e2m1_decode(const uint8_t* v32, const Tables& t, __m256 f[8]) {
  const __m256i nib = _mm256_set1_epi8(0x0F);
  const __m256i v = _mm256_loadu_si256((const __m256i*)v32);
  const __m256i lo = _mm256_and_si256(v, nib), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), nib);
  const __m256i wl0 = _mm256_shuffle_epi8(t.lo_l, lo), wh0 = _mm256_shuffle_epi8(t.lo_h, lo);
  const __m256i wl1 = _mm256_shuffle_epi8(t.hi_l, hi), wh1 = _mm256_shuffle_epi8(t.hi_h, hi);
  const __m256i words[4] = {_mm256_unpacklo_epi8(wl0, wh0), _mm256_unpackhi_epi8(wl0, wh0),
                            _mm256_unpacklo_epi8(wl1, wh1), _mm256_unpackhi_epi8(wl1, wh1)};
  const __m256i high = _mm256_set1_epi32((int)0xFFFF0000u);
  for (int q = 0; q < 4; ++q) {
    f[2 * q] = _mm256_castsi256_ps(_mm256_slli_epi32(words[q], 16));
    f[2 * q + 1] = _mm256_castsi256_ps(_mm256_and_si256(words[q], high));
  }
}

constexpr int PF_E2M1 = 4096;

// One tile (R rows), RS rows at a time (RS x M accumulators live); xp: M rows of permuted float32 x; out[m * R + r].
template <int M, int RS, int KIND, bool DIV>
void e2m1_tile(const uint8_t* codes, const uint8_t* sc, const float* rp, const float* xp, int64_t Kp, float* out) {
  constexpr int GPB = KIND == NV ? 4 : 2;
  const int64_t nb = Kp / KB;
  const RowFactors rf = row_factors(rp);  // constant along the row: once per tile, not per block
  for (int r0 = 0; r0 < R; r0 += RS) {
    __m256 acc[RS][M];
    zero(acc);
    for (int64_t b = 0; b < nb; ++b) {
      const uint8_t* cb = codes + b * R * 32;
      const uint8_t* sb = sc + b * R * GPB;
      if (r0 == 0) {
        prefetch(cb, R * 32, PF_E2M1);
        prefetch(sb, R * GPB, PF_E2M1 / 8);
      }
      __m256i abr[R];
      const bool fast = block_pairs<KIND, DIV>(sb, rf, abr);
      const float* xb = xp + b * KB;
      for (int r = 0; r < RS; ++r) {
        Tables t;
        if (fast) t = tables_from_pairs(abr[r0 + r]);
        else tables_scalar<KIND, DIV>(sb, rp, r0 + r, t);
        __m256 f[8];
        e2m1_decode(cb + (r0 + r) * 32, t, f);
        for (int i = 0; i < 8; ++i)
          for (int m = 0; m < M; ++m) acc[r][m] = _mm256_fmadd_ps(f[i], _mm256_loadu_ps(xb + m * Kp + 8 * i), acc[r][m]);
      }
    }
    for (int r = 0; r < RS; ++r)
      for (int m = 0; m < M; ++m) out[m * R + r0 + r] = hsum(acc[r][m]);
  }
}

// rows [t0 * R, t1 * R) of the dequantized weight into buf [(t1 - t0) * R, Kp], columns in x_order
template <int KIND, bool DIV>
void e2m1_rows(const uint8_t* codes, const uint8_t* sc, const float* rp, int64_t Kp, int64_t t0, int64_t t1, float* buf) {
  constexpr int GPB = KIND == NV ? 4 : 2;
  const int64_t nb = Kp / KB;
  at::parallel_for(t0, t1, 4, [&](int64_t a, int64_t z) {
    for (int64_t t = a; t < z; ++t) {
      const uint8_t* ct = codes + t * R * Kp / 2;
      const uint8_t* st = sc + t * nb * R * GPB;
      const float* rt = rp + t * R;
      const RowFactors rf = row_factors(rt);
      float* bt = buf + (t - t0) * R * Kp;
      for (int64_t b = 0; b < nb; ++b) {
        __m256i abr[R];
        const bool fast = block_pairs<KIND, DIV>(st + b * R * GPB, rf, abr);
        for (int r = 0; r < R; ++r) {
          Tables tb;
          if (fast) tb = tables_from_pairs(abr[r]);
          else tables_scalar<KIND, DIV>(st + b * R * GPB, rt, r, tb);
          __m256 f[8];
          e2m1_decode(ct + (b * R + r) * 32, tb, f);
          for (int i = 0; i < 8; ++i) _mm256_storeu_ps(bt + r * Kp + b * KB + 8 * i, f[i]);
        }
      }
    }
  });
}

// ------------------------------------------------------------------------------------------------ E4M3

constexpr int PF_E4M3 = 8192;

// Multipliers of one tile: per row, a pointer to its row of the [ceil(N/bn), KBLK] grid, and the block width bk.
struct Mult { const float* row[R]; int64_t bk; };

template <int R1, int R2> inline __m256 e4m3_weights(__m128i bytes8, __m256 m) {
  return round_to<R2>(round_to<R1>(_mm256_mul_ps(e4m3x8(bytes8), m)));
}

template <int M, int RS, int R1, int R2>
void e4m3_tile(const uint8_t* codes, const Mult& mu, const float* x, int64_t Kp, float* out) {
  const int64_t nb = Kp / KB;
  for (int r0 = 0; r0 < R; r0 += RS) {
    __m256 acc[RS][M];
    zero(acc);
    for (int64_t b = 0; b < nb; ++b) {
      const uint8_t* cb = codes + b * R * KB;
      if (r0 == 0) prefetch(cb, R * KB, PF_E4M3);
      const int64_t kblk = b * KB / mu.bk;
      for (int r = 0; r < RS; ++r) {
        const __m256 mr = _mm256_broadcast_ss(mu.row[r0 + r] + kblk);
        for (int h = 0; h < 4; ++h) {
          const __m128i b16 = _mm_loadu_si128((const __m128i*)(cb + (r0 + r) * KB + 16 * h));
          const __m256 f0 = e4m3_weights<R1, R2>(b16, mr);
          const __m256 f1 = e4m3_weights<R1, R2>(_mm_unpackhi_epi64(b16, b16), mr);
          const float* xb = x + b * KB + 16 * h;
          for (int m = 0; m < M; ++m) {
            acc[r][m] = _mm256_fmadd_ps(f0, _mm256_loadu_ps(xb + m * Kp), acc[r][m]);
            acc[r][m] = _mm256_fmadd_ps(f1, _mm256_loadu_ps(xb + m * Kp + 8), acc[r][m]);
          }
        }
      }
    }
    for (int r = 0; r < RS; ++r)
      for (int m = 0; m < M; ++m) out[m * R + r0 + r] = hsum(acc[r][m]);
  }
}

inline Mult tile_mult(const float* mult, int64_t t, int64_t N, int64_t bn, int64_t kblocks, int64_t bk) {
  Mult mu;
  mu.bk = bk;
  for (int r = 0; r < R; ++r) {
    const int64_t row = std::min<int64_t>(t * R + r, N - 1);  // padded rows reuse the last row's multipliers
    mu.row[r] = mult + (row / bn) * kblocks;
  }
  return mu;
}

template <int R1, int R2>
void e4m3_rows(const uint8_t* codes, const float* mult, int64_t N, int64_t Kp, int64_t bn, int64_t kblocks, int64_t bk,
               int64_t t0, int64_t t1, float* buf) {
  const int64_t nb = Kp / KB;
  at::parallel_for(t0, t1, 4, [&](int64_t a, int64_t z) {
    for (int64_t t = a; t < z; ++t) {
      const Mult mu = tile_mult(mult, t, N, bn, kblocks, bk);
      const uint8_t* ct = codes + t * R * Kp;
      float* bt = buf + (t - t0) * R * Kp;
      for (int64_t b = 0; b < nb; ++b) {
        const int64_t kblk = b * KB / bk;
        for (int r = 0; r < R; ++r) {
          const __m256 mr = _mm256_broadcast_ss(mu.row[r] + kblk);
          for (int h = 0; h < 4; ++h) {
            const __m128i b16 = _mm_loadu_si128((const __m128i*)(ct + (b * R + r) * KB + 16 * h));
            _mm256_storeu_ps(bt + r * Kp + b * KB + 16 * h, e4m3_weights<R1, R2>(b16, mr));
            _mm256_storeu_ps(bt + r * Kp + b * KB + 16 * h + 8, e4m3_weights<R1, R2>(_mm_unpackhi_epi64(b16, b16), mr));
          }
        }
      }
    }
  });
}

// ------------------------------------------------------------------------------------------------ driver

// x [M, K] (any float dtype) -> float32 [M, Kp], zero-padded; E2M1 permutes each block into x_order:
// xp[16q + 8h + 4L + d] = x[32L + 8q + 2d + h] (the order e2m1_decode yields the weights in).
torch::Tensor prep_x(const torch::Tensor& x, int64_t Kp, bool e2m1) {
  const torch::Tensor xf = x.to(torch::kFloat).contiguous();
  const int64_t M = xf.size(0), K = xf.size(1);
  auto out = torch::zeros({M, Kp}, xf.options());
  const float* src = xf.data_ptr<float>();
  float* dst = out.data_ptr<float>();
  for (int64_t m = 0; m < M; ++m) {
    const float* s = src + m * K;
    float* d = dst + m * Kp;
    if (!e2m1) {
      std::memcpy(d, s, K * sizeof(float));
      continue;
    }
    for (int64_t b = 0; b < Kp / KB; ++b)
      for (int q = 0; q < 4; ++q)
        for (int h = 0; h < 2; ++h)
          for (int L = 0; L < 2; ++L)
            for (int dd = 0; dd < 4; ++dd) {
              const int64_t k = b * KB + 32 * L + 8 * q + 2 * dd + h;
              d[b * KB + 16 * q + 8 * h + 4 * L + dd] = k < K ? s[k] : 0.f;
            }
  }
  return out;
}

void check_x(const torch::Tensor& x, int64_t K) {
  TORCH_CHECK(x.dim() == 2 && x.size(1) == K && x.is_floating_point(), "x: [M, K] floating point");
}

template <typename Tile>
torch::Tensor run_tiles(int64_t M, int64_t N, int64_t tiles, const torch::Tensor& xp, Tile tile) {
  auto y = torch::empty({M, N}, xp.options());
  float* yp = y.data_ptr<float>();
  const int64_t Kp = xp.size(1);
  for (int64_t m0 = 0; m0 < M; m0 += 4) {
    const int64_t mm = std::min<int64_t>(4, M - m0);
    const float* xm = xp.data_ptr<float>() + m0 * Kp;
    at::parallel_for(0, tiles, 8, [&](int64_t a, int64_t z) {
      float out[4 * R];
      for (int64_t t = a; t < z; ++t) {
        tile(mm, xm, t, out);
        for (int64_t m = 0; m < mm; ++m)
          for (int r = 0; r < R; ++r)
            if (t * R + r < N) yp[(m0 + m) * N + t * R + r] = out[m * R + r];
      }
    });
  }
  return y;
}

}  // namespace

""" + native.HUGE_EMPTY + r"""

// y = x @ W^T (float32 [M, N]) for E2M1 weights; kind 0 = NVFP4 (E4M3 group-16 scales, rp multiplies or with
// div divides), 1 = MXFP4 (E8M0 group-32 scales). rp: float32 [N padded to 4].
torch::Tensor e2m1_gemv(torch::Tensor x, torch::Tensor codes, torch::Tensor scales, torch::Tensor rp, int64_t N,
                        int64_t K, int64_t kind, bool div) {
  check_x(x, K);
  const int64_t Kp = (K + KB - 1) / KB * KB, tiles = (N + R - 1) / R, gpb = kind == NV ? 4 : 2;
  TORCH_CHECK(codes.is_contiguous() && codes.numel() == tiles * R * Kp / 2, "e2m1: packed codes size");
  TORCH_CHECK(scales.is_contiguous() && scales.numel() == tiles * R * (Kp / KB) * gpb, "e2m1: packed scales size");
  TORCH_CHECK(rp.is_contiguous() && rp.scalar_type() == at::kFloat && rp.numel() == tiles * R, "e2m1: row scales");
  const torch::Tensor xp = prep_x(x, Kp, true);
  const uint8_t* cp = codes.data_ptr<uint8_t>();
  const uint8_t* sp = scales.data_ptr<uint8_t>();
  const float* rpp = rp.data_ptr<float>();
  const int64_t cs = R * Kp / 2, ss = R * (Kp / KB) * gpb;
  return run_tiles(x.size(0), N, tiles, xp, [&](int64_t mm, const float* xm, int64_t t, float* out) {
#define QR_E2M1(MM, RS)                                                                                            \
    if (kind == MX) e2m1_tile<MM, RS, MX, false>(cp + t * cs, sp + t * ss, rpp + t * R, xm, Kp, out);             \
    else if (div) e2m1_tile<MM, RS, NV, true>(cp + t * cs, sp + t * ss, rpp + t * R, xm, Kp, out);                \
    else e2m1_tile<MM, RS, NV, false>(cp + t * cs, sp + t * ss, rpp + t * R, xm, Kp, out);
    switch (mm) {
      case 1: QR_E2M1(1, 4) break;
      case 2: QR_E2M1(2, 4) break;
      case 3: QR_E2M1(3, 2) break;
      default: QR_E2M1(4, 2) break;
    }
#undef QR_E2M1
  });
}

// rows [row0, row0 + rows) (multiples of 4) of the E2M1 weight as float32 into buf [>= rows, Kp], columns in x_order
void e2m1_dequant(torch::Tensor codes, torch::Tensor scales, torch::Tensor rp, int64_t K, int64_t kind, bool div,
                  int64_t row0, int64_t rows, torch::Tensor buf) {
  const int64_t Kp = (K + KB - 1) / KB * KB, gpb = kind == NV ? 4 : 2;
  TORCH_CHECK(row0 % R == 0 && rows % R == 0 && buf.is_contiguous() && buf.size(1) == Kp && buf.size(0) >= rows, "e2m1_dequant: rows");
  TORCH_CHECK(codes.numel() >= (row0 + rows) * Kp / 2 && scales.numel() >= (row0 + rows) * (Kp / KB) * gpb, "e2m1_dequant: sizes");
  const uint8_t* cp = codes.data_ptr<uint8_t>();
  const uint8_t* sp = scales.data_ptr<uint8_t>();
  const float* rpp = rp.data_ptr<float>();
  float* bp = buf.data_ptr<float>();
  const int64_t t0 = row0 / R, t1 = (row0 + rows) / R;
  if (kind == MX) e2m1_rows<MX, false>(cp, sp, rpp, Kp, t0, t1, bp);
  else if (div) e2m1_rows<NV, true>(cp, sp, rpp, Kp, t0, t1, bp);
  else e2m1_rows<NV, false>(cp, sp, rpp, Kp, t0, t1, bp);
}

// x [M, K] as the E2M1 kernels read it: float32 [M, Kp] in x_order (for the tiled GEMM of large batches)
torch::Tensor e2m1_x(torch::Tensor x, int64_t K) {
  check_x(x, K);
  return prep_x(x, (K + KB - 1) / KB * KB, true);
}

// y = x @ W^T for E4M3 weights; mult float32 [ceil(N/bn), kblocks] (times 2^8), block bn x bk (bk % 64 == 0
// or bk >= K); r1 / r2: the rounding after the product (the producer's intermediate dtype), then to the
// compute dtype (0 none, 1 bf16, 2 fp16).
#define QR_ROUNDS(F, ...)                                                                                         \
  switch (r1 * 3 + r2) {                                                                                          \
    case 0: F(NONE, NONE, __VA_ARGS__) break; case 1: F(NONE, BF16, __VA_ARGS__) break;                           \
    case 2: F(NONE, F16, __VA_ARGS__) break; case 3: F(BF16, NONE, __VA_ARGS__) break;                            \
    case 4: F(BF16, BF16, __VA_ARGS__) break; case 5: F(BF16, F16, __VA_ARGS__) break;                            \
    case 6: F(F16, NONE, __VA_ARGS__) break; case 7: F(F16, BF16, __VA_ARGS__) break;                             \
    default: F(F16, F16, __VA_ARGS__) break;                                                                      \
  }

torch::Tensor e4m3_gemv(torch::Tensor x, torch::Tensor codes, torch::Tensor mult, int64_t N, int64_t K, int64_t bn,
                        int64_t bk, int64_t r1, int64_t r2) {
  check_x(x, K);
  const int64_t Kp = (K + KB - 1) / KB * KB, tiles = (N + R - 1) / R;
  const int64_t kblocks = (K + bk - 1) / bk;
  TORCH_CHECK(codes.is_contiguous() && codes.numel() == tiles * R * Kp, "e4m3: packed codes size");
  TORCH_CHECK(bk % KB == 0 || bk >= K, "e4m3: column blocks of a multiple of 64");
  TORCH_CHECK(mult.is_contiguous() && mult.scalar_type() == at::kFloat && mult.numel() == ((N + bn - 1) / bn) * kblocks, "e4m3: multipliers");
  TORCH_CHECK(r1 >= 0 && r1 <= 2 && r2 >= 0 && r2 <= 2, "e4m3: rounding");
  const torch::Tensor xp = prep_x(x, Kp, false);
  const uint8_t* cp = codes.data_ptr<uint8_t>();
  const float* mp = mult.data_ptr<float>();
  const int64_t ebk = bk >= K ? Kp : bk;
  return run_tiles(x.size(0), N, tiles, xp, [&](int64_t mm, const float* xm, int64_t t, float* out) {
    const Mult mu = tile_mult(mp, t, N, bn, kblocks, ebk);
#define QR_E4M3_M(A, B, MM, RS) e4m3_tile<MM, RS, A, B>(cp + t * R * Kp, mu, xm, Kp, out);
#define QR_E4M3(A, B, _)                                                                                          \
    switch (mm) {                                                                                                 \
      case 1: QR_E4M3_M(A, B, 1, 4) break;                                                                        \
      case 2: QR_E4M3_M(A, B, 2, 4) break;                                                                        \
      case 3: QR_E4M3_M(A, B, 3, 2) break;                                                                        \
      default: QR_E4M3_M(A, B, 4, 2) break;                                                                       \
    }
    QR_ROUNDS(QR_E4M3, 0)
#undef QR_E4M3
#undef QR_E4M3_M
  });
}

void e4m3_dequant(torch::Tensor codes, torch::Tensor mult, int64_t N, int64_t K, int64_t bn, int64_t bk, int64_t r1,
                  int64_t r2, int64_t row0, int64_t rows, torch::Tensor buf) {
  const int64_t Kp = (K + KB - 1) / KB * KB, kblocks = (K + bk - 1) / bk, ebk = bk >= K ? Kp : bk;
  TORCH_CHECK(row0 % R == 0 && rows % R == 0 && buf.is_contiguous() && buf.size(1) == Kp && buf.size(0) >= rows, "e4m3_dequant: rows");
  TORCH_CHECK(codes.numel() >= (row0 + rows) * Kp, "e4m3_dequant: sizes");
  const uint8_t* cp = codes.data_ptr<uint8_t>();
  const float* mp = mult.data_ptr<float>();
  float* bp = buf.data_ptr<float>();
  const int64_t t0 = row0 / R, t1 = (row0 + rows) / R;
#define QR_E4M3_ROWS(A, B, _) e4m3_rows<A, B>(cp, mp, N, Kp, bn, kblocks, ebk, t0, t1, bp);
  QR_ROUNDS(QR_E4M3_ROWS, 0)
#undef QR_E4M3_ROWS
}
#undef QR_ROUNDS
"""

#: The functions :func:`torch.utils.cpp_extension.load_inline` binds.
FUNCTIONS = ["e2m1_gemv", "e2m1_dequant", "e2m1_x", "e4m3_gemv", "e4m3_dequant", "huge_empty"]

#: Every x86-64 CPU with AVX2 has FMA and F16C in practice (Haswell, Zen and later); the kernels need all three.
CFLAGS = ["-O3", "-mavx2", "-mfma", "-mf16c", "-fopenmp", "-std=c++17"]
