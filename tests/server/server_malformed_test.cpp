// The malformed-request catalogue: each bad request gets a 4xx in its API's error shape (Ollama
// {"error": "..."}, OpenAI {"error": {"message", "type", ...}}) with a JSON content type, and the server
// answers normally afterwards.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "serve_fixture.hpp"

namespace g2c {
namespace {

using nlohmann::json;

struct Case {
  const char* name;
  const char* method;  // "POST", "GET", "DELETE"
  const char* path;
  std::string body;  // sent as is
  int status;
};

std::string j(const json& v) { return v.dump(); }

const json kMsg = json::array({{{"role", "user"}, {"content", "hi"}}});

std::vector<Case> catalogue() {
  const std::string long_text = [] {
    std::string s;
    for (int i = 0; i < 400; ++i) s += "once upon a time ";
    return s;
  }();
  return {
      // Ollama: the body itself.
      {"empty body", "POST", "/api/generate", "", 400},
      {"truncated JSON", "POST", "/api/generate", R"({"model": "stories260K", "prompt": )", 400},
      {"body is an array", "POST", "/api/generate", "[1, 2]", 400},
      {"body is a string", "POST", "/api/chat", R"("hello")", 400},
      {"invalid UTF-8 in a string", "POST", "/api/generate", "{\"model\":\"stories260K\",\"prompt\":\"a\xff\xfe\"}",
       400},
      {"lone surrogate escape", "POST", "/api/generate", R"({"model":"stories260K","prompt":"\ud800"})", 400},
      // Ollama: fields.
      {"no model", "POST", "/api/generate", j({{"prompt", "x"}}), 400},
      {"model not a string", "POST", "/api/generate", j({{"model", 5}, {"prompt", "x"}}), 400},
      {"unknown model", "POST", "/api/generate", j({{"model", "nope"}, {"prompt", "x"}}), 404},
      {"prompt not a string", "POST", "/api/generate", j({{"model", "stories260K"}, {"prompt", 5}}), 400},
      {"options not an object", "POST", "/api/generate",
       j({{"model", "stories260K"}, {"prompt", "x"}, {"options", "hot"}}), 400},
      {"temperature a string", "POST", "/api/generate",
       j({{"model", "stories260K"}, {"prompt", "x"}, {"options", {{"temperature", "hot"}}}}), 400},
      {"negative num_predict", "POST", "/api/generate",
       j({{"model", "stories260K"}, {"prompt", "x"}, {"options", {{"num_predict", -5}}}}), 400},
      {"huge num_predict", "POST", "/api/generate",
       j({{"model", "stories260K"}, {"prompt", "x"}, {"options", {{"num_predict", 1e12}}}}), 400},
      {"fractional num_predict", "POST", "/api/generate",
       j({{"model", "stories260K"}, {"prompt", "x"}, {"options", {{"num_predict", 3.5}}}}), 400},
      {"top_p above 1", "POST", "/api/generate",
       j({{"model", "stories260K"}, {"prompt", "x"}, {"options", {{"top_p", 2}}}}), 400},
      {"stop not strings", "POST", "/api/generate",
       j({{"model", "stories260K"}, {"prompt", "x"}, {"options", {{"stop", 5}}}}), 400},
      {"stream not a boolean", "POST", "/api/generate",
       j({{"model", "stories260K"}, {"prompt", "x"}, {"stream", "yes"}}), 400},
      {"keep_alive not a duration", "POST", "/api/generate",
       j({{"model", "stories260K"}, {"prompt", "x"}, {"keep_alive", "forever"}}), 400},
      {"context not token ids", "POST", "/api/generate",
       j({{"model", "stories260K"}, {"prompt", "x"}, {"context", {"a"}}}), 400},
      {"context id outside the vocabulary", "POST", "/api/generate",
       j({{"model", "stories260K"}, {"prompt", "x"}, {"context", {1, 100000}}}), 400},
      {"raw with system", "POST", "/api/generate",
       j({{"model", "stories260K"}, {"prompt", "x"}, {"raw", true}, {"system", "s"}}), 400},
      {"prompt over the context", "POST", "/api/generate", j({{"model", "stories260K"}, {"prompt", long_text}}), 400},
      {"unknown format", "POST", "/api/generate", j({{"model", "stories260K"}, {"prompt", "x"}, {"format", "xml"}}),
       400},
      {"format schema with an unsupported keyword", "POST", "/api/generate",
       j({{"model", "stories260K"}, {"prompt", "x"}, {"format", {{"type", "number"}, {"minimum", 1}}}}), 400},
      {"format schema with a dangling $ref", "POST", "/api/chat",
       j({{"model", "stories260K"},
          {"messages", {{{"role", "user"}, {"content", "x"}}}},
          {"format", {{"$ref", "#/$defs/x"}}}}),
       400},
      {"response_format json_schema without a schema", "POST", "/v1/chat/completions",
       j({{"model", "stories260K"},
          {"messages", {{{"role", "user"}, {"content", "x"}}}},
          {"response_format", {{"type", "json_schema"}, {"json_schema", {{"name", "x"}}}}}}),
       400},
      {"response_format of an unknown type", "POST", "/v1/chat/completions",
       j({{"model", "stories260K"},
          {"messages", {{{"role", "user"}, {"content", "x"}}}},
          {"response_format", {{"type", "yaml"}}}}),
       400},
      {"thinking on a model without it", "POST", "/api/generate",
       j({{"model", "stories260K"}, {"prompt", "x"}, {"think", true}}), 400},
      {"messages not an array", "POST", "/api/chat", j({{"model", "stories260K"}, {"messages", "hi"}}), 400},
      {"message without a role", "POST", "/api/chat",
       j({{"model", "stories260K"}, {"messages", {{{"content", "hi"}}}}}), 400},
      {"unknown role", "POST", "/api/chat",
       j({{"model", "stories260K"}, {"messages", {{{"role", "wizard"}, {"content", "hi"}}}}}), 400},
      {"tool call arguments as a string (native API)", "POST", "/api/chat",
       j({{"model", "stories260K"},
          {"messages",
           {{{"role", "assistant"}, {"tool_calls", {{{"function", {{"name", "f"}, {"arguments", "{}"}}}}}}}}}}),
       400},
      {"embed input a number", "POST", "/api/embed", j({{"model", "stories260K"}, {"input", 5}}), 400},
      {"embed input numbers", "POST", "/api/embed", j({{"model", "stories260K"}, {"input", {1, 2}}}), 400},
      {"embed over the context without truncate", "POST", "/api/embed",
       j({{"model", "stories260K"}, {"input", long_text}, {"truncate", false}}), 400},
      {"show without a model", "POST", "/api/show", j(json::object()), 400},
      {"copy without a destination", "POST", "/api/copy", j({{"source", "stories260K"}}), 400},
      {"delete an unknown model", "DELETE", "/api/delete", j({{"name", "nope"}}), 404},
      {"pull an unknown model", "POST", "/api/pull", j({{"name", "nope"}}), 404},
      {"a body over the size limit", "POST", "/api/generate", std::string(33u << 20, 'x'), 413},
      // OpenAI.
      {"completion without a prompt", "POST", "/v1/completions", j({{"model", "stories260K"}}), 400},
      {"completion with an empty prompt array", "POST", "/v1/completions",
       j({{"model", "stories260K"}, {"prompt", json::array()}}), 400},
      {"two prompts", "POST", "/v1/completions", j({{"model", "stories260K"}, {"prompt", {"a", "b"}}}), 400},
      {"token id outside the vocabulary", "POST", "/v1/completions",
       j({{"model", "stories260K"}, {"prompt", {1, 999999}}}), 400},
      {"negative token id", "POST", "/v1/completions", j({{"model", "stories260K"}, {"prompt", {1, -1}}}), 400},
      {"negative max_tokens", "POST", "/v1/completions",
       j({{"model", "stories260K"}, {"prompt", "x"}, {"max_tokens", -1}}), 400},
      {"n above 1", "POST", "/v1/completions", j({{"model", "stories260K"}, {"prompt", "x"}, {"n", 2}}), 400},
      {"logprobs above 20", "POST", "/v1/completions", j({{"model", "stories260K"}, {"prompt", "x"}, {"logprobs", 50}}),
       400},
      {"completion prompt over the context", "POST", "/v1/completions",
       j({{"model", "stories260K"}, {"prompt", long_text}}), 400},
      {"empty messages", "POST", "/v1/chat/completions", j({{"model", "stories260K"}, {"messages", json::array()}}),
       400},
      {"no messages", "POST", "/v1/chat/completions", j({{"model", "stories260K"}}), 400},
      {"content a number", "POST", "/v1/chat/completions",
       j({{"model", "stories260K"}, {"messages", {{{"role", "user"}, {"content", 5}}}}}), 400},
      {"top_logprobs without logprobs", "POST", "/v1/chat/completions",
       j({{"model", "stories260K"}, {"messages", kMsg}, {"top_logprobs", 3}}), 400},
      {"stream_options not an object", "POST", "/v1/chat/completions",
       j({{"model", "stories260K"}, {"messages", kMsg}, {"stream_options", "x"}}), 400},
      {"tools on a model without a tool format", "POST", "/v1/chat/completions",
       j({{"model", "stories260K"},
          {"messages", kMsg},
          {"tools", {{{"type", "function"}, {"function", {{"name", "f"}}}}}}}),
       400},
      {"unknown chat model", "POST", "/v1/chat/completions", j({{"model", "nope"}, {"messages", kMsg}}), 404},
      {"unknown encoding_format", "POST", "/v1/embeddings",
       j({{"model", "stories260K"}, {"input", "x"}, {"encoding_format", "hex"}}), 400},
      {"empty embedding input", "POST", "/v1/embeddings", j({{"model", "stories260K"}, {"input", json::array()}}), 400},
      {"token-array embedding input", "POST", "/v1/embeddings", j({{"model", "stories260K"}, {"input", {{1, 2}}}}),
       400},
      {"openai body not JSON", "POST", "/v1/chat/completions", "model=stories260K", 400},
      // Operations.
      {"tokenize without content", "POST", "/tokenize", j({{"model", "stories260K"}}), 400},
      {"detokenize a negative id", "POST", "/detokenize", j({{"model", "stories260K"}, {"tokens", {-1}}}), 400},
  };
}

TEST(ServerMalformed, EveryBadRequestIsA4xxInItsApiShapeAndTheServerGoesOn) {
  test::ServeFixture srv({.models = {"models/stories260K.gguf"}, .ctx = 256});
  const auto cases = catalogue();
  ASSERT_GE(cases.size(), 30u);
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    test::HttpReply r;
    if (std::string(c.method) == "POST") {
      r = srv.post_raw(c.path, c.body);
    } else if (std::string(c.method) == "DELETE") {
      r = srv.del(c.path, json::parse(c.body));
    }
    EXPECT_EQ(r.status, c.status) << r.body.substr(0, 300);
    EXPECT_NE(r.content_type.find("application/json"), std::string::npos) << r.content_type;
    json e;
    ASSERT_NO_THROW(e = json::parse(r.body)) << r.body.substr(0, 300);
    if (std::string(c.path).starts_with("/v1/")) {
      ASSERT_TRUE(e["error"].is_object()) << r.body;
      EXPECT_TRUE(e["error"]["message"].is_string());
      EXPECT_FALSE(e["error"]["message"].get<std::string>().empty());
      EXPECT_TRUE(e["error"]["type"].is_string());
    } else {
      ASSERT_TRUE(e["error"].is_string()) << r.body;
      EXPECT_FALSE(e["error"].get<std::string>().empty());
      EXPECT_EQ(e["error"].get<std::string>().find('\n'), std::string::npos);  // one line
    }
    // Still serving, and still generating.
    EXPECT_EQ(srv.get("/api/version").status, 200);
  }
  const test::HttpReply ok =
      srv.post("/api/generate",
               {{"model", "stories260K"}, {"prompt", "Once"}, {"stream", false}, {"options", {{"num_predict", 4}}}});
  EXPECT_EQ(ok.status, 200) << ok.body;
  EXPECT_EQ(srv.metric("g2c_active_sequences{model=\"stories260K:latest\"}"), 0);
}

}  // namespace
}  // namespace g2c
