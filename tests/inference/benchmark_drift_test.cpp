// Thermal drift in benchmark(): the first and last third of the timed requests summarised apart and
// flagged past 10% (the seed's M-series note), with a scripted backend on a fake clock so the
// latencies are exact.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "g2c/inference/bench_report.hpp"
#include "g2c/inference/benchmark.hpp"
#include "inference/fake_backend.hpp"

namespace g2c::inference {
namespace {

using testing::FakeBackend;
using testing::FakeClock;

BenchmarkResult run(std::vector<double> latencies, int runs, int n_prompts = 1) {
  FakeClock clock;
  FakeBackend b("fake");
  b.clock = &clock;
  b.tokens = 10;
  b.latencies_ms = std::move(latencies);
  BenchmarkOptions o;
  o.warmup = false;
  o.runs = runs;
  o.clock_ns = clock.fn();
  return benchmark(b, std::vector<std::string>(static_cast<std::size_t>(n_prompts), "p"), o);
}

TEST(BenchmarkDrift, SlowerLastThirdIsFlagged) {
  // 9 requests: 100 ms, then 100, then 125 ms per request (tok/s 100 -> 80).
  const BenchmarkResult r = run({100, 100, 100, 100, 100, 100, 125, 125, 125}, 9);
  ASSERT_TRUE(r.drift);
  EXPECT_EQ(r.drift->first.n, 3);
  EXPECT_EQ(r.drift->last.n, 3);
  EXPECT_DOUBLE_EQ(r.drift->first.latency_ms_p50, 100.0);
  EXPECT_DOUBLE_EQ(r.drift->last.latency_ms_p50, 125.0);
  EXPECT_NEAR(*r.drift->first.tokens_per_second, 100.0, 1e-9);
  EXPECT_NEAR(*r.drift->last.tokens_per_second, 80.0, 1e-9);
  EXPECT_NEAR(r.drift->latency_p50_pct, 25.0, 1e-9);
  EXPECT_NEAR(*r.drift->tokens_per_second_pct, -20.0, 1e-9);
  EXPECT_TRUE(r.drift->flagged);
  EXPECT_TRUE(r.to_json()["drift"]["flagged"].get<bool>());
  const std::string lines = format_drift_lines({r});
  EXPECT_NE(lines.find("drift fake:fake-model: first 3 p50 100.0 ms 100.0 tok/s, last 3 p50 125.0 ms 80.0 tok/s"),
            std::string::npos)
      << lines;
  EXPECT_NE(lines.find("latency +25.0%, tok/s -20.0%: DRIFT > 10%"), std::string::npos) << lines;
}

TEST(BenchmarkDrift, TenPercentOrLessIsSteady) {
  // 10 ms -> 11 ms is +10.0%: not over the threshold. 10 requests: thirds of 3, the middle 4 ignored.
  const BenchmarkResult r = run({10, 10, 10, 50, 50, 50, 50, 11, 11, 11}, 10);
  ASSERT_TRUE(r.drift);
  EXPECT_EQ(r.drift->first.n, 3);
  EXPECT_NEAR(r.drift->latency_p50_pct, 10.0, 1e-9);
  EXPECT_FALSE(r.drift->flagged);
  EXPECT_NE(format_drift_lines({r}).find(": steady"), std::string::npos);
}

TEST(BenchmarkDrift, FasterIsDriftToo) {
  // Warming caches or a load that went away: a change either way means the numbers are not steady.
  const BenchmarkResult r = run({20, 20, 10, 10, 10, 10}, 6);
  ASSERT_TRUE(r.drift);
  EXPECT_NEAR(r.drift->latency_p50_pct, -50.0, 1e-9);
  EXPECT_TRUE(r.drift->flagged);
}

TEST(BenchmarkDrift, FewerThanThreeRequestsHaveNone) {
  const BenchmarkResult r = run({10, 20}, 2);
  EXPECT_FALSE(r.drift);
  EXPECT_TRUE(r.to_json()["drift"].is_null());
  EXPECT_EQ(format_drift_lines({r}), "");
}

TEST(BenchmarkDrift, UnknownTokenCountsGiveLatencyOnly) {
  const auto d = thermal_drift({10, 10, 10}, {std::nullopt, 4, 4});
  ASSERT_TRUE(d);
  EXPECT_FALSE(d->first.tokens_per_second);
  EXPECT_FALSE(d->tokens_per_second_pct);
  EXPECT_FALSE(d->flagged);
}

}  // namespace
}  // namespace g2c::inference
