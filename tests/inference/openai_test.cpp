#include "g2c/inference/openai.hpp"

#include <gtest/gtest.h>

#include <mutex>

#include "fake_transport.hpp"
#include "g2c/core/timer.hpp"
#include "loopback.hpp"

namespace g2c::inference {
namespace {

using testing::LoopbackServer;

std::string sse(const nlohmann::json& j) { return "data: " + j.dump() + "\n\n"; }

nlohmann::json text_chunk(const std::string& text, const nlohmann::json& finish = nullptr) {
  return {{"id", "cmpl-7"},
          {"object", "text_completion"},
          {"created", 1735142223},
          {"model", "m"},
          {"choices", {{{"text", text}, {"index", 0}, {"logprobs", nullptr}, {"finish_reason", finish}}}}};
}

// A fake OpenAI-compatible server answering with the shapes of api-compat.md §4 (plus llama.cpp's
// `timings`, §5).
class OpenAIPeer {
 public:
  OpenAIPeer() {
    auto& s = srv.server();
    s.Post("/v1/completions", [this](const httplib::Request& req, httplib::Response& res) {
      nlohmann::json body = nlohmann::json::parse(req.body);
      record(body, req.get_header_value("Authorization"));
      std::string model = body["model"];
      if (model == "missing") {
        res.status = 404;
        res.set_content(R"({"error":{"message":"model 'missing' not found","type":"invalid_request_error",)"
                        R"("param":"model","code":"model_not_found"}})",
                        "application/json");
        return;
      }
      if (!body.value("stream", false)) {
        nlohmann::json j = text_chunk("Hello there", "stop");
        j["usage"] = {{"prompt_tokens", 5}, {"completion_tokens", 2}, {"total_tokens", 7}};
        j["timings"] = {{"prompt_n", 5},
                        {"prompt_ms", 12.5},
                        {"predicted_n", 2},
                        {"predicted_ms", 30.0},
                        {"predicted_per_second", 66.7}};
        if (body.contains("logprobs")) {
          j["choices"][0]["logprobs"] = {{"tokens", {"Hello", " there"}},
                                         {"token_logprobs", {-0.25, -0.75}},
                                         {"top_logprobs", nullptr},
                                         {"text_offset", {0, 5}}};
        }
        res.set_content(j.dump(), "application/json");
        return;
      }
      std::string out = ": ping\n\n" + sse(text_chunk("Hel")) + sse(text_chunk("lo")) + sse(text_chunk(" there"));
      if (model == "midstream") {
        out += sse({{"error", {{"message", "KV cache exhausted"}, {"type", "server_error"}, {"code", nullptr}}}});
      } else if (model == "truncated") {
        // ends with neither finish_reason nor [DONE]
      } else {
        out += sse(text_chunk("", "length"));
        out += sse({{"id", "cmpl-7"},
                    {"object", "text_completion"},
                    {"choices", nlohmann::json::array()},
                    {"usage", {{"prompt_tokens", 5}, {"completion_tokens", 3}, {"total_tokens", 8}}}});
        out += "data: [DONE]\n\n";
      }
      res.set_chunked_content_provider("text/event-stream", [out](std::size_t, httplib::DataSink& sink) {
        // Cut at odd places so events straddle socket reads.
        for (std::size_t i = 0; i < out.size(); i += 13)
          sink.write(out.data() + i, std::min<std::size_t>(13, out.size() - i));
        sink.done();
        return true;
      });
    });
    s.Post("/v1/chat/completions", [this](const httplib::Request& req, httplib::Response& res) {
      record(nlohmann::json::parse(req.body), req.get_header_value("Authorization"));
      res.set_content(
          R"({"id":"chatcmpl-1","object":"chat.completion","created":1735142223,"model":"m",)"
          R"("choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[{"id":"call_abc",)"
          R"("type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Tokyo\"}"}}]},)"
          R"("logprobs":null,"finish_reason":"tool_calls"}],)"
          R"("usage":{"prompt_tokens":23,"completion_tokens":5,"total_tokens":28}})",
          "application/json");
    });
    s.Get("/v1/models", [](const httplib::Request&, httplib::Response& res) {
      res.set_content(R"({"object":"list","data":[{"id":"m","object":"model","created":1,"owned_by":"library"}]})",
                      "application/json");
    });
    srv.start();
  }
  void record(const nlohmann::json& body, const std::string& auth) {
    std::lock_guard<std::mutex> lock(mu);
    last_body = body;
    last_auth = auth;
  }
  OpenAIBackend backend(const std::string& model, const std::string& key = "") {
    return OpenAIBackend(srv.url() + "/v1", model, key);
  }
  LoopbackServer srv;
  std::mutex mu;
  nlohmann::json last_body;
  std::string last_auth;
};

std::string error_of(const std::function<void()>& f, int* status = nullptr) {
  try {
    f();
  } catch (const OpenAIError& e) {
    if (status) *status = e.status();
    return e.what();
  }
  ADD_FAILURE() << "no OpenAIError thrown";
  return "";
}

TEST(OpenAI, BaseUrlNormalisation) {
  EXPECT_EQ(normalize_openai_base_url("http://h:8000"), "http://h:8000/v1");
  EXPECT_EQ(normalize_openai_base_url("http://h:8000/"), "http://h:8000/v1");
  EXPECT_EQ(normalize_openai_base_url("http://h:8000/v1/"), "http://h:8000/v1");
  EXPECT_EQ(normalize_openai_base_url("http://h:1234/api/openai/v1"), "http://h:1234/api/openai/v1");
  EXPECT_THROW(OpenAIBackend("http://h:1", ""), InvalidArgument);
}

TEST(OpenAI, CompleteReadsUsageAndLlamaCppTimings) {
  OpenAIPeer peer;
  GenerateOptions o;
  o.max_new_tokens = 9;
  o.temperature = 0.0;
  o.seed = 7;
  o.stop = {"\n"};
  InferenceResult r = peer.backend("m", "sk-test").complete("Say hello", o);
  nlohmann::json sent = peer.last_body;
  EXPECT_EQ(sent["model"], "m");
  EXPECT_EQ(sent["prompt"], "Say hello");
  EXPECT_EQ(sent["max_tokens"], 9);
  EXPECT_EQ(sent["temperature"], 0.0);
  EXPECT_EQ(sent["seed"], 7);
  EXPECT_EQ(sent["stop"], nlohmann::json::array({"\n"}));
  EXPECT_EQ(sent["stream"], false);
  EXPECT_FALSE(sent.contains("top_k"));
  EXPECT_EQ(peer.last_auth, "Bearer sk-test");
  EXPECT_EQ(r.completion, "Hello there");
  EXPECT_EQ(r.prompt_tokens, 5);
  EXPECT_EQ(r.completion_tokens, 2);
  EXPECT_DOUBLE_EQ(r.metadata["server_total_ms"].get<double>(), 42.5);
  EXPECT_DOUBLE_EQ(r.metadata["prompt_eval_ms"].get<double>(), 12.5);
  EXPECT_EQ(r.metadata["done_reason"], "stop");
  EXPECT_EQ(r.backend.name, "openai");
}

TEST(OpenAI, NoKeyNoAuthorizationHeader) {
  OpenAIPeer peer;
  peer.backend("m").complete("x");
  EXPECT_EQ(peer.last_auth, "");
}

TEST(OpenAI, LogprobsFromLegacyCompletions) {
  OpenAIPeer peer;
  GenerateOptions o;
  o.logprobs = true;
  InferenceResult r = peer.backend("m").complete("x", o);
  EXPECT_EQ(peer.last_body["logprobs"], 1);
  EXPECT_EQ(r.metadata["logprobs"], nlohmann::json::parse("[-0.25,-0.75]"));
}

TEST(OpenAI, SseStreamingWithUsage) {
  OpenAIPeer peer;
  std::vector<std::string> chunks;
  InferenceResult r = peer.backend("m").stream("x", {}, [&](std::string_view s) {
    chunks.emplace_back(s);
    return true;
  });
  EXPECT_EQ(peer.last_body["stream"], true);
  EXPECT_EQ(peer.last_body["stream_options"]["include_usage"], true);
  EXPECT_EQ(chunks, (std::vector<std::string>{"Hel", "lo", " there"}));
  EXPECT_EQ(r.completion, "Hello there");
  EXPECT_EQ(r.completion_tokens, 3);  // from the usage chunk after the finish chunk
  EXPECT_EQ(r.prompt_tokens, 5);
  EXPECT_EQ(r.metadata["done_reason"], "length");
  EXPECT_TRUE(r.metadata.contains("ttft_ms"));
  EXPECT_EQ(peer.backend("m").complete("x").completion, r.completion);  // stream == complete
}

// As Ollama.LatencyEnclosesBuildingTheRequestAndParsingTheAnswer: the transport answers at once, so
// building a big request or parsing a big answer is nearly all of the call and must be in latency_ms.
TEST(OpenAI, LatencyEnclosesBuildingTheRequestAndParsingTheAnswer) {
  const std::string big(4 << 20, 'x');
  for (bool big_prompt : {true, false}) {
    auto t = std::make_shared<testing::ScriptedTransport>();
    t->body = nlohmann::json{{"choices", {{{"text", big_prompt ? std::string("ok") : big}}}}}.dump();
    OpenAIBackend b(OpenAIConfig{"http://openai.invalid:8080/v1", "m", "", 5.0, t, "openai", {}});
    Timer outer;
    InferenceResult r = b.complete(big_prompt ? big : "hi");
    const double outer_ms = outer.elapsed_ms();
    EXPECT_EQ(r.completion.size(), big_prompt ? 2u : big.size());
    EXPECT_GT(r.latency_ms, 0.5 * outer_ms)
        << (big_prompt ? "big prompt: " : "big answer: ") << r.latency_ms << " of " << outer_ms << " ms";
  }
}

TEST(OpenAI, StreamCancel) {
  OpenAIPeer peer;
  int n = 0;
  InferenceResult r = peer.backend("m").stream("x", {}, [&](std::string_view) { return ++n < 1; });
  EXPECT_EQ(n, 1);
  EXPECT_EQ(r.completion, "Hel");
  EXPECT_EQ(r.metadata["canceled"], true);
}

TEST(OpenAI, Errors) {
  OpenAIPeer peer;
  int status = 0;
  std::string msg = error_of([&] { peer.backend("missing").complete("x"); }, &status);
  EXPECT_EQ(status, 404);
  EXPECT_NE(msg.find("model 'missing' not found"), std::string::npos) << msg;
  msg = error_of([&] { peer.backend("missing").stream("x", {}, nullptr); }, &status);
  EXPECT_EQ(status, 404);
  std::string got;
  msg = error_of([&] {
    peer.backend("midstream").stream("x", {}, [&](std::string_view s) {
      got += s;
      return true;
    });
  });
  EXPECT_EQ(got, "Hello there");
  EXPECT_NE(msg.find("mid-stream after 3 event(s): KV cache exhausted"), std::string::npos) << msg;
  msg = error_of([&] { peer.backend("truncated").stream("x", {}, nullptr); });
  EXPECT_NE(msg.find("without finish_reason or [DONE]"), std::string::npos) << msg;
  OpenAIBackend down("http://127.0.0.1:" + std::to_string(testing::closed_port()), "m");
  msg = error_of([&] { down.complete("x"); });
  EXPECT_NE(msg.find("cannot reach"), std::string::npos) << msg;
}

TEST(OpenAI, ChatParsesStringEncodedToolArguments) {
  OpenAIPeer peer;
  OpenAIBackend b = peer.backend("m");
  std::vector<ToolSpec> tools = {
      nlohmann::json::parse(R"({"type":"function","function":{"name":"get_weather","parameters":{"type":"object"}}})")};
  ChatResult c = b.chat({{"system", "Be brief.", {}, "", ""}, {"user", "Weather in Tokyo?", {}, "", ""}}, tools);
  EXPECT_EQ(peer.last_body["messages"][1]["content"], "Weather in Tokyo?");
  EXPECT_EQ(peer.last_body["tools"][0]["function"]["name"], "get_weather");
  ASSERT_EQ(c.tool_calls.size(), 1u);
  EXPECT_EQ(c.tool_calls[0].id, "call_abc");
  EXPECT_EQ(c.tool_calls[0].arguments["city"], "Tokyo");
  EXPECT_EQ(c.message.content, "");
  EXPECT_EQ(c.done_reason, "tool_calls");
  EXPECT_EQ(c.prompt_tokens, 23);
  // History goes back in OpenAI's shape: arguments JSON-encoded, the tool result by call id.
  b.chat({{"user", "Weather?", {}, "", ""}, c.message, {"tool", "11 degrees", {}, "", "call_abc"}}, tools);
  EXPECT_EQ(peer.last_body["messages"][1]["tool_calls"][0]["function"]["arguments"], R"({"city":"Tokyo"})");
  EXPECT_EQ(peer.last_body["messages"][2]["tool_call_id"], "call_abc");
}

TEST(OpenAI, ListModels) {
  OpenAIPeer peer;
  EXPECT_EQ(peer.backend("m").list_models(), std::vector<std::string>{"m"});
}

}  // namespace
}  // namespace g2c::inference
