#pragma once
// benchmark(): latency and throughput of one Backend over a fixed prompt set, with the numbers the
// seed's pitfalls ask for. Protocol:
//   (cold start, only in the factory overload) construct the backend, then one request: both timed
//   and reported apart, never mixed into the percentiles;
//   one warm-up request (prompts[0], untimed) unless disabled;
//   then `runs` passes over the prompts with the same GenerateOptions.
// Latency is our own wall clock around each call (steady_clock), not what the backend says.
//
// Percentiles: nearest-rank. For n sorted values x_1..x_n the p-th percentile is x_r with
// r = ceil(p/100 * n) (r >= 1): always an observed value; with n = 10, p90 is the 9th value and p99
// the largest. They are reported together with n.
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "g2c/inference/backend.hpp"

namespace g2c::inference {

// The nearest-rank percentile (see above); p in (0, 100]. Throws InvalidArgument for no values or a
// p out of range.
double percentile_nearest_rank(std::vector<double> values, double p);

struct BenchmarkOptions {
  GenerateOptions generate = [] {
    GenerateOptions g;
    g.max_new_tokens = 64;  // the seed's benchmark default
    return g;
  }();
  bool stream = false;  // measure time to first token and time per output token through stream()
  bool warmup = true;
  int runs = 1;                                        // passes over the prompt set
  nlohmann::json metadata = nlohmann::json::object();  // merged into the result's metadata
  std::function<std::int64_t()> clock_ns;              // null: g2c::now_ns (tests inject a fake clock)
};

struct ColdStart {
  double construct_ms = 0;      // building the backend (model load, or nothing for a client)
  double first_request_ms = 0;  // the first request on the fresh backend (connection, page-in, ...)
  double total_ms() const { return construct_ms + first_request_ms; }
};

// The seed's M-series note: sustained inference heats the machine and clocks drop, so the first and
// the last third of the timed requests (in order; floor(n/3) each, n >= 3) are summarised apart.
// With runs a multiple of 3 both thirds hold the same prompts.
struct DriftWindow {
  int n = 0;
  double latency_ms_p50 = 0;
  std::optional<double> tokens_per_second;  // sum(tokens) / sum(latency) over the window
};
inline constexpr double kDriftThresholdPct = 10.0;

struct Drift {
  DriftWindow first, last;
  double latency_p50_pct = 0;                   // (last − first) / first × 100: positive = slower
  std::optional<double> tokens_per_second_pct;  // (last − first) / first × 100: negative = slower
  bool flagged = false;                         // either moved by more than kDriftThresholdPct
  nlohmann::json to_json() const;
};

// Drift of per-request latencies (and completion token counts, when all known); nullopt when n < 3.
std::optional<Drift> thermal_drift(const std::vector<double>& latency_ms,
                                   const std::vector<std::optional<std::int64_t>>& completion_tokens);

struct BenchmarkResult {
  // The seed's fields.
  BackendInfo backend;
  int n = 0;
  double latency_ms_total = 0;
  double latency_ms_mean = 0;
  double latency_ms_p50 = 0;
  double latency_ms_p90 = 0;
  std::optional<std::int64_t> completion_tokens_total;  // empty when any request's count is unknown
  std::optional<double> tokens_per_second_overall;      // completion_tokens_total / latency_ms_total
  std::vector<double> per_request_latency_ms;
  std::vector<std::optional<double>> per_request_tokens_per_second;
  std::vector<InferenceResult> results;
  nlohmann::json metadata = nlohmann::json::object();

  // Beyond the seed.
  double latency_ms_p99 = 0;
  // stream = true: wall time to the first non-empty chunk, and (latency − ttft) / (tokens − 1).
  std::vector<std::optional<double>> per_request_ttft_ms;
  std::vector<std::optional<double>> per_request_tpot_ms;
  std::optional<double> ttft_ms_p50, ttft_ms_p90, ttft_ms_p99;
  std::optional<double> tpot_ms_mean;
  // From backend-reported prefill / decode times: sum(tokens) / sum(time) over the requests that
  // report both. Prompt processing and generation are different speeds; never mix them.
  std::optional<double> prompt_tokens_per_second;
  std::optional<double> generation_tokens_per_second;
  // Where the backend reports server time: per request wall − server (HTTP, JSON, scheduling).
  std::vector<std::optional<double>> per_request_server_ms;
  std::vector<std::optional<double>> per_request_residual_ms;
  std::optional<double> server_ms_p50;
  std::optional<double> residual_ms_p50;
  std::optional<double> residual_ms_mean;
  std::optional<ColdStart> cold_start;
  std::optional<double> warmup_latency_ms;
  std::optional<Drift> drift;  // first vs last third (n >= 3)

  nlohmann::json to_json() const;
};

BenchmarkResult benchmark(Backend& backend, const std::vector<std::string>& prompts, const BenchmarkOptions& opts = {});

// Cold-start variant: times make_backend() and the first request (prompts[0]) on it, then runs the
// warm benchmark above on the same backend.
BenchmarkResult benchmark(const std::function<std::unique_ptr<Backend>()>& make_backend,
                          const std::vector<std::string>& prompts, const BenchmarkOptions& opts = {});

// What every result records about where it ran: CPU brand, cores, CPU features, g2c version/commit.
nlohmann::json machine_metadata();

}  // namespace g2c::inference
