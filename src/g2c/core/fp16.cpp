#include "g2c/core/fp16.hpp"

#include <vector>

namespace g2c {

fp16_t fp32_to_fp16(float f) {
  std::uint32_t x = f32_bits(f);
  std::uint32_t sign = (x >> 16) & 0x8000u;
  std::uint32_t abs = x & 0x7fffffffu;
  if (abs > 0x7f800000u) {  // NaN: keep it a (quiet) NaN with the top payload bits
    return static_cast<fp16_t>(sign | 0x7e00u | ((abs >> 13) & 0x3ffu));
  }
  if (abs >= 0x477ff000u) {  // rounds to >= 65520 -> Inf (also Inf itself)
    return static_cast<fp16_t>(sign | 0x7c00u);
  }
  if (abs < 0x38800000u) {  // below the smallest fp16 normal (2^-14): subnormal or zero
    if (abs < 0x33000000u) return static_cast<fp16_t>(sign);  // < 2^-25 rounds to zero (2^-25 ties to even 0)
    std::uint32_t e = abs >> 23;
    std::uint32_t m = (abs & 0x7fffffu) | 0x800000u;
    std::uint32_t shift = 126 - e;  // value = m * 2^(e-150); fp16 subnormal unit = 2^-24
    // result = m >> (shift - 0) with shift = 150-24 - e = 126 - e, applied with RNE
    std::uint32_t q = m >> shift;
    std::uint32_t rem = m & ((1u << shift) - 1);
    std::uint32_t half = 1u << (shift - 1);
    if (rem > half || (rem == half && (q & 1u))) ++q;
    return static_cast<fp16_t>(sign | q);
  }
  // normal: rebias exponent, round mantissa to 10 bits (RNE); a carry propagates into the exponent.
  std::uint32_t r = abs - ((127u - 15u) << 23);
  std::uint32_t q = r >> 13;
  std::uint32_t rem = r & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (q & 1u))) ++q;
  return static_cast<fp16_t>(sign | q);
}

namespace {
struct Fp16Table {
  float v[65536];
};
constexpr Fp16Table make_table() {
  Fp16Table t{};
  for (std::uint32_t i = 0; i < 65536; ++i) t.v[i] = fp16_to_fp32_slow(static_cast<fp16_t>(i));
  return t;
}
constexpr Fp16Table kTable = make_table();
}  // namespace

constinit const float (&kFp16Table)[65536] = kTable.v;

}  // namespace g2c
