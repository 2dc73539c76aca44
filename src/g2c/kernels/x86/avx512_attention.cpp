// AVX-512 attention over the KV cache, softmax, F16 KV store and the Q8_0 activation quantizer: the
// row operations of the avx512 table (x86/avx512.cpp holds the matrix kernels and the table). Same
// compile flags as avx512.cpp; nothing here is inline in a shared header.
#include <immintrin.h>

#include <cmath>
#include <cstdint>

#include "g2c/kernels/kernels.hpp"
#include "g2c/quant/blocks.hpp"

namespace g2c::kernels::avx512::detail {
namespace {

// ---- attention over the KV cache ----------------------------------------------------------------
// exp(x) for x <= 0 (softmax after max subtraction): range reduction to 2^n * exp(r), |r| <= ln2/2,
// degree-6 polynomial; relative error ~2e-7, below the f32 rounding of the reference's std::exp sum.
inline __m512 exp512(__m512 x) {
  x = _mm512_max_ps(x, _mm512_set1_ps(-87.0f));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145751953125f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.428606765330187045e-06f), r);
  __m512 p = _mm512_set1_ps(1.0f / 720);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  const __m512i e = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23);
  return _mm512_mul_ps(p, _mm512_castsi512_ps(e));
}

// softmax in place; the sum is accumulated in float lanes then reduced in double.
void softmax_impl(float* x, std::int64_t n) {
  __m512 mx = _mm512_set1_ps(-INFINITY);
  std::int64_t i = 0;
  for (; i + 16 <= n; i += 16) mx = _mm512_max_ps(mx, _mm512_loadu_ps(x + i));
  float m = _mm512_reduce_max_ps(mx);
  for (std::int64_t j = i; j < n; ++j) m = x[j] > m ? x[j] : m;
  const __m512 vm = _mm512_set1_ps(m);
  __m512 sum = _mm512_setzero_ps();
  i = 0;
  for (; i + 16 <= n; i += 16) {
    __m512 e = exp512(_mm512_sub_ps(_mm512_loadu_ps(x + i), vm));
    _mm512_storeu_ps(x + i, e);
    sum = _mm512_add_ps(sum, e);
  }
  if (i < n) {
    __mmask16 mk = static_cast<__mmask16>((1u << (n - i)) - 1);
    __m512 e = exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(mk, x + i), vm));
    _mm512_mask_storeu_ps(x + i, mk, e);
    sum = _mm512_add_ps(sum, _mm512_maskz_mov_ps(mk, e));
  }
  const __m512 inv = _mm512_set1_ps(static_cast<float>(1.0 / static_cast<double>(_mm512_reduce_add_ps(sum))));
  i = 0;
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(x + i, _mm512_mul_ps(_mm512_loadu_ps(x + i), inv));
  for (; i < n; ++i) x[i] *= _mm512_cvtss_f32(inv);
}

template <bool F16>
inline __m512 load_kv(const std::uint8_t* row, std::int64_t i, __mmask16 m) {
  if constexpr (F16) return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, row + 2 * i));
  else return _mm512_maskz_loadu_ps(m, reinterpret_cast<const float*>(row) + i);
}

// out[hd] = softmax(scale * q.K^T) V over n_kv rows; head_dim up to 256 kept in registers.
template <bool F16>
void attend(const float* q, const void* k, const void* v, std::size_t row_stride, std::int64_t n_kv,
            std::int64_t head_dim, float scale, float* scratch, float* out) {
  constexpr int kMaxChunks = 16;
  const int nc = static_cast<int>((head_dim + 15) / 16);
  if (nc > kMaxChunks) {
    ref_table().attend[F16 ? 1 : 0](q, k, v, row_stride, n_kv, head_dim, scale, scratch, out);
    return;
  }
  __mmask16 mask[kMaxChunks];
  __m512 qv[kMaxChunks];
  for (int c = 0; c < nc; ++c) {
    const std::int64_t left = head_dim - 16 * c;
    mask[c] = left >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << left) - 1);
    qv[c] = _mm512_mul_ps(_mm512_maskz_loadu_ps(mask[c], q + 16 * c), _mm512_set1_ps(scale));
  }
  const auto* kb = static_cast<const std::uint8_t*>(k);
  const auto* vb = static_cast<const std::uint8_t*>(v);
  // Scores four rows at a time: the four horizontal sums share one transpose-and-add reduction.
  std::int64_t j = 0;
  for (; j + 4 <= n_kv; j += 4) {
    __m512 a[4];
    for (int u = 0; u < 4; ++u) {
      const std::uint8_t* row = kb + (j + u) * row_stride;
      a[u] = _mm512_mul_ps(qv[0], load_kv<F16>(row, 0, mask[0]));
      for (int c = 1; c < nc; ++c) a[u] = _mm512_fmadd_ps(qv[c], load_kv<F16>(row, 16 * c, mask[c]), a[u]);
    }
    const __m512 t0 = _mm512_add_ps(_mm512_unpacklo_ps(a[0], a[1]), _mm512_unpackhi_ps(a[0], a[1]));
    const __m512 t1 = _mm512_add_ps(_mm512_unpacklo_ps(a[2], a[3]), _mm512_unpackhi_ps(a[2], a[3]));
    // per 128-bit lane: [row0, row1, row2, row3] partial sums
    const __m512 u = _mm512_add_ps(_mm512_shuffle_ps(t0, t1, 0x44), _mm512_shuffle_ps(t0, t1, 0xee));
    __m128 r = _mm_add_ps(_mm_add_ps(_mm512_castps512_ps128(u), _mm512_extractf32x4_ps(u, 1)),
                          _mm_add_ps(_mm512_extractf32x4_ps(u, 2), _mm512_extractf32x4_ps(u, 3)));
    _mm_storeu_ps(scratch + j, r);
  }
  for (; j < n_kv; ++j) {
    const std::uint8_t* row = kb + j * row_stride;
    __m512 acc = _mm512_mul_ps(qv[0], load_kv<F16>(row, 0, mask[0]));
    for (int c = 1; c < nc; ++c) acc = _mm512_fmadd_ps(qv[c], load_kv<F16>(row, 16 * c, mask[c]), acc);
    scratch[j] = _mm512_reduce_add_ps(acc);
  }
  softmax_impl(scratch, n_kv);
  __m512 o[kMaxChunks];
  for (int c = 0; c < nc; ++c) o[c] = _mm512_setzero_ps();
  for (j = 0; j < n_kv; ++j) {
    const std::uint8_t* row = vb + j * row_stride;
    const __m512 a = _mm512_set1_ps(scratch[j]);
    for (int c = 0; c < nc; ++c) o[c] = _mm512_fmadd_ps(a, load_kv<F16>(row, 16 * c, mask[c]), o[c]);
  }
  for (int c = 0; c < nc; ++c) _mm512_mask_storeu_ps(out + 16 * c, mask[c], o[c]);
}

}  // namespace

void softmax(float* x, std::int64_t n) { softmax_impl(x, n); }

void kv_store_f16(const float* x, void* dst, std::int64_t n) {
  auto* d = static_cast<std::uint8_t*>(dst);
  std::int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(d + 2 * i),
                        _mm512_cvtps_ph(_mm512_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  if (i < n) {
    __mmask16 m = static_cast<__mmask16>((1u << (n - i)) - 1);
    _mm256_mask_storeu_epi16(d + 2 * i, m,
                             _mm512_cvtps_ph(_mm512_maskz_loadu_ps(m, x + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  }
}


void attend_f32(const float* q, const void* k, const void* v, std::size_t row_stride, std::int64_t n_kv,
                std::int64_t head_dim, float scale, float* scratch, float* out) {
  attend<false>(q, k, v, row_stride, n_kv, head_dim, scale, scratch, out);
}
void attend_f16(const float* q, const void* k, const void* v, std::size_t row_stride, std::int64_t n_kv,
                std::int64_t head_dim, float scale, float* scratch, float* out) {
  attend<true>(q, k, v, row_stride, n_kv, head_dim, scale, scratch, out);
}

// Q8_0 activation quantization, byte-identical to quant::quantize_row (d = amax / 127, q = roundf(x / d)
// with halves away from zero): |v| is truncated and bumped when its fraction is >= 0.5, which is
// exactly roundf; both steps are exact in float.
void q8_0_from_float(const float* x, void* y, std::int64_t n) {
  auto* out = static_cast<quant::BlockQ8_0*>(y);
  const __m512i sign_bit = _mm512_set1_epi32(static_cast<int>(0x80000000u));
  for (std::int64_t ib = 0; ib < n / 32; ++ib) {
    const __m512 a = _mm512_loadu_ps(x + 32 * ib), b = _mm512_loadu_ps(x + 32 * ib + 16);
    const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(a), _mm512_abs_ps(b)));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    out[ib].d = static_cast<std::uint16_t>(_cvtss_sh(d, _MM_FROUND_TO_NEAREST_INT));
    const __m512 vid = _mm512_set1_ps(id);
    for (int h = 0; h < 2; ++h) {
      const __m512 v = _mm512_mul_ps(h ? b : a, vid);
      const __m512 av = _mm512_abs_ps(v);
      __m512 t = _mm512_roundscale_ps(av, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
      const __mmask16 up = _mm512_cmp_ps_mask(_mm512_sub_ps(av, t), _mm512_set1_ps(0.5f), _CMP_GE_OQ);
      t = _mm512_mask_add_ps(t, up, t, _mm512_set1_ps(1.0f));
      const __m512 q = _mm512_castsi512_ps(  // copy the sign back
          _mm512_or_si512(_mm512_castps_si512(t), _mm512_and_si512(_mm512_castps_si512(v), sign_bit)));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out[ib].qs + 16 * h), _mm512_cvtepi32_epi8(_mm512_cvttps_epi32(q)));
    }
  }
}
}  // namespace g2c::kernels::avx512::detail
