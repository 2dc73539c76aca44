#include "g2c/inference/benchmark.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

#include <fmt/core.h>

#include "g2c/core/cpu.hpp"
#include "g2c/core/error.hpp"
#include "g2c/core/timer.hpp"
#include "g2c/inference/build_info.hpp"

namespace g2c::inference {
namespace {

nlohmann::json opt_json(const std::optional<double>& v) { return v ? nlohmann::json(*v) : nlohmann::json(nullptr); }
nlohmann::json opt_json(const std::optional<std::int64_t>& v) {
  return v ? nlohmann::json(*v) : nlohmann::json(nullptr);
}
nlohmann::json opt_vec(const std::vector<std::optional<double>>& v) {
  nlohmann::json a = nlohmann::json::array();
  for (const auto& x : v) a.push_back(opt_json(x));
  return a;
}

std::optional<double> meta_number(const nlohmann::json& m, const char* key) {
  if (!m.is_object() || !m.contains(key) || !m[key].is_number()) return std::nullopt;
  return m[key].get<double>();
}

// Prefill / decode time in ms from either naming of the metadata contract (backend.hpp).
std::optional<double> prefill_ms(const nlohmann::json& m) {
  if (auto v = meta_number(m, "prompt_eval_ms")) return v;
  if (auto v = meta_number(m, "prefill_ns")) return *v / 1e6;
  return std::nullopt;
}
std::optional<double> decode_ms(const nlohmann::json& m) {
  if (auto v = meta_number(m, "eval_ms")) return v;
  if (auto v = meta_number(m, "decode_ns")) return *v / 1e6;
  return std::nullopt;
}

std::vector<double> present(const std::vector<std::optional<double>>& v) {
  std::vector<double> out;
  for (const auto& x : v) {
    if (x) out.push_back(*x);
  }
  return out;
}

}  // namespace

double percentile_nearest_rank(std::vector<double> values, double p) {
  if (values.empty()) throw InvalidArgument("percentile of an empty list");
  if (!(p > 0.0 && p <= 100.0)) throw InvalidArgument(fmt::format("percentile p must be in (0, 100], got {}", p));
  std::sort(values.begin(), values.end());
  // ceil(p/100*n) computed so that e.g. p=90, n=10 gives exactly 9 (not 10 from 9.000000000000002).
  double exact = p * static_cast<double>(values.size()) / 100.0;
  std::size_t rank = static_cast<std::size_t>(std::ceil(exact - 1e-9));
  rank = std::clamp<std::size_t>(rank, 1, values.size());
  return values[rank - 1];
}

nlohmann::json machine_metadata() {
  const CpuFeatures& cpu = cpu_features();
  return {{"cpu", cpu.brand},
          {"logical_cores", cpu.logical_cores},
          {"physical_cores", cpu.physical_cores},
          {"cpu_features", cpu.to_string()},
          {"g2c_version", g2c_version()},
          {"g2c_commit", g2c_commit()}};
}

nlohmann::json Drift::to_json() const {
  const auto window = [](const DriftWindow& w) {
    return nlohmann::json{
        {"n", w.n}, {"latency_ms_p50", w.latency_ms_p50}, {"tokens_per_second", opt_json(w.tokens_per_second)}};
  };
  return {{"first_third", window(first)},        {"last_third", window(last)},
          {"latency_p50_pct", latency_p50_pct},  {"tokens_per_second_pct", opt_json(tokens_per_second_pct)},
          {"threshold_pct", kDriftThresholdPct}, {"flagged", flagged}};
}

std::optional<Drift> thermal_drift(const std::vector<double>& latency_ms,
                                   const std::vector<std::optional<std::int64_t>>& completion_tokens) {
  const std::size_t n = latency_ms.size();
  if (n < 3) return std::nullopt;
  const std::size_t k = n / 3;
  const auto window = [&](std::size_t begin) {
    DriftWindow w;
    w.n = static_cast<int>(k);
    std::vector<double> lat(latency_ms.begin() + static_cast<std::ptrdiff_t>(begin),
                            latency_ms.begin() + static_cast<std::ptrdiff_t>(begin + k));
    w.latency_ms_p50 = percentile_nearest_rank(lat, 50);
    double ms = 0, tokens = 0;
    bool known = completion_tokens.size() == n;
    for (std::size_t i = begin; i < begin + k && known; ++i) {
      if (!completion_tokens[i])
        known = false;
      else
        tokens += static_cast<double>(*completion_tokens[i]);
      ms += latency_ms[i];
    }
    if (known && ms > 0) w.tokens_per_second = tokens / (ms / 1000.0);
    return w;
  };
  Drift d;
  d.first = window(0);
  d.last = window(n - k);
  if (d.first.latency_ms_p50 > 0)
    d.latency_p50_pct = (d.last.latency_ms_p50 - d.first.latency_ms_p50) / d.first.latency_ms_p50 * 100.0;
  if (d.first.tokens_per_second && d.last.tokens_per_second && *d.first.tokens_per_second > 0)
    d.tokens_per_second_pct =
        (*d.last.tokens_per_second - *d.first.tokens_per_second) / *d.first.tokens_per_second * 100.0;
  d.flagged = std::abs(d.latency_p50_pct) > kDriftThresholdPct ||
              (d.tokens_per_second_pct && std::abs(*d.tokens_per_second_pct) > kDriftThresholdPct);
  return d;
}

BenchmarkResult benchmark(Backend& backend, const std::vector<std::string>& prompts, const BenchmarkOptions& opts) {
  if (prompts.empty()) throw InvalidArgument("benchmark: the prompt set is empty");
  if (opts.runs < 1) throw InvalidArgument(fmt::format("benchmark: runs must be >= 1, got {}", opts.runs));
  auto clock = opts.clock_ns ? opts.clock_ns : std::function<std::int64_t()>(now_ns);
  auto ms_since = [&](std::int64_t t0) { return static_cast<double>(clock() - t0) / 1e6; };

  BenchmarkResult br;
  br.backend = backend.info();

  // One request, timed by us. TTFT is taken in the chunk callback with the same clock.
  auto run_one = [&](const std::string& prompt, std::optional<double>* ttft) {
    std::int64_t t0 = clock();
    InferenceResult r;
    if (opts.stream) {
      bool first = true;
      r = backend.stream(prompt, opts.generate, [&](std::string_view piece) {
        if (first && !piece.empty()) {
          first = false;
          if (ttft) *ttft = ms_since(t0);
        }
        return true;
      });
    } else {
      r = backend.complete(prompt, opts.generate);
    }
    return std::pair<InferenceResult, double>(std::move(r), ms_since(t0));
  };

  if (opts.warmup) br.warmup_latency_ms = run_one(prompts[0], nullptr).second;

  bool all_counts = true;
  std::int64_t tokens_total = 0;
  double prefill_tokens = 0, prefill_time = 0, decode_tokens = 0, decode_time = 0;
  for (int run = 0; run < opts.runs; ++run) {
    for (const std::string& prompt : prompts) {
      std::optional<double> ttft;
      auto [r, latency] = run_one(prompt, &ttft);
      br.per_request_latency_ms.push_back(latency);
      std::optional<double> tps;
      if (r.completion_tokens && latency > 0) tps = *r.completion_tokens / (latency / 1000.0);
      br.per_request_tokens_per_second.push_back(tps);
      if (r.completion_tokens)
        tokens_total += *r.completion_tokens;
      else
        all_counts = false;

      std::optional<double> tpot;
      if (opts.stream) {
        if (ttft && r.completion_tokens && *r.completion_tokens > 1) {
          tpot = (latency - *ttft) / static_cast<double>(*r.completion_tokens - 1);
        }
        br.per_request_ttft_ms.push_back(ttft);
        br.per_request_tpot_ms.push_back(tpot);
      }
      auto pf = prefill_ms(r.metadata);
      if (pf && *pf > 0 && r.prompt_tokens) {
        prefill_tokens += static_cast<double>(*r.prompt_tokens);
        prefill_time += *pf;
      }
      auto dc = decode_ms(r.metadata);
      if (dc && *dc > 0 && r.completion_tokens) {
        decode_tokens += static_cast<double>(*r.completion_tokens);
        decode_time += *dc;
      }
      std::optional<double> server = meta_number(r.metadata, "server_total_ms");
      br.per_request_server_ms.push_back(server);
      br.per_request_residual_ms.push_back(server ? std::optional<double>(latency - *server) : std::nullopt);
      br.results.push_back(std::move(r));
    }
  }

  const auto& lat = br.per_request_latency_ms;
  br.n = static_cast<int>(lat.size());
  br.latency_ms_total = std::accumulate(lat.begin(), lat.end(), 0.0);
  br.latency_ms_mean = br.latency_ms_total / br.n;
  br.latency_ms_p50 = percentile_nearest_rank(lat, 50);
  br.latency_ms_p90 = percentile_nearest_rank(lat, 90);
  br.latency_ms_p99 = percentile_nearest_rank(lat, 99);
  if (all_counts) {
    br.completion_tokens_total = tokens_total;
    if (br.latency_ms_total > 0) br.tokens_per_second_overall = tokens_total / (br.latency_ms_total / 1000.0);
  }
  if (std::vector<double> t = present(br.per_request_ttft_ms); !t.empty()) {
    br.ttft_ms_p50 = percentile_nearest_rank(t, 50);
    br.ttft_ms_p90 = percentile_nearest_rank(t, 90);
    br.ttft_ms_p99 = percentile_nearest_rank(t, 99);
  }
  if (std::vector<double> t = present(br.per_request_tpot_ms); !t.empty()) {
    br.tpot_ms_mean = std::accumulate(t.begin(), t.end(), 0.0) / static_cast<double>(t.size());
  }
  if (prefill_time > 0) br.prompt_tokens_per_second = prefill_tokens / (prefill_time / 1000.0);
  if (decode_time > 0) br.generation_tokens_per_second = decode_tokens / (decode_time / 1000.0);
  if (std::vector<double> s = present(br.per_request_server_ms); !s.empty())
    br.server_ms_p50 = percentile_nearest_rank(s, 50);
  if (std::vector<double> s = present(br.per_request_residual_ms); !s.empty()) {
    br.residual_ms_p50 = percentile_nearest_rank(s, 50);
    br.residual_ms_mean = std::accumulate(s.begin(), s.end(), 0.0) / static_cast<double>(s.size());
  }

  {
    std::vector<std::optional<std::int64_t>> counts;
    for (const InferenceResult& r : br.results) counts.push_back(r.completion_tokens);
    br.drift = thermal_drift(br.per_request_latency_ms, counts);
  }

  const nlohmann::json& extra = br.backend.extra;
  auto extra_or_null = [&](const char* key) { return extra.contains(key) ? extra[key] : nlohmann::json(nullptr); };
  br.metadata = {
      {"machine", machine_metadata()},
      {"backend", br.backend.name},
      {"model", br.backend.model_id},
      {"backend_extra", extra},
      {"quantization", extra_or_null("quantization")},
      {"context_length", extra_or_null("context_length")},
      {"isa", extra_or_null("isa")},
      {"threads", extra_or_null("threads")},
      {"max_new_tokens", opts.generate.max_new_tokens},
      {"sampling", opts.generate.to_json()},
      {"stream", opts.stream},
      {"runs", opts.runs},
      {"n_prompts", prompts.size()},
      {"n", br.n},
      {"warmup", opts.warmup},
      {"percentile_method", "nearest-rank: x_r of the n sorted values, r = ceil(p/100*n)"},
      {"latency_clock", "wall clock (steady_clock) around each backend call, measured by benchmark()"},
      {"g2c_version", g2c_version()},
      {"g2c_commit", g2c_commit()},
  };
  if (opts.metadata.is_object()) {
    for (auto it = opts.metadata.begin(); it != opts.metadata.end(); ++it) br.metadata[it.key()] = it.value();
  }
  return br;
}

BenchmarkResult benchmark(const std::function<std::unique_ptr<Backend>()>& make_backend,
                          const std::vector<std::string>& prompts, const BenchmarkOptions& opts) {
  if (prompts.empty()) throw InvalidArgument("benchmark: the prompt set is empty");
  auto clock = opts.clock_ns ? opts.clock_ns : std::function<std::int64_t()>(now_ns);
  ColdStart cold;
  std::int64_t t0 = clock();
  std::unique_ptr<Backend> backend = make_backend();
  if (!backend) throw InvalidArgument("benchmark: the backend factory returned nothing");
  std::int64_t t1 = clock();
  if (opts.stream) {
    backend->stream(prompts[0], opts.generate, [](std::string_view) { return true; });
  } else {
    backend->complete(prompts[0], opts.generate);
  }
  std::int64_t t2 = clock();
  cold.construct_ms = static_cast<double>(t1 - t0) / 1e6;
  cold.first_request_ms = static_cast<double>(t2 - t1) / 1e6;
  BenchmarkResult br = benchmark(*backend, prompts, opts);
  br.cold_start = cold;
  br.metadata["cold_start"] = {
      {"construct_ms", cold.construct_ms}, {"first_request_ms", cold.first_request_ms}, {"total_ms", cold.total_ms()}};
  return br;
}

nlohmann::json BenchmarkResult::to_json() const {
  nlohmann::json lat = per_request_latency_ms;
  nlohmann::json res = nlohmann::json::array();
  for (const auto& r : results) res.push_back(inference::to_json(r));
  nlohmann::json j = {
      {"backend", inference::to_json(backend)},
      {"n", n},
      {"latency_ms_total", latency_ms_total},
      {"latency_ms_mean", latency_ms_mean},
      {"latency_ms_p50", latency_ms_p50},
      {"latency_ms_p90", latency_ms_p90},
      {"latency_ms_p99", latency_ms_p99},
      {"completion_tokens_total", opt_json(completion_tokens_total)},
      {"tokens_per_second_overall", opt_json(tokens_per_second_overall)},
      {"per_request_latency_ms", lat},
      {"per_request_tokens_per_second", opt_vec(per_request_tokens_per_second)},
      {"per_request_ttft_ms", opt_vec(per_request_ttft_ms)},
      {"per_request_tpot_ms", opt_vec(per_request_tpot_ms)},
      {"ttft_ms_p50", opt_json(ttft_ms_p50)},
      {"ttft_ms_p90", opt_json(ttft_ms_p90)},
      {"ttft_ms_p99", opt_json(ttft_ms_p99)},
      {"tpot_ms_mean", opt_json(tpot_ms_mean)},
      {"prompt_tokens_per_second", opt_json(prompt_tokens_per_second)},
      {"generation_tokens_per_second", opt_json(generation_tokens_per_second)},
      {"per_request_server_ms", opt_vec(per_request_server_ms)},
      {"per_request_residual_ms", opt_vec(per_request_residual_ms)},
      {"server_ms_p50", opt_json(server_ms_p50)},
      {"residual_ms_p50", opt_json(residual_ms_p50)},
      {"residual_ms_mean", opt_json(residual_ms_mean)},
      {"warmup_latency_ms", opt_json(warmup_latency_ms)},
      {"cold_start", cold_start ? nlohmann::json{{"construct_ms", cold_start->construct_ms},
                                                 {"first_request_ms", cold_start->first_request_ms},
                                                 {"total_ms", cold_start->total_ms()}}
                                : nlohmann::json(nullptr)},
      {"drift", drift ? drift->to_json() : nlohmann::json(nullptr)},
      {"results", res},
      {"metadata", metadata},
  };
  return j;
}

}  // namespace g2c::inference
