#pragma once
// The architecture table (the role of llama.cpp's src/llama-arch.cpp): every GGUF key name and tensor
// name g2c knows, and per architecture which tensors it has (required or optional) and which flags
// (norm, rope and FFN type). Loading and binding (loader.cpp), `g2c synth`, the quantize recipes and
// `g2c info` all read these rows; nothing else spells a tensor or key name.
//
// Adding an architecture whose block is made of known pieces is one row in arch.cpp. What is truly new
// (another norm, another attention) is a new flag here and the code for it in context.cpp.
#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "g2c/model/model.hpp"
#include "g2c/model/weights.hpp"

namespace g2c::model {

// Keys under `<general.architecture>.` (GGUF spec names).
enum class Key {
  kContextLength,
  kEmbeddingLength,
  kBlockCount,
  kFeedForwardLength,
  kHeadCount,
  kHeadCountKv,
  kKeyLength,
  kValueLength,
  kLayerNormEps,     // LayerNorm archs
  kLayerNormRmsEps,  // RMSNorm archs
  kRopeDimensionCount,
  kRopeFreqBase,
  kRopeScalingType,
  kRopeScalingFactor,
  kRopeScaleLinear,  // older spelling of the linear factor
  kVocabSize,
  kExpertCount,
  kCount
};
const char* key_suffix(Key k);                       // "attention.head_count"
std::string key_name(std::string_view arch, Key k);  // "llama.attention.head_count"

// Every tensor a supported architecture may have, in the order converters write them (token_embd,
// then each block, then the output head). Biases follow their weight.
enum class Tensor {
  kTokEmbd,
  kPosEmbd,
  kRopeFreqs,
  kAttnNorm,
  kAttnNormB,
  kAttnQ,
  kAttnQB,
  kAttnK,
  kAttnKB,
  kAttnV,
  kAttnVB,
  kAttnQkv,
  kAttnQkvB,
  kAttnOut,
  kAttnOutB,
  kFfnNorm,
  kFfnNormB,
  kFfnGate,
  kFfnUp,
  kFfnUpB,
  kFfnDown,
  kFfnDownB,
  kOutputNorm,
  kOutputNormB,
  kOutput,
  kCount
};
constexpr std::size_t kTensorCount = static_cast<std::size_t>(Tensor::kCount);

// A tensor's extent along one GGUF dimension, in hyperparameters.
enum class Dim { kOne, kVocab, kEmbd, kEmbdQ, kEmbdKv, kEmbdQkv, kFf, kCtxTrain, kRotHalf };
std::int64_t dim_size(Dim d, const HParams& hp);

struct TensorSpec {
  Tensor id;
  const char* name;  // GGUF name; per-layer tensors are "blk.<il>." + name
  bool per_layer;
  Dim n_in, n_out;                    // GGUF ne = [n_in, n_out]: n_out rows of n_in; n_out == kOne is a 1-D F32 vector
  WeightTensor Weights::*global;      // where a global tensor binds (nullptr for per-layer ones)
  WeightTensor LayerWeights::*layer;  // where a per-layer tensor binds (nullptr for global ones)

  bool is_vector() const { return n_out == Dim::kOne; }
  WeightTensor& in(Weights& w, std::int64_t il) const;
  const WeightTensor& in(const Weights& w, std::int64_t il) const;
};
// All rows, in Tensor order (= converter file order).
std::span<const TensorSpec> tensor_specs();
const TensorSpec& tensor_spec(Tensor t);
std::string tensor_name(Tensor t, std::int64_t il = -1);  // "output.weight", "blk.3.attn_q.weight"
// Per-layer tensors' names without the "blk.N." prefix, for name-pattern rules (quantize recipes).
inline const char* tensor_suffix(Tensor t) { return tensor_spec(t).name; }

enum class Has : std::uint8_t { kNo, kRequired, kOptional };

struct ArchSpec {
  Arch arch;
  const char* name;  // general.architecture
  NormType norm;     // kRms reads attention.layer_norm_rms_epsilon, kLayer attention.layer_norm_epsilon
  RopeType rope;     // kNone: no rope.* keys, no rotation
  FfnType ffn;
  // Which tensors the architecture binds. An optional output.weight means a tied output: when the file
  // has none, token_embd is the output projection.
  std::array<Has, kTensorCount> tensors;

  Has has(Tensor t) const { return tensors[static_cast<std::size_t>(t)]; }
};
std::span<const ArchSpec> arch_specs();
const ArchSpec& arch_spec(Arch a);
const ArchSpec* find_arch(std::string_view name);  // nullptr when g2c does not support it
std::string supported_arch_names();                // "llama, qwen2, gpt2"

}  // namespace g2c::model
