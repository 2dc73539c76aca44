// Round-to-nearest encoders, byte-exact with ggml's quantize_row_*_ref (quant-goldens/README.md (b)).
// What the bytes depend on: the codes are computed from the unrounded float32 scale (not the fp16 that
// is stored); every product and sum is rounded to float32 in this order, which is why the target is
// built with -ffp-contract=off (one Q4_0 block of the goldens flips under a fused x*id + 8.5); and the
// float -> int steps truncate (Q4/Q5) or round half away from zero (Q8_0/Q8_1, roundf) exactly as ggml.
#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>

#include "g2c/core/fp16.hpp"
#include "g2c/quant/blocks.hpp"
#include "g2c/quant/ref.hpp"

namespace g2c::quant::ref {
namespace {

// The element of largest magnitude with its sign; the first wins ties. Q4_0/Q5_0 divide it by a
// negative constant so that this element maps to code 0 and the 16 (32) codes span it asymmetrically.
float signed_absmax(const float* x, int n) {
  float amax = 0.0f;
  float max = 0.0f;
  for (int j = 0; j < n; ++j) {
    const float v = x[j];
    if (amax < std::fabs(v)) {
      amax = std::fabs(v);
      max = v;
    }
  }
  return max;
}

float absmax(const float* x, int n) {
  float amax = 0.0f;
  for (int j = 0; j < n; ++j) amax = std::max(amax, std::fabs(x[j]));
  return amax;
}

void min_max(const float* x, int n, float* mn, float* mx) {
  float lo = FLT_MAX;
  float hi = -FLT_MAX;
  for (int j = 0; j < n; ++j) {
    if (x[j] < lo) lo = x[j];
    if (x[j] > hi) hi = x[j];
  }
  *mn = lo;
  *mx = hi;
}

// ggml's (int8_t)(float) cast: truncation toward zero. Every operand here lies in [0, 32].
inline int trunc_code(float v) { return static_cast<int>(v); }

}  // namespace

void quantize_row_q4_0(const float* x, BlockQ4_0* y, std::int64_t n) {
  const std::int64_t nb = n / kQK4_0;
  for (std::int64_t i = 0; i < nb; ++i, x += kQK4_0) {
    const float max = signed_absmax(x, kQK4_0);
    const float d = max / -8.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[i].d = fp32_to_fp16(d);
    for (int j = 0; j < kQK4_0 / 2; ++j) {
      const float x0 = x[j] * id;
      const float x1 = x[j + kQK4_0 / 2] * id;
      const int q0 = std::min(15, trunc_code(x0 + 8.5f));
      const int q1 = std::min(15, trunc_code(x1 + 8.5f));
      y[i].qs[j] = static_cast<std::uint8_t>(q0 | (q1 << 4));
    }
  }
}

void quantize_row_q4_1(const float* x, BlockQ4_1* y, std::int64_t n) {
  const std::int64_t nb = n / kQK4_1;
  for (std::int64_t i = 0; i < nb; ++i, x += kQK4_1) {
    float mn, mx;
    min_max(x, kQK4_1, &mn, &mx);
    const float d = (mx - mn) / 15.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[i].d = fp32_to_fp16(d);
    y[i].m = fp32_to_fp16(mn);
    for (int j = 0; j < kQK4_1 / 2; ++j) {
      const float x0 = (x[j] - mn) * id;
      const float x1 = (x[j + kQK4_1 / 2] - mn) * id;
      const int q0 = std::min(15, trunc_code(x0 + 0.5f));
      const int q1 = std::min(15, trunc_code(x1 + 0.5f));
      y[i].qs[j] = static_cast<std::uint8_t>(q0 | (q1 << 4));
    }
  }
}

void quantize_row_q5_0(const float* x, BlockQ5_0* y, std::int64_t n) {
  const std::int64_t nb = n / kQK5_0;
  for (std::int64_t i = 0; i < nb; ++i, x += kQK5_0) {
    const float max = signed_absmax(x, kQK5_0);
    const float d = max / -16.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[i].d = fp32_to_fp16(d);
    std::uint32_t qh = 0;
    for (int j = 0; j < kQK5_0 / 2; ++j) {
      const float x0 = x[j] * id;
      const float x1 = x[j + kQK5_0 / 2] * id;
      const int q0 = std::min(31, trunc_code(x0 + 16.5f));
      const int q1 = std::min(31, trunc_code(x1 + 16.5f));
      y[i].qs[j] = static_cast<std::uint8_t>((q0 & 0x0f) | ((q1 & 0x0f) << 4));
      qh |= static_cast<std::uint32_t>((q0 >> 4) & 1) << j;
      qh |= static_cast<std::uint32_t>((q1 >> 4) & 1) << (j + 16);
    }
    std::memcpy(y[i].qh, &qh, 4);
  }
}

void quantize_row_q5_1(const float* x, BlockQ5_1* y, std::int64_t n) {
  const std::int64_t nb = n / kQK5_1;
  for (std::int64_t i = 0; i < nb; ++i, x += kQK5_1) {
    float mn, mx;
    min_max(x, kQK5_1, &mn, &mx);
    const float d = (mx - mn) / 31.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[i].d = fp32_to_fp16(d);
    y[i].m = fp32_to_fp16(mn);
    std::uint32_t qh = 0;
    for (int j = 0; j < kQK5_1 / 2; ++j) {
      const float x0 = (x[j] - mn) * id;
      const float x1 = (x[j + kQK5_1 / 2] - mn) * id;
      // No clamp: ggml relies on (max - min) * (1 / d) + 0.5 staying below 32.
      const int q0 = trunc_code(x0 + 0.5f);
      const int q1 = trunc_code(x1 + 0.5f);
      y[i].qs[j] = static_cast<std::uint8_t>((q0 & 0x0f) | ((q1 & 0x0f) << 4));
      qh |= static_cast<std::uint32_t>((q0 >> 4) & 1) << j;
      qh |= static_cast<std::uint32_t>((q1 >> 4) & 1) << (j + 16);
    }
    std::memcpy(y[i].qh, &qh, 4);
  }
}

void quantize_row_q8_0(const float* x, BlockQ8_0* y, std::int64_t n) {
  const std::int64_t nb = n / kQK8_0;
  for (std::int64_t i = 0; i < nb; ++i, x += kQK8_0) {
    const float d = absmax(x, kQK8_0) / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[i].d = fp32_to_fp16(d);
    for (int j = 0; j < kQK8_0; ++j) y[i].qs[j] = static_cast<std::int8_t>(std::round(x[j] * id));
  }
}

void quantize_row_q8_1(const float* x, BlockQ8_1* y, std::int64_t n) {
  const std::int64_t nb = n / kQK8_1;
  for (std::int64_t i = 0; i < nb; ++i, x += kQK8_1) {
    const float d = absmax(x, kQK8_1) / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[i].d = fp32_to_fp16(d);
    int sum = 0;
    for (int j = 0; j < kQK8_1; ++j) {
      y[i].qs[j] = static_cast<std::int8_t>(std::round(x[j] * id));
      sum += y[i].qs[j];
    }
    // s uses the float32 d, as ggml does, not the fp16-rounded one.
    y[i].s = fp32_to_fp16(static_cast<float>(sum) * d);
  }
}

void quantize_row_q8_k(const float* x, BlockQ8_K* y, std::int64_t n) {
  const std::int64_t nb = n / kQK_K;
  for (std::int64_t i = 0; i < nb; ++i, x += kQK_K) {
    const float max = signed_absmax(x, kQK_K);
    if (max == 0.0f) {
      // ggml leaves bsums unwritten here; zeros are what every dot expects anyway.
      std::memset(&y[i], 0, sizeof(BlockQ8_K));
      continue;
    }
    // The largest-magnitude element maps to -127 exactly; -127 rather than -128 keeps the codes
    // symmetric so SIMD dots can use sign tricks (ggml's comment: needed for IQ2_XXS on AVX).
    const float iscale = -127.0f / max;
    for (int j = 0; j < kQK_K; ++j) {
      y[i].qs[j] = static_cast<std::int8_t>(std::min(127, nearest_int(iscale * x[j])));
    }
    for (int g = 0; g < kQK_K / 16; ++g) {
      int sum = 0;
      for (int l = 0; l < 16; ++l) sum += y[i].qs[16 * g + l];
      y[i].bsums[g] = static_cast<std::int16_t>(sum);
    }
    y[i].d = 1.0f / iscale;
  }
}

}  // namespace g2c::quant::ref
