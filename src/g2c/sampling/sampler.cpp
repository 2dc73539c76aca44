#include "g2c/sampling/sampler.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <unordered_map>

#include "g2c/core/error.hpp"

namespace g2c::sampling {
namespace {

// Strict total order: logit descending, then id ascending (NaNs were removed by assign()).
bool before(const TokenData& a, const TokenData& b) {
  if (a.logit != b.logit) return a.logit > b.logit;
  return a.id < b.id;
}

float max_logit(const Candidates& c) {
  float m = -std::numeric_limits<float>::infinity();
  for (const TokenData& t : c.data) m = std::max(m, t.logit);
  return m;
}

}  // namespace

void Candidates::assign(std::span<const float> logits) {
  data.resize(logits.size());
  for (std::size_t i = 0; i < logits.size(); ++i) {
    const float l = logits[i];
    data[i] = {static_cast<std::int32_t>(i), std::isnan(l) ? -std::numeric_limits<float>::infinity() : l};
  }
  sorted = false;
}

void Candidates::sort() {
  if (!sorted) std::sort(data.begin(), data.end(), before);
  sorted = true;
}

void apply_penalties(std::span<float> logits, std::span<const std::int32_t> window, float repeat_penalty,
                     float frequency_penalty, float presence_penalty) {
  if (window.empty()) return;
  if (repeat_penalty == 1.0f && frequency_penalty == 0.0f && presence_penalty == 0.0f) return;
  std::unordered_map<std::int32_t, int> counts;
  for (std::int32_t t : window) ++counts[t];
  for (const auto& [id, count] : counts) {
    if (id < 0 || static_cast<std::size_t>(id) >= logits.size()) continue;
    float& l = logits[static_cast<std::size_t>(id)];
    // llama.cpp's rule: a plain division would make a negative logit more likely, so those are multiplied.
    if (l <= 0.0f) {
      l *= repeat_penalty;
    } else {
      l /= repeat_penalty;
    }
    l -= static_cast<float>(count) * frequency_penalty + presence_penalty;
  }
}

void top_k(Candidates& c, std::int32_t k, std::size_t min_keep) {
  if (k <= 0 || c.data.empty()) return;
  std::size_t n = std::max(static_cast<std::size_t>(k), std::max<std::size_t>(min_keep, 1));
  n = std::min(n, c.data.size());
  if (!c.sorted) {
    std::partial_sort(c.data.begin(), c.data.begin() + static_cast<std::ptrdiff_t>(n), c.data.end(), before);
    c.sorted = true;
  }
  c.data.resize(n);
}

void top_p(Candidates& c, float p, std::size_t min_keep) {
  if (p >= 1.0f || c.data.empty()) return;
  c.sort();
  const double l0 = c.data[0].logit;
  double total = 0.0;
  for (const TokenData& t : c.data) total += std::exp(static_cast<double>(t.logit) - l0);
  const std::size_t keep_at_least = std::max<std::size_t>(min_keep, 1);
  double cum = 0.0;
  for (std::size_t i = 0; i < c.data.size(); ++i) {
    cum += std::exp(static_cast<double>(c.data[i].logit) - l0) / total;
    if (cum >= static_cast<double>(p) && i + 1 >= keep_at_least) {
      c.data.resize(i + 1);
      return;
    }
  }
}

void min_p(Candidates& c, float p, std::size_t min_keep) {
  if (p <= 0.0f || c.data.empty()) return;
  // p_i >= p * p_max  <=>  l_i - l_max >= ln p, computed in float as llama.cpp does.
  const float threshold = max_logit(c) + std::log(p);
  std::vector<TokenData> kept;
  kept.reserve(c.data.size());
  for (const TokenData& t : c.data) {
    if (t.logit >= threshold) kept.push_back(t);
  }
  const std::size_t keep_at_least = std::max<std::size_t>(min_keep, 1);
  if (kept.size() >= keep_at_least) {
    c.data.swap(kept);  // filtering preserves the order, so `sorted` stays as it was
  } else {
    c.sort();
    c.data.resize(std::min(keep_at_least, c.data.size()));
  }
}

void temperature(Candidates& c, float t) {
  if (c.data.empty()) return;
  if (t <= 0.0f) {
    // The limit T -> 0: only the best token survives.
    c.sort();
    c.data.resize(1);
    return;
  }
  for (TokenData& d : c.data) d.logit /= t;
}

std::int32_t sample_dist(Candidates& c, Pcg32& rng) {
  G2C_CHECK(!c.data.empty());
  c.sort();
  const double l0 = c.data[0].logit;
  if (std::isinf(l0)) return c.data[0].id;  // every logit is -inf: nothing to weigh
  double total = 0.0;
  for (const TokenData& t : c.data) total += std::exp(static_cast<double>(t.logit) - l0);
  const double target = rng.next_double() * total;
  double cum = 0.0;
  for (const TokenData& t : c.data) {
    cum += std::exp(static_cast<double>(t.logit) - l0);
    if (cum > target) return t.id;
  }
  return c.data.back().id;  // rounding left target == total
}

std::int32_t argmax(std::span<const float> logits) {
  G2C_CHECK(!logits.empty());
  std::size_t best = 0;
  for (std::size_t i = 1; i < logits.size(); ++i) {
    if (logits[i] > logits[best]) best = i;
  }
  return static_cast<std::int32_t>(best);
}

namespace {

// log softmax(logits)[i] = logits[i] - max - log(sum exp(logits - max)), in double. The one place the
// normalizer is computed, so log_softmax_at and top_logprobs give the same value for the same id.
struct LogSoftmax {
  double max = -std::numeric_limits<double>::infinity();
  double log_total = 0.0;

  explicit LogSoftmax(std::span<const float> logits) {
    for (float l : logits) max = std::max(max, static_cast<double>(l));
    if (std::isinf(max)) return;
    double total = 0.0;
    for (float l : logits) total += std::exp(static_cast<double>(l) - max);
    log_total = std::log(total);
  }
  double at(std::span<const float> logits, std::int32_t id) const {
    if (std::isinf(max)) return -std::numeric_limits<double>::infinity();
    return static_cast<double>(logits[static_cast<std::size_t>(id)]) - max - log_total;
  }
};

}  // namespace

double log_softmax_at(std::span<const float> logits, std::int32_t id) {
  G2C_CHECK(id >= 0 && static_cast<std::size_t>(id) < logits.size());
  return LogSoftmax(logits).at(logits, id);
}

std::vector<TokenLogprob> top_logprobs(std::span<const float> logits, std::int32_t k) {
  const std::size_t n = std::min(static_cast<std::size_t>(std::max<std::int32_t>(k, 0)), logits.size());
  if (n == 0) return {};
  Candidates c;
  c.assign(logits);
  std::partial_sort(c.data.begin(), c.data.begin() + static_cast<std::ptrdiff_t>(n), c.data.end(), before);
  const LogSoftmax ls(logits);
  std::vector<TokenLogprob> out(n);
  for (std::size_t i = 0; i < n; ++i) out[i] = {c.data[i].id, ls.at(logits, c.data[i].id)};
  return out;
}

namespace {
std::uint64_t resolve_seed(std::uint64_t seed) {
  if (seed != kRandomSeed) return seed;
  std::random_device rd;
  std::uint64_t s = (static_cast<std::uint64_t>(rd()) << 32) | rd();
  return s == kRandomSeed ? 0 : s;
}
}  // namespace

Sampler::Sampler(const SamplerParams& params) : params_(params), seed_(resolve_seed(params.seed)), rng_(seed_) {
  if (params_.top_k < 0) params_.top_k = 0;
  if (params_.repeat_last_n < -1) {
    throw InvalidArgument("repeat_last_n: expected -1 (whole history), 0 (off) or a positive window, got " +
                          std::to_string(params_.repeat_last_n));
  }
  if (!(params_.repeat_penalty > 0.0f)) {
    throw InvalidArgument("repeat_penalty: expected a positive factor, got " + std::to_string(params_.repeat_penalty));
  }
}

void Sampler::accept(std::int32_t token) {
  if (params_.repeat_last_n == 0) return;
  history_.push_back(token);
  if (params_.repeat_last_n > 0 && history_.size() > static_cast<std::size_t>(params_.repeat_last_n)) {
    history_.pop_front();
  }
}

void Sampler::reset() {
  history_.clear();
  rng_.seed(seed_);
}

std::int32_t Sampler::sample(std::span<const float> logits) {
  G2C_CHECK(!logits.empty());
  std::span<const float> view = logits;
  const bool penalize = !history_.empty() && (params_.repeat_penalty != 1.0f || params_.frequency_penalty != 0.0f ||
                                              params_.presence_penalty != 0.0f);
  if (penalize) {
    scratch_.assign(logits.begin(), logits.end());
    window_.assign(history_.begin(), history_.end());
    apply_penalties(scratch_, window_, params_.repeat_penalty, params_.frequency_penalty, params_.presence_penalty);
    view = scratch_;
  }
  if (params_.greedy()) return argmax(view);
  cand_.assign(view);
  top_k(cand_, params_.top_k);
  top_p(cand_, params_.top_p);
  min_p(cand_, params_.min_p);
  temperature(cand_, params_.temperature);
  return sample_dist(cand_, rng_);
}

}  // namespace g2c::sampling
