#include "g2c/inference/router.hpp"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <fmt/format.h>

#include "g2c/core/error.hpp"
#include "g2c/core/log.hpp"
#include "g2c/core/timer.hpp"

namespace g2c::inference {

struct RouterBackend::CompiledRegex {
  pcre2_code* code = nullptr;
  ~CompiledRegex() { pcre2_code_free(code); }

  // Compiles with PCRE2_UTF and PCRE2_MATCH_INVALID_UTF, so a prompt with broken UTF-8 is searched
  // rather than rejected. Throws InvalidArgument with PCRE2's message and offset.
  static std::shared_ptr<const CompiledRegex> compile(const std::string& pattern, const std::string& rule) {
    int err = 0;
    PCRE2_SIZE off = 0;
    auto re = std::make_shared<CompiledRegex>();
    re->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                             PCRE2_UTF | PCRE2_MATCH_INVALID_UTF, &err, &off, nullptr);
    if (!re->code) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(err, msg, sizeof msg);
      throw InvalidArgument(fmt::format("RouterBackend: rule '{}': bad regex '{}' at offset {}: {}", rule, pattern, off,
                                        reinterpret_cast<const char*>(msg)));
    }
    return re;
  }

  // True when the pattern matches anywhere in `s`. A match error (e.g. PCRE2's backtracking limit)
  // counts as no match, with a warning: routing must not fail because a rule could not decide.
  bool search(const std::string& s) const {
    pcre2_match_data* md = pcre2_match_data_create_from_pattern(code, nullptr);
    int rc = pcre2_match(code, reinterpret_cast<PCRE2_SPTR>(s.data()), s.size(), 0, 0, md, nullptr);
    pcre2_match_data_free(md);
    if (rc < 0 && rc != PCRE2_ERROR_NOMATCH)
      log_warn("router: regex match failed (PCRE2 error {}); treating as no match", rc);
    return rc >= 0;
  }
};

namespace {

// Calls f on each backend of `order` until one returns; errors are recorded in `fallbacks`. With
// fallback off, or when `may_fall_back` says no (a stream that already emitted text), the first
// error propagates.
template <typename F>
auto run_with_fallback(const std::vector<std::shared_ptr<Backend>>& backends, const std::vector<std::size_t>& order,
                       bool fallback, nlohmann::json& fallbacks, std::size_t& used, F&& f,
                       const std::function<bool()>& may_fall_back = nullptr) {
  std::vector<std::string> errors;
  for (std::size_t pos = 0; pos < order.size(); ++pos) {
    std::size_t i = order[pos];
    try {
      auto r = f(*backends[i]);
      used = i;
      return r;
    } catch (const Error& e) {
      bool last = pos + 1 == order.size();
      if (!fallback || last || (may_fall_back && !may_fall_back())) {
        if (errors.empty()) throw;
        errors.push_back(fmt::format("backend {} ({}): {}", i, backends[i]->info().name, e.what()));
        throw Error(fmt::format("router: every backend failed: {}", fmt::join(errors, "; ")));
      }
      log_warn("router: backend {} ({}) failed, falling back: {}", i, backends[i]->info().name, e.what());
      fallbacks.push_back({{"backend_index", i}, {"backend", backends[i]->info().name}, {"error", e.what()}});
      errors.push_back(fmt::format("backend {} ({}): {}", i, backends[i]->info().name, e.what()));
    }
  }
  throw Error("router: no backends");  // unreachable: order is never empty
}

}  // namespace

RouterBackend::RouterBackend(std::vector<std::shared_ptr<Backend>> backends, RouterConfig cfg)
    : backends_(std::move(backends)), cfg_(std::move(cfg)) {
  if (backends_.empty()) throw InvalidArgument("RouterBackend: no backends given");
  for (std::size_t i = 0; i < backends_.size(); ++i) {
    if (!backends_[i]) throw InvalidArgument(fmt::format("RouterBackend: backend {} is null", i));
  }
  auto check_index = [&](std::size_t i, const std::string& what) {
    if (i >= backends_.size()) {
      throw InvalidArgument(
          fmt::format("RouterBackend: {} points at backend {}, but there are {}", what, i, backends_.size()));
    }
  };
  check_index(cfg_.default_target, "default_target");
  for (const RouteRule& r : cfg_.rules) {
    check_index(r.target, "rule '" + r.name + "'");
    regexes_.push_back(r.prompt_regex.empty() ? nullptr : CompiledRegex::compile(r.prompt_regex, r.name));
  }
  if (cfg_.confidence) {
    check_index(cfg_.confidence->tiny, "confidence.tiny");
    check_index(cfg_.confidence->escalate, "confidence.escalate");
    if (cfg_.confidence->k <= 0) throw InvalidArgument("RouterBackend: confidence.k must be > 0");
  }
}

BackendInfo RouterBackend::info() const {
  BackendInfo i;
  i.name = cfg_.name;
  nlohmann::json list = nlohmann::json::array();
  std::string ids;
  for (const auto& b : backends_) {
    BackendInfo bi = b->info();
    ids += (ids.empty() ? "" : ",") + bi.model_id;
    list.push_back({{"name", bi.name}, {"model_id", bi.model_id}});
  }
  i.model_id = ids;
  i.extra["backends"] = list;
  nlohmann::json rules = nlohmann::json::array();
  for (const RouteRule& r : cfg_.rules) rules.push_back(r.name);
  i.extra["rules"] = rules;
  if (cfg_.confidence) {
    i.extra["confidence"] = {{"tiny", cfg_.confidence->tiny},
                             {"escalate", cfg_.confidence->escalate},
                             {"k", cfg_.confidence->k},
                             {"threshold", cfg_.confidence->threshold}};
  }
  return i;
}

std::optional<double> RouterBackend::mean_logprob(const nlohmann::json& metadata, int k, int* n_used) {
  if (n_used) *n_used = 0;
  if (!metadata.is_object() || !metadata.contains("logprobs") || !metadata["logprobs"].is_array()) return std::nullopt;
  double sum = 0;
  int n = 0;
  for (const auto& v : metadata["logprobs"]) {
    if (n >= k) break;
    if (!v.is_number()) continue;
    sum += v.get<double>();
    ++n;
  }
  if (n_used) *n_used = n;
  if (n == 0) return std::nullopt;
  return sum / n;
}

std::optional<RouterBackend::Decision> RouterBackend::by_rules(const std::string& prompt,
                                                               const GenerateOptions& opts) const {
  for (std::size_t ir = 0; ir < cfg_.rules.size(); ++ir) {
    const RouteRule& r = cfg_.rules[ir];
    std::vector<std::string> why;
    if (r.min_prompt_bytes) {
      if (prompt.size() < *r.min_prompt_bytes) continue;
      why.push_back(fmt::format("prompt {} bytes >= {}", prompt.size(), *r.min_prompt_bytes));
    }
    if (r.max_prompt_bytes) {
      if (prompt.size() > *r.max_prompt_bytes) continue;
      why.push_back(fmt::format("prompt {} bytes <= {}", prompt.size(), *r.max_prompt_bytes));
    }
    if (!r.prompt_regex.empty()) {
      if (!regexes_[ir]->search(prompt)) continue;
      why.push_back(fmt::format("prompt matches /{}/", r.prompt_regex));
    }
    if (r.min_max_new_tokens) {
      if (opts.max_new_tokens < *r.min_max_new_tokens) continue;
      why.push_back(fmt::format("max_new_tokens {} >= {}", opts.max_new_tokens, *r.min_max_new_tokens));
    }
    if (r.max_max_new_tokens) {
      if (opts.max_new_tokens > *r.max_max_new_tokens) continue;
      why.push_back(fmt::format("max_new_tokens {} <= {}", opts.max_new_tokens, *r.max_max_new_tokens));
    }
    if (why.empty()) why.push_back("rule has no conditions");
    return Decision{r.target, "rule:" + r.name, fmt::format("rule '{}': {}", r.name, fmt::join(why, ", ")), nullptr};
  }
  return std::nullopt;
}

std::vector<std::size_t> RouterBackend::order_from(std::size_t target) const {
  std::vector<std::size_t> order;
  for (std::size_t k = 0; k < backends_.size(); ++k) order.push_back((target + k) % backends_.size());
  return order;
}

nlohmann::json RouterBackend::record(const Decision& d, std::size_t used, const nlohmann::json& fallbacks) const {
  nlohmann::json j = {{"decision", d.decision},
                      {"reason", d.reason},
                      {"target_index", d.target},
                      {"backend_index", used},
                      {"backend", backends_[used]->info().name},
                      {"fallbacks", fallbacks}};
  if (!d.confidence.is_null()) j["confidence"] = d.confidence;
  return j;
}

InferenceResult RouterBackend::complete(const std::string& prompt, const GenerateOptions& opts) {
  Timer timer;
  nlohmann::json fallbacks = nlohmann::json::array();
  std::optional<Decision> d = by_rules(prompt, opts);
  if (!d && cfg_.confidence) {
    const ConfidenceRoute& c = *cfg_.confidence;
    GenerateOptions tiny_opts = opts;
    tiny_opts.logprobs = true;
    Decision esc{c.escalate, "escalate", "", nlohmann::json::object()};
    esc.confidence = {{"tiny_index", c.tiny}, {"k", c.k}, {"threshold", c.threshold}};
    try {
      InferenceResult tiny = backends_[c.tiny]->complete(prompt, tiny_opts);
      int n_used = 0;
      std::optional<double> mean = mean_logprob(tiny.metadata, c.k, &n_used);
      esc.confidence["n_tokens"] = n_used;
      esc.confidence["mean_logprob"] = mean ? nlohmann::json(*mean) : nlohmann::json(nullptr);
      esc.confidence["tiny_latency_ms"] = tiny.latency_ms;
      if (mean && *mean >= c.threshold) {
        Decision ok{c.tiny, "confident",
                    fmt::format("tiny backend confident: mean logprob of first {} token(s) {:.4f} >= threshold {}",
                                n_used, *mean, c.threshold),
                    esc.confidence};
        tiny.metadata["router"] = record(ok, c.tiny, fallbacks);
        tiny.latency_ms = timer.elapsed_ms();
        tiny.backend = tiny.backend.name.empty() ? backends_[c.tiny]->info() : tiny.backend;
        return tiny;
      }
      esc.reason = mean ? fmt::format("tiny backend unsure: mean logprob of first {} token(s) {:.4f} < threshold {}",
                                      n_used, *mean, c.threshold)
                        : "tiny backend reported no logprobs; escalating";
    } catch (const Error& e) {
      if (!cfg_.fallback_on_error) throw;
      esc.reason = std::string("tiny backend failed; escalating: ") + e.what();
      fallbacks.push_back(
          {{"backend_index", c.tiny}, {"backend", backends_[c.tiny]->info().name}, {"error", e.what()}});
    }
    d = esc;
  }
  if (!d) d = Decision{cfg_.default_target, "default", "no rule matched; default backend", nullptr};
  std::size_t used = d->target;
  InferenceResult r = run_with_fallback(backends_, order_from(d->target), cfg_.fallback_on_error, fallbacks, used,
                                        [&](Backend& b) { return b.complete(prompt, opts); });
  r.metadata["router"] = record(*d, used, fallbacks);
  r.latency_ms = timer.elapsed_ms();
  return r;
}

InferenceResult RouterBackend::stream(const std::string& prompt, const GenerateOptions& opts,
                                      const ChunkCallback& on_chunk) {
  // Confidence routing needs the tiny answer before choosing; only rule routing streams directly.
  if (!by_rules(prompt, opts) && cfg_.confidence) return Backend::stream(prompt, opts, on_chunk);
  Timer timer;
  nlohmann::json fallbacks = nlohmann::json::array();
  std::optional<Decision> d = by_rules(prompt, opts);
  if (!d) d = Decision{cfg_.default_target, "default", "no rule matched; default backend", nullptr};
  bool emitted = false;
  ChunkCallback tap = [&](std::string_view s) {
    emitted = true;
    return on_chunk ? on_chunk(s) : true;
  };
  std::size_t used = d->target;
  InferenceResult r = run_with_fallback(
      backends_, order_from(d->target), cfg_.fallback_on_error, fallbacks, used,
      [&](Backend& b) { return b.stream(prompt, opts, tap); }, [&] { return !emitted; });
  r.metadata["router"] = record(*d, used, fallbacks);
  r.latency_ms = timer.elapsed_ms();
  return r;
}

ChatResult RouterBackend::chat(const std::vector<ChatMessage>& messages, const std::vector<ToolSpec>& tools,
                               const GenerateOptions& opts) {
  return run_chat(messages, tools, opts, nullptr);
}

ChatResult RouterBackend::chat_stream(const std::vector<ChatMessage>& messages, const std::vector<ToolSpec>& tools,
                                      const GenerateOptions& opts, const ChunkCallback& on_chunk) {
  return run_chat(messages, tools, opts, &on_chunk);
}

// Chats are routed by rules on the last user message (no confidence routing: that needs a completion
// to score). Streaming falls back to the next backend only while nothing has been delivered.
ChatResult RouterBackend::run_chat(const std::vector<ChatMessage>& messages, const std::vector<ToolSpec>& tools,
                                   const GenerateOptions& opts, const ChunkCallback* on_chunk) {
  Timer timer;
  std::string last_user;
  for (auto it = messages.rbegin(); it != messages.rend(); ++it) {
    if (it->role == "user") {
      last_user = it->content;
      break;
    }
  }
  nlohmann::json fallbacks = nlohmann::json::array();
  std::optional<Decision> d = by_rules(last_user, opts);
  if (!d)
    d = Decision{cfg_.default_target, "default", "no rule matched the last user message; default backend", nullptr};
  std::size_t used = d->target;
  bool emitted = false;
  const ChunkCallback tap = [&](std::string_view s) {
    emitted = true;
    return *on_chunk ? (*on_chunk)(s) : true;
  };
  ChatResult r = run_with_fallback(
      backends_, order_from(d->target), cfg_.fallback_on_error, fallbacks, used,
      [&](Backend& b) {
        return on_chunk != nullptr ? b.chat_stream(messages, tools, opts, tap) : b.chat(messages, tools, opts);
      },
      [&] { return !emitted; });
  r.timings["router"] = record(*d, used, fallbacks);
  r.latency_ms = timer.elapsed_ms();
  return r;
}

}  // namespace g2c::inference
