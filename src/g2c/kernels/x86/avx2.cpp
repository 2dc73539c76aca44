// AVX2 kernel table (AVX2 + FMA + F16C): for x86 CPUs without AVX-512. Compiled with its own flags
// and namespace; starts from the ref table and overrides the weight types it implements (all of
// F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K..Q6_K). Same activation choices and row blocking
// as x86/avx512.cpp (see there); int8 products use vpmaddubsw + vpmaddwd instead of VNNI, so the
// table runs on any AVX2 + FMA + F16C CPU (Haswell, Zen 2).
#include <immintrin.h>

#include <cstdint>
#include <type_traits>

#include "g2c/kernels/dcheck.hpp"
#include "g2c/kernels/kernels.hpp"
#include "g2c/kernels/ref/ref.hpp"
#include "g2c/quant/blocks.hpp"
#include "g2c/quant/quant.hpp"

namespace g2c::kernels::avx2 {
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

inline float h2f(std::uint16_t h) { return _cvtsh_ss(h); }

inline float hsum8(__m256 v) {
  __m128 lo = _mm256_castps256_ps128(v);
  __m128 hi = _mm256_extractf128_ps(v, 1);
  lo = _mm_add_ps(lo, hi);
  lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
  lo = _mm_add_ss(lo, _mm_movehdup_ps(lo));
  return _mm_cvtss_f32(lo);
}
inline int hsum8i(__m256i v) {
  __m128i m = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  m = _mm_add_epi32(m, _mm_shuffle_epi32(m, 0x4e));
  m = _mm_add_epi32(m, _mm_shuffle_epi32(m, 0xb1));
  return _mm_cvtsi128_si32(m);
}

// ---- float weights: 8 at a time, scalar tail --------------------------------------------------
template <int NR, int Kind>  // Kind 0 f32, 1 f16, 2 bf16
inline void dot_float(std::int64_t n, const std::uint8_t* w, std::size_t rb, const void* xv, float* out) {
  const float* x = static_cast<const float*>(xv);
  __m256 acc[NR];
  for (int r = 0; r < NR; ++r) acc[r] = _mm256_setzero_ps();
  std::int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 xx = _mm256_loadu_ps(x + i);
    for (int r = 0; r < NR; ++r) {
      const std::uint8_t* p = w + r * rb;
      __m256 wv;
      if constexpr (Kind == 0) {
        wv = _mm256_loadu_ps(reinterpret_cast<const float*>(p) + i);
      } else if constexpr (Kind == 1) {
        wv = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 2 * i)));
      } else {
        __m256i h = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 2 * i)));
        wv = _mm256_castsi256_ps(_mm256_slli_epi32(h, 16));
      }
      acc[r] = _mm256_fmadd_ps(wv, xx, acc[r]);
    }
  }
  for (int r = 0; r < NR; ++r) {
    float s = hsum8(acc[r]);
    const std::uint8_t* p = w + r * rb;
    for (std::int64_t j = i; j < n; ++j) {
      float wf;
      if constexpr (Kind == 0) {
        __builtin_memcpy(&wf, p + 4 * j, 4);  // rows may sit at any byte offset
      } else if constexpr (Kind == 1) {
        std::uint16_t h;
        __builtin_memcpy(&h, p + 2 * j, 2);
        wf = h2f(h);
      } else {
        std::uint16_t h;
        __builtin_memcpy(&h, p + 2 * j, 2);
        std::uint32_t u = static_cast<std::uint32_t>(h) << 16;
        __builtin_memcpy(&wf, &u, 4);
      }
      s += wf * x[j];
    }
    out[r] = s;
  }
}

// ---- Q8_0 / Q4_0 x Q8_0 --------------------------------------------------------------------------
inline __m256i madd_u8s8(__m256i u, __m256i s) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
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
      __m256i wq = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b->qs));
      __m256i d = madd_u8s8(_mm256_abs_epi8(wq), _mm256_sign_epi8(xq, wq));
      acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(d), _mm256_set1_ps(h2f(b->d) * dx), acc[r]);
    }
  }
  for (int r = 0; r < NR; ++r) out[r] = hsum8(acc[r]);
}

template <int NR>
inline void dot_q4_0(std::int64_t n, const std::uint8_t* w, std::size_t rb, const void* xv, float* out) {
  const auto* x = static_cast<const BlockQ8_0*>(xv);
  const std::int64_t nb = n / 32;
  const __m256i lo_mask = _mm256_set1_epi8(0x0f);
  __m256 acc[NR];
  for (int r = 0; r < NR; ++r) acc[r] = _mm256_setzero_ps();
  for (std::int64_t ib = 0; ib < nb; ++ib) {
    const __m256i xq = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[ib].qs));
    const __m256i x8 = madd_u8s8(_mm256_set1_epi8(8), xq);
    const float dx = h2f(x[ib].d);
    for (int r = 0; r < NR; ++r) {
      const auto* b = reinterpret_cast<const BlockQ4_0*>(w + r * rb) + ib;
      __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b->qs));
      __m256i u = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(q, 4), q), lo_mask);
      __m256i d = _mm256_sub_epi32(madd_u8s8(u, xq), x8);
      acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(d), _mm256_set1_ps(h2f(b->d) * dx), acc[r]);
    }
  }
  for (int r = 0; r < NR; ++r) out[r] = hsum8(acc[r]);
}

// Q5_0 (value (q - 16) d, q = nibble | qh bit << 4) x Q8_0, and Q4_1 / Q5_1 (value d q + m) x Q8_1.
// [32] bytes 0xff where bit i of the block's little-endian u32 qh is set: each qh byte is spread over
// 8 lanes, then lane i keeps bit i % 8.
inline __m256i qh_bytes(const std::uint8_t* qh4) {
  std::uint32_t qh;
  __builtin_memcpy(&qh, qh4, 4);
  const __m256i byte_of_lane = _mm256_setr_epi64x(0, 0x0101010101010101, 0x0202020202020202, 0x0303030303030303);
  const __m256i spread = _mm256_shuffle_epi8(_mm256_set1_epi32(static_cast<int>(qh)), byte_of_lane);
  const __m256i bit = _mm256_set1_epi64x(static_cast<long long>(0x8040201008040201ull));
  return _mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit);
}
// The 32 nibbles of a block in element order (low nibbles are elements 0..15, high 16..31).
inline __m256i nibbles(const std::uint8_t* qs) {
  __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(q, 4), q), _mm256_set1_epi8(0x0f));
}

// Q5_0: a code whose fifth bit is clear is nibble - 16 = nibble | 0xf0 as int8, so the signed value
// is built directly and dotted as Q8_0 (|w| times x with w's sign; -16..15 never overflows).
template <int NR>
inline void dot_q5_0(std::int64_t n, const std::uint8_t* w, std::size_t rb, const void* xv, float* out) {
  const auto* x = static_cast<const BlockQ8_0*>(xv);
  const std::int64_t nb = n / 32;
  const __m256i high = _mm256_set1_epi8(static_cast<char>(0xf0));
  __m256 acc[NR];
  for (int r = 0; r < NR; ++r) acc[r] = _mm256_setzero_ps();
  for (std::int64_t ib = 0; ib < nb; ++ib) {
    const __m256i xq = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[ib].qs));
    const float dx = h2f(x[ib].d);
    for (int r = 0; r < NR; ++r) {
      const auto* b = reinterpret_cast<const quant::BlockQ5_0*>(w + r * rb) + ib;
      __m256i q = _mm256_or_si256(nibbles(b->qs), _mm256_andnot_si256(qh_bytes(b->qh), high));
      __m256i d = madd_u8s8(_mm256_abs_epi8(q), _mm256_sign_epi8(xq, q));
      acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(d), _mm256_set1_ps(h2f(b->d) * dx), acc[r]);
    }
  }
  for (int r = 0; r < NR; ++r) out[r] = hsum8(acc[r]);
}

// Q4_1 / Q5_1: sum(d q dx xq + m dx xq). The min term uses the exact integer sum of the activation
// codes (8 partial sums per block) rather than Q8_1's fp16 `s`, so the result is the product of the
// decoded operands, as on avx512.
template <int NR, bool Five>
inline void dot_qx_1(std::int64_t n, const std::uint8_t* w, std::size_t rb, const void* xv, float* out) {
  const auto* x = static_cast<const quant::BlockQ8_1*>(xv);
  const std::int64_t nb = n / 32;
  __m256 acc[NR], accm[NR];  // two chains, so a block's two FMAs do not wait on each other
  for (int r = 0; r < NR; ++r) acc[r] = accm[r] = _mm256_setzero_ps();
  for (std::int64_t ib = 0; ib < nb; ++ib) {
    const __m256i xq = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[ib].qs));
    const __m256 xsum = _mm256_cvtepi32_ps(madd_u8s8(_mm256_set1_epi8(1), xq));
    const float dx = h2f(x[ib].d);
    for (int r = 0; r < NR; ++r) {
      __m256i u;
      float d, m;
      if constexpr (Five) {
        const auto* b = reinterpret_cast<const quant::BlockQ5_1*>(w + r * rb) + ib;
        u = _mm256_or_si256(nibbles(b->qs), _mm256_and_si256(qh_bytes(b->qh), _mm256_set1_epi8(0x10)));
        d = h2f(b->d);
        m = h2f(b->m);
      } else {
        const auto* b = reinterpret_cast<const quant::BlockQ4_1*>(w + r * rb) + ib;
        u = nibbles(b->qs);
        d = h2f(b->d);
        m = h2f(b->m);
      }
      acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(madd_u8s8(u, xq)), _mm256_set1_ps(d * dx), acc[r]);
      accm[r] = _mm256_fmadd_ps(xsum, _mm256_set1_ps(m * dx), accm[r]);
    }
  }
  for (int r = 0; r < NR; ++r) out[r] = hsum8(_mm256_add_ps(acc[r], accm[r]));
}
template <int NR>
inline void dot_q4_1(std::int64_t n, const std::uint8_t* w, std::size_t rb, const void* xv, float* out) {
  dot_qx_1<NR, false>(n, w, rb, xv, out);
}
template <int NR>
inline void dot_q5_1(std::int64_t n, const std::uint8_t* w, std::size_t rb, const void* xv, float* out) {
  dot_qx_1<NR, true>(n, w, rb, xv, out);
}

// ---- K-quants x Q8_K ---------------------------------------------------------------------------
// The 8 six-bit scales and mins of a Q4_K/Q5_K super-block (12 packed bytes) as [8] int16 each,
// unpacked with 32-bit masks in registers (byte stores and reloads stall store forwarding). Scale and
// min j < 4 are the low 6 bits of bytes j and j + 4; j >= 4 take their low 4 bits from byte j + 4 (low
// / high nibble) and their top 2 from the spare top bits of bytes j - 4 / j.
inline void unpack_k4(const std::uint8_t* q, __m128i* sc16, __m128i* m16) {
  std::uint32_t a0, a1, a2;
  __builtin_memcpy(&a0, q, 4);
  __builtin_memcpy(&a1, q + 4, 4);
  __builtin_memcpy(&a2, q + 8, 4);
  const std::uint32_t sc_lo = a0 & 0x3f3f3f3fu, m_lo = a1 & 0x3f3f3f3fu;
  const std::uint32_t sc_hi = (a2 & 0x0f0f0f0fu) | ((a0 >> 2) & 0x30303030u);
  const std::uint32_t m_hi = ((a2 >> 4) & 0x0f0f0f0fu) | ((a1 >> 2) & 0x30303030u);
  *sc16 = _mm_cvtepu8_epi16(_mm_setr_epi32(static_cast<int>(sc_lo), static_cast<int>(sc_hi), 0, 0));
  *m16 = _mm_cvtepu8_epi16(_mm_setr_epi32(static_cast<int>(m_lo), static_cast<int>(m_hi), 0, 0));
}
// Word k of a 256-bit register holding [8] int16 in each 128-bit lane, in all 16 lanes.
inline __m256i bcast_word(__m256i v, int k) {
  return _mm256_shuffle_epi8(v, _mm256_set1_epi16(static_cast<short>((2 * k) | ((2 * k + 1) << 8))));
}
// Word 2g of such a register in the low 128-bit lane, word 2g + 1 in the high one: the multipliers of
// groups 2g and 2g + 1 of 16 elements, matching vpmaddubsw's output over 32 elements.
inline __m256i pair_words(__m256i v, int g) {
  const short lo = static_cast<short>((4 * g) | ((4 * g + 1) << 8));
  const short hi = static_cast<short>((4 * g + 2) | ((4 * g + 3) << 8));
  return _mm256_shuffle_epi8(v, _mm256_set_m128i(_mm_set1_epi16(hi), _mm_set1_epi16(lo)));
}

// Q4_K and Q5_K: value d sc q - dmin m per 32-element sub-block, q in 0..15 (Q4_K) or 0..31 (Q5_K:
// bit 2j of qh[l] is element 64j + l's fifth bit, bit 2j+1 element 64j + 32 + l's). Per 64 elements
// (one 32-byte qs chunk: low nibbles sub-block 2j, high 2j+1): vpmaddubsw(q, x), vpmaddwd with the
// sub-block's scale. The mins term uses the activation's 16-element sums (bsums).
template <int NR, bool Five>
inline void dot_q45_k(std::int64_t n, const std::uint8_t* w, std::size_t rb, const void* xv, float* out) {
  using Block = std::conditional_t<Five, quant::BlockQ5_K, BlockQ4_K>;
  const auto* x = static_cast<const BlockQ8_K*>(xv);
  const std::int64_t nb = n / 256;
  const __m256i lo_mask = _mm256_set1_epi8(0x0f);
  const __m256i bit4 = _mm256_set1_epi8(0x10);
  __m256 acc[NR];
  float accm[NR];
  for (int r = 0; r < NR; ++r) {
    acc[r] = _mm256_setzero_ps();
    accm[r] = 0.0f;
  }
  for (std::int64_t ib = 0; ib < nb; ++ib) {
    const BlockQ8_K& xb = x[ib];
    const __m256i bs = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xb.bsums));
    for (int r = 0; r < NR; ++r) {
      const auto* b = reinterpret_cast<const Block*>(w + r * rb) + ib;
      __m128i sc16, m16;
      unpack_k4(b->scales, &sc16, &m16);
      const __m256i sc = _mm256_broadcastsi128_si256(sc16);
      // Q5_K: bits 0 and 1 of each qh byte are chunk j's fifth bits; shifted right by 2 per chunk
      // (16-bit shifts carry the upper byte's bits only into bits 6-7, never read).
      __m256i hb = _mm256_setzero_si256();
      if constexpr (Five) hb = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b->qh));
      __m256i isum = _mm256_setzero_si256();
      for (int j = 0; j < 4; ++j) {
        __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b->qs + 32 * j));
        __m256i lo = _mm256_and_si256(q, lo_mask);
        __m256i hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), lo_mask);
        if constexpr (Five) {
          lo = _mm256_or_si256(lo, _mm256_and_si256(_mm256_slli_epi16(hb, 4), bit4));
          hi = _mm256_or_si256(hi, _mm256_and_si256(_mm256_slli_epi16(hb, 3), bit4));
          hb = _mm256_srli_epi16(hb, 2);
        }
        __m256i p0 = _mm256_maddubs_epi16(lo, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xb.qs + 64 * j)));
        __m256i p1 =
            _mm256_maddubs_epi16(hi, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xb.qs + 64 * j + 32)));
        isum = _mm256_add_epi32(isum, _mm256_madd_epi16(p0, bcast_word(sc, 2 * j)));
        isum = _mm256_add_epi32(isum, _mm256_madd_epi16(p1, bcast_word(sc, 2 * j + 1)));
      }
      // mins: sum_k m[k] (bsums[2k] + bsums[2k+1]); each min doubled to match the 16 bsums
      const __m256i m_x2 = _mm256_set_m128i(_mm_unpackhi_epi16(m16, m16), _mm_unpacklo_epi16(m16, m16));
      const int msum = hsum8i(_mm256_madd_epi16(bs, m_x2));
      const float d = xb.d * h2f(b->d);
      const float dmin = xb.d * h2f(b->dmin);
      acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_set1_ps(d), acc[r]);
      accm[r] += dmin * static_cast<float>(msum);
    }
  }
  for (int r = 0; r < NR; ++r) out[r] = hsum8(acc[r]) - accm[r];
}
template <int NR>
inline void dot_q4_k(std::int64_t n, const std::uint8_t* w, std::size_t rb, const void* xv, float* out) {
  dot_q45_k<NR, false>(n, w, rb, xv, out);
}
template <int NR>
inline void dot_q5_k(std::int64_t n, const std::uint8_t* w, std::size_t rb, const void* xv, float* out) {
  dot_q45_k<NR, true>(n, w, rb, xv, out);
}

template <int NR>
inline void dot_q6_k(std::int64_t n, const std::uint8_t* w, std::size_t rb, const void* xv, float* out) {
  const auto* x = static_cast<const BlockQ8_K*>(xv);
  const std::int64_t nb = n / 256;
  const __m256i m4 = _mm256_set1_epi8(0x0f);
  const __m256i m2 = _mm256_set1_epi8(0x03);
  __m256 acc[NR];
  for (int r = 0; r < NR; ++r) acc[r] = _mm256_setzero_ps();
  for (std::int64_t ib = 0; ib < nb; ++ib) {
    const BlockQ8_K& xb = x[ib];
    const __m256i bs = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xb.bsums));
    for (int r = 0; r < NR; ++r) {
      const auto* b = reinterpret_cast<const BlockQ6_K*>(w + r * rb) + ib;
      __m256i isum = _mm256_setzero_si256();
      for (int h = 0; h < 2; ++h) {
        const std::uint8_t* ql = b->ql + 64 * h;
        const std::uint8_t* qh = b->qh + 32 * h;
        const std::int8_t* sc = b->scales + 8 * h;
        const std::int8_t* xq = xb.qs + 128 * h;
        __m256i l0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ql));
        __m256i l1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ql + 32));
        __m256i hh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qh));
        __m256i q[4];
        q[0] = _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_slli_epi16(_mm256_and_si256(hh, m2), 4));
        q[1] = _mm256_or_si256(_mm256_and_si256(l1, m4),
                               _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hh, 2), m2), 4));
        q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4),
                               _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hh, 4), m2), 4));
        q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                               _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hh, 6), m2), 4));
        const __m128i s8 = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(sc));
        const __m256i s16 = _mm256_broadcastsi128_si256(_mm_cvtepi8_epi16(s8));
        for (int g = 0; g < 4; ++g) {
          __m256i p = _mm256_maddubs_epi16(q[g], _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq + 32 * g)));
          isum = _mm256_add_epi32(isum, _mm256_madd_epi16(p, pair_words(s16, g)));
        }
      }
      __m256i s16all = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b->scales)));
      const int corr = -32 * hsum8i(_mm256_madd_epi16(bs, s16all));
      isum = _mm256_add_epi32(isum, _mm256_setr_epi32(corr, 0, 0, 0, 0, 0, 0, 0));
      acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_set1_ps(xb.d * h2f(b->d)), acc[r]);
    }
  }
  for (int r = 0; r < NR; ++r) out[r] = hsum8(acc[r]);
}

// Q3_K and Q2_K: 2-bit codes at shift 2j of qs[32 h + l] give element 128 h + 32 j + l; 16 groups of
// 16 elements with one multiplier each. Q3_K: q' = code + 4 * (bit 4h + j of hmask[l]) in 0..7,
// value d (sc - 32) (q' - 4). Q2_K: value d (sc & 15) code - dmin (sc >> 4).
// Per 32 elements (one j): vpmaddubsw(code, x) gives 16 pair sums, the low 128 bits from group 2j of
// the half and the high from group 2j+1; vpmaddwd with those two multipliers (one per 128-bit lane).
template <int NR, bool Three>
inline void dot_q23_k(std::int64_t n, const std::uint8_t* w, std::size_t rb, const void* xv, float* out) {
  const auto* x = static_cast<const BlockQ8_K*>(xv);
  const std::int64_t nb = n / 256;
  const __m256i m3 = _mm256_set1_epi8(3);
  const __m256i bit2 = _mm256_set1_epi8(4);
  __m256 acc[NR];
  float accm[NR];
  for (int r = 0; r < NR; ++r) {
    acc[r] = _mm256_setzero_ps();
    accm[r] = 0.0f;
  }
  for (std::int64_t ib = 0; ib < nb; ++ib) {
    const BlockQ8_K& xb = x[ib];
    const __m256i bs = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xb.bsums));
    for (int r = 0; r < NR; ++r) {
      __m128i sc8;  // [16] int8 multiplier of each group
      const std::uint8_t* qs;
      __m256i hm = _mm256_setzero_si256();
      float d, dmin = 0.0f;
      int corr;  // Q3_K: 4 sum sc bsums, subtracted in int32; Q2_K: sum min bsums, times dmin
      if constexpr (Three) {
        const auto* b = reinterpret_cast<const quant::BlockQ3_K*>(w + r * rb) + ib;
        // 12 bytes -> 16 six-bit scales: low nibbles of bytes 0-7 (scales 0-7) and their high nibbles
        // (8-15); scale j's top 2 bits at bit 2 (j / 4) of byte 8 + j % 4.
        std::uint32_t a0, a1, t;
        __builtin_memcpy(&a0, b->scales, 4);
        __builtin_memcpy(&a1, b->scales + 4, 4);
        __builtin_memcpy(&t, b->scales + 8, 4);
        const std::uint32_t k4 = 0x0f0f0f0fu, k2 = 0x03030303u;
        sc8 = _mm_setr_epi32(static_cast<int>((a0 & k4) | ((t & k2) << 4)),
                             static_cast<int>((a1 & k4) | (((t >> 2) & k2) << 4)),
                             static_cast<int>(((a0 >> 4) & k4) | (((t >> 4) & k2) << 4)),
                             static_cast<int>(((a1 >> 4) & k4) | (((t >> 6) & k2) << 4)));
        sc8 = _mm_sub_epi8(sc8, _mm_set1_epi8(32));
        qs = b->qs;
        hm = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b->hmask));
        d = xb.d * h2f(b->d);
        corr = 4 * hsum8i(_mm256_madd_epi16(bs, _mm256_cvtepi8_epi16(sc8)));
      } else {
        const auto* b = reinterpret_cast<const quant::BlockQ2_K*>(w + r * rb) + ib;
        const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b->scales));
        sc8 = _mm_and_si128(raw, _mm_set1_epi8(0x0f));
        const __m128i mins = _mm_and_si128(_mm_srli_epi16(raw, 4), _mm_set1_epi8(0x0f));
        qs = b->qs;
        d = xb.d * h2f(b->d);
        dmin = xb.d * h2f(b->dmin);
        corr = hsum8i(_mm256_madd_epi16(bs, _mm256_cvtepu8_epi16(mins)));
      }
      __m256i isum = _mm256_setzero_si256();
      for (int h = 0; h < 2; ++h) {
        // the half's 8 multipliers as int16 in both 128-bit lanes; shuffled per j below
        const __m256i s16 = _mm256_broadcastsi128_si256(
            _mm_cvtepi8_epi16(h == 0 ? sc8 : _mm_srli_si128(sc8, 8)));  // byte shifts need an immediate
        const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qs + 32 * h));
        for (int j = 0; j < 4; ++j) {
          __m256i c = _mm256_and_si256(_mm256_srli_epi16(q, 2 * j), m3);
          if constexpr (Three) {  // hmask bit 0 moved to bit 2; then the next bit down (16-bit
                                  // shifts leak the upper byte only into bits never read)
            c = _mm256_or_si256(c, _mm256_and_si256(_mm256_slli_epi16(hm, 2), bit2));
            hm = _mm256_srli_epi16(hm, 1);
          }
          const auto* xq = reinterpret_cast<const __m256i*>(xb.qs + 128 * h + 32 * j);
          const __m256i p = _mm256_maddubs_epi16(c, _mm256_loadu_si256(xq));
          isum = _mm256_add_epi32(isum, _mm256_madd_epi16(p, pair_words(s16, j)));
        }
      }
      if constexpr (Three) isum = _mm256_sub_epi32(isum, _mm256_setr_epi32(corr, 0, 0, 0, 0, 0, 0, 0));
      acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_set1_ps(d), acc[r]);
      accm[r] += dmin * static_cast<float>(corr);  // 0 for Q3_K
    }
  }
  for (int r = 0; r < NR; ++r) out[r] = hsum8(acc[r]) - accm[r];
}
template <int NR>
inline void dot_q3_k(std::int64_t n, const std::uint8_t* w, std::size_t rb, const void* xv, float* out) {
  dot_q23_k<NR, true>(n, w, rb, xv, out);
}
template <int NR>
inline void dot_q2_k(std::int64_t n, const std::uint8_t* w, std::size_t rb, const void* xv, float* out) {
  dot_q23_k<NR, false>(n, w, rb, xv, out);
}

// ---- drivers (as in avx512.cpp) -------------------------------------------------------------------
template <GgmlType T, void (*Dot1)(std::int64_t, const std::uint8_t*, std::size_t, const void*, float*),
          void (*DotN)(std::int64_t, const std::uint8_t*, std::size_t, const void*, float*)>
struct Driver {
  static constexpr GgmlType kType = T;
  static float vec_dot(std::int64_t n, const void* w, const void* x) {
    G2C_DCHECK_DOT(T, n, w, x);
    float out;
    Dot1(n, static_cast<const std::uint8_t*>(w), 0, x, &out);
    return out;
  }
  static void matvec(std::int64_t n, const void* w, std::size_t rb, const void* x, float* y, std::int64_t r0,
                     std::int64_t r1) {
    G2C_DCHECK_MATVEC(T, n, w, x, y, r0, r1);
    const auto* wb = static_cast<const std::uint8_t*>(w);
    for (std::int64_t r = r0; r < r1; ++r) Dot1(n, wb + r * rb, rb, x, y + r);
  }
  static void matmul(std::int64_t n, const void* w, std::size_t rb, const void* x, std::size_t xs, std::int64_t n_tok,
                     float* y, std::int64_t ldy, std::int64_t r0, std::int64_t r1) {
    G2C_DCHECK_MATMUL(T, n, w, x, n_tok, y, ldy, r0, r1);
    const auto* wb = static_cast<const std::uint8_t*>(w);
    const auto* xb = static_cast<const std::uint8_t*>(x);
    float tmp[kRows];
    std::int64_t r = r0;
    for (; r + kRows <= r1; r += kRows) {
      for (std::int64_t it = 0; it < n_tok; ++it) {
        DotN(n, wb + r * rb, rb, xb + it * xs, tmp);
        for (int k = 0; k < kRows; ++k) y[it * ldy + r + k] = tmp[k];
      }
    }
    for (; r < r1; ++r)
      for (std::int64_t it = 0; it < n_tok; ++it) Dot1(n, wb + r * rb, rb, xb + it * xs, y + it * ldy + r);
  }
  // A few tokens (batched decode): one row at a time, front to back as matvec reads it; the row comes
  // from memory for the first token and from L1 for the others. Each value equals vec_dot's exactly.
  static void matmul_small(std::int64_t n, const void* w, std::size_t rb, const void* x, std::size_t xs,
                           std::int64_t n_tok, float* y, std::int64_t ldy, std::int64_t r0, std::int64_t r1) {
    G2C_DCHECK_MATMUL(T, n, w, x, n_tok, y, ldy, r0, r1);
    const auto* wb = static_cast<const std::uint8_t*>(w);
    const auto* xb = static_cast<const std::uint8_t*>(x);
    for (std::int64_t r = r0; r < r1; ++r)
      for (std::int64_t it = 0; it < n_tok; ++it) Dot1(n, wb + r * rb, rb, xb + it * xs, y + it * ldy + r);
  }
};

// Weights of type D::kType dot against `act` activations made by from_float.
template <class D>
void install(KernelTable& t, GgmlType act, FromFloatFn from_float) {
  TypeKernels& k = t.types[static_cast<std::size_t>(D::kType)];
  k.act_type = act;
  k.from_float = from_float;
  k.vec_dot = &D::vec_dot;
  k.matvec = &D::matvec;
  k.matmul = &D::matmul;
  k.matmul_small = &D::matmul_small;
}

// f32 activations -> Act blocks (Q8_0, Q8_1, Q8_K), quant's reference quantizer.
template <GgmlType Act>
void quantize_activations(const float* x, void* y, std::int64_t n) {
  G2C_DCHECK_FROM_FLOAT(Act, n, x, y);
  quant::quantize_row(Act, x, y, n);
}

KernelTable make() {
  KernelTable t = ref::make_table();
  t.isa_name = "avx2";
  using F = GgmlType;
  constexpr FromFloatFn q8_0 = &quantize_activations<F::Q8_0>, q8_1 = &quantize_activations<F::Q8_1>,
                        q8_k = &quantize_activations<F::Q8_K>;
  install<Driver<F::F32, dot_float<1, 0>, dot_float<kRows, 0>>>(t, F::F32, nullptr);
  install<Driver<F::F16, dot_float<1, 1>, dot_float<kRows, 1>>>(t, F::F32, nullptr);
  install<Driver<F::BF16, dot_float<1, 2>, dot_float<kRows, 2>>>(t, F::F32, nullptr);
  install<Driver<F::Q8_0, dot_q8_0<1>, dot_q8_0<kRows>>>(t, F::Q8_0, q8_0);
  install<Driver<F::Q4_0, dot_q4_0<1>, dot_q4_0<kRows>>>(t, F::Q8_0, q8_0);
  install<Driver<F::Q4_K, dot_q4_k<1>, dot_q4_k<kRows>>>(t, F::Q8_K, q8_k);
  install<Driver<F::Q6_K, dot_q6_k<1>, dot_q6_k<kRows>>>(t, F::Q8_K, q8_k);
  install<Driver<F::Q5_0, dot_q5_0<1>, dot_q5_0<kRows>>>(t, F::Q8_0, q8_0);
  install<Driver<F::Q4_1, dot_q4_1<1>, dot_q4_1<kRows>>>(t, F::Q8_1, q8_1);
  install<Driver<F::Q5_1, dot_q5_1<1>, dot_q5_1<kRows>>>(t, F::Q8_1, q8_1);
  install<Driver<F::Q5_K, dot_q5_k<1>, dot_q5_k<kRows>>>(t, F::Q8_K, q8_k);
  install<Driver<F::Q3_K, dot_q3_k<1>, dot_q3_k<kRows>>>(t, F::Q8_K, q8_k);
  install<Driver<F::Q2_K, dot_q2_k<1>, dot_q2_k<kRows>>>(t, F::Q8_K, q8_k);
  return t;
}

}  // namespace

const KernelTable* table() {
  static const KernelTable t = make();
  return &t;
}

}  // namespace g2c::kernels::avx2
