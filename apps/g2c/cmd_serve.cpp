// `g2c serve [--host H] [--port P] [--models-dir DIR] [--model F] [--parallel N] [--ctx N] [--keep-alive D]
//            [--threads N] [--queue N]`: the Ollama and OpenAI APIs on one port (src/g2c/server/).
// Prints "g2c serve: listening on http://HOST:PORT" on stdout once it accepts connections (with --port 0,
// the port picked). SIGINT / SIGTERM: stop accepting, cancel running generations, exit 0.
#include <pthread.h>

#include <csignal>
#include <cstdio>
#include <thread>

#include <fmt/core.h>

#include "commands.hpp"
#include "g2c/core/error.hpp"
#include "g2c/core/log.hpp"
#include "g2c/server/api_error.hpp"
#include "g2c/server/request_parse.hpp"
#include "g2c/server/server.hpp"

namespace g2c::app {
namespace {

struct ServeOptions {
  std::string host = "127.0.0.1";
  int port = 11434;
  std::vector<std::string> models_dirs;
  std::vector<std::string> models;
  int parallel = 4;
  int ctx = 2048;
  std::string keep_alive = "5m";
  int threads = 0;
  int queue = 64;
  int http_threads = 0;
  std::string kv_type = "f32";
};

void run_serve(const ServeOptions& o) {
  server::ServerOptions so;
  so.host = o.host;
  so.port = o.port;
  if (o.port < 0 || o.port > 65535) throw InvalidArgument(fmt::format("--port {} is not a port (0-65535)", o.port));
  if (o.parallel < 1) throw InvalidArgument(fmt::format("--parallel {} must be at least 1", o.parallel));
  if (o.ctx < 8) throw InvalidArgument(fmt::format("--ctx {} must be at least 8", o.ctx));
  if (o.queue < 0) throw InvalidArgument(fmt::format("--queue {} must be at least 0", o.queue));
  so.pool.models_dirs = o.models_dirs;
  if (so.pool.models_dirs.empty() && !models_dir().empty()) so.pool.models_dirs = {models_dir()};
  for (const std::string& m : o.models) so.pool.model_files.push_back(resolve_model_path(m));
  so.pool.parallel = o.parallel;
  so.pool.n_ctx = o.ctx;
  so.pool.threads = o.threads;
  so.pool.queue = o.queue;
  if (o.kv_type != "f16" && o.kv_type != "f32")
    throw InvalidArgument(fmt::format("--kv-type must be f16 or f32, got '{}'", o.kv_type));
  so.pool.kv_type = o.kv_type == "f16" ? model::KvType::kF16 : model::KvType::kF32;
  so.http_threads = o.http_threads;
  try {
    so.pool.keep_alive = server::parse_keep_alive(nlohmann::json{{"keep_alive", o.keep_alive}}).value();
  } catch (const server::ApiError&) {
    throw InvalidArgument(
        fmt::format("--keep-alive '{}' is not a duration (e.g. 5m, 1h30m, 300ms, 0, -1)", o.keep_alive));
  }

  // Signals go to one thread that stops the server; every other thread (httplib's workers, the
  // schedulers) inherits the blocked mask.
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);

  server::Server srv(so);
  const int port = srv.bind();
  std::thread waiter([&srv, sigs] {
    int sig = 0;
    sigwait(&sigs, &sig);
    if (sig == SIGINT || sig == SIGTERM) {
      log_warn("g2c serve: signal {}: stopping", sig);
      srv.stop();
    }
  });
  fmt::print("g2c serve: listening on http://{}:{}\n", o.host, port);
  std::fflush(stdout);
  srv.serve();
  // serve() returned: a signal stopped it (or the listener failed). Make sure the waiter ends too.
  srv.stop();
  pthread_kill(waiter.native_handle(), SIGTERM);
  waiter.join();
}

}  // namespace

void register_serve(CLI::App& app) {
  auto o = std::make_shared<ServeOptions>();
  CLI::App* c = app.add_subcommand("serve", "serve models over the Ollama API (/api) and the OpenAI API (/v1)");
  c->add_option("--host", o->host, "address to listen on")->capture_default_str();
  c->add_option("--port", o->port, "port (0: any free port, printed on stdout)")->capture_default_str();
  c->add_option("--models-dir", o->models_dirs,
                "folder of model files served by name (repeatable; default $G2C_MODELS_DIR or ../shared/models)");
  c->add_option("--model,-m", o->models, "a model file served under its file name without extension (repeatable)");
  c->add_option("--parallel", o->parallel, "sequences decoded together per model")->capture_default_str();
  c->add_option("--ctx,-c", o->ctx, "context positions per sequence (Ollama's num_ctx)")->capture_default_str();
  c->add_option("--keep-alive", o->keep_alive, "how long an idle model stays loaded (0: unload at once, -1: forever)")
      ->capture_default_str();
  c->add_option("--threads,-t", o->threads, "forward-pass threads per model (0: physical cores)")
      ->capture_default_str();
  c->add_option("--queue", o->queue, "requests that may wait for a sequence per model; more get 503")
      ->capture_default_str();
  c->add_option("--kv-type", o->kv_type, "KV cache type of every loaded model: f32 or f16 (half the memory)")
      ->capture_default_str();
  c->add_option("--http-threads", o->http_threads, "HTTP worker threads (0: parallel + queue + 16)")
      ->capture_default_str();
  c->callback([o] { run_serve(*o); });
}

}  // namespace g2c::app
