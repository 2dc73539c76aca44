#include "g2c/model/perplexity.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <istream>
#include <ostream>

#include <fmt/core.h>

#include "g2c/core/error.hpp"
#include "g2c/sampling/sampler.hpp"

namespace g2c::model {
namespace {

// llama.cpp's nearest_int: round to nearest through the float mantissa trick.
int nearest_int(float fval) {
  float val = fval + 12582912.f;
  int i = 0;
  std::memcpy(&i, &val, sizeof(int));
  return (i & 0x007fffff) - 0x00400000;
}

std::int32_t row_u16(std::int32_t n_vocab) { return 2 * ((n_vocab + 1) / 2) + 4; }

// One stored row of the base file, and the token's nll, as llama-perplexity's log_softmax(..., log_prob, tok).
double store_row(std::span<const float> logits, std::uint16_t* out, std::int32_t tok) {
  const auto n = static_cast<std::int32_t>(logits.size());
  float max_logit = logits[0], min_logit = logits[0];
  for (std::int32_t i = 1; i < n; ++i) {
    max_logit = std::max(max_logit, logits[i]);
    min_logit = std::min(min_logit, logits[i]);
  }
  min_logit = std::max(min_logit, max_logit - 16);
  double sum_exp = 0.0;
  for (std::int32_t i = 0; i < n; ++i) sum_exp += std::exp(logits[i] - max_logit);
  const auto log_sum_exp = static_cast<float>(std::log(sum_exp));
  const float min_log_prob = min_logit - max_logit - log_sum_exp;
  const float scale = (max_logit - min_logit) / 65535.f;
  std::memcpy(out, &scale, sizeof(float));
  std::memcpy(out + 2, &min_log_prob, sizeof(float));
  std::uint16_t* lp = out + 4;
  if (scale != 0.0f) {
    const float inv_scale = 1 / scale;
    for (std::int32_t i = 0; i < n; ++i) {
      lp[i] = logits[i] > min_logit ? static_cast<std::uint16_t>(nearest_int(inv_scale * (logits[i] - min_logit))) : 0;
    }
  } else {
    std::memset(lp, 0, static_cast<std::size_t>(n) * sizeof(std::uint16_t));
  }
  return max_logit + log_sum_exp - logits[static_cast<std::size_t>(tok)];
}

// One scored position against its base row, as llama-perplexity's log_softmax(..., base_log_prob, tok, kld).
std::pair<double, float> compare_row(std::span<const float> logits, const std::uint16_t* base, std::int32_t tok,
                                     KldResult& k) {
  const auto n = static_cast<std::int32_t>(logits.size());
  float max_logit = logits[0];
  std::int32_t imax = 0;
  for (std::int32_t i = 1; i < n; ++i) {
    if (logits[i] > max_logit) {
      max_logit = logits[i];
      imax = i;
    }
  }
  double sum_exp = 0.0;
  for (std::int32_t i = 0; i < n; ++i) sum_exp += std::exp(logits[i] - max_logit);
  const auto log_sum_exp = static_cast<float>(std::log(sum_exp));
  float scale = 0, min_log_prob = 0;
  std::memcpy(&scale, base, sizeof(float));
  std::memcpy(&min_log_prob, base + 2, sizeof(float));
  const std::uint16_t* blp = base + 4;
  const float nll = max_logit + log_sum_exp - logits[static_cast<std::size_t>(tok)];
  k.sum_nll += nll;
  k.sum_nll2 += nll * nll;
  const float nll_base = -(scale * blp[tok] + min_log_prob);
  k.sum_nll_base += nll_base;
  k.sum_nll_base2 += nll_base * nll_base;
  k.sum_nll_nll_base += nll * nll_base;
  max_logit += log_sum_exp;
  double sum = 0;
  std::int32_t imax_base = -1;
  float p_log_base_max = 0;
  for (std::int32_t i = 0; i < n; ++i) {
    const float p_log_base = scale * blp[i] + min_log_prob;
    if (i == 0 || p_log_base > p_log_base_max) {
      p_log_base_max = p_log_base;
      imax_base = i;
    }
    if (p_log_base > -16.f) {
      const float p_base = std::exp(p_log_base);
      sum += p_base * (p_log_base - logits[static_cast<std::size_t>(i)] + max_logit);
    }
  }
  k.sum_kld += sum;
  k.sum_kld2 += sum * sum;
  ++k.count;
  if (imax == imax_base) ++k.n_same_top;
  const float p_base = std::exp(-nll_base);
  const float p = std::exp(-nll);
  const float p_diff = p - p_base;
  k.sum_p_diff += p_diff;
  const double p_diff2 = p_diff * p_diff;
  k.sum_p_diff2 += p_diff2;
  k.sum_p_diff4 += p_diff2 * p_diff2;
  k.max_p_diff = std::max(k.max_p_diff, std::fabs(p_diff));
  return {sum, p_diff};
}

std::pair<double, double> mean_and_uncertainty(double sum, double sum2, std::size_t count) {
  if (count < 1) return {0., 0.};
  const double f = sum / static_cast<double>(count);
  double df = sum2 / static_cast<double>(count) - f * f;
  df = df > 0 && count > 10 ? std::sqrt(df / static_cast<double>(count - 1)) : 0.;
  return {f, df};
}

double covariance(double suma, double sumb, double sumab, std::size_t count) {
  if (count < 10) return 0.0;
  const double c = static_cast<double>(count);
  return (sumab / c - (suma / c) * (sumb / c)) / (c - 1);
}

float percentile(const std::vector<float>& values, float fraction) {
  if (fraction <= 0) return values.front();
  if (fraction >= 1) return values.back();
  float p = fraction * static_cast<float>(values.size() - 1);
  const auto ip = static_cast<std::size_t>(p);
  p -= static_cast<float>(ip);
  return (1 - p) * values[ip] + p * values[std::min(ip + 1, values.size() - 1)];
}

float median(const std::vector<float>& v) {
  return v.size() % 2 == 0 ? 0.5f * (v[v.size() / 2] + v[v.size() / 2 - 1]) : v[v.size() / 2];
}

template <typename T>
void write_raw(std::ostream& out, const T* p, std::size_t n) {
  out.write(reinterpret_cast<const char*>(p), static_cast<std::streamsize>(n * sizeof(T)));
}

}  // namespace

PerplexityResult perplexity(Context& ctx, std::span<const std::int32_t> tokens, std::int32_t n_ctx, std::int32_t bos,
                            std::int32_t max_chunks, const std::function<void(std::int32_t, double)>& on_chunk,
                            std::ostream* base_out) {
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
  std::vector<std::uint16_t> rows;
  std::int32_t n_vocab = 0, nv = 0;
  if (base_out != nullptr) {
    n_vocab = ctx.model().hparams().n_vocab;
    nv = row_u16(n_vocab);
    base_out->write("_logits_", 8);
    write_raw(*base_out, &n_ctx, 1);
    write_raw(*base_out, &n_vocab, 1);
    write_raw(*base_out, &n_chunk, 1);
    write_raw(*base_out, tokens.data(), static_cast<std::size_t>(n_chunk) * static_cast<std::size_t>(n_ctx));
    rows.assign(static_cast<std::size_t>(n_ctx - 1 - first) * static_cast<std::size_t>(nv), 0);
  }
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
      const std::int32_t next = tokens[start + static_cast<std::size_t>(j) + 1];
      const double v = base_out != nullptr ? store_row(ctx.logits(j - first),
                                                       rows.data() + static_cast<std::size_t>(j - first) * nv, next)
                                           : -sampling::log_softmax_at(ctx.logits(j - first), next);
      nll += v;
      nll2 += v * v;
      ++r.n_scored;
    }
    if (base_out != nullptr) {
      write_raw(*base_out, rows.data(), rows.size());
      if (!*base_out) throw IoError("writing the KL-divergence base file failed");
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

KldResult kl_divergence(Context& ctx, std::istream& in, const std::string& name, std::int32_t bos,
                        const std::function<void(std::int32_t, const KldResult&)>& on_chunk) {
  char magic[8] = {};
  in.read(magic, 8);
  if (!in || std::memcmp(magic, "_logits_", 8) != 0) {
    throw FormatError(name + " does not look like a file containing log-probabilities (no _logits_ header)");
  }
  KldResult k;
  in.read(reinterpret_cast<char*>(&k.n_ctx), 4);
  in.read(reinterpret_cast<char*>(&k.n_vocab), 4);
  in.read(reinterpret_cast<char*>(&k.n_chunk), 4);
  if (!in) throw FormatError(name + ": failed reading n_ctx, n_vocab, n_chunk");
  if (k.n_ctx < 4 || k.n_chunk < 1) {
    throw FormatError(fmt::format("{}: n_ctx {} and n_chunk {} make no chunk to score", name, k.n_ctx, k.n_chunk));
  }
  if (k.n_ctx > ctx.n_ctx()) {
    throw FormatError(
        fmt::format("{} was computed with n_ctx {}, more than the context's {}", name, k.n_ctx, ctx.n_ctx()));
  }
  if (k.n_vocab != ctx.model().hparams().n_vocab) {
    throw FormatError(fmt::format("{}: inconsistent vocabulary ({} in the file, {} in the model)", name, k.n_vocab,
                                  ctx.model().hparams().n_vocab));
  }
  std::vector<std::int32_t> tokens(static_cast<std::size_t>(k.n_ctx) * static_cast<std::size_t>(k.n_chunk));
  in.read(reinterpret_cast<char*>(tokens.data()), static_cast<std::streamsize>(tokens.size() * 4));
  if (!in) throw FormatError(name + ": failed reading the evaluation tokens");
  for (std::int32_t t : tokens) {
    if (t < 0 || t >= k.n_vocab) throw FormatError(fmt::format("{}: token id {} out of the vocabulary", name, t));
  }
  const std::int32_t n_ctx = k.n_ctx, first = n_ctx / 2, nv = row_u16(k.n_vocab);
  std::vector<std::uint16_t> rows(static_cast<std::size_t>(n_ctx - 1 - first) * static_cast<std::size_t>(nv));
  std::vector<BatchToken> batch(static_cast<std::size_t>(n_ctx));
  for (std::int32_t ic = 0; ic < k.n_chunk; ++ic) {
    in.read(reinterpret_cast<char*>(rows.data()), static_cast<std::streamsize>(rows.size() * sizeof(std::uint16_t)));
    if (!in) throw FormatError(fmt::format("{}: failed reading log-probs for chunk {}", name, ic));
    const std::size_t start = static_cast<std::size_t>(ic) * static_cast<std::size_t>(n_ctx);
    ctx.clear(0);
    for (std::int32_t j = 0; j < n_ctx; ++j) {
      std::int32_t id = tokens[start + static_cast<std::size_t>(j)];
      if (j == 0 && bos >= 0) id = bos;
      batch[static_cast<std::size_t>(j)] = {id, 0, j, j >= first && j < n_ctx - 1};
    }
    ctx.decode(batch);
    for (std::int32_t j = first; j < n_ctx - 1; ++j) {
      const auto [kv, pd] = compare_row(ctx.logits(j - first), rows.data() + static_cast<std::size_t>(j - first) * nv,
                                        tokens[start + static_cast<std::size_t>(j) + 1], k);
      k.kld_values.push_back(static_cast<float>(kv));
      k.p_diff_values.push_back(pd);
    }
    if (on_chunk) on_chunk(ic, k);
  }
  return k;
}

std::string kld_chunk_header() {
  return "chunk             PPL               ln(PPL(Q)/PPL(base))          KL Divergence              Δp RMS "
         "           Same top p\n";
}

std::string kld_chunk_line(std::int32_t chunk, const KldResult& k) {
  std::string s = fmt::format("{:4d}", chunk + 1);
  const auto log_ppl = mean_and_uncertainty(k.sum_nll, k.sum_nll2, k.count);
  const double ppl_val = std::exp(log_ppl.first);
  s += fmt::format("    {:9.4f} ± {:9.4f}", ppl_val, ppl_val * log_ppl.second);
  const auto log_ppl_base = mean_and_uncertainty(k.sum_nll_base, k.sum_nll_base2, k.count);
  const double cov = covariance(k.sum_nll, k.sum_nll_base, k.sum_nll_nll_base, k.count);
  s += fmt::format("    {:10.5f} ± {:10.5f}", log_ppl.first - log_ppl_base.first,
                   std::sqrt(log_ppl.second * log_ppl.second + log_ppl_base.second * log_ppl_base.second - 2.0 * cov));
  const auto kl = mean_and_uncertainty(k.sum_kld, k.sum_kld2, k.count);
  s += fmt::format("    {:10.5f} ± {:10.5f}", kl.first, kl.second);
  const auto mse = mean_and_uncertainty(k.sum_p_diff2, k.sum_p_diff4, k.count);
  const double rms = std::sqrt(mse.first);
  s += fmt::format("    {:6.3f} ± {:6.3f} %", 100.0 * rms, 100.0 * 0.5 / rms * mse.second);
  const double top = static_cast<double>(k.n_same_top) / static_cast<double>(k.count);
  s += fmt::format("    {:6.3f} ± {:6.3f} %", 100.0 * top,
                   100.0 * std::sqrt(top * (1 - top) / static_cast<double>(k.count - 1)));
  return s + "\n";
}

std::string kld_statistics(const KldResult& k) {
  if (k.count < 100) return "";  // llama.cpp prints no statistics on so few values
  std::vector<float> kv = k.kld_values, pd = k.p_diff_values;
  std::sort(kv.begin(), kv.end());
  std::sort(pd.begin(), pd.end());
  std::string s = "====== Perplexity statistics ======\n";
  const auto log_ppl = mean_and_uncertainty(k.sum_nll, k.sum_nll2, k.count);
  const double ppl = std::exp(log_ppl.first), ppl_unc = ppl * log_ppl.second;
  s += fmt::format("Mean PPL(Q)                   : {:10.6f} ± {:10.6f}\n", ppl, ppl_unc);
  const auto log_base = mean_and_uncertainty(k.sum_nll_base, k.sum_nll_base2, k.count);
  const double base = std::exp(log_base.first), base_unc = base * log_base.second;
  s += fmt::format("Mean PPL(base)                : {:10.6f} ± {:10.6f}\n", base, base_unc);
  const double cov = covariance(k.sum_nll, k.sum_nll_base, k.sum_nll_nll_base, k.count);
  s += fmt::format("Cor(ln(PPL(Q)), ln(PPL(base))): {:6.2f}%\n", 100.0 * cov / (log_ppl.second * log_base.second));
  const double ratio = log_ppl.first - log_base.first;
  const double ratio_unc = std::sqrt(log_ppl.second * log_ppl.second + log_base.second * log_base.second - 2.0 * cov);
  s += fmt::format("Mean ln(PPL(Q)/PPL(base))     : {:10.6f} ± {:10.6f}\n", ratio, ratio_unc);
  s += fmt::format("Mean PPL(Q)/PPL(base)         : {:10.6f} ± {:10.6f}\n", std::exp(ratio),
                   std::exp(ratio) * ratio_unc);
  const double ppl_cov = ppl * base * cov;
  s += fmt::format("Mean PPL(Q)-PPL(base)         : {:10.6f} ± {:10.6f}\n", ppl - base,
                   std::sqrt(ppl_unc * ppl_unc + base_unc * base_unc - 2.0 * ppl_cov));
  s += "\n====== KL divergence statistics ======\n";
  const auto kl = mean_and_uncertainty(k.sum_kld, k.sum_kld2, k.count);
  s += fmt::format("Mean    KLD: {:10.6f} ± {:10.6f}\n", kl.first, kl.second);
  s += fmt::format("Maximum KLD: {:10.6f}\n", kv.back());
  s += fmt::format("99.9%   KLD: {:10.6f}\n", percentile(kv, 0.999f));
  s += fmt::format("99.0%   KLD: {:10.6f}\n", percentile(kv, 0.990f));
  s += fmt::format("99.0%   KLD: {:10.6f}\n", percentile(kv, 0.990f));  // llama.cpp prints this line twice
  s += fmt::format("Median  KLD: {:10.6f}\n", median(kv));
  s += fmt::format("10.0%   KLD: {:10.6f}\n", percentile(kv, 0.100f));
  s += fmt::format(" 5.0%   KLD: {:10.6f}\n", percentile(kv, 0.050f));
  s += fmt::format(" 1.0%   KLD: {:10.6f}\n", percentile(kv, 0.010f));
  s += fmt::format("Minimum KLD: {:10.6f}\n", kv.front());
  s += "\n====== Token probability statistics ======\n";
  const auto p = mean_and_uncertainty(k.sum_p_diff, k.sum_p_diff2, k.count);
  s += fmt::format("Mean    Δp: {:6.3f} ± {:5.3f} %\n", 100.0 * p.first, 100.0 * p.second);
  s += fmt::format("Maximum Δp: {:6.3f}%\n", 100.0 * pd.back());
  const std::pair<const char*, float> qs[] = {
      {"99.9%", 0.999f}, {"99.0%", 0.990f}, {"95.0%", 0.950f}, {"90.0%", 0.900f}, {"75.0%", 0.750f}};
  for (const auto& [label, q] : qs) s += fmt::format("{}   Δp: {:6.3f}%\n", label, 100.0 * percentile(pd, q));
  s += fmt::format("Median  Δp: {:6.3f}%\n", 100.0 * median(pd));
  const std::pair<const char*, float> lo[] = {
      {"25.0%", 0.250f}, {"10.0%", 0.100f}, {" 5.0%", 0.050f}, {" 1.0%", 0.010f}, {" 0.1%", 0.001f}};
  for (const auto& [label, q] : lo) s += fmt::format("{}   Δp: {:6.3f}%\n", label, 100.0 * percentile(pd, q));
  s += fmt::format("Minimum Δp: {:6.3f}%\n", 100.0 * pd.front());
  const auto mse = mean_and_uncertainty(k.sum_p_diff2, k.sum_p_diff4, k.count);
  const double rms = std::sqrt(mse.first);
  s += fmt::format("RMS Δp    : {:6.3f} ± {:5.3f} %\n", 100.0 * rms, 100.0 * 0.5 / rms * mse.second);
  const double top = static_cast<double>(k.n_same_top) / static_cast<double>(k.count);
  s += fmt::format("Same top p: {:6.3f} ± {:5.3f} %\n", 100.0 * top,
                   100.0 * std::sqrt(top * (1.0 - top) / static_cast<double>(k.count - 1)));
  return s;
}

}  // namespace g2c::model
