// engine::speed_bench on stories260K: the protocol's rows as asked, statistics and GB/s from the samples,
// and logits hashes recomputed here by running Context::decode on the ids the protocol defines. Speed
// itself is never asserted.
#include "g2c/engine/speed_bench.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "common/test_util.hpp"
#include "g2c/core/error.hpp"
#include "g2c/kernels/kernels.hpp"
#include "g2c/model/model.hpp"

namespace g2c::engine {
namespace {

const std::string kModel = test::shared_path("models/stories260K.gguf");

// FNV-1a 64 over the logits' bytes in memory order (little-endian float bits), written out here, with
// g2c bench's offset basis (see logits_hash in speed_bench.hpp).
std::string fnv1a_hex(std::span<const float> v) {
  std::uint64_t h = 0x14650fb0739d0383ull;
  const auto* bytes = reinterpret_cast<const unsigned char*>(v.data());
  for (std::size_t i = 0; i < v.size_bytes(); ++i) h = (h ^ bytes[i]) * 0x100000001b3ull;
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

SpeedBenchParams params(std::vector<int> pp, std::vector<int> tg, int reps) {
  SpeedBenchParams p;
  p.model_path = kModel;
  p.n_prompt = std::move(pp);
  p.n_gen = std::move(tg);
  p.reps = reps;
  p.threads = 1;
  return p;
}

// A context as the protocol builds one for sizes up to n_ctx.
std::unique_ptr<model::Context> bench_context(const model::Model& m, int n_ctx) {
  model::ContextOptions co;
  co.n_ctx = n_ctx;
  co.n_batch = 512;
  co.threads = 1;
  co.kv_type = model::KvType::kF16;
  return std::make_unique<model::Context>(m, co);
}

TEST(SpeedBench, RowsAsAskedWithStatisticsFromTheirSamples) {
  const SpeedBenchResult r = speed_bench(params({16, 0, 24}, {8}, 3));
  ASSERT_EQ(r.rows.size(), 3u);  // the 0 is skipped; pp rows first
  EXPECT_EQ(r.rows[0].n_prompt, 16);
  EXPECT_EQ(r.rows[1].n_prompt, 24);
  EXPECT_EQ(r.rows[2].n_prompt, 0);
  EXPECT_EQ(r.rows[2].n_gen, 8);
  for (const SpeedBenchRow& row : r.rows) {
    ASSERT_EQ(row.samples_ts.size(), 3u);
    double sum = 0;
    for (double v : row.samples_ts) {
      EXPECT_TRUE(std::isfinite(v) && v > 0) << v;
      sum += v;
    }
    const double mean = sum / 3;
    double sq = 0;
    for (double v : row.samples_ts) sq += (v - mean) * (v - mean);
    EXPECT_NEAR(row.avg_ts, mean, 1e-9 * mean);
    EXPECT_NEAR(row.stddev_ts, std::sqrt(sq / 2), 1e-9 * mean);
    EXPECT_EQ(row.logits_hash.size(), 16u);
  }
  EXPECT_FALSE(r.rows[0].gbps.has_value());
  EXPECT_FALSE(r.rows[1].gbps.has_value());
  // Every decode step reads every weight once: GB/s = bytes per token x tokens per second.
  ASSERT_TRUE(r.rows[2].gbps.has_value());
  EXPECT_DOUBLE_EQ(*r.rows[2].gbps, static_cast<double>(r.weight_bytes) * r.rows[2].avg_ts / 1e9);

  const std::unique_ptr<model::Model> m = model::Model::load(kModel);
  EXPECT_EQ(r.model_type, m->describe());
  EXPECT_EQ(r.weight_bytes, m->weight_bytes());
  EXPECT_EQ(r.kv_bytes, bench_context(*m, 24)->kv_bytes());
  EXPECT_EQ(r.n_threads, 1);
  EXPECT_EQ(r.isa, kernels::kernels().isa_name);
  EXPECT_GT(r.load_ms, 0);
  EXPECT_GE(r.first_token_ms, r.load_ms);
  EXPECT_GT(r.peak_rss_mib, 0);
}

TEST(SpeedBench, LogitsHashesAreThoseOfTheProtocolsTokens) {
  const SpeedBenchResult r = speed_bench(params({16, 0, 24}, {8}, 2));
  ASSERT_EQ(r.rows.size(), 3u);
  const std::unique_ptr<model::Model> m = model::Model::load(kModel);
  const auto n_vocab = static_cast<std::uint32_t>(m->hparams().n_vocab);
  const std::unique_ptr<model::Context> ctx = bench_context(*m, 24);

  // pp: one mt19937(42) stream, size after size; the skipped size draws nothing.
  std::mt19937 rng(42);
  for (int row : {0, 1}) {
    const int n = r.rows[static_cast<std::size_t>(row)].n_prompt;
    std::vector<model::BatchToken> batch;
    for (int i = 0; i < n; ++i) batch.push_back({static_cast<std::int32_t>(rng() % n_vocab), 0, i, i == n - 1});
    ctx->clear(0);
    ctx->decode(batch);
    EXPECT_EQ(r.rows[static_cast<std::size_t>(row)].logits_hash, fnv1a_hex(ctx->logits(0))) << "pp" << n;
  }
  // tg: 1, then 7t + 13 mod n_vocab, one token per decode.
  ctx->clear(0);
  std::int32_t t = 1;
  for (int i = 0; i < 8; ++i) {
    ctx->decode({{t, 0, i, true}});
    t = static_cast<std::int32_t>((7 * t + 13) % static_cast<std::int32_t>(n_vocab));
  }
  EXPECT_EQ(r.rows[2].logits_hash, fnv1a_hex(ctx->logits(0)));
}

TEST(SpeedBench, OneRepetitionHasNoSpread) {
  const SpeedBenchResult r = speed_bench(params({8}, {4}, 1));
  ASSERT_EQ(r.rows.size(), 2u);
  for (const SpeedBenchRow& row : r.rows) {
    ASSERT_EQ(row.samples_ts.size(), 1u);
    EXPECT_EQ(row.avg_ts, row.samples_ts[0]);
    EXPECT_EQ(row.stddev_ts, 0.0);
  }
}

TEST(SpeedBench, BadArgumentsAreRejectedBeforeLoading) {
  // The model path does not exist: the arguments are checked first.
  auto message = [](SpeedBenchParams p) -> std::string {
    p.model_path = "/nonexistent/model.gguf";
    try {
      speed_bench(p);
    } catch (const InvalidArgument& e) {
      return e.what();
    }
    return "no InvalidArgument";
  };
  EXPECT_NE(message(params({16}, {8}, 0)).find("repetitions must be at least 1, got 0"), std::string::npos);
  EXPECT_NE(message(params({0}, {0}, 1)).find("nothing to measure"), std::string::npos);
  EXPECT_NE(message(params({}, {}, 1)).find("nothing to measure"), std::string::npos);
  EXPECT_NE(message(params({-4}, {8}, 1)).find("prompt size -4 is negative"), std::string::npos);
  EXPECT_NE(message(params({16}, {-1}, 1)).find("generation length -1 is negative"), std::string::npos);
  // Good arguments reach the loader, which names the file.
  SpeedBenchParams p = params({16}, {8}, 1);
  p.model_path = "/nonexistent/model.gguf";
  EXPECT_THROW(speed_bench(p), IoError);
}

TEST(SpeedBench, LogitsHashIsFnv1aStyleOverTheFloatBits) {
  EXPECT_EQ(logits_hash({}), "14650fb0739d0383");  // the offset basis: nothing hashed
  const std::vector<float> v = {1.0f, -2.5f, 0.0f, 3e-7f};
  EXPECT_EQ(logits_hash(v), fnv1a_hex(v));
  EXPECT_NE(logits_hash(std::vector<float>{1.0f}), logits_hash(std::vector<float>{-1.0f}));
}

}  // namespace
}  // namespace g2c::engine
