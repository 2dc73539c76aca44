#pragma once
// Perplexity exactly as llama.cpp's llama-perplexity (c392e50) computes it, over already tokenized
// text: floor(T / n_ctx) non-overlapping chunks; the first token of each chunk replaced by BOS when
// `bos` >= 0; each chunk evaluated from an empty cache; tokens n_ctx/2+1 .. n_ctx-1 scored from the
// logits at positions n_ctx/2 .. n_ctx-2; nll = -log_softmax (double). Final estimate:
// PPL = exp(mean nll) +/- PPL * sqrt((mean nll^2 - mean nll^2) / (n - 1)).
#include <cstdint>
#include <functional>
#include <iosfwd>
#include <span>
#include <string>
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
// base_out: also write llama-perplexity's --kl-divergence-base file (c392e50 layout: "_logits_", int32
// n_ctx, n_vocab, n_chunk, the n_chunk * n_ctx tokens, then per scored position of each chunk
// 2*((n_vocab+1)/2)+4 uint16: float scale, float min log-prob, and each log-prob quantized to 16 bits over
// [max - 16, max]); the nll of each scored token is then llama.cpp's float expression.
PerplexityResult perplexity(Context& ctx, std::span<const std::int32_t> tokens, std::int32_t n_ctx, std::int32_t bos,
                            std::int32_t max_chunks = -1,
                            const std::function<void(std::int32_t chunk, double running_ppl)>& on_chunk = {},
                            std::ostream* base_out = nullptr);

// KL divergence against a base file (llama-perplexity --kl-divergence): the file's tokens, chunked by
// its n_ctx, each chunk evaluated from an empty cache (BOS first when bos >= 0), each scored position
// compared with the base's stored log-probabilities as llama.cpp does (terms with base log-prob <= -16
// skipped).
struct KldResult {
  std::int32_t n_ctx = 0, n_vocab = 0, n_chunk = 0;
  double sum_nll = 0, sum_nll2 = 0, sum_nll_base = 0, sum_nll_base2 = 0, sum_nll_nll_base = 0;
  double sum_kld = 0, sum_kld2 = 0, sum_p_diff = 0, sum_p_diff2 = 0, sum_p_diff4 = 0;
  float max_p_diff = 0;
  std::size_t n_same_top = 0, count = 0;
  std::vector<float> kld_values, p_diff_values;  // per scored token, in order
};
// Throws FormatError naming the file for a bad header, a vocabulary or context mismatch, or a short file.
KldResult kl_divergence(Context& ctx, std::istream& base, const std::string& base_name, std::int32_t bos,
                        const std::function<void(std::int32_t chunk, const KldResult& so_far)>& on_chunk = {});
// llama-perplexity's per-chunk line ("   1    PPL ± unc    ln ratio ± unc    KLD ± unc    Δp RMS ± unc %
// same top ± unc %") and its three statistics blocks, printed the same way.
std::string kld_chunk_line(std::int32_t chunk, const KldResult& r);
std::string kld_chunk_header();
std::string kld_statistics(const KldResult& r);

}  // namespace g2c::model
