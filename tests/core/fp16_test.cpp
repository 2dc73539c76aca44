// fp16/bf16 conversion: exhaustive fp16 -> fp32 -> fp16 identity, rounding cases checked against
// known IEEE values, and (when the CPU has F16C) against the hardware converter on many inputs.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>

#include "g2c/core/cpu.hpp"
#include "g2c/core/fp16.hpp"

#if defined(__x86_64__)
#include <immintrin.h>
__attribute__((target("f16c"))) static std::uint16_t hw_fp32_to_fp16(float f) {
  return static_cast<std::uint16_t>(_cvtss_sh(f, 0));  // 0 = round to nearest even
}
__attribute__((target("f16c"))) static float hw_fp16_to_fp32(std::uint16_t h) { return _cvtsh_ss(h); }
#endif

namespace g2c {
namespace {

TEST(Fp16, KnownValues) {
  EXPECT_EQ(fp32_to_fp16(1.0f), 0x3c00);
  EXPECT_EQ(fp32_to_fp16(-2.0f), 0xc000);
  EXPECT_EQ(fp32_to_fp16(65504.0f), 0x7bff);
  EXPECT_EQ(fp32_to_fp16(65520.0f), 0x7c00);  // ties to even -> overflow to Inf
  EXPECT_EQ(fp32_to_fp16(65519.996f), 0x7bff);
  EXPECT_EQ(fp32_to_fp16(std::numeric_limits<float>::infinity()), 0x7c00);
  EXPECT_EQ(fp32_to_fp16(-0.0f), 0x8000);
  EXPECT_EQ(fp32_to_fp16(5.9604645e-8f), 0x0001);       // smallest subnormal
  EXPECT_EQ(fp32_to_fp16(2.9802322e-8f), 0x0000);       // exactly half of it: ties to even (0)
  EXPECT_EQ(fp32_to_fp16(2.9802326e-8f), 0x0001);       // just above half
  EXPECT_EQ(fp32_to_fp16(1.0f + 1.0f / 2048), 0x3c00);  // tie, even stays
  EXPECT_EQ(fp32_to_fp16(1.0f + 3.0f / 2048), 0x3c02);  // tie, odd rounds up
  EXPECT_TRUE(std::isnan(fp16_to_fp32(fp32_to_fp16(std::nanf("")))));
  EXPECT_EQ(fp16_to_fp32(0x0001), 5.9604645e-8f);
  EXPECT_EQ(fp16_to_fp32(0x7bff), 65504.0f);
  EXPECT_TRUE(std::signbit(fp16_to_fp32(0x8000)));
}

TEST(Fp16, ExhaustiveRoundTrip) {
  for (std::uint32_t h = 0; h < 65536; ++h) {
    float f = fp16_to_fp32(static_cast<fp16_t>(h));
    EXPECT_EQ(f32_bits(f), f32_bits(fp16_to_fp32_slow(static_cast<fp16_t>(h))));
    if (std::isnan(f)) continue;
    ASSERT_EQ(fp32_to_fp16(f), h) << h;
  }
}

#if defined(__x86_64__)
TEST(Fp16, MatchesF16CHardware) {
  if (!cpu_features().f16c) GTEST_SKIP() << "no F16C";
  for (std::uint32_t h = 0; h < 65536; ++h) {
    float a = fp16_to_fp32(static_cast<fp16_t>(h));
    float b = hw_fp16_to_fp32(static_cast<std::uint16_t>(h));
    if (std::isnan(a)) {
      EXPECT_TRUE(std::isnan(b));
      continue;
    }
    ASSERT_EQ(f32_bits(a), f32_bits(b)) << h;
  }
  std::mt19937 rng(7);
  for (int i = 0; i < 2000000; ++i) {
    std::uint32_t bits = rng();
    float f = f32_from_bits(bits);
    if (std::isnan(f)) continue;
    ASSERT_EQ(fp32_to_fp16(f), hw_fp32_to_fp16(f)) << std::hex << bits;
  }
  // every fp32 in the fp16 subnormal and rounding-boundary range, densely
  for (std::uint32_t bits = 0x33000000u; bits < 0x38900000u; bits += 97) {
    float f = f32_from_bits(bits);
    ASSERT_EQ(fp32_to_fp16(f), hw_fp32_to_fp16(f)) << std::hex << bits;
    ASSERT_EQ(fp32_to_fp16(-f), hw_fp32_to_fp16(-f)) << std::hex << bits;
  }
}
#endif

TEST(Bf16, RoundingAndSpecials) {
  EXPECT_EQ(fp32_to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(fp32_to_bf16(f32_from_bits(0x3f808000u)), 0x3f80);  // tie, even stays
  EXPECT_EQ(fp32_to_bf16(f32_from_bits(0x3f818000u)), 0x3f82);  // tie, odd rounds up
  EXPECT_EQ(fp32_to_bf16(f32_from_bits(0x3f808001u)), 0x3f81);
  EXPECT_EQ(fp32_to_bf16(std::numeric_limits<float>::infinity()), 0x7f80);
  EXPECT_EQ(fp32_to_bf16(-0.0f), 0x8000);
  EXPECT_EQ(fp32_to_bf16(f32_from_bits(0x7f800001u)), 0x7fc0);  // signalling NaN made quiet
  EXPECT_EQ(bf16_to_fp32(0x3f80), 1.0f);
  for (std::uint32_t h = 0; h < 65536; ++h) {
    float f = bf16_to_fp32(static_cast<bf16_t>(h));
    if (std::isnan(f)) continue;
    ASSERT_EQ(fp32_to_bf16(f), h);
  }
}

}  // namespace
}  // namespace g2c
