#pragma once
// Memory arithmetic for `g2c fit`: what running a model costs before it is loaded, from the same
// numbers the engine allocates with.
//
//   weights  exact from a model file (the bytes of its tensors), or for a named shape (synth.hpp) the
//            sum over its tensors of the bytes of the type llama-quantize's recipe picks for each
//   KV       2 · n_ctx · n_layer · n_head_kv · head_dim · bytes(kv type) · n_seq   (K and V)
//   scratch  the Context's activation buffers for one pass of n_batch tokens, the attention scratch of
//            every thread, and one row of logits per sequence (model/context.cpp allocates exactly these)
//   total    weights + KV + scratch. It leaves out the process itself (code, the tokenizer's tables,
//            the allocator): a few MiB for the models here.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "g2c/model/model.hpp"
#include "g2c/model/quantize.hpp"
#include "g2c/model/synth.hpp"

namespace g2c::model {

struct FitOptions {
  std::int32_t n_ctx = 0;      // per sequence; 0: n_ctx_train capped at 4096 (the Context's default)
  std::int32_t n_seq = 1;      // parallel sequences (g2c serve --parallel), each with its own KV cache
  std::int32_t n_batch = 512;  // tokens per pass (ContextOptions::n_batch)
  std::int32_t threads = 0;    // 0: physical cores
  KvType kv_type = KvType::kF16;
};

struct MemoryFit {
  std::string model;        // the file, or the shape's name
  std::string weight_type;  // the recipe ("Q4_K_M") or the file's most common matrix type
  bool weights_exact = false;
  std::uint64_t n_params = 0;
  std::uint64_t weight_bytes = 0;
  std::int64_t n_layer = 0, n_head_kv = 0, head_dim = 0, n_ctx_train = 0;
  std::int32_t n_ctx = 0, n_seq = 1;
  KvType kv_type = KvType::kF16;
  std::uint64_t kv_bytes = 0;
  std::uint64_t scratch_bytes = 0;
  std::uint64_t total_bytes() const { return weight_bytes + kv_bytes + scratch_bytes; }
};

// 2 · n_ctx · n_layer · n_head_kv · head_dim · bytes(kv_type) · n_seq.
std::uint64_t kv_cache_bytes(std::int64_t n_ctx, std::int64_t n_layer, std::int64_t n_head_kv, std::int64_t head_dim,
                             KvType kv_type, std::int64_t n_seq = 1);

// Exact weights of a model file (GGUF or llama2.c .bin; mapped, not read).
MemoryFit fit_model_file(const std::string& path, const FitOptions& opts = {});
// A shape of the synth table under a recipe (F32, F16, Q8_0, Q4_K_M, ...).
MemoryFit fit_shape(const SynthShape& shape, FileType ftype, const FitOptions& opts = {});

// Bytes this machine can give a new process now (Linux: MemAvailable of /proc/meminfo); nullopt
// elsewhere.
std::optional<std::uint64_t> available_memory_bytes();

// The usable share of a Mac's unified memory for a model: macOS lets the GPU wire about 2/3 of RAM on
// machines up to 36 GB and about 3/4 above (the default of iogpu.wired_limit_mb); the rest is for the
// OS and the apps.
std::uint64_t mac_usable_bytes(std::uint64_t ram_bytes);

}  // namespace g2c::model
