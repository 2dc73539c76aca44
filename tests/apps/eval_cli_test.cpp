// `g2c eval`: the same HellaSwag-layout tasks through a real `g2c serve` (openai: spec, scored by
// /v1/completions echo + logprobs) and in-process give the same verdict on every task, and the
// accuracy llama-perplexity --hellaswag printed (goldens in tests/inference/data with the command);
// Backend::loglikelihood through the server equals the in-process one; the CLI's files and errors.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <httplib.h>

#include <nlohmann/json.hpp>

#include "course_cli.hpp"
#include "g2c/core/error.hpp"
#include "g2c/inference/http_transport.hpp"
#include "g2c/inference/local_backend.hpp"
#include "g2c/inference/openai.hpp"
#include "g2c/model/model.hpp"

namespace g2c::test {
namespace {

const std::string kData = std::string(G2C_SOURCE_DIR) + "/tests/inference/data";
const std::string kTasks = kData + "/hellaswag_stories.txt";

double golden_final(const std::string& model) {
  std::ifstream in(kData + "/hellaswag_stories." + model + ".llama-perplexity.txt");
  std::string line, last;
  while (std::getline(in, line)) {
    if (line.rfind("200\t", 0) == 0) last = line.substr(4);
  }
  EXPECT_FALSE(last.empty()) << model;
  return std::stod(last);
}

std::vector<nlohmann::json> read_jsonl(const std::string& path) {
  std::ifstream in(path);
  std::vector<nlohmann::json> v;
  std::string line;
  while (std::getline(in, line)) v.push_back(nlohmann::json::parse(line));
  return v;
}

nlohmann::json read_json(const std::string& path) { return nlohmann::json::parse(slurp_file(path)); }

TEST(EvalCli, ServedLoglikEqualsInProcess) {
  ServeProcess serve;
  inference::OpenAIBackend remote(serve.url() + "/v1", "stories260K");
  std::shared_ptr<const model::Model> m = model::Model::load(shared_path("models/stories260K.gguf"));
  std::shared_ptr<const tokenizer::Tokenizer> t = tokenizer::Tokenizer::from_gguf(*m->gguf());
  model::ContextOptions co;
  co.n_ctx = 512;
  inference::LocalTransformerBackend local(m, t, "stories260K", std::nullopt, "local", nlohmann::json::object(), co);
  for (const auto& [ctx, cont] :
       std::vector<std::pair<std::string, std::string>>{{"Once upon a time, there was a little", " girl named Lily."},
                                                        {"Lily went to the park.", " She saw a big dog."},
                                                        {"", "Once upon a time"}}) {
    const inference::LoglikResult a = remote.loglikelihood(ctx, cont), b = local.loglikelihood(ctx, cont);
    // g2c serve returns no ids of an echoed prompt (return_tokens carries the generated ones): compare
    // the tokens' texts, after the first (BOS, whose text each side spells its own way).
    EXPECT_TRUE(a.token_ids.empty());
    ASSERT_EQ(a.tokens.size(), b.token_ids.size()) << ctx;
    for (std::size_t i = 1; i < a.tokens.size(); ++i) EXPECT_EQ(a.tokens[i], b.tokens[i]) << ctx << " token " << i;
    EXPECT_EQ(a.n_context_tokens, b.n_context_tokens) << ctx;
    EXPECT_EQ(a.n_tokens, b.n_tokens) << ctx;
    EXPECT_GT(a.n_tokens, 0) << ctx;
    EXPECT_NEAR(a.logprob, b.logprob, 1e-3) << ctx;
    EXPECT_EQ(a.is_greedy, b.is_greedy) << ctx;
    EXPECT_EQ(a.token_greedy, b.token_greedy) << ctx;
  }
}

TEST(EvalCli, HellaswagServedEqualsInProcess) {
  ServeProcess serve({"--model", shared_path("models/TinyStories-656K-Q8_0.gguf")});
  for (const std::string model : {"stories260K", "TinyStories-656K-Q8_0"}) {
    TempDir dir;
    const RunResult served = run_g2c(
        {"eval", "-b", "openai:" + model + "@" + serve.url(), "--task", kTasks, "--out", dir.file("served"), "--json"});
    ASSERT_EQ(served.code, 0) << served.err << serve.log();
    const RunResult local = run_g2c({"eval", "-b", "local:" + shared_path("models/" + model + ".gguf"), "--task",
                                     kTasks, "-c", "512", "--kv-type", "f32", "--out", dir.file("local"), "--json"});
    ASSERT_EQ(local.code, 0) << local.err;
    const nlohmann::json s = read_json(dir.file("served.json")), l = read_json(dir.file("local.json"));
    EXPECT_EQ(s, nlohmann::json::parse(served.out)) << "--json prints the summary --out writes";
    EXPECT_EQ(s["n"], 200);
    EXPECT_EQ(s["kind"], "hellaswag");
    EXPECT_EQ(s["correct"], l["correct"]) << model;
    // g2c serve keeps its KV cache in F32: on stories260K that gives llama-perplexity's accuracy too
    // (eval_test checks the F16 cache, llama.cpp's default, against both goldens).
    if (model == "stories260K") {
      EXPECT_NEAR(100.0 * s["accuracy"].get<double>(), golden_final(model), 1e-9);
    }
    const auto si = read_jsonl(dir.file("served.jsonl")), li = read_jsonl(dir.file("local.jsonl"));
    ASSERT_EQ(si.size(), 200u);
    ASSERT_EQ(li.size(), 200u);
    for (std::size_t i = 0; i < si.size(); ++i) {
      EXPECT_EQ(si[i]["task"], li[i]["task"]) << i;
      EXPECT_EQ(si[i]["pred"], li[i]["pred"]) << model << " task " << i;
    }
    EXPECT_EQ(s["latency_ms"]["calls"], 800);
  }
}

// g2c serve --kv-type f16: the served HellaSwag accuracy is the in-process F16-KV one and llama-perplexity's
// (54.00 on TinyStories-656K-Q8_0, whose near-ties flip with an F32 cache), and /api/ps names the cache type.
TEST(EvalCli, HellaswagServedF16KvEqualsInProcess) {
  ServeProcess serve({"--model", shared_path("models/TinyStories-656K-Q8_0.gguf"), "--kv-type", "f16"});
  const std::string model = "TinyStories-656K-Q8_0";
  TempDir dir;
  const RunResult served = run_g2c(
      {"eval", "-b", "openai:" + model + "@" + serve.url(), "--task", kTasks, "--out", dir.file("served"), "--json"});
  ASSERT_EQ(served.code, 0) << served.err << serve.log();
  const RunResult local = run_g2c({"eval", "-b", "local:" + shared_path("models/" + model + ".gguf"), "--task", kTasks,
                                   "-c", "512", "--kv-type", "f16", "--out", dir.file("local"), "--json"});
  ASSERT_EQ(local.code, 0) << local.err;
  const nlohmann::json s = read_json(dir.file("served.json")), l = read_json(dir.file("local.json"));
  EXPECT_EQ(s["correct"], l["correct"]);
  EXPECT_NEAR(100.0 * s["accuracy"].get<double>(), golden_final(model), 1e-9);
  const auto si = read_jsonl(dir.file("served.jsonl")), li = read_jsonl(dir.file("local.jsonl"));
  ASSERT_EQ(si.size(), li.size());
  for (std::size_t i = 0; i < si.size(); ++i) EXPECT_EQ(si[i]["pred"], li[i]["pred"]) << "task " << i;

  const inference::ParsedUrl u = inference::parse_url(serve.url());
  httplib::Client c(u.host, u.port);
  const auto ps = c.Get("/api/ps");
  ASSERT_TRUE(ps) << serve.log();
  const nlohmann::json j = nlohmann::json::parse(ps->body);
  bool listed = false;
  for (const auto& m : j["models"])
    if (m["name"] == model + ":latest") {
      listed = true;
      EXPECT_EQ(m["kv_type"], "f16") << j.dump();
    }
  EXPECT_TRUE(listed) << j.dump();
  // A bad value is a clear error naming the option.
  const RunResult bad = run_g2c({"serve", "--port", "0", "--kv-type", "q8"});
  EXPECT_NE(bad.code, 0);
  EXPECT_NE(bad.err.find("--kv-type must be f16 or f32, got 'q8'"), std::string::npos) << bad.err;
}

TEST(EvalCli, GenerationTaskFilesAndProgress) {
  TempDir dir;
  std::ofstream(dir.file("g.jsonl")) << R"({"prompt":"","answer":"Once upon a time","scorer":"contains"})"
                                     << "\n"
                                     << R"({"prompt":"","answer":"Zebra","scorer":"exact","max_tokens":4})"
                                     << "\n";
  const RunResult r = run_g2c({"eval", "-b", "local:" + shared_path("models/stories260K.gguf"), "--task",
                               dir.file("g.jsonl"), "--out", dir.file("o")});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("accuracy 50.00% (1/2), 95% CI [9.45%, 90.55%] (Wilson)"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("[eval] 2/2 acc 50.0%"), std::string::npos) << r.err;
  const auto items = read_jsonl(dir.file("o.jsonl"));
  ASSERT_EQ(items.size(), 2u);
  EXPECT_EQ(items[0]["correct"], true);
  EXPECT_EQ(items[1]["correct"], false);
  EXPECT_EQ(read_json(dir.file("o.json"))["correct"], 1);
}

TEST(EvalCli, Errors) {
  RunResult r = run_g2c({"eval", "-b", "ollama:llama3.2@http://127.0.0.1:9", "--task", kTasks});
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("no echo"), std::string::npos) << r.err;
  r = run_g2c({"eval", "-b", "local:" + shared_path("models/stories260K.gguf"), "--task", "/nonexistent.jsonl"});
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("task file not found: /nonexistent.jsonl"), std::string::npos) << r.err;
  r = run_g2c({"eval", "-b", "local:" + shared_path("models/stories260K.gguf"), "--task", kTasks, "--type", "mmlu"});
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("unknown task type 'mmlu'"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace g2c::test
