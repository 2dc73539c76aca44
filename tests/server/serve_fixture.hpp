#pragma once
// A g2c server in the test process on a free loopback port, and a small client for it.
//
//   test::ServeFixture srv({.models = {"models/stories260K.gguf"}});     // paths under ../shared
//   auto r = srv.post("/api/generate", {{"model", "stories260K"}, {"prompt", "Once"}, {"stream", false}});
//   EXPECT_EQ(r.status, 200);  nlohmann::json j = r.json();
#include <httplib.h>

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/test_util.hpp"
#include "g2c/server/server.hpp"

namespace g2c::test {

struct ServeConfig {
  std::vector<std::string> models;  // paths relative to ../shared (or absolute), served by file stem
  int parallel = 4;
  int ctx = 256;
  int queue = 64;
  int threads = 1;
  bool models_dir = false;
  int http_threads =
      0;  // 0: the server's default  // also copy `models` into a private models folder (for delete/copy/tags)
};

struct HttpReply {
  int status = -1;  // -1: no answer (connection failed)
  std::string body;
  std::string content_type;
  httplib::Headers headers;
  nlohmann::json json() const { return nlohmann::json::parse(body); }
};

class ServeFixture {
 public:
  explicit ServeFixture(const ServeConfig& cfg = {});
  ~ServeFixture();
  int port() const { return port_; }
  server::Server& server() { return *server_; }
  const std::string& models_dir() const { return models_dir_; }

  HttpReply get(const std::string& path, const httplib::Headers& headers = {});
  HttpReply head(const std::string& path);
  HttpReply post(const std::string& path, const nlohmann::json& body);
  HttpReply post_raw(const std::string& path, const std::string& body,
                     const std::string& content_type = "application/json");
  HttpReply del(const std::string& path, const nlohmann::json& body);
  HttpReply options(const std::string& path, const httplib::Headers& headers);
  // A streamed POST: the body's lines as they came (NDJSON lines, or SSE "data: ..." lines; blank lines dropped).
  // `stop_after` > 0: closes the connection after that many lines (a client abort).
  std::vector<std::string> stream_lines(const std::string& path, const nlohmann::json& body, int stop_after = 0,
                                        int* status = nullptr);
  // A value of /metrics: the first line starting with `name` (labels included), or -1.
  double metric(const std::string& name_with_labels);

 private:
  std::unique_ptr<TempDir> dir_;
  std::string models_dir_;
  std::unique_ptr<server::Server> server_;
  std::thread thread_;
  int port_ = 0;
};

}  // namespace g2c::test
