#pragma once
// The server's counters and latency histograms, rendered in Prometheus' text format by /metrics.
// Thread-safe; every observation is a short critical section.
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace g2c::server {

class Histogram {
 public:
  explicit Histogram(std::vector<double> upper_bounds) : bounds_(std::move(upper_bounds)), counts_(bounds_.size()) {}
  void observe(double v);
  // `name` with its _bucket (cumulative, le="+Inf" last), _sum and _count lines.
  void render(std::string& out, const std::string& name, const std::string& help) const;

 private:
  std::vector<double> bounds_;
  std::vector<std::uint64_t> counts_;
  double sum_ = 0;
  std::uint64_t count_ = 0;
};

struct ModelGauges {  // read from each loaded model's scheduler when /metrics is scraped
  std::string model;
  std::int64_t queued = 0, active = 0, kv_cells = 0, kv_capacity = 0;
  std::uint64_t rejected = 0, canceled = 0;
};

class Metrics {
 public:
  Metrics();
  void request(const std::string& route, int status);
  void tokens(std::uint64_t prompt, std::uint64_t generated);
  void cached_tokens(std::uint64_t prompt_cached);  // of a finished generation's prompt, reused from the KV cache
  void ttft(double seconds);
  void inter_token(double seconds);
  std::string render(const std::vector<ModelGauges>& models) const;

 private:
  mutable std::mutex mu_;
  std::map<std::pair<std::string, int>, std::uint64_t> requests_;
  std::uint64_t prompt_tokens_ = 0, generated_tokens_ = 0;
  std::uint64_t prompt_tokens_cached_ = 0;
  Histogram ttft_, itl_;
};

}  // namespace g2c::server
