#pragma once
// `g2c serve`: the Ollama API (/api/...) and the OpenAI API (/v1/...) over the engine, on one port.
// HTTP only lives here: routes, request -> engine parameters (request_parse.hpp), responses in each
// API's shapes (../shared/docs/api-compat.md). Generation runs on each loaded model's
// engine::Scheduler; models load on first use and unload after their keep-alive (model_pool.hpp).
//
//   server::ServerOptions o;  o.port = 0;  o.pool.models_dirs = {"../shared/models"};
//   server::Server s(o);
//   int port = s.bind();       // 0 picks a free port
//   std::thread t([&] { s.serve(); });
//   ...                        // curl http://127.0.0.1:<port>/api/tags
//   s.stop();  t.join();       // stops accepting, cancels running generations, returns from serve()
#include <cstddef>
#include <memory>
#include <string>

#include "g2c/server/model_pool.hpp"

namespace g2c::server {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 11434;
  PoolOptions pool;
  // HTTP worker threads: every stream holds one for its whole life, and idle keep-alive connections
  // hold one each, so 0 means parallel + queue + 16 (cpp-httplib's default of ~8 blocks a 16-client load).
  int http_threads = 0;
  std::size_t max_body_bytes = 32u << 20;  // larger: 413
};

class Server {
 public:
  explicit Server(ServerOptions opts);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds host:port; returns the port (the one picked when port is 0). Throws IoError when it cannot.
  int bind();
  // Answers requests until stop(). Call after bind().
  void serve();
  // Thread-safe and idempotent: cancels the running generations (their streams end with a final
  // chunk), stops accepting and makes serve() return once in-flight responses are written.
  void stop();
  ModelPool& pool();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace g2c::server
