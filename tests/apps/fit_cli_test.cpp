// `g2c fit` and its arithmetic (model/memory_fit.hpp). Independent checks: the KV-cache size llama.cpp
// prints for the same model, context and cache type (tests/apps/data/llama_cpp_kv_sizes.json, with the
// command that printed it), and the seed's "which model fits which Mac" table. The recipe arithmetic is
// checked against the bytes the quantizer really writes (a synthesized file).
#include <gtest/gtest.h>

#include <cmath>
#include <regex>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "apps/course_cli.hpp"
#include "common/test_util.hpp"
#include "g2c/model/memory_fit.hpp"
#include "g2c/model/model.hpp"
#include "g2c/model/synth.hpp"

namespace g2c {
namespace {

using test::RunResult;
using test::shared_path;

nlohmann::json fit_json(std::vector<std::string> args) {
  args.insert(args.begin(), "fit");
  args.push_back("--json");
  const RunResult o = test::run_g2c(args);
  EXPECT_EQ(o.code, 0) << o.err;
  return nlohmann::json::parse(o.out);
}

TEST(FitCli, KvBytesEqualWhatLlamaCppPrints) {
  const nlohmann::json golden =
      test::load_json(std::string(G2C_SOURCE_DIR) + "/tests/apps/data/llama_cpp_kv_sizes.json");
  ASSERT_GE(golden["cases"].size(), 4u);
  for (const auto& c : golden["cases"]) {
    const nlohmann::json j = fit_json({"--model", shared_path("models/" + c["model"].get<std::string>()), "--ctx",
                                       std::to_string(c["n_ctx"].get<int>()), "--kv-type", c["type"]});
    // llama.cpp prints MiB with two decimals.
    const double mib = j["kv_bytes"].get<double>() / (1024.0 * 1024.0);
    EXPECT_NEAR(mib, c["kv_self_mib"].get<double>(), 0.005) << c.dump();
    EXPECT_NEAR(mib / 2, c["k_mib"].get<double>(), 0.005) << c.dump();
  }
  // Real shapes (synthesized with g2c synth, run in llama.cpp): the cache depends on the shape alone.
  ASSERT_GE(golden["shape_cases"].size(), 2u);
  for (const auto& c : golden["shape_cases"]) {
    const nlohmann::json j = fit_json({"--like", c["like"].get<std::string>(), "--ctx",
                                       std::to_string(c["n_ctx"].get<int>()), "--kv-type", c["type"]});
    EXPECT_NEAR(j["kv_bytes"].get<double>() / (1024.0 * 1024.0), c["kv_self_mib"].get<double>(), 0.005) << c.dump();
  }
}

TEST(FitArithmetic, KvFormulaAndTheEngineAgree) {
  // 2 · n_ctx · n_layer · n_head_kv · head_dim · bytes: TinyLlama-1.1B at 2048 f16 is 44 MiB.
  EXPECT_EQ(model::kv_cache_bytes(2048, 22, 4, 64, model::KvType::kF16), 44ull << 20);
  EXPECT_EQ(model::kv_cache_bytes(4096, 32, 32, 128, model::KvType::kF16), 2048ull << 20);  // llama-2-7b: 2 GiB
  EXPECT_EQ(model::kv_cache_bytes(512, 5, 4, 8, model::KvType::kF32, 3), 3ull * 2 * 512 * 5 * 4 * 8 * 4);
  // What the Context allocates for the same options.
  const std::string path = shared_path("models/TinyStories-656K-Q8_0.gguf");
  const auto m = model::Model::load(path);
  for (auto kv : {model::KvType::kF16, model::KvType::kF32}) {
    model::ContextOptions co;
    co.n_ctx = 384, co.n_seq = 2, co.kv_type = kv, co.threads = 1;
    model::Context ctx(*m, co);
    model::FitOptions fo;
    fo.n_ctx = 384, fo.n_seq = 2, fo.kv_type = kv, fo.threads = 1;
    const model::MemoryFit f = model::fit_model_file(path, fo);
    EXPECT_EQ(f.kv_bytes, ctx.kv_bytes());
    EXPECT_EQ(f.weight_bytes, m->weight_bytes());
    EXPECT_GT(f.scratch_bytes, 0u);
    EXPECT_EQ(f.total_bytes(), f.weight_bytes + f.kv_bytes + f.scratch_bytes);
  }
}

TEST(FitArithmetic, RecipeBytesEqualTheSynthesizedFile) {
  test::TempDir dir;
  for (const char* type : {"Q4_K_M", "Q8_0", "F16"}) {
    const auto shape = model::synth_shape("tiny-test");
    ASSERT_TRUE(shape);
    const RunResult s = test::run_g2c(
        {"synth", "--like", "tiny-test", "--type", type, "-q", "-t", "1", "-o", dir.file(std::string(type) + ".gguf")});
    ASSERT_EQ(s.code, 0) << s.err;
    const model::MemoryFit from_file = model::fit_model_file(dir.file(std::string(type) + ".gguf"));
    const model::MemoryFit from_recipe = model::fit_shape(*shape, *model::file_type_from_name(type));
    EXPECT_EQ(from_recipe.weight_bytes, from_file.weight_bytes) << type;
    EXPECT_EQ(from_recipe.n_params, from_file.n_params) << type;
  }
}

TEST(FitCli, ShapeAndFileOutput) {
  const RunResult o = test::run_g2c({"fit", "--like", "llama-3.2-3b", "--type", "Q4_K_M", "--ctx", "8192"});
  ASSERT_EQ(o.code, 0) << o.err;
  for (const char* s : {"weights", "KV cache", "scratch", "total", "n_head_kv 8", "head_dim 128", "n_ctx 8192"})
    EXPECT_NE(o.out.find(s), std::string::npos) << s << "\n" << o.out;
  EXPECT_NE(o.out.find("this machine"), std::string::npos) << o.out;  // Linux: MemAvailable
  // --parallel multiplies the KV cache only.
  const nlohmann::json one = fit_json({"--like", "qwen2.5-0.5b", "--ctx", "1024"});
  const nlohmann::json four = fit_json({"--like", "qwen2.5-0.5b", "--ctx", "1024", "--parallel", "4"});
  EXPECT_EQ(four["kv_bytes"].get<std::uint64_t>(), 4 * one["kv_bytes"].get<std::uint64_t>());
  EXPECT_EQ(four["weight_bytes"], one["weight_bytes"]);
  // f32 doubles it.
  const nlohmann::json f32 = fit_json({"--like", "qwen2.5-0.5b", "--ctx", "1024", "--kv-type", "f32"});
  EXPECT_EQ(f32["kv_bytes"].get<std::uint64_t>(), 2 * one["kv_bytes"].get<std::uint64_t>());
}

TEST(FitCli, BadInputIsOneLine) {
  for (const std::vector<std::string>& args : {std::vector<std::string>{"fit", "--like", "gpt-5"},
                                               {"fit"},
                                               {"fit", "--like", "llama-2-7b", "--type", "Q9"},
                                               {"fit", "--like", "llama-2-7b", "--kv-type", "q8"},
                                               {"fit", "--model", "/nonexistent.gguf"}}) {
    const RunResult o = test::run_g2c(args);
    EXPECT_EQ(o.code, 1) << args.back();
    EXPECT_EQ(std::count(o.err.begin(), o.err.end(), '\n'), 1) << o.err;
  }
  EXPECT_NE(test::run_g2c({"fit", "--like", "gpt-5"}).err.find("llama-3.2-3b"), std::string::npos);
}

// The seed's M-series table: 8 GB runs 1B-3B Q4 only; 16 GB is comfortable up to 7B Q4; 32 GB takes
// 8B Q4 with headroom.
TEST(FitCli, TableAgreesWithTheSeed) {
  const RunResult o = test::run_g2c({"fit", "--table"});
  ASSERT_EQ(o.code, 0) << o.err;
  EXPECT_NE(o.out.find("2/3 of RAM"), std::string::npos) << o.out;  // the rule is stated
  std::map<std::string, std::vector<std::string>> rows;
  std::istringstream in(o.out);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::vector<std::string> cells;
    for (std::string c; ls >> c;) cells.push_back(c);
    if (cells.size() == 10) rows[cells[0]] = std::vector<std::string>(cells.end() - 5, cells.end());
  }
  for (const auto& s : model::synth_shapes()) EXPECT_TRUE(rows.count(s.like)) << s.like << "\n" << o.out;
  EXPECT_EQ(rows["llama-3.2-1b"][0], "ok") << o.out;
  EXPECT_EQ(rows["qwen2.5-1.5b"][0], "ok") << o.out;
  EXPECT_NE(rows["llama-2-7b"][0], "ok") << o.out;
  EXPECT_EQ(rows["llama-2-7b"][1], "ok") << o.out;
  EXPECT_EQ(rows["llama-3-8b"][2], "ok") << o.out;
  EXPECT_EQ(rows["qwen2.5-7b"][4], "ok") << o.out;
}

}  // namespace
}  // namespace g2c
