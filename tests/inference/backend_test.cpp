#include "g2c/inference/backend.hpp"

#include <gtest/gtest.h>

#include "fake_backend.hpp"
#include "g2c/core/error.hpp"

namespace g2c::inference {
namespace {

TEST(InferenceResult, TokensPerSecondIsCompletionTokensOverWallSeconds) {
  InferenceResult r;
  r.completion_tokens = 50;
  r.latency_ms = 250.0;
  ASSERT_TRUE(r.tokens_per_second().has_value());
  EXPECT_DOUBLE_EQ(*r.tokens_per_second(), 200.0);
  r.latency_ms = 0.0;  // no time measured: no rate, rather than infinity
  EXPECT_FALSE(r.tokens_per_second().has_value());
  r.latency_ms = 100.0;
  r.completion_tokens.reset();
  EXPECT_FALSE(r.tokens_per_second().has_value());
}

TEST(Backend, DefaultStreamIsCompletePlusOneChunk) {
  testing::FakeBackend b("fake", "hello world");
  std::vector<std::string> chunks;
  InferenceResult r = b.stream("p", {}, [&](std::string_view s) {
    chunks.emplace_back(s);
    return true;
  });
  EXPECT_EQ(chunks, std::vector<std::string>{"hello world"});
  EXPECT_EQ(r.completion, "hello world");
  EXPECT_FALSE(r.metadata.contains("canceled"));
  r = b.stream("p", {}, [](std::string_view) { return false; });
  EXPECT_EQ(r.metadata.value("canceled", false), true);
}

TEST(Backend, DefaultChatRendersPlainAndRefusesTools) {
  testing::FakeBackend b("fake", "Paris.");
  ChatResult c = b.chat({{"user", "Capital of France?", {}, "", ""}});
  EXPECT_EQ(b.prompts.back(), "User: Capital of France?\n\nAssistant:");
  EXPECT_EQ(c.message.role, "assistant");
  EXPECT_EQ(c.message.content, "Paris.");
  EXPECT_TRUE(c.tool_calls.empty());
  EXPECT_THROW(b.chat({{"user", "x", {}, "", ""}}, {nlohmann::json{{"type", "function"}}}), UnsupportedError);
}

TEST(ToolCalls, ParsesBothWireShapes) {
  // Ollama native: arguments is an object (api-compat.md §2.11).
  ToolCall a = tool_call_from_json(nlohmann::json::parse(
      R"({"id":"call_k3x9q2ab","function":{"index":0,"name":"get_weather","arguments":{"city":"Tokyo"}}})"));
  EXPECT_EQ(a.id, "call_k3x9q2ab");
  EXPECT_EQ(a.name, "get_weather");
  EXPECT_EQ(a.arguments["city"], "Tokyo");
  EXPECT_TRUE(a.arguments_valid);
  // OpenAI: arguments is a JSON-encoded string (§4.2).
  ToolCall b = tool_call_from_json(nlohmann::json::parse(
      R"({"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Tokyo\",\"days\":3}"}})"));
  EXPECT_EQ(b.arguments["days"], 3);
  // A model that emits broken JSON: kept as text, flagged.
  ToolCall c = tool_call_from_json(nlohmann::json::parse(R"({"function":{"name":"f","arguments":"{city: Tokyo"}})"));
  EXPECT_FALSE(c.arguments_valid);
  EXPECT_EQ(c.arguments, "{city: Tokyo");
  EXPECT_THROW(tool_call_from_json(nlohmann::json::parse(R"({"function":{"arguments":{}}})")), FormatError);
}

TEST(ToolCalls, MessagesSerialiseInEachApiShape) {
  ChatMessage m{"assistant", "", {{"call_1", "get_weather", {{"city", "Tokyo"}}, true}}, "", ""};
  nlohmann::json native = message_to_json(m, false);
  EXPECT_EQ(native["tool_calls"][0]["function"]["arguments"]["city"], "Tokyo");
  nlohmann::json oai = message_to_json(m, true);
  EXPECT_EQ(oai["tool_calls"][0]["function"]["arguments"], R"({"city":"Tokyo"})");
  EXPECT_EQ(oai["tool_calls"][0]["type"], "function");
}

}  // namespace
}  // namespace g2c::inference
