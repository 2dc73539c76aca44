// Tools through `g2c serve`, on stories260K given real chat templates (Qwen 2.5's, which has a tool
// format, and Gemma 2's, which has none) with the gguf Writer, as `g2c template --write-gguf` does.
// The model's output is random, so what is checked here is the request side: the prompt the server
// builds from tools, an assistant tool call and a tool result is, token for token, Python jinja2's
// rendering of the same conversation (tests/tokenizer/jinja_reference.py) tokenized by the model's
// tokenizer; the reply shapes; tool_choice; the 400s. Parsing calls out of a reply is checked on
// llama.cpp's vectors (tests/tokenizer/tool_calls_test.cpp).
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "g2c/gguf/gguf.hpp"
#include "g2c/tokenizer/tokenizer.hpp"
#include "serve_fixture.hpp"

namespace g2c {
namespace {

using nlohmann::json;
using OJson = nlohmann::ordered_json;
const std::filesystem::path kTok = G2C_TOKENIZER_TEST_DIR;

std::string read(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// stories260K with `template_file` as its tokenizer.chat_template, written to `out`.
void write_with_template(const std::string& out, const std::string& template_file) {
  const auto in = gguf::File::open(test::shared_path("models/stories260K.gguf"));
  gguf::Writer w(in->alignment());
  for (const auto& kv : in->kvs()) w.set(kv.key, kv.value);
  w.set("tokenizer.chat_template", gguf::Value::str(read(kTok / "data/templates" / template_file)));
  for (const auto& t : in->tensors())
    w.add_tensor(t.name, t.type, std::span<const std::int64_t>(t.ne.data(), t.n_dims),
                 std::span<const std::uint8_t>(t.data, t.n_bytes));
  w.write(out);
}

// jinja2's rendering (Hugging Face's environment) of the Qwen 2.5 template.
std::string jinja2(const json& messages, const json& tools) {
  test::TempDir dir;
  const OJson ctx = {{"messages", OJson::parse(messages.dump())},
                     {"tools", tools.is_null() ? OJson() : OJson::parse(tools.dump())},
                     {"documents", nullptr},
                     {"add_generation_prompt", true},
                     {"bos_token", "<s>"},
                     {"eos_token", "</s>"}};
  const OJson jobs =
      OJson::array({{{"template", read(kTok / "data/templates/Qwen-Qwen2.5-7B-Instruct.jinja")}, {"context", ctx}}});
  std::ofstream(dir.file("jobs.json"), std::ios::binary) << jobs.dump();
  const std::string cmd = "/usr/bin/python3 '" + (kTok / "jinja_reference.py").string() + "' '" +
                          dir.file("jobs.json") + "' > '" + dir.file("out.json") + "'";
  if (std::system(cmd.c_str()) != 0) throw std::runtime_error("reference renderer failed: " + cmd);
  const OJson out = OJson::parse(read(dir.file("out.json")));
  if (!out[0]["ok"].get<bool>()) throw std::runtime_error("jinja2 refused: " + out[0].dump());
  return out[0]["text"].get<std::string>();
}

class ServerTools : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new test::TempDir();
    qwen_ = dir_->file("qwen-tools.gguf");
    write_with_template(qwen_, "Qwen-Qwen2.5-7B-Instruct.jinja");
    const std::string gemma = dir_->file("gemma-notools.gguf");
    write_with_template(gemma, "google-gemma-2-2b-it.jinja");
    // DeepSeek R1's distill template: its generation prompt ends with "<think>\n".
    const std::string r1 = dir_->file("r1-think.gguf");
    write_with_template(r1, "deepseek-ai-DeepSeek-R1-Distill-Qwen-32B.jinja");
    srv_ = new test::ServeFixture({.models = {qwen_, gemma, r1}, .parallel = 2, .ctx = 1024});
    const auto g = gguf::File::open(qwen_);
    tok_ = tokenizer::Tokenizer::from_gguf(*g).release();
  }
  static void TearDownTestSuite() {
    delete srv_;
    delete tok_;
    delete dir_;
  }
  // Tokens the server's prompt must have: jinja2's text, BOS added, special pieces parsed.
  static std::int64_t n_tokens(const json& messages, const json& tools) {
    return static_cast<std::int64_t>(tok_->encode(jinja2(messages, tools), true, true).size());
  }
  static test::TempDir* dir_;
  static std::string qwen_;
  static test::ServeFixture* srv_;
  static tokenizer::Tokenizer* tok_;
};
test::TempDir* ServerTools::dir_ = nullptr;
std::string ServerTools::qwen_;
test::ServeFixture* ServerTools::srv_ = nullptr;
tokenizer::Tokenizer* ServerTools::tok_ = nullptr;

const json kTools = json::array(
    {{{"type", "function"},
      {"function",
       {{"name", "get_weather"},
        {"description", "Get the weather in a city"},
        {"parameters",
         {{"type", "object"}, {"properties", {{"city", {{"type", "string"}}}}}, {"required", {"city"}}}}}}}});

TEST_F(ServerTools, OllamaChatRendersToolsCallAndResultAsJinja2Does) {
  // The tool round trip as ollama-js sends it: arguments an object, the result named by tool_name.
  const json request_messages =
      json::array({{{"role", "system"}, {"content", "You are terse."}},
                   {{"role", "user"}, {"content", "Weather in Paris?"}},
                   {{"role", "assistant"},
                    {"content", ""},
                    {"tool_calls", {{{"function", {{"name", "get_weather"}, {"arguments", {{"city", "Paris"}}}}}}}}},
                   {{"role", "tool"}, {"content", "11 degrees"}, {"tool_name", "get_weather"}}});
  // The same conversation in Hugging Face's shape, which the template reads.
  const json hf_messages = json::array(
      {{{"role", "system"}, {"content", "You are terse."}},
       {{"role", "user"}, {"content", "Weather in Paris?"}},
       {{"role", "assistant"},
        {"content", ""},
        {"tool_calls",
         {{{"type", "function"}, {"function", {{"name", "get_weather"}, {"arguments", {{"city", "Paris"}}}}}}}}},
       {{"role", "tool"}, {"content", "11 degrees"}, {"name", "get_weather"}}});
  const test::HttpReply r = srv_->post("/api/chat", {{"model", "qwen-tools"},
                                                     {"messages", request_messages},
                                                     {"tools", kTools},
                                                     {"stream", false},
                                                     {"options", {{"temperature", 0}, {"num_predict", 8}}}});
  ASSERT_EQ(r.status, 200) << r.body;
  const json j = r.json();
  EXPECT_EQ(j["message"]["role"], "assistant");
  EXPECT_TRUE(j["message"]["content"].is_string());
  EXPECT_EQ(j["prompt_eval_count"].get<std::int64_t>(), n_tokens(hf_messages, kTools));
  // Without tools the prompt is the template's no-tools rendering.
  const json one = json::array({{{"role", "user"}, {"content", "Weather in Paris?"}}});
  const test::HttpReply plain = srv_->post(
      "/api/chat", {{"model", "qwen-tools"}, {"messages", one}, {"stream", false}, {"options", {{"num_predict", 2}}}});
  ASSERT_EQ(plain.status, 200) << plain.body;
  EXPECT_EQ(plain.json()["prompt_eval_count"].get<std::int64_t>(), n_tokens(one, nullptr));
  // Streamed: NDJSON chunks, one done:true at the end.
  int status = 0;
  const std::vector<std::string> lines = srv_->stream_lines(
      "/api/chat", {{"model", "qwen-tools"}, {"messages", one}, {"tools", kTools}, {"options", {{"num_predict", 6}}}},
      0, &status);
  EXPECT_EQ(status, 200);
  ASSERT_FALSE(lines.empty());
  EXPECT_TRUE(json::parse(lines.back())["done"].get<bool>());
}

TEST_F(ServerTools, OpenAIChatWithToolsAndToolChoice) {
  // The round trip as openai-node sends it: arguments a JSON string, the result by tool_call_id.
  const json messages =
      json::array({{{"role", "user"}, {"content", "Weather in Paris?"}},
                   {{"role", "assistant"},
                    {"content", nullptr},
                    {"tool_calls",
                     {{{"id", "call_abc12345"},
                       {"type", "function"},
                       {"function", {{"name", "get_weather"}, {"arguments", "{\"city\":\"Paris\"}"}}}}}}},
                   {{"role", "tool"}, {"tool_call_id", "call_abc12345"}, {"content", "11 degrees"}}});
  const json hf = json::array({{{"role", "user"}, {"content", "Weather in Paris?"}},
                               {{"role", "assistant"},
                                {"content", ""},
                                {"tool_calls",
                                 {{{"id", "call_abc12345"},
                                   {"type", "function"},
                                   {"function", {{"name", "get_weather"}, {"arguments", {{"city", "Paris"}}}}}}}}},
                               {{"role", "tool"}, {"content", "11 degrees"}, {"tool_call_id", "call_abc12345"}}});
  test::HttpReply r = srv_->post(
      "/v1/chat/completions", {{"model", "qwen-tools"}, {"messages", messages}, {"tools", kTools}, {"max_tokens", 6}});
  ASSERT_EQ(r.status, 200) << r.body;
  json j = r.json();
  EXPECT_EQ(j["usage"]["prompt_tokens"].get<std::int64_t>(), n_tokens(hf, kTools));
  const json& msg = j["choices"][0]["message"];
  EXPECT_EQ(msg["role"], "assistant");
  const std::string fr = j["choices"][0]["finish_reason"];
  // Random output: a call is unlikely but would be shaped and reported as one.
  if (msg.contains("tool_calls")) {
    EXPECT_EQ(fr, "tool_calls");
    EXPECT_TRUE(msg["tool_calls"][0]["function"]["arguments"].is_string());
  } else {
    EXPECT_TRUE(fr == "stop" || fr == "length") << fr;
  }
  // tool_choice "none": the tools are left out of the prompt.
  r = srv_->post(
      "/v1/chat/completions",
      {{"model", "qwen-tools"}, {"messages", messages}, {"tools", kTools}, {"tool_choice", "none"}, {"max_tokens", 2}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json()["usage"]["prompt_tokens"].get<std::int64_t>(), n_tokens(hf, nullptr));
  // "required" and a named function need constrained decoding: 400, not ignored.
  r = srv_->post("/v1/chat/completions",
                 {{"model", "qwen-tools"}, {"messages", messages}, {"tools", kTools}, {"tool_choice", "required"}});
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.json()["error"]["param"], "tool_choice");
  // Streamed: SSE chunks ending with a finish_reason and [DONE].
  int status = 0;
  const std::vector<std::string> lines = srv_->stream_lines(
      "/v1/chat/completions",
      {{"model", "qwen-tools"}, {"messages", messages}, {"tools", kTools}, {"max_tokens", 6}, {"stream", true}}, 0,
      &status);
  EXPECT_EQ(status, 200);
  ASSERT_GE(lines.size(), 2u);
  EXPECT_EQ(lines.back(), "data: [DONE]");
}

TEST_F(ServerTools, TemplatesWithoutToolsOrThatRefuseSay400) {
  const json msgs = json::array({{{"role", "user"}, {"content", "x"}}});
  test::HttpReply r = srv_->post("/api/chat", {{"model", "gemma-notools"}, {"messages", msgs}, {"tools", kTools}});
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.json()["error"], "gemma-notools does not support tools");
  r = srv_->post("/v1/chat/completions", {{"model", "gemma-notools"}, {"messages", msgs}, {"tools", kTools}});
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.json()["error"]["param"], "tools");
  // Gemma's template refuses a system message; the server says so with the template's words.
  const json sys = json::array({{{"role", "system"}, {"content", "s"}}, {{"role", "user"}, {"content", "x"}}});
  r = srv_->post("/api/chat", {{"model", "gemma-notools"}, {"messages", sys}, {"stream", false}});
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.json()["error"].get<std::string>().find("System role not supported"), std::string::npos) << r.body;
}

// Reasoning is streamed as it is generated. The reply is forced with llama-server's `grammar` field to be
// thinking then an answer; the stream must carry the thinking in several reasoning deltas (OpenAI
// delta.reasoning_content, Ollama message.thinking) before the final chunk, none of it in content, and the
// non-streamed reply keeps it apart whole.
TEST_F(ServerTools, ReasoningIsStreamedAsItIsGenerated) {
  const json msgs = json::array({{{"role", "user"}, {"content", "Think."}}});
  // With and without the model writing the opening <think> (the prompt has opened it already).
  for (const std::string forced : {"<think>a b c d e</think>answer", "a b c d e</think>answer"}) {
    const std::string grammar = "root ::= " + json(forced).dump();
    int status = 0;
    std::vector<std::string> lines = srv_->stream_lines(
        "/v1/chat/completions",
        {{"model", "r1-think"}, {"messages", msgs}, {"grammar", grammar}, {"max_tokens", 64}, {"stream", true}}, 0,
        &status);
    ASSERT_EQ(status, 200);
    std::string reasoning, content;
    int reasoning_deltas = 0;
    bool finished = false;
    for (const std::string& l : lines) {
      if (l == "data: [DONE]") break;
      ASSERT_EQ(l.rfind("data: ", 0), 0u) << l;
      const json c = json::parse(l.substr(6));
      if (c["choices"].empty()) continue;
      const json& ch = c["choices"][0];
      const json& d = ch["delta"];
      if (d.contains("reasoning_content")) {
        EXPECT_FALSE(finished) << "reasoning after the final chunk";
        EXPECT_FALSE(d.contains("content") && !d["content"].get<std::string>().empty()) << l;
        reasoning += d["reasoning_content"].get<std::string>();
        ++reasoning_deltas;
      }
      if (d.contains("content")) content += d["content"].get<std::string>();
      if (!ch["finish_reason"].is_null()) finished = true;
    }
    EXPECT_TRUE(finished);
    EXPECT_EQ(reasoning, "a b c d e") << forced;
    EXPECT_GE(reasoning_deltas, 3) << forced;  // as generated: one delta per token or few, not one at the end
    EXPECT_EQ(content, "answer") << forced;
  }
  // Ollama has no grammar field; its stream is checked on the model's own (greedy) reply, which never writes
  // </think>: the prompt opened the thinking, so all of it is thinking, streamed in message.thinking chunks,
  // and equal to the non-streamed reply's message.thinking (where it is unchanged when the thinking is closed).
  const json body = {{"model", "r1-think"},
                     {"messages", msgs},
                     {"think", true},
                     {"options", {{"temperature", 0}, {"num_predict", 12}}}};
  json streamed = body;
  streamed["stream"] = true;
  std::string thinking, content;
  int thinking_chunks = 0;
  bool done = false;
  for (const std::string& l : srv_->stream_lines("/api/chat", streamed)) {
    const json c = json::parse(l);
    ASSERT_FALSE(c.contains("error")) << l;
    if (c["message"].contains("thinking")) {
      EXPECT_FALSE(done);
      thinking += c["message"]["thinking"].get<std::string>();
      ++thinking_chunks;
    }
    content += c["message"]["content"].get<std::string>();
    if (c["done"].get<bool>()) done = true;
  }
  EXPECT_TRUE(done);
  EXPECT_GE(thinking_chunks, 3);
  EXPECT_EQ(content, "");
  json whole = body;
  whole["stream"] = false;
  test::HttpReply w = srv_->post("/api/chat", whole);
  ASSERT_EQ(w.status, 200) << w.body;
  EXPECT_EQ(w.json()["message"]["thinking"], thinking);
  EXPECT_EQ(w.json()["message"]["content"], "");
  // think: false leaves the thinking out.
  whole["think"] = false;
  w = srv_->post("/api/chat", whole);
  ASSERT_EQ(w.status, 200) << w.body;
  EXPECT_FALSE(w.json()["message"].contains("thinking")) << w.body;
  EXPECT_EQ(w.json()["message"]["content"], "");

  // Not streamed: unchanged, the reasoning whole and apart.
  const std::string grammar = "root ::= \"<think>a b c d e</think>answer\"";
  test::HttpReply r = srv_->post("/v1/chat/completions",
                                 {{"model", "r1-think"}, {"messages", msgs}, {"grammar", grammar}, {"max_tokens", 64}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json()["choices"][0]["message"]["reasoning_content"], "a b c d e");
  EXPECT_EQ(r.json()["choices"][0]["message"]["content"], "answer");
}

TEST_F(ServerTools, OllamaThink) {
  const json msgs = json::array({{{"role", "user"}, {"content", "x"}}});
  // think on a model whose template does not think: 400, as Ollama.
  test::HttpReply r = srv_->post("/api/chat", {{"model", "qwen-tools"}, {"messages", msgs}, {"think", true}});
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.json()["error"], "qwen-tools does not support thinking");
  r = srv_->post("/api/chat", {{"model", "qwen-tools"}, {"messages", msgs}, {"think", "loud"}});
  EXPECT_EQ(r.status, 400);
  r = srv_->post("/api/chat", {{"model", "r1-think"},
                               {"messages", msgs},
                               {"think", "high"},
                               {"stream", false},
                               {"options", {{"num_predict", 2}}}});
  EXPECT_EQ(r.status, 200) << r.body;
}

}  // namespace
}  // namespace g2c
