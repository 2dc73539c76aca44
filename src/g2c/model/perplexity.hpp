#pragma once
// Perplexity exactly as llama.cpp's llama-perplexity (c392e50) computes it, over already tokenized
// text: floor(T / n_ctx) non-overlapping chunks; the first token of each chunk replaced by BOS when
// `bos` >= 0; each chunk evaluated from an empty cache; tokens n_ctx/2+1 .. n_ctx-1 scored from the
// logits at positions n_ctx/2 .. n_ctx-2; nll = -log_softmax (double). Final estimate:
// PPL = exp(mean nll) +/- PPL * sqrt((mean nll^2 - mean nll^2) / (n - 1)).
#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "g2c/model/model.hpp"

namespace g2c::model {

struct PerplexityResult {
  double ppl = 0.0;
  double ppl_err = 0.0;  // the "+/-" of llama.cpp's "Final estimate" (0 when undefined)
  std::int32_t n_chunks = 0;
  std::int64_t n_scored = 0;
  std::vector<double> running;  // [n_chunks] the running PPL printed after each chunk
};

// `ctx` must have n_ctx() >= n_ctx and n_batch ideally n_ctx; sequence 0 is used and cleared.
// Throws InvalidArgument when tokens.size() < 2 * n_ctx (llama.cpp refuses that too).
PerplexityResult perplexity(Context& ctx, std::span<const std::int32_t> tokens, std::int32_t n_ctx, std::int32_t bos,
                            std::int32_t max_chunks = -1,
                            const std::function<void(std::int32_t chunk, double running_ppl)>& on_chunk = {});

}  // namespace g2c::model
