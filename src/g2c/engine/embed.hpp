#pragma once
// Text embeddings from a decoder model, as llama.cpp's llama-embedding computes them with
// `--pooling mean --embd-normalize 2`: the final hidden state (after the output norm) of EVERY input
// token, BOS included, averaged, then scaled to unit L2 norm. The serving endpoints (Ollama's
// /api/embed and /api/embeddings, OpenAI's /v1/embeddings) call this.
//
//   engine::Embedder emb(*m.model, *m.tokenizer);               // one Context: n_seq 1, embeddings on
//   engine::Embedding e = emb.embed_text("Once upon a time");  // e.vector: [n_embd], |e.vector| == 1
//
// Input longer than the context: EmbedOptions::truncate keeps the first n_ctx tokens (what Ollama does)
// and sets Embedding::truncated; otherwise model::ContextOverflow ("the input length exceeds the
// context length: N tokens, context of C"). No tokens at all (an empty string with a vocabulary that
// adds no BOS) is InvalidArgument; an empty string with a llama (SPM) vocabulary is BOS alone, which is
// embedded as llama.cpp does (an Ollama server answers an empty `input` with no embedding before
// asking the engine). A non-finite component is g2c::Error.
//
// Cost: every token goes through the vocabulary projection as well (Context computes logits for each
// output), and the Context's logits buffer holds n_batch (512) rows of n_vocab floats, because the
// input is decoded in passes of n_batch tokens whose hidden states are summed as they come.
//
// Checked against llama-embedding at c392e50 (tests/engine/data/embeddings_golden.json, which records
// the command lines) for stories260K, TinyStories-656K-Q8_0 and qwen2-tiny.
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "g2c/model/model.hpp"
#include "g2c/tokenizer/tokenizer.hpp"

namespace g2c::engine {

struct EmbedOptions {
  bool normalize = true;  // L2 (llama-embedding's --embd-normalize 2); false: the plain mean
  bool truncate = true;   // input past n_ctx: keep the first n_ctx tokens; false: ContextOverflow
};

struct Embedding {
  std::vector<float> vector;  // [n_embd]
  std::int32_t n_tokens = 0;  // tokens embedded (after truncation)
  bool truncated = false;     // tokens past n_ctx were dropped
  std::int64_t ns = 0;        // wall time of the call: tokenization, forward passes, pooling
};

// One Context (one sequence, hidden states kept) reused by every call. Not thread-safe: a server holds
// a mutex around it. The model and tokenizer must outlive the Embedder.
class Embedder {
 public:
  // n_ctx 0: the model's training context capped at 4096 (ContextOptions); threads 0: physical cores.
  Embedder(const model::Model& model, const tokenizer::Tokenizer& tok, std::int32_t n_ctx = 0,
           std::int32_t threads = 0);

  // Tokenized as llama-embedding does: common_tokenize(ctx, text, add_special=true, parse_special=true),
  // so BOS (and EOS / [CLS] [SEP] where the vocabulary adds them) and special pieces written in the text.
  Embedding embed_text(std::string_view text, const EmbedOptions& opts = {});
  // Ids as given (nothing added). Throws InvalidArgument for an id outside [0, n_vocab) or no ids.
  Embedding embed_tokens(std::span<const std::int32_t> ids, const EmbedOptions& opts = {});

  std::int32_t n_ctx() const { return ctx_.n_ctx(); }
  std::int64_t n_embd() const { return model_.hparams().n_embd; }

 private:
  Embedding embed(std::span<const std::int32_t> ids, const EmbedOptions& opts, std::int64_t t_start);

  const model::Model& model_;
  const tokenizer::Tokenizer& tok_;
  model::Context ctx_;
  std::int32_t n_batch_;
};

}  // namespace g2c::engine
