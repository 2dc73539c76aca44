// `g2c bench-backends --backend SPEC ... [--prompts FILE] [-n 64] [--runs 10] [--stream] [--out PREFIX]`:
// the same prompt set with the same sampling settings through each backend, one after another, then a
// side-by-side table on stdout and <PREFIX>.json / .csv / .svg. Progress and the machine go to stderr.
#include <fmt/core.h>

#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "commands.hpp"
#include "g2c/core/error.hpp"
#include "g2c/inference/bench_backends.hpp"
#include "g2c/inference/bench_report.hpp"
#include "g2c/inference/benchmark.hpp"

namespace g2c::app {
namespace {

struct BenchBackendsOptions {
  std::vector<std::string> backends;
  std::string prompts;
  int max_new_tokens = 64;
  int runs = 10;
  bool stream = false;
  bool no_warmup = false;
  std::string out = "bench-backends";
  double temperature = 1.0;
  std::optional<int> top_k;
  std::optional<double> top_p;
  std::int64_t seed = -1;
  int threads = 0;
  int n_ctx = 0;
  double timeout_s = 120.0;
};

void run_bench_backends(const BenchBackendsOptions& o) {
  using namespace g2c::inference;
  std::vector<BackendSpec> specs;
  for (const std::string& s : o.backends) specs.push_back(parse_backend_spec(s));
  const std::string prompts_path = o.prompts.empty() ? default_prompts_path() : o.prompts;
  if (prompts_path.empty()) throw InvalidArgument("no prompt file: pass --prompts FILE (one prompt per line)");
  const std::vector<std::string> prompts = read_prompts_file(prompts_path);
  if (o.runs < 1) throw InvalidArgument("--runs must be at least 1, got " + std::to_string(o.runs));

  BenchmarkOptions bo;
  bo.generate.max_new_tokens = o.max_new_tokens;
  bo.generate.temperature = o.temperature;
  bo.generate.top_k = o.top_k;
  bo.generate.top_p = o.top_p;
  if (o.seed >= 0) bo.generate.seed = static_cast<std::uint64_t>(o.seed);
  bo.stream = o.stream;
  bo.warmup = !o.no_warmup;
  bo.runs = o.runs;
  bo.metadata = {{"prompts_file", prompts_path}, {"command", "g2c bench-backends"}};

  BackendMakerOptions mo;
  mo.local.threads = o.threads;
  mo.local.n_ctx = o.n_ctx;
  mo.timeout_s = o.timeout_s;

  const nlohmann::json machine = machine_metadata();
  std::fprintf(stderr, "%s", fmt::format("machine: {}\n", machine.dump()).c_str());
  std::fprintf(stderr, "%s",
               fmt::format("prompts: {} from {}; {} run(s); max_new_tokens {}; temperature {}; {}\n", prompts.size(),
                           prompts_path, o.runs, o.max_new_tokens, o.temperature, o.stream ? "stream" : "complete")
                   .c_str());

  std::vector<BenchmarkResult> results;
  std::vector<std::string> failed;
  for (const BackendSpec& spec : specs) {
    std::fprintf(stderr, "%s", fmt::format("bench {} ...\n", spec.text).c_str());
    try {
      results.push_back(benchmark(backend_maker(spec, mo), prompts, bo));
      results.back().metadata["spec"] = spec.text;
    } catch (const Error& e) {
      // One backend down (no server, unknown model) does not lose the others' numbers.
      std::fprintf(stderr, "%s", fmt::format("g2c: error: backend {}: {}\n", spec.text, e.what()).c_str());
      failed.push_back(spec.text);
    }
  }
  if (results.empty()) throw Error("no backend could be benchmarked");

  std::fputs(format_benchmark_table(results).c_str(), stdout);
  // The seed's M-series note: early vs late requests, flagged past 10%.
  std::fputs(format_drift_lines(results).c_str(), stdout);
  // Cold start apart: building the backend (model load or first connection) and the first request.
  for (const BenchmarkResult& r : results) {
    if (!r.cold_start) continue;
    std::fputs(fmt::format("cold start {}:{}: construct {:.1f} ms + first request {:.1f} ms\n", r.backend.name,
                           r.backend.model_id, r.cold_start->construct_ms, r.cold_start->first_request_ms)
                   .c_str(),
               stdout);
  }
  if (!o.out.empty()) {
    const std::filesystem::path parent = std::filesystem::path(o.out).parent_path();
    std::error_code ec;
    if (!parent.empty()) std::filesystem::create_directories(parent, ec);  // a failure shows when writing
    const ReportPaths paths = write_benchmark_report(results, o.out);
    std::fprintf(stderr, "%s", fmt::format("wrote {}, {}, {}\n", paths.json, paths.csv, paths.svg).c_str());
  }
  if (!failed.empty()) g_exit_code = 1;
}

}  // namespace

void register_bench_backends(CLI::App& app) {
  auto o = std::make_shared<BenchBackendsOptions>();
  auto* cmd = app.add_subcommand("bench-backends", "Benchmark backends side by side on one prompt set");
  cmd->add_option("--backend", o->backends, std::string(inference::kBackendSpecHelp) + " (repeat for each backend)")
      ->required()
      ->allow_extra_args(false);
  cmd->add_option("--prompts", o->prompts,
                  "Prompt file, one per line ('#' comments; default bench/prompts/stories.txt)");
  cmd->add_option("-n,--max-new-tokens", o->max_new_tokens, "Tokens to generate per request")->capture_default_str();
  cmd->add_option("--runs", o->runs, "Passes over the prompt set")->capture_default_str();
  cmd->add_flag("--stream", o->stream, "Use stream(): adds time to first token and time per output token");
  cmd->add_flag("--no-warmup", o->no_warmup, "Skip the untimed warm-up request");
  cmd->add_option("--out", o->out, "Write PREFIX.json, PREFIX.csv, PREFIX.svg ('' for none)")->capture_default_str();
  cmd->add_option("--temp", o->temperature, "Temperature (0: greedy)")->capture_default_str();
  cmd->add_option("--top-k", o->top_k, "Top-k (default: off)");
  cmd->add_option("--top-p", o->top_p, "Top-p (default: off)");
  cmd->add_option("-s,--seed", o->seed, "Seed for every request (-1: the backend's default)")->capture_default_str();
  cmd->add_option("-t,--threads", o->threads, "Threads of local backends (0: physical cores)")->capture_default_str();
  cmd->add_option("-c,--ctx", o->n_ctx, "Context size of local backends (0: the model's, at most 4096)")
      ->capture_default_str();
  cmd->add_option("--timeout", o->timeout_s, "HTTP timeout in seconds")->capture_default_str();
  cmd->callback([o] { run_bench_backends(*o); });
}

}  // namespace g2c::app
