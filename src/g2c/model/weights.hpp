#pragma once
// Bound weights: views into the mmapped file, in their file type. Nothing here owns tensor memory.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "g2c/gguf/types.hpp"

namespace g2c::model {

// One tensor as the forward pass sees it: n_out rows of n_in elements (GGUF ne = [n_in, n_out]),
// each row `row_bytes` long. data == nullptr means "absent" (optional tensor not in the file).
struct WeightTensor {
  const std::uint8_t* data = nullptr;
  GgmlType type = GgmlType::F32;
  std::int64_t n_in = 0;
  std::int64_t n_out = 1;
  std::size_t row_bytes = 0;
  std::string name;

  explicit operator bool() const { return data != nullptr; }
  const float* f32() const { return reinterpret_cast<const float*>(data); }  // 1-D tensors are F32
  const std::uint8_t* row(std::int64_t r) const { return data + static_cast<std::size_t>(r) * row_bytes; }
  std::uint64_t bytes() const { return data ? row_bytes * static_cast<std::uint64_t>(n_out) : 0; }
};

// Shapes below are outermost first, as the rows are laid out: [n_out][n_in].
struct LayerWeights {
  WeightTensor attn_norm, attn_norm_b;  // [n_embd]
  WeightTensor wq;                      // [n_embd_q][n_embd]
  WeightTensor wk, wv;                  // [n_embd_kv][n_embd]
  WeightTensor bq;                      // [n_embd_q]         (qwen2; optional for llama)
  WeightTensor bk, bv;                  // [n_embd_kv]
  WeightTensor wqkv;                    // [n_embd_q + 2 n_embd_kv][n_embd]  (gpt2: rows Q, K, V)
  WeightTensor bqkv;                    // [n_embd_q + 2 n_embd_kv]
  WeightTensor wo;                      // [n_embd][n_embd_q]
  WeightTensor bo;                      // [n_embd]
  WeightTensor ffn_norm, ffn_norm_b;    // [n_embd]
  WeightTensor ffn_gate, ffn_up;        // [n_ff][n_embd]
  WeightTensor ffn_up_b;                // [n_ff]
  WeightTensor ffn_down;                // [n_embd][n_ff]
  WeightTensor ffn_down_b;              // [n_embd]
};

struct Weights {
  WeightTensor tok_embd;                    // [n_vocab][n_embd]
  WeightTensor pos_embd;                    // [n_ctx_train][n_embd]  (gpt2)
  WeightTensor output_norm, output_norm_b;  // [n_embd]
  WeightTensor output;                      // [n_vocab][n_embd]; == tok_embd when tied
  WeightTensor rope_freqs;                  // [n_rot / 2]  (Llama 3 rope scaling; angle divided by it)
  bool tied_output = false;
  std::vector<LayerWeights> layers;  // [n_layer]
};

}  // namespace g2c::model
