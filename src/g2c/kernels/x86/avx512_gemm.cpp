// Prefill GEMM of the AVX-512 table over packed weight panels (same flags and namespace as
// x86/avx512.cpp).
//
// Why packing: the row-major GGUF layout makes every SIMD dot end in a horizontal reduction per
// (row, token) pair, and the tiles of avx512_prefill.inc spend as many shuffles on those reductions
// as on the dots. Here each thread copies 16 weight rows at a time (a "panel", BLIS-style, into an
// L2-resident scratch buffer) into the layout the integer dot wants: one zmm holds 4 consecutive
// weights of 16 rows, so `vpdpbusd(acc, W, broadcast(4 activation bytes))` does 64 multiply-adds
// for 16 (row, token) results at once and the 16 sums land in 16 lanes: no reduction at all, and the
// result row is one 64-byte store. The packing costs one pass over the 16 rows and is shared by every
// token of the batch, so it is used only for batches of at least kMinTokens tokens; decode and small
// batches keep the row kernels. Nothing is kept between calls: weights stay in place in the mapping.
//
// Integer panels (quantized weights): per group of G = 32 (or 16) weights of a row, the quants as
// unsigned bytes u (0..255) and float scales, so that w = dw * (u - off) + mw:
//   [G/4][16 rows][4] u8 | dw[16] f32 | mw[16] f32 (types with a min only)
// y[r, t] = sum_g dw[r,g] * dx[t,g] * (sum_k u*x - off * sum_k x) + mw[r,g] * dx[t,g] * sum_k x.
// The activation side (int8 x, scale dx and per-group sums from Q8_0 / Q8_1 / Q8_K blocks) is
// prepared once per call. Float panels (F32/F16/BF16 weights): [n][16 rows] f32, one FMA per weight
// zmm and token with the activation element broadcast from memory.
#include <immintrin.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <utility>
#include <vector>

#include "g2c/core/aligned.hpp"
#include "g2c/gguf/types.hpp"
#include "g2c/kernels/dcheck.hpp"
#include "g2c/quant/blocks.hpp"

namespace g2c::kernels::avx512::detail {

std::int64_t matmul_panels(GgmlType type, std::int64_t n, const void* w, std::size_t rb, const void* x, std::size_t xs,
                           std::int64_t n_tok, float* y, std::int64_t ldy, std::int64_t r0, std::int64_t r1);

namespace {

using namespace g2c::quant;  // NOLINT(build/namespaces): block structs

constexpr int kPanelRows = 16;
constexpr std::int64_t kMinTokens = 16;

inline float h2f(std::uint16_t h) { return _cvtsh_ss(h); }

// The 6-bit scale and min of sub-block j of a Q4_K/Q5_K super-block (12 packed bytes).
inline void scale_min_k4(const std::uint8_t* q, int j, int& sc, int& m) {
  if (j < 4) {
    sc = q[j] & 63;
    m = q[j + 4] & 63;
  } else {
    sc = (q[j + 4] & 0x0f) | ((q[j - 4] >> 6) << 4);
    m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
  }
}

// ---- weight side: one super-block of one row -> u8 quants + per-group scales --------------------
// SB weights per super-block, G per scale group; off is subtracted from u (symmetric types) and the
// min term (asymmetric types) is mw per group.
struct IntFormat {
  int sb = 32;        // weights per super-block (the GGUF block)
  int g = 32;         // weights per scale group
  int off = 0;        // u - off is the signed quant (0 for asymmetric types)
  bool asym = false;  // has a per-group min mw
  GgmlType act = GgmlType::Q8_0;
  // u[sb], dw[sb/g], mw[sb/g] of super-block `ib` of row `w`.
  void (*unpack)(const std::uint8_t* w, std::int64_t ib, std::uint8_t* u, float* dw, float* mw) = nullptr;
};

void unpack_q4_0(const std::uint8_t* w, std::int64_t ib, std::uint8_t* u, float* dw, float*) {
  const auto& b = reinterpret_cast<const BlockQ4_0*>(w)[ib];
  const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b.qs));
  const __m128i m = _mm_set1_epi8(0x0f);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(u), _mm_and_si128(q, m));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(u + 16), _mm_and_si128(_mm_srli_epi16(q, 4), m));
  dw[0] = h2f(b.d);
}
void unpack_q8_0(const std::uint8_t* w, std::int64_t ib, std::uint8_t* u, float* dw, float*) {
  const auto& b = reinterpret_cast<const BlockQ8_0*>(w)[ib];
  const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qs));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(u), _mm256_xor_si256(q, _mm256_set1_epi8(static_cast<char>(0x80))));
  dw[0] = h2f(b.d);
}
template <class B>
void unpack_5bit(const B& b, std::uint8_t* u) {
  std::uint32_t qh;
  std::memcpy(&qh, b.qh, 4);
  for (int j = 0; j < 16; ++j) {
    u[j] = static_cast<std::uint8_t>((b.qs[j] & 0x0f) | (((qh >> j) & 1u) << 4));
    u[j + 16] = static_cast<std::uint8_t>((b.qs[j] >> 4) | (((qh >> (j + 16)) & 1u) << 4));
  }
}
void unpack_q5_0(const std::uint8_t* w, std::int64_t ib, std::uint8_t* u, float* dw, float*) {
  const auto& b = reinterpret_cast<const BlockQ5_0*>(w)[ib];
  unpack_5bit(b, u);
  dw[0] = h2f(b.d);
}
void unpack_q4_1(const std::uint8_t* w, std::int64_t ib, std::uint8_t* u, float* dw, float* mw) {
  const auto& b = reinterpret_cast<const BlockQ4_1*>(w)[ib];
  for (int j = 0; j < 16; ++j) {
    u[j] = b.qs[j] & 0x0f;
    u[j + 16] = b.qs[j] >> 4;
  }
  dw[0] = h2f(b.d);
  mw[0] = h2f(b.m);
}
void unpack_q5_1(const std::uint8_t* w, std::int64_t ib, std::uint8_t* u, float* dw, float* mw) {
  const auto& b = reinterpret_cast<const BlockQ5_1*>(w)[ib];
  unpack_5bit(b, u);
  dw[0] = h2f(b.d);
  mw[0] = h2f(b.m);
}
// Q4_K / Q5_K: sub-block j (32 weights) = low (even j) or high (odd j) nibbles of qs[32 (j/2) ..];
// Q5_K's fifth bit of weight l of sub-block j is bit j of qh[l].
template <bool Five>
void unpack_q45_k(const std::uint8_t* w, std::int64_t ib, std::uint8_t* u, float* dw, float* mw) {
  using B = std::conditional_t<Five, BlockQ5_K, BlockQ4_K>;
  const B& b = reinterpret_cast<const B*>(w)[ib];
  const float d = h2f(b.d), dmin = h2f(b.dmin);
  const __m256i m4 = _mm256_set1_epi8(0x0f);
  for (int i = 0; i < 4; ++i) {
    const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qs + 32 * i));
    __m256i lo = _mm256_and_si256(q, m4), hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
    if constexpr (Five) {
      const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qh));
      const __m256i one = _mm256_set1_epi8(1);
      lo = _mm256_or_si256(lo, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * i), one), 4));
      hi = _mm256_or_si256(hi, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * i + 1), one), 4));
    }
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(u + 64 * i), lo);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(u + 64 * i + 32), hi);
  }
  for (int j = 0; j < 8; ++j) {
    int sc, m;
    scale_min_k4(b.scales, j, sc, m);
    dw[j] = d * static_cast<float>(sc);
    mw[j] = -dmin * static_cast<float>(m);
  }
}
// Q6_K: for each 128-weight half h, byte l of ql/qh gives weights 128h + l (+32, +64, +96).
void unpack_q6_k(const std::uint8_t* w, std::int64_t ib, std::uint8_t* u, float* dw, float*) {
  const auto& b = reinterpret_cast<const BlockQ6_K*>(w)[ib];
  const float d = h2f(b.d);
  const __m256i m4 = _mm256_set1_epi8(0x0f), m2 = _mm256_set1_epi8(0x03);
  for (int h = 0; h < 2; ++h) {
    const __m256i l0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.ql + 64 * h));
    const __m256i l1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.ql + 64 * h + 32));
    const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qh + 32 * h));
    auto hi2 = [&](int s) { return _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, s), m2), 4); };
    std::uint8_t* o = u + 128 * h;
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(o), _mm256_or_si256(_mm256_and_si256(l0, m4), hi2(0)));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(o + 32), _mm256_or_si256(_mm256_and_si256(l1, m4), hi2(2)));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(o + 64),
                        _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4), hi2(4)));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(o + 96),
                        _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4), hi2(6)));
  }
  for (int j = 0; j < 16; ++j) dw[j] = d * static_cast<float>(b.scales[j]);
}

// Q2_K / Q3_K: in each 128-weight half, byte l (0..31) of the 2-bit field holds weights l, l+32, l+64,
// l+96 at shifts 0, 2, 4, 6; 16 groups of 16 weights with their own scales. Q2_K: w = d*(sc&15)*q -
// dmin*(sc>>4), q in 0..3. Q3_K: q = low 2 bits + 4*(hmask bit) in 0..7 (u - 4 is the signed quant),
// hmask bit j of byte l for weight 32 j + l; 6-bit scales - 32 (format facts: blocks.hpp).
void unpack_q2_k(const std::uint8_t* w, std::int64_t ib, std::uint8_t* u, float* dw, float* mw) {
  const auto& b = reinterpret_cast<const BlockQ2_K*>(w)[ib];
  const float d = h2f(b.d), dmin = h2f(b.dmin);
  for (int h = 0; h < 2; ++h)
    for (int s = 0; s < 4; ++s)
      for (int l = 0; l < 32; ++l)
        u[128 * h + 32 * s + l] = static_cast<std::uint8_t>((b.qs[32 * h + l] >> (2 * s)) & 3);
  for (int j = 0; j < 16; ++j) {
    dw[j] = d * static_cast<float>(b.scales[j] & 0x0f);
    mw[j] = -dmin * static_cast<float>(b.scales[j] >> 4);
  }
}
void unpack_q3_k(const std::uint8_t* w, std::int64_t ib, std::uint8_t* u, float* dw, float*) {
  const auto& b = reinterpret_cast<const BlockQ3_K*>(w)[ib];
  const float d = h2f(b.d);
  for (int h = 0; h < 2; ++h)
    for (int s = 0; s < 4; ++s)
      for (int l = 0; l < 32; ++l) {
        const int e = 128 * h + 32 * s + l;
        const int hi = (b.hmask[l] >> (4 * h + s)) & 1;
        u[e] = static_cast<std::uint8_t>(((b.qs[32 * h + l] >> (2 * s)) & 3) | (hi << 2));
      }
  for (int j = 0; j < 16; ++j) {
    const int low = j < 8 ? (b.scales[j] & 0x0f) : (b.scales[j - 8] >> 4);
    const int high = (b.scales[8 + (j % 4)] >> (2 * (j / 4))) & 3;
    dw[j] = d * static_cast<float>((low | (high << 4)) - 32);
  }
}

const IntFormat* int_format(GgmlType t) {
  static const IntFormat q4_0{32, 32, 8, false, GgmlType::Q8_0, &unpack_q4_0};
  static const IntFormat q8_0{32, 32, 128, false, GgmlType::Q8_0, &unpack_q8_0};
  static const IntFormat q5_0{32, 32, 16, false, GgmlType::Q8_0, &unpack_q5_0};
  static const IntFormat q4_1{32, 32, 0, true, GgmlType::Q8_1, &unpack_q4_1};
  static const IntFormat q5_1{32, 32, 0, true, GgmlType::Q8_1, &unpack_q5_1};
  static const IntFormat q4_k{256, 32, 0, true, GgmlType::Q8_K, &unpack_q45_k<false>};
  static const IntFormat q5_k{256, 32, 0, true, GgmlType::Q8_K, &unpack_q45_k<true>};
  static const IntFormat q6_k{256, 16, 32, false, GgmlType::Q8_K, &unpack_q6_k};
  static const IntFormat q2_k{256, 16, 0, true, GgmlType::Q8_K, &unpack_q2_k};
  static const IntFormat q3_k{256, 16, 4, false, GgmlType::Q8_K, &unpack_q3_k};
  switch (t) {
    case GgmlType::Q4_0: return &q4_0;
    case GgmlType::Q8_0: return &q8_0;
    case GgmlType::Q5_0: return &q5_0;
    case GgmlType::Q4_1: return &q4_1;
    case GgmlType::Q5_1: return &q5_1;
    case GgmlType::Q4_K: return &q4_k;
    case GgmlType::Q5_K: return &q5_k;
    case GgmlType::Q6_K: return &q6_k;
    case GgmlType::Q2_K: return &q2_k;
    case GgmlType::Q3_K: return &q3_k;
    default: return nullptr;
  }
}

inline std::size_t group_bytes(const IntFormat& f) {
  return static_cast<std::size_t>(kPanelRows * f.g + 64 + (f.asym ? 64 : 0));
}

// 16 rows x 32 bytes (8 dwords each) -> out[k] = dword k of rows 0..15: rows r and r+8 share a zmm
// and an 8 x 8 dword transpose runs in both 256-bit halves at once.
inline void transpose_16x8(const std::uint8_t (*u)[256], int off, std::uint8_t* out) {
  __m512i z[8];
  for (int r = 0; r < 8; ++r)
    z[r] = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(u[r] + off))),
                              _mm256_loadu_si256(reinterpret_cast<const __m256i*>(u[r + 8] + off)), 1);
  __m512i a[8], b[8];
  for (int i = 0; i < 4; ++i) {
    a[2 * i] = _mm512_unpacklo_epi32(z[2 * i], z[2 * i + 1]);
    a[2 * i + 1] = _mm512_unpackhi_epi32(z[2 * i], z[2 * i + 1]);
  }
  for (int i = 0; i < 2; ++i)
    for (int h = 0; h < 2; ++h) {
      b[4 * i + h] = _mm512_unpacklo_epi64(a[4 * i + h], a[4 * i + 2 + h]);
      b[4 * i + 2 + h] = _mm512_unpackhi_epi64(a[4 * i + h], a[4 * i + 2 + h]);
    }
  // b[4i + m] holds, per 128-bit lane, lane-local dword column kCol[m] of rows 4i..4i+3 (rows 8 on in
  // the high half); columns 0-3 sit in 128-bit lanes 0 and 2, columns 4-7 in lanes 1 and 3.
  constexpr int kCol[4] = {0, 2, 1, 3};
  const __m512i lo_idx = _mm512_set_epi64(13, 12, 5, 4, 9, 8, 1, 0);
  const __m512i hi_idx = _mm512_set_epi64(15, 14, 7, 6, 11, 10, 3, 2);
  for (int m = 0; m < 4; ++m) {
    const int c = kCol[m];
    _mm512_store_si512(out + 64 * c, _mm512_permutex2var_epi64(b[m], lo_idx, b[4 + m]));
    _mm512_store_si512(out + 64 * (c + 4), _mm512_permutex2var_epi64(b[m], hi_idx, b[4 + m]));
  }
}

// 16 rows x 16 bytes (4 dwords each) -> out[k] = dword k of rows 0..15.
inline void transpose_16x4(const std::uint8_t (*u)[256], int off, std::uint8_t* out) {
  __m512i z[4];
  for (int a = 0; a < 4; ++a) {
    __m512i v = _mm512_castsi128_si512(_mm_loadu_si128(reinterpret_cast<const __m128i*>(u[a] + off)));
    v = _mm512_inserti32x4(v, _mm_loadu_si128(reinterpret_cast<const __m128i*>(u[a + 4] + off)), 1);
    v = _mm512_inserti32x4(v, _mm_loadu_si128(reinterpret_cast<const __m128i*>(u[a + 8] + off)), 2);
    z[a] = _mm512_inserti32x4(v, _mm_loadu_si128(reinterpret_cast<const __m128i*>(u[a + 12] + off)), 3);
  }
  const __m512i t0 = _mm512_unpacklo_epi32(z[0], z[1]), t1 = _mm512_unpackhi_epi32(z[0], z[1]);
  const __m512i t2 = _mm512_unpacklo_epi32(z[2], z[3]), t3 = _mm512_unpackhi_epi32(z[2], z[3]);
  _mm512_store_si512(out, _mm512_unpacklo_epi64(t0, t2));
  _mm512_store_si512(out + 64, _mm512_unpackhi_epi64(t0, t2));
  _mm512_store_si512(out + 128, _mm512_unpacklo_epi64(t1, t3));
  _mm512_store_si512(out + 192, _mm512_unpackhi_epi64(t1, t3));
}

// Super-blocks [sb0, sb1) of rows [0, 16) of `w` as a panel in the layout above.
void pack_int_panel(const IntFormat& f, std::int64_t sb0, std::int64_t sb1, const std::uint8_t* w, std::size_t rb,
                    std::uint8_t* panel) {
  const int gps = f.sb / f.g;  // groups per super-block
  const std::size_t gb = group_bytes(f);
  alignas(64) std::uint8_t u[kPanelRows][256];
  alignas(64) float dw[kPanelRows][16], mw[kPanelRows][16];
  alignas(64) float col[16];
  for (std::int64_t ib = sb0; ib < sb1; ++ib) {
    for (int r = 0; r < kPanelRows; ++r) f.unpack(w + r * rb, ib, u[r], dw[r], mw[r]);
    for (int j = 0; j < gps; ++j) {
      std::uint8_t* gp = panel + static_cast<std::size_t>((ib - sb0) * gps + j) * gb;
      if (f.g == 32)
        transpose_16x8(u, j * 32, gp);
      else
        transpose_16x4(u, j * 16, gp);
      for (int r = 0; r < kPanelRows; ++r) col[r] = dw[r][j];
      _mm512_store_ps(reinterpret_cast<float*>(gp + kPanelRows * f.g), _mm512_load_ps(col));
      if (f.asym) {
        for (int r = 0; r < kPanelRows; ++r) col[r] = mw[r][j];
        _mm512_store_ps(reinterpret_cast<float*>(gp + kPanelRows * f.g + 64), _mm512_load_ps(col));
      }
    }
  }
}

// ---- activation side ---------------------------------------------------------------------------
// Per group and token (group-major, so a micro-kernel's tokens are adjacent and one pointer per group
// reaches them all at constant offsets): the G int8 quants, dx, and either the integer seed
// -off * sum(x) (symmetric weights) or sx = dx * sum(x) (weights with a min).
struct ActPrep {
  std::int64_t n_tok = 0;
  std::vector<std::int8_t> xq;     // [n_groups][n_tok][G]
  std::vector<float> dx;           // [n_groups][n_tok]
  std::vector<std::int32_t> seed;  // [n_groups][n_tok]
  std::vector<float> sx;           // [n_groups][n_tok]
};

void prep_act(const IntFormat& f, std::int64_t n, const std::uint8_t* x, std::size_t xs, std::int64_t n_tok,
              ActPrep& p) {
  const std::int64_t ng = n / f.g;
  p.n_tok = n_tok;
  p.xq.resize(static_cast<std::size_t>(n_tok * n));
  p.dx.resize(static_cast<std::size_t>(n_tok * ng));
  p.seed.resize(static_cast<std::size_t>(n_tok * ng));
  p.sx.resize(static_cast<std::size_t>(n_tok * ng));
  // One group of one token: its quants, scale and sum of quants.
  auto put = [&](std::int64_t g, std::int64_t t, const std::int8_t* q, float d, int sum) {
    const auto i = static_cast<std::size_t>(g * n_tok + t);
    std::memcpy(p.xq.data() + i * static_cast<std::size_t>(f.g), q, static_cast<std::size_t>(f.g));
    p.dx[i] = d;
    p.seed[i] = -f.off * sum;
    p.sx[i] = d * static_cast<float>(sum);  // exact sums (a Q8_1 block's own s is fp16-rounded)
  };
  auto sum_of = [](const std::int8_t* q, int len) {
    int s = 0;
    for (int k = 0; k < len; ++k) s += q[k];
    return s;
  };
  for (std::int64_t t = 0; t < n_tok; ++t) {
    const std::uint8_t* xr = x + t * xs;
    if (f.act == GgmlType::Q8_K) {
      const auto* b = reinterpret_cast<const BlockQ8_K*>(xr);
      const int gps = 256 / f.g;
      for (std::int64_t ib = 0; ib < n / 256; ++ib)
        for (int j = 0; j < gps; ++j) {
          int s = 0;
          for (int h = 0; h < f.g / 16; ++h) s += b[ib].bsums[j * (f.g / 16) + h];
          put(ib * gps + j, t, b[ib].qs + j * f.g, b[ib].d, s);
        }
    } else if (f.act == GgmlType::Q8_1) {
      const auto* b = reinterpret_cast<const BlockQ8_1*>(xr);
      for (std::int64_t ib = 0; ib < n / 32; ++ib) put(ib, t, b[ib].qs, h2f(b[ib].d), sum_of(b[ib].qs, 32));
    } else {  // Q8_0
      const auto* b = reinterpret_cast<const BlockQ8_0*>(xr);
      for (std::int64_t ib = 0; ib < n / 32; ++ib) put(ib, t, b[ib].qs, h2f(b[ib].d), sum_of(b[ib].qs, 32));
    }
  }
}

// ---- integer micro-kernel: 16 rows x NT tokens ---------------------------------------------------
// Groups [g0, g1) (the panel holds exactly those); adds to y when `accumulate`, else overwrites it.
template <int NT, int G, bool Asym>
void kernel_int(std::int64_t g0, std::int64_t g1, const std::uint8_t* panel, const ActPrep& p, std::int64_t t0,
                float* y, std::int64_t ldy, bool accumulate) {
  constexpr int K = G / 4;
  constexpr std::size_t gb = kPanelRows * G + 64 + (Asym ? 64 : 0);
  __m512 acc[NT];
#pragma GCC unroll 16
  for (int t = 0; t < NT; ++t) acc[t] = accumulate ? _mm512_loadu_ps(y + t * ldy) : _mm512_setzero_ps();
  const std::int64_t nt_all = p.n_tok;
  for (std::int64_t g = g0; g < g1; ++g) {
    const std::int8_t* xg0 = p.xq.data() + (g * nt_all + t0) * G;
    const float* dxg = p.dx.data() + g * nt_all + t0;
    const std::int32_t* sdg = p.seed.data() + g * nt_all + t0;
    const float* sxg = p.sx.data() + g * nt_all + t0;
    const std::uint8_t* gp = panel + (g - g0) * gb;
    // k outer, tokens inner: NT independent vpdpbusd chains side by side (one chain per token would
    // wait on the instruction's latency 8 times per group).
    __m512i ia[NT];
#pragma GCC unroll 16
    for (int t = 0; t < NT; ++t) ia[t] = Asym ? _mm512_setzero_si512() : _mm512_set1_epi32(sdg[t]);
#pragma GCC unroll 8
    for (int k = 0; k < K; ++k) {
      const __m512i wv = _mm512_load_si512(gp + 64 * k);
#pragma GCC unroll 16
      for (int t = 0; t < NT; ++t) {
        std::int32_t x4;
        std::memcpy(&x4, xg0 + t * G + 4 * k, 4);
        ia[t] = _mm512_dpbusd_epi32(ia[t], wv, _mm512_set1_epi32(x4));
      }
    }
    const __m512 dw = _mm512_load_ps(reinterpret_cast<const float*>(gp + kPanelRows * G));
#pragma GCC unroll 16
    for (int t = 0; t < NT; ++t) {
      acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(ia[t]), _mm512_mul_ps(dw, _mm512_set1_ps(dxg[t])), acc[t]);
      if constexpr (Asym) {
        const __m512 mw = _mm512_load_ps(reinterpret_cast<const float*>(gp + kPanelRows * G + 64));
        acc[t] = _mm512_fmadd_ps(mw, _mm512_set1_ps(sxg[t]), acc[t]);
      }
    }
  }
#pragma GCC unroll 16
  for (int t = 0; t < NT; ++t) _mm512_storeu_ps(y + t * ldy, acc[t]);
}

using IntKernelFn = void (*)(std::int64_t, std::int64_t, const std::uint8_t*, const ActPrep&, std::int64_t, float*,
                             std::int64_t, bool);

template <int G, bool Asym, int... Ns>
constexpr std::array<IntKernelFn, sizeof...(Ns)> int_kernels(std::integer_sequence<int, Ns...>) {
  return {&kernel_int<Ns + 1, G, Asym>...};
}

constexpr int kNT = 8;                  // tokens per micro-kernel call (8 float + 8 int accumulators)
constexpr std::int64_t kKcInt = 512;    // weights per K block, integer panels
constexpr std::int64_t kKcFloat = 256;  // weights per K block, float panels

IntKernelFn pick_int_kernel(int g, bool asym, int nt) {
  static constexpr auto k32s = int_kernels<32, false>(std::make_integer_sequence<int, kNT>{});
  static constexpr auto k32a = int_kernels<32, true>(std::make_integer_sequence<int, kNT>{});
  static constexpr auto k16s = int_kernels<16, false>(std::make_integer_sequence<int, kNT>{});
  static constexpr auto k16a = int_kernels<16, true>(std::make_integer_sequence<int, kNT>{});
  const auto& tab = g == 32 ? (asym ? k32a : k32s) : (asym ? k16a : k16s);
  return tab[static_cast<std::size_t>(nt - 1)];
}

// A thread's panel buffer, grown on demand (64-byte aligned: the kernels use aligned loads).
std::uint8_t* panel_scratch(std::size_t bytes) {
  thread_local AlignedBuffer<std::uint8_t> buf;
  if (buf.size() < bytes) buf.reset(bytes);
  return buf.data();
}

std::int64_t matmul_int(const IntFormat& f, std::int64_t n, const std::uint8_t* w, std::size_t rb,
                        const std::uint8_t* x, std::size_t xs, std::int64_t n_tok, float* y, std::int64_t ldy,
                        std::int64_t r0, std::int64_t r1) {
  const std::int64_t n_panels = (r1 - r0) / kPanelRows;
  if (n_panels == 0 || n % f.sb != 0) return 0;
  thread_local ActPrep prep;
  prep_act(f, n, x, xs, n_tok, prep);
  // K blocks of kKcInt weights: one block of every token's activations (n_tok x kKcInt bytes) stays in
  // L2 while all the thread's panels pass over it; each panel block (8 KiB) sits in L1.
  const std::int64_t sb_per_kc = std::max<std::int64_t>(1, kKcInt / f.sb);
  const int gps = f.sb / f.g;
  std::uint8_t* panel = panel_scratch(static_cast<std::size_t>(sb_per_kc * gps) * group_bytes(f));
  for (std::int64_t sb0 = 0; sb0 < n / f.sb; sb0 += sb_per_kc) {
    const std::int64_t sb1 = std::min(n / f.sb, sb0 + sb_per_kc);
    for (std::int64_t ip = 0; ip < n_panels; ++ip) {
      const std::int64_t r = r0 + ip * kPanelRows;
      pack_int_panel(f, sb0, sb1, w + r * rb, rb, panel);
      for (std::int64_t t = 0; t < n_tok; t += kNT) {
        const int nt = static_cast<int>(std::min<std::int64_t>(kNT, n_tok - t));
        pick_int_kernel(f.g, f.asym, nt)(sb0 * gps, sb1 * gps, panel, prep, t, y + t * ldy + r, ldy, sb0 > 0);
      }
    }
  }
  return n_panels * kPanelRows;
}

// ---- float weights: [n][16 rows] f32 panels --------------------------------------------------------
// Columns [c0, c1) of rows [0, 16) as [c1 - c0][16] f32.
template <int Kind>  // 0 f32, 1 f16, 2 bf16
void pack_float_panel(std::int64_t c0, std::int64_t c1, const std::uint8_t* w, std::size_t rb, float* panel) {
  // 16 rows x 16 columns at a time: load 16 row pieces, transpose through a small tile.
  alignas(64) float tile[16][16];
  for (std::int64_t k0 = c0; k0 < c1; k0 += 16) {
    const int kn = static_cast<int>(std::min<std::int64_t>(16, c1 - k0));
    const __mmask16 m = kn == 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << kn) - 1);
    for (int r = 0; r < kPanelRows; ++r) {
      const std::uint8_t* row = w + r * rb;
      __m512 v;
      if constexpr (Kind == 0)
        v = _mm512_maskz_loadu_ps(m, reinterpret_cast<const float*>(row) + k0);
      else if constexpr (Kind == 1)
        v = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, row + 2 * k0));
      else
        v = _mm512_castsi512_ps(
            _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, row + 2 * k0)), 16));
      _mm512_store_ps(tile[r], v);
    }
    for (int k = 0; k < kn; ++k) {
      const __m512i idx = _mm512_add_epi32(
          _mm512_set1_epi32(k), _mm512_mullo_epi32(_mm512_set1_epi32(16), _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8,
                                                                                           7, 6, 5, 4, 3, 2, 1, 0)));
      _mm512_store_ps(panel + (k0 - c0 + k) * 16, _mm512_i32gather_ps(idx, &tile[0][0], 4));
    }
  }
}

template <int NT>
void kernel_float(std::int64_t n, const float* panel, const float* x, std::size_t xs_floats, float* y, std::int64_t ldy,
                  bool accumulate) {
  __m512 acc[NT];
#pragma GCC unroll 16
  for (int t = 0; t < NT; ++t) acc[t] = accumulate ? _mm512_loadu_ps(y + t * ldy) : _mm512_setzero_ps();
  for (std::int64_t k = 0; k < n; ++k) {
    const __m512 wv = _mm512_load_ps(panel + k * 16);
#pragma GCC unroll 16
    for (int t = 0; t < NT; ++t) acc[t] = _mm512_fmadd_ps(wv, _mm512_set1_ps(x[t * xs_floats + k]), acc[t]);
  }
#pragma GCC unroll 16
  for (int t = 0; t < NT; ++t) _mm512_storeu_ps(y + t * ldy, acc[t]);
}

using FloatKernelFn = void (*)(std::int64_t, const float*, const float*, std::size_t, float*, std::int64_t, bool);
constexpr int kNTf = 12;  // tokens per float micro-kernel call: 12 accumulators + the weight zmm

template <int... Ns>
constexpr std::array<FloatKernelFn, sizeof...(Ns)> float_kernels(std::integer_sequence<int, Ns...>) {
  return {&kernel_float<Ns + 1>...};
}

template <int Kind>
std::int64_t matmul_float(std::int64_t n, const std::uint8_t* w, std::size_t rb, const std::uint8_t* x, std::size_t xs,
                          std::int64_t n_tok, float* y, std::int64_t ldy, std::int64_t r0, std::int64_t r1) {
  static constexpr auto kernels = float_kernels(std::make_integer_sequence<int, kNTf>{});
  const std::int64_t n_panels = (r1 - r0) / kPanelRows;
  if (n_panels == 0 || xs % sizeof(float) != 0) return 0;
  auto* panel =
      reinterpret_cast<float*>(panel_scratch(static_cast<std::size_t>(kKcFloat) * kPanelRows * sizeof(float)));
  const auto* xf = reinterpret_cast<const float*>(x);
  const std::size_t xsf = xs / sizeof(float);
  // K blocks: every token's kKcFloat activations (512 tokens: 512 KiB) stay in L2 while the thread's
  // panels pass over them; a panel block (16 KiB) sits in L1. The block is copied to a buffer with a
  // row stride of kKcFloat + 16 floats: activation rows 8 KiB apart (n_embd 2048) put a micro-kernel's
  // 12 token streams in one L1 set (8 ways), and every broadcast missed L1 (tinyllama F16 pp512 was
  // no faster than llama.cpp while llama-110m, rows 3 KiB apart, was 1.3x).
  constexpr std::size_t kXs = kKcFloat + 16;
  thread_local AlignedBuffer<float> xbuf;
  if (xbuf.size() < static_cast<std::size_t>(n_tok) * kXs) xbuf.reset(static_cast<std::size_t>(n_tok) * kXs);
  for (std::int64_t c0 = 0; c0 < n; c0 += kKcFloat) {
    const std::int64_t c1 = std::min(n, c0 + kKcFloat);
    for (std::int64_t t = 0; t < n_tok; ++t)
      std::memcpy(xbuf.data() + t * kXs, xf + t * xsf + c0, static_cast<std::size_t>(c1 - c0) * sizeof(float));
    for (std::int64_t ip = 0; ip < n_panels; ++ip) {
      const std::int64_t r = r0 + ip * kPanelRows;
      pack_float_panel<Kind>(c0, c1, w + r * rb, rb, panel);
      for (std::int64_t t = 0; t < n_tok; t += kNTf) {
        const int nt = static_cast<int>(std::min<std::int64_t>(kNTf, n_tok - t));
        kernels[static_cast<std::size_t>(nt - 1)](c1 - c0, panel, xbuf.data() + t * kXs, kXs, y + t * ldy + r, ldy,
                                                  c0 > 0);
      }
    }
  }
  return n_panels * kPanelRows;
}

}  // namespace

// Rows [r0, r0 + done) of the product for all n_tok tokens, done a multiple of 16 (0: the type has no
// panel kernel or the batch is too small; the caller's tiles and row kernels do the rest).
std::int64_t matmul_panels(GgmlType type, std::int64_t n, const void* w, std::size_t rb, const void* x, std::size_t xs,
                           std::int64_t n_tok, float* y, std::int64_t ldy, std::int64_t r0, std::int64_t r1) {
  G2C_DCHECK_MATMUL(type, n, w, x, n_tok, y, ldy, r0, r1);
  if (n_tok < kMinTokens) return 0;
  const auto* wb = static_cast<const std::uint8_t*>(w);
  const auto* xb = static_cast<const std::uint8_t*>(x);
  switch (type) {
    case GgmlType::F32: return matmul_float<0>(n, wb, rb, xb, xs, n_tok, y, ldy, r0, r1);
    case GgmlType::F16: return matmul_float<1>(n, wb, rb, xb, xs, n_tok, y, ldy, r0, r1);
    case GgmlType::BF16: return matmul_float<2>(n, wb, rb, xb, xs, n_tok, y, ldy, r0, r1);
    default: break;
  }
  const IntFormat* f = int_format(type);
  return f ? matmul_int(*f, n, wb, rb, xb, xs, n_tok, y, ldy, r0, r1) : 0;
}

}  // namespace g2c::kernels::avx512::detail
