#pragma once
// The transformer: a loaded model (weights bound in place from the mmap) and a Context that owns the KV
// caches and scratch buffers and runs the forward pass.
//
// Usage (the generation loop in g2c/engine codes against exactly this):
//
//   auto model = g2c::model::Model::load("stories260K.gguf");          // or a llama2.c .bin
//   const auto& hp = model->hparams();                                  // n_vocab, n_ctx_train, bos_id ...
//   g2c::model::ContextOptions co;  co.n_ctx = 512;  co.n_seq = 1;  co.threads = 2;
//   g2c::model::Context ctx(*model, co);                                // KV caches allocated here, once
//
//   // Prefill: every prompt token of sequence 0 at positions 0..n-1; logits only for the last one.
//   std::vector<g2c::model::BatchToken> batch;
//   for (int i = 0; i < n; ++i) batch.push_back({prompt[i], /*seq*/ 0, /*pos*/ i, /*logits*/ i == n - 1});
//   ctx.decode(batch);                                  // throws ContextOverflow when pos >= n_ctx
//   std::span<const float> logits = ctx.logits(0);      // [n_vocab] of the first token that asked
//   // Decode: one token per step (or one per sequence for several sequences in one pass).
//   ctx.decode({{next_id, 0, n, true}});
//   ...
//   ctx.clear(0);                                       // forget sequence 0 (new request)
//
// Rules of a batch: tokens of one sequence appear in position order and continue that sequence,
// i.e. the first has pos == ctx.seq_len(seq) (use clear/truncate to rewind); any mix of sequences is
// allowed. Outputs are numbered in batch order over the tokens with logits == true.
// ContextOptions::naive recomputes each sequence from position 0 on every call (the O(T^2) loop),
// with results bit-identical to the cached path on the ref kernels.
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "g2c/core/error.hpp"
#include "g2c/gguf/gguf.hpp"
#include "g2c/gguf/types.hpp"

namespace g2c::model {

// A prompt or batch does not fit the context: pos >= n_ctx.
class ContextOverflow : public InvalidArgument {
 public:
  using InvalidArgument::InvalidArgument;
};

enum class Arch { kLlama, kQwen2, kGpt2 };
enum class RopeType { kNone, kNorm, kNeox };  // kNorm: adjacent pairs (2i, 2i+1); kNeox: (i, i + n_rot/2)
enum class NormType { kRms, kLayer };
enum class FfnType { kSwiglu, kGelu };
enum class KvType { kF32, kF16 };

const char* arch_name(Arch a);

// Hyperparameters in GGUF's vocabulary (llama.cpp src/llama-hparams.h).
struct HParams {
  Arch arch = Arch::kLlama;
  std::string arch_name;  // general.architecture ("llama", or "llama" for a llama2.c .bin)
  std::string name;       // general.name when present
  std::int64_t n_vocab = 0;
  std::int64_t n_embd = 0;
  std::int64_t n_layer = 0;
  std::int64_t n_head = 0;
  std::int64_t n_head_kv = 0;
  std::int64_t head_dim = 0;  // attention.key_length, else n_embd / n_head
  std::int64_t n_ff = 0;
  std::int64_t n_ctx_train = 0;
  std::int64_t n_rot = 0;      // rope.dimension_count, else head_dim
  float norm_rms_eps = 1e-5f;  // RMSNorm archs
  float norm_eps = 1e-5f;      // LayerNorm archs
  float rope_freq_base = 10000.0f;
  float rope_freq_scale = 1.0f;  // 1 / rope.scaling.factor for linear scaling
  RopeType rope_type = RopeType::kNorm;
  NormType norm_type = NormType::kRms;
  FfnType ffn_type = FfnType::kSwiglu;
  std::int32_t bos_id = -1;  // -1: none
  std::int32_t eos_id = -1;

  std::int64_t n_embd_q() const { return n_head * head_dim; }
  std::int64_t n_embd_kv() const { return n_head_kv * head_dim; }  // one K (or V) row in the cache
};

struct ModelOptions {
  // For llama2.c checkpoints: vocabulary ids (the .bin carries none); llama2.c's are BOS 1, EOS 2.
  std::int32_t bin_bos_id = 1;
  std::int32_t bin_eos_id = 2;
};

struct Weights;  // bound tensors; model/weights.hpp

class Model {
 public:
  // Opens a GGUF (by magic) or a llama2.c v0/v1 checkpoint. Throws g2c::Error subclasses with the
  // file name and the offending key/tensor: "loading model F: tensor blk.3.attn_q.weight: expected
  // [64, 64] F32/F16/..., got [64, 32]".
  static std::unique_ptr<Model> load(const std::string& path, const ModelOptions& opts = {});
  ~Model();

  const HParams& hparams() const { return hp_; }
  const std::string& path() const { return path_; }
  // The parsed GGUF (vocabulary, chat template...); nullptr for a llama2.c checkpoint.
  const gguf::File* gguf() const { return gguf_.get(); }
  // Bytes of all bound weights (what one decode step reads).
  std::uint64_t weight_bytes() const;
  // "llama 5L 64d 8h/4kv F32" style one-liner for logs.
  std::string describe() const;
  const Weights& weights() const { return *w_; }

 private:
  Model();
  friend class ModelLoader;
  HParams hp_;
  std::string path_;
  std::unique_ptr<gguf::File> gguf_;
  std::shared_ptr<void> bin_map_;       // keeps a llama2.c checkpoint's mapping alive
  std::shared_ptr<void> weights_copy_;  // the weights in huge-page memory (G2C_HUGEPAGES), when used
  std::unique_ptr<Weights> w_;
};

struct ContextOptions {
  std::int32_t n_ctx = 0;      // per sequence; 0: n_ctx_train capped at 4096
  std::int32_t n_seq = 1;      // sequences (KV caches); seq ids are 0..n_seq-1
  std::int32_t n_batch = 512;  // tokens per internal pass; larger batches are split
  std::int32_t threads = 0;    // 0: physical cores
  KvType kv_type = KvType::kF32;
  bool naive = false;       // recompute every sequence from scratch on each call
  bool embeddings = false;  // also keep the final hidden state (after the output norm) of outputs
};

struct BatchToken {
  std::int32_t token = 0;
  std::int32_t seq = 0;
  std::int32_t pos = 0;
  bool logits = false;
};

class Context {
 public:
  Context(const Model& model, const ContextOptions& opts = {});
  ~Context();
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  // Runs the forward pass over `batch`, in passes of at most n_batch tokens. A pass of one token takes
  // the single-token path (forward_token: matrix x vector); a larger one, whether a prompt or one
  // decode token of each of several sequences, the batch path (forward_batch: matrix x matrix, each
  // weight read once for all its tokens). Throws InvalidArgument for a bad token id / seq id /
  // position and ContextOverflow for pos >= n_ctx, before computing anything.
  void decode(std::span<const BatchToken> batch);
  void decode(std::initializer_list<BatchToken> batch) {
    decode(std::span<const BatchToken>(batch.begin(), batch.size()));
  }

  // Outputs of the last decode() in batch order of the tokens that asked for logits.
  std::int32_t n_outputs() const { return n_outputs_; }
  std::span<const float> logits(std::int32_t i) const;  // [n_vocab]
  std::span<const float> hidden(std::int32_t i) const;  // [n_embd]; needs ContextOptions::embeddings

  void clear(std::int32_t seq);                     // sequence becomes empty
  void truncate(std::int32_t seq, std::int32_t n);  // keep positions 0..n-1
  std::int32_t seq_len(std::int32_t seq) const;
  std::int32_t n_ctx() const { return opts_.n_ctx; }
  std::int32_t n_seq() const { return opts_.n_seq; }
  bool naive() const { return opts_.naive; }
  void set_naive(bool naive) { opts_.naive = naive; }
  // 2 * n_ctx * n_layer * n_head_kv * head_dim * bytes(kv_type) * n_seq.
  std::uint64_t kv_bytes() const;
  const Model& model() const { return model_; }
  int threads() const;

 private:
  struct State;  // KV caches and scratch buffers (context.cpp)
  struct Pass;   // the steps of one forward pass (context.cpp)
  void validate(std::span<const BatchToken> batch) const;
  void run(std::span<const BatchToken> batch, std::span<const std::int32_t> out_slot);
  // out_slot: where each token's logits go among the outputs, -1 for none.
  void forward_token(const BatchToken& t, std::int32_t out_slot);
  void forward_batch(std::span<const BatchToken> tokens, std::span<const std::int32_t> out_slot);
  const Model& model_;
  ContextOptions opts_;
  std::unique_ptr<State> st_;
  std::int32_t n_outputs_ = 0;
};

}  // namespace g2c::model
