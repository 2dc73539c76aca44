#pragma once
// The options `g2c complete` and `g2c chat` share: which backend (one spec syntax, bench_backends.hpp),
// the sampling settings of GenerateOptions, and the one stats line printed after a call.
#include <fmt/core.h>

#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "g2c/inference/backend.hpp"
#include "g2c/inference/bench_backends.hpp"

namespace g2c::app {

struct BackendArgs {
  std::string backend = "auto";
  int max_new_tokens = 128;
  double temperature = 1.0;
  std::optional<int> top_k;
  std::optional<double> top_p;
  std::int64_t seed = -1;
  std::vector<std::string> stop;
  int threads = 0;
  int n_ctx = 0;
  double timeout_s = 120.0;

  void add_to(CLI::App* cmd) {
    cmd->add_option("-b,--backend", backend, std::string("Backend spec: ") + inference::kBackendSpecHelp)
        ->capture_default_str();
    cmd->add_option("-n,--max-new-tokens", max_new_tokens, "Tokens to generate at most")->capture_default_str();
    cmd->add_option("--temp", temperature, "Temperature (0: greedy)")->capture_default_str();
    cmd->add_option("--top-k", top_k, "Top-k (default: off)");
    cmd->add_option("--top-p", top_p, "Top-p (default: off)");
    cmd->add_option("-s,--seed", seed, "Seed (-1: the backend's default)")->capture_default_str();
    cmd->add_option("--stop", stop, "Stop string (repeat for several)");
    cmd->add_option("-t,--threads", threads, "Threads of a local backend (0: physical cores)")->capture_default_str();
    cmd->add_option("-c,--ctx", n_ctx, "Context size of a local backend (0: the model's, at most 4096)")
        ->capture_default_str();
    cmd->add_option("--timeout", timeout_s, "HTTP timeout in seconds")->capture_default_str();
  }

  inference::GenerateOptions generate_options() const {
    inference::GenerateOptions g;
    g.max_new_tokens = max_new_tokens;
    g.temperature = temperature;
    g.top_k = top_k;
    g.top_p = top_p;
    if (seed >= 0) g.seed = static_cast<std::uint64_t>(seed);
    g.stop = stop;
    return g;
  }

  // Builds the backend; for `auto`, says on stderr which one it chose and why.
  std::unique_ptr<inference::Backend> make() const {
    const inference::BackendSpec spec = inference::parse_backend_spec(backend);
    inference::BackendMakerOptions mo;
    mo.local.threads = threads;
    mo.local.n_ctx = n_ctx;
    mo.timeout_s = timeout_s;
    std::unique_ptr<inference::Backend> b = inference::make_backend(spec, mo);
    const inference::BackendInfo info = b->info();
    if (info.extra.contains("selected")) {
      const nlohmann::json& sel = info.extra["selected"];
      std::fputs(fmt::format("g2c: backend auto chose {} ({}:{}): {}\n", sel.value("kind", "?"), info.name,
                             info.model_id, sel.value("reason", ""))
                     .c_str(),
                 stderr);
    }
    return b;
  }
};

// "[backend local:stories260K | 5 prompt + 32 completion tokens | 12.3 ms | 2600.0 tok/s | engine 11.9 ms]"
// server time: the server's own total (server_total_ms) for HTTP backends, prefill + decode for the
// in-process ones; "-" when the backend gives neither.
inline std::string stats_line(const inference::BackendInfo& backend, std::optional<std::int64_t> prompt_tokens,
                              std::optional<std::int64_t> completion_tokens, double latency_ms,
                              const nlohmann::json& timings) {
  const auto num = [](const nlohmann::json& j, const char* k) -> std::optional<double> {
    if (j.is_object() && j.contains(k) && j[k].is_number()) return j[k].get<double>();
    return std::nullopt;
  };
  std::string server = "server -";
  if (auto s = num(timings, "server_total_ms")) {
    server = fmt::format("server {:.1f} ms", *s);
  } else if (auto p = num(timings, "prompt_eval_ms"), e = num(timings, "eval_ms"); p && e) {
    server = fmt::format("engine {:.1f} ms", *p + *e);
  }
  const std::string pt = prompt_tokens ? std::to_string(*prompt_tokens) : "?";
  const std::string ct = completion_tokens ? std::to_string(*completion_tokens) : "?";
  std::string tps = "- tok/s";
  if (completion_tokens && latency_ms > 0) tps = fmt::format("{:.1f} tok/s", *completion_tokens * 1000.0 / latency_ms);
  return fmt::format("[{}:{} | {} prompt + {} completion tokens | {:.1f} ms | {} | {}]", backend.name, backend.model_id,
                     pt, ct, latency_ms, tps, server);
}

}  // namespace g2c::app
