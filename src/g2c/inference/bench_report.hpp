#pragma once
// Reports for one or more BenchmarkResults side by side (what `g2c bench-backends` prints and writes).
#include <string>
#include <vector>

#include "g2c/inference/benchmark.hpp"

namespace g2c::inference {

// A fixed-width text table, one row per backend: n, p50/p90/p99/mean latency, overall tok/s,
// TTFT p50 and TPOT (stream runs), prompt and generation tok/s, server p50 and the wall − server
// residual (where reported), and cold start. "-" marks a number the backend did not give.
std::string format_benchmark_table(const std::vector<BenchmarkResult>& results);

// One line per result with n >= 3: p50 latency and tok/s of the first and last third of the requests
// and their change, "DRIFT > 10%" when either moved more than kDriftThresholdPct (thermal throttling,
// another load on the machine), else "steady".
std::string format_drift_lines(const std::vector<BenchmarkResult>& results);

// One CSV row per request: backend,model,run_index,latency_ms,tokens_per_second,completion_tokens,
// ttft_ms,tpot_ms,server_ms,residual_ms (empty cells for unknowns).
std::string benchmark_csv(const std::vector<BenchmarkResult>& results);

// {"results": [BenchmarkResult::to_json(), ...]}.
nlohmann::json benchmark_json(const std::vector<BenchmarkResult>& results);

// A self-contained SVG: per backend one lane with every request latency as a dot, the p50..p90 range
// as a box and p99 as a tick, on a shared linear ms axis starting at 0.
std::string latency_svg(const std::vector<BenchmarkResult>& results);

struct ReportPaths {
  std::string json, csv, svg;
};
// Writes <prefix>.json, <prefix>.csv and <prefix>.svg (each atomically) and returns their paths.
ReportPaths write_benchmark_report(const std::vector<BenchmarkResult>& results, const std::string& prefix);

}  // namespace g2c::inference
