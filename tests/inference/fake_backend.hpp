#pragma once
// A scripted Backend for router and benchmark tests: answers from a list, can fail on demand,
// reports logprobs, and advances an injected fake clock by a known latency per request.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "g2c/core/error.hpp"
#include "g2c/inference/backend.hpp"

namespace g2c::inference::testing {

struct FakeClock {
  std::int64_t now = 1'000'000'000;
  std::function<std::int64_t()> fn() {
    return [this] { return now; };
  }
};

class FakeBackend : public Backend {
 public:
  explicit FakeBackend(std::string name, std::string completion = "ok")
      : name_(std::move(name)), completion_(std::move(completion)) {}

  BackendInfo info() const override { return {name_, name_ + "-model", extra}; }

  InferenceResult complete(const std::string& prompt, const GenerateOptions& opts) override {
    ++calls;
    if (call_counter) ++*call_counter;
    last_opts = opts;
    prompts.push_back(prompt);
    if (fail) throw Error(name_ + " is down");
    InferenceResult r;
    r.prompt = prompt;
    r.completion = completion_;
    r.prompt_tokens = static_cast<std::int64_t>(prompt.size());
    if (!unknown_tokens) r.completion_tokens = tokens;
    double lat = latencies_ms.empty() ? 1.0 : latencies_ms[(calls - 1) % latencies_ms.size()];
    if (clock) clock->now += static_cast<std::int64_t>(lat * 1e6);
    r.latency_ms = lat;
    r.backend = info();
    if (opts.logprobs && !logprobs.empty()) r.metadata["logprobs"] = logprobs;
    for (auto it = metadata.begin(); it != metadata.end(); ++it) r.metadata[it.key()] = it.value();
    return r;
  }

  std::string name_, completion_;
  nlohmann::json extra = nlohmann::json::object();
  nlohmann::json metadata = nlohmann::json::object();  // copied into every result
  std::vector<double> logprobs;
  std::vector<double> latencies_ms;  // per call, cycled
  std::int64_t tokens = 4;
  bool unknown_tokens = false;
  bool fail = false;
  FakeClock* clock = nullptr;
  int calls = 0;
  int* call_counter = nullptr;  // outlives the backend (benchmark()'s factory overload destroys it)
  GenerateOptions last_opts;
  std::vector<std::string> prompts;
};

}  // namespace g2c::inference::testing
