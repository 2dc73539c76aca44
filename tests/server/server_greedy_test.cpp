// Greedy decoding through `g2c serve`: four concurrent streamed /v1/completions with token-id prompts on
// one model (so the scheduler batches them), each continuing llama.cpp's (or the float64 reference's)
// greedy ids from a different point. Under G2C_ISA=ref every stream is also bit-identical to
// engine::generate() run alone (what `g2c run` calls): same ids, same log-probabilities to the last bit.
#include <gtest/gtest.h>

#include <algorithm>
#include <future>
#include <string>
#include <vector>

#include "common/goldens.hpp"
#include "g2c/engine/generate.hpp"
#include "g2c/engine/open_model.hpp"
#include "g2c/kernels/kernels.hpp"
#include "serve_fixture.hpp"

namespace g2c {
namespace {

using nlohmann::json;

struct Golden {
  std::string file;  // under ../shared
  std::vector<std::int32_t> prompt;
  std::vector<std::int32_t> greedy;
};

std::vector<Golden> goldens() {
  std::vector<Golden> out;
  out.push_back({"models/stories260K.gguf", {1}, test::kStories260KGreedyIds});
  // ../shared/models/README.md, "Reference outputs", the first 32 of the 65 ids.
  out.push_back({"models/TinyStories-656K-Q8_0.gguf", {1}, {147,  201,  282, 215, 286,  598, 1662, 356, 499,  826, 1363,
                                                            1145, 1652, 615, 242, 1482, 951, 628,  499, 826,  872, 921,
                                                            318,  385,  628, 499, 826,  617, 242,  198, 1047, 425}});
  const json g = test::load_json(test::shared_path("arch-goldens/goldens.json"));
  for (const json& m : g["models"]) {
    if (m["weight_type"] != "F32") continue;  // quantized goldens are teacher-forced (model tests), not greedy
    out.push_back({"arch-goldens/" + m["file"].get<std::string>(), m["input_ids"].get<std::vector<std::int32_t>>(),
                   m["greedy_ids"].get<std::vector<std::int32_t>>()});
  }
  return out;
}

struct StreamOut {
  int status = 0;
  std::vector<std::int32_t> ids;
  std::vector<double> logprobs;
  std::string finish;
  bool done = false;
};

StreamOut run_stream(test::ServeFixture& srv, const std::string& model, const std::vector<std::int32_t>& prompt,
                     int n) {
  const json body = {{"model", model},     {"prompt", prompt},      {"max_tokens", n}, {"temperature", 0},
                     {"ignore_eos", true}, {"return_tokens", true}, {"logprobs", 0},   {"stream", true}};
  StreamOut out;
  for (const std::string& line : srv.stream_lines("/v1/completions", body, 0, &out.status)) {
    if (line.rfind("data: ", 0) != 0) continue;
    const std::string data = line.substr(6);
    if (data == "[DONE]") {
      out.done = true;
      continue;
    }
    const json c = json::parse(data);
    const json& ch = c["choices"].at(0);
    for (const json& id : ch["tokens"]) out.ids.push_back(id.get<std::int32_t>());
    if (ch["logprobs"].is_object())
      for (const json& lp : ch["logprobs"]["token_logprobs"]) out.logprobs.push_back(lp.get<double>());
    if (!ch["finish_reason"].is_null()) out.finish = ch["finish_reason"];
  }
  return out;
}

TEST(ServerGreedy, FourConcurrentStreamsGiveTheGoldenIds) {
  const bool ref = std::string(kernels::kernels().isa_name) == "ref";
  for (const Golden& g : goldens()) {
    SCOPED_TRACE(g.file);
    test::ServeFixture srv({.models = {g.file}, .parallel = 4, .ctx = 256});
    const std::string model = std::filesystem::path(g.file).stem().string();
    std::vector<std::future<StreamOut>> futures;
    for (int k = 0; k < 4; ++k) {
      std::vector<std::int32_t> prompt = g.prompt;
      prompt.insert(prompt.end(), g.greedy.begin(), g.greedy.begin() + k);
      const int n = static_cast<int>(g.greedy.size()) - k;
      futures.push_back(
          std::async(std::launch::async, [&srv, model, prompt, n] { return run_stream(srv, model, prompt, n); }));
    }
    std::vector<StreamOut> outs;
    for (auto& f : futures) outs.push_back(f.get());
    for (int k = 0; k < 4; ++k) {
      SCOPED_TRACE("stream " + std::to_string(k));
      const StreamOut& o = outs[static_cast<std::size_t>(k)];
      EXPECT_EQ(o.status, 200);
      EXPECT_TRUE(o.done);
      EXPECT_EQ(o.finish, "length");
      const std::vector<std::int32_t> want(g.greedy.begin() + k, g.greedy.end());
      EXPECT_EQ(o.ids, want);
      ASSERT_EQ(o.logprobs.size(), o.ids.size());
    }
    if (!ref) continue;
    // The reference table: each stream equals generate() alone, bit for bit.
    const engine::OpenedModel m = engine::open_model(test::shared_path(g.file));
    for (int k = 0; k < 4; ++k) {
      model::ContextOptions co;
      co.n_ctx = static_cast<std::int32_t>(std::min<std::int64_t>(256, m.model->hparams().n_ctx_train));
      co.threads = 1;
      model::Context ctx(*m.model, co);
      engine::GenerateParams p;
      p.sampling.temperature = 0;
      p.ignore_eos = true;
      p.logprobs = true;
      p.max_tokens = static_cast<std::int32_t>(g.greedy.size()) - k;
      std::vector<std::int32_t> prompt = g.prompt;
      prompt.insert(prompt.end(), g.greedy.begin(), g.greedy.begin() + k);
      const engine::GenerateResult r = engine::generate(ctx, *m.tokenizer, prompt, p);
      EXPECT_EQ(outs[static_cast<std::size_t>(k)].ids, r.tokens) << "stream " << k;
      EXPECT_EQ(outs[static_cast<std::size_t>(k)].logprobs, r.logprobs) << "stream " << k;
    }
  }
}

TEST(ServerGreedy, StoriesTextMatchesTheReference) {
  test::ServeFixture srv({.models = {"models/stories260K.gguf"}});
  const test::HttpReply r =
      srv.post("/api/generate", {{"model", "stories260K"}, {"prompt", ""}, {"raw", true}, {"stream", false}});
  // An empty prompt only loads the model (Ollama's rule); the text golden goes through /v1/completions.
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json()["done_reason"], "load");
  const test::HttpReply c =
      srv.post("/v1/completions",
               {{"model", "stories260K"}, {"prompt", json::array({1})}, {"max_tokens", 65}, {"temperature", 0}});
  ASSERT_EQ(c.status, 200) << c.body;
  EXPECT_EQ(c.json()["choices"][0]["text"], test::kStories260KGreedyText);
}

}  // namespace
}  // namespace g2c
