#include "g2c/gguf/types.hpp"

#include <array>
#include <cctype>

#include "g2c/core/error.hpp"

namespace g2c {
namespace {

struct Entry {
  bool valid;
  GgmlTypeTraits traits;
};

// Block sizes and bytes per block as ggml's type_traits (gguf-py GGML_QUANT_SIZES).
constexpr std::array<Entry, kGgmlTypeCount> kTable = {{
    {true, {"F32", 1, 4, true}},           // 0
    {true, {"F16", 1, 2, true}},           // 1
    {true, {"Q4_0", 32, 18, true}},        // 2
    {true, {"Q4_1", 32, 20, true}},        // 3
    {false, {"Q4_2", 0, 0, false}},        // 4 removed
    {false, {"Q4_3", 0, 0, false}},        // 5 removed
    {true, {"Q5_0", 32, 22, true}},        // 6
    {true, {"Q5_1", 32, 24, true}},        // 7
    {true, {"Q8_0", 32, 34, true}},        // 8
    {true, {"Q8_1", 32, 36, true}},        // 9: sizeof(block_q8_1) = fp16 d, s + 32; gguf-py still says 40
    {true, {"Q2_K", 256, 84, true}},       // 10
    {true, {"Q3_K", 256, 110, true}},      // 11
    {true, {"Q4_K", 256, 144, true}},      // 12
    {true, {"Q5_K", 256, 176, true}},      // 13
    {true, {"Q6_K", 256, 210, true}},      // 14
    {true, {"Q8_K", 256, 292, true}},      // 15
    {true, {"IQ2_XXS", 256, 66, false}},   // 16
    {true, {"IQ2_XS", 256, 74, false}},    // 17
    {true, {"IQ3_XXS", 256, 98, false}},   // 18
    {true, {"IQ1_S", 256, 50, false}},     // 19
    {true, {"IQ4_NL", 32, 18, false}},     // 20
    {true, {"IQ3_S", 256, 110, false}},    // 21
    {true, {"IQ2_S", 256, 82, false}},     // 22
    {true, {"IQ4_XS", 256, 136, false}},   // 23
    {true, {"I8", 1, 1, false}},           // 24
    {true, {"I16", 1, 2, false}},          // 25
    {true, {"I32", 1, 4, false}},          // 26
    {true, {"I64", 1, 8, false}},          // 27
    {true, {"F64", 1, 8, false}},          // 28
    {true, {"IQ1_M", 256, 56, false}},     // 29
    {true, {"BF16", 1, 2, true}},          // 30
    {false, {"Q4_0_4_4", 0, 0, false}},    // 31 removed
    {false, {"Q4_0_4_8", 0, 0, false}},    // 32 removed
    {false, {"Q4_0_8_8", 0, 0, false}},    // 33 removed
    {true, {"TQ1_0", 256, 54, false}},     // 34
    {true, {"TQ2_0", 256, 66, false}},     // 35
    {false, {"IQ4_NL_4_4", 0, 0, false}},  // 36 removed
    {false, {"IQ4_NL_4_8", 0, 0, false}},  // 37 removed
    {false, {"IQ4_NL_8_8", 0, 0, false}},  // 38 removed
}};

}  // namespace

std::optional<GgmlTypeTraits> ggml_type_traits(std::uint32_t id) {
  if (id >= kGgmlTypeCount || !kTable[id].valid) return std::nullopt;
  return kTable[id].traits;
}

const GgmlTypeTraits& type_traits(GgmlType t) {
  auto id = static_cast<std::uint32_t>(t);
  G2C_CHECK(id < kGgmlTypeCount && kTable[id].valid);
  return kTable[id].traits;
}

std::optional<GgmlType> type_from_name(std::string_view name) {
  for (std::uint32_t id = 0; id < kGgmlTypeCount; ++id) {
    if (!kTable[id].valid) continue;
    std::string_view n = kTable[id].traits.name;
    if (n.size() != name.size()) continue;
    bool eq = true;
    for (std::size_t i = 0; i < n.size() && eq; ++i) eq = std::toupper(static_cast<unsigned char>(name[i])) == n[i];
    if (eq) return static_cast<GgmlType>(id);
  }
  return std::nullopt;
}

std::optional<std::uint64_t> row_bytes(GgmlType t, std::uint64_t n) {
  const auto& tr = type_traits(t);
  if (n % tr.block_size != 0) return std::nullopt;
  return n / tr.block_size * tr.type_size;
}

void require_computable(GgmlType t) {
  const auto& tr = type_traits(t);
  if (!tr.computable) throw UnsupportedError(std::string("unsupported tensor type ") + tr.name);
}

}  // namespace g2c
