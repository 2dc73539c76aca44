// ../shared/arch-goldens: tiny random-weight qwen2, gpt2, llama (Llama 3 rope_freqs, tied output) and
// quantized llama models with llama.cpp's logits (goldens.json). Pass criteria are the README's
// "Suggested pass criteria": F32 models within 1e-3 * max|logit| per logit, exact argmax at every
// position and exact greedy ids; quantized models (float activations here, llama.cpp rounds
// activations to Q8_0/Q8_K) within 6e-2 * max|logit|, checked by teacher forcing.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/test_util.hpp"
#include "g2c/model/model.hpp"
#include "g2c/model/weights.hpp"

namespace g2c::model {
namespace {

using nlohmann::json;
const std::string kDir = test::shared_path("arch-goldens/");

const json& goldens() {
  static const json j = test::load_json(kDir + "goldens.json");
  return j;
}

const json& model_entry(const std::string& name) {
  for (const json& m : goldens()["models"])
    if (m["name"] == name) return m;
  throw std::runtime_error("no golden for " + name);
}

std::int32_t argmax(std::span<const float> v) {
  return static_cast<std::int32_t>(std::max_element(v.begin(), v.end()) - v.begin());
}

struct Run {
  std::vector<std::vector<float>> logits;  // [n_tokens][n_vocab]
};

// All tokens in one batch at positions 0..n-1, logits at every position (as the goldens' prompt pass).
Run run_all(const Model& m, const std::vector<std::int32_t>& ids) {
  ContextOptions co;
  co.n_ctx = static_cast<std::int32_t>(std::min<std::int64_t>(256, m.hparams().n_ctx_train));
  co.threads = 2;
  Context ctx(m, co);
  std::vector<BatchToken> batch;
  for (std::size_t i = 0; i < ids.size(); ++i) batch.push_back({ids[i], 0, static_cast<std::int32_t>(i), true});
  ctx.decode(batch);
  Run r;
  for (std::int32_t i = 0; i < ctx.n_outputs(); ++i) {
    auto l = ctx.logits(i);
    r.logits.emplace_back(l.begin(), l.end());
  }
  return r;
}

// Per reported position: each golden top-10 logit within rel_tol * L, top-10 order where the golden
// gaps exceed the tolerance, and the sum / sum_sq criteria. Returns the largest |diff| / L seen.
double check_positions(const json& positions, const Run& r, double rel_tol, double sumsq_rel_tol, bool check_order,
                       const std::string& what) {
  double worst = 0.0;
  for (const json& p : positions) {
    const int pos = p["pos"];
    SCOPED_TRACE(what + " pos " + std::to_string(pos));
    const auto& l = r.logits.at(static_cast<std::size_t>(pos));
    double L = 0.0;
    for (float v : l) L = std::max(L, std::fabs(static_cast<double>(v)));
    const double tol = rel_tol * L;
    const json& top = p["top10"];
    std::vector<std::int32_t> order(l.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = static_cast<std::int32_t>(i);
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return l[a] > l[b]; });
    for (std::size_t i = 0; i < top.size(); ++i) {
      const int id = top[i][0];
      const double want = top[i][1];
      const double diff = std::fabs(l[static_cast<std::size_t>(id)] - want);
      worst = std::max(worst, diff / L);
      EXPECT_LE(diff, tol) << "id " << id << " got " << l[static_cast<std::size_t>(id)] << " want " << want;
      if (!check_order) continue;
      const double gap_prev = i > 0 ? std::fabs(want - static_cast<double>(top[i - 1][1])) : 1e9;
      const double gap_next = i + 1 < top.size() ? std::fabs(want - static_cast<double>(top[i + 1][1])) : 1e9;
      if (gap_prev > tol && gap_next > tol) {
        EXPECT_EQ(order[i], id) << "rank " << i;
      }
    }
    double sum = 0.0, sum_sq = 0.0;
    for (float v : l) {
      sum += v;
      sum_sq += static_cast<double>(v) * v;
    }
    const double g_sum = p["sum"], g_sq = p["sum_sq"];
    EXPECT_LE(std::fabs(sum - g_sum), rel_tol * std::sqrt(static_cast<double>(l.size()) * g_sq) + 1e-9);
    EXPECT_LE(std::fabs(sum_sq - g_sq), sumsq_rel_tol * g_sq);
  }
  return worst;
}

std::vector<std::int32_t> ids_of(const json& j) { return j.get<std::vector<std::int32_t>>(); }

// F32 models: prompt pass, argmax everywhere, then greedy decoding with the cache (one token per call).
void check_f32(const std::string& name, const json& g) {
  auto m = Model::load(kDir + model_entry(name)["file"].get<std::string>());
  const auto input = ids_of(g["input_ids"]);
  Run r = run_all(*m, input);
  const double worst = check_positions(g["positions"], r, 1e-3, 1e-3, true, name);
  std::vector<std::int32_t> am;
  for (const auto& l : r.logits) am.push_back(argmax(l));
  EXPECT_EQ(am, ids_of(g["argmax_per_position"])) << name;

  const auto want = ids_of(g["greedy_ids"]);
  const auto top1 = g["greedy_top1_logit"].get<std::vector<double>>();
  ContextOptions co;
  co.n_ctx = static_cast<std::int32_t>(std::min<std::int64_t>(256, m->hparams().n_ctx_train));
  co.threads = 2;
  Context ctx(*m, co);
  std::vector<BatchToken> batch;
  for (std::size_t i = 0; i < input.size(); ++i)
    batch.push_back({input[i], 0, static_cast<std::int32_t>(i), i + 1 == input.size()});
  ctx.decode(batch);
  std::vector<std::int32_t> got;
  auto pos = static_cast<std::int32_t>(input.size());
  for (std::size_t i = 0; i < want.size(); ++i) {
    auto l = ctx.logits(0);
    const std::int32_t id = argmax(l);
    got.push_back(id);
    EXPECT_NEAR(l[static_cast<std::size_t>(id)], top1[i], 1e-3 * std::fabs(top1[i])) << name << " greedy step " << i;
    ctx.decode({{id, 0, pos++, true}});
  }
  EXPECT_EQ(got, want) << name;
  std::printf("[ golden   ] %-22s max |dlogit|/L over reported positions %.2e\n", name.c_str(), worst);
}

TEST(ArchGoldens, Qwen2TinyF32) { check_f32("qwen2-tiny", model_entry("qwen2-tiny")); }
TEST(ArchGoldens, Gpt2TinyF32) { check_f32("gpt2-tiny", model_entry("gpt2-tiny")); }
TEST(ArchGoldens, Llama3RopeTinyF32) { check_f32("llama3rope-tiny", model_entry("llama3rope-tiny")); }
TEST(ArchGoldens, Llama3RopeTinyLongInput) {
  check_f32("llama3rope-tiny", model_entry("llama3rope-tiny")["long_input"]);
}

// Quantized: teacher forcing input_ids + greedy_ids[:-1] in one batch; the logit of each greedy id
// at its step within 6e-2 * L of llama.cpp's, and the reported positions within the same bound.
void check_quantized(const std::string& name) {
  const json& g = model_entry(name);
  auto m = Model::load(kDir + g["file"].get<std::string>());
  auto ids = ids_of(g["input_ids"]);
  const std::size_t n_prompt = ids.size();
  const auto greedy = ids_of(g["greedy_ids"]);
  const auto top1 = g["greedy_top1_logit"].get<std::vector<double>>();
  ids.insert(ids.end(), greedy.begin(), greedy.end() - 1);
  Run r = run_all(*m, ids);
  const double worst = check_positions(g["positions"], r, 6e-2, 2e-2, false, name);
  int agree = 0;
  double worst_greedy = 0.0;
  for (std::size_t i = 0; i < greedy.size(); ++i) {
    const auto& l = r.logits[n_prompt - 1 + i];
    double L = 0.0;
    for (float v : l) L = std::max(L, std::fabs(static_cast<double>(v)));
    const double diff = std::fabs(l[static_cast<std::size_t>(greedy[i])] - top1[i]);
    worst_greedy = std::max(worst_greedy, diff / L);
    EXPECT_LE(diff, 6e-2 * L) << name << " step " << i;
    agree += argmax(l) == greedy[i];
  }
  std::printf("[ golden   ] %-22s max |dlogit|/L %.2e (reported) %.2e (greedy steps), argmax agrees %d/%zu\n",
              name.c_str(), worst, worst_greedy, agree, greedy.size());
}

TEST(ArchGoldens, LlamaGqaQ4_0) { check_quantized("llama-gqa-Q4_0"); }
TEST(ArchGoldens, LlamaGqaQ8_0) { check_quantized("llama-gqa-Q8_0"); }
TEST(ArchGoldens, LlamaGqaQ4_K) { check_quantized("llama-gqa-Q4_K"); }
TEST(ArchGoldens, LlamaGqaQ6_K) { check_quantized("llama-gqa-Q6_K"); }

TEST(ArchGoldens, ConventionsBound) {
  auto q = Model::load(kDir + "qwen2-tiny-f32.gguf");
  EXPECT_EQ(q->hparams().rope_type, RopeType::kNeox);
  EXPECT_FLOAT_EQ(q->hparams().rope_freq_base, 1e6f);
  EXPECT_TRUE(q->weights().layers[0].bk);
  auto g = Model::load(kDir + "gpt2-tiny-f32.gguf");
  EXPECT_EQ(g->hparams().rope_type, RopeType::kNone);
  EXPECT_EQ(g->hparams().norm_type, NormType::kLayer);
  EXPECT_TRUE(g->weights().layers[1].wqkv);
  EXPECT_THROW(Context(*g, {.n_ctx = 129}), InvalidArgument);  // 128 learned positions
  auto l = Model::load(kDir + "llama3rope-tiny-f32.gguf");
  EXPECT_TRUE(l->weights().tied_output);
  ASSERT_TRUE(l->weights().rope_freqs);
  EXPECT_FLOAT_EQ(l->weights().rope_freqs.f32()[15], 32.0f);
}

}  // namespace
}  // namespace g2c::model
