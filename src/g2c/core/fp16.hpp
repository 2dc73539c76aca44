#pragma once
// IEEE fp16 and bfloat16 <-> fp32, bit-exact with ggml: round-to-nearest-even, subnormals and signed
// zeros kept, Inf kept, NaN kept (quieted for bf16). Portable code: no F16C needed.
#include <bit>
#include <cstdint>
#include <cstring>

namespace g2c {

using fp16_t = std::uint16_t;
using bf16_t = std::uint16_t;

inline std::uint32_t f32_bits(float f) {
  std::uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
inline float f32_from_bits(std::uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// Exact conversion by bit manipulation; constexpr so the lookup table is constant-initialised.
constexpr float fp16_to_fp32_slow(fp16_t h) {
  std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
  std::uint32_t exp = (h >> 10) & 0x1fu;
  std::uint32_t mant = h & 0x3ffu;
  std::uint32_t out = 0;
  if (exp == 0) {
    if (mant == 0) {
      out = sign;  // signed zero
    } else {       // subnormal: normalise
      int e = -1;
      do {
        ++e;
        mant <<= 1;
      } while ((mant & 0x400u) == 0);
      mant &= 0x3ffu;
      out = sign | static_cast<std::uint32_t>(127 - 15 - e) << 23 | (mant << 13);
    }
  } else if (exp == 31) {
    out = sign | 0x7f800000u | (mant << 13);  // Inf or NaN (payload kept)
  } else {
    out = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  }
  return std::bit_cast<float>(out);
}

fp16_t fp32_to_fp16(float f);

// [65536] fp16 -> fp32, 256 KiB, constant-initialised (no static-init order issue).
extern const float (&kFp16Table)[65536];
inline float fp16_to_fp32(fp16_t h) { return kFp16Table[h]; }

inline float bf16_to_fp32(bf16_t h) { return f32_from_bits(static_cast<std::uint32_t>(h) << 16); }

inline bf16_t fp32_to_bf16(float f) {
  std::uint32_t u = f32_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<bf16_t>((u >> 16) | 64);  // NaN: force quiet
  return static_cast<bf16_t>((u + (0x7fffu + ((u >> 16) & 1u))) >> 16);
}

}  // namespace g2c
