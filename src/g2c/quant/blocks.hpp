#pragma once
// GGUF block layouts, byte for byte as ggml writes them (ggml/src/ggml-common.h at llama.cpp c392e50).
// Each struct is the unit of one tensor row: a row of n elements is n / block_size consecutive blocks.
// fp16 fields are raw IEEE half bits (std::uint16_t); all multi-byte fields are little-endian, which is
// the host order on every target g2c builds for. The sizes are pinned so a layout slip fails to compile.
#include <cstdint>

namespace g2c::quant {

inline constexpr int kQK4_0 = 32;
inline constexpr int kQK4_1 = 32;
inline constexpr int kQK5_0 = 32;
inline constexpr int kQK5_1 = 32;
inline constexpr int kQK8_0 = 32;
inline constexpr int kQK8_1 = 32;
inline constexpr int kQK_K = 256;       // K-quant super-block
inline constexpr int kKScaleSize = 12;  // packed 6-bit scales+mins of Q3_K/Q4_K/Q5_K

// value = (q - 8) * d; element j < 16 is the low nibble of qs[j], element j + 16 the high nibble.
struct BlockQ4_0 {
  std::uint16_t d;
  std::uint8_t qs[kQK4_0 / 2];
};
static_assert(sizeof(BlockQ4_0) == 2 + 16);

// value = q * d + m; nibbles as Q4_0.
struct BlockQ4_1 {
  std::uint16_t d;
  std::uint16_t m;
  std::uint8_t qs[kQK4_1 / 2];
};
static_assert(sizeof(BlockQ4_1) == 4 + 16);

// value = (q - 16) * d; q's 5th bit of element j is bit j of qh (a little-endian u32).
struct BlockQ5_0 {
  std::uint16_t d;
  std::uint8_t qh[4];
  std::uint8_t qs[kQK5_0 / 2];
};
static_assert(sizeof(BlockQ5_0) == 2 + 4 + 16);

// value = q * d + m; bits as Q5_0.
struct BlockQ5_1 {
  std::uint16_t d;
  std::uint16_t m;
  std::uint8_t qh[4];
  std::uint8_t qs[kQK5_1 / 2];
};
static_assert(sizeof(BlockQ5_1) == 4 + 4 + 16);

// value = qs * d.
struct BlockQ8_0 {
  std::uint16_t d;
  std::int8_t qs[kQK8_0];
};
static_assert(sizeof(BlockQ8_0) == 2 + 32);

// Activation format for Q4_1/Q5_1 dots: value = qs * d; s = fp16(d * sum(qs)) carries the block sum
// the min term needs. ggml's current layout has fp16 d and s (36 bytes); gguf-py's table still says 40
// (the old float d, float s layout), which no file carries.
struct BlockQ8_1 {
  std::uint16_t d;
  std::uint16_t s;
  std::int8_t qs[kQK8_1];
};
static_assert(sizeof(BlockQ8_1) == 2 + 2 + 32);

// 16 sub-blocks of 16: value = (d * (scales[ib] & 15)) * q - dmin * (scales[ib] >> 4), q in 0..3.
// qs holds 4 quants per byte: for each 128-element half, byte l (0..31) gives element l + 32 * k from
// bits 2k..2k+1 (k = 0..3).
struct BlockQ2_K {
  std::uint8_t scales[kQK_K / 16];
  std::uint8_t qs[kQK_K / 4];
  std::uint16_t d;
  std::uint16_t dmin;
};
static_assert(sizeof(BlockQ2_K) == 16 + 64 + 2 + 2);

// 16 sub-blocks of 16: value = (d * (sc - 32)) * q, q = low 2 bits - (hmask bit ? 0 : 4), in -4..3.
// scales: 16 6-bit values packed in 12 bytes (low nibbles in bytes 0..7, top 2 bits in bytes 8..11).
struct BlockQ3_K {
  std::uint8_t hmask[kQK_K / 8];
  std::uint8_t qs[kQK_K / 4];
  std::uint8_t scales[kKScaleSize];
  std::uint16_t d;
};
static_assert(sizeof(BlockQ3_K) == 32 + 64 + 12 + 2);

// 8 sub-blocks of 32: value = (d * sc) * q - dmin * m, q in 0..15; 8 6-bit scales and 8 6-bit mins
// packed in 12 bytes (see get_scale_min_k4 in quant.cpp).
struct BlockQ4_K {
  std::uint16_t d;
  std::uint16_t dmin;
  std::uint8_t scales[kKScaleSize];
  std::uint8_t qs[kQK_K / 2];
};
static_assert(sizeof(BlockQ4_K) == 2 + 2 + 12 + 128);

// As Q4_K with a 5th bit per quant in qh: q in 0..31.
struct BlockQ5_K {
  std::uint16_t d;
  std::uint16_t dmin;
  std::uint8_t scales[kKScaleSize];
  std::uint8_t qh[kQK_K / 8];
  std::uint8_t qs[kQK_K / 2];
};
static_assert(sizeof(BlockQ5_K) == 2 + 2 + 12 + 32 + 128);

// 16 sub-blocks of 16: value = (d * scales[ib]) * (q - 32), q in 0..63 (4 low bits in ql, 2 in qh).
struct BlockQ6_K {
  std::uint8_t ql[kQK_K / 2];
  std::uint8_t qh[kQK_K / 4];
  std::int8_t scales[kQK_K / 16];
  std::uint16_t d;
};
static_assert(sizeof(BlockQ6_K) == 128 + 64 + 16 + 2);

// Activation format for K-quant dots: value = d * qs (d is a float, not fp16); bsums[j] is the sum of
// qs[16j .. 16j+15], which the dots use for the mins term.
struct BlockQ8_K {
  float d;
  std::int8_t qs[kQK_K];
  std::int16_t bsums[kQK_K / 16];
};
static_assert(sizeof(BlockQ8_K) == 4 + 256 + 32);

}  // namespace g2c::quant
