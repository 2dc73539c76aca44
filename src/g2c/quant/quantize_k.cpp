// K-quant encoders (Q2_K .. Q6_K) without an importance matrix. Each super-block of 256 is cut into
// sub-blocks (16 or 32 elements) that get their own scale (and min), found by a small search that
// minimises a weighted squared (or absolute) error; the sub-block scales are then themselves quantized
// to 4 or 6 bits against one fp16 super-block scale, and the codes recomputed with the final scales.
// The searches follow llama.cpp's reference encoders (make_qx_quants, make_q3_quants, make_qkx2_quants
// in ggml-quants.c), re-derived from what they do; the goldens hold them to llama.cpp's RMSE, and
// every float step is evaluated in float32 in a fixed order (the target builds with -ffp-contract=off).
#include <algorithm>
#include <cmath>
#include <cstring>

#include "g2c/core/fp16.hpp"
#include "g2c/quant/blocks.hpp"
#include "g2c/quant/ref.hpp"

namespace g2c::quant::ref {
namespace {

// A sub-block whose largest |x| is below this is treated as all zeros.
constexpr float kGroupMaxEps = 1e-15f;

inline int clamp_int(int v, int lo, int hi) { return std::max(lo, std::min(hi, v)); }

// The element of largest magnitude, signed (first wins ties).
float signed_absmax(const float* x, int n) {
  float amax = 0.0f;
  float max = 0.0f;
  for (int i = 0; i < n; ++i) {
    const float ax = std::fabs(x[i]);
    if (ax > amax) {
      amax = ax;
      max = x[i];
    }
  }
  return max;
}

// Symmetric codes in [-nmax, nmax - 1] for x ~ scale * code, weighted least squares with weights x^2
// (big elements matter most). The signed extreme maps to -nmax, which uses the one extra negative
// code. Tries 18 nudged inverse scales around nmax / max and keeps the one whose least-squares scale
// explains most of sum(w x^2) (maximises sumlx^2 / suml2). L gets code + nmax (0 .. 2 nmax - 1).
// Used by Q6_K (nmax 32, n 16).
float fit_symmetric(int n, int nmax, const float* x, std::int8_t* L) {
  const float max = signed_absmax(x, n);
  if (std::fabs(max) < kGroupMaxEps) {
    std::memset(L, 0, static_cast<std::size_t>(n));
    return 0.0f;
  }
  auto sums = [&](float iscale, float* sumlx, float* suml2) {
    float slx = 0.0f, sl2 = 0.0f;
    for (int i = 0; i < n; ++i) {
      const int l = clamp_int(nearest_int(iscale * x[i]), -nmax, nmax - 1);
      const float w = x[i] * x[i];
      slx += w * x[i] * static_cast<float>(l);
      sl2 += w * static_cast<float>(l) * static_cast<float>(l);
    }
    *sumlx = slx;
    *suml2 = sl2;
  };
  auto assign = [&](float iscale) {
    for (int i = 0; i < n; ++i) {
      L[i] = static_cast<std::int8_t>(nmax + clamp_int(nearest_int(iscale * x[i]), -nmax, nmax - 1));
    }
  };
  float iscale = static_cast<float>(-nmax) / max;
  float sumlx, suml2;
  sums(iscale, &sumlx, &suml2);
  assign(iscale);
  float scale = suml2 != 0.0f ? sumlx / suml2 : 0.0f;
  float best = scale * sumlx;
  for (int is = -9; is <= 9; ++is) {
    if (is == 0) continue;
    iscale = -(static_cast<float>(nmax) + 0.1f * static_cast<float>(is)) / max;
    sums(iscale, &sumlx, &suml2);
    if (suml2 > 0.0f && sumlx * sumlx > best * suml2) {
      assign(iscale);
      scale = sumlx / suml2;
      best = scale * sumlx;
    }
  }
  return scale;
}

// Symmetric codes as above, refined by coordinate descent instead of a scale sweep: each code is
// moved to the value the current least-squares scale (computed without that element) prefers, kept
// only if the explained energy sumlx^2 / suml2 grows; at most 5 passes. Used by Q3_K (nmax 4, n 16).
// L gets code + nmax.
float fit_symmetric_refine(int n, int nmax, const float* x, std::int8_t* L) {
  const float max = signed_absmax(x, n);
  if (std::fabs(max) < kGroupMaxEps) {
    std::memset(L, 0, static_cast<std::size_t>(n));
    return 0.0f;
  }
  const float iscale = static_cast<float>(-nmax) / max;
  float sumlx = 0.0f, suml2 = 0.0f;
  for (int i = 0; i < n; ++i) {
    const int l = clamp_int(nearest_int(iscale * x[i]), -nmax, nmax - 1);
    L[i] = static_cast<std::int8_t>(l);
    const float w = x[i] * x[i];
    sumlx += w * x[i] * static_cast<float>(l);
    suml2 += w * static_cast<float>(l) * static_cast<float>(l);
  }
  for (int pass = 0; pass < 5; ++pass) {
    int changed = 0;
    for (int i = 0; i < n; ++i) {
      const float w = x[i] * x[i];
      float slx = sumlx - w * x[i] * static_cast<float>(L[i]);
      if (slx <= 0.0f) continue;
      float sl2 = suml2 - w * static_cast<float>(L[i]) * static_cast<float>(L[i]);
      const int nl = clamp_int(nearest_int(x[i] * sl2 / slx), -nmax, nmax - 1);
      if (nl == L[i]) continue;
      slx += w * x[i] * static_cast<float>(nl);
      sl2 += w * static_cast<float>(nl) * static_cast<float>(nl);
      if (sl2 > 0.0f && slx * slx * suml2 > sumlx * sumlx * sl2) {
        L[i] = static_cast<std::int8_t>(nl);
        sumlx = slx;
        suml2 = sl2;
        ++changed;
      }
    }
    if (changed == 0) break;
  }
  for (int i = 0; i < n; ++i) L[i] = static_cast<std::int8_t>(L[i] + nmax);
  return sumlx / suml2;
}

// Affine codes in [0, nmax] for x ~ scale * code + min with min <= 0 (the block's offset is stored
// as a positive "min" that is subtracted). Starts from the min/max grid, then tries nstep + 1 inverse
// scales (rmin + rdelta * k + nmax) / (max - min); for each, the weighted least-squares (scale, min)
// for those codes is solved in closed form (2x2 normal equations; a positive min is clamped to 0 and
// the scale refit) and kept if its weighted error (|diff| when use_mad, else diff^2) is lower.
// Returns the scale; *neg_min gets -min (>= 0). Laux is scratch [n].
float fit_affine(int n, int nmax, const float* x, const float* weights, std::uint8_t* L, float* neg_min,
                 std::uint8_t* Laux, float rmin, float rdelta, int nstep, bool use_mad) {
  float min = x[0];
  float max = x[0];
  float sum_w = weights[0];
  float sum_x = sum_w * x[0];
  for (int i = 1; i < n; ++i) {
    min = std::min(min, x[i]);
    max = std::max(max, x[i]);
    sum_w += weights[i];
    sum_x += weights[i] * x[i];
  }
  if (min > 0.0f) min = 0.0f;
  if (max == min) {
    std::memset(L, 0, static_cast<std::size_t>(n));
    *neg_min = -min;
    return 0.0f;
  }
  auto error_of = [&](float scale, float mn, const std::uint8_t* codes) {
    float err = 0.0f;
    for (int i = 0; i < n; ++i) {
      float diff = scale * static_cast<float>(codes[i]) + mn - x[i];
      diff = use_mad ? std::fabs(diff) : diff * diff;
      err += weights[i] * diff;
    }
    return err;
  };
  float iscale = static_cast<float>(nmax) / (max - min);
  float scale = 1.0f / iscale;
  for (int i = 0; i < n; ++i) {
    L[i] = static_cast<std::uint8_t>(clamp_int(nearest_int(iscale * (x[i] - min)), 0, nmax));
  }
  float best_error = error_of(scale, min, L);
  for (int is = 0; is <= nstep; ++is) {
    iscale = (rmin + rdelta * static_cast<float>(is) + static_cast<float>(nmax)) / (max - min);
    float sum_l = 0.0f, sum_l2 = 0.0f, sum_xl = 0.0f;
    for (int i = 0; i < n; ++i) {
      const int l = clamp_int(nearest_int(iscale * (x[i] - min)), 0, nmax);
      Laux[i] = static_cast<std::uint8_t>(l);
      const float w = weights[i];
      const float fl = static_cast<float>(l);
      sum_l += w * fl;
      sum_l2 += w * fl * fl;
      sum_xl += w * fl * x[i];
    }
    const float det = sum_w * sum_l2 - sum_l * sum_l;
    if (det <= 0.0f) continue;
    float this_scale = (sum_w * sum_xl - sum_x * sum_l) / det;
    float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / det;
    if (this_min > 0.0f) {
      this_min = 0.0f;
      this_scale = sum_xl / sum_l2;
    }
    const float err = error_of(this_scale, this_min, Laux);
    if (err < best_error) {
      std::memcpy(L, Laux, static_cast<std::size_t>(n));
      best_error = err;
      scale = this_scale;
      min = this_min;
    }
  }
  *neg_min = -min;
  return scale;
}

// Q4_K/Q5_K: 8 6-bit scales and 8 6-bit mins in 12 bytes (the inverse of get_scale_min_k4).
void pack_scale_min_k4(const std::uint8_t* ls, const std::uint8_t* lm, std::uint8_t* q) {
  std::memset(q, 0, kKScaleSize);
  for (int j = 0; j < 8; ++j) {
    if (j < 4) {
      q[j] = ls[j];
      q[j + 4] = lm[j];
    } else {
      q[j + 4] = static_cast<std::uint8_t>((ls[j] & 0x0f) | ((lm[j] & 0x0f) << 4));
      q[j - 4] |= static_cast<std::uint8_t>((ls[j] >> 4) << 6);
      q[j] |= static_cast<std::uint8_t>((lm[j] >> 4) << 6);
    }
  }
}

inline void scale_min_k4(int j, const std::uint8_t* q, int* sc, int* mn) {
  if (j < 4) {
    *sc = q[j] & 63;
    *mn = q[j + 4] & 63;
  } else {
    *sc = (q[j + 4] & 0x0f) | ((q[j - 4] >> 6) << 4);
    *mn = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
  }
}

// Q4_K and Q5_K share everything but the code width and the search parameters.
template <int kNmax>
void quantize_super_block_k4(const float* x, std::uint16_t* d_out, std::uint16_t* dmin_out, std::uint8_t* scales_out,
                             std::uint8_t* L, float rmin, float rdelta, int nstep) {
  float scales[8], mins[8], weights[32];
  std::uint8_t Laux[32];
  float max_scale = 0.0f, max_min = 0.0f;
  for (int j = 0; j < 8; ++j) {
    const float* xs = x + 32 * j;
    // Weight = rms of the sub-block + |x|: large elements count more, small ones still count.
    float sum_x2 = 0.0f;
    for (int l = 0; l < 32; ++l) sum_x2 += xs[l] * xs[l];
    const float av_x = std::sqrt(sum_x2 / 32.0f);
    for (int l = 0; l < 32; ++l) weights[l] = av_x + std::fabs(xs[l]);
    scales[j] = fit_affine(32, kNmax, xs, weights, L + 32 * j, &mins[j], Laux, rmin, rdelta, nstep, false);
    max_scale = std::max(max_scale, scales[j]);
    max_min = std::max(max_min, mins[j]);
  }
  const float inv_scale = max_scale > 0.0f ? 63.0f / max_scale : 0.0f;
  const float inv_min = max_min > 0.0f ? 63.0f / max_min : 0.0f;
  std::uint8_t ls[8], lm[8];
  for (int j = 0; j < 8; ++j) {
    ls[j] = static_cast<std::uint8_t>(clamp_int(nearest_int(inv_scale * scales[j]), 0, 63));
    lm[j] = static_cast<std::uint8_t>(clamp_int(nearest_int(inv_min * mins[j]), 0, 63));
  }
  pack_scale_min_k4(ls, lm, scales_out);
  *d_out = fp32_to_fp16(max_scale / 63.0f);
  *dmin_out = fp32_to_fp16(max_min / 63.0f);
  // Codes again, against the scales as the decoder will see them.
  for (int j = 0; j < 8; ++j) {
    int sc, mn;
    scale_min_k4(j, scales_out, &sc, &mn);
    const float d = fp16_to_fp32(*d_out) * static_cast<float>(sc);
    if (d == 0.0f) continue;
    const float dm = fp16_to_fp32(*dmin_out) * static_cast<float>(mn);
    for (int l = 0; l < 32; ++l) {
      L[32 * j + l] = static_cast<std::uint8_t>(clamp_int(nearest_int((x[32 * j + l] + dm) / d), 0, kNmax));
    }
  }
}

}  // namespace

void quantize_row_q2_k(const float* x, BlockQ2_K* y, std::int64_t n) {
  const std::int64_t nb = n / kQK_K;
  constexpr float kQ4Scale = 15.0f;
  for (std::int64_t i = 0; i < nb; ++i, x += kQK_K) {
    std::uint8_t L[kQK_K], Laux[16];
    float weights[16], mins[16], scales[16];
    float max_scale = 0.0f, max_min = 0.0f;
    for (int j = 0; j < 16; ++j) {
      for (int l = 0; l < 16; ++l) weights[l] = std::fabs(x[16 * j + l]);
      scales[j] = fit_affine(16, 3, x + 16 * j, weights, L + 16 * j, &mins[j], Laux, -0.5f, 0.1f, 15, true);
      max_scale = std::max(max_scale, scales[j]);
      max_min = std::max(max_min, mins[j]);
    }
    if (max_scale > 0.0f) {
      const float iscale = kQ4Scale / max_scale;
      for (int j = 0; j < 16; ++j) y[i].scales[j] = static_cast<std::uint8_t>(nearest_int(iscale * scales[j]));
      y[i].d = fp32_to_fp16(max_scale / kQ4Scale);
    } else {
      std::memset(y[i].scales, 0, sizeof(y[i].scales));
      y[i].d = fp32_to_fp16(0.0f);
    }
    if (max_min > 0.0f) {
      const float iscale = kQ4Scale / max_min;
      for (int j = 0; j < 16; ++j) {
        y[i].scales[j] = static_cast<std::uint8_t>(y[i].scales[j] | (nearest_int(iscale * mins[j]) << 4));
      }
      y[i].dmin = fp32_to_fp16(max_min / kQ4Scale);
    } else {
      y[i].dmin = fp32_to_fp16(0.0f);
    }
    for (int j = 0; j < 16; ++j) {
      const float d = fp16_to_fp32(y[i].d) * static_cast<float>(y[i].scales[j] & 0x0f);
      if (d == 0.0f) continue;
      const float dm = fp16_to_fp32(y[i].dmin) * static_cast<float>(y[i].scales[j] >> 4);
      for (int l = 0; l < 16; ++l) {
        L[16 * j + l] = static_cast<std::uint8_t>(clamp_int(nearest_int((x[16 * j + l] + dm) / d), 0, 3));
      }
    }
    // Byte l of each 32-byte half holds elements l, l+32, l+64, l+96 at bits 0, 2, 4, 6.
    for (int h = 0; h < 2; ++h) {
      const std::uint8_t* Lh = L + 128 * h;
      for (int l = 0; l < 32; ++l) {
        y[i].qs[32 * h + l] =
            static_cast<std::uint8_t>(Lh[l] | (Lh[l + 32] << 2) | (Lh[l + 64] << 4) | (Lh[l + 96] << 6));
      }
    }
  }
}

void quantize_row_q3_k(const float* x, BlockQ3_K* y, std::int64_t n) {
  const std::int64_t nb = n / kQK_K;
  for (std::int64_t i = 0; i < nb; ++i, x += kQK_K) {
    std::int8_t L[kQK_K];
    float scales[16];
    float max_scale = 0.0f, amax = 0.0f;
    for (int j = 0; j < 16; ++j) {
      scales[j] = fit_symmetric_refine(16, 4, x + 16 * j, L + 16 * j);
      if (std::fabs(scales[j]) > amax) {
        amax = std::fabs(scales[j]);
        max_scale = scales[j];
      }
    }
    // 6-bit signed sub-block scales (stored + 32): low nibbles in bytes 0..7, top bits in 8..11.
    std::memset(y[i].scales, 0, sizeof(y[i].scales));
    if (max_scale != 0.0f) {
      const float iscale = -32.0f / max_scale;
      for (int j = 0; j < 16; ++j) {
        const int l = clamp_int(nearest_int(iscale * scales[j]), -32, 31) + 32;
        if (j < 8) {
          y[i].scales[j] = static_cast<std::uint8_t>(l & 0x0f);
        } else {
          y[i].scales[j - 8] = static_cast<std::uint8_t>(y[i].scales[j - 8] | ((l & 0x0f) << 4));
        }
        y[i].scales[8 + j % 4] = static_cast<std::uint8_t>(y[i].scales[8 + j % 4] | ((l >> 4) << (2 * (j / 4))));
      }
      y[i].d = fp32_to_fp16(1.0f / iscale);
    } else {
      y[i].d = fp32_to_fp16(0.0f);
    }
    for (int j = 0; j < 16; ++j) {
      const int low = j < 8 ? (y[i].scales[j] & 0x0f) : (y[i].scales[j - 8] >> 4);
      const int sc = (low | (((y[i].scales[8 + j % 4] >> (2 * (j / 4))) & 3) << 4)) - 32;
      const float d = fp16_to_fp32(y[i].d) * static_cast<float>(sc);
      if (d == 0.0f) continue;
      for (int l = 0; l < 16; ++l) {
        L[16 * j + l] = static_cast<std::int8_t>(clamp_int(nearest_int(x[16 * j + l] / d), -4, 3) + 4);
      }
    }
    // Codes 0..7: bit 2 goes to hmask (element k at byte k % 32, bit k / 32), bits 0..1 to qs.
    std::memset(y[i].hmask, 0, sizeof(y[i].hmask));
    for (int k = 0; k < kQK_K; ++k) {
      if (L[k] > 3) {
        y[i].hmask[k % 32] = static_cast<std::uint8_t>(y[i].hmask[k % 32] | (1u << (k / 32)));
        L[k] = static_cast<std::int8_t>(L[k] - 4);
      }
    }
    for (int h = 0; h < 2; ++h) {
      const std::int8_t* Lh = L + 128 * h;
      for (int l = 0; l < 32; ++l) {
        y[i].qs[32 * h + l] =
            static_cast<std::uint8_t>(Lh[l] | (Lh[l + 32] << 2) | (Lh[l + 64] << 4) | (Lh[l + 96] << 6));
      }
    }
  }
}

void quantize_row_q4_k(const float* x, BlockQ4_K* y, std::int64_t n) {
  const std::int64_t nb = n / kQK_K;
  for (std::int64_t i = 0; i < nb; ++i, x += kQK_K) {
    std::uint8_t L[kQK_K];
    quantize_super_block_k4<15>(x, &y[i].d, &y[i].dmin, y[i].scales, L, -1.0f, 0.1f, 20);
    // Each 64-element chunk: 32 bytes, low nibble = first 32 elements, high nibble = next 32.
    for (int c = 0; c < 4; ++c) {
      for (int l = 0; l < 32; ++l) {
        y[i].qs[32 * c + l] = static_cast<std::uint8_t>(L[64 * c + l] | (L[64 * c + l + 32] << 4));
      }
    }
  }
}

void quantize_row_q5_k(const float* x, BlockQ5_K* y, std::int64_t n) {
  const std::int64_t nb = n / kQK_K;
  for (std::int64_t i = 0; i < nb; ++i, x += kQK_K) {
    std::uint8_t L[kQK_K];
    quantize_super_block_k4<31>(x, &y[i].d, &y[i].dmin, y[i].scales, L, -0.5f, 0.1f, 15);
    // As Q4_K for the low 4 bits; bit 4 of sub-block s's element l goes to bit s of qh[l].
    std::memset(y[i].qh, 0, sizeof(y[i].qh));
    for (int c = 0; c < 4; ++c) {
      for (int l = 0; l < 32; ++l) {
        const int l1 = L[64 * c + l];
        const int l2 = L[64 * c + l + 32];
        y[i].qh[l] = static_cast<std::uint8_t>(y[i].qh[l] | ((l1 >> 4) << (2 * c)) | ((l2 >> 4) << (2 * c + 1)));
        y[i].qs[32 * c + l] = static_cast<std::uint8_t>((l1 & 0x0f) | ((l2 & 0x0f) << 4));
      }
    }
  }
}

void quantize_row_q6_k(const float* x, BlockQ6_K* y, std::int64_t n) {
  const std::int64_t nb = n / kQK_K;
  for (std::int64_t i = 0; i < nb; ++i, x += kQK_K) {
    std::int8_t L[kQK_K];
    float scales[16];
    float max_scale = 0.0f, max_abs_scale = 0.0f;
    for (int j = 0; j < 16; ++j) {
      scales[j] = fit_symmetric(16, 32, x + 16 * j, L + 16 * j);
      if (std::fabs(scales[j]) > max_abs_scale) {
        max_abs_scale = std::fabs(scales[j]);
        max_scale = scales[j];
      }
    }
    if (max_abs_scale < kGroupMaxEps) {
      std::memset(&y[i], 0, sizeof(BlockQ6_K));
      continue;
    }
    // int8 sub-block scales against d: the largest maps to -128 (clamped to 127 on the other side).
    const float iscale = -128.0f / max_scale;
    y[i].d = fp32_to_fp16(1.0f / iscale);
    for (int j = 0; j < 16; ++j) {
      y[i].scales[j] = static_cast<std::int8_t>(std::min(127, nearest_int(iscale * scales[j])));
    }
    for (int j = 0; j < 16; ++j) {
      const float d = fp16_to_fp32(y[i].d) * static_cast<float>(y[i].scales[j]);
      if (d == 0.0f) continue;
      for (int l = 0; l < 16; ++l) {
        L[16 * j + l] = static_cast<std::int8_t>(clamp_int(nearest_int(x[16 * j + l] / d), -32, 31) + 32);
      }
    }
    // Per 128-element half: ql[l] = elements l (low) and l+64 (high), ql[l+32] = l+32 and l+96;
    // qh[l] = top 2 bits of l, l+32, l+64, l+96 at bits 0, 2, 4, 6.
    for (int h = 0; h < 2; ++h) {
      const std::int8_t* Lh = L + 128 * h;
      std::uint8_t* ql = y[i].ql + 64 * h;
      std::uint8_t* qh = y[i].qh + 32 * h;
      for (int l = 0; l < 32; ++l) {
        ql[l] = static_cast<std::uint8_t>((Lh[l] & 0x0f) | ((Lh[l + 64] & 0x0f) << 4));
        ql[l + 32] = static_cast<std::uint8_t>((Lh[l + 32] & 0x0f) | ((Lh[l + 96] & 0x0f) << 4));
        qh[l] = static_cast<std::uint8_t>((Lh[l] >> 4) | ((Lh[l + 32] >> 4) << 2) | ((Lh[l + 64] >> 4) << 4) |
                                          ((Lh[l + 96] >> 4) << 6));
      }
    }
  }
}

}  // namespace g2c::quant::ref
