// AVX-512 row operations of the avx512 table: attention over the KV cache, softmax, the F16 KV store,
// the Q8_0 activation quantizer, RMSNorm, add, SiLU and SwiGLU (x86/avx512.cpp holds the matrix kernels
// and the table). Same compile flags as avx512.cpp; nothing here is inline in a shared header.
#include <immintrin.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>

#include "g2c/kernels/dcheck.hpp"
#include "g2c/kernels/kernels.hpp"
#include "g2c/quant/blocks.hpp"

namespace g2c::kernels::avx512::detail {
namespace {

// ---- attention over the KV cache ----------------------------------------------------------------
// exp(x): x = n ln2 + r, |r| <= ln2/2, e^r by its degree-6 Taylor polynomial (relative error < 2e-7
// on that interval, below the f32 rounding of the reference's std::exp sum), times 2^n by vscalefps,
// which also gives denormals / 0 below the float range and +inf above it (SiLU's exp(-x) needs both
// ends; softmax after max subtraction only x <= 0).
inline __m512 exp512(__m512 x) {
  x = _mm512_max_ps(_mm512_min_ps(x, _mm512_set1_ps(89.0f)), _mm512_set1_ps(-104.0f));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145751953125f), x);  // ln2, high part (n * hi exact)
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.428606765330187045e-06f), r);  // ln2, low part
  __m512 p = _mm512_set1_ps(1.0f / 720);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  return _mm512_scalef_ps(p, n);
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
  if constexpr (F16)
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, row + 2 * i));
  else
    return _mm512_maskz_loadu_ps(m, reinterpret_cast<const float*>(row) + i);
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

// ---- attention of many queries over one KV head (prefill, GQA groups) ---------------------------
// Each K and V row is converted to f32 once per call (in blocks of kBlock rows) and used by every
// query that reaches it, instead of every query re-reading and re-converting the whole history.
// Queries sit in the lanes (Q transposed: 16 queries per vector, one broadcast K element per FMA),
// so the softmax statistics are lane-wise.
//
// Bit-identical to `attend` above for every query: the scores repeat its order of operations (lane
// partials P[l] = q.k over dims l, l+16, ... in order, then its horizontal sums: the 4-row
// transpose-and-add tree, or _mm512_reduce_add_ps's tree for the last n_kv % 4 rows), the softmax
// is its two-pass one (max, exp, the 16 lane sums, 1/sum in double) and P.V adds the rows in order.
// Rows a query does not reach get probability exactly 0. So a query's result never depends on the
// batch around it (ubatch size, chunking, decode vs prefill, thread count): what the model tests
// check bit for bit.
constexpr std::int64_t kBlock = 64;      // KV rows per block
constexpr std::int64_t kMinQueries = 4;  // below this, `attend` per query (identical results, cheaper)
constexpr int kTileRows = 4;             // score rows per tile: attend's 4-row reduction group

// _mm512_reduce_add_ps's order over 16 lane partials, lane-wise over 16 queries (GCC's
// __MM512_REDUCE_OP: halves, quarters, then pairs).
inline __m512 tree_reduce_add(const __m512* p) {
  __m512 t3[8], t6[4];
  for (int l = 0; l < 8; ++l) t3[l] = _mm512_add_ps(p[l + 8], p[l]);
  for (int l = 0; l < 4; ++l) t6[l] = _mm512_add_ps(t3[l + 4], t3[l]);
  return _mm512_add_ps(_mm512_add_ps(t6[0], t6[2]), _mm512_add_ps(t6[1], t6[3]));
}

// Scores of rows [r0, r0 + kTileRows) of the converted block (global rows j0 + r0 + r) for query
// vector u (lanes of qt at column 16u): st[row][16u + lane], -inf where the row is at or beyond the
// lane's n_kv; mx gets the lane-wise max. `tail` = some lane needs reduce_add's order for these rows.
inline void tile_scores(const float* qt, std::int64_t nqp, const float* kf, std::int64_t hdp, std::int64_t hd,
                        std::int64_t j, __m512i nk, __m512i nk4, bool tail, float* st, __m512* mx) {
  constexpr int R = kTileRows;
  __m512 p[R][16];  // lane partials of each row (attend's accumulator lanes)
  for (int l = 0; l < 16; ++l) {
    for (int r = 0; r < R; ++r) p[r][l] = _mm512_setzero_ps();
    if (l >= hd) continue;
    {
      const __m512 qv = _mm512_loadu_ps(qt + l * nqp);
      for (int r = 0; r < R; ++r) p[r][l] = _mm512_mul_ps(_mm512_set1_ps(kf[r * hdp + l]), qv);
    }
    for (std::int64_t d = l + 16; d < hd; d += 16) {
      const __m512 qv = _mm512_loadu_ps(qt + d * nqp);
      for (int r = 0; r < R; ++r) p[r][l] = _mm512_fmadd_ps(_mm512_set1_ps(kf[r * hdp + d]), qv, p[r][l]);
    }
  }
  for (int r = 0; r < R; ++r) {
    // attend's 4-row reduction: ((P0+P2) + (P1+P3)) per 128-bit lane, then (L0+L1) + (L2+L3).
    __m512 lane[4];
    for (int k = 0; k < 4; ++k)
      lane[k] =
          _mm512_add_ps(_mm512_add_ps(p[r][4 * k], p[r][4 * k + 2]), _mm512_add_ps(p[r][4 * k + 1], p[r][4 * k + 3]));
    __m512 s = _mm512_add_ps(_mm512_add_ps(lane[0], lane[1]), _mm512_add_ps(lane[2], lane[3]));
    const __m512i jv = _mm512_set1_epi32(static_cast<int>(j + r));
    if (tail) s = _mm512_mask_mov_ps(s, _mm512_cmpge_epi32_mask(jv, nk4), tree_reduce_add(p[r]));
    s = _mm512_mask_blend_ps(_mm512_cmplt_epi32_mask(jv, nk), _mm512_set1_ps(-INFINITY), s);
    _mm512_storeu_ps(st + r * nqp, s);
    *mx = _mm512_max_ps(*mx, s);
  }
}

// o[QG queries][CG chunks] += sum over rows of p[row][query] * V[row], rows in order (as attend):
// one V load per chunk and row feeds QG queries.
template <int QG, int CG>
inline void block_pv(float* o, std::int64_t hdp, const float* st, std::int64_t nqp, const float* vf,
                     std::int64_t rows) {
  __m512 acc[QG][CG];
  for (int i = 0; i < QG; ++i)
    for (int c = 0; c < CG; ++c) acc[i][c] = _mm512_loadu_ps(o + i * hdp + 16 * c);
  for (std::int64_t j = 0; j < rows; ++j) {
    __m512 vv[CG];
    for (int c = 0; c < CG; ++c) vv[c] = _mm512_loadu_ps(vf + j * hdp + 16 * c);
    for (int i = 0; i < QG; ++i) {
      const __m512 p = _mm512_set1_ps(st[j * nqp + i]);
      for (int c = 0; c < CG; ++c) acc[i][c] = _mm512_fmadd_ps(p, vv[c], acc[i][c]);
    }
  }
  for (int i = 0; i < QG; ++i)
    for (int c = 0; c < CG; ++c) _mm512_storeu_ps(o + i * hdp + 16 * c, acc[i][c]);
}

template <int QG>
inline void block_pv_chunks(float* o, std::int64_t hdp, const float* st, std::int64_t nqp, const float* vf,
                            std::int64_t rows, std::int64_t nc) {
  for (std::int64_t c0 = 0; c0 < nc; c0 += 4) {
    float* oc = o + 16 * c0;
    const float* vc = vf + 16 * c0;
    switch (std::min<std::int64_t>(4, nc - c0)) {
      case 1: block_pv<QG, 1>(oc, hdp, st, nqp, vc, rows); break;
      case 2: block_pv<QG, 2>(oc, hdp, st, nqp, vc, rows); break;
      case 3: block_pv<QG, 3>(oc, hdp, st, nqp, vc, rows); break;
      default: block_pv<QG, 4>(oc, hdp, st, nqp, vc, rows); break;
    }
  }
}

// Rows [j0, j0 + nb) of a K or V head into dst [kBlock][hdp] as f32, zero-padded to hdp columns and
// to a whole score tile of rows.
template <bool F16>
inline void convert_rows(const std::uint8_t* base, std::size_t row_stride, std::int64_t j0, std::int64_t nb,
                         std::int64_t hd, std::int64_t hdp, float* dst) {
  const std::int64_t nc = hdp / 16;
  for (std::int64_t r = 0; r < nb; ++r) {
    const std::uint8_t* row = base + (j0 + r) * row_stride;
    for (std::int64_t c = 0; c < nc; ++c) {
      const std::int64_t left = hd - 16 * c;
      const __mmask16 m = left >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << left) - 1);
      _mm512_storeu_ps(dst + r * hdp + 16 * c, load_kv<F16>(row, 16 * c, m));
    }
  }
  for (std::int64_t r = nb; r < (nb + kTileRows - 1) / kTileRows * kTileRows; ++r)
    for (std::int64_t d = 0; d < hdp; ++d) dst[r * hdp + d] = 0.0f;
}

template <bool F16>
void attend_multi(const float* q, std::int64_t q_stride, const void* k, const void* v, std::size_t row_stride,
                  const std::int32_t* n_kv, std::int64_t n_tok, std::int64_t n_rep, std::int64_t hd, float scale,
                  float* scratch, float* out, std::int64_t out_stride) {
  const std::int64_t n_q = n_tok * n_rep;
  if (n_q < kMinQueries || hd > 256) {
    for (std::int64_t t = 0; t < n_tok; ++t)
      for (std::int64_t h = 0; h < n_rep; ++h)
        attend<F16>(q + t * q_stride + h * hd, k, v, row_stride, n_kv[t], hd, scale, scratch,
                    out + t * out_stride + h * hd);
    return;
  }
  const std::int64_t nc = (hd + 15) / 16, hdp = 16 * nc, nqv = (n_q + 15) / 16, nqp = 16 * nqv;
  constexpr int kMaxVec = 64;  // per-vector state below is on the stack: up to 1024 queries per call
  if (nqv > kMaxVec) {         // beyond what the per-vector state holds: split the call (same results)
    const std::int64_t t_half = n_tok / 2;
    attend_multi<F16>(q, q_stride, k, v, row_stride, n_kv, t_half, n_rep, hd, scale, scratch, out, out_stride);
    attend_multi<F16>(q + t_half * q_stride, q_stride, k, v, row_stride, n_kv + t_half, n_tok - t_half, n_rep, hd,
                      scale, scratch, out + t_half * out_stride, out_stride);
    return;
  }
  std::int64_t max_kv = 0;
  for (std::int64_t t = 0; t < n_tok; ++t) max_kv = std::max<std::int64_t>(max_kv, n_kv[t]);
  const std::int64_t st_rows = (max_kv + kBlock - 1) / kBlock * kBlock;
  // scratch layout: see attend_multi_scratch below
  float* qt = scratch;                                        // [hd][nqp]        scale * q, transposed; padding lanes 0
  float* kvf = qt + hd * nqp;                                 // [kBlock][hdp]    K, then V, block in f32
  float* st = kvf + kBlock * hdp;                             // [st_rows][nqp]  scores, then probabilities
  float* o = st + st_rows * nqp;                              // [nqp][hdp]       outputs
  auto* nk = reinterpret_cast<std::int32_t*>(o + nqp * hdp);  // [nqp] rows of each query, 0 for padding
  for (std::int64_t i = 0; i < nqp; ++i) nk[i] = i < n_q ? n_kv[i / n_rep] : 0;
  for (std::int64_t i = 0; i < n_q; ++i) {
    const float* qi = q + (i / n_rep) * q_stride + (i % n_rep) * hd;
    for (std::int64_t d = 0; d < hd; ++d) qt[d * nqp + i] = qi[d] * scale;
    for (std::int64_t d = 0; d < hdp; ++d) o[i * hdp + d] = 0.0f;
  }
  for (std::int64_t i = n_q; i < nqp; ++i)
    for (std::int64_t d = 0; d < hd; ++d) qt[d * nqp + i] = 0.0f;

  // Per query vector: n_kv, n_kv rounded down to 4 (attend's last full 4-row group), rows reached.
  __m512i nkv[kMaxVec], nk4[kMaxVec];
  __m512 mx[kMaxVec];
  std::int64_t vmax[kMaxVec], vmin4[kMaxVec];
  for (std::int64_t u = 0; u < nqv; ++u) {
    nkv[u] = _mm512_loadu_si512(nk + 16 * u);
    nk4[u] = _mm512_and_si512(nkv[u], _mm512_set1_epi32(~3));
    const __mmask16 live = _mm512_cmpgt_epi32_mask(nkv[u], _mm512_setzero_si512());
    vmax[u] = _mm512_reduce_max_epi32(nkv[u]);
    vmin4[u] = _mm512_mask_reduce_min_epi32(live, nk4[u]);
    mx[u] = _mm512_set1_ps(-INFINITY);
  }

  // Pass 1: scores and lane maxima, K converted one block at a time.
  const auto* kb = static_cast<const std::uint8_t*>(k);
  for (std::int64_t j0 = 0; j0 < max_kv; j0 += kBlock) {
    const std::int64_t nb = std::min(kBlock, max_kv - j0);
    convert_rows<F16>(kb, row_stride, j0, nb, hd, hdp, kvf);
    for (std::int64_t u = 0; u < nqv; ++u) {
      const std::int64_t rows = std::min(nb, vmax[u] - j0);
      for (std::int64_t r0 = 0; r0 < rows; r0 += kTileRows) {
        const std::int64_t j = j0 + r0;
        tile_scores(qt + 16 * u, nqp, kvf + r0 * hdp, hdp, hd, j, nkv[u], nk4[u], j + kTileRows > vmin4[u],
                    st + j * nqp + 16 * u, &mx[u]);
      }
    }
  }

  // Softmax as softmax_impl: e = exp(s - max) (0 where masked), the sum in 16 lanes (row j in lane
  // j % 16) reduced by reduce_add's tree, then p = e * float(1 / double(sum)).
  for (std::int64_t u = 0; u < nqv; ++u) {
    float* su = st + 16 * u;
    __m512 lsum[16];
    for (int l = 0; l < 16; ++l) lsum[l] = _mm512_setzero_ps();
    const __mmask16 seen = _mm512_cmp_ps_mask(mx[u], _mm512_set1_ps(-INFINITY), _CMP_NEQ_OQ);
    const __m512 m = _mm512_maskz_mov_ps(seen, mx[u]);   // padding lanes: 0, not -inf (no NaN)
    for (std::int64_t j0 = 0; j0 < vmax[u]; j0 += 16) {  // st_rows is a multiple of 16
      for (int l = 0; l < 16; ++l) {
        const __mmask16 valid = _mm512_cmplt_epi32_mask(_mm512_set1_epi32(static_cast<int>(j0 + l)), nkv[u]);
        const __m512 e = _mm512_maskz_mov_ps(valid, exp512(_mm512_sub_ps(_mm512_loadu_ps(su + (j0 + l) * nqp), m)));
        _mm512_storeu_ps(su + (j0 + l) * nqp, e);
        lsum[l] = _mm512_add_ps(lsum[l], e);
      }
    }
    alignas(64) float sum[16], inv[16];
    _mm512_store_ps(sum, tree_reduce_add(lsum));
    for (int l = 0; l < 16; ++l) inv[l] = sum[l] > 0.0f ? static_cast<float>(1.0 / static_cast<double>(sum[l])) : 0.0f;
    const __m512 vinv = _mm512_load_ps(inv);
    for (std::int64_t j = 0; j < vmax[u]; ++j)
      _mm512_storeu_ps(su + j * nqp, _mm512_mul_ps(_mm512_loadu_ps(su + j * nqp), vinv));
  }

  // Pass 2: o += P.V, V converted one block at a time, four queries at a time over the rows they reach.
  const auto* vb = static_cast<const std::uint8_t*>(v);
  for (std::int64_t j0 = 0; j0 < max_kv; j0 += kBlock) {
    const std::int64_t nb = std::min(kBlock, max_kv - j0);
    convert_rows<F16>(vb, row_stride, j0, nb, hd, hdp, kvf);
    for (std::int64_t i0 = 0; i0 < n_q; i0 += 4) {
      const std::int64_t qg = std::min<std::int64_t>(4, n_q - i0);
      std::int64_t reach = 0;
      for (std::int64_t i = i0; i < i0 + qg; ++i) reach = std::max<std::int64_t>(reach, nk[i]);
      const std::int64_t rows = std::min(nb, reach - j0);
      if (rows <= 0) continue;
      float* oi = o + i0 * hdp;
      const float* si = st + j0 * nqp + i0;
      switch (qg) {
        case 1: block_pv_chunks<1>(oi, hdp, si, nqp, kvf, rows, nc); break;
        case 2: block_pv_chunks<2>(oi, hdp, si, nqp, kvf, rows, nc); break;
        case 3: block_pv_chunks<3>(oi, hdp, si, nqp, kvf, rows, nc); break;
        default: block_pv_chunks<4>(oi, hdp, si, nqp, kvf, rows, nc); break;
      }
    }
  }

  for (std::int64_t i = 0; i < n_q; ++i) {
    float* oi = out + (i / n_rep) * out_stride + (i % n_rep) * hd;
    for (std::int64_t c = 0; c < nc; ++c) {
      const std::int64_t left = hd - 16 * c;
      const __mmask16 mk = left >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << left) - 1);
      _mm512_mask_storeu_ps(oi + 16 * c, mk, _mm512_loadu_ps(o + i * hdp + 16 * c));
    }
  }
}

}  // namespace

void softmax(float* x, std::int64_t n) {
  G2C_DCHECK(x != nullptr && n >= 1);
  softmax_impl(x, n);
}

void kv_store_f16(const float* x, void* dst, std::int64_t n) {
  G2C_DCHECK(x != nullptr && dst != nullptr && n >= 0);
  auto* d = static_cast<std::uint8_t*>(dst);
  std::int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(d + 2 * i),
                        _mm512_cvtps_ph(_mm512_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  if (i < n) {
    __mmask16 m = static_cast<__mmask16>((1u << (n - i)) - 1);
    _mm256_mask_storeu_epi16(
        d + 2 * i, m, _mm512_cvtps_ph(_mm512_maskz_loadu_ps(m, x + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  }
}

void attend_f32(const float* q, const void* k, const void* v, std::size_t row_stride, std::int64_t n_kv,
                std::int64_t head_dim, float scale, float* scratch, float* out) {
  G2C_DCHECK_ATTEND(q, k, v, row_stride, n_kv, head_dim, 4, scratch, out);
  attend<false>(q, k, v, row_stride, n_kv, head_dim, scale, scratch, out);
}
void attend_f16(const float* q, const void* k, const void* v, std::size_t row_stride, std::int64_t n_kv,
                std::int64_t head_dim, float scale, float* scratch, float* out) {
  G2C_DCHECK_ATTEND(q, k, v, row_stride, n_kv, head_dim, 2, scratch, out);
  attend<true>(q, k, v, row_stride, n_kv, head_dim, scale, scratch, out);
}

void attend_multi_f32(const float* q, std::int64_t q_stride, const void* k, const void* v, std::size_t row_stride,
                      const std::int32_t* n_kv, std::int64_t n_tok, std::int64_t n_rep, std::int64_t head_dim,
                      float scale, float* scratch, float* out, std::int64_t out_stride) {
  G2C_DCHECK_ATTEND_MULTI(q, q_stride, k, v, row_stride, n_kv, n_tok, n_rep, head_dim, 4, scratch, out, out_stride);
  attend_multi<false>(q, q_stride, k, v, row_stride, n_kv, n_tok, n_rep, head_dim, scale, scratch, out, out_stride);
}
void attend_multi_f16(const float* q, std::int64_t q_stride, const void* k, const void* v, std::size_t row_stride,
                      const std::int32_t* n_kv, std::int64_t n_tok, std::int64_t n_rep, std::int64_t head_dim,
                      float scale, float* scratch, float* out, std::int64_t out_stride) {
  G2C_DCHECK_ATTEND_MULTI(q, q_stride, k, v, row_stride, n_kv, n_tok, n_rep, head_dim, 2, scratch, out, out_stride);
  attend_multi<true>(q, q_stride, k, v, row_stride, n_kv, n_tok, n_rep, head_dim, scale, scratch, out, out_stride);
}
// The table entry (x86/avx512.cpp installs it): one definition with external linkage.
extern const std::array<AttendMultiFn, 2> kAttendMulti{&attend_multi_f32, &attend_multi_f16};

// attend_multi's scratch, with nqp = n_q and hdp = head_dim rounded up to 16 and rows = n_kv_max rounded
// up to the kBlock-row KV block: Q transposed [head_dim][nqp], one K or V block [kBlock][hdp], scores
// [rows][nqp], outputs [nqp][hdp] and the queries' lengths [nqp]. Below kMinQueries queries or above
// head_dim 256 it runs attend per query, which needs n_kv_max.
std::size_t attend_multi_scratch(std::int64_t n_q, std::int64_t head_dim, std::int64_t n_kv_max) {
  const std::int64_t nqp = (n_q + 15) / 16 * 16, hdp = (head_dim + 15) / 16 * 16;
  const std::int64_t rows = (n_kv_max + kBlock - 1) / kBlock * kBlock;
  const std::int64_t blocked = head_dim * nqp + kBlock * hdp + rows * nqp + nqp * hdp + nqp;
  return static_cast<std::size_t>(std::max(blocked, n_kv_max));
}

// Q8_0 activation quantization, byte-identical to quant::quantize_row (d = amax / 127, q = roundf(x / d)
// with halves away from zero): |v| is truncated and bumped when its fraction is >= 0.5, which is
// exactly roundf; both steps are exact in float.
void q8_0_from_float(const float* x, void* y, std::int64_t n) {
  G2C_DCHECK_FROM_FLOAT(GgmlType::Q8_0, n, x, y);
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

void rmsnorm(const float* x, const float* w, float* y, std::int64_t n, float eps);
void add(const float* a, const float* b, float* y, std::int64_t n);
void silu(const float* x, float* y, std::int64_t n);
void swiglu(const float* gate, const float* up, float* y, std::int64_t n);

namespace {

// ---- elementwise and row operations: RMSNorm, add, SiLU, SwiGLU ---------------------------------
// Once per token per layer in prefill; the scalar ref versions (libm expf per element) were 6-7% of
// llama-110m pp512.
inline __mmask16 tail_mask(std::int64_t left) {
  return left >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << left) - 1);
}

inline __m512 silu16(__m512 v) {
  const __m512 e = exp512(_mm512_sub_ps(_mm512_setzero_ps(), v));
  return _mm512_div_ps(v, _mm512_add_ps(_mm512_set1_ps(1.0f), e));
}

}  // namespace

void rmsnorm(const float* x, const float* w, float* y, std::int64_t n, float eps) {
  G2C_DCHECK(x != nullptr && y != nullptr && n >= 1);
  // The sum of squares in double, as ggml and the ref table (a float sum moved greedy runs off the
  // reference trajectory sooner).
  __m512d s0 = _mm512_setzero_pd(), s1 = _mm512_setzero_pd();
  for (std::int64_t i = 0; i < n; i += 16) {
    const __m512 a = _mm512_maskz_loadu_ps(tail_mask(n - i), x + i);
    const __m512 sq = _mm512_mul_ps(a, a);  // x*x rounded to float first, as ref
    s0 = _mm512_add_pd(s0, _mm512_cvtps_pd(_mm512_castps512_ps256(sq)));
    s1 = _mm512_add_pd(s1, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(sq), 1))));
  }
  const float mean = static_cast<float>(_mm512_reduce_add_pd(_mm512_add_pd(s0, s1)) / static_cast<double>(n));
  const __m512 scale = _mm512_set1_ps(1.0f / __builtin_sqrtf(mean + eps));
  for (std::int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = tail_mask(n - i);
    __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), scale);
    if (w) v = _mm512_mul_ps(v, _mm512_maskz_loadu_ps(m, w + i));
    _mm512_mask_storeu_ps(y + i, m, v);
  }
}

void add(const float* a, const float* b, float* y, std::int64_t n) {
  G2C_DCHECK(a != nullptr && b != nullptr && y != nullptr && n >= 0);
  for (std::int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = tail_mask(n - i);
    _mm512_mask_storeu_ps(y + i, m, _mm512_add_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i)));
  }
}

void silu(const float* x, float* y, std::int64_t n) {
  G2C_DCHECK(x != nullptr && y != nullptr && n >= 0);
  for (std::int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = tail_mask(n - i);
    _mm512_mask_storeu_ps(y + i, m, silu16(_mm512_maskz_loadu_ps(m, x + i)));
  }
}

void swiglu(const float* gate, const float* up, float* y, std::int64_t n) {
  G2C_DCHECK(gate != nullptr && up != nullptr && y != nullptr && n >= 0);
  for (std::int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = tail_mask(n - i);
    const __m512 g = _mm512_maskz_loadu_ps(m, gate + i);
    _mm512_mask_storeu_ps(y + i, m, _mm512_mul_ps(silu16(g), _mm512_maskz_loadu_ps(m, up + i)));
  }
}

}  // namespace g2c::kernels::avx512::detail
