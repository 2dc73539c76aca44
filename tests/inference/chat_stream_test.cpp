// Backend::chat_stream: a chat reply delivered as it is generated, on every backend. The HTTP backends
// read the stream shapes ../shared/docs/api-compat.md documents (Ollama's /api/chat NDJSON chunks; the
// OpenAI chat.completion.chunk SSE events, tool calls split across deltas by index); the in-process
// backend's pieces concatenate to what chat() returns, and a tool call forced by a grammar never shows.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "common/test_util.hpp"
#include "fake_transport.hpp"
#include "g2c/gguf/gguf.hpp"
#include "g2c/inference/local_backend.hpp"
#include "g2c/inference/ollama.hpp"
#include "g2c/inference/openai.hpp"
#include "g2c/model/model.hpp"
#include "g2c/tokenizer/tokenizer.hpp"

namespace g2c::inference {
namespace {

const std::string kModels = std::string(G2C_SHARED_DIR) + "/models";

std::vector<ChatMessage> ask(const std::string& text) { return {{"user", text, {}, "", ""}}; }

GenerateOptions greedy(int n) {
  GenerateOptions o;
  o.max_new_tokens = n;
  o.temperature = 0.0;
  return o;
}

// --- Ollama: /api/chat with "stream": true -------------------------------------------------------

std::shared_ptr<testing::ScriptedTransport> ollama_chunks() {
  auto t = std::make_shared<testing::ScriptedTransport>();
  const std::vector<std::string> lines = {
      R"({"model":"m","created_at":"2026-01-01T00:00:00Z","message":{"role":"assistant","content":"","thinking":"Paris is in France. "},"done":false})",
      R"({"model":"m","created_at":"2026-01-01T00:00:00Z","message":{"role":"assistant","content":"Let me "},"done":false})",
      R"({"model":"m","created_at":"2026-01-01T00:00:00Z","message":{"role":"assistant","content":"check."},"done":false})",
      R"({"model":"m","created_at":"2026-01-01T00:00:00Z","message":{"role":"assistant","content":"","tool_calls":[{"id":"call_k3x9q2ab","function":{"index":0,"name":"get_weather","arguments":{"city":"Paris"}}}]},"done":false})",
      R"({"model":"m","created_at":"2026-01-01T00:00:00Z","message":{"role":"assistant","content":""},"done":true,"done_reason":"stop","total_duration":5000000,"load_duration":1000000,"prompt_eval_count":12,"prompt_eval_duration":2000000,"eval_count":9,"eval_duration":3000000})"};
  // Split one line across two deliveries, as a socket may.
  std::string all;
  for (const std::string& l : lines) all += l + "\n";
  t->pieces = {all.substr(0, 100), all.substr(100)};
  return t;
}

TEST(ChatStream, OllamaDeliversContentAndGathersCallsThinkingAndCounts) {
  auto t = ollama_chunks();
  OllamaBackend b(OllamaConfig{"m", "http://ollama.invalid:11434", 5.0, t, "ollama", {}});
  std::vector<std::string> seen;
  const ChatResult r = b.chat_stream(ask("Weather in Paris?"), {}, {}, [&](std::string_view s) {
    seen.emplace_back(s);
    return true;
  });
  EXPECT_EQ(seen, (std::vector<std::string>{"Let me ", "check."}));
  EXPECT_EQ(r.message.content, "Let me check.");
  ASSERT_EQ(r.tool_calls.size(), 1u);
  EXPECT_EQ(r.tool_calls[0].id, "call_k3x9q2ab");
  EXPECT_EQ(r.tool_calls[0].name, "get_weather");
  EXPECT_EQ(r.tool_calls[0].arguments, (nlohmann::json{{"city", "Paris"}}));
  EXPECT_EQ(r.metadata["reasoning_content"], "Paris is in France. ");
  EXPECT_EQ(r.prompt_tokens, 12);
  EXPECT_EQ(r.completion_tokens, 9);
  EXPECT_EQ(r.done_reason, "stop");
  EXPECT_DOUBLE_EQ(r.timings["eval_ms"].get<double>(), 3.0);
  EXPECT_TRUE(r.timings.contains("ttft_ms"));
  EXPECT_FALSE(r.metadata.value("canceled", false));
}

TEST(ChatStream, OllamaCancelAndTruncatedStream) {
  auto t = ollama_chunks();
  OllamaBackend b(OllamaConfig{"m", "http://ollama.invalid:11434", 5.0, t, "ollama", {}});
  int n = 0;
  const ChatResult r = b.chat_stream(ask("hi"), {}, {}, [&](std::string_view) { return ++n < 1; });
  EXPECT_EQ(n, 1);
  EXPECT_TRUE(r.metadata.value("canceled", false));
  EXPECT_EQ(r.message.content, "Let me ");
  // A stream cut before its done:true object is an error that says so, not a short reply.
  t->pieces = {R"({"message":{"role":"assistant","content":"Hel"},"done":false})"
               "\n"};
  try {
    b.chat_stream(ask("hi"), {}, {}, nullptr);
    FAIL() << "no error";
  } catch (const OllamaError& e) {
    EXPECT_NE(std::string(e.what()).find("without a done:true"), std::string::npos) << e.what();
  }
}

// --- OpenAI: /chat/completions with "stream": true -------------------------------------------------

TEST(ChatStream, OpenAIAssemblesToolCallDeltasByIndex) {
  auto t = std::make_shared<testing::ScriptedTransport>();
  const std::string head = R"("id":"chatcmpl-X","object":"chat.completion.chunk","created":1,"model":"m",)";
  const std::vector<std::string> events = {
      R"({)" + head + R"("choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]})",
      R"({)" + head + R"("choices":[{"index":0,"delta":{"reasoning_content":"Think "},"finish_reason":null}]})",
      R"({)" + head + R"("choices":[{"index":0,"delta":{"reasoning_content":"first."},"finish_reason":null}]})",
      R"({)" + head + R"("choices":[{"index":0,"delta":{"content":"Hel"},"finish_reason":null}]})",
      R"({)" + head + R"("choices":[{"index":0,"delta":{"content":"lo"},"finish_reason":null}]})",
      R"({)" + head +
          R"("choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_x","type":"function","function":{"name":"get_weather","arguments":""}}]},"finish_reason":null}]})",
      R"({)" + head +
          R"("choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"call_y","type":"function","function":{"name":"get_time","arguments":"{}"}}]},"finish_reason":null}]})",
      R"({)" + head +
          R"("choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"city\": "}}]},"finish_reason":null}]})",
      R"({)" + head +
          R"("choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"\"Paris\"}"}}]},"finish_reason":null}]})",
      R"({)" + head + R"("choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]})",
      R"({)" + head + R"("choices":[],"usage":{"prompt_tokens":20,"completion_tokens":15,"total_tokens":35}})"};
  std::string sse;
  for (const std::string& e : events) sse += "data: " + e + "\n\n";
  sse += "data: [DONE]\n\n";
  t->pieces = {sse.substr(0, 333), sse.substr(333)};
  OpenAIBackend b(OpenAIConfig{"http://openai.invalid:8080/v1", "m", "", 5.0, t, "openai", {}});
  std::string shown;
  int pieces = 0;
  const ChatResult r = b.chat_stream(ask("Weather?"), {}, {}, [&](std::string_view s) {
    shown += s;
    ++pieces;
    return true;
  });
  EXPECT_EQ(shown, "Hello");
  EXPECT_EQ(pieces, 2);
  EXPECT_EQ(r.message.content, "Hello");
  ASSERT_EQ(r.tool_calls.size(), 2u);
  EXPECT_EQ(r.tool_calls[0].id, "call_x");
  EXPECT_EQ(r.tool_calls[0].name, "get_weather");
  EXPECT_TRUE(r.tool_calls[0].arguments_valid);
  EXPECT_EQ(r.tool_calls[0].arguments, (nlohmann::json{{"city", "Paris"}}));
  EXPECT_EQ(r.tool_calls[1].name, "get_time");
  EXPECT_EQ(r.tool_calls[1].arguments, nlohmann::json::object());
  EXPECT_EQ(r.metadata["reasoning_content"], "Think first.");
  EXPECT_EQ(r.done_reason, "tool_calls");
  EXPECT_EQ(r.prompt_tokens, 20);
  EXPECT_EQ(r.completion_tokens, 15);
}

// --- In-process ------------------------------------------------------------------------------------

TEST(ChatStream, LocalPiecesConcatenateToChat) {
  std::shared_ptr<const model::Model> m = model::Model::load(kModels + "/stories260K.gguf");
  std::shared_ptr<const tokenizer::Tokenizer> t = tokenizer::Tokenizer::from_gguf(*m->gguf());
  LocalTransformerBackend b(m, t, "stories260K");
  const std::vector<ChatMessage> msgs = ask("Tell me a story.");
  const ChatResult whole = b.chat(msgs, {}, greedy(40));
  std::vector<std::string> pieces;
  const ChatResult streamed = b.chat_stream(msgs, {}, greedy(40), [&](std::string_view s) {
    pieces.emplace_back(s);
    return true;
  });
  std::string joined;
  for (const std::string& p : pieces) joined += p;
  EXPECT_GT(pieces.size(), 5u);
  EXPECT_EQ(joined, whole.message.content);  // the plain layout trims: so does the stream
  EXPECT_EQ(streamed.message.content, whole.message.content);
  EXPECT_EQ(streamed.completion_tokens, whole.completion_tokens);
  EXPECT_FALSE(streamed.metadata["canceled"].get<bool>());
  EXPECT_TRUE(streamed.timings.contains("ttft_ms"));
  // Returning false after three pieces stops the generation there.
  int n = 0;
  const ChatResult cut = b.chat_stream(msgs, {}, greedy(40), [&](std::string_view) { return ++n < 3; });
  EXPECT_EQ(n, 3);
  EXPECT_TRUE(cut.metadata["canceled"].get<bool>());
  EXPECT_LT(*cut.completion_tokens, *whole.completion_tokens);
}

TEST(ChatStream, LocalToolCallIsHeldBackAndParsed) {
  // stories260K with Qwen 2.5's template; a grammar makes it write text and then a Hermes call. The
  // stream shows the text only; the call arrives parsed in the result.
  const std::string tmpl_text =
      test::read_file(std::string(G2C_TOKENIZER_TEST_DIR) + "/data/templates/Qwen-Qwen2.5-7B-Instruct.jinja");
  ASSERT_FALSE(tmpl_text.empty());
  test::TempDir dir;
  const std::string path = dir.file("qwen-tools.gguf");
  {
    gguf::Writer w = gguf::Writer::copy_of(*gguf::File::open(kModels + "/stories260K.gguf"));
    w.set("tokenizer.chat_template", gguf::Value::str(tmpl_text));
    w.write(path);
  }
  std::shared_ptr<const model::Model> m = model::Model::load(path);
  std::shared_ptr<const tokenizer::Tokenizer> tok = tokenizer::Tokenizer::from_gguf(*m->gguf());
  LocalTransformerBackend b(m, tok, "qwen-tools");
  const nlohmann::json tool = {
      {"type", "function"},
      {"function",
       {{"name", "get_weather"},
        {"parameters", {{"type", "object"}, {"properties", {{"city", {{"type", "string"}}}}}}}}}};
  GenerateOptions o = greedy(300);  // stories260K spells most of this a byte or two a token
  o.grammar =
      R"(root ::= "Let me look." "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>")";
  std::string shown;
  const ChatResult r = b.chat_stream(ask("Weather in Paris?"), {tool}, o, [&](std::string_view s) {
    shown += s;
    return true;
  });
  EXPECT_EQ(shown, "Let me look.");
  EXPECT_EQ(r.message.content, "Let me look.");
  ASSERT_EQ(r.tool_calls.size(), 1u);
  EXPECT_EQ(r.tool_calls[0].name, "get_weather");
  EXPECT_EQ(r.tool_calls[0].arguments, (nlohmann::json{{"city", "Paris"}}));
}

}  // namespace
}  // namespace g2c::inference
