// Every route of `g2c serve` answers in its API's shape (../shared/docs/api-compat.md): the fields the
// official clients read, status codes, content types, streaming framing, CORS.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <thread>

#include "g2c/inference/ollama.hpp"
#include "g2c/inference/openai.hpp"
#include "serve_fixture.hpp"

namespace g2c {
namespace {

using nlohmann::json;

const json kGreedy = {{"temperature", 0}, {"num_predict", 12}};

class ServerApi : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    srv_ = new test::ServeFixture({.models = {"models/stories260K.gguf", "models/TinyStories-656K-Q8_0.gguf"},
                                   .parallel = 4,
                                   .ctx = 256,
                                   .models_dir = true});
  }
  static void TearDownTestSuite() {
    delete srv_;
    srv_ = nullptr;
  }
  static test::ServeFixture* srv_;
};
test::ServeFixture* ServerApi::srv_ = nullptr;

double norm(const json& v) {
  double s = 0;
  for (const json& x : v) s += x.get<double>() * x.get<double>();
  return std::sqrt(s);
}

TEST_F(ServerApi, RootVersionTags) {
  test::HttpReply r = srv_->get("/");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "Ollama is running");
  EXPECT_EQ(srv_->head("/").status, 200);
  r = srv_->get("/api/version");
  ASSERT_EQ(r.status, 200);
  EXPECT_NE(r.content_type.find("application/json"), std::string::npos);
  EXPECT_TRUE(r.json()["version"].is_string());
  r = srv_->get("/api/tags");
  ASSERT_EQ(r.status, 200);
  const json models = r.json()["models"];
  ASSERT_EQ(models.size(), 2u) << r.body;
  std::vector<std::string> names;
  for (const json& m : models) {
    names.push_back(m["name"]);
    EXPECT_EQ(m["name"], m["model"]);
    EXPECT_EQ(m["digest"].get<std::string>().size(), 64u);
    EXPECT_EQ(m["details"]["format"], "gguf");
    EXPECT_EQ(m["details"]["family"], "llama");
    EXPECT_GT(m["size"].get<std::int64_t>(), 0);
  }
  EXPECT_NE(std::find(names.begin(), names.end(), "stories260K:latest"), names.end());
  EXPECT_NE(std::find(names.begin(), names.end(), "TinyStories-656K-Q8_0:latest"), names.end());
  EXPECT_EQ(srv_->get("/nope").status, 404);
  EXPECT_EQ(srv_->get("/nope").body, "404 page not found");
}

TEST_F(ServerApi, ShowHasModelInfoAndCapabilities) {
  test::HttpReply r = srv_->post("/api/show", {{"model", "stories260K"}});
  ASSERT_EQ(r.status, 200) << r.body;
  const json j = r.json();
  EXPECT_EQ(j["model_info"]["general.architecture"], "llama");
  EXPECT_EQ(j["model_info"]["llama.embedding_length"], 64);
  EXPECT_TRUE(j["model_info"].contains("llama.context_length"));
  EXPECT_TRUE(j["capabilities"].is_array());
  EXPECT_EQ(j["details"]["quantization_level"], "F32");
  EXPECT_TRUE(j["model_info"]["tokenizer.ggml.tokens"].is_null());  // not verbose: the big arrays left out
  r = srv_->post("/api/show", {{"name", "stories260K:latest"}, {"verbose", true}});
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.json()["model_info"]["tokenizer.ggml.tokens"].size(), 512u);
  r = srv_->post("/api/show", {{"model", "nope"}});
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.json()["error"], "model 'nope' not found");
}

TEST_F(ServerApi, GenerateStreamsNdjsonEndingWithMetrics) {
  int status = 0;
  const auto lines = srv_->stream_lines(
      "/api/generate", {{"model", "stories260K"}, {"prompt", "Once upon a time"}, {"options", kGreedy}}, 0, &status);
  ASSERT_EQ(status, 200);
  ASSERT_GE(lines.size(), 2u);
  std::string text;
  for (std::size_t i = 0; i + 1 < lines.size(); ++i) {
    const json c = json::parse(lines[i]);
    EXPECT_FALSE(c["done"].get<bool>());
    EXPECT_EQ(c["model"], "stories260K");
    text += c["response"].get<std::string>();
  }
  const json f = json::parse(lines.back());
  EXPECT_TRUE(f["done"].get<bool>());
  EXPECT_EQ(f["done_reason"], "length");
  EXPECT_EQ(f["eval_count"], 12);
  for (const char* k :
       {"total_duration", "load_duration", "prompt_eval_count", "prompt_eval_duration", "eval_count", "eval_duration"})
    EXPECT_TRUE(f[k].is_number_integer()) << k;
  EXPECT_GE(f["total_duration"].get<std::int64_t>(), f["eval_duration"].get<std::int64_t>());
  EXPECT_TRUE(f["context"].is_array());
  // The same request not streamed gives the same greedy text in one object.
  const test::HttpReply r =
      srv_->post("/api/generate",
                 {{"model", "stories260K"}, {"prompt", "Once upon a time"}, {"options", kGreedy}, {"stream", false}});
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.json()["response"], text);
  EXPECT_FALSE(text.empty());
  // context continues the exchange: the ids are prompt + answer.
  const json ctx = r.json()["context"];
  EXPECT_EQ(ctx.size(), r.json()["prompt_eval_count"].get<std::size_t>() + 12);
}

TEST_F(ServerApi, ChatRendersAndAnswers) {
  const json body = {{"model", "stories260K"},
                     {"messages", json::array({{{"role", "user"}, {"content", "Tell me a story."}}})},
                     {"options", kGreedy},
                     {"stream", false}};
  const test::HttpReply r = srv_->post("/api/chat", body);
  ASSERT_EQ(r.status, 200) << r.body;
  const json j = r.json();
  EXPECT_EQ(j["message"]["role"], "assistant");
  EXPECT_TRUE(j["message"]["content"].is_string());
  EXPECT_TRUE(j["done"].get<bool>());
  // "User: Tell me a story.\n\nAssistant:" tokenized with BOS.
  EXPECT_GT(j["prompt_eval_count"].get<int>(), 5);
  json s = body;
  s["stream"] = true;
  const auto lines = srv_->stream_lines("/api/chat", s);
  ASSERT_FALSE(lines.empty());
  std::string text;
  for (const std::string& l : lines) text += json::parse(l)["message"]["content"].get<std::string>();
  EXPECT_EQ(text, j["message"]["content"]);
  EXPECT_TRUE(json::parse(lines.back())["done"].get<bool>());
}

TEST_F(ServerApi, EmptyPromptLoadsAndKeepAliveZeroUnloads) {
  test::HttpReply r = srv_->post("/api/generate", {{"model", "TinyStories-656K-Q8_0"}});
  ASSERT_EQ(r.status, 200);
  // A num_ctx above --ctx runs clamped, and /api/ps says so.
  r = srv_->post("/api/generate", {{"model", "TinyStories-656K-Q8_0"},
                                   {"prompt", "Once"},
                                   {"stream", false},
                                   {"options", {{"num_ctx", 4096}, {"num_predict", 2}}}});
  ASSERT_EQ(r.status, 200);
  r = srv_->post("/api/generate", {{"model", "TinyStories-656K-Q8_0"}});
  EXPECT_EQ(r.json()["done_reason"], "load");
  const json ps = srv_->get("/api/ps").json();
  bool listed = false;
  for (const json& m : ps["models"])
    if (m["name"] == "TinyStories-656K-Q8_0:latest") {
      listed = true;
      EXPECT_EQ(m["context_length"], 256);
      EXPECT_EQ(m["num_ctx_requested_max"], 4096);
      EXPECT_TRUE(m["expires_at"].is_string());
    }
  EXPECT_TRUE(listed) << ps.dump();
  r = srv_->post("/api/generate", {{"model", "TinyStories-656K-Q8_0"}, {"keep_alive", 0}});
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.json()["done_reason"], "unload");
  bool gone = false;
  for (int i = 0; i < 50 && !gone; ++i) {
    gone = true;
    const json now = srv_->get("/api/ps").json();
    for (const json& m : now["models"])
      if (m["name"] == "TinyStories-656K-Q8_0:latest") gone = false;
    if (!gone) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_TRUE(gone);
}

TEST_F(ServerApi, EmbedIsUnitLengthAndOpenAIBase64MatchesFloats) {
  test::HttpReply r =
      srv_->post("/api/embed", {{"model", "stories260K"}, {"input", json::array({"Once upon", "a cat"})}});
  ASSERT_EQ(r.status, 200) << r.body;
  const json e = r.json()["embeddings"];
  ASSERT_EQ(e.size(), 2u);
  EXPECT_EQ(e[0].size(), 64u);
  EXPECT_NEAR(norm(e[0]), 1.0, 1e-5);
  EXPECT_NE(e[0], e[1]);
  r = srv_->post("/api/embeddings", {{"model", "stories260K"}, {"prompt", "Once upon"}});
  ASSERT_EQ(r.status, 200);
  const json legacy = r.json()["embedding"];
  ASSERT_EQ(legacy.size(), 64u);
  // Same direction as /api/embed's, not normalised.
  double dot = 0;
  for (std::size_t i = 0; i < 64; ++i) dot += legacy[i].get<double>() * e[0][i].get<double>();
  EXPECT_NEAR(dot / norm(legacy), 1.0, 1e-5);
  const test::HttpReply f = srv_->post("/v1/embeddings", {{"model", "stories260K"}, {"input", "Once upon"}});
  const test::HttpReply b =
      srv_->post("/v1/embeddings", {{"model", "stories260K"}, {"input", "Once upon"}, {"encoding_format", "base64"}});
  ASSERT_EQ(f.status, 200);
  ASSERT_EQ(b.status, 200);
  const json fv = f.json()["data"][0]["embedding"];
  const std::string b64 = b.json()["data"][0]["embedding"];
  EXPECT_EQ(b64.size(), (64u * 4 + 2) / 3 * 4);
  // Decode base64 -> little-endian float32, compare.
  auto val = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    return c == '+' ? 62 : c == '/' ? 63 : -1;
  };
  std::vector<unsigned char> bytes;
  for (std::size_t i = 0; i + 3 < b64.size(); i += 4) {
    int v[4];
    for (int k = 0; k < 4; ++k) v[k] = val(b64[i + k]);
    bytes.push_back(static_cast<unsigned char>((v[0] << 2) | (v[1] >> 4)));
    if (v[2] >= 0) bytes.push_back(static_cast<unsigned char>(((v[1] & 15) << 4) | (v[2] >> 2)));
    if (v[3] >= 0) bytes.push_back(static_cast<unsigned char>(((v[2] & 3) << 6) | v[3]));
  }
  ASSERT_EQ(bytes.size(), 256u);
  for (std::size_t i = 0; i < 64; ++i) {
    float x;
    std::memcpy(&x, &bytes[i * 4], 4);
    EXPECT_EQ(x, fv[i].get<float>());
  }
  EXPECT_EQ(f.json()["usage"]["prompt_tokens"], 3);  // BOS + 2
}

// The independent check: llama.cpp's llama-embedding --pooling mean --embd-normalize 2 on the same model
// and texts (tests/engine/data/embeddings_golden.json records the commands), through both APIs.
TEST_F(ServerApi, EmbeddingsMatchLlamaEmbedding) {
  const json g = test::load_json(G2C_EMBED_GOLDEN);
  int checked = 0;
  for (const json& m : g["models"]) {
    if (m["file"] != "models/stories260K.gguf") continue;
    for (const json& c : m["cases"]) {
      const std::string text = c["text"];
      if (text.empty()) continue;  // Ollama answers an empty input without embedding it
      SCOPED_TRACE(text);
      const test::HttpReply a = srv_->post("/api/embed", {{"model", "stories260K"}, {"input", text}});
      const test::HttpReply o = srv_->post("/v1/embeddings", {{"model", "stories260K"}, {"input", text}});
      ASSERT_EQ(a.status, 200);
      ASSERT_EQ(o.status, 200);
      const json want = c["embedding"];
      const json got_a = a.json()["embeddings"][0], got_o = o.json()["data"][0]["embedding"];
      ASSERT_EQ(got_a.size(), want.size());
      for (std::size_t i = 0; i < want.size(); ++i) {
        EXPECT_NEAR(got_a[i].get<double>(), want[i].get<double>(), 1e-4) << i;
        EXPECT_NEAR(got_o[i].get<double>(), want[i].get<double>(), 1e-4) << i;
      }
      ++checked;
    }
  }
  EXPECT_EQ(checked, 4);
}

TEST_F(ServerApi, OpenAIModelsAndChatShapes) {
  test::HttpReply r = srv_->get("/v1/models");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.json()["object"], "list");
  EXPECT_EQ(r.json()["data"].size(), 2u);
  r = srv_->get("/v1/models/stories260K%3Alatest");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json()["id"], "stories260K:latest");
  r = srv_->get("/v1/models/nope");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.json()["error"]["type"], "not_found_error");

  const json body = {{"model", "stories260K"}, {"messages", json::array({{{"role", "user"}, {"content", "Hi"}}})},
                     {"max_tokens", 8},        {"temperature", 0},
                     {"logprobs", true},       {"top_logprobs", 3}};
  r = srv_->post("/v1/chat/completions", body);
  ASSERT_EQ(r.status, 200) << r.body;
  const json j = r.json();
  EXPECT_EQ(j["object"], "chat.completion");
  EXPECT_EQ(j["choices"][0]["message"]["role"], "assistant");
  EXPECT_EQ(j["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(j["usage"]["completion_tokens"], 8);
  EXPECT_EQ(j["usage"]["total_tokens"], j["usage"]["prompt_tokens"].get<int>() + 8);
  const json lp = j["choices"][0]["logprobs"]["content"];
  ASSERT_EQ(lp.size(), 8u);
  for (const json& t : lp) {
    ASSERT_EQ(t["top_logprobs"].size(), 3u);
    // Greedy: the chosen token is the most likely one.
    EXPECT_EQ(t["top_logprobs"][0]["token"], t["token"]);
    EXPECT_EQ(t["top_logprobs"][0]["logprob"], t["logprob"]);
  }

  json s = body;
  s["stream"] = true;
  s["stream_options"] = {{"include_usage", true}};
  const auto lines = srv_->stream_lines("/v1/chat/completions", s);
  ASSERT_GE(lines.size(), 4u);
  EXPECT_EQ(lines.back(), "data: [DONE]");
  const json first = json::parse(lines.front().substr(6));
  EXPECT_EQ(first["choices"][0]["delta"]["role"], "assistant");
  const json usage = json::parse(lines[lines.size() - 2].substr(6));
  EXPECT_TRUE(usage["choices"].empty());
  EXPECT_EQ(usage["usage"]["completion_tokens"], 8);
  const json fin = json::parse(lines[lines.size() - 3].substr(6));
  EXPECT_EQ(fin["choices"][0]["finish_reason"], "length");
  std::string text;
  for (std::size_t i = 0; i + 3 < lines.size(); ++i) {
    const json c = json::parse(lines[i].substr(6));
    EXPECT_EQ(c["id"], first["id"]);
    text += c["choices"][0]["delta"].value("content", "");
  }
  EXPECT_EQ(text, j["choices"][0]["message"]["content"]);
}

TEST_F(ServerApi, CompletionsEchoScoresThePrompt) {
  const test::HttpReply r = srv_->post(
      "/v1/completions",
      {{"model", "stories260K"}, {"prompt", "Once upon a time"}, {"max_tokens", 0}, {"echo", true}, {"logprobs", 1}});
  ASSERT_EQ(r.status, 200) << r.body;
  const json c = r.json()["choices"][0];
  EXPECT_EQ(c["text"], "Once upon a time");
  const json lp = c["logprobs"];
  ASSERT_EQ(lp["tokens"].size(), 5u);  // BOS + 4
  EXPECT_TRUE(lp["token_logprobs"][0].is_null());
  for (std::size_t i = 1; i < 5; ++i) {
    EXPECT_LT(lp["token_logprobs"][i].get<double>(), 0.0);
    EXPECT_EQ(lp["top_logprobs"][i].size(), 1u);
  }
  EXPECT_EQ(r.json()["usage"]["completion_tokens"], 0);
}

TEST_F(ServerApi, TokenizeDetokenizeHealthMetrics) {
  test::HttpReply r =
      srv_->post("/tokenize", {{"model", "stories260K"}, {"content", "Once upon"}, {"add_special", true}});
  ASSERT_EQ(r.status, 200) << r.body;
  const json ids = r.json()["tokens"];
  EXPECT_EQ(ids[0], 1);
  r = srv_->post("/detokenize", {{"model", "stories260K"}, {"tokens", ids}});
  ASSERT_EQ(r.status, 200);
  // As llama-server's /detokenize: each id's piece, so SentencePiece's word-start space stays.
  EXPECT_EQ(r.json()["content"], " Once upon");
  r = srv_->get("/health");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.json()["status"], "ok");
  r = srv_->get("/metrics");
  ASSERT_EQ(r.status, 200);
  EXPECT_NE(r.body.find("g2c_requests_total{route=\"/health\",status=\"200\"}"), std::string::npos);
  EXPECT_NE(r.body.find("# TYPE g2c_time_to_first_token_seconds histogram"), std::string::npos);
  EXPECT_GE(srv_->metric("g2c_active_sequences{model=\"stories260K:latest\"}"), 0);
}

TEST_F(ServerApi, AbortMidStreamFreesTheSequence) {
  int status = 0;
  const auto lines = srv_->stream_lines(
      "/api/generate",
      // ignore_eos: the greedy story ends early otherwise, and an idle machine then finishes it before the
      // client's disconnect is noticed (seen in CI); 250 tokens fill the fixture's 256-position context.
      {{"model", "stories260K"},
       {"prompt", "Once"},
       {"options", {{"num_predict", 250}, {"temperature", 0}, {"ignore_eos", true}}}},
      3, &status);
  EXPECT_EQ(lines.size(), 3u);
  double active = -1;
  for (int i = 0; i < 100; ++i) {
    active = srv_->metric("g2c_active_sequences{model=\"stories260K:latest\"}");
    if (active == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(active, 0);
  EXPECT_GE(srv_->metric("g2c_requests_canceled_total{model=\"stories260K:latest\"}"), 1);
}

TEST_F(ServerApi, PullCopyDeleteOverTheModelsFolder) {
  test::HttpReply r = srv_->post("/api/pull", {{"name", "stories260K"}, {"stream", false}});
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.json()["status"], "success");
  const auto lines = srv_->stream_lines("/api/pull", {{"name", "stories260K"}});
  ASSERT_FALSE(lines.empty());
  EXPECT_EQ(json::parse(lines.back())["status"], "success");
  EXPECT_EQ(srv_->post("/api/pull", {{"name", "nope"}}).status, 404);
  r = srv_->post("/api/copy", {{"source", "stories260K"}, {"destination", "story-copy"}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_TRUE(std::filesystem::exists(std::filesystem::path(srv_->models_dir()) / "story-copy.gguf"));
  EXPECT_EQ(srv_->post("/api/show", {{"model", "story-copy"}}).status, 200);
  EXPECT_EQ(srv_->post("/api/copy", {{"source", "stories260K"}, {"destination", "../evil"}}).status, 400);
  r = srv_->del("/api/delete", {{"name", "story-copy"}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_FALSE(std::filesystem::exists(std::filesystem::path(srv_->models_dir()) / "story-copy.gguf"));
  EXPECT_EQ(srv_->del("/api/delete", {{"name", "story-copy"}}).status, 404);
}

TEST_F(ServerApi, CorsPreflight) {
  const test::HttpReply r =
      srv_->options("/api/chat", {{"Origin", "http://localhost:3000"}, {"Access-Control-Request-Method", "POST"}});
  EXPECT_EQ(r.status, 204);
  auto it = r.headers.find("Access-Control-Allow-Origin");
  ASSERT_NE(it, r.headers.end());
  EXPECT_EQ(it->second, "http://localhost:3000");
  const test::HttpReply g = srv_->get("/api/version", {{"Origin", "http://localhost:3000"}});
  EXPECT_NE(g.headers.find("Access-Control-Allow-Origin"), g.headers.end());
  const test::HttpReply evil = srv_->get("/api/version", {{"Origin", "http://evil.example"}});
  EXPECT_EQ(evil.headers.find("Access-Control-Allow-Origin"), evil.headers.end());
}

TEST_F(ServerApi, ToolsAreRefusedNotIgnored) {
  test::HttpReply r =
      srv_->post("/api/chat", {{"model", "stories260K"},
                               {"messages", json::array({{{"role", "user"}, {"content", "x"}}})},
                               {"tools", json::array({{{"type", "function"}, {"function", {{"name", "f"}}}}})}});
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.json()["error"], "stories260K does not support tools");
}

// Structured outputs: Ollama's format and OpenAI's response_format constrain the answer, which parses.
TEST_F(ServerApi, FormatAndResponseFormatConstrainTheAnswer) {
  test::HttpReply r = srv_->post("/api/generate", {{"model", "stories260K"},
                                                   {"prompt", "Once upon a time"},
                                                   {"format", "json"},
                                                   {"stream", false},
                                                   {"options", {{"seed", 3}, {"num_predict", 400}}}});
  ASSERT_EQ(r.status, 200) << r.body;
  // Any JSON object: a string may run past num_predict ("length", cut as is); a finished answer parses.
  const std::string text = r.json()["response"].get<std::string>();
  EXPECT_EQ(text.substr(0, 1), "{");
  if (r.json()["done_reason"] == "stop") {
    EXPECT_TRUE(json::parse(text).is_object()) << text;
  } else {
    EXPECT_EQ(r.json()["done_reason"], "length");
  }
  json doc;

  const json schema = {
      {"type", "object"},
      {"properties", {{"name", {{"type", "string"}, {"maxLength", 10}}}, {"n", {{"type", "integer"}}}}},
      {"required", {"name", "n"}},
      {"additionalProperties", false}};
  r = srv_->post("/api/chat", {{"model", "stories260K"},
                               {"messages", json::array({{{"role", "user"}, {"content", "Tell me"}}})},
                               {"format", schema},
                               {"stream", false},
                               {"options", {{"seed", 4}, {"num_predict", 400}}}});
  ASSERT_EQ(r.status, 200) << r.body;
  doc = json::parse(r.json()["message"]["content"].get<std::string>());
  EXPECT_TRUE(doc["name"].is_string());
  EXPECT_TRUE(doc["n"].is_number_integer());
  EXPECT_EQ(doc.size(), 2u);

  r = srv_->post(
      "/v1/chat/completions",
      {{"model", "stories260K"},
       {"messages", json::array({{{"role", "user"}, {"content", "x"}}})},
       {"seed", 5},
       {"response_format", {{"type", "json_schema"}, {"json_schema", {{"name", "t"}, {"schema", schema}}}}}});
  ASSERT_EQ(r.status, 200) << r.body;
  doc = json::parse(r.json()["choices"][0]["message"]["content"].get<std::string>());
  EXPECT_TRUE(doc["name"].is_string());
  EXPECT_EQ(r.json()["choices"][0]["finish_reason"], "stop");

  r = srv_->post("/v1/completions", {{"model", "stories260K"},
                                     {"prompt", "Once"},
                                     {"seed", 6},
                                     {"max_tokens", 3},
                                     {"response_format", {{"type", "json_object"}}}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json()["choices"][0]["finish_reason"], "length");  // cut before the object closed
  EXPECT_EQ(r.json()["choices"][0]["text"].get<std::string>().substr(0, 1), "{");

  r = srv_->post("/api/generate",
                 {{"model", "stories260K"}, {"prompt", "x"}, {"format", {{"type", "string"}, {"format", "date"}}}});
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.json()["error"], "invalid format: json schema: unsupported keyword(s): format (at #)");
}

}  // namespace
}  // namespace g2c

namespace g2c {
namespace {

// Server::stop() (what SIGINT / SIGTERM call in `g2c serve`) while streams run and wait: it returns
// promptly, and every stream ends properly: complete, or with a final error line (ollama-js throws on
// it), or a 503 for requests that arrive during shutdown. None hangs.
TEST(ServerStop, StopEndsRunningAndQueuedStreams) {
  test::ServeFixture srv({.models = {"models/stories260K.gguf"}, .parallel = 1, .ctx = 256});
  std::vector<std::thread> clients;
  std::vector<std::vector<std::string>> lines(8);
  std::vector<int> status(8, 0);
  for (int i = 0; i < 8; ++i)
    clients.emplace_back([&, i] {
      lines[static_cast<std::size_t>(i)] = srv.stream_lines(
          "/api/generate",
          {{"model", "stories260K"}, {"prompt", "Once"}, {"options", {{"num_predict", -1}, {"temperature", 1}}}}, 0,
          &status[static_cast<std::size_t>(i)]);
    });
  while (srv.metric("g2c_active_sequences{model=\"stories260K:latest\"}") < 1)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  const auto t0 = std::chrono::steady_clock::now();
  srv.server().stop();
  for (auto& t : clients) t.join();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
  int ended_by_stop = 0;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    SCOPED_TRACE(i);
    if (status[i] != 200) {
      EXPECT_TRUE(status[i] == 503 || status[i] == -1) << status[i];  // refused, or never accepted
      continue;
    }
    ASSERT_FALSE(lines[i].empty());
    const json last = json::parse(lines[i].back());
    if (last.contains("error")) {
      ++ended_by_stop;
    } else {
      EXPECT_TRUE(last["done"].get<bool>());
    }
  }
  EXPECT_GE(ended_by_stop, 1);
}

}  // namespace
}  // namespace g2c

namespace g2c {
namespace {

// g2c's own HTTP backends carry constrained decoding to a server: the schema as Ollama's `format` or
// OpenAI's response_format, a GBNF grammar as llama-server's `grammar` field (Ollama's API has none: refused).
TEST(ServerBackends, StructuredOutputThroughTheHttpBackends) {
  test::ServeFixture srv({.models = {"models/stories260K.gguf"}, .ctx = 512});
  const std::string base = "http://127.0.0.1:" + std::to_string(srv.port());
  inference::OpenAIBackend openai(base + "/v1", "stories260K");
  inference::OllamaBackend ollama("stories260K", base);
  inference::GenerateOptions o;
  o.max_new_tokens = 300;
  o.temperature = 1.0;
  o.seed = 7;
  o.json_schema = {
      {"type", "object"}, {"properties", {{"name", {{"type", "string"}, {"maxLength", 12}}}}}, {"required", {"name"}}};
  for (inference::Backend* b : {static_cast<inference::Backend*>(&openai), static_cast<inference::Backend*>(&ollama)}) {
    const inference::InferenceResult r = b->complete("Once upon a time", o);
    SCOPED_TRACE(b->info().name + ": " + r.completion);
    json j;
    ASSERT_NO_THROW(j = json::parse(r.completion));
    EXPECT_TRUE(j["name"].is_string());
  }
  inference::GenerateOptions g;
  g.max_new_tokens = 8;
  g.temperature = 1.0;
  g.grammar = R"(root ::= "yes" | "no")";
  const std::string answer = openai.complete("Is the sky blue?", g).completion;
  EXPECT_TRUE(answer == "yes" || answer == "no") << answer;
  EXPECT_THROW(ollama.complete("Is the sky blue?", g), UnsupportedError);
  // A bad grammar is a 400 naming the field, through the API.
  const test::HttpReply bad =
      srv.post("/v1/completions", {{"model", "stories260K"}, {"prompt", "x"}, {"grammar", "root ::= \"unterminated"}});
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(bad.json()["error"]["param"], "grammar");
}

}  // namespace
}  // namespace g2c
