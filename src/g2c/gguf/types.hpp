#pragma once
// ggml tensor types with GGUF's numeric ids (ggml/include/ggml.h at llama.cpp c392e50), block size and
// bytes per block. Part of the container format, so it lives here; the block layouts and the
// (de)quantizers live in g2c/quant.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace g2c {

enum class GgmlType : std::uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  // 4, 5: Q4_2, Q4_3 (removed)
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q8_1 = 9,
  Q2_K = 10,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  Q8_K = 15,
  IQ2_XXS = 16,
  IQ2_XS = 17,
  IQ3_XXS = 18,
  IQ1_S = 19,
  IQ4_NL = 20,
  IQ3_S = 21,
  IQ2_S = 22,
  IQ4_XS = 23,
  I8 = 24,
  I16 = 25,
  I32 = 26,
  I64 = 27,
  F64 = 28,
  IQ1_M = 29,
  BF16 = 30,
  // 31-33: Q4_0_4_4, Q4_0_4_8, Q4_0_8_8 (removed from files)
  TQ1_0 = 34,
  TQ2_0 = 35,
  // 36-38: IQ4_NL_4_4, IQ4_NL_4_8, IQ4_NL_8_8 (removed)
};

inline constexpr std::uint32_t kGgmlTypeCount = 39;

struct GgmlTypeTraits {
  const char* name;          // "Q4_K"
  std::uint32_t block_size;  // elements per block (1 for plain types)
  std::uint32_t type_size;   // bytes per block
  bool computable;           // g2c can dequantize it (IQ*, TQ*, I* are read but refused at compute)
};

// Traits for a known id; nullopt for an id GGUF does not define (4, 5, 31-33, 36+).
std::optional<GgmlTypeTraits> ggml_type_traits(std::uint32_t id);
// Traits of a valid enum value (G2C_CHECK otherwise).
const GgmlTypeTraits& type_traits(GgmlType t);
inline const char* type_name(GgmlType t) { return type_traits(t).name; }
// Case-insensitive name -> type ("q4_k", "F16"); nullopt when unknown.
std::optional<GgmlType> type_from_name(std::string_view name);
// Bytes of one row of `n` elements; nullopt when n is not a multiple of the block size.
std::optional<std::uint64_t> row_bytes(GgmlType t, std::uint64_t n);
// Throws UnsupportedError("unsupported tensor type IQ2_XXS") when g2c cannot compute with `t`.
void require_computable(GgmlType t);

}  // namespace g2c
