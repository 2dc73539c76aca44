#pragma once
// One architecture = one file in this folder: which GGUF keys make its hyperparameters (required or
// optional) and which tensors, of which shapes, make its weights. The forward pass (context.cpp) is
// shared and driven by the HParams flags (norm, rope, ffn type) and by which optional tensors exist.
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>

#include "g2c/gguf/gguf.hpp"
#include "g2c/model/model.hpp"
#include "g2c/model/weights.hpp"

namespace g2c::model {

// Reads `<arch>.<key>` with llama.cpp's get_key(name, required) behaviour; errors name key and file.
class KeyReader {
 public:
  KeyReader(const gguf::File& f, std::string arch) : f_(f), arch_(std::move(arch)) {}
  std::int64_t req_int(const std::string& key) const;
  std::optional<std::int64_t> opt_int(const std::string& key) const;
  float req_float(const std::string& key) const;
  std::optional<float> opt_float(const std::string& key) const;
  std::optional<std::string> opt_str(const std::string& key) const;
  const gguf::File& file() const { return f_; }
  const std::string& arch() const { return arch_; }

 private:
  std::string full(const std::string& key) const { return arch_ + "." + key; }
  const gguf::File& f_;
  std::string arch_;
};

// Binds tensors by name with shape and type validation. Every tensor bound is counted so the loader
// can warn about tensors the architecture did not use.
class Binder {
 public:
  explicit Binder(const gguf::File& f) : f_(f) {}
  // A matrix with GGUF ne = [n_in, n_out] in any type the kernel table computes.
  WeightTensor matrix(const std::string& name, std::int64_t n_in, std::int64_t n_out, bool required = true);
  // A 1-D F32 vector of n elements.
  WeightTensor vector(const std::string& name, std::int64_t n, bool required = true);
  bool has(const std::string& name) const { return f_.find_tensor(name) != nullptr; }
  std::size_t n_bound() const { return n_bound_; }

 private:
  const gguf::File& f_;
  std::size_t n_bound_ = 0;
};

// Common llama-family keys: sizes, rope, rms eps, rope scaling. Used by llama and qwen2.
void read_common_hparams(const KeyReader& kr, HParams& hp);

// Per architecture: fill hp from keys (n_vocab is already set from token_embd), then bind weights.
void llama_load_hparams(const KeyReader& kr, HParams& hp);
void llama_bind(Binder& b, const HParams& hp, Weights& w);
void qwen2_load_hparams(const KeyReader& kr, HParams& hp);
void qwen2_bind(Binder& b, const HParams& hp, Weights& w);
void gpt2_load_hparams(const KeyReader& kr, HParams& hp);
void gpt2_bind(Binder& b, const HParams& hp, Weights& w);

// "blk.<il>.<suffix>"
std::string blk(std::int64_t il, const char* suffix);

}  // namespace g2c::model
