#include "g2c/inference/http_call.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "fake_transport.hpp"
#include "loopback.hpp"

namespace g2c::inference {
namespace {

using testing::ScriptedTransport;

// Which hook the helper called, and with what.
struct HookError : Error {
  HookError(std::string hook_, const std::string& msg, int status_)
      : Error(msg), hook(std::move(hook_)), status(status_) {}
  std::string hook;
  int status;
};

class TestProtocol final : public HttpProtocol {
 public:
  void raise_transport(const TransportError& e, const std::string& url) const override {
    throw HookError("transport", url + ": " + e.what(), 0);
  }
  void raise_status(int status, const std::string& body, const std::string& url) const override {
    throw HookError("status", url + " said: " + body, status);
  }
  void raise(const std::string& msg, int status) const override { throw HookError("raise", msg, status); }
};

constexpr StreamSpec kLines{StreamSpec::Framing::kNdjson, "the test stream", "line"};
constexpr StreamSpec kEvents{StreamSpec::Framing::kSse, "the test stream", "event", "[DONE]"};

HttpRequest req(const std::string& url = "http://h:1/x") { return {url, "{}", {}, 5.0}; }

HookError hook_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const HookError& e) {
    return e;
  }
  ADD_FAILURE() << "no hook called";
  return HookError("", "", 0);
}

struct Items {
  std::vector<nlohmann::json> items;
  std::vector<std::string> events;
  HttpCall::ItemFn fn() {
    return [this](const nlohmann::json& j, std::string_view event) {
      items.push_back(j);
      events.emplace_back(event);
      return true;
    };
  }
};

TEST(HttpCall, EveryStatusOutside2xxIsTheProtocolsStatusErrorWithTheBody) {
  TestProtocol p;
  for (int status : {199, 301, 302, 404, 500, 503}) {
    ScriptedTransport t;
    t.status = status;
    t.body = "the server's words";
    HookError e = hook_of([&] { HttpCall(t, p).post(req(), "{}"); });
    EXPECT_EQ(e.hook, "status") << status;
    EXPECT_EQ(e.status, status);
    EXPECT_EQ(std::string(e.what()), "http://h:1/x said: the server's words");

    t.pieces = {"{\"error\":", "\"nope\"}"};
    Items got;
    e = hook_of([&] { HttpCall(t, p).post_stream(req(), kLines, got.fn()); });
    EXPECT_EQ(e.hook, "status") << status;
    EXPECT_EQ(e.status, status);
    EXPECT_EQ(std::string(e.what()), "http://h:1/x said: {\"error\":\"nope\"}");
    EXPECT_TRUE(got.items.empty());  // an error body is not streamed
  }
}

TEST(HttpCall, ARedirectOverRealHttpIsAnErrorNotAnAnswer) {
  testing::LoopbackServer srv;
  srv.server().Post("/moved", [](const httplib::Request&, httplib::Response& res) {
    res.status = 302;
    res.set_header("Location", "/elsewhere");
    res.set_content("{\"response\":\"not the answer\",\"done\":true}\n", "application/x-ndjson");
  });
  srv.start();
  auto t = make_httplib_transport();
  TestProtocol p;
  HookError e = hook_of([&] { HttpCall(*t, p).post(req(srv.url() + "/moved"), "{}"); });
  EXPECT_EQ(e.hook, "status");
  EXPECT_EQ(e.status, 302);
  Items got;
  e = hook_of([&] { HttpCall(*t, p).post_stream(req(srv.url() + "/moved"), kLines, got.fn()); });
  EXPECT_EQ(e.status, 302);
  EXPECT_NE(std::string(e.what()).find("not the answer"), std::string::npos) << e.what();
  EXPECT_TRUE(got.items.empty());
}

TEST(HttpCall, TheBodyMustBeOneJsonObject) {
  TestProtocol p;
  for (const char* body : {"<html>oops</html>", "[1,2]", ""}) {
    ScriptedTransport t;
    t.body = body;
    HookError e = hook_of([&] { HttpCall(t, p).post(req(), R"({"a": ...})"); });
    EXPECT_EQ(e.hook, "raise");
    EXPECT_EQ(std::string(e.what()),
              std::string("bad JSON from http://h:1/x: expected {\"a\": ...}, got '") + body + "'");
  }
  ScriptedTransport t;
  t.body = R"({"b":1})";
  HttpCall call(t, p);
  EXPECT_EQ(call.get(req(), R"({"a": ...})"), nlohmann::json::parse(R"({"b":1})"));
  EXPECT_EQ(call.status(), 200);
  // The caller's own shape check words its failure the same way.
  HookError e = hook_of([&] { call.bad_reply(); });
  EXPECT_EQ(std::string(e.what()), R"(bad JSON from http://h:1/x: expected {"a": ...}, got '{"b":1}')");
}

TEST(HttpCall, NoAnswerIsTheProtocolsTransportError) {
  TestProtocol p;
  ScriptedTransport t;
  t.fail = TransportError::Kind::kConnect;
  EXPECT_EQ(hook_of([&] { HttpCall(t, p).post(req(), "{}"); }).hook, "transport");
  Items got;
  EXPECT_EQ(hook_of([&] { HttpCall(t, p).post_stream(req(), kLines, got.fn()); }).hook, "transport");
}

TEST(HttpCall, NdjsonLinesWhateverTheSplitsAndAnUnterminatedLastOne) {
  TestProtocol p;
  ScriptedTransport t;
  t.pieces = {"{\"a\":1}\n{\"a\"", ":2}\r\n\n", "{\"a\":3}"};
  Items got;
  HttpCall call(t, p);
  HttpCall::StreamEnd end = call.post_stream(req(), kLines, got.fn());
  ASSERT_EQ(got.items.size(), 3u);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(got.items[i]["a"], i + 1);
  EXPECT_EQ(got.events, (std::vector<std::string>{"", "", ""}));
  EXPECT_EQ(call.items(), 3);
  EXPECT_FALSE(end.canceled);
  EXPECT_FALSE(end.end_marker);
}

TEST(HttpCall, SseEventsWithTheirNamesAndTheEndMarker) {
  TestProtocol p;
  ScriptedTransport t;
  t.pieces = {": ping\n\ndata: {\"a\":1}\n\nevent: note\nda", "ta: {\"a\":2}\n\ndata: [DONE]\n\n"};
  Items got;
  HttpCall call(t, p);
  HttpCall::StreamEnd end = call.post_stream(req(), kEvents, got.fn());
  ASSERT_EQ(got.items.size(), 2u);  // the marker is not an item
  EXPECT_EQ(got.items[1]["a"], 2);
  EXPECT_EQ(got.events, (std::vector<std::string>{"", "note"}));
  EXPECT_TRUE(end.end_marker);
  EXPECT_FALSE(end.canceled);
}

TEST(HttpCall, ReturningFalseCancels) {
  TestProtocol p;
  ScriptedTransport t;
  t.pieces = {"{\"a\":1}\n{\"a\":2}\n", "{\"a\":3}\n"};
  int seen = 0;
  HttpCall call(t, p);
  HttpCall::StreamEnd end =
      call.post_stream(req(), kLines, [&](const nlohmann::json&, std::string_view) { return ++seen < 2; });
  EXPECT_TRUE(end.canceled);
  EXPECT_EQ(seen, 2);
  EXPECT_EQ(call.items(), 1);
  // The same when the item that cancels is the unterminated last one.
  t.pieces = {"{\"a\":1}"};
  end = HttpCall(t, p).post_stream(req(), kLines, [](const nlohmann::json&, std::string_view) { return false; });
  EXPECT_TRUE(end.canceled);
}

TEST(HttpCall, ABadItemOrALostConnectionSaysHowFarTheStreamGot) {
  TestProtocol p;
  ScriptedTransport t;
  Items got;
  t.pieces = {"{\"a\":1}\nnot json\n{\"a\":2}\n"};
  HookError e = hook_of([&] { HttpCall(t, p).post_stream(req(), kLines, got.fn()); });
  EXPECT_EQ(e.hook, "raise");
  EXPECT_EQ(std::string(e.what()), "bad JSON in the test stream from http://h:1/x after 1 line(s): 'not json'");
  EXPECT_EQ(got.items.size(), 1u);  // reading stopped at the bad line

  t.pieces = {"{\"a\":1}\n"};
  t.fail = TransportError::Kind::kRead;
  e = hook_of([&] { HttpCall(t, p).post_stream(req(), kLines, got.fn()); });
  EXPECT_EQ(e.hook, "raise");
  EXPECT_EQ(std::string(e.what()), "the test stream from http://h:1/x broke after 1 line(s): scripted failure");
  // Before the first item it is an unreachable server, as for a whole answer.
  t.pieces.clear();
  t.fail = TransportError::Kind::kTimeout;
  EXPECT_EQ(hook_of([&] { HttpCall(t, p).post_stream(req(), kLines, got.fn()); }).hook, "transport");
}

TEST(HttpCall, AnExceptionFromTheItemCallbackComesOutUnchanged) {
  TestProtocol p;
  ScriptedTransport t;
  t.pieces = {"{\"a\":1}\n"};
  struct Stop {};
  EXPECT_THROW(
      HttpCall(t, p).post_stream(req(), kLines, [](const nlohmann::json&, std::string_view) -> bool { throw Stop{}; }),
      Stop);
}

}  // namespace
}  // namespace g2c::inference
