#pragma once
// Reference (de)quantization: the specification every SIMD kernel is tested against.
// Dequantization is bit-exact with llama.cpp for every type it accepts; quantization of F16, BF16,
// Q8_0, Q4_0, Q4_1, Q5_0, Q5_1 is byte-exact (compiled with -ffp-contract=off). The K-quant encoders
// (Q2_K..Q6_K, no importance matrix) are held to llama.cpp's RMSE and also reproduce llama-quantize's
// bytes (c392e50) on the quant-goldens. Per-format typed entry points are in g2c/quant/ref.hpp.
#include <cstdint>
#include <vector>

#include "g2c/gguf/gguf.hpp"
#include "g2c/gguf/types.hpp"

namespace g2c::quant {

// dst[n] = dequantized src. n must be a multiple of the type's block size (G2C_CHECK).
// Supports F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q8_K;
// throws UnsupportedError ("unsupported tensor type IQ2_XXS") for the others.
void dequantize_row(GgmlType type, const void* src, float* dst, std::int64_t n);

// Whether quantize_row implements `type`: F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1, Q8_K,
// Q2_K, Q3_K, Q4_K, Q5_K, Q6_K.
bool can_quantize(GgmlType type);
// dst = quantized src[n]; n a multiple of the block size. UnsupportedError when !can_quantize(type).
void quantize_row(GgmlType type, const float* src, void* dst, std::int64_t n);

// Whole tensor -> f32 [n_elements] in file order.
std::vector<float> dequantize_tensor(const gguf::TensorInfo& t);

}  // namespace g2c::quant
