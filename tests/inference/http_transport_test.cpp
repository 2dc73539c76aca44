#include "g2c/inference/http_transport.hpp"

#include <gtest/gtest.h>

#include "loopback.hpp"

namespace g2c::inference {
namespace {

TEST(Url, ParseAndJoin) {
  ParsedUrl u = parse_url("http://127.0.0.1:11434/api/generate");
  EXPECT_EQ(u.scheme, "http");
  EXPECT_EQ(u.host, "127.0.0.1");
  EXPECT_EQ(u.port, 11434);
  EXPECT_EQ(u.path, "/api/generate");
  EXPECT_EQ(u.origin(), "http://127.0.0.1:11434");
  EXPECT_EQ(parse_url("https://example.com").port, 443);
  EXPECT_EQ(parse_url("https://example.com").path, "/");
  EXPECT_EQ(parse_url("http://[::1]:8080/v1").host, "::1");
  EXPECT_THROW(parse_url("127.0.0.1:11434"), InvalidArgument);
  EXPECT_THROW(parse_url("ftp://x"), InvalidArgument);
  EXPECT_THROW(parse_url("http://x:99999"), InvalidArgument);
  EXPECT_EQ(join_url("http://h:1/", "/api/chat"), "http://h:1/api/chat");
  EXPECT_EQ(join_url("http://h:1/v1", "models"), "http://h:1/v1/models");
}

TEST(HttplibTransport, StreamsBodiesAndReturnsErrorBodies) {
  testing::LoopbackServer srv;
  srv.server().Post("/ok", [](const httplib::Request& req, httplib::Response& res) {
    std::string echo = req.body;
    res.set_chunked_content_provider("application/x-ndjson", [echo](std::size_t, httplib::DataSink& sink) {
      for (int i = 0; i < 3; ++i) sink.write(echo.data(), echo.size());
      sink.done();
      return true;
    });
  });
  srv.server().Post("/err", [](const httplib::Request&, httplib::Response& res) {
    res.status = 404;
    res.set_content(R"({"error":"nope"})", "application/json");
  });
  srv.start();
  auto t = make_httplib_transport();
  std::string got;
  HttpResponse r = t->post_json_stream({srv.url() + "/ok", "ab", {}, 5.0}, [&](std::string_view d) {
    got += d;
    return true;
  });
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(got, "ababab");
  EXPECT_FALSE(r.canceled);

  bool called = false;
  r = t->post_json_stream({srv.url() + "/err", "{}", {}, 5.0}, [&](std::string_view) { return called = true; });
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.body, R"({"error":"nope"})");
  EXPECT_FALSE(called);  // an error body is not streamed to the callback

  r = t->post_json({srv.url() + "/err", "{}", {}, 5.0});
  EXPECT_EQ(r.status, 404);
  EXPECT_NE(r.content_type.find("application/json"), std::string::npos);

  try {
    t->post_json({"http://127.0.0.1:" + std::to_string(testing::closed_port()) + "/x", "{}", {}, 5.0});
    FAIL() << "expected TransportError";
  } catch (const TransportError& e) {
    EXPECT_EQ(e.kind(), TransportError::Kind::kConnect);
  }
}

}  // namespace
}  // namespace g2c::inference
