#include "g2c/inference/benchmark.hpp"

#include <gtest/gtest.h>

#include "fake_backend.hpp"
#include "g2c/core/cpu.hpp"
#include "g2c/core/error.hpp"

namespace g2c::inference {
namespace {

using testing::FakeBackend;
using testing::FakeClock;

TEST(Percentile, NearestRankMatchesTheTextbookExamples) {
  // The worked examples of the nearest-rank method (Wikipedia, "Percentile").
  std::vector<double> a = {15, 20, 35, 40, 50};
  EXPECT_EQ(percentile_nearest_rank(a, 5), 15);
  EXPECT_EQ(percentile_nearest_rank(a, 30), 20);
  EXPECT_EQ(percentile_nearest_rank(a, 40), 20);
  EXPECT_EQ(percentile_nearest_rank(a, 50), 35);
  EXPECT_EQ(percentile_nearest_rank(a, 100), 50);
  std::vector<double> b = {3, 6, 7, 8, 8, 10, 13, 15, 16, 20};
  EXPECT_EQ(percentile_nearest_rank(b, 25), 7);
  EXPECT_EQ(percentile_nearest_rank(b, 50), 8);
  EXPECT_EQ(percentile_nearest_rank(b, 75), 15);
  EXPECT_EQ(percentile_nearest_rank(b, 100), 20);
  std::vector<double> c = {3, 6, 7, 8, 8, 9, 10, 13, 15, 16, 20};
  EXPECT_EQ(percentile_nearest_rank(c, 25), 7);
  EXPECT_EQ(percentile_nearest_rank(c, 50), 9);
  EXPECT_EQ(percentile_nearest_rank(c, 75), 15);
}

TEST(Percentile, RejectsEmptyAndOutOfRange) {
  EXPECT_THROW(percentile_nearest_rank({}, 50), InvalidArgument);
  EXPECT_THROW(percentile_nearest_rank({1.0}, 0), InvalidArgument);
  EXPECT_THROW(percentile_nearest_rank({1.0}, 101), InvalidArgument);
}

std::vector<std::string> ten_prompts() {
  std::vector<std::string> p;
  for (int i = 0; i < 10; ++i) p.push_back("prompt number " + std::to_string(i));
  return p;
}

TEST(Benchmark, KnownLatenciesGiveKnownStatistics) {
  FakeClock clock;
  FakeBackend b("fake");
  b.clock = &clock;
  b.extra = {{"quantization", "Q8_0"}, {"context_length", 512}};
  // Call 1 is the warm-up (1000 ms, excluded); calls 2..11 are the measured set.
  b.latencies_ms = {1000, 50, 10, 90, 30, 70, 20, 100, 40, 80, 60};
  b.tokens = 4;
  BenchmarkOptions o;
  o.clock_ns = clock.fn();
  o.metadata = {{"note", "fake"}};
  BenchmarkResult r = benchmark(b, ten_prompts(), o);

  EXPECT_EQ(b.calls, 11);
  EXPECT_EQ(b.last_opts.max_new_tokens, 64);  // the seed's benchmark default
  EXPECT_EQ(r.n, 10);
  ASSERT_TRUE(r.warmup_latency_ms);
  EXPECT_DOUBLE_EQ(*r.warmup_latency_ms, 1000);
  EXPECT_EQ(r.per_request_latency_ms, (std::vector<double>{50, 10, 90, 30, 70, 20, 100, 40, 80, 60}));
  EXPECT_DOUBLE_EQ(r.latency_ms_total, 550);
  EXPECT_DOUBLE_EQ(r.latency_ms_mean, 55);
  EXPECT_DOUBLE_EQ(r.latency_ms_p50, 50);   // rank ceil(0.5*10) = 5
  EXPECT_DOUBLE_EQ(r.latency_ms_p90, 90);   // rank 9
  EXPECT_DOUBLE_EQ(r.latency_ms_p99, 100);  // rank ceil(9.9) = 10
  EXPECT_EQ(r.completion_tokens_total, 40);
  ASSERT_TRUE(r.tokens_per_second_overall);
  EXPECT_DOUBLE_EQ(*r.tokens_per_second_overall, 40 / 0.55);
  ASSERT_TRUE(r.per_request_tokens_per_second[1]);
  EXPECT_DOUBLE_EQ(*r.per_request_tokens_per_second[1], 4 / 0.010);
  EXPECT_EQ(r.results.size(), 10u);
  EXPECT_FALSE(r.cold_start);
  EXPECT_TRUE(r.per_request_ttft_ms.empty());

  const nlohmann::json& m = r.metadata;
  EXPECT_EQ(m["machine"]["cpu"], cpu_features().brand);
  EXPECT_EQ(m["machine"]["logical_cores"], cpu_features().logical_cores);
  EXPECT_EQ(m["backend"], "fake");
  EXPECT_EQ(m["model"], "fake-model");
  EXPECT_EQ(m["quantization"], "Q8_0");
  EXPECT_EQ(m["context_length"], 512);
  EXPECT_EQ(m["max_new_tokens"], 64);
  EXPECT_EQ(m["sampling"]["temperature"], 1.0);
  EXPECT_EQ(m["n"], 10);
  EXPECT_NE(m["percentile_method"].get<std::string>().find("nearest-rank"), std::string::npos);
  EXPECT_TRUE(m.contains("g2c_version"));
  EXPECT_TRUE(m.contains("g2c_commit"));
  EXPECT_EQ(m["note"], "fake");
  nlohmann::json j = r.to_json();
  EXPECT_EQ(j["latency_ms_p90"], 90.0);
  EXPECT_EQ(j["results"].size(), 10u);
}

TEST(Benchmark, UnknownTokenCountsGiveNoThroughput) {
  FakeClock clock;
  FakeBackend b("fake");
  b.clock = &clock;
  b.unknown_tokens = true;
  BenchmarkOptions o;
  o.clock_ns = clock.fn();
  o.warmup = false;
  BenchmarkResult r = benchmark(b, {"a", "b"}, o);
  EXPECT_EQ(b.calls, 2);
  EXPECT_FALSE(r.completion_tokens_total);
  EXPECT_FALSE(r.tokens_per_second_overall);
  EXPECT_FALSE(r.per_request_tokens_per_second[0]);
}

TEST(Benchmark, ServerTimeResidualAndPrefillVsDecodeRates) {
  FakeClock clock;
  FakeBackend b("fake");
  b.clock = &clock;
  b.latencies_ms = {50};
  b.tokens = 4;
  b.metadata = {{"server_total_ms", 45.0}, {"prompt_eval_ms", 10.0}, {"eval_ms", 40.0}};
  BenchmarkOptions o;
  o.clock_ns = clock.fn();
  o.runs = 2;
  std::vector<std::string> prompts = {"12345", "1234567890"};  // the fake counts 1 token per byte
  BenchmarkResult r = benchmark(b, prompts, o);
  EXPECT_EQ(r.n, 4);
  for (const auto& res : r.per_request_residual_ms) {
    ASSERT_TRUE(res);
    EXPECT_DOUBLE_EQ(*res, 5.0);
  }
  EXPECT_DOUBLE_EQ(*r.residual_ms_p50, 5.0);
  EXPECT_DOUBLE_EQ(*r.server_ms_p50, 45.0);
  // prompt: (5 + 10 + 5 + 10) tokens over 4 x 10 ms; generation: 16 tokens over 4 x 40 ms.
  EXPECT_DOUBLE_EQ(*r.prompt_tokens_per_second, 30 / 0.040);
  EXPECT_DOUBLE_EQ(*r.generation_tokens_per_second, 16 / 0.160);
}

// Streams its answer in 4 chunks: the first after `ttft` ms, the rest `step` ms apart.
class StreamingFake : public FakeBackend {
 public:
  using FakeBackend::FakeBackend;
  double ttft = 20, step = 5;
  InferenceResult stream(const std::string& prompt, const GenerateOptions& opts, const ChunkCallback& cb) override {
    ++calls;
    last_opts = opts;
    clock->now += static_cast<std::int64_t>(ttft * 1e6);
    cb("a");
    for (int i = 0; i < 3; ++i) {
      clock->now += static_cast<std::int64_t>(step * 1e6);
      cb("b");
    }
    InferenceResult r;
    r.prompt = prompt;
    r.completion = "abbb";
    r.completion_tokens = 4;
    return r;
  }
};

TEST(Benchmark, StreamingGivesTtftAndTimePerOutputToken) {
  FakeClock clock;
  StreamingFake b("stream");
  b.clock = &clock;
  BenchmarkOptions o;
  o.clock_ns = clock.fn();
  o.stream = true;
  BenchmarkResult r = benchmark(b, {"x", "y", "z"}, o);
  EXPECT_EQ(b.calls, 4);  // warm-up + 3
  ASSERT_EQ(r.per_request_ttft_ms.size(), 3u);
  EXPECT_DOUBLE_EQ(*r.per_request_ttft_ms[0], 20);
  EXPECT_DOUBLE_EQ(r.per_request_latency_ms[0], 35);
  EXPECT_DOUBLE_EQ(*r.per_request_tpot_ms[0], 5);  // (35 - 20) / (4 - 1)
  EXPECT_DOUBLE_EQ(*r.ttft_ms_p50, 20);
  EXPECT_DOUBLE_EQ(*r.tpot_ms_mean, 5);
  EXPECT_EQ(r.metadata["stream"], true);
}

TEST(Benchmark, ColdStartIsReportedApart) {
  FakeClock clock;
  int calls = 0;
  BenchmarkOptions o;
  o.clock_ns = clock.fn();
  auto factory = [&]() -> std::unique_ptr<Backend> {
    clock.now += 500'000'000;  // "model load": 500 ms
    auto b = std::make_unique<FakeBackend>("cold");
    b->clock = &clock;
    b->latencies_ms = {300, 40, 10, 10};  // first request 300 ms, warm-up 40, then 10 and 10
    b->call_counter = &calls;
    return b;
  };
  BenchmarkResult r = benchmark(factory, {"p", "q"}, o);
  ASSERT_TRUE(r.cold_start);
  EXPECT_DOUBLE_EQ(r.cold_start->construct_ms, 500);
  EXPECT_DOUBLE_EQ(r.cold_start->first_request_ms, 300);
  EXPECT_DOUBLE_EQ(r.cold_start->total_ms(), 800);
  EXPECT_DOUBLE_EQ(*r.warmup_latency_ms, 40);
  EXPECT_EQ(r.per_request_latency_ms, (std::vector<double>{10, 10}));  // cold start not in the percentiles
  EXPECT_EQ(r.metadata["cold_start"]["total_ms"], 800.0);
  EXPECT_EQ(calls, 4);  // first request, warm-up, two measured
}

TEST(Benchmark, RejectsAnEmptyPromptSet) {
  FakeBackend b("fake");
  EXPECT_THROW(benchmark(b, {}), InvalidArgument);
}

}  // namespace
}  // namespace g2c::inference
