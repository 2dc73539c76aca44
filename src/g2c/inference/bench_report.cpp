#include "g2c/inference/bench_report.hpp"

#include <algorithm>
#include <cmath>
#include <functional>

#include <fmt/format.h>

#include "g2c/core/mmap.hpp"

namespace g2c::inference {
namespace {

std::string num(const std::optional<double>& v, int prec = 1) {
  return v ? fmt::format("{:.{}f}", *v, prec) : std::string("-");
}
std::string cell(const std::optional<double>& v) { return v ? fmt::format("{:.3f}", *v) : std::string(); }

std::string csv_quote(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

std::string xml_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '&': out += "&amp;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string label(const BenchmarkResult& r) { return r.backend.name + ":" + r.backend.model_id; }

void write_text(const std::string& path, const std::string& text) {
  write_file_atomic(path, {reinterpret_cast<const std::uint8_t*>(text.data()), text.size()});
}

}  // namespace

std::string format_drift_lines(const std::vector<BenchmarkResult>& results) {
  std::string out;
  const auto tps = [](const std::optional<double>& v) {
    return v ? fmt::format("{:.1f} tok/s", *v) : std::string("- tok/s");
  };
  for (const BenchmarkResult& r : results) {
    if (!r.drift) continue;
    const Drift& d = *r.drift;
    out +=
        fmt::format("drift {}: first {} p50 {:.1f} ms {}, last {} p50 {:.1f} ms {}: latency {:+.1f}%, tok/s {}: {}\n",
                    label(r), d.first.n, d.first.latency_ms_p50, tps(d.first.tokens_per_second), d.last.n,
                    d.last.latency_ms_p50, tps(d.last.tokens_per_second), d.latency_p50_pct,
                    d.tokens_per_second_pct ? fmt::format("{:+.1f}%", *d.tokens_per_second_pct) : std::string("-"),
                    d.flagged ? fmt::format("DRIFT > {:.0f}%", kDriftThresholdPct) : std::string("steady"));
  }
  return out;
}

std::string format_benchmark_table(const std::vector<BenchmarkResult>& results) {
  struct Col {
    const char* head;
    std::vector<std::string> cells;
  };
  std::vector<Col> cols = {
      {"backend", {}},   {"n", {}},          {"p50 ms", {}},          {"p90 ms", {}},  {"p99 ms", {}},
      {"mean ms", {}},   {"tok/s", {}},      {"TTFT p50", {}},        {"TPOT ms", {}}, {"prompt tok/s", {}},
      {"gen tok/s", {}}, {"server p50", {}}, {"wall-server p50", {}}, {"cold ms", {}}};
  for (const BenchmarkResult& r : results) {
    std::vector<std::string> row = {label(r),
                                    std::to_string(r.n),
                                    num(r.latency_ms_p50),
                                    num(r.latency_ms_p90),
                                    num(r.latency_ms_p99),
                                    num(r.latency_ms_mean),
                                    num(r.tokens_per_second_overall),
                                    num(r.ttft_ms_p50),
                                    num(r.tpot_ms_mean, 2),
                                    num(r.prompt_tokens_per_second),
                                    num(r.generation_tokens_per_second),
                                    num(r.server_ms_p50),
                                    num(r.residual_ms_p50, 2),
                                    r.cold_start ? num(r.cold_start->total_ms()) : std::string("-")};
    for (std::size_t i = 0; i < cols.size(); ++i) cols[i].cells.push_back(row[i]);
  }
  std::string out;
  std::vector<std::size_t> width;
  for (const Col& c : cols) {
    std::size_t w = std::string(c.head).size();
    for (const auto& s : c.cells) w = std::max(w, s.size());
    width.push_back(w);
  }
  auto line = [&](const std::function<std::string(std::size_t)>& at) {
    for (std::size_t i = 0; i < cols.size(); ++i) {
      // The backend column is left-aligned, numbers right-aligned.
      out += i == 0 ? fmt::format("{:<{}}", at(i), width[i]) : fmt::format("  {:>{}}", at(i), width[i]);
    }
    out += '\n';
  };
  line([&](std::size_t i) { return std::string(cols[i].head); });
  for (std::size_t r = 0; r < results.size(); ++r) line([&](std::size_t i) { return cols[i].cells[r]; });
  if (!results.empty()) {
    out += fmt::format(
        "percentiles: nearest-rank over n requests; latency = wall clock per request; "
        "max_new_tokens={}\n",
        results[0].metadata.value("max_new_tokens", 0));
  }
  return out;
}

std::string benchmark_csv(const std::vector<BenchmarkResult>& results) {
  std::string out =
      "backend,model,run_index,latency_ms,tokens_per_second,completion_tokens,ttft_ms,tpot_ms,server_ms,residual_ms\n";
  for (const BenchmarkResult& r : results) {
    for (std::size_t i = 0; i < r.per_request_latency_ms.size(); ++i) {
      auto at = [&](const std::vector<std::optional<double>>& v) { return i < v.size() ? cell(v[i]) : std::string(); };
      std::string tokens;
      if (i < r.results.size() && r.results[i].completion_tokens)
        tokens = std::to_string(*r.results[i].completion_tokens);
      out += fmt::format("{},{},{},{:.3f},{},{},{},{},{},{}\n", csv_quote(r.backend.name),
                         csv_quote(r.backend.model_id), i, r.per_request_latency_ms[i],
                         at(r.per_request_tokens_per_second), tokens, at(r.per_request_ttft_ms),
                         at(r.per_request_tpot_ms), at(r.per_request_server_ms), at(r.per_request_residual_ms));
    }
  }
  return out;
}

nlohmann::json benchmark_json(const std::vector<BenchmarkResult>& results) {
  nlohmann::json a = nlohmann::json::array();
  for (const BenchmarkResult& r : results) a.push_back(r.to_json());
  return {{"results", a}};
}

std::string latency_svg(const std::vector<BenchmarkResult>& results) {
  constexpr int kLeft = 220, kRight = 30, kTop = 40, kLane = 48, kPlotW = 640;
  const int height = kTop + kLane * static_cast<int>(std::max<std::size_t>(results.size(), 1)) + 50;
  const int width = kLeft + kPlotW + kRight;
  double max_ms = 0;
  for (const auto& r : results) {
    for (double v : r.per_request_latency_ms) max_ms = std::max(max_ms, v);
  }
  // A round axis end: 1, 2 or 5 times a power of ten.
  double axis = 1;
  if (max_ms > 0) {
    double p = std::pow(10.0, std::floor(std::log10(max_ms)));
    axis = max_ms <= p ? p : max_ms <= 2 * p ? 2 * p : max_ms <= 5 * p ? 5 * p : 10 * p;
  }
  auto x = [&](double ms) { return kLeft + ms / axis * kPlotW; };
  std::string s = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" viewBox=\"0 0 {} {}\" "
      "font-family=\"sans-serif\" font-size=\"12\">\n"
      "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
      "<text x=\"{}\" y=\"20\" font-size=\"14\">Request latency (ms): dots = requests, box = p50..p90, "
      "bar = p99</text>\n",
      width, height, width, height, kLeft);
  for (std::size_t i = 0; i < results.size(); ++i) {
    const BenchmarkResult& r = results[i];
    double cy = kTop + kLane * static_cast<double>(i) + kLane / 2.0;
    s += fmt::format("<text x=\"{}\" y=\"{:.1f}\" text-anchor=\"end\">{} (n={})</text>\n", kLeft - 10, cy + 4,
                     xml_escape(label(r)), r.n);
    s += fmt::format("<line x1=\"{}\" x2=\"{}\" y1=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"#ddd\"/>\n", kLeft, kLeft + kPlotW,
                     cy, cy);
    if (r.n > 0) {
      s += fmt::format(
          "<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"18\" fill=\"#9ecae1\" stroke=\"#3182bd\"/>\n",
          x(r.latency_ms_p50), cy - 9, std::max(1.0, x(r.latency_ms_p90) - x(r.latency_ms_p50)));
      s += fmt::format(
          "<line x1=\"{:.1f}\" x2=\"{:.1f}\" y1=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"#de2d26\" "
          "stroke-width=\"2\"/>\n",
          x(r.latency_ms_p99), x(r.latency_ms_p99), cy - 14, cy + 14);
    }
    for (double v : r.per_request_latency_ms) {
      s += fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"2.5\" fill=\"#08519c\" fill-opacity=\"0.6\"/>\n", x(v),
                       cy);
    }
  }
  double axis_y = kTop + kLane * static_cast<double>(std::max<std::size_t>(results.size(), 1)) + 10;
  s += fmt::format("<line x1=\"{}\" x2=\"{}\" y1=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"black\"/>\n", kLeft, kLeft + kPlotW,
                   axis_y, axis_y);
  for (int t = 0; t <= 5; ++t) {
    double ms = axis * t / 5.0;
    s += fmt::format(
        "<line x1=\"{0:.1f}\" x2=\"{0:.1f}\" y1=\"{1:.1f}\" y2=\"{2:.1f}\" stroke=\"black\"/>"
        "<text x=\"{0:.1f}\" y=\"{3:.1f}\" text-anchor=\"middle\">{4:g}</text>\n",
        x(ms), axis_y, axis_y + 5, axis_y + 20, ms);
  }
  s += "</svg>\n";
  return s;
}

ReportPaths write_benchmark_report(const std::vector<BenchmarkResult>& results, const std::string& prefix) {
  ReportPaths p{prefix + ".json", prefix + ".csv", prefix + ".svg"};
  write_text(p.json, benchmark_json(results).dump(2) + "\n");
  write_text(p.csv, benchmark_csv(results));
  write_text(p.svg, latency_svg(results));
  return p;
}

}  // namespace g2c::inference
