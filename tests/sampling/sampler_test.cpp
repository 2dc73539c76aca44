// The sampler chain on hand-made logits: exact candidate sets for each filter, llama.cpp's penalty
// arithmetic, greedy == argmax, and a seeded golden of the documented draw (sampler.hpp, rng.hpp).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "g2c/core/error.hpp"
#include "g2c/sampling/sampler.hpp"

namespace g2c::sampling {
namespace {

std::vector<std::int32_t> ids(const Candidates& c) {
  std::vector<std::int32_t> out;
  for (const TokenData& t : c.data) out.push_back(t.id);
  return out;
}

// Logits whose softmax is exactly-ish the given probabilities (they sum to 1).
std::vector<float> log_probs(const std::vector<double>& p) {
  std::vector<float> out;
  for (double v : p) out.push_back(static_cast<float>(std::log(v)));
  return out;
}

// p = [0.05, 0.4, 0.1, 0.25, 0.2]; sorted: id1 0.4, id3 0.25, id4 0.2, id2 0.1, id0 0.05;
// running sums 0.4, 0.65, 0.85, 0.95, 1.0.
const std::vector<double> kProbs = {0.05, 0.4, 0.1, 0.25, 0.2};

TEST(TopK, KeepsTheKHighestTiesByLowerId) {
  Candidates c;
  c.assign(std::vector<float>{1.0f, 5.0f, 3.0f, 5.0f, -2.0f, 4.0f});
  top_k(c, 3);
  EXPECT_EQ(ids(c), (std::vector<std::int32_t>{1, 3, 5}));
  EXPECT_TRUE(c.sorted);
}

TEST(TopK, OffAndOversized) {
  Candidates c;
  c.assign(std::vector<float>{1.0f, 5.0f, 3.0f});
  top_k(c, 0);
  EXPECT_EQ(ids(c), (std::vector<std::int32_t>{0, 1, 2}));  // off: untouched, still id order
  top_k(c, 10);
  EXPECT_EQ(ids(c), (std::vector<std::int32_t>{1, 2, 0}));
  top_k(c, 1);
  EXPECT_EQ(ids(c), (std::vector<std::int32_t>{1}));
}

TEST(TopP, SmallestPrefixReachingP) {
  const auto logits = log_probs(kProbs);
  struct Case {
    float p;
    std::vector<std::int32_t> expected;
  };
  const std::vector<Case> cases = {
      {0.3f, {1}},           // 0.4 >= 0.3
      {0.5f, {1, 3}},        // 0.65
      {0.7f, {1, 3, 4}},     // 0.85
      {0.9f, {1, 3, 4, 2}},  // 0.95
      {0.97f, {1, 3, 4, 2, 0}},
      {1.0f, {0, 1, 2, 3, 4}},  // off: untouched
  };
  for (const Case& cs : cases) {
    Candidates c;
    c.assign(logits);
    top_p(c, cs.p);
    EXPECT_EQ(ids(c), cs.expected) << "p=" << cs.p;
  }
}

TEST(TopP, RenormalizesOverSurvivorsOfTopK) {
  // After top-k 2 the survivors are id1 0.4/0.65 = 0.615 and id3 0.385, so p = 0.6 keeps only id1;
  // over the full set it would keep {1, 3}.
  const auto logits = log_probs(kProbs);
  Candidates c;
  c.assign(logits);
  top_k(c, 2);
  top_p(c, 0.6f);
  EXPECT_EQ(ids(c), (std::vector<std::int32_t>{1}));
  c.assign(logits);
  top_p(c, 0.6f);
  EXPECT_EQ(ids(c), (std::vector<std::int32_t>{1, 3}));
}

TEST(MinP, KeepsTokensAtLeastPTimesTheBest) {
  const auto logits = log_probs(kProbs);
  struct Case {
    float p;
    std::vector<std::int32_t> expected;  // in id order: min-p filters without sorting
  };
  const std::vector<Case> cases = {
      {0.6f, {1, 3}},           // >= 0.24
      {0.3f, {1, 3, 4}},        // >= 0.12
      {0.2f, {1, 2, 3, 4}},     // >= 0.08
      {0.1f, {0, 1, 2, 3, 4}},  // >= 0.04
      {0.9f, {1}},              // >= 0.36
      {0.0f, {0, 1, 2, 3, 4}},  // off
  };
  for (const Case& cs : cases) {
    Candidates c;
    c.assign(logits);
    min_p(c, cs.p);
    EXPECT_EQ(ids(c), cs.expected) << "p=" << cs.p;
  }
}

TEST(MinP, KeepsOrderWhenSorted) {
  Candidates c;
  c.assign(log_probs(kProbs));
  c.sort();
  min_p(c, 0.3f);
  EXPECT_EQ(ids(c), (std::vector<std::int32_t>{1, 3, 4}));
  EXPECT_TRUE(c.sorted);
}

TEST(Temperature, DividesLogitsAndZeroKeepsTheBest) {
  Candidates c;
  c.assign(std::vector<float>{1.0f, -2.0f, 4.0f});
  temperature(c, 0.5f);
  EXPECT_FLOAT_EQ(c.data[0].logit, 2.0f);
  EXPECT_FLOAT_EQ(c.data[1].logit, -4.0f);
  EXPECT_FLOAT_EQ(c.data[2].logit, 8.0f);
  temperature(c, 0.0f);
  EXPECT_EQ(ids(c), (std::vector<std::int32_t>{2}));
}

TEST(Penalties, LlamaCppArithmetic) {
  // window: id0 once, id1 twice, id3 three times; id2 absent.
  std::vector<float> logits = {2.0f, -1.0f, 0.5f, 3.0f};
  const std::vector<std::int32_t> window = {0, 1, 1, 3, 3, 3};
  apply_penalties(logits, window, /*repeat=*/2.0f, /*freq=*/0.1f, /*presence=*/0.5f);
  EXPECT_FLOAT_EQ(logits[0], 2.0f / 2.0f - (1 * 0.1f + 0.5f));   // positive: divided -> 0.4
  EXPECT_FLOAT_EQ(logits[1], -1.0f * 2.0f - (2 * 0.1f + 0.5f));  // negative: multiplied -> -2.7
  EXPECT_FLOAT_EQ(logits[2], 0.5f);                              // not in the window
  EXPECT_FLOAT_EQ(logits[3], 3.0f / 2.0f - (3 * 0.1f + 0.5f));   // 0.7
  EXPECT_NEAR(logits[0], 0.4f, 1e-6);
  EXPECT_NEAR(logits[1], -2.7f, 1e-6);
  EXPECT_NEAR(logits[3], 0.7f, 1e-6);
}

TEST(Penalties, OnlyTheLastNTokensCount) {
  // id 0 is the best logit; it was seen, but outside the window of 2, so greedy still picks it.
  SamplerParams p;
  p.temperature = 0.0f;
  p.repeat_penalty = 100.0f;
  p.repeat_last_n = 2;
  Sampler s(p);
  const std::vector<float> logits = {5.0f, 4.0f, 1.0f};
  s.accept(0);
  EXPECT_EQ(s.sample(logits), 1);  // 5/100 < 4
  s.accept(2);
  s.accept(2);
  EXPECT_EQ(s.sample(logits), 0);  // window is {2, 2}
}

TEST(Penalties, RepeatLastNZeroDisables) {
  SamplerParams p;
  p.temperature = 0.0f;
  p.repeat_penalty = 100.0f;
  p.repeat_last_n = 0;
  Sampler s(p);
  s.accept(0);
  EXPECT_EQ(s.sample(std::vector<float>{5.0f, 4.0f}), 0);
}

TEST(Greedy, EqualsArgmax) {
  // Deterministic pseudo-random logits; greedy must be the argmax whatever the filters or the seed say.
  Pcg32 rng(7);
  for (int trial = 0; trial < 50; ++trial) {
    std::vector<float> logits(1000);
    for (float& l : logits) l = static_cast<float>(rng.next_double() * 20.0 - 10.0);
    std::size_t best = 0;
    for (std::size_t i = 0; i < logits.size(); ++i) {
      if (logits[i] > logits[best]) best = i;
    }
    SamplerParams p;
    p.temperature = 0.0f;
    p.top_k = 3;
    p.seed = static_cast<std::uint64_t>(trial);
    Sampler s(p);
    EXPECT_EQ(s.sample(logits), static_cast<std::int32_t>(best));
    EXPECT_EQ(argmax(logits), static_cast<std::int32_t>(best));
  }
  EXPECT_EQ(argmax(std::vector<float>{1.0f, 3.0f, 3.0f}), 1);  // ties: lowest id
}

TEST(LogSoftmax, MatchesDefinition) {
  const auto logits = log_probs(kProbs);
  for (std::size_t i = 0; i < kProbs.size(); ++i) {
    EXPECT_NEAR(log_softmax_at(logits, static_cast<std::int32_t>(i)), std::log(kProbs[i]), 1e-6);
  }
  // Shift invariance with large logits (no overflow).
  const std::vector<float> big = {1000.0f, 1000.0f};
  EXPECT_NEAR(log_softmax_at(big, 0), std::log(0.5), 1e-12);
}

// The reference: every id sorted by logit descending then id ascending, log-sum-exp in long double.
std::vector<std::pair<std::int32_t, long double>> reference_top(const std::vector<float>& logits) {
  std::vector<std::int32_t> order(logits.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = static_cast<std::int32_t>(i);
  std::sort(order.begin(), order.end(), [&](std::int32_t a, std::int32_t b) {
    const float la = logits[static_cast<std::size_t>(a)], lb = logits[static_cast<std::size_t>(b)];
    return la != lb ? la > lb : a < b;
  });
  long double m = logits[static_cast<std::size_t>(order[0])], total = 0.0L;
  for (float l : logits) total += std::exp(static_cast<long double>(l) - m);
  std::vector<std::pair<std::int32_t, long double>> out;
  for (std::int32_t id : order)
    out.emplace_back(id, static_cast<long double>(logits[static_cast<std::size_t>(id)]) - m - std::log(total));
  return out;
}

void expect_top_matches_reference(const std::vector<float>& logits, std::int32_t k) {
  SCOPED_TRACE("k = " + std::to_string(k));
  const auto want = reference_top(logits);
  const auto got = top_logprobs(logits, k);
  ASSERT_EQ(got.size(), std::min<std::size_t>(static_cast<std::size_t>(std::max(k, 0)), logits.size()));
  for (std::size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].token, want[i].first) << "rank " << i;
    EXPECT_NEAR(got[i].logprob, static_cast<double>(want[i].second), 1e-12) << "rank " << i;
    // The same arithmetic as the per-token value: equal, not merely close.
    EXPECT_EQ(got[i].logprob, log_softmax_at(logits, got[i].token)) << "rank " << i;
  }
}

TEST(TopLogprobs, MatchesALongDoubleReference) {
  expect_top_matches_reference(log_probs(kProbs), 3);
  std::vector<float> wide;  // a spread of magnitudes, not sorted by id
  for (int i = 0; i < 1000; ++i) wide.push_back(static_cast<float>(std::sin(i * 0.7) * 12.0 + (i % 7) * 0.01));
  for (std::int32_t k : {1, 5, 20, 999, 1000}) expect_top_matches_reference(wide, k);
  const std::vector<float> big = {1000.0f, 998.0f, 999.5f};  // no overflow
  expect_top_matches_reference(big, 3);
}

TEST(TopLogprobs, TiesGoToTheSmallerId) {
  const std::vector<float> logits = {1.0f, 3.0f, 2.0f, 3.0f, 2.0f, 3.0f};
  const auto top = top_logprobs(logits, 4);
  ASSERT_EQ(top.size(), 4u);
  EXPECT_EQ(top[0].token, 1);
  EXPECT_EQ(top[1].token, 3);
  EXPECT_EQ(top[2].token, 5);
  EXPECT_EQ(top[3].token, 2);
  EXPECT_EQ(top[0].logprob, top[1].logprob);
  EXPECT_EQ(top[1].logprob, top[2].logprob);
  expect_top_matches_reference(logits, 6);
}

TEST(TopLogprobs, KIsClampedToTheVocabulary) {
  const auto logits = log_probs(kProbs);
  EXPECT_TRUE(top_logprobs(logits, 0).empty());
  EXPECT_TRUE(top_logprobs(logits, -3).empty());
  expect_top_matches_reference(logits, 5);
  expect_top_matches_reference(logits, 6);
  expect_top_matches_reference(logits, 1000);
  // Every token listed: the probabilities sum to one.
  double sum = 0.0;
  for (const TokenLogprob& t : top_logprobs(logits, 100)) sum += std::exp(t.logprob);
  EXPECT_NEAR(sum, 1.0, 1e-12);
}

TEST(TopLogprobs, MinusInfinityRanksLast) {
  const float inf = std::numeric_limits<float>::infinity();
  const std::vector<float> logits = {-inf, 0.5f, -inf, 0.5f};
  const auto top = top_logprobs(logits, 4);
  ASSERT_EQ(top.size(), 4u);
  EXPECT_EQ(top[0].token, 1);
  EXPECT_EQ(top[1].token, 3);
  EXPECT_NEAR(top[0].logprob, std::log(0.5), 1e-15);
  EXPECT_EQ(top[2].token, 0);
  EXPECT_EQ(top[3].token, 2);
  EXPECT_EQ(top[3].logprob, -std::numeric_limits<double>::infinity());
  const std::vector<float> none = {-inf, -inf};  // nothing to weigh: every logprob -inf, as log_softmax_at
  for (const TokenLogprob& t : top_logprobs(none, 2)) EXPECT_EQ(t.logprob, log_softmax_at(none, t.token));
}

// The seeded golden. With temperature 1 and no filters the candidates are kProbs sorted:
// ids 1, 3, 4, 2, 0 with running sums 0.4, 0.65, 0.85, 0.95, 1.0. Seed 42 uses Pcg32(42, 54), whose first
// outputs are the reference demo's 0xa15c02b7 0x7b47f409 0xba1d3330 0x83d2f293 0xbfa4784b 0xcbed606e, so
// by hand: u1 = (0xa15c02b7 << 21 | 0x7b47f409 >> 11) / 2^53 = 0.63031 -> in (0.4, 0.65] -> id 3;
// u2 = 0.72701 -> id 4; u3 = 0.74860 -> id 4. The remaining 17 come from an independent Python
// implementation of the same documented algorithm (PCG32 + 53-bit double + walk of sorted weights):
//   u = 0.74912 0.89891 0.19866 0.92762 0.17043 0.63360 0.80796 ...
TEST(Sampler, SeededGolden) {
  SamplerParams p;
  p.temperature = 1.0f;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  p.seed = 42;
  const auto logits = log_probs(kProbs);
  const std::vector<std::int32_t> expected = {3, 4, 4, 4, 2, 1, 2, 1, 3, 4, 3, 1, 4, 1, 1, 3, 3, 3, 2, 3};
  Sampler s(p);
  std::vector<std::int32_t> got;
  for (std::size_t i = 0; i < expected.size(); ++i) got.push_back(s.sample(logits));
  EXPECT_EQ(got, expected);

  // Temperature 0.5 squares the probabilities (0.582, 0.227, 0.145, 0.036, 0.009 sorted); same u's.
  p.temperature = 0.5f;
  Sampler s2(p);
  const std::vector<std::int32_t> expected_t05 = {3, 3, 3, 3, 4, 1, 4, 1, 3, 3, 1, 1, 3, 1, 1, 1, 1, 3, 4, 1};
  got.clear();
  for (std::size_t i = 0; i < expected_t05.size(); ++i) got.push_back(s2.sample(logits));
  EXPECT_EQ(got, expected_t05);

  p.temperature = 1.0f;
  p.seed = 1234;
  Sampler s3(p);
  const std::vector<std::int32_t> expected_1234 = {0, 2, 1, 1, 4, 2, 1, 1, 4, 1, 1, 1, 4, 1, 3, 4, 3, 2, 1, 3};
  got.clear();
  for (std::size_t i = 0; i < expected_1234.size(); ++i) got.push_back(s3.sample(logits));
  EXPECT_EQ(got, expected_1234);
}

TEST(Sampler, ResetReplaysAndRandomSeedIsReported) {
  SamplerParams p;
  p.seed = kRandomSeed;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  p.temperature = 1.0f;
  Sampler a(p);
  EXPECT_NE(a.seed(), kRandomSeed);
  std::vector<float> logits(64);
  for (std::size_t i = 0; i < logits.size(); ++i) logits[i] = static_cast<float>(i % 7) * 0.3f;
  std::vector<std::int32_t> first, second, third;
  for (int i = 0; i < 100; ++i) first.push_back(a.sample(logits));
  a.reset();
  for (int i = 0; i < 100; ++i) second.push_back(a.sample(logits));
  EXPECT_EQ(first, second);
  p.seed = a.seed();  // the reported seed reproduces the run in a fresh sampler
  Sampler b(p);
  for (int i = 0; i < 100; ++i) third.push_back(b.sample(logits));
  EXPECT_EQ(first, third);
}

TEST(Sampler, DefaultChainOnlyDrawsFromTheFilteredSet) {
  // Default llama.cpp settings: top-k 40, top-p 0.95, min-p 0.05, T 0.8. With p = [0.03, 0.4, 0.12, 0.25,
  // 0.2] top-p 0.95 keeps {1, 3, 4, 2} (running sums 0.4 0.65 0.85 0.97), so id0 is never drawn although
  // min-p alone (p >= 0.02) would keep it.
  SamplerParams p;
  p.seed = 5;
  Sampler s(p);
  const auto logits = log_probs({0.03, 0.4, 0.12, 0.25, 0.2});
  std::vector<int> seen(5, 0);
  for (int i = 0; i < 2000; ++i) ++seen[static_cast<std::size_t>(s.sample(logits))];
  EXPECT_EQ(seen[0], 0);
  for (int id : {1, 2, 3, 4}) EXPECT_GT(seen[static_cast<std::size_t>(id)], 0) << id;
  EXPECT_GT(seen[1], seen[3]);
}

TEST(Sampler, RejectsBadParams) {
  SamplerParams p;
  p.repeat_penalty = 0.0f;
  EXPECT_THROW(Sampler{p}, InvalidArgument);
  p.repeat_penalty = 1.0f;
  p.repeat_last_n = -2;
  EXPECT_THROW(Sampler{p}, InvalidArgument);
}

}  // namespace
}  // namespace g2c::sampling
