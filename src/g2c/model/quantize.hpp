#pragma once
// Model quantization (`g2c quantize`): GGUF in, GGUF out, every 2-D weight re-encoded to the type that
// llama.cpp's llama-quantize (c392e50) would pick for the same file and recipe, so a g2c Q4_K_M file
// has the same per-tensor types as a llama.cpp one and benchmarks compare like with like.
//
// The per-tensor type rules (llama.cpp src/llama-quant.cpp `llama_tensor_get_type`, restated) are
// written down in quantize.cpp above choose_tensor_types(). Tensor data is streamed: one tensor's
// output bytes and one row of floats per thread are held, never the whole model.
#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "g2c/core/thread_pool.hpp"
#include "g2c/gguf/gguf.hpp"
#include "g2c/gguf/types.hpp"

namespace g2c::model {

// general.file_type: llama.cpp's `enum llama_ftype` (include/llama.h), NOT ggml type ids
// (formats.md 5.4). Only the recipes g2c can produce are listed; file_type_table() names the rest.
enum class FileType : std::uint32_t {
  ALL_F32 = 0,
  MOSTLY_F16 = 1,
  MOSTLY_Q4_0 = 2,
  MOSTLY_Q4_1 = 3,
  MOSTLY_Q8_0 = 7,
  MOSTLY_Q5_0 = 8,
  MOSTLY_Q5_1 = 9,
  MOSTLY_Q2_K = 10,
  MOSTLY_Q3_K_S = 11,
  MOSTLY_Q3_K_M = 12,
  MOSTLY_Q3_K_L = 13,
  MOSTLY_Q4_K_S = 14,
  MOSTLY_Q4_K_M = 15,
  MOSTLY_Q5_K_S = 16,
  MOSTLY_Q5_K_M = 17,
  MOSTLY_Q6_K = 18,
  MOSTLY_BF16 = 32,
};

// One value of `enum llama_ftype`. The table holds every value llama.h defines, so a file written by
// llama.cpp is named even when g2c cannot produce its type; `base` tells the two apart.
struct FileTypeInfo {
  std::uint32_t id;              // the general.file_type value
  const char* label;             // llama.h's enumerator without LLAMA_FTYPE_: "MOSTLY_Q4_K_M", "ALL_F32", "GUESSED"
  const char* recipe;            // llama-quantize's name for it: "Q4_K_M", "F32" (the label without ALL_/MOSTLY_)
  std::optional<GgmlType> base;  // the recipe's base tensor type when g2c can produce it (a FileType value)
};
// Every llama_ftype: first the recipes g2c produces, in the order file_type_names() lists them, then
// those it only recognizes (IQ*, TQ*, Q2_K_S, GUESSED).
std::span<const FileTypeInfo> file_type_table();
// nullptr when llama.h has no such value.
const FileTypeInfo* find_file_type(std::int64_t id);

// The recipe names llama-quantize accepts for these ("Q4_K_M", "q4_k_m", "F16"); "Q3_K", "Q4_K" and
// "Q5_K" mean the _M recipes, as in llama-quantize. nullopt for anything else.
std::optional<FileType> file_type_from_name(std::string_view name);
const char* file_type_name(FileType t);  // "Q4_K_M", "F16", ...
// Every supported recipe name, for help texts.
std::vector<std::string> file_type_names();
// The base tensor type of a recipe (Q4_K_M -> Q4_K): what --pure gives every 2-D weight.
GgmlType file_type_base(FileType t);

// What the mixture rules need to know about the model (llama.cpp reads the same from hparams).
struct MixInfo {
  std::string arch;  // general.architecture
  std::int64_t n_layer = 0;
  std::int64_t n_head = 0;
  std::int64_t n_head_kv = 0;
  std::int64_t n_expert = 0;
  // Reads <arch>.block_count, attention.head_count(_kv), expert_count; missing counts stay 0.
  static MixInfo from_gguf(const gguf::File& f);
};

// One tensor as the planner sees it.
struct TensorDesc {
  std::string name;
  std::uint32_t n_dims = 0;
  std::array<std::int64_t, 4> ne{1, 1, 1, 1};
  GgmlType type = GgmlType::F32;  // current type
};

// llama-quantize's eligibility test: the name ends in "weight", 2+ dims, not a norm, not a position /
// token-type embedding, MoE router or the few small special weights it lists. Others are copied as is.
bool is_quantizable(const TensorDesc& t);

// llama-quantize's processing order: non-layer tensors first, then by layer index, by name within a
// layer (its weight_name_comparer). The mixture counters depend on it; outputs are written in it too.
std::vector<std::size_t> llama_tensor_order(std::span<const TensorDesc> tensors);

struct TensorChoice {
  GgmlType type = GgmlType::F32;  // output type
  bool fallback = false;          // a K-quant replaced because ne[0] is not a multiple of 256
};

// Output type of every tensor (indexed like `tensors`) for recipe `ft`. `pure`: every quantizable
// tensor gets the base type (llama-quantize --pure). Throws UnsupportedError when a rule would need a
// type g2c cannot encode (IQ4_NL, the fallback of Q2_K/Q3_K on rows not a multiple of 256), and
// InvalidArgument when a row length does not fit the chosen type at all.
std::vector<TensorChoice> choose_tensor_types(std::span<const TensorDesc> tensors, const MixInfo& info, FileType ft,
                                              bool pure);

struct QuantizeOptions {
  FileType ftype = FileType::MOSTLY_Q8_0;
  bool pure = false;
  int threads = 0;  // 0: physical cores
  // Called after each slab of rows: bytes of input processed so far / in all, and the tensor's name.
  std::function<void(std::uint64_t done, std::uint64_t total, const std::string& tensor)> progress;
};

struct QuantizedTensor {
  std::string name;
  std::array<std::int64_t, 4> ne{1, 1, 1, 1};
  GgmlType from = GgmlType::F32;
  GgmlType to = GgmlType::F32;
  bool fallback = false;
  std::uint64_t bytes_in = 0;
  std::uint64_t bytes_out = 0;
};

struct QuantizeReport {
  std::vector<QuantizedTensor> tensors;  // in output (llama) order
  std::uint64_t bytes_in = 0;
  std::uint64_t bytes_out = 0;
  int n_fallback = 0;
  double seconds = 0;
};

// Quantizes `in_path` into `out_path` (written atomically). Metadata is copied (split.* keys
// dropped), general.file_type and general.quantization_version = 2 are set. A tensor whose type
// does not change is copied byte for byte; others are decoded to f32 row by row and re-encoded.
QuantizeReport quantize_model(const std::string& in_path, const std::string& out_path, const QuantizeOptions& opts);

// Encodes `n_rows` rows produced by `row(r, dst_f32)` into `dst` (row_bytes(type, ne0) each), rows
// split across the pool; `row` is called concurrently. Shared by quantize_model and synth; each row is
// encoded on its own, so the bytes do not depend on the thread count. `progress(rows_done)` runs on
// the calling thread after each slab.
void encode_rows(GgmlType type, std::int64_t ne0, std::int64_t n_rows,
                 const std::function<void(std::int64_t row, float* dst)>& row, std::span<std::uint8_t> dst,
                 ThreadPool& pool, const std::function<void(std::int64_t rows_done)>& progress = {});

}  // namespace g2c::model
