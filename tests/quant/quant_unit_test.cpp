// Unit tests of the quant layer that the llama.cpp goldens do not reach: block layouts (offsets as in
// ggml-common.h), the Q8_1/Q8_K activation formats (hand-computed blocks, round-trip bounds, bsums),
// the refusal of types g2c does not compute, and the sign-of-zero rules of the decoders.
#include <gtest/gtest.h>

#include <cmath>
#include <cstddef>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "g2c/core/error.hpp"
#include "g2c/core/fp16.hpp"
#include "g2c/quant/blocks.hpp"
#include "g2c/quant/quant.hpp"
#include "g2c/quant/ref.hpp"

namespace g2c::quant {
namespace {

// Field offsets of the layouts (the sizes are static_asserts in blocks.hpp).
static_assert(offsetof(BlockQ5_0, qh) == 2 && offsetof(BlockQ5_0, qs) == 6);
static_assert(offsetof(BlockQ5_1, qh) == 4 && offsetof(BlockQ5_1, qs) == 8);
static_assert(offsetof(BlockQ8_1, s) == 2 && offsetof(BlockQ8_1, qs) == 4);
static_assert(offsetof(BlockQ2_K, qs) == 16 && offsetof(BlockQ2_K, d) == 80 && offsetof(BlockQ2_K, dmin) == 82);
static_assert(offsetof(BlockQ3_K, qs) == 32 && offsetof(BlockQ3_K, scales) == 96 && offsetof(BlockQ3_K, d) == 108);
static_assert(offsetof(BlockQ4_K, scales) == 4 && offsetof(BlockQ4_K, qs) == 16);
static_assert(offsetof(BlockQ5_K, qh) == 16 && offsetof(BlockQ5_K, qs) == 48);
static_assert(offsetof(BlockQ6_K, qh) == 128 && offsetof(BlockQ6_K, scales) == 192 && offsetof(BlockQ6_K, d) == 208);
static_assert(offsetof(BlockQ8_K, qs) == 4 && offsetof(BlockQ8_K, bsums) == 260);

TEST(Blocks, SizesAgreeWithTypeTraits) {
  EXPECT_EQ(type_traits(GgmlType::Q4_0).type_size, sizeof(BlockQ4_0));
  EXPECT_EQ(type_traits(GgmlType::Q4_1).type_size, sizeof(BlockQ4_1));
  EXPECT_EQ(type_traits(GgmlType::Q5_0).type_size, sizeof(BlockQ5_0));
  EXPECT_EQ(type_traits(GgmlType::Q5_1).type_size, sizeof(BlockQ5_1));
  EXPECT_EQ(type_traits(GgmlType::Q8_0).type_size, sizeof(BlockQ8_0));
  EXPECT_EQ(type_traits(GgmlType::Q8_1).type_size, sizeof(BlockQ8_1));
  EXPECT_EQ(type_traits(GgmlType::Q2_K).type_size, sizeof(BlockQ2_K));
  EXPECT_EQ(type_traits(GgmlType::Q3_K).type_size, sizeof(BlockQ3_K));
  EXPECT_EQ(type_traits(GgmlType::Q4_K).type_size, sizeof(BlockQ4_K));
  EXPECT_EQ(type_traits(GgmlType::Q5_K).type_size, sizeof(BlockQ5_K));
  EXPECT_EQ(type_traits(GgmlType::Q6_K).type_size, sizeof(BlockQ6_K));
  EXPECT_EQ(type_traits(GgmlType::Q8_K).type_size, sizeof(BlockQ8_K));
}

std::vector<float> random_row(std::int64_t n, unsigned seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> x(static_cast<std::size_t>(n));
  for (float& v : x) v = dist(rng);
  return x;
}

// Q8_1: d = amax/127, codes round half away from zero (roundf), s = fp16(d * sum(codes)).
TEST(Q8_1, HandComputedBlock) {
  float x[32] = {};
  x[0] = 127.0f;  // amax 127 -> d = 1, id = 1
  x[1] = 2.5f;    // roundf: 3
  x[2] = -2.5f;   // -3
  x[3] = 0.49f;   // 0
  x[4] = -6.5f;   // -7
  BlockQ8_1 b;
  quantize_row(GgmlType::Q8_1, x, &b, 32);
  EXPECT_EQ(b.d, fp32_to_fp16(1.0f));
  EXPECT_EQ(b.qs[0], 127);
  EXPECT_EQ(b.qs[1], 3);
  EXPECT_EQ(b.qs[2], -3);
  EXPECT_EQ(b.qs[3], 0);
  EXPECT_EQ(b.qs[4], -7);
  EXPECT_EQ(fp16_to_fp32(b.s), 127.0f + 3 - 3 - 7);
}

TEST(Q8_1, RoundTripBoundAndSum) {
  const std::int64_t n = 32 * 64;
  const std::vector<float> x = random_row(n, 1, 0.3f);
  std::vector<BlockQ8_1> q(n / 32);
  quantize_row(GgmlType::Q8_1, x.data(), q.data(), n);
  std::vector<float> y(n);
  dequantize_row(GgmlType::Q8_1, q.data(), y.data(), n);
  for (std::int64_t ib = 0; ib < n / 32; ++ib) {
    float amax = 0.0f;
    for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[ib * 32 + j]));
    const double d = amax / 127.0;
    int sum = 0;
    for (int j = 0; j < 32; ++j) {
      // Half a step, plus the fp16 rounding of d (relative 2^-11) times the largest code.
      EXPECT_LE(std::fabs(x[ib * 32 + j] - y[ib * 32 + j]), 0.5 * d + 127 * d * 0x1p-11 + 1e-9);
      sum += q[ib].qs[j];
    }
    EXPECT_EQ(q[ib].s, fp32_to_fp16(static_cast<float>(sum) * static_cast<float>(amax / 127.0f)));
    EXPECT_NEAR(fp16_to_fp32(q[ib].s), sum * d, std::fabs(sum * d) * 0x1p-10 + 1e-7);
  }
}

// Q8_K: iscale = -127 / (signed value of largest magnitude), codes round to nearest even, d = 1/iscale.
TEST(Q8_K, HandComputedBlock) {
  float x[256] = {};
  x[0] = -127.0f;  // max = -127 -> iscale = 1, d = 1; this element -> -127
  x[1] = 2.5f;     // ties to even: 2 (roundf would give 3)
  x[2] = -2.5f;    // -2
  x[3] = 3.5f;     // 4
  x[17] = 100.0f;  // second group
  BlockQ8_K b;
  quantize_row(GgmlType::Q8_K, x, &b, 256);
  EXPECT_EQ(b.d, 1.0f);
  EXPECT_EQ(b.qs[0], -127);
  EXPECT_EQ(b.qs[1], 2);
  EXPECT_EQ(b.qs[2], -2);
  EXPECT_EQ(b.qs[3], 4);
  EXPECT_EQ(b.qs[17], 100);
  EXPECT_EQ(b.bsums[0], -127 + 2 - 2 + 4);
  EXPECT_EQ(b.bsums[1], 100);
  for (int g = 2; g < 16; ++g) EXPECT_EQ(b.bsums[g], 0);
}

TEST(Q8_K, PositiveMaxMapsToMinus127) {
  float x[256];
  for (int j = 0; j < 256; ++j) x[j] = static_cast<float>(j % 16) - 8.0f;  // max |x| = 8 at x = -8
  x[5] = 16.0f;  // now the largest is +16: iscale = -127/16, so +16 -> -127 and d < 0
  BlockQ8_K b;
  quantize_row(GgmlType::Q8_K, x, &b, 256);
  EXPECT_EQ(b.qs[5], -127);
  EXPECT_FLOAT_EQ(b.d, -16.0f / 127.0f);
  std::vector<float> y(256);
  dequantize_row(GgmlType::Q8_K, &b, y.data(), 256);
  EXPECT_FLOAT_EQ(y[5], 16.0f);
}

TEST(Q8_K, RoundTripBoundAndBsums) {
  const std::int64_t n = 256 * 16;
  const std::vector<float> x = random_row(n, 2, 0.05f);
  std::vector<BlockQ8_K> q(n / 256);
  quantize_row(GgmlType::Q8_K, x.data(), q.data(), n);
  std::vector<float> y(n);
  dequantize_row(GgmlType::Q8_K, q.data(), y.data(), n);
  for (std::int64_t ib = 0; ib < n / 256; ++ib) {
    float amax = 0.0f;
    for (int j = 0; j < 256; ++j) amax = std::max(amax, std::fabs(x[ib * 256 + j]));
    EXPECT_NEAR(std::fabs(q[ib].d), amax / 127.0f, amax * 1e-6f);
    for (int j = 0; j < 256; ++j) {
      EXPECT_LE(std::fabs(x[ib * 256 + j] - y[ib * 256 + j]), 0.5 * std::fabs(q[ib].d) * (1 + 1e-5));
    }
    for (int g = 0; g < 16; ++g) {
      int sum = 0;
      for (int l = 0; l < 16; ++l) sum += q[ib].qs[16 * g + l];
      EXPECT_EQ(q[ib].bsums[g], sum);
    }
  }
}

TEST(Q8_K, ZeroBlockIsAllZero) {
  std::vector<float> x(256, 0.0f);
  x[3] = -0.0f;
  BlockQ8_K b;
  std::memset(&b, 0x5a, sizeof(b));
  quantize_row(GgmlType::Q8_K, x.data(), &b, 256);
  EXPECT_EQ(b.d, 0.0f);
  for (int j = 0; j < 256; ++j) EXPECT_EQ(b.qs[j], 0);
  for (int g = 0; g < 16; ++g) EXPECT_EQ(b.bsums[g], 0);
}

// Simple formats: every element within half a quantization step (plus the fp16 rounding of the
// scale and min) of its source; a self-check beside the byte-exact goldens, over random rows.
TEST(SimpleFormats, RoundTripWithinHalfStep) {
  const std::int64_t n = 32 * 32;
  const std::vector<float> x = random_row(n, 3, 0.02f);
  struct Case {
    GgmlType type;
    int levels;  // codes per block span
  };
  for (Case c : {Case{GgmlType::Q4_0, 16}, Case{GgmlType::Q4_1, 15}, Case{GgmlType::Q5_0, 32}, Case{GgmlType::Q5_1, 31},
                 Case{GgmlType::Q8_0, 254}}) {
    SCOPED_TRACE(type_name(c.type));
    std::vector<std::uint8_t> q(*row_bytes(c.type, n));
    quantize_row(c.type, x.data(), q.data(), n);
    std::vector<float> y(n);
    dequantize_row(c.type, q.data(), y.data(), n);
    for (std::int64_t ib = 0; ib < n / 32; ++ib) {
      float lo = x[ib * 32], hi = x[ib * 32];
      for (int j = 0; j < 32; ++j) {
        lo = std::min(lo, x[ib * 32 + j]);
        hi = std::max(hi, x[ib * 32 + j]);
      }
      const float amax = std::max(std::fabs(lo), std::fabs(hi));
      // Symmetric types span 2*amax in `levels` steps (Q4_0: [-amax, 7/8 amax]); others span hi-lo.
      const double range = (c.type == GgmlType::Q4_1 || c.type == GgmlType::Q5_1) ? hi - lo : 2.0 * amax;
      const double step = range / c.levels;
      // Q4_0/Q5_0 clamp the top code, so an element of the opposite sign near -max is a full step off.
      const double steps = (c.type == GgmlType::Q4_0 || c.type == GgmlType::Q5_0) ? 1.0 : 0.5;
      for (int j = 0; j < 32; ++j) {
        EXPECT_LE(std::fabs(x[ib * 32 + j] - y[ib * 32 + j]), steps * step * 1.01 + amax * 0x1p-10)
            << "block " << ib << " element " << j;
      }
    }
  }
}

// ggml's forms give -0.0 for a zero code times a negative scale (Q4_0: (q - 8) * d with q = 8).
TEST(Decode, SignOfZeroFollowsGgml) {
  BlockQ4_0 b4{};
  b4.d = fp32_to_fp16(-1.0f);
  std::memset(b4.qs, 0x88, sizeof(b4.qs));  // every code 8
  float y[32];
  dequantize_row(GgmlType::Q4_0, &b4, y, 32);
  for (float v : y) EXPECT_TRUE(v == 0.0f && std::signbit(v));

  BlockQ4_1 b41{};  // all zero: 0 * 0 + 0 = +0
  dequantize_row(GgmlType::Q4_1, &b41, y, 32);
  for (float v : y) EXPECT_TRUE(v == 0.0f && !std::signbit(v));
}

// Q4_0 of an all-zero block: d = 0/-8 = -0, stored as fp16 0x8000, and every code is 8 -> -0.0.
TEST(Encode, ZeroBlockQ4_0) {
  float x[32] = {};
  BlockQ4_0 b;
  quantize_row(GgmlType::Q4_0, x, &b, 32);
  EXPECT_EQ(b.d, 0x8000);
  for (std::uint8_t q : b.qs) EXPECT_EQ(q, 0x88);
}

TEST(Unsupported, DecodeNamesTheType) {
  const GgmlType refused[] = {GgmlType::IQ2_XXS, GgmlType::IQ2_XS, GgmlType::IQ3_XXS, GgmlType::IQ1_S,
                              GgmlType::IQ4_NL,  GgmlType::IQ3_S,  GgmlType::IQ2_S,   GgmlType::IQ4_XS,
                              GgmlType::IQ1_M,   GgmlType::TQ1_0,  GgmlType::TQ2_0,   GgmlType::I8,
                              GgmlType::I16,     GgmlType::I32,    GgmlType::I64,     GgmlType::F64};
  std::vector<std::uint8_t> src(4096, 0);
  std::vector<float> dst(256);
  for (GgmlType t : refused) {
    const std::string name = type_name(t);
    SCOPED_TRACE(name);
    try {
      dequantize_row(t, src.data(), dst.data(), 256);
      ADD_FAILURE() << "no exception";
    } catch (const UnsupportedError& e) {
      EXPECT_EQ(std::string(e.what()), "unsupported tensor type " + name);
    }
    EXPECT_FALSE(can_quantize(t));
    EXPECT_THROW(quantize_row(t, dst.data(), src.data(), 256), UnsupportedError);
  }
}

TEST(Unsupported, DequantizeTensorRefusesIq) {
  std::vector<std::uint8_t> bytes(66 * 2, 0);
  gguf::TensorInfo t;
  t.name = "blk.0.attn_q.weight";
  t.n_dims = 2;
  t.ne = {256, 2, 1, 1};
  t.type = GgmlType::IQ2_XXS;
  t.n_bytes = bytes.size();
  t.data = bytes.data();
  try {
    (void)dequantize_tensor(t);
    ADD_FAILURE() << "no exception";
  } catch (const UnsupportedError& e) {
    EXPECT_NE(std::string(e.what()).find("IQ2_XXS"), std::string::npos) << e.what();
  }
}

TEST(DequantizeTensor, RejectsWrongByteCount) {
  std::vector<std::uint8_t> bytes(18 * 3, 0);
  gguf::TensorInfo t;
  t.name = "w";
  t.n_dims = 2;
  t.ne = {64, 2, 1, 1};  // needs 4 blocks = 72 bytes
  t.type = GgmlType::Q4_0;
  t.n_bytes = bytes.size();
  t.data = bytes.data();
  EXPECT_THROW((void)dequantize_tensor(t), FormatError);
  t.ne = {48, 1, 1, 1};  // not a multiple of 32
  EXPECT_THROW((void)dequantize_tensor(t), FormatError);
}

TEST(Formats, F16AndBf16KeepSignedZerosAndSubnormals) {
  const float x[4] = {-0.0f, 5.9604645e-8f /* smallest fp16 subnormal */, 1.0e-8f, 1.0f / 3.0f};
  std::uint16_t h[4];
  quantize_row(GgmlType::F16, x, h, 4);
  EXPECT_EQ(h[0], 0x8000);
  EXPECT_EQ(h[1], 0x0001);
  EXPECT_EQ(h[2], 0x0000);  // below half the smallest subnormal
  EXPECT_EQ(h[3], 0x3555);
  quantize_row(GgmlType::BF16, x, h, 4);
  EXPECT_EQ(h[0], 0x8000);
  EXPECT_EQ(h[3], 0x3eab);  // 0x3eaaaaab rounds up
  float y[4];
  dequantize_row(GgmlType::BF16, h, y, 4);
  EXPECT_TRUE(std::signbit(y[0]));
}

}  // namespace
}  // namespace g2c::quant
