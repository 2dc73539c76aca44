#include "g2c/model/perplexity.hpp"

#include <algorithm>
#include <cmath>

#include <fmt/core.h>

#include "g2c/core/error.hpp"
#include "g2c/sampling/sampler.hpp"

namespace g2c::model {

PerplexityResult perplexity(Context& ctx, std::span<const std::int32_t> tokens, std::int32_t n_ctx, std::int32_t bos,
                            std::int32_t max_chunks, const std::function<void(std::int32_t, double)>& on_chunk) {
  if (n_ctx < 4) throw InvalidArgument(fmt::format("perplexity context {}: need at least 4", n_ctx));
  if (n_ctx > ctx.n_ctx())
    throw InvalidArgument(fmt::format("perplexity context {} exceeds the Context's {}", n_ctx, ctx.n_ctx()));
  if (tokens.size() < 2 * static_cast<std::size_t>(n_ctx))
    throw InvalidArgument(
        fmt::format("you need at least {} tokens to evaluate perplexity with a context of {}; "
                    "the text has {}",
                    2 * n_ctx, n_ctx, tokens.size()));
  const auto n_chunk_max = static_cast<std::int32_t>(tokens.size() / static_cast<std::size_t>(n_ctx));
  const std::int32_t n_chunk = max_chunks < 0 ? n_chunk_max : std::min(max_chunks, n_chunk_max);
  const std::int32_t first = n_ctx / 2;

  PerplexityResult r;
  double nll = 0.0, nll2 = 0.0;
  std::vector<BatchToken> batch(static_cast<std::size_t>(n_ctx));
  for (std::int32_t ic = 0; ic < n_chunk; ++ic) {
    const std::size_t start = static_cast<std::size_t>(ic) * static_cast<std::size_t>(n_ctx);
    ctx.clear(0);
    for (std::int32_t j = 0; j < n_ctx; ++j) {
      std::int32_t id = tokens[start + static_cast<std::size_t>(j)];
      if (j == 0 && bos >= 0) id = bos;
      batch[static_cast<std::size_t>(j)] = {id, 0, j, j >= first && j < n_ctx - 1};  // logits where scored
    }
    ctx.decode(batch);
    for (std::int32_t j = first; j < n_ctx - 1; ++j) {
      const double v =
          -sampling::log_softmax_at(ctx.logits(j - first), tokens[start + static_cast<std::size_t>(j) + 1]);
      nll += v;
      nll2 += v * v;
      ++r.n_scored;
    }
    r.running.push_back(std::exp(nll / static_cast<double>(r.n_scored)));
    if (on_chunk) on_chunk(ic, r.running.back());
  }
  r.n_chunks = n_chunk;
  if (r.n_scored == 0) return r;
  const double n = static_cast<double>(r.n_scored);
  nll /= n;
  nll2 /= n;
  r.ppl = std::exp(nll);
  const double var = nll2 - nll * nll;
  r.ppl_err = var > 0 && r.n_scored > 1 ? std::sqrt(var / (n - 1.0)) * r.ppl : 0.0;
  return r;
}

}  // namespace g2c::model
