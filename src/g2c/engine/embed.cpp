#include "g2c/engine/embed.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>

#include <fmt/core.h>

#include "g2c/core/error.hpp"
#include "g2c/core/timer.hpp"

namespace g2c::engine {

namespace {

model::ContextOptions embed_context_options(std::int32_t n_ctx, std::int32_t threads) {
  model::ContextOptions co;
  co.n_ctx = n_ctx;
  co.n_seq = 1;
  co.threads = threads;
  co.embeddings = true;
  return co;
}

}  // namespace

Embedder::Embedder(const model::Model& model, const tokenizer::Tokenizer& tok, std::int32_t n_ctx, std::int32_t threads)
    : model_(model),
      tok_(tok),
      ctx_(model, embed_context_options(n_ctx, threads)),
      n_batch_(model::ContextOptions{}.n_batch) {}

Embedding Embedder::embed_text(std::string_view text, const EmbedOptions& opts) {
  const std::int64_t t_start = now_ns();
  const std::vector<std::int32_t> ids = tok_.encode(text, /*add_special=*/true, /*parse_special=*/true);
  return embed(ids, opts, t_start);
}

Embedding Embedder::embed_tokens(std::span<const std::int32_t> ids, const EmbedOptions& opts) {
  return embed(ids, opts, now_ns());
}

Embedding Embedder::embed(std::span<const std::int32_t> ids, const EmbedOptions& opts, std::int64_t t_start) {
  if (ids.empty()) throw InvalidArgument("nothing to embed: the input has no tokens");
  const std::int64_t n_vocab = model_.hparams().n_vocab;
  for (std::size_t i = 0; i < ids.size(); ++i)  // before any pass runs
    if (ids[i] < 0 || ids[i] >= n_vocab)
      throw InvalidArgument(fmt::format("token {} of the input: id {} out of range [0, {})", i, ids[i], n_vocab));
  Embedding e;
  const auto n_ctx = static_cast<std::size_t>(ctx_.n_ctx());
  if (ids.size() > n_ctx) {
    if (!opts.truncate)
      throw model::ContextOverflow(
          fmt::format("the input length exceeds the context length: {} tokens, context of {}", ids.size(), n_ctx));
    ids = ids.first(n_ctx);
    e.truncated = true;
  }
  e.n_tokens = static_cast<std::int32_t>(ids.size());

  // Passes of n_batch tokens, every one an output, so the Context's logits buffer stays at
  // [n_batch][n_vocab] whatever the input length; the hidden rows are summed (in double) as they come.
  const auto E = static_cast<std::size_t>(n_embd());
  std::vector<double> sum(E, 0.0);
  std::vector<model::BatchToken> batch;
  ctx_.clear(0);
  for (std::size_t b0 = 0; b0 < ids.size(); b0 += static_cast<std::size_t>(n_batch_)) {
    const std::size_t n = std::min(ids.size() - b0, static_cast<std::size_t>(n_batch_));
    batch.clear();
    for (std::size_t i = 0; i < n; ++i)
      batch.push_back({ids[b0 + i], /*seq*/ 0, static_cast<std::int32_t>(b0 + i), /*logits*/ true});
    ctx_.decode(batch);
    for (std::int32_t it = 0; it < ctx_.n_outputs(); ++it) {
      const std::span<const float> h = ctx_.hidden(it);
      for (std::size_t j = 0; j < E; ++j) sum[j] += h[j];
    }
  }
  ctx_.clear(0);

  // Mean, then L2 normalisation as llama.cpp's common_embd_normalize(…, 2): the norm in double, a zero
  // vector stays zero.
  e.vector.resize(E);
  const double n_tok = static_cast<double>(ids.size());
  for (std::size_t j = 0; j < E; ++j) e.vector[j] = static_cast<float>(sum[j] / n_tok);
  if (opts.normalize) {
    double ss = 0.0;
    for (float v : e.vector) ss += static_cast<double>(v) * v;
    const double norm = std::sqrt(ss);
    const float scale = norm > 0.0 ? static_cast<float>(1.0 / norm) : 0.0f;
    for (float& v : e.vector) v *= scale;
  }
  for (std::size_t j = 0; j < E; ++j)
    if (!std::isfinite(e.vector[j]))
      throw Error(
          fmt::format("embedding of {} tokens: component {} is {}, not a finite number", ids.size(), j, e.vector[j]));
  e.ns = now_ns() - t_start;
  return e;
}

}  // namespace g2c::engine
