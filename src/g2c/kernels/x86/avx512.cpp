// AVX-512 kernel table (F, BW, VL, VNNI; BF16 where the CPU has it). Compiled with its own flags and
// namespace; starts from the ref table and overrides the weight types it implements.
//
// Activations: integer types dot against int8 activations as llama.cpp does (Q8_0 for Q4_0/Q5_0/Q8_0,
// Q8_K for the K-quants) because on two cores the quantized decode is compute-bound and an int8 dot
// (vpdpbusd / vpmaddubsw) does 32-64 multiply-adds per instruction; float weights keep f32 activations
// (decode is bandwidth-bound there and f32 keeps the reference's accuracy).
//
// Row blocking: every product kernel computes kRows weight rows against one activation row at a time,
// so each activation block is loaded once for kRows rows. Each row keeps its own accumulators and
// the same operation order whatever kRows is, so vec_dot, matvec and matmul agree bit for bit.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

#include "g2c/core/cpu.hpp"
#include "g2c/kernels/dcheck.hpp"
#include "g2c/kernels/kernels.hpp"
#include "g2c/kernels/ref/ref.hpp"
#include "g2c/quant/blocks.hpp"
#include "g2c/quant/quant.hpp"

// Software prefetch distance for decode, in bytes ahead of the row being read (Q4_0, Q4_K, Q6_K rows):
// prefetching 2 KiB ahead measured +15-20% tg on tinyllama-1.1b Q4_0 (2 threads) over the hardware
// prefetcher alone; on F16/F32/Q8_0 rows (one prefetch per 32-64 bytes) it measured slower.
#ifndef G2C_PF_DIST
#define G2C_PF_DIST 2048
#endif
namespace g2c::kernels::avx512 {
// Defined in x86/avx512_attention.cpp (same flags): attention over the KV cache, softmax, the F16
// KV store and the Q8_0 activation quantizer.
namespace detail {
void softmax(float* x, std::int64_t n);
void attend_f32(const float* q, const void* k, const void* v, std::size_t row_stride, std::int64_t n_kv,
                std::int64_t head_dim, float scale, float* scratch, float* out);
void attend_f16(const float* q, const void* k, const void* v, std::size_t row_stride, std::int64_t n_kv,
                std::int64_t head_dim, float scale, float* scratch, float* out);
void kv_store_f16(const float* x, void* dst, std::int64_t n);
extern const std::array<AttendMultiFn, 2> kAttendMulti;
std::size_t attend_multi_scratch(std::int64_t n_q, std::int64_t head_dim, std::int64_t n_kv_max);
void q8_0_from_float(const float* x, void* y, std::int64_t n);
// Defined in x86/avx512_attention.cpp too: elementwise and row operations.
void rmsnorm(const float* x, const float* w, float* y, std::int64_t n, float eps);
void add(const float* a, const float* b, float* y, std::int64_t n);
void silu(const float* x, float* y, std::int64_t n);
void swiglu(const float* gate, const float* up, float* y, std::int64_t n);
// Defined in x86/avx512_vbmi.cpp (installed when the CPU has AVX512_VBMI): Q4_0 decode, 4 blocks a step.
void q4_0_matvec_vbmi(std::int64_t n, const void* w, std::size_t rb, const void* x, float* y, std::int64_t r0,
                      std::int64_t r1);
float q4_0_vec_dot_vbmi(std::int64_t n, const void* w, const void* x);
// Defined in x86/avx512_gemm.cpp: prefill over packed 16-row panels; returns the rows it did.
std::int64_t matmul_panels(GgmlType type, std::int64_t n, const void* w, std::size_t rb, const void* x, std::size_t xs,
                           std::int64_t n_tok, float* y, std::int64_t ldy, std::int64_t r0, std::int64_t r1);
}  // namespace detail

namespace {

using quant::BlockQ4_0;
using quant::BlockQ4_K;
using quant::BlockQ6_K;
using quant::BlockQ8_0;
using quant::BlockQ8_K;

// Rows per kernel call. Decode (matvec) reads each weight row once, front to back: one row at a time
// measured 2-3x faster than interleaving 2-4 rows on Zen4 (llama-110m tg, 1 thread: F16 119 vs 32
// tok/s, Q8_0 178 vs 42), the prefetcher streams one sequential run best. Prefill (matmul) keeps a
// 4-row tile so each activation row is loaded once per 4 weight rows.
constexpr int kRows = 4;

// F16C conversion rather than the shared inline table lookup: no inline function from a shared header
// is compiled under this file's flags.
inline float h2f(std::uint16_t h) { return _cvtsh_ss(h); }

inline float hsum8(__m256 v) {
  __m128 lo = _mm256_castps256_ps128(v);
  __m128 hi = _mm256_extractf128_ps(v, 1);
  lo = _mm_add_ps(lo, hi);
  lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
  lo = _mm_add_ss(lo, _mm_movehdup_ps(lo));
  return _mm_cvtss_f32(lo);
}
inline int hsum8i_512(__m256i v) {
  __m128i m = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  m = _mm_add_epi32(m, _mm_shuffle_epi32(m, 0x4e));
  m = _mm_add_epi32(m, _mm_shuffle_epi32(m, 0xb1));
  return _mm_cvtsi128_si32(m);
}
inline float hsum16(__m512 v) {
  return hsum8(
      _mm256_add_ps(_mm512_castps512_ps256(v), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1))));
}

// ---- float weights x f32 activations ----------------------------------------------------------
// Weights are widened 16 at a time; n is any length (masked tail).

template <int NR>
inline void dot_f32(std::int64_t n, const std::uint8_t* w, std::size_t rb, const float* x, float* out) {
  __m512 acc[NR];
  for (int r = 0; r < NR; ++r) acc[r] = _mm512_setzero_ps();
  std::int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    __m512 xv = _mm512_loadu_ps(x + i);
    for (int r = 0; r < NR; ++r) {
      acc[r] = _mm512_fmadd_ps(_mm512_loadu_ps(reinterpret_cast<const float*>(w + r * rb) + i), xv, acc[r]);
    }
  }
  if (i < n) {
    __mmask16 m = static_cast<__mmask16>((1u << (n - i)) - 1);
    __m512 xv = _mm512_maskz_loadu_ps(m, x + i);
    for (int r = 0; r < NR; ++r)
      acc[r] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, reinterpret_cast<const float*>(w + r * rb) + i), xv, acc[r]);
  }
  for (int r = 0; r < NR; ++r) out[r] = hsum16(acc[r]);
}

template <int NR>
inline void dot_f16(std::int64_t n, const std::uint8_t* w, std::size_t rb, const float* x, float* out) {
  __m512 acc[NR];
  for (int r = 0; r < NR; ++r) acc[r] = _mm512_setzero_ps();
  std::int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    __m512 xv = _mm512_loadu_ps(x + i);
    for (int r = 0; r < NR; ++r) {
      __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + r * rb + 2 * i));
      acc[r] = _mm512_fmadd_ps(_mm512_cvtph_ps(h), xv, acc[r]);
    }
  }
  if (i < n) {
    __mmask16 m = static_cast<__mmask16>((1u << (n - i)) - 1);
    __m512 xv = _mm512_maskz_loadu_ps(m, x + i);
    for (int r = 0; r < NR; ++r) {
      __m256i h = _mm256_maskz_loadu_epi16(m, w + r * rb + 2 * i);
      acc[r] = _mm512_fmadd_ps(_mm512_cvtph_ps(h), xv, acc[r]);
    }
  }
  for (int r = 0; r < NR; ++r) out[r] = hsum16(acc[r]);
}

template <int NR>
inline void dot_bf16(std::int64_t n, const std::uint8_t* w, std::size_t rb, const float* x, float* out) {
  __m512 acc[NR];
  for (int r = 0; r < NR; ++r) acc[r] = _mm512_setzero_ps();
  std::int64_t i = 0;
  auto widen = [](__m256i h) { return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16)); };
  for (; i + 16 <= n; i += 16) {
    __m512 xv = _mm512_loadu_ps(x + i);
    for (int r = 0; r < NR; ++r)
      acc[r] =
          _mm512_fmadd_ps(widen(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + r * rb + 2 * i))), xv, acc[r]);
  }
  if (i < n) {
    __mmask16 m = static_cast<__mmask16>((1u << (n - i)) - 1);
    __m512 xv = _mm512_maskz_loadu_ps(m, x + i);
    for (int r = 0; r < NR; ++r)
      acc[r] = _mm512_fmadd_ps(widen(_mm256_maskz_loadu_epi16(m, w + r * rb + 2 * i)), xv, acc[r]);
  }
  for (int r = 0; r < NR; ++r) out[r] = hsum16(acc[r]);
}

// ---- Q8_0 / Q4_0 weights x Q8_0 activations ---------------------------------------------------
// 32 int8 x int8 products summed into 8 int32 lanes with one VNNI instruction: |w| (unsigned) times
// x with w's sign applied (Q8_0 codes are in -127..127, so negation never overflows).

inline __m256i dot_s8(__m256i w, __m256i x) {
  return _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_abs_epi8(w), _mm256_sign_epi8(x, w));
}

template <int NR>
inline void dot_q8_0(std::int64_t n, const std::uint8_t* w, std::size_t rb, const void* xv, float* out) {
  const auto* x = static_cast<const BlockQ8_0*>(xv);
  const std::int64_t nb = n / 32;
  __m256 acc[NR];
  for (int r = 0; r < NR; ++r) acc[r] = _mm256_setzero_ps();
  for (std::int64_t ib = 0; ib < nb; ++ib) {
    const __m256i xq = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[ib].qs));
    const float dx = h2f(x[ib].d);
    for (int r = 0; r < NR; ++r) {
      const auto* b = reinterpret_cast<const BlockQ8_0*>(w + r * rb) + ib;
      __m256i d = dot_s8(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b->qs)), xq);
      acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(d), _mm256_set1_ps(h2f(b->d) * dx), acc[r]);
    }
  }
  for (int r = 0; r < NR; ++r) out[r] = hsum8(acc[r]);
}

// Q4_0: nibbles q in 0..15 are already unsigned: dot(q - 8, x) = dpbusd(q, x) - dpbusd(8, x); the
// second term is shared by every row, so it seeds each row's accumulator.
template <int NR>
inline void dot_q4_0(std::int64_t n, const std::uint8_t* w, std::size_t rb, const void* xv, float* out) {
  const auto* x = static_cast<const BlockQ8_0*>(xv);
  const std::int64_t nb = n / 32;
  const __m256i lo_mask = _mm256_set1_epi8(0x0f);
  const __m256i eights = _mm256_set1_epi8(8);
  __m256 acc[NR];
  for (int r = 0; r < NR; ++r) acc[r] = _mm256_setzero_ps();
  for (std::int64_t ib = 0; ib < nb; ++ib) {
    const __m256i xq = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[ib].qs));
    const __m256i neg8x =
        _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_dpbusd_epi32(_mm256_setzero_si256(), eights, xq));
    const float dx = h2f(x[ib].d);
    for (int r = 0; r < NR; ++r) {
      const auto* b = reinterpret_cast<const BlockQ4_0*>(w + r * rb) + ib;
      __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b->qs));
      __m256i u = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(q, 4), q), lo_mask);
      __m256i d = _mm256_dpbusd_epi32(neg8x, u, xq);
      acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(d), _mm256_set1_ps(h2f(b->d) * dx), acc[r]);
    }
  }
  for (int r = 0; r < NR; ++r) out[r] = hsum8(acc[r]);
}

// Q5_0 (q in 0..31 = nibble | qh bit << 4; value (q - 16) d) x Q8_0, and Q4_1 / Q5_1 (value d q + m)
// x Q8_1. The min term uses the exact integer sum of the activation codes (dpbusd with ones) rather
// than Q8_1's fp16 `s`, so the result is the product of the decoded operands.
inline __m256i q5_bits(const std::uint8_t* qh4, const std::uint8_t* qs) {
  std::uint32_t qh;
  __builtin_memcpy(&qh, qh4, 4);
  __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  __m256i u = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(q, 4), q), _mm256_set1_epi8(0x0f));
  return _mm256_or_si256(u, _mm256_maskz_mov_epi8(static_cast<__mmask32>(qh), _mm256_set1_epi8(0x10)));
}

template <int NR>
inline void dot_q5_0(std::int64_t n, const std::uint8_t* w, std::size_t rb, const void* xv, float* out) {
  const auto* x = static_cast<const BlockQ8_0*>(xv);
  const std::int64_t nb = n / 32;
  __m256 acc[NR];
  for (int r = 0; r < NR; ++r) acc[r] = _mm256_setzero_ps();
  for (std::int64_t ib = 0; ib < nb; ++ib) {
    const __m256i xq = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[ib].qs));
    const __m256i neg16x =
        _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_set1_epi8(16), xq));
    const float dx = h2f(x[ib].d);
    for (int r = 0; r < NR; ++r) {
      const auto* b = reinterpret_cast<const quant::BlockQ5_0*>(w + r * rb) + ib;
      __m256i d = _mm256_dpbusd_epi32(neg16x, q5_bits(b->qh, b->qs), xq);
      acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(d), _mm256_set1_ps(h2f(b->d) * dx), acc[r]);
    }
  }
  for (int r = 0; r < NR; ++r) out[r] = hsum8(acc[r]);
}

template <int NR, bool Five>
inline void dot_qx_1(std::int64_t n, const std::uint8_t* w, std::size_t rb, const void* xv, float* out) {
  const auto* x = static_cast<const quant::BlockQ8_1*>(xv);
  const std::int64_t nb = n / 32;
  __m256 acc[NR];
  for (int r = 0; r < NR; ++r) acc[r] = _mm256_setzero_ps();
  for (std::int64_t ib = 0; ib < nb; ++ib) {
    const __m256i xq = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[ib].qs));
    const __m256i xs = _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_set1_epi8(1), xq);  // 8 partial sums
    const __m256 xsf = _mm256_cvtepi32_ps(xs);
    const float dx = h2f(x[ib].d);
    for (int r = 0; r < NR; ++r) {
      __m256i u;
      float d, m;
      if constexpr (Five) {
        const auto* b = reinterpret_cast<const quant::BlockQ5_1*>(w + r * rb) + ib;
        u = q5_bits(b->qh, b->qs);
        d = h2f(b->d);
        m = h2f(b->m);
      } else {
        const auto* b = reinterpret_cast<const quant::BlockQ4_1*>(w + r * rb) + ib;
        __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b->qs));
        u = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(q, 4), q), _mm256_set1_epi8(0x0f));
        d = h2f(b->d);
        m = h2f(b->m);
      }
      __m256i dq = _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, xq);
      acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dq), _mm256_set1_ps(d * dx), acc[r]);
      acc[r] = _mm256_fmadd_ps(xsf, _mm256_set1_ps(m * dx), acc[r]);
    }
  }
  for (int r = 0; r < NR; ++r) out[r] = hsum8(acc[r]);
}
template <int NR>
inline void dot_q4_1(std::int64_t n, const std::uint8_t* w, std::size_t rb, const void* xv, float* out) {
  dot_qx_1<NR, false>(n, w, rb, xv, out);
}
template <int NR>
inline void dot_q5_1(std::int64_t n, const std::uint8_t* w, std::size_t rb, const void* xv, float* out) {
  dot_qx_1<NR, true>(n, w, rb, xv, out);
}

// ---- K-quants x Q8_K activations --------------------------------------------------------------

// The 8 six-bit scales and mins of a Q4_K/Q5_K super-block (12 packed bytes), unpacked with 32-bit
// masks and kept in registers (byte stores followed by a vector load would stall store forwarding): bytes of
// sc_lo/sc_hi are scales 0-3/4-7, of m_lo/m_hi mins 0-3/4-7.
struct ScaleMinsK4 {
  std::uint32_t sc_lo, sc_hi, m_lo, m_hi;
  int sc(int j) const { return static_cast<int>(((j < 4 ? sc_lo : sc_hi) >> (8 * (j & 3))) & 0xff); }
  // [16] int16: m0, m0, m1, m1, ..., m7, m7 (each min twice, matching the 16 bsums)
  __m256i mins_x2() const {
    const __m128i m8 = _mm_cvtsi64_si128(static_cast<long long>((static_cast<std::uint64_t>(m_hi) << 32) | m_lo));
    return _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(m8, m8));
  }
};
inline ScaleMinsK4 unpack_k4(const std::uint8_t* q) {
  std::uint32_t a0, a1, a2;
  std::memcpy(&a0, q, 4);
  std::memcpy(&a1, q + 4, 4);
  std::memcpy(&a2, q + 8, 4);
  return {a0 & 0x3f3f3f3fu, (a2 & 0x0f0f0f0fu) | ((a0 >> 2) & 0x30303030u), a1 & 0x3f3f3f3fu,
          ((a2 >> 4) & 0x0f0f0f0fu) | ((a1 >> 2) & 0x30303030u)};
}

// Sum over the 16 sixteen-element groups of sc[g] * bsums[g] (sc as int16 lanes).
inline int scaled_bsums(__m256i bsums, __m256i sc16) {
  __m256i mp = _mm256_madd_epi16(bsums, sc16);
  __m128i m4 = _mm_add_epi32(_mm256_castsi256_si128(mp), _mm256_extracti128_si256(mp, 1));
  m4 = _mm_add_epi32(m4, _mm_shuffle_epi32(m4, 0x4e));
  m4 = _mm_add_epi32(m4, _mm_shuffle_epi32(m4, 0xb1));
  return _mm_cvtsi128_si32(m4);
}

// Expands 4 int16 scales (lanes 0..3 of s) to 32 lanes, 8 each: the scale of each 16-element group
// after vpmaddubsw (which pairs elements).
inline __m512i expand4(__m128i s, int first) {
  const __m512i idx = _mm512_add_epi16(
      _mm512_set_epi16(3, 3, 3, 3, 3, 3, 3, 3, 2, 2, 2, 2, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0),
      _mm512_set1_epi16(static_cast<short>(first)));
  return _mm512_permutexvar_epi16(idx, _mm512_castsi128_si512(s));
}

// Q4_K and Q5_K: value = d*sc*q - dmin*m per 32-element sub-block, q in 0..15 (Q4_K) or 0..31 (Q5_K:
// bit 2j of qh[l] is element 64j + l's fifth bit, bit 2j+1 is 64j+32+l's). Per 64 elements (one 32-byte
// qs chunk: low nibbles = sub-block 2j, high = 2j+1): vpmaddubsw(q, x) -> 32 int16 pair sums, vpmaddwd
// with the sub-block scales -> 16 int32. The mins term uses the activation's 16-element sums (bsums).
template <bool Five>
inline __m512i k45_chunk(const std::uint8_t* qs, __m256i hb, int j) {
  const __m256i lo_mask = _mm256_set1_epi8(0x0f);
  const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qs + 32 * j));
  __m256i lo = _mm256_and_si256(q, lo_mask);
  __m256i hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), lo_mask);
  if constexpr (Five) {
    const __m256i one = _mm256_set1_epi8(1);
    lo = _mm256_or_si256(lo, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 2 * j), one), 4));
    hi = _mm256_or_si256(hi, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 2 * j + 1), one), 4));
  }
  return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
}

template <int NR, bool Five>
inline void dot_q45_k(std::int64_t n, const std::uint8_t* w, std::size_t rb, const void* xv, float* out) {
  using Block = std::conditional_t<Five, quant::BlockQ5_K, BlockQ4_K>;
  const auto* x = static_cast<const BlockQ8_K*>(xv);
  const std::int64_t nb = n / 256;
  __m512 acc[NR];
  float accm[NR];
  for (int r = 0; r < NR; ++r) {
    acc[r] = _mm512_setzero_ps();
    accm[r] = 0.0f;
  }
  for (std::int64_t ib = 0; ib < nb; ++ib) {
    const BlockQ8_K& xb = x[ib];
    __m512i xq[4];
    for (int j = 0; j < 4; ++j) xq[j] = _mm512_loadu_si512(xb.qs + 64 * j);
    const __m256i bs = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xb.bsums));
    for (int r = 0; r < NR; ++r) {
      const auto* b = reinterpret_cast<const Block*>(w + r * rb) + ib;
      for (int l = 0; l < static_cast<int>(sizeof(Block)); l += 64)
        _mm_prefetch(reinterpret_cast<const char*>(b) + G2C_PF_DIST + l, _MM_HINT_T0);
      const ScaleMinsK4 sm = unpack_k4(b->scales);
      __m256i hb = _mm256_setzero_si256();
      if constexpr (Five) hb = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b->qh));
      __m512i isum = _mm512_setzero_si512();
      for (int j = 0; j < 4; ++j) {
        const __m512i p16 = _mm512_maddubs_epi16(k45_chunk<Five>(b->qs, hb, j), xq[j]);
        const __m512i s16 = _mm512_inserti64x4(_mm512_set1_epi16(static_cast<short>(sm.sc(2 * j))),
                                               _mm256_set1_epi16(static_cast<short>(sm.sc(2 * j + 1))), 1);
        isum = _mm512_add_epi32(isum, _mm512_madd_epi16(p16, s16));
      }
      // mins: sum_k m[k] * (bsums[2k] + bsums[2k+1])
      const int msum = scaled_bsums(bs, sm.mins_x2());
      acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), _mm512_set1_ps(xb.d * h2f(b->d)), acc[r]);
      accm[r] += xb.d * h2f(b->dmin) * static_cast<float>(msum);
    }
  }
  for (int r = 0; r < NR; ++r) out[r] = hsum16(acc[r]) - accm[r];
}
template <int NR>
inline void dot_q4_k(std::int64_t n, const std::uint8_t* w, std::size_t rb, const void* xv, float* out) {
  dot_q45_k<NR, false>(n, w, rb, xv, out);
}
template <int NR>
inline void dot_q5_k(std::int64_t n, const std::uint8_t* w, std::size_t rb, const void* xv, float* out) {
  dot_q45_k<NR, true>(n, w, rb, xv, out);
}

// Q6_K: value = d*sc*(q - 32), q in 0..63, 16 sub-blocks of 16. Per 128-element half: ql[64], qh[32],
// 8 scales. q = vpmaddubsw(q, x) with q unsigned, then the -32 term from bsums.
template <int NR>
inline void dot_q6_k(std::int64_t n, const std::uint8_t* w, std::size_t rb, const void* xv, float* out) {
  const auto* x = static_cast<const BlockQ8_K*>(xv);
  const std::int64_t nb = n / 256;
  const __m256i m4 = _mm256_set1_epi8(0x0f);
  const __m256i m2 = _mm256_set1_epi8(0x03);
  __m512 acc[NR];
  for (int r = 0; r < NR; ++r) acc[r] = _mm512_setzero_ps();
  for (std::int64_t ib = 0; ib < nb; ++ib) {
    const BlockQ8_K& xb = x[ib];
    const __m256i bs = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xb.bsums));
    for (int r = 0; r < NR; ++r) {
      const auto* b = reinterpret_cast<const BlockQ6_K*>(w + r * rb) + ib;
      for (int l = 0; l < 210; l += 64) _mm_prefetch(reinterpret_cast<const char*>(b) + G2C_PF_DIST + l, _MM_HINT_T0);
      __m512i isum = _mm512_setzero_si512();
      for (int h = 0; h < 2; ++h) {
        const std::uint8_t* ql = b->ql + 64 * h;
        const std::uint8_t* qh = b->qh + 32 * h;
        const std::int8_t* sc = b->scales + 8 * h;
        const std::int8_t* xq = xb.qs + 128 * h;
        __m256i l0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ql));
        __m256i l1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ql + 32));
        __m256i hh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qh));
        // element groups of 32: q1 | q2 in one zmm, q3 | q4 in the other
        __m256i q1 = _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_slli_epi16(_mm256_and_si256(hh, m2), 4));
        __m256i q2 = _mm256_or_si256(_mm256_and_si256(l1, m4),
                                     _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hh, 2), m2), 4));
        __m256i q3 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4),
                                     _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hh, 4), m2), 4));
        __m256i q4 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                                     _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hh, 6), m2), 4));
        __m512i qa = _mm512_inserti64x4(_mm512_castsi256_si512(q1), q2, 1);
        __m512i qb = _mm512_inserti64x4(_mm512_castsi256_si512(q3), q4, 1);
        __m512i pa = _mm512_maddubs_epi16(qa, _mm512_loadu_si512(xq));
        __m512i pb = _mm512_maddubs_epi16(qb, _mm512_loadu_si512(xq + 64));
        // scales per 16 elements = per 8 int16 lanes: sc[0..3] for qa, sc[4..7] for qb
        __m128i s8 = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(sc));
        __m128i s16 = _mm_cvtepi8_epi16(s8);  // 8 int16 scales
        // expand each scale to 8 lanes: lanes [8g, 8g+8) get sc[g]
        __m512i idx_a = _mm512_set_epi16(3, 3, 3, 3, 3, 3, 3, 3, 2, 2, 2, 2, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0,
                                         0, 0, 0, 0, 0, 0);
        __m512i idx_b = _mm512_add_epi16(idx_a, _mm512_set1_epi16(4));
        __m512i sv = _mm512_castsi128_si512(s16);
        __m512i sa = _mm512_permutexvar_epi16(idx_a, sv);
        __m512i sb = _mm512_permutexvar_epi16(idx_b, sv);
        isum = _mm512_add_epi32(isum, _mm512_madd_epi16(pa, sa));
        isum = _mm512_add_epi32(isum, _mm512_madd_epi16(pb, sb));
      }
      // -32 * sum_g sc[g] * bsums[g]
      const __m256i s16all = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b->scales)));
      const __m512i corr = _mm512_mask_set1_epi32(_mm512_setzero_si512(), 1, -32 * scaled_bsums(bs, s16all));
      isum = _mm512_add_epi32(isum, corr);
      acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), _mm512_set1_ps(xb.d * h2f(b->d)), acc[r]);
    }
  }
  for (int r = 0; r < NR; ++r) out[r] = hsum16(acc[r]);
}

// Q3_K and Q2_K: 2-bit codes at shift 2j of qs[32 h + l] give element 128 h + 32 j + l; 16 groups of
// 16 with one scale each. Q3_K: q' = code + 4 * hmask bit (0..7), value d (sc - 32) (q' - 4).
// Q2_K: value d (sc & 15) code - dmin (sc >> 4).
template <int NR, bool Three>
inline void dot_q23_k(std::int64_t n, const std::uint8_t* w, std::size_t rb, const void* xv, float* out) {
  const auto* x = static_cast<const BlockQ8_K*>(xv);
  const std::int64_t nb = n / 256;
  const __m256i m3 = _mm256_set1_epi8(3);
  const __m256i one = _mm256_set1_epi8(1);
  __m512 acc[NR];
  float accm[NR];
  for (int r = 0; r < NR; ++r) {
    acc[r] = _mm512_setzero_ps();
    accm[r] = 0.0f;
  }
  for (std::int64_t ib = 0; ib < nb; ++ib) {
    const BlockQ8_K& xb = x[ib];
    const __m256i bs = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xb.bsums));
    for (int r = 0; r < NR; ++r) {
      alignas(16) std::int8_t sc[16];  // multiplier of each 16-element group
      const std::uint8_t* qs;
      __m256i hm = _mm256_setzero_si256();
      float d, dmin = 0.0f;
      int corr;  // integer term subtracted per group, times its own factor below
      if constexpr (Three) {
        const auto* b = reinterpret_cast<const quant::BlockQ3_K*>(w + r * rb) + ib;
        std::uint32_t a[4];
        __builtin_memcpy(a, b->scales, 12);
        const std::uint32_t t = a[2];
        const std::uint32_t k1 = 0x03030303u, k2 = 0x0f0f0f0fu;
        a[2] = ((a[0] >> 4) & k2) | (((t >> 4) & k1) << 4);
        a[3] = ((a[1] >> 4) & k2) | (((t >> 6) & k1) << 4);
        a[0] = (a[0] & k2) | (((t >> 0) & k1) << 4);
        a[1] = (a[1] & k2) | (((t >> 2) & k1) << 4);
        __builtin_memcpy(sc, a, 16);
        for (int g = 0; g < 16; ++g) sc[g] = static_cast<std::int8_t>(sc[g] - 32);
        qs = b->qs;
        hm = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b->hmask));
        d = xb.d * h2f(b->d);
        corr = 4 * scaled_bsums(bs, _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(sc))));
      } else {
        const auto* b = reinterpret_cast<const quant::BlockQ2_K*>(w + r * rb) + ib;
        const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b->scales));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(sc), _mm_and_si128(raw, _mm_set1_epi8(0x0f)));
        const __m128i mins = _mm_and_si128(_mm_srli_epi16(raw, 4), _mm_set1_epi8(0x0f));
        qs = b->qs;
        d = xb.d * h2f(b->d);
        dmin = xb.d * h2f(b->dmin);
        corr = scaled_bsums(bs, _mm256_cvtepu8_epi16(mins));
      }
      __m512i isum = _mm512_setzero_si512();
      for (int h = 0; h < 2; ++h) {
        const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qs + 32 * h));
        __m256i c[4];
        for (int j = 0; j < 4; ++j) {
          c[j] = _mm256_and_si256(_mm256_srli_epi16(q, 2 * j), m3);
          if constexpr (Three) {
            __m256i hbit = _mm256_and_si256(_mm256_srli_epi16(hm, 4 * h + j), one);
            c[j] = _mm256_or_si256(c[j], _mm256_slli_epi16(hbit, 2));
          }
        }
        const __m128i s16a = _mm_cvtepi8_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(sc + 8 * h)));
        __m512i qa = _mm512_inserti64x4(_mm512_castsi256_si512(c[0]), c[1], 1);
        __m512i qb = _mm512_inserti64x4(_mm512_castsi256_si512(c[2]), c[3], 1);
        __m512i pa = _mm512_maddubs_epi16(qa, _mm512_loadu_si512(xb.qs + 128 * h));
        __m512i pb = _mm512_maddubs_epi16(qb, _mm512_loadu_si512(xb.qs + 128 * h + 64));
        isum = _mm512_add_epi32(isum, _mm512_madd_epi16(pa, expand4(s16a, 0)));
        isum = _mm512_add_epi32(isum, _mm512_madd_epi16(pb, expand4(s16a, 4)));
      }
      acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), _mm512_set1_ps(d), acc[r]);
      if constexpr (Three)
        accm[r] += d * static_cast<float>(corr);
      else
        accm[r] += dmin * static_cast<float>(corr);
    }
  }
  for (int r = 0; r < NR; ++r) out[r] = hsum16(acc[r]) - accm[r];
}
template <int NR>
inline void dot_q3_k(std::int64_t n, const std::uint8_t* w, std::size_t rb, const void* xv, float* out) {
  dot_q23_k<NR, true>(n, w, rb, xv, out);
}
template <int NR>
inline void dot_q2_k(std::int64_t n, const std::uint8_t* w, std::size_t rb, const void* xv, float* out) {
  dot_q23_k<NR, false>(n, w, rb, xv, out);
}

// ---- prefill GEMM micro-kernels (tiles of rows x tokens): split out for length ------------------
#include "avx512_prefill.inc"  // NOLINT(build/include): part of this translation unit

// ---- Q4_0 decode: one row, two blocks per vpdpbusd --------------------------------------------
// Rows are still read one at a time, front to back (the fastest order, see kRows), but two blocks
// share each 512-bit instruction. The activation is rearranged once per call to match the nibble
// layout of a block pair, [A 0..15 | B 0..15 | A 16..31 | B 16..31], with the -8*sum(x) seeds and the
// dx of each lane; a pair then costs 2 weight loads, one vpdpbusd and one FMA.
struct Q4PairPrep {
  std::vector<std::int8_t> xq;   // [nb/2][64]
  std::vector<std::int32_t> sd;  // [nb/2][16]: -8*sum(x_A) in lane 0, -8*sum(x_B) in lane 4
  std::vector<float> dx;         // [nb/2][16]: dx_A in lanes 0-3, 8-11; dx_B in 4-7, 12-15
};

void prep_q4_pairs(const BlockQ8_0* x, std::int64_t nb, Q4PairPrep& p) {
  const std::int64_t np = nb / 2;
  p.xq.resize(static_cast<std::size_t>(np * 64));
  p.sd.assign(static_cast<std::size_t>(np * 16), 0);
  p.dx.resize(static_cast<std::size_t>(np * 16));
  for (std::int64_t ip = 0; ip < np; ++ip) {
    const BlockQ8_0& a = x[2 * ip];
    const BlockQ8_0& b = x[2 * ip + 1];
    std::int8_t* q = p.xq.data() + ip * 64;
    std::memcpy(q, a.qs, 16);
    std::memcpy(q + 16, b.qs, 16);
    std::memcpy(q + 32, a.qs + 16, 16);
    std::memcpy(q + 48, b.qs + 16, 16);
    int sa = 0, sb = 0;
    for (int j = 0; j < 32; ++j) sa += a.qs[j], sb += b.qs[j];
    p.sd[static_cast<std::size_t>(ip * 16)] = -8 * sa;
    p.sd[static_cast<std::size_t>(ip * 16 + 4)] = -8 * sb;
    const float da = h2f(a.d), db = h2f(b.d);
    for (int l = 0; l < 16; ++l) p.dx[static_cast<std::size_t>(ip * 16 + l)] = ((l >> 2) & 1) ? db : da;
  }
}

inline float dot_q4_0_pairs(std::int64_t nb, const std::uint8_t* w, const BlockQ8_0* x, const Q4PairPrep& p) {
  const __m512i lo_mask = _mm512_set1_epi8(0x0f);
  const __m512i pair_of_lane = _mm512_set_epi32(1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0);
  __m512 acc = _mm512_setzero_ps();
  const std::int64_t np = nb / 2;
  for (std::int64_t ip = 0; ip < np; ++ip) {
    const std::uint8_t* ba = w + 2 * ip * sizeof(BlockQ4_0);
    const std::uint8_t* bb = ba + sizeof(BlockQ4_0);
    _mm_prefetch(reinterpret_cast<const char*>(ba) + G2C_PF_DIST, _MM_HINT_T0);
    const __m256i ab =
        _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(ba + 2))),
                                _mm_loadu_si128(reinterpret_cast<const __m128i*>(bb + 2)), 1);
    const __m512i q =
        _mm512_and_si512(_mm512_inserti64x4(_mm512_castsi256_si512(ab), _mm256_srli_epi16(ab, 4), 1), lo_mask);
    const __m512i d =
        _mm512_dpbusd_epi32(_mm512_loadu_si512(p.sd.data() + ip * 16), q, _mm512_loadu_si512(p.xq.data() + ip * 64));
    std::uint16_t ha, hb;
    std::memcpy(&ha, ba, 2);
    std::memcpy(&hb, bb, 2);
    const __m128 dw2 = _mm_cvtph_ps(_mm_cvtsi32_si128(static_cast<int>(ha | (static_cast<std::uint32_t>(hb) << 16))));
    const __m512 sc = _mm512_mul_ps(_mm512_permutexvar_ps(pair_of_lane, _mm512_castps128_ps512(dw2)),
                                    _mm512_loadu_ps(p.dx.data() + ip * 16));
    acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d), sc, acc);
  }
  float sum = hsum16(acc);
  if (nb & 1) {  // last, unpaired block
    float tail;
    dot_q4_0<1>(32, w + (nb - 1) * sizeof(BlockQ4_0), 0, x + (nb - 1), &tail);
    sum += tail;
  }
  return sum;
}

// ---- small batches: Q6_K, one row x NT tokens ---------------------------------------------------
// dot_q6_k's arithmetic per token (each value equals the row kernel's exactly), but a super-block's
// 6-bit codes and scales are unpacked once for all NT tokens instead of once per token: the unpacking
// is most of the row kernel's work (the Q4_0/Q4_K_M recipes' output projection is Q6_K).
template <int NT>
void row_q6_k_tokens(std::int64_t nb, const std::uint8_t* w, const std::uint8_t* x, std::size_t xs, float* y,
                     std::int64_t ldy) {
  const __m256i m4 = _mm256_set1_epi8(0x0f);
  const __m256i m2 = _mm256_set1_epi8(0x03);
  const __m512i idx_a =
      _mm512_set_epi16(3, 3, 3, 3, 3, 3, 3, 3, 2, 2, 2, 2, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);
  const __m512i idx_b = _mm512_add_epi16(idx_a, _mm512_set1_epi16(4));
  __m512 acc[NT];
#pragma GCC unroll 8
  for (int t = 0; t < NT; ++t) acc[t] = _mm512_setzero_ps();
  for (std::int64_t ib = 0; ib < nb; ++ib) {
    const auto* b = reinterpret_cast<const BlockQ6_K*>(w) + ib;
    for (int l = 0; l < 210; l += 64) _mm_prefetch(reinterpret_cast<const char*>(b) + G2C_PF_DIST + l, _MM_HINT_T0);
    __m512i qa[2], qb[2], sa[2], sb[2];
#pragma GCC unroll 2
    for (int h = 0; h < 2; ++h) {
      const std::uint8_t* ql = b->ql + 64 * h;
      const std::uint8_t* qh = b->qh + 32 * h;
      const __m256i l0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ql));
      const __m256i l1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ql + 32));
      const __m256i hh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qh));
      const __m256i q1 = _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_slli_epi16(_mm256_and_si256(hh, m2), 4));
      const __m256i q2 = _mm256_or_si256(_mm256_and_si256(l1, m4),
                                         _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hh, 2), m2), 4));
      const __m256i q3 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4),
                                         _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hh, 4), m2), 4));
      const __m256i q4 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                                         _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hh, 6), m2), 4));
      qa[h] = _mm512_inserti64x4(_mm512_castsi256_si512(q1), q2, 1);
      qb[h] = _mm512_inserti64x4(_mm512_castsi256_si512(q3), q4, 1);
      const __m512i sv = _mm512_castsi128_si512(
          _mm_cvtepi8_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(b->scales + 8 * h))));
      sa[h] = _mm512_permutexvar_epi16(idx_a, sv);
      sb[h] = _mm512_permutexvar_epi16(idx_b, sv);
    }
    const __m256i s16all = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b->scales)));
    const float dw = h2f(b->d);
#pragma GCC unroll 8
    for (int t = 0; t < NT; ++t) {
      const BlockQ8_K& xb = reinterpret_cast<const BlockQ8_K*>(x + t * xs)[ib];
      __m512i isum = _mm512_setzero_si512();
#pragma GCC unroll 2
      for (int h = 0; h < 2; ++h) {
        const __m512i pa = _mm512_maddubs_epi16(qa[h], _mm512_loadu_si512(xb.qs + 128 * h));
        const __m512i pb = _mm512_maddubs_epi16(qb[h], _mm512_loadu_si512(xb.qs + 128 * h + 64));
        isum = _mm512_add_epi32(isum, _mm512_madd_epi16(pa, sa[h]));
        isum = _mm512_add_epi32(isum, _mm512_madd_epi16(pb, sb[h]));
      }
      const __m256i bs = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xb.bsums));
      isum = _mm512_add_epi32(isum, _mm512_mask_set1_epi32(_mm512_setzero_si512(), 1, -32 * scaled_bsums(bs, s16all)));
      acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), _mm512_set1_ps(xb.d * dw), acc[t]);
    }
  }
#pragma GCC unroll 8
  for (int t = 0; t < NT; ++t) y[t * ldy] = hsum16(acc[t]);
}

// Rows [r0, r1) x n_tok tokens through row_q6_k_tokens, at most 8 tokens per pass over a row (the
// accumulators stay in registers; a second pass reads the row from L1).
void small_q6_k(std::int64_t n, const std::uint8_t* w, std::size_t rb, const std::uint8_t* x, std::size_t xs,
                std::int64_t n_tok, float* y, std::int64_t ldy, std::int64_t r0, std::int64_t r1) {
  using RowFn = void (*)(std::int64_t, const std::uint8_t*, const std::uint8_t*, std::size_t, float*, std::int64_t);
  static constexpr RowFn kFns[8] = {row_q6_k_tokens<1>, row_q6_k_tokens<2>, row_q6_k_tokens<3>, row_q6_k_tokens<4>,
                                    row_q6_k_tokens<5>, row_q6_k_tokens<6>, row_q6_k_tokens<7>, row_q6_k_tokens<8>};
  for (std::int64_t r = r0; r < r1; ++r)
    for (std::int64_t t0 = 0; t0 < n_tok; t0 += 8) {
      const std::int64_t nt = std::min<std::int64_t>(8, n_tok - t0);
      kFns[nt - 1](n / 256, w + r * rb, x + t0 * xs, xs, y + t0 * ldy + r, ldy);
    }
}

// ---- generic row drivers ----------------------------------------------------------------------

using DotFn = void (*)(std::int64_t, const std::uint8_t*, std::size_t, const void*, float*);
using TileFn = void (*)(std::int64_t, const std::uint8_t*, std::size_t, const std::uint8_t*, std::size_t, float*,
                        std::int64_t);

// The kernels of weight type T: Dot1 one row (decode); DotN kRows rows x one token; Tile4 4 rows x 4
// tokens (nullptr: none).
template <GgmlType T, DotFn Dot1, DotFn DotN, TileFn Tile4 = nullptr, int LaneTile = 0>
struct Driver {
  static constexpr GgmlType kType = T;
  static float vec_dot(std::int64_t n, const void* w, const void* x) {
    G2C_DCHECK_DOT(T, n, w, x);
    if constexpr (LaneTile == 2) {  // the decode path's own arithmetic, so vec_dot == matvec exactly
      float out;
      matvec(n, w, 0, x, &out, 0, 1);
      return out;
    }
    float out;
    Dot1(n, static_cast<const std::uint8_t*>(w), 0, x, &out);
    return out;
  }
  static void matvec(std::int64_t n, const void* w, std::size_t rb, const void* x, float* y, std::int64_t r0,
                     std::int64_t r1) {
    G2C_DCHECK_MATVEC(T, n, w, x, y, r0, r1);
    const auto* wb = static_cast<const std::uint8_t*>(w);
    if constexpr (LaneTile == 2) {  // Q4_0: block pairs over a rearranged activation
      thread_local Q4PairPrep prep;
      const auto* xq = static_cast<const BlockQ8_0*>(x);
      prep_q4_pairs(xq, n / 32, prep);
      for (std::int64_t r = r0; r < r1; ++r) y[r] = dot_q4_0_pairs(n / 32, wb + r * rb, xq, prep);
      return;
    }
    for (std::int64_t r = r0; r < r1; ++r) Dot1(n, wb + r * rb, rb, x, y + r);
  }
  // Tiles of 4 weight rows x 4 tokens where a tile kernel exists; the tile's rows stay in L1 while
  // the tokens stream by. Row and token tails use the row kernels.
  static void matmul(std::int64_t n, const void* w, std::size_t rb, const void* x, std::size_t xs, std::int64_t n_tok,
                     float* y, std::int64_t ldy, std::int64_t r0, std::int64_t r1) {
    G2C_DCHECK_MATMUL(T, n, w, x, n_tok, y, ldy, r0, r1);
    const auto* wb = static_cast<const std::uint8_t*>(w);
    const auto* xb = static_cast<const std::uint8_t*>(x);
    // Token chunks whose activations fit in half of L2 (1 MiB on Zen 4): every row tile then reads
    // them from L2, instead of streaming all n_tok activation rows from L3 once per 4 weight rows.
    const std::int64_t chunk = std::max<std::int64_t>(4, static_cast<std::int64_t>((512u << 10) / xs) / 4 * 4);
    for (std::int64_t t0 = 0; t0 < n_tok; t0 += chunk) {
      const std::int64_t t1 = std::min(n_tok, t0 + chunk);
      float tmp[kRows];
      std::int64_t r = r0;
      [[maybe_unused]] std::int64_t t_lane = t0;  // tokens [t0, t_lane) done by the lane tiles
      if constexpr (LaneTile != 0) {
        // Q8_0 (1) / Q4_0 (2) weights: 4 rows x 8 tokens per tile over prepared activations.
        constexpr bool kQ4 = LaneTile == 2;
        thread_local Q8Prep prep;
        const std::int64_t nt = (t1 - t0) / 8 * 8;
        if (nt > 0 && r1 - r0 >= 4) {
          prep_q8<kQ4>(xb + t0 * xs, xs, nt, n / 32, prep);
          for (std::int64_t rr = r0; rr + 4 <= r1; rr += 4)
            for (std::int64_t it = 0; it < nt; it += 8)
              tile_q8_lanes<kQ4>(n / 32, wb + rr * rb, rb, xb + (t0 + it) * xs, xs, prep, it, nt,
                                 y + (t0 + it) * ldy + rr, ldy);
          t_lane = t0 + nt;
        }
      }
      for (; r + kRows <= r1; r += kRows) {
        std::int64_t it = t_lane;
        if constexpr (Tile4 != nullptr) {
          static_assert(kRows == 4);
          for (; it + 4 <= t1; it += 4) Tile4(n, wb + r * rb, rb, xb + it * xs, xs, y + it * ldy + r, ldy);
        }
        for (; it < t1; ++it) {
          DotN(n, wb + r * rb, rb, xb + it * xs, tmp);
          for (int k = 0; k < kRows; ++k) y[it * ldy + r + k] = tmp[k];
        }
      }
      for (; r < r1; ++r)
        for (std::int64_t it = t0; it < t1; ++it) Dot1(n, wb + r * rb, rb, xb + it * xs, y + it * ldy + r);
    }
  }
  // A few tokens (batched decode). Q8_0 and Q4_0 (LaneTile): 3+ tokens are padded to a multiple of 8
  // (the last token repeated) and go through the 4-row x 8-token lane tiles, which keep a block of 4
  // rows in registers for all 8 tokens: on a llama-110m FFN weight (2048 x 768 Q4_0, one thread) 8
  // tokens took 125 us there against 149 us for 4 tokens on any other path (4x4 tiles 174, one row x
  // 4 tokens 149, matvec per token 172). Q6_K: one row x up to 8 tokens (small_q6_k). Up to 2 tokens,
  // and the other types, take matmul's own tiles (Q4_0 on a VBMI CPU: the decode kernel per token,
  // q4_0_small_vbmi below).
  static void matmul_small(std::int64_t n, const void* w, std::size_t rb, const void* x, std::size_t xs,
                           std::int64_t n_tok, float* y, std::int64_t ldy, std::int64_t r0, std::int64_t r1) {
    G2C_DCHECK_MATMUL(T, n, w, x, n_tok, y, ldy, r0, r1);
    if constexpr (LaneTile != 0) {
      if (n_tok >= 3 && n_tok % 8 != 0) {
        const std::int64_t n_pad = (n_tok + 7) / 8 * 8;
        thread_local std::vector<std::uint8_t> xp;
        thread_local std::vector<float> yp;  // [n_pad][r1]: columns [r0, r1) written
        xp.resize(static_cast<std::size_t>(n_pad) * xs);
        yp.resize(static_cast<std::size_t>(n_pad * r1));
        const auto* xb = static_cast<const std::uint8_t*>(x);
        std::memcpy(xp.data(), xb, static_cast<std::size_t>(n_tok) * xs);
        for (std::int64_t it = n_tok; it < n_pad; ++it) std::memcpy(xp.data() + it * xs, xb + (n_tok - 1) * xs, xs);
        matmul(n, w, rb, xp.data(), xs, n_pad, yp.data(), r1, r0, r1);
        for (std::int64_t it = 0; it < n_tok; ++it)
          std::memcpy(y + it * ldy + r0, yp.data() + it * r1 + r0, static_cast<std::size_t>(r1 - r0) * sizeof(float));
        return;
      }
    }
    if constexpr (T == GgmlType::Q6_K) {
      small_q6_k(n, static_cast<const std::uint8_t*>(w), rb, static_cast<const std::uint8_t*>(x), xs, n_tok, y, ldy, r0,
                 r1);
      return;
    }
    matmul(n, w, rb, x, xs, n_tok, y, ldy, r0, r1);
  }
};

#define G2C_DOT_WRAPPERS(name, xtype)                                                               \
  template <int NR>                                                                                 \
  void name##_w(std::int64_t n, const std::uint8_t* w, std::size_t rb, const void* x, float* out) { \
    name<NR>(n, w, rb, static_cast<const xtype*>(x), out);                                          \
  }
G2C_DOT_WRAPPERS(dot_f32, float)
G2C_DOT_WRAPPERS(dot_f16, float)
G2C_DOT_WRAPPERS(dot_bf16, float)
#undef G2C_DOT_WRAPPERS

// Batches of 16+ tokens go through the packed-panel GEMM (x86/avx512_gemm.cpp) for whole 16-row
// panels; the rows left over (and small batches) through D's tiles and row kernels.
template <class D>
struct Paneled {
  static void matmul(std::int64_t n, const void* w, std::size_t rb, const void* x, std::size_t xs, std::int64_t n_tok,
                     float* y, std::int64_t ldy, std::int64_t r0, std::int64_t r1) {
    const std::int64_t done = detail::matmul_panels(D::kType, n, w, rb, x, xs, n_tok, y, ldy, r0, r1);
    if (r0 + done < r1) D::matmul(n, w, rb, x, xs, n_tok, y, ldy, r0 + done, r1);
  }
};

// Q4_0 on a VBMI CPU: up to 2 tokens, the 4-blocks-a-step decode kernel once per token (the rows come
// from L1/L2 for the second) beat the tiles (85 us against 149 us for 2 tokens on the 2048 x 768
// weight above); more, the lane tiles.
void q4_0_small_vbmi(std::int64_t n, const void* w, std::size_t rb, const void* x, std::size_t xs, std::int64_t n_tok,
                     float* y, std::int64_t ldy, std::int64_t r0, std::int64_t r1) {
  if (n_tok > 2) {
    Driver<GgmlType::Q4_0, dot_q4_0<1>, dot_q4_0<kRows>, tile_q8<4, true>, 2>::matmul_small(n, w, rb, x, xs, n_tok, y,
                                                                                            ldy, r0, r1);
    return;
  }
  G2C_DCHECK_MATMUL(GgmlType::Q4_0, n, w, x, n_tok, y, ldy, r0, r1);
  for (std::int64_t it = 0; it < n_tok; ++it)
    detail::q4_0_matvec_vbmi(n, w, rb, static_cast<const std::uint8_t*>(x) + it * xs, y + it * ldy, r0, r1);
}

// Weights of type D::kType dot against `act` activations made by from_float.
template <class D>
void install(KernelTable& t, GgmlType act, FromFloatFn from_float) {
  TypeKernels& k = t.types[static_cast<std::size_t>(D::kType)];
  k.act_type = act;
  k.from_float = from_float;
  k.vec_dot = &D::vec_dot;
  k.matvec = &D::matvec;
  k.matmul = &Paneled<D>::matmul;
  k.matmul_small = &D::matmul_small;
}

void q8_1_from_float(const float* x, void* y, std::int64_t n) {
  G2C_DCHECK_FROM_FLOAT(GgmlType::Q8_1, n, x, y);
  quant::quantize_row(GgmlType::Q8_1, x, y, n);
}
void q8_k_from_float(const float* x, void* y, std::int64_t n) {
  G2C_DCHECK_FROM_FLOAT(GgmlType::Q8_K, n, x, y);
  quant::quantize_row(GgmlType::Q8_K, x, y, n);
}

KernelTable make() {
  KernelTable t = ref::make_table();
  t.isa_name = "avx512";
  using F = GgmlType;
  install<Driver<F::F32, dot_f32_w<1>, dot_f32_w<kRows>, tile_float<4, 4, 0>>>(t, F::F32, nullptr);
  install<Driver<F::F16, dot_f16_w<1>, dot_f16_w<kRows>, tile_float<4, 4, 1>>>(t, F::F32, nullptr);
  install<Driver<F::BF16, dot_bf16_w<1>, dot_bf16_w<kRows>, tile_float<4, 4, 2>>>(t, F::F32, nullptr);
  install<Driver<F::Q8_0, dot_q8_0<1>, dot_q8_0<kRows>, tile_q8<4, false>, 1>>(t, F::Q8_0, &detail::q8_0_from_float);
  install<Driver<F::Q4_0, dot_q4_0<1>, dot_q4_0<kRows>, tile_q8<4, true>, 2>>(t, F::Q8_0, &detail::q8_0_from_float);
  install<Driver<F::Q4_K, dot_q4_k<1>, dot_q4_k<kRows>, tile_q4_k<4, 4>>>(t, F::Q8_K, &q8_k_from_float);
  install<Driver<F::Q6_K, dot_q6_k<1>, dot_q6_k<kRows>>>(t, F::Q8_K, &q8_k_from_float);
  install<Driver<F::Q5_0, dot_q5_0<1>, dot_q5_0<kRows>>>(t, F::Q8_0, &detail::q8_0_from_float);
  install<Driver<F::Q4_1, dot_q4_1<1>, dot_q4_1<kRows>>>(t, F::Q8_1, &q8_1_from_float);
  install<Driver<F::Q5_1, dot_q5_1<1>, dot_q5_1<kRows>>>(t, F::Q8_1, &q8_1_from_float);
  install<Driver<F::Q5_K, dot_q5_k<1>, dot_q5_k<kRows>>>(t, F::Q8_K, &q8_k_from_float);
  install<Driver<F::Q3_K, dot_q3_k<1>, dot_q3_k<kRows>>>(t, F::Q8_K, &q8_k_from_float);
  install<Driver<F::Q2_K, dot_q2_k<1>, dot_q2_k<kRows>>>(t, F::Q8_K, &q8_k_from_float);
  auto& ty = t.types;
  // The Q4_0 decode kernel per CPU family (kernels.hpp); G2C_AVX512_VBMI=0|1 overrides the choice (CI
  // runs the parity tests both ways).
  bool vbmi = vbmi_q4_0_decode_default(cpu_features());
  if (const char* env = std::getenv("G2C_AVX512_VBMI"); env && *env) {
    if (std::strcmp(env, "0") != 0 && std::strcmp(env, "1") != 0) {
      std::string msg = std::string("G2C_AVX512_VBMI=") + env + ": expected 0 or 1";
      check_failed("G2C_AVX512_VBMI", __FILE__, __LINE__, msg.c_str());
    }
    vbmi = env[0] == '1' && cpu_features().avx512vbmi;
  }
  if (vbmi) {
    ty[static_cast<int>(GgmlType::Q4_0)].matvec = &detail::q4_0_matvec_vbmi;
    ty[static_cast<int>(GgmlType::Q4_0)].vec_dot = &detail::q4_0_vec_dot_vbmi;
    ty[static_cast<int>(GgmlType::Q4_0)].matmul_small = &q4_0_small_vbmi;
  }
  t.rmsnorm = &detail::rmsnorm;
  t.add = &detail::add;
  t.silu = &detail::silu;
  t.swiglu = &detail::swiglu;
  t.softmax = &detail::softmax;
  t.attend[0] = &detail::attend_f32;
  t.attend[1] = &detail::attend_f16;
  t.attend_multi = detail::kAttendMulti;
  t.attend_multi_scratch = &detail::attend_multi_scratch;
  t.kv_store[1] = &detail::kv_store_f16;
  return t;
}

}  // namespace

const KernelTable* table() {
  static const KernelTable t = make();
  return &t;
}

}  // namespace g2c::kernels::avx512
