#include "g2c/inference/ollama.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <mutex>
#include <thread>

#include "fake_transport.hpp"
#include "g2c/core/timer.hpp"
#include "loopback.hpp"

namespace g2c::inference {
namespace {

using testing::LoopbackServer;

// The final object of Ollama's documented /api/generate example (docs/api.md "Response"), so the
// ns -> ms conversion is checked against numbers we did not produce.
const char* kFinal =
    R"({"model":"llama3.2:3b","created_at":"2023-08-04T19:22:45.499127Z","response":"","done":true,)"
    R"("done_reason":"stop","context":[1,2,3],"total_duration":10706818083,"load_duration":6338219291,)"
    R"("prompt_eval_count":26,"prompt_eval_duration":130079000,"eval_count":259,"eval_duration":4232710000})";

std::string chunk(const std::string& piece) {
  return nlohmann::json{{"model", "llama3.2:3b"},
                        {"created_at", "2023-08-04T08:52:19.385406455-07:00"},
                        {"response", piece},
                        {"done", false}}
             .dump() +
         "\n";
}

void send_lines(httplib::Response& res, std::vector<std::string> lines) {
  res.set_chunked_content_provider("application/x-ndjson", [lines](std::size_t, httplib::DataSink& sink) {
    for (const std::string& l : lines) sink.write(l.data(), l.size());
    sink.done();
    return true;
  });
}

// A fake Ollama answering with the shapes of api-compat.md §2. The model name picks the behaviour.
class OllamaPeer {
 public:
  OllamaPeer() {
    auto& s = srv.server();
    s.Post("/api/generate", [this](const httplib::Request& req, httplib::Response& res) {
      nlohmann::json body = nlohmann::json::parse(req.body);
      {
        std::lock_guard<std::mutex> lock(mu);
        last_body = body;
      }
      std::string model = body["model"];
      bool stream = body.value("stream", true);
      if (model == "missing") {
        res.status = 404;
        res.set_content(R"({"error":"model 'missing' not found"})", "application/json");
      } else if (model == "badjson") {
        res.set_content("<html>not json</html>", "application/json");
      } else if (model == "slow") {
        std::this_thread::sleep_for(std::chrono::milliseconds(900));
        res.set_content(kFinal, "application/json");
      } else if (model == "crash") {
        res.status = 500;
        res.set_content(R"({"error":"llama runner process has terminated: signal: killed"})", "application/json");
      } else if (!stream) {
        nlohmann::json j = nlohmann::json::parse(kFinal);
        j["response"] = "The sky is blue.";
        if (body.value("logprobs", false)) {
          j["logprobs"] = nlohmann::json::parse(
              R"([{"token":"The","logprob":-0.01,"bytes":[84,104,101],"top_logprobs":[]},{"token":" sky","logprob":-0.5}])");
        }
        res.set_content(j.dump(), "application/json; charset=utf-8");
      } else if (model == "midstream") {
        send_lines(res, {chunk("The"), chunk(" sky"),
                         R"({"error":"an error was encountered while running the model: unexpected EOF"})"
                         "\n"});
      } else if (model == "truncated") {
        send_lines(res, {chunk("The"), chunk(" sky")});
      } else if (model == "badline") {
        send_lines(res, {chunk("The"), "{\"response\": \"tru\n"});
      } else {
        // The last chunk carries text too: clients must append `response` from every chunk.
        nlohmann::json last = nlohmann::json::parse(kFinal);
        last["response"] = ".";
        send_lines(res, {chunk("The"), chunk(" sky"), chunk(""), chunk(" is blue"), last.dump() + "\n"});
      }
    });
    s.Post("/api/chat", [this](const httplib::Request& req, httplib::Response& res) {
      nlohmann::json body = nlohmann::json::parse(req.body);
      {
        std::lock_guard<std::mutex> lock(mu);
        last_body = body;
      }
      // api-compat.md §2.11: native tool calls carry arguments as an object.
      res.set_content(
          R"({"model":"llama3.2:3b","created_at":"2025-10-26T17:21:21.196249Z","message":{"role":"assistant","content":"",)"
          R"("tool_calls":[{"id":"call_k3x9q2ab","function":{"index":0,"name":"get_weather","arguments":{"city":"Tokyo"}}}]},)"
          R"("done":true,"done_reason":"stop","total_duration":2000000000,"load_duration":1000000,"prompt_eval_count":80,)"
          R"("prompt_eval_duration":500000000,"eval_count":20,"eval_duration":1000000000})",
          "application/json");
    });
    s.Get("/api/version", [](const httplib::Request&, httplib::Response& res) {
      res.set_content(R"({"version":"0.6.5"})", "application/json");
    });
    srv.start();
  }
  nlohmann::json body() {
    std::lock_guard<std::mutex> lock(mu);
    return last_body;
  }
  OllamaBackend backend(const std::string& model, double timeout_s = 10.0) {
    return OllamaBackend(OllamaConfig{model, srv.url(), timeout_s, nullptr, "ollama", {}});
  }

  LoopbackServer srv;
  std::mutex mu;
  nlohmann::json last_body;
};

std::string error_of(const std::function<void()>& f, int* status = nullptr) {
  try {
    f();
  } catch (const OllamaError& e) {
    if (status) *status = e.status();
    return e.what();
  }
  ADD_FAILURE() << "no OllamaError thrown";
  return "";
}

TEST(Ollama, ResolvesOllamaHostLikeTheOfficialClients) {
  EXPECT_EQ(resolve_ollama_host(""), "http://127.0.0.1:11434");
  EXPECT_EQ(resolve_ollama_host("0.0.0.0"), "http://0.0.0.0:11434");
  EXPECT_EQ(resolve_ollama_host("example.com:8080"), "http://example.com:8080");
  EXPECT_EQ(resolve_ollama_host("http://example.com"), "http://example.com:80");
  EXPECT_EQ(resolve_ollama_host("https://example.com/"), "https://example.com:443");
  EXPECT_EQ(resolve_ollama_host("http://[::1]:1234"), "http://[::1]:1234");
  setenv("OLLAMA_HOST", "gpu-box", 1);
  EXPECT_EQ(default_ollama_url(), "http://gpu-box:11434");
  EXPECT_EQ(OllamaBackend("m").base_url(), "http://gpu-box:11434");
  unsetenv("OLLAMA_HOST");
  EXPECT_EQ(OllamaBackend("m").info().model_id, "m");
  EXPECT_EQ(OllamaBackend().info().model_id, "llama3.2:3b");
}

TEST(Ollama, CompleteMapsOptionsAndConvertsServerNanoseconds) {
  OllamaPeer peer;
  OllamaBackend b = peer.backend("llama3.2:3b");
  GenerateOptions o;
  o.max_new_tokens = 7;
  o.temperature = 0.5;
  o.top_k = 3;
  o.top_p = 0.9;
  o.seed = 42;
  o.stop = {"\n", "User:"};
  InferenceResult r = b.complete("Why is the sky blue?", o);

  nlohmann::json sent = peer.body();
  EXPECT_EQ(sent["model"], "llama3.2:3b");
  EXPECT_EQ(sent["prompt"], "Why is the sky blue?");
  EXPECT_EQ(sent["stream"], false);
  EXPECT_EQ(sent["options"],
            nlohmann::json::parse(
                R"({"num_predict":7,"temperature":0.5,"top_k":3,"top_p":0.9,"seed":42,"stop":["\n","User:"]})"));

  EXPECT_EQ(r.completion, "The sky is blue.");
  EXPECT_EQ(r.prompt, "Why is the sky blue?");
  EXPECT_EQ(r.prompt_tokens, 26);
  EXPECT_EQ(r.completion_tokens, 259);
  EXPECT_DOUBLE_EQ(r.metadata["server_total_ms"].get<double>(), 10706.818083);
  EXPECT_DOUBLE_EQ(r.metadata["load_ms"].get<double>(), 6338.219291);
  EXPECT_DOUBLE_EQ(r.metadata["prompt_eval_ms"].get<double>(), 130.079);
  EXPECT_DOUBLE_EQ(r.metadata["eval_ms"].get<double>(), 4232.71);
  EXPECT_NEAR(r.metadata["server_eval_tokens_per_second"].get<double>(), 259 / 4.23271, 1e-9);
  EXPECT_EQ(r.metadata["done_reason"], "stop");
  // Wall latency is ours: positive, and on loopback far below the server's claimed 10.7 s.
  EXPECT_GT(r.latency_ms, 0.0);
  EXPECT_LT(r.latency_ms, 10706.0);
  EXPECT_EQ(r.backend.name, "ollama");
  EXPECT_EQ(r.backend.extra["base_url"], peer.srv.url());
}

TEST(Ollama, UnsetOptionsAreNotSent) {
  OllamaPeer peer;
  peer.backend("llama3.2:3b").complete("hi");
  nlohmann::json opts = peer.body()["options"];
  EXPECT_EQ(opts, nlohmann::json::parse(R"({"num_predict":128,"temperature":1.0})"));
  EXPECT_FALSE(peer.body().contains("logprobs"));
}

TEST(Ollama, StreamParsesNdjsonAndEqualsComplete) {
  OllamaPeer peer;
  OllamaBackend b = peer.backend("llama3.2:3b");
  std::vector<std::string> chunks;
  InferenceResult r = b.stream("Why?", {}, [&](std::string_view s) {
    chunks.emplace_back(s);
    return true;
  });
  EXPECT_EQ(peer.body()["stream"], true);
  EXPECT_EQ(chunks, (std::vector<std::string>{"The", " sky", " is blue", "."}));  // empty piece not delivered
  EXPECT_EQ(r.completion, "The sky is blue.");
  EXPECT_EQ(r.completion_tokens, 259);
  EXPECT_DOUBLE_EQ(r.metadata["eval_ms"].get<double>(), 4232.71);
  EXPECT_TRUE(r.metadata.contains("ttft_ms"));
  EXPECT_LE(r.metadata["ttft_ms"].get<double>(), r.latency_ms);
  // complete() on the same server gives what the stream concatenates to, with the same counts.
  InferenceResult c = b.complete("Why?", {});
  EXPECT_EQ(c.completion, r.completion);
  EXPECT_EQ(c.completion_tokens, r.completion_tokens);
  EXPECT_EQ(c.prompt_tokens, r.prompt_tokens);
}

TEST(Ollama, AnExceptionFromTheCallbackComesOutUnchanged) {
  OllamaPeer peer;
  struct Stop {};
  EXPECT_THROW(peer.backend("llama3.2:3b").stream("Why?", {}, [](std::string_view) -> bool { throw Stop{}; }), Stop);
}

TEST(Ollama, LogprobsAreRequestedAndCollected) {
  OllamaPeer peer;
  GenerateOptions o;
  o.logprobs = true;
  InferenceResult r = peer.backend("llama3.2:3b").complete("Why?", o);
  EXPECT_EQ(peer.body()["logprobs"], true);
  EXPECT_EQ(r.metadata["logprobs"], nlohmann::json::parse("[-0.01,-0.5]"));
}

// The seed's injectable urlopen: any HttpTransport works, no socket needed.
class RecordingTransport : public HttpTransport {
 public:
  HttpResponse post_json(const HttpRequest& req) override {
    requests.push_back(req);
    return {200, "application/json", R"({"response":"canned","done":true,"eval_count":1})", false};
  }
  HttpResponse post_json_stream(const HttpRequest& req, const BodyChunkFn& on_chunk) override {
    requests.push_back(req);
    on_chunk("{\"response\":\"can\",\"done\":false}\n{\"response\":\"ned\",\"do");
    on_chunk("ne\":true,\"eval_count\":2}\n");
    return {200, "application/x-ndjson", "", false};
  }
  HttpResponse get(const HttpRequest& req) override {
    requests.push_back(req);
    return {200, "application/json", R"({"version":"9.9.9"})", false};
  }
  std::vector<HttpRequest> requests;
};

TEST(Ollama, TransportIsInjectable) {
  auto t = std::make_shared<RecordingTransport>();
  OllamaBackend b(OllamaConfig{"tiny", "http://ollama.invalid:11434", 3.0, t, "ollama", {}});
  EXPECT_EQ(b.complete("hi").completion, "canned");
  ASSERT_EQ(t->requests.size(), 1u);
  EXPECT_EQ(t->requests[0].url, "http://ollama.invalid:11434/api/generate");
  EXPECT_EQ(t->requests[0].timeout_s, 3.0);
  EXPECT_EQ(nlohmann::json::parse(t->requests[0].body)["model"], "tiny");
  InferenceResult s = b.stream("hi", {}, nullptr);  // a line split across two deliveries
  EXPECT_EQ(s.completion, "canned");
  EXPECT_EQ(s.completion_tokens, 2);
  EXPECT_EQ(b.version(), "9.9.9");
}

// latency_ms is the wall clock around the whole call (backend.hpp), building the request and parsing
// the answer included. This transport answers at once, so with a big prompt building the request is
// nearly all of the call, and with a big answer parsing it is: a clock that left either out would
// show a small part of what the caller waited.
TEST(Ollama, LatencyEnclosesBuildingTheRequestAndParsingTheAnswer) {
  const std::string big(4 << 20, 'x');
  for (bool big_prompt : {true, false}) {
    auto t = std::make_shared<testing::ScriptedTransport>();
    t->body = nlohmann::json{{"response", big_prompt ? std::string("ok") : big}, {"done", true}}.dump();
    OllamaBackend b(OllamaConfig{"m", "http://ollama.invalid:11434", 5.0, t, "ollama", {}});
    Timer outer;
    InferenceResult r = b.complete(big_prompt ? big : "hi");
    const double outer_ms = outer.elapsed_ms();
    EXPECT_GT(r.latency_ms, 0.5 * outer_ms)
        << (big_prompt ? "big prompt: " : "big answer: ") << r.latency_ms << " of " << outer_ms << " ms";
  }
}

TEST(Ollama, StreamCancelStopsEarly) {
  OllamaPeer peer;
  std::vector<std::string> chunks;
  InferenceResult r = peer.backend("llama3.2:3b").stream("Why?", {}, [&](std::string_view s) {
    chunks.emplace_back(s);
    return chunks.size() < 2;
  });
  EXPECT_EQ(chunks.size(), 2u);
  EXPECT_EQ(r.completion, "The sky");
  EXPECT_EQ(r.metadata["canceled"], true);
}

TEST(Ollama, ConnectionRefusedSaysStartOllamaServe) {
  OllamaBackend b(OllamaConfig{
      "llama3.2:3b", "http://127.0.0.1:" + std::to_string(testing::closed_port()), 5.0, nullptr, "ollama", {}});
  std::string msg = error_of([&] { b.complete("hi"); });
  EXPECT_NE(msg.find("is `ollama serve` running?"), std::string::npos) << msg;
  msg = error_of([&] { b.stream("hi", {}, nullptr); });
  EXPECT_NE(msg.find("is `ollama serve` running?"), std::string::npos) << msg;
}

TEST(Ollama, UnknownModelSaysOllamaPull) {
  OllamaPeer peer;
  int status = 0;
  std::string msg = error_of([&] { peer.backend("missing").complete("hi"); }, &status);
  EXPECT_EQ(status, 404);
  EXPECT_NE(msg.find("run `ollama pull missing`"), std::string::npos) << msg;
  EXPECT_NE(msg.find("model 'missing' not found"), std::string::npos) << msg;
  // The same on the streaming path, where the error body arrives instead of NDJSON.
  msg = error_of([&] { peer.backend("missing").stream("hi", {}, nullptr); }, &status);
  EXPECT_EQ(status, 404);
  EXPECT_NE(msg.find("run `ollama pull missing`"), std::string::npos) << msg;
}

TEST(Ollama, ServerErrorStatusCarriesItsMessage) {
  OllamaPeer peer;
  int status = 0;
  std::string msg = error_of([&] { peer.backend("crash").complete("hi"); }, &status);
  EXPECT_EQ(status, 500);
  EXPECT_NE(msg.find("llama runner process has terminated"), std::string::npos) << msg;
}

TEST(Ollama, UnknownRouteIsNotTakenForAMissingModel) {
  LoopbackServer other;  // an HTTP server that is not Ollama: httplib answers 404 with no JSON
  other.start();
  std::string msg = error_of([&] { OllamaBackend("m", other.url()).complete("hi"); });
  EXPECT_NE(msg.find("is this an Ollama server?"), std::string::npos) << msg;
  EXPECT_EQ(msg.find("ollama pull"), std::string::npos) << msg;
}

TEST(Ollama, BadJsonIsReported) {
  OllamaPeer peer;
  std::string msg = error_of([&] { peer.backend("badjson").complete("hi"); });
  EXPECT_NE(msg.find("bad JSON"), std::string::npos) << msg;
  EXPECT_NE(msg.find("<html>not json"), std::string::npos) << msg;
  msg = error_of([&] { peer.backend("badline").stream("hi", {}, nullptr); });
  EXPECT_NE(msg.find("bad JSON in the Ollama stream"), std::string::npos) << msg;
}

TEST(Ollama, TimeoutIsReported) {
  OllamaPeer peer;
  std::string msg = error_of([&] { peer.backend("slow", 0.2).complete("hi"); });
  EXPECT_NE(msg.find("timed out"), std::string::npos) << msg;
}

TEST(Ollama, MidStreamErrorAndTruncatedStream) {
  OllamaPeer peer;
  std::string got;
  std::string msg = error_of([&] {
    peer.backend("midstream").stream("hi", {}, [&](std::string_view s) {
      got += s;
      return true;
    });
  });
  EXPECT_EQ(got, "The sky");  // what arrived before the error was delivered
  EXPECT_NE(msg.find("mid-stream after 2 chunk(s)"), std::string::npos) << msg;
  EXPECT_NE(msg.find("unexpected EOF"), std::string::npos) << msg;
  msg = error_of([&] { peer.backend("truncated").stream("hi", {}, nullptr); });
  EXPECT_NE(msg.find("without a done:true"), std::string::npos) << msg;
}

TEST(Ollama, ChatWithToolsParsesNativeToolCalls) {
  OllamaPeer peer;
  OllamaBackend b = peer.backend("llama3.2:3b");
  std::vector<ToolSpec> tools = {nlohmann::json::parse(
      R"({"type":"function","function":{"name":"get_weather","description":"Weather for a city",
          "parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}})")};
  std::vector<ChatMessage> msgs = {{"user", "Weather in Tokyo?", {}, "", ""}};
  ChatResult c = b.chat_with_tools(msgs, tools);
  nlohmann::json sent = peer.body();
  EXPECT_EQ(sent["tools"][0]["function"]["name"], "get_weather");
  EXPECT_EQ(sent["messages"][0]["content"], "Weather in Tokyo?");
  EXPECT_EQ(sent["options"]["num_predict"], 512);  // the seed's chat_with_tools defaults
  EXPECT_EQ(sent["options"]["temperature"], 0.2);
  ASSERT_EQ(c.tool_calls.size(), 1u);
  EXPECT_EQ(c.tool_calls[0].id, "call_k3x9q2ab");
  EXPECT_EQ(c.tool_calls[0].name, "get_weather");
  EXPECT_EQ(c.tool_calls[0].arguments, nlohmann::json::parse(R"({"city":"Tokyo"})"));
  EXPECT_EQ(c.message.role, "assistant");
  EXPECT_EQ(c.prompt_tokens, 80);
  EXPECT_EQ(c.completion_tokens, 20);
  EXPECT_DOUBLE_EQ(c.timings["server_total_ms"].get<double>(), 2000.0);
  EXPECT_DOUBLE_EQ(c.timings["eval_ms"].get<double>(), 1000.0);
  EXPECT_EQ(c.done_reason, "stop");

  // The follow-up turn sends the call back with object arguments and the tool result by name.
  msgs.push_back(c.message);
  msgs.push_back({"tool", "11 degrees", {}, "get_weather", ""});
  b.chat(msgs, tools);
  sent = peer.body();
  EXPECT_EQ(sent["messages"][1]["tool_calls"][0]["function"]["arguments"]["city"], "Tokyo");
  EXPECT_EQ(sent["messages"][2]["tool_name"], "get_weather");
}

TEST(Ollama, VersionProbe) {
  OllamaPeer peer;
  EXPECT_EQ(peer.backend("x").version(), "0.6.5");
}

}  // namespace
}  // namespace g2c::inference
