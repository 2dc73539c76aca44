#pragma once
// Picking the next token from a row of logits: a fixed chain in llama.cpp's default order
//
//   penalties -> top-k -> top-p -> min-p -> temperature -> dist
//
// with llama.cpp's meaning for each step (src/llama-sampling.cpp):
//   penalties    over the last `repeat_last_n` accepted tokens (prompt included, as llama-cli and
//                llama-server feed the prompt to the sampler): a token seen `c > 0` times has its logit
//                divided by repeat_penalty when positive, multiplied when negative, then
//                logit -= c * frequency_penalty + presence_penalty.
//   top-k        keep the k highest logits.
//   top-p        softmax over the survivors (temperature 1), keep the smallest prefix of the sorted list
//                whose probability sum reaches p.
//   min-p        keep tokens whose probability is at least p times the top one's, i.e.
//                logit >= max_logit + ln(p) (over the survivors, temperature 1).
//   temperature  divide the survivors' logits by T.
//   dist         softmax and draw one token with the seeded PCG32 (rng.hpp): u = next_double() in [0,1),
//                walk the survivors in sorted order (logit descending, id ascending) and take the first
//                whose running sum of weights exp(l - l_max) exceeds u * total (sums in double).
// Temperature <= 0 means greedy: the argmax of the penalized logits (lowest id on ties); the filters and
// the RNG are then not used. Every filter keeps at least one token.
//
// Ties are broken by token id everywhere, so the candidate order (and hence a seeded draw) does not
// depend on the sort algorithm of the standard library.
#include <cstddef>
#include <cstdint>
#include <deque>
#include <span>
#include <vector>

#include "g2c/sampling/rng.hpp"

namespace g2c::sampling {

// Seed value meaning "draw one from std::random_device"; the seed actually used is reported by
// Sampler::seed() so a run can be repeated.
inline constexpr std::uint64_t kRandomSeed = UINT64_MAX;

struct SamplerParams {
  float temperature = 0.8f;         // <= 0: greedy
  std::int32_t top_k = 40;          // <= 0: off
  float top_p = 0.95f;              // >= 1: off
  float min_p = 0.05f;              // <= 0: off
  float repeat_penalty = 1.0f;      // 1: off
  float frequency_penalty = 0.0f;   // 0: off
  float presence_penalty = 0.0f;    // 0: off
  std::int32_t repeat_last_n = 64;  // penalty window in tokens; 0: no penalties, -1: whole history
  std::uint64_t seed = kRandomSeed;

  bool greedy() const { return temperature <= 0.0f; }
};

struct TokenData {
  std::int32_t id;
  float logit;
};

// The working set of the chain. `sorted` means ordered by logit descending, then id ascending.
struct Candidates {
  std::vector<TokenData> data;
  bool sorted = false;

  // All ids of `logits` in id order; NaN logits become -inf so ordering stays total.
  void assign(std::span<const float> logits);
  void sort();
  std::size_t size() const { return data.size(); }
};

// The chain's steps, exposed for tests and for callers that build their own order. Each keeps at least
// `min_keep` tokens (and never fewer than one).
void apply_penalties(std::span<float> logits, std::span<const std::int32_t> window, float repeat_penalty,
                     float frequency_penalty, float presence_penalty);
void top_k(Candidates& c, std::int32_t k, std::size_t min_keep = 1);
void top_p(Candidates& c, float p, std::size_t min_keep = 1);
void min_p(Candidates& c, float p, std::size_t min_keep = 1);
void temperature(Candidates& c, float t);
// Draws from softmax(c) as described above; sorts `c`.
std::int32_t sample_dist(Candidates& c, Pcg32& rng);

// Index of the largest value, the lowest index on ties. Greedy decoding is argmax(logits).
std::int32_t argmax(std::span<const float> logits);
// log softmax(logits)[id] in double precision over the raw logits: the model's own confidence in a token,
// independent of the sampling settings.
double log_softmax_at(std::span<const float> logits, std::int32_t id);

struct TokenLogprob {
  std::int32_t token = -1;
  double logprob = 0.0;
};
// The k most likely tokens under log_softmax(logits), most likely first (logit descending, ties by the
// smaller id; a NaN logit ranks as -inf). k is clamped to [0, n_vocab]. Each logprob is computed by the
// same arithmetic as log_softmax_at(logits, token), so the two never disagree. O(n_vocab log k).
std::vector<TokenLogprob> top_logprobs(std::span<const float> logits, std::int32_t k);

class Sampler {
 public:
  explicit Sampler(const SamplerParams& params);

  // The next token for `logits` [n_vocab]. Does not record it: call accept() with the token that is
  // actually appended (the chosen one, and before generation every prompt token).
  std::int32_t sample(std::span<const float> logits);
  void accept(std::int32_t token);
  // Forgets the history and restarts the RNG from seed().
  void reset();

  const SamplerParams& params() const { return params_; }
  std::uint64_t seed() const { return seed_; }

 private:
  SamplerParams params_;
  std::uint64_t seed_;
  Pcg32 rng_;
  std::deque<std::int32_t> history_;  // the last repeat_last_n accepted tokens
  std::vector<float> scratch_;        // [n_vocab] penalized logits
  std::vector<std::int32_t> window_;  // history_ copied contiguous for apply_penalties
  Candidates cand_;
};

}  // namespace g2c::sampling
