#pragma once
// RouterBackend (seed exercise 6): one Backend in front of several (typically a tiny local model and
// ProdLM). Each request is routed, in this order:
//   1. by rules: the first rule whose conditions all hold picks its target (prompt length in bytes,
//      a regex searched in the prompt, the request's max_new_tokens);
//   2. else by confidence, when configured: the tiny backend answers with logprobs; if the mean
//      log-probability of its first k generated tokens is >= threshold its answer is returned,
//      otherwise the request is escalated (also when the tiny backend reports no logprobs or fails);
//   3. else to default_target.
// A target that throws g2c::Error falls back to the next backend (index order, wrapping around).
// The result's metadata["router"] records the decision, its reason, the backend used, the fallbacks
// taken and the confidence score, and latency_ms is the wall time of the whole routed call.
//
// Logprob contract for the tiny backend: metadata["logprobs"] is an array of numbers, the natural
// log-probability of each generated token in order, filled when GenerateOptions::logprobs is set.
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "g2c/inference/backend.hpp"

namespace g2c::inference {

struct RouteRule {
  std::string name;
  std::size_t target = 0;  // index into the router's backends
  // Conditions; unset ones are ignored, set ones must all hold.
  std::optional<std::size_t> min_prompt_bytes;
  std::optional<std::size_t> max_prompt_bytes;
  std::string prompt_regex;  // PCRE2 (Perl syntax, UTF-8), searched anywhere in the prompt; "" = none
  std::optional<int> min_max_new_tokens;
  std::optional<int> max_max_new_tokens;
};

struct ConfidenceRoute {
  std::size_t tiny = 0;
  std::size_t escalate = 1;
  int k = 8;                // tokens averaged (fewer when the tiny answer is shorter)
  double threshold = -1.0;  // mean natural-log probability; below it the request escalates
};

struct RouterConfig {
  std::vector<RouteRule> rules;
  std::optional<ConfidenceRoute> confidence;
  std::size_t default_target = 0;
  bool fallback_on_error = true;
  std::string name = "router";
};

class RouterBackend : public Backend {
 public:
  RouterBackend(std::vector<std::shared_ptr<Backend>> backends, RouterConfig cfg);

  BackendInfo info() const override;
  InferenceResult complete(const std::string& prompt, const GenerateOptions& opts = {}) override;
  InferenceResult stream(const std::string& prompt, const GenerateOptions& opts,
                         const ChunkCallback& on_chunk) override;
  ChatResult chat(const std::vector<ChatMessage>& messages, const std::vector<ToolSpec>& tools = {},
                  const GenerateOptions& opts = {}) override;
  ChatResult chat_stream(const std::vector<ChatMessage>& messages, const std::vector<ToolSpec>& tools,
                         const GenerateOptions& opts, const ChunkCallback& on_chunk) override;

  // The mean of the first k entries of metadata["logprobs"]; empty when there are none.
  static std::optional<double> mean_logprob(const nlohmann::json& metadata, int k, int* n_used = nullptr);

 private:
  struct Decision {
    std::size_t target = 0;
    std::string decision;  // "rule:<name>", "confident", "escalate", "default"
    std::string reason;
    nlohmann::json confidence;  // null unless confidence routing ran
  };
  std::optional<Decision> by_rules(const std::string& prompt, const GenerateOptions& opts) const;
  ChatResult run_chat(const std::vector<ChatMessage>& messages, const std::vector<ToolSpec>& tools,
                      const GenerateOptions& opts, const ChunkCallback* on_chunk);
  std::vector<std::size_t> order_from(std::size_t target) const;
  nlohmann::json record(const Decision& d, std::size_t used, const nlohmann::json& fallbacks) const;

  std::vector<std::shared_ptr<Backend>> backends_;
  RouterConfig cfg_;
  // One compiled PCRE2 pattern per rule (null for rules without a regex). PCRE2 rather than
  // std::regex: libstdc++'s regex recurses per character and can overflow the stack on a long prompt.
  struct CompiledRegex;
  std::vector<std::shared_ptr<const CompiledRegex>> regexes_;
};

}  // namespace g2c::inference
