// AVX2 kernel table (AVX2 + FMA + F16C): for x86 CPUs without AVX-512. Compiled with its own flags
// and namespace; starts from the ref table and overrides the weight types it implements. Same
// activation choices and row blocking as x86/avx512.cpp (see there); int8 products use
// vpmaddubsw + vpmaddwd instead of VNNI.
#include <immintrin.h>

#include <cstdint>

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

// ---- K-quants x Q8_K ---------------------------------------------------------------------------
inline void scale_mins_k4(const std::uint8_t* q, std::uint8_t* sc, std::uint8_t* m) {
  for (int j = 0; j < 4; ++j) {
    sc[j] = q[j] & 63;
    m[j] = q[j + 4] & 63;
  }
  for (int j = 4; j < 8; ++j) {
    sc[j] = static_cast<std::uint8_t>((q[j + 4] & 0xf) | ((q[j - 4] >> 6) << 4));
    m[j] = static_cast<std::uint8_t>((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}

template <int NR>
inline void dot_q4_k(std::int64_t n, const std::uint8_t* w, std::size_t rb, const void* xv, float* out) {
  const auto* x = static_cast<const BlockQ8_K*>(xv);
  const std::int64_t nb = n / 256;
  const __m256i lo_mask = _mm256_set1_epi8(0x0f);
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
      const auto* b = reinterpret_cast<const BlockQ4_K*>(w + r * rb) + ib;
      std::uint8_t sc[8], mn[8];
      scale_mins_k4(b->scales, sc, mn);
      __m256i isum = _mm256_setzero_si256();
      for (int j = 0; j < 4; ++j) {
        __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b->qs + 32 * j));
        __m256i lo = _mm256_and_si256(q, lo_mask);
        __m256i hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), lo_mask);
        __m256i p0 = _mm256_maddubs_epi16(lo, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xb.qs + 64 * j)));
        __m256i p1 = _mm256_maddubs_epi16(hi, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xb.qs + 64 * j + 32)));
        isum = _mm256_add_epi32(isum, _mm256_madd_epi16(p0, _mm256_set1_epi16(sc[2 * j])));
        isum = _mm256_add_epi32(isum, _mm256_madd_epi16(p1, _mm256_set1_epi16(sc[2 * j + 1])));
      }
      __m128i m8 = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(mn));
      __m256i m16 = _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(m8, m8));
      const int msum = hsum8i(_mm256_madd_epi16(bs, m16));
      const float d = xb.d * h2f(b->d);
      const float dmin = xb.d * h2f(b->dmin);
      acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_set1_ps(d), acc[r]);
      accm[r] += dmin * static_cast<float>(msum);
    }
  }
  for (int r = 0; r < NR; ++r) out[r] = hsum8(acc[r]) - accm[r];
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
        q[1] = _mm256_or_si256(_mm256_and_si256(l1, m4), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hh, 2), m2), 4));
        q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4),
                               _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hh, 4), m2), 4));
        q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                               _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hh, 6), m2), 4));
        for (int g = 0; g < 4; ++g) {
          __m256i p = _mm256_maddubs_epi16(q[g], _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq + 32 * g)));
          __m256i s = _mm256_set_m128i(_mm_set1_epi16(sc[2 * g + 1]), _mm_set1_epi16(sc[2 * g]));
          isum = _mm256_add_epi32(isum, _mm256_madd_epi16(p, s));
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

// ---- drivers (as in avx512.cpp) -------------------------------------------------------------------
template <void (*Dot1)(std::int64_t, const std::uint8_t*, std::size_t, const void*, float*),
          void (*DotN)(std::int64_t, const std::uint8_t*, std::size_t, const void*, float*)>
struct Driver {
  static float vec_dot(std::int64_t n, const void* w, const void* x) {
    float out;
    Dot1(n, static_cast<const std::uint8_t*>(w), 0, x, &out);
    return out;
  }
  static void matvec(std::int64_t n, const void* w, std::size_t rb, const void* x, float* y, std::int64_t r0,
                     std::int64_t r1) {
    const auto* wb = static_cast<const std::uint8_t*>(w);
    for (std::int64_t r = r0; r < r1; ++r) Dot1(n, wb + r * rb, rb, x, y + r);
  }
  static void matmul(std::int64_t n, const void* w, std::size_t rb, const void* x, std::size_t xs,
                     std::int64_t n_tok, float* y, std::int64_t ldy, std::int64_t r0, std::int64_t r1) {
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
};

template <class D>
void install(TypeKernels& k, GgmlType act, FromFloatFn from_float) {
  k.act_type = act;
  k.from_float = from_float;
  k.vec_dot = &D::vec_dot;
  k.matvec = &D::matvec;
  k.matmul = &D::matmul;
}

void q8_0_from_float(const float* x, void* y, std::int64_t n) { quant::quantize_row(GgmlType::Q8_0, x, y, n); }
void q8_k_from_float(const float* x, void* y, std::int64_t n) { quant::quantize_row(GgmlType::Q8_K, x, y, n); }

KernelTable make() {
  KernelTable t = ref::make_table();
  t.isa_name = "avx2";
  auto& ty = t.types;
  install<Driver<dot_float<1, 0>, dot_float<kRows, 0>>>(ty[static_cast<int>(GgmlType::F32)], GgmlType::F32, nullptr);
  install<Driver<dot_float<1, 1>, dot_float<kRows, 1>>>(ty[static_cast<int>(GgmlType::F16)], GgmlType::F32, nullptr);
  install<Driver<dot_float<1, 2>, dot_float<kRows, 2>>>(ty[static_cast<int>(GgmlType::BF16)], GgmlType::F32, nullptr);
  install<Driver<dot_q8_0<1>, dot_q8_0<kRows>>>(ty[static_cast<int>(GgmlType::Q8_0)], GgmlType::Q8_0, &q8_0_from_float);
  install<Driver<dot_q4_0<1>, dot_q4_0<kRows>>>(ty[static_cast<int>(GgmlType::Q4_0)], GgmlType::Q8_0, &q8_0_from_float);
  install<Driver<dot_q4_k<1>, dot_q4_k<kRows>>>(ty[static_cast<int>(GgmlType::Q4_K)], GgmlType::Q8_K, &q8_k_from_float);
  install<Driver<dot_q6_k<1>, dot_q6_k<kRows>>>(ty[static_cast<int>(GgmlType::Q6_K)], GgmlType::Q8_K, &q8_k_from_float);
  return t;
}

}  // namespace

const KernelTable* table() {
  static const KernelTable t = make();
  return &t;
}

}  // namespace g2c::kernels::avx2
