#pragma once
// Typed reference rows: the per-format (de)quantizers behind quant::dequantize_row / quantize_row.
// Kernels call these directly (no dispatch) and test their SIMD versions against them.
// n is the element count of the row and must be a multiple of the format's block size.
#include <bit>
#include <cstdint>

#include "g2c/quant/blocks.hpp"

namespace g2c::quant::ref {

// Decoders, bit-exact with ggml's dequantize_row_* (the algebraic forms of quant-goldens/README.md).
void dequantize_row_q4_0(const BlockQ4_0* x, float* y, std::int64_t n);
void dequantize_row_q4_1(const BlockQ4_1* x, float* y, std::int64_t n);
void dequantize_row_q5_0(const BlockQ5_0* x, float* y, std::int64_t n);
void dequantize_row_q5_1(const BlockQ5_1* x, float* y, std::int64_t n);
void dequantize_row_q8_0(const BlockQ8_0* x, float* y, std::int64_t n);
void dequantize_row_q8_1(const BlockQ8_1* x, float* y, std::int64_t n);
void dequantize_row_q2_k(const BlockQ2_K* x, float* y, std::int64_t n);
void dequantize_row_q3_k(const BlockQ3_K* x, float* y, std::int64_t n);
void dequantize_row_q4_k(const BlockQ4_K* x, float* y, std::int64_t n);
void dequantize_row_q5_k(const BlockQ5_K* x, float* y, std::int64_t n);
void dequantize_row_q6_k(const BlockQ6_K* x, float* y, std::int64_t n);
void dequantize_row_q8_k(const BlockQ8_K* x, float* y, std::int64_t n);

// Round-to-nearest encoders, byte-exact with ggml's quantize_row_*_ref (no importance matrix).
void quantize_row_q4_0(const float* x, BlockQ4_0* y, std::int64_t n);
void quantize_row_q4_1(const float* x, BlockQ4_1* y, std::int64_t n);
void quantize_row_q5_0(const float* x, BlockQ5_0* y, std::int64_t n);
void quantize_row_q5_1(const float* x, BlockQ5_1* y, std::int64_t n);
void quantize_row_q8_0(const float* x, BlockQ8_0* y, std::int64_t n);
// Activation formats for the integer dots (Q8_1 pairs with Q4_1/Q5_1, Q8_K with the K-quants).
void quantize_row_q8_1(const float* x, BlockQ8_1* y, std::int64_t n);
void quantize_row_q8_k(const float* x, BlockQ8_K* y, std::int64_t n);

// K-quant encoders: llama.cpp's scale searches re-derived. Required: the golden RMSE bounds; they also
// reproduce llama-quantize's bytes on the quant-goldens (kquant_test checks both).
void quantize_row_q2_k(const float* x, BlockQ2_K* y, std::int64_t n);
void quantize_row_q3_k(const float* x, BlockQ3_K* y, std::int64_t n);
void quantize_row_q4_k(const float* x, BlockQ4_K* y, std::int64_t n);
void quantize_row_q5_k(const float* x, BlockQ5_K* y, std::int64_t n);
void quantize_row_q6_k(const float* x, BlockQ6_K* y, std::int64_t n);

// ggml's rounding for the K-quants: nearest, ties to even (valid for |v| < 2^22).
inline int nearest_int(float v) {
  float shifted = v + 12582912.f;  // 1.5 * 2^23: the integer lands in the low mantissa bits
  const auto u = std::bit_cast<std::uint32_t>(shifted);
  return static_cast<int>(u & 0x007fffffu) - 0x00400000;
}

}  // namespace g2c::quant::ref
