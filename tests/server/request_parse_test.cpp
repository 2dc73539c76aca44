// Request bodies -> typed requests (src/g2c/server/request_parse.hpp), with no server and no model: the
// defaults each API documents, the field at fault named in every 400, and the shapes both APIs accept.
// Also run under ASan+UBSan (label parsers).
#include <gtest/gtest.h>

#include "g2c/server/api_error.hpp"
#include "g2c/server/request_parse.hpp"

namespace g2c::server {
namespace {

using nlohmann::json;

// The 400's message, or "" when the body parses.
std::string error_of(const std::function<void()>& f, std::string* param = nullptr) {
  try {
    f();
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status(), 400);
    if (param) *param = e.param();
    return e.what();
  }
  return "";
}

TEST(RequestParse, BodyMustBeAJsonObject) {
  EXPECT_EQ(error_of([] { parse_body(""); }), "missing request body");
  EXPECT_NE(error_of([] { parse_body("{"); }).find("invalid JSON"), std::string::npos);
  EXPECT_NE(error_of([] { parse_body("[1]"); }).find("must be a JSON object, got array"), std::string::npos);
  EXPECT_NE(error_of([] { parse_body("{\"a\":\"\xff\"}"); }).find("invalid JSON"), std::string::npos);
  EXPECT_EQ(parse_body(R"({"a": 1})")["a"], 1);
}

TEST(RequestParse, OllamaDefaultsAndOptions) {
  OllamaGenerateRequest r = parse_ollama_generate({{"model", "m"}, {"prompt", "p"}});
  EXPECT_TRUE(r.stream);  // Ollama streams unless told not to
  EXPECT_EQ(r.sampling.params.max_tokens, -1);
  EXPECT_FLOAT_EQ(r.sampling.params.sampling.temperature, 0.8f);
  EXPECT_EQ(r.sampling.params.sampling.top_k, 40);
  EXPECT_FLOAT_EQ(r.sampling.params.sampling.top_p, 0.9f);
  EXPECT_EQ(r.sampling.params.sampling.seed, sampling::kRandomSeed);
  r = parse_ollama_generate({{"model", "m"},
                             {"stream", false},
                             {"options",
                              {{"num_predict", 100.0},  // an integral float is an integer
                               {"temperature", 0},
                               {"seed", 42},
                               {"stop", {"\n", ""}},
                               {"num_ctx", 4096},
                               {"mirostat", 2},  // removed options are accepted and ignored
                               {"unknown_thing", "x"}}}});
  EXPECT_FALSE(r.stream);
  EXPECT_EQ(r.sampling.params.max_tokens, 100);
  EXPECT_EQ(r.sampling.params.sampling.seed, 42u);
  EXPECT_EQ(r.sampling.params.stop, std::vector<std::string>{"\n"});
  EXPECT_EQ(r.sampling.num_ctx, 4096);
  EXPECT_EQ(parse_ollama_generate({{"model", "m"}, {"options", {{"num_predict", -2}}}}).sampling.params.max_tokens, -1);
  std::string param;
  EXPECT_NE(error_of(
                [] {
                  parse_ollama_generate({{"model", "m"}, {"options", {{"num_predict", -3}}}});
                },
                &param)
                .find("options.num_predict -3 is out of range"),
            std::string::npos);
  EXPECT_EQ(param, "options.num_predict");
  EXPECT_NE(error_of(
                [] {
                  parse_ollama_generate({{"model", "m"}, {"options", {{"top_k", "40"}}}});
                },
                &param)
                .find("options.top_k must be an integer, got string"),
            std::string::npos);
  EXPECT_EQ(error_of([] { parse_ollama_generate({{"prompt", "x"}}); }), "model is required");
}

TEST(RequestParse, KeepAliveAsOllamaReadsIt) {
  using std::chrono::nanoseconds;
  auto ka = [](const json& v) { return parse_keep_alive({{"keep_alive", v}}); };
  EXPECT_EQ(ka("5m"), nanoseconds(300'000'000'000));
  EXPECT_EQ(ka("1h30m"), nanoseconds(5'400'000'000'000));
  EXPECT_EQ(ka("300ms"), nanoseconds(300'000'000));
  EXPECT_EQ(ka(0), nanoseconds(0));
  EXPECT_EQ(ka("0"), nanoseconds(0));
  EXPECT_EQ(ka(10), nanoseconds(10'000'000'000));
  EXPECT_EQ(ka(-1), nanoseconds::max());
  EXPECT_EQ(ka("-1m"), nanoseconds::max());
  EXPECT_FALSE(parse_keep_alive(json::object()).has_value());
  for (const char* bad : {"forever", "5x", "m", "", "1m5"})
    EXPECT_NE(error_of([&] { ka(bad); }).find("keep_alive"), std::string::npos) << bad;
}

TEST(RequestParse, ChatMessages) {
  OllamaChatRequest r = parse_ollama_chat(
      {{"model", "m"},
       {"messages",
        {{{"role", "System"}, {"content", "be brief"}},
         {{"role", "assistant"}, {"tool_calls", {{{"function", {{"name", "f"}, {"arguments", {{"x", 1}}}}}}}}},
         {{"role", "tool"}, {"content", "42"}, {"tool_name", "f"}},
         {{"role", "user"}, {"content", "hi"}, {"images", {"aGk="}}}}}});
  ASSERT_EQ(r.messages.size(), 4u);
  EXPECT_EQ(r.messages[0].role, "system");  // lower-cased, as Ollama does
  EXPECT_EQ(r.messages[1].tool_calls.at(0).name, "f");
  EXPECT_EQ(r.messages[1].tool_calls.at(0).arguments["x"], 1);
  EXPECT_EQ(r.messages[2].tool_name, "f");
  EXPECT_TRUE(parse_ollama_chat({{"model", "m"}}).messages.empty());  // empty: load only
  // OpenAI: developer is system, content parts are joined, images dropped, arguments as a JSON string.
  OpenAIChatRequest o = parse_openai_chat(
      {{"model", "m"},
       {"messages",
        {{{"role", "developer"}, {"content", "be brief"}},
         {{"role", "user"},
          {"content",
           {{{"type", "text"}, {"text", "a"}},
            {{"type", "image_url"}, {"image_url", {{"url", "data:x"}}}},
            {{"type", "text"}, {"text", "b"}}}}},
         {{"role", "assistant"},
          {"content", nullptr},
          {"tool_calls",
           {{{"id", "c1"}, {"type", "function"}, {"function", {{"name", "f"}, {"arguments", "{\"x\":2}"}}}}}}}}}});
  EXPECT_EQ(o.messages[0].role, "system");
  EXPECT_EQ(o.messages[1].content, "ab");
  EXPECT_EQ(o.messages[2].tool_calls.at(0).arguments["x"], 2);
  EXPECT_FALSE(o.stream);  // OpenAI does not stream unless asked
  EXPECT_FLOAT_EQ(o.sampling.params.sampling.temperature, 1.0f);
  EXPECT_FLOAT_EQ(o.sampling.params.sampling.top_p, 1.0f);
  std::string param;
  error_of([] { parse_openai_chat({{"model", "m"}, {"messages", json::array()}}); }, &param);
  EXPECT_EQ(param, "messages");
  error_of([] { parse_ollama_chat({{"model", "m"}, {"messages", {{{"role", "bot"}}}}}); }, &param);
  EXPECT_EQ(param, "messages[0].role");
}

// Found by fuzz/request_fuzz (input: fuzz/regressions/request/tool_call_without_name.json): a tool call
// in the history without function.name escaped as FormatError (a 500) instead of a 400 naming the field.
TEST(RequestParse, FuzzToolCallWithoutNameIsA400) {
  const std::string body =
      R"({"model": "m", "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "",)"
      R"( "tool_calls": [{"function": {"naem": "f", "arguments": {"a": 1}}}]}]})";
  std::string param;
  EXPECT_NE(error_of([&] { parse_ollama_chat(parse_body(body)); }, &param).find("name"), std::string::npos);
  EXPECT_EQ(param, "messages[1].tool_calls");
  EXPECT_NE(error_of([&] { parse_openai_chat(parse_body(body)); }).find("name"), std::string::npos);
}

TEST(RequestParse, OpenAICompletionPromptsAndLogprobs) {
  OpenAICompletionRequest r = parse_openai_completion({{"model", "m"}, {"prompt", {1, 2, 3}}});
  EXPECT_TRUE(r.prompt_is_ids);
  EXPECT_EQ(r.prompt_ids, (std::vector<std::int32_t>{1, 2, 3}));
  r = parse_openai_completion({{"model", "m"}, {"prompt", {{4, 5}}}});
  EXPECT_EQ(r.prompt_ids, (std::vector<std::int32_t>{4, 5}));
  r = parse_openai_completion({{"model", "m"}, {"prompt", {"text"}}, {"max_tokens", 7}, {"max_completion_tokens", 9}});
  EXPECT_EQ(r.prompt_text, "text");
  EXPECT_EQ(r.sampling.params.max_tokens, 9);  // the newer field wins
  EXPECT_EQ(parse_openai_completion({{"model", "m"}, {"prompt", "x"}}).sampling.params.max_tokens, -1);
  r = parse_openai_completion({{"model", "m"}, {"prompt", "x"}, {"echo", true}, {"logprobs", 3}, {"max_tokens", 0}});
  EXPECT_TRUE(r.sampling.params.logprobs);
  EXPECT_EQ(r.sampling.params.top_logprobs, 3);
  EXPECT_TRUE(r.sampling.params.prompt_logprobs);
  EXPECT_EQ(r.sampling.params.max_tokens, 0);
  r = parse_openai_completion(
      {{"model", "m"}, {"prompt", "x"}, {"stream", true}, {"stream_options", {{"include_usage", true}}}});
  EXPECT_TRUE(r.include_usage);
  // The llama.cpp knobs and an Ollama options object through /v1.
  r = parse_openai_completion({{"model", "m"}, {"prompt", "x"}, {"top_k", 5}, {"options", {{"num_ctx", 8192}}}});
  EXPECT_EQ(r.sampling.params.sampling.top_k, 5);
  EXPECT_EQ(r.sampling.num_ctx, 8192);
  for (const json& bad : {json{{"model", "m"}, {"prompt", {"a", "b"}}}, json{{"model", "m"}, {"prompt", {1, -2}}},
                          json{{"model", "m"}, {"prompt", {1, 2.5}}}, json{{"model", "m"}, {"prompt", true}},
                          json{{"model", "m"}}, json{{"model", "m"}, {"prompt", "x"}, {"logprobs", 21}}})
    EXPECT_NE(error_of([&] { parse_openai_completion(bad); }), "") << bad.dump();
}

TEST(RequestParse, Embeddings) {
  EXPECT_EQ(parse_ollama_embed({{"model", "m"}, {"input", "a"}}).inputs, std::vector<std::string>{"a"});
  EXPECT_TRUE(parse_ollama_embed({{"model", "m"}, {"input", json::array()}}).inputs.empty());
  EXPECT_TRUE(parse_ollama_embed({{"model", "m"}}).truncate);
  EXPECT_NE(error_of([] {
              parse_ollama_embed({{"model", "m"}, {"input", 3}});
            }).find("invalid input type"),
            std::string::npos);
  EXPECT_TRUE(parse_openai_embeddings({{"model", "m"}, {"input", "a"}, {"encoding_format", "base64"}}).base64);
  EXPECT_FALSE(parse_openai_embeddings({{"model", "m"}, {"input", "a"}}).base64);
  EXPECT_NE(error_of([] { parse_openai_embeddings({{"model", "m"}, {"input", json::array()}}); }), "");
  EXPECT_NE(error_of([] {
              parse_openai_embeddings({{"model", "m"}, {"input", "a"}, {"encoding_format", "hex"}});
            }),
            "");
}

TEST(RequestParse, ToolsAndFormatAreRefusedUntilSupported) {
  std::string param;
  // Tools are shape-checked here; whether the model can use them is decided with its template.
  EXPECT_EQ(error_of(
                [] {
                  parse_ollama_chat({{"model", "llama3"}, {"tools", {{{"type", "function"}}}}});
                },
                &param),
            "invalid request: tools[0].function must be an object");
  EXPECT_EQ(param, "tools");
  const json tool = {{"type", "function"}, {"function", {{"name", "f"}, {"parameters", json::object()}}}};
  EXPECT_EQ(parse_ollama_chat({{"model", "m"}, {"tools", {tool}}}).tools.size(), 1u);
  EXPECT_EQ(error_of([] {
              parse_ollama_generate({{"model", "m"}, {"tools", {{{"type", "function"}}}}});
            }),
            "m does not support tools");
  // tool_choice: none drops the tools, auto keeps them, required / named are refused (no grammar for the call formats
  // yet).
  const json tmsgs = json::array({{{"role", "user"}, {"content", "x"}}});
  EXPECT_EQ(
      parse_openai_chat({{"model", "m"}, {"messages", tmsgs}, {"tools", {tool}}, {"tool_choice", "none"}}).tools.size(),
      0u);
  EXPECT_EQ(
      parse_openai_chat({{"model", "m"}, {"messages", tmsgs}, {"tools", {tool}}, {"tool_choice", "auto"}}).tools.size(),
      1u);
  EXPECT_NE(
      error_of(
          [&] {
            parse_openai_chat({{"model", "m"}, {"messages", tmsgs}, {"tools", {tool}}, {"tool_choice", "required"}});
          },
          &param)
          .find("tool_choice \"required\" is not supported"),
      std::string::npos);
  EXPECT_EQ(param, "tool_choice");
  EXPECT_NE(error_of([&] {
              parse_openai_chat({{"model", "m"},
                                 {"messages", tmsgs},
                                 {"tools", {tool}},
                                 {"tool_choice", {{"type", "function"}, {"function", {{"name", "f"}}}}}});
            }).find("(function f)"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              parse_openai_chat({{"model", "m"}, {"messages", tmsgs}, {"tool_choice", "sometimes"}});
            }).find("not one of none, auto, required"),
            std::string::npos);
  EXPECT_EQ(parse_ollama_chat({{"model", "m"}, {"tools", json::array()}, {"format", ""}}).model, "m");
  // Structured output: format "json" / a schema and response_format json_object / json_schema become a
  // grammar; a schema g2c cannot convert is a 400 naming the field.
  EXPECT_EQ(parse_ollama_chat({{"model", "m"}, {"format", ""}}).sampling.params.grammar, nullptr);
  EXPECT_NE(parse_ollama_generate({{"model", "m"}, {"format", "json"}}).sampling.params.grammar, nullptr);
  EXPECT_NE(parse_ollama_chat(
                {{"model", "m"}, {"format", {{"type", "object"}, {"properties", {{"a", {{"type", "integer"}}}}}}}})
                .sampling.params.grammar,
            nullptr);
  EXPECT_EQ(error_of(
                [] {
                  parse_ollama_generate({{"model", "m"}, {"format", {{"type", "string"}, {"pattern", "x"}}}});
                },
                &param),
            "invalid format: json schema: unsupported keyword(s): pattern (at #)");
  EXPECT_EQ(param, "format");
  EXPECT_NE(error_of([] {
              parse_ollama_generate({{"model", "m"}, {"format", 3}});
            }).find("invalid format"),
            std::string::npos);
  EXPECT_EQ(error_of(
                [] {
                  parse_openai_chat({{"model", "m"},
                                     {"messages", {{{"role", "user"}, {"content", "x"}}}},
                                     {"response_format", {{"type", "json_schema"}}}});
                },
                &param),
            "invalid request: response_format.json_schema is required");
  EXPECT_EQ(param, "response_format.json_schema");
  const json msgs = {{{"role", "user"}, {"content", "x"}}};
  EXPECT_NE(parse_openai_chat({{"model", "m"}, {"messages", msgs}, {"response_format", {{"type", "json_object"}}}})
                .sampling.params.grammar,
            nullptr);
  EXPECT_NE(parse_openai_chat(
                {{"model", "m"},
                 {"messages", msgs},
                 {"response_format",
                  {{"type", "json_schema"}, {"json_schema", {{"name", "n"}, {"schema", {{"type", "boolean"}}}}}}}})
                .sampling.params.grammar,
            nullptr);
  // llama-server's leniency: the schema at response_format.schema.
  EXPECT_NE(parse_openai_completion({{"model", "m"},
                                     {"prompt", "x"},
                                     {"response_format", {{"type", "json_object"}, {"schema", {{"type", "null"}}}}}})
                .sampling.params.grammar,
            nullptr);
  EXPECT_EQ(error_of([] {
              parse_openai_chat({{"model", "m"},
                                 {"messages", {{{"role", "user"}, {"content", "x"}}}},
                                 {"response_format", {{"type", "json_schema"}, {"json_schema", {{"name", "n"}}}}}});
            }),
            "invalid request: response_format.json_schema.schema is required");
  EXPECT_EQ(parse_openai_chat({{"model", "m"},
                               {"messages", {{{"role", "user"}, {"content", "x"}}}},
                               {"response_format", {{"type", "text"}}}})
                .model,
            "m");
}

}  // namespace
}  // namespace g2c::server
