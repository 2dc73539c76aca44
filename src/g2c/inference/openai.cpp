#include "g2c/inference/openai.hpp"

#include <algorithm>
#include <limits>
#include <map>

#include <optional>

#include <fmt/core.h>

namespace g2c::inference {
namespace {

constexpr StreamSpec kSseStream{StreamSpec::Framing::kSse, "the SSE stream", "event", "[DONE]"};

std::optional<std::int64_t> int_at(const nlohmann::json& j, const char* key) {
  if (!j.is_object() || !j.contains(key) || !j[key].is_number()) return std::nullopt;
  return j[key].get<std::int64_t>();
}

// usage {prompt_tokens, completion_tokens}; llama.cpp timings {prompt_ms, predicted_ms, ...} (ms).
void apply_usage(const nlohmann::json& j, std::optional<std::int64_t>& prompt_tokens,
                 std::optional<std::int64_t>& completion_tokens, nlohmann::json& meta) {
  if (j.contains("usage") && j["usage"].is_object()) {
    const auto& u = j["usage"];
    if (auto v = int_at(u, "prompt_tokens")) prompt_tokens = v;
    if (auto v = int_at(u, "completion_tokens")) completion_tokens = v;
  }
  if (j.contains("timings") && j["timings"].is_object()) {
    const auto& t = j["timings"];
    double total = 0;
    bool any = false;
    if (t.contains("prompt_ms") && t["prompt_ms"].is_number()) {
      meta["prompt_eval_ms"] = t["prompt_ms"];
      total += t["prompt_ms"].get<double>();
      any = true;
    }
    if (t.contains("predicted_ms") && t["predicted_ms"].is_number()) {
      meta["eval_ms"] = t["predicted_ms"];
      total += t["predicted_ms"].get<double>();
      any = true;
    }
    if (any) meta["server_total_ms"] = total;
    meta["timings"] = t;
  }
  if (j.contains("model") && j["model"].is_string()) meta["model"] = j["model"];
}

// Legacy completions logprobs: {"tokens":[...],"token_logprobs":[...]}.
void append_logprobs(const nlohmann::json& choice, nlohmann::json& meta) {
  if (!choice.contains("logprobs") || !choice["logprobs"].is_object()) return;
  const auto& lp = choice["logprobs"];
  if (!lp.contains("token_logprobs") || !lp["token_logprobs"].is_array()) return;
  if (!meta.contains("logprobs")) meta["logprobs"] = nlohmann::json::array();
  for (const auto& v : lp["token_logprobs"]) {
    if (v.is_number()) meta["logprobs"].push_back(v);
  }
}

// The error message from {"error":{"message":...}} or {"error":"..."}; `text` (clipped) for anything else.
std::string error_message(const nlohmann::json& j, std::string_view text) {
  if (j.is_object() && j.contains("error")) {
    const auto& e = j["error"];
    if (e.is_string()) return e.get<std::string>();
    if (e.is_object() && e.contains("message") && e["message"].is_string()) return e["message"].get<std::string>();
    return e.dump();
  }
  return excerpt(text);
}

}  // namespace

std::string normalize_openai_base_url(const std::string& url) {
  ParsedUrl u = parse_url(url);
  std::string path = u.path;
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  if (path == "/" || path.empty()) path = "/v1";
  std::size_t scheme_end = url.find("://") + 3;
  std::size_t slash = url.find('/', scheme_end);
  std::string origin = url.substr(0, slash);
  return origin + path;
}

OpenAIBackend::OpenAIBackend(OpenAIConfig cfg)
    : base_url_(normalize_openai_base_url(cfg.base_url)),
      model_(std::move(cfg.model)),
      api_key_(std::move(cfg.api_key)),
      timeout_s_(cfg.timeout_s),
      transport_(cfg.transport ? std::move(cfg.transport) : make_httplib_transport()),
      name_(std::move(cfg.name)),
      extra_(cfg.extra.is_object() ? std::move(cfg.extra) : nlohmann::json::object()) {
  if (model_.empty()) throw InvalidArgument("OpenAIBackend: model is empty (the server's model id)");
  if (timeout_s_ <= 0) throw InvalidArgument(fmt::format("OpenAIBackend: timeout must be > 0 s, got {}", timeout_s_));
}

OpenAIBackend::OpenAIBackend(std::string base_url, std::string model, std::string api_key)
    : OpenAIBackend(
          OpenAIConfig{std::move(base_url), std::move(model), std::move(api_key), 120.0, nullptr, "openai", {}}) {}

BackendInfo OpenAIBackend::info() const {
  BackendInfo i{name_, model_, extra_};
  i.extra["base_url"] = base_url_;
  return i;
}

HttpRequest OpenAIBackend::request(const std::string& path, const nlohmann::json& body) const {
  HttpRequest req;
  req.url = join_url(base_url_, path);
  req.body = body.dump();
  req.headers = {{"Accept", "application/json"}};
  if (!api_key_.empty()) req.headers.emplace_back("Authorization", "Bearer " + api_key_);
  req.timeout_s = timeout_s_;
  return req;
}

void OpenAIBackend::raise_transport(const TransportError& e, const std::string& url) const {
  if (e.kind() == TransportError::Kind::kConnect) {
    throw OpenAIError(
        fmt::format("cannot reach the OpenAI-compatible server at {} — is it running (vllm serve, "
                    "llama-server, LM Studio, mlx_lm.server, g2c serve)? [{}]",
                    base_url_, e.what()));
  }
  if (e.kind() == TransportError::Kind::kTimeout) {
    throw OpenAIError(
        fmt::format("the server at {} timed out after {} s on {}. [{}]", base_url_, timeout_s_, url, e.what()));
  }
  throw OpenAIError(fmt::format("talking to {} failed: {}", base_url_, e.what()));
}

void OpenAIBackend::raise_status(int status, const std::string& body, const std::string& url) const {
  std::string msg = error_message(nlohmann::json::parse(body, nullptr, false), body);
  if (status == 401 || status == 403) {
    throw OpenAIError(fmt::format("{} refused the request (HTTP {}): {} — check the API key", url, status, msg),
                      status);
  }
  if (status == 404) {
    throw OpenAIError(fmt::format("{} answered 404: {} — unknown model '{}' or no such endpoint", url, msg, model_),
                      status);
  }
  throw OpenAIError(fmt::format("{} answered HTTP {}: {}", url, status, msg), status);
}

void OpenAIBackend::raise(const std::string& msg, int status) const { throw OpenAIError(msg, status); }

nlohmann::json OpenAIBackend::completion_request(const std::string& prompt, const GenerateOptions& opts,
                                                 bool stream) const {
  nlohmann::json body = {{"model", model_},
                         {"prompt", prompt},
                         {"max_tokens", opts.max_new_tokens},
                         {"temperature", opts.temperature},
                         {"stream", stream}};
  if (opts.top_p) body["top_p"] = *opts.top_p;
  if (opts.top_k) body["top_k"] = *opts.top_k;  // not OpenAI's; vLLM, llama.cpp and LM Studio accept it
  if (opts.seed) body["seed"] = *opts.seed;
  if (!opts.stop.empty()) body["stop"] = opts.stop;
  if (opts.logprobs) body["logprobs"] = 1;
  if (stream) body["stream_options"] = {{"include_usage", true}};
  add_constraints(body, opts);
  return body;
}

// A JSON Schema as OpenAI's response_format ({} = any JSON: json_object); a GBNF grammar as llama-server's
// body field `grammar` (g2c serve and llama-server read it; vLLM spells it guided_grammar).
void OpenAIBackend::add_constraints(nlohmann::json& body, const GenerateOptions& opts) {
  if (!opts.grammar.empty()) body["grammar"] = opts.grammar;
  if (opts.json_schema.is_null()) return;
  if (opts.json_schema.empty()) {
    body["response_format"] = {{"type", "json_object"}};
  } else {
    body["response_format"] = {{"type", "json_schema"},
                               {"json_schema", {{"name", "output"}, {"schema", opts.json_schema}}}};
  }
}

InferenceResult OpenAIBackend::complete(const std::string& prompt, const GenerateOptions& opts) {
  HttpCall call(*transport_, *this);
  nlohmann::json j =
      call.post(request("/completions", completion_request(prompt, opts, false)), R"({"choices":[{"text":...}]})");
  if (!j.contains("choices") || !j["choices"].is_array() || j["choices"].empty() || !j["choices"][0].is_object()) {
    call.bad_reply();
  }
  const auto& choice = j["choices"][0];
  InferenceResult r;
  r.prompt = prompt;
  r.completion = choice.contains("text") && choice["text"].is_string() ? choice["text"].get<std::string>() : "";
  r.backend = info();
  apply_usage(j, r.prompt_tokens, r.completion_tokens, r.metadata);
  append_logprobs(choice, r.metadata);
  if (choice.contains("finish_reason") && choice["finish_reason"].is_string())
    r.metadata["done_reason"] = choice["finish_reason"];
  r.metadata["stream"] = false;
  r.latency_ms = call.elapsed_ms();
  return r;
}

LoglikResult OpenAIBackend::loglikelihood(const std::string& context, const std::string& continuation) {
  HttpCall call(*transport_, *this);
  const std::string text = context + continuation;
  const nlohmann::json body = {{"model", model_}, {"prompt", text}, {"max_tokens", 0},       {"temperature", 0.0},
                               {"echo", true},    {"logprobs", 1},  {"return_tokens", true}, {"stream", false}};
  nlohmann::json j = call.post(request("/completions", body), R"({"choices":[{"logprobs":{"token_logprobs":...}}]})");
  if (!j.contains("choices") || !j["choices"].is_array() || j["choices"].empty() || !j["choices"][0].is_object()) {
    call.bad_reply();
  }
  const nlohmann::json& choice = j["choices"][0];
  const nlohmann::json lp = choice.value("logprobs", nlohmann::json());
  const auto arr = [&](const char* key) {
    return lp.is_object() && lp.contains(key) && lp[key].is_array() ? lp[key] : nlohmann::json();
  };
  const nlohmann::json toks = arr("tokens"), tlps = arr("token_logprobs"), tops = arr("top_logprobs"),
                       offs = arr("text_offset");
  if (tlps.is_null() || offs.is_null() || toks.is_null() || tlps.size() != offs.size() || toks.size() != tlps.size()) {
    throw OpenAIError(
        fmt::format("{} cannot score a continuation: its /completions answer to echo + logprobs has no "
                    "prompt logprobs (tokens, token_logprobs, text_offset); llama-server at c392e50 "
                    "lacks them, g2c serve and vLLM give them",
                    base_url_));
  }
  // Only the prompt's tokens: a server that generated one anyway (max_tokens 0 read as "default") adds more.
  std::size_t n = tlps.size();
  if (j.contains("usage") && j["usage"].is_object() && j["usage"].contains("prompt_tokens") &&
      j["usage"]["prompt_tokens"].is_number_integer()) {
    n = std::min(n, j["usage"]["prompt_tokens"].get<std::size_t>());
  }
  LoglikResult r;
  std::vector<std::size_t> offsets;
  for (std::size_t i = 0; i < n; ++i) {
    r.tokens.push_back(toks[i].is_string() ? toks[i].get<std::string>() : "");
    const double v = tlps[i].is_number() ? tlps[i].get<double>() : std::numeric_limits<double>::quiet_NaN();
    if (i > 0 && !tlps[i].is_number()) {
      throw OpenAIError(fmt::format("{}: token_logprobs[{}] is {} (a number expected)", base_url_, i, tlps[i].dump()));
    }
    r.token_logprobs.push_back(v);
    bool greedy = false;
    if (i > 0 && i < tops.size() && tops[i].is_object()) {
      greedy = true;
      for (auto it = tops[i].begin(); it != tops[i].end(); ++it) {
        if (it.value().is_number() && it.value().get<double>() > v) greedy = false;
      }
    }
    r.token_greedy.push_back(greedy);
    offsets.push_back(offs[i].is_number_unsigned() ? offs[i].get<std::size_t>() : 0);
  }
  if (choice.contains("tokens") && choice["tokens"].is_array() && choice["tokens"].size() >= n) {
    for (std::size_t i = 0; i < n; ++i) r.token_ids.push_back(choice["tokens"][i].get<std::int32_t>());
  }
  sum_continuation(r, continuation_start(offsets, text.size(), context.size()));
  r.backend = info();
  r.latency_ms = call.elapsed_ms();
  return r;
}

InferenceResult OpenAIBackend::stream(const std::string& prompt, const GenerateOptions& opts,
                                      const ChunkCallback& on_chunk) {
  HttpCall call(*transport_, *this);
  HttpRequest req = request("/completions", completion_request(prompt, opts, true));
  req.headers[0] = {"Accept", "text/event-stream"};
  InferenceResult r;
  r.prompt = prompt;
  r.backend = info();
  r.metadata["stream"] = true;
  bool finished = false;
  HttpCall::StreamEnd end =
      call.post_stream(std::move(req), kSseStream, [&](const nlohmann::json& j, std::string_view event) {
        if (j.contains("error") || event == "error") {
          throw OpenAIError(fmt::format("{} failed mid-stream after {} event(s): {}", base_url_, call.items(),
                                        error_message(j, j.dump())));
        }
        apply_usage(j, r.prompt_tokens, r.completion_tokens, r.metadata);
        if (j.contains("choices") && j["choices"].is_array() && !j["choices"].empty() && j["choices"][0].is_object()) {
          const auto& c = j["choices"][0];
          append_logprobs(c, r.metadata);
          if (c.contains("finish_reason") && c["finish_reason"].is_string()) {
            r.metadata["done_reason"] = c["finish_reason"];
            finished = true;
          }
          std::string piece = c.contains("text") && c["text"].is_string() ? c["text"].get<std::string>() : "";
          if (!piece.empty()) {
            if (r.completion.empty()) r.metadata["ttft_ms"] = call.elapsed_ms();
            r.completion += piece;
            if (on_chunk && !on_chunk(piece)) return false;
          }
        }
        return true;
      });
  if (end.canceled) {
    r.metadata["canceled"] = true;
  } else if (!end.end_marker && !finished) {
    // [DONE] is the protocol's end; a finish_reason without it (an old server closing early) is enough.
    throw OpenAIError(fmt::format("the SSE stream from {} ended after {} event(s) without finish_reason or [DONE]",
                                  call.url(), call.items()));
  }
  r.latency_ms = call.elapsed_ms();
  return r;
}

nlohmann::json OpenAIBackend::chat_body(const std::vector<ChatMessage>& messages, const std::vector<ToolSpec>& tools,
                                        const GenerateOptions& opts, bool stream) const {
  nlohmann::json msgs = nlohmann::json::array();
  for (const ChatMessage& m : messages) msgs.push_back(message_to_json(m, /*arguments_as_string=*/true));
  nlohmann::json body = {{"model", model_},
                         {"messages", msgs},
                         {"max_tokens", opts.max_new_tokens},
                         {"temperature", opts.temperature},
                         {"stream", stream}};
  if (opts.top_p) body["top_p"] = *opts.top_p;
  if (opts.top_k) body["top_k"] = *opts.top_k;
  if (opts.seed) body["seed"] = *opts.seed;
  if (!opts.stop.empty()) body["stop"] = opts.stop;
  if (!tools.empty()) body["tools"] = tools;
  if (stream) body["stream_options"] = {{"include_usage", true}};
  add_constraints(body, opts);
  return body;
}

namespace {

void apply_chat_usage(const nlohmann::json& j, ChatResult& out) {
  nlohmann::json meta = nlohmann::json::object();
  apply_usage(j, out.prompt_tokens, out.completion_tokens, meta);
  for (const char* key : {"server_total_ms", "prompt_eval_ms", "eval_ms"}) {
    if (meta.contains(key)) out.timings[key] = meta[key];
  }
}

std::string string_field(const nlohmann::json& j, const char* key) {
  return j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : std::string();
}

}  // namespace

ChatResult OpenAIBackend::chat(const std::vector<ChatMessage>& messages, const std::vector<ToolSpec>& tools,
                               const GenerateOptions& opts) {
  HttpCall call(*transport_, *this);
  nlohmann::json j = call.post(request("/chat/completions", chat_body(messages, tools, opts, false)),
                               R"({"choices":[{"message":...}]})");
  if (!j.contains("choices") || !j["choices"].is_array() || j["choices"].empty() ||
      !j["choices"][0].contains("message") || !j["choices"][0]["message"].is_object()) {
    call.bad_reply();
  }
  const auto& choice = j["choices"][0];
  const auto& m = choice["message"];
  ChatResult out;
  out.message.role = m.contains("role") && m["role"].is_string() ? m["role"].get<std::string>() : "assistant";
  out.message.content = string_field(m, "content");
  if (m.contains("tool_calls") && m["tool_calls"].is_array()) {
    try {
      for (const auto& c : m["tool_calls"]) out.message.tool_calls.push_back(tool_call_from_json(c));
    } catch (const FormatError& e) {
      throw OpenAIError(fmt::format("bad tool call from {}: {}", call.url(), e.what()));
    }
  }
  out.tool_calls = out.message.tool_calls;
  const std::string reasoning = string_field(m, "reasoning_content");
  if (!reasoning.empty()) out.metadata["reasoning_content"] = reasoning;
  apply_chat_usage(j, out);
  out.done_reason = string_field(choice, "finish_reason");
  out.backend = info();
  out.latency_ms = call.elapsed_ms();
  out.timings["wall_ms"] = out.latency_ms;
  return out;
}

ChatResult OpenAIBackend::chat_stream(const std::vector<ChatMessage>& messages, const std::vector<ToolSpec>& tools,
                                      const GenerateOptions& opts, const ChunkCallback& on_chunk) {
  HttpCall call(*transport_, *this);
  HttpRequest req = request("/chat/completions", chat_body(messages, tools, opts, true));
  req.headers[0] = {"Accept", "text/event-stream"};
  ChatResult out;
  out.message.role = "assistant";
  std::string reasoning;
  // delta.tool_calls arrive in pieces keyed by index: the first names the call (id, function.name),
  // later ones append to function.arguments (a JSON-encoded string).
  std::map<std::int64_t, nlohmann::json> calls;
  bool finished = false;
  HttpCall::StreamEnd end =
      call.post_stream(std::move(req), kSseStream, [&](const nlohmann::json& j, std::string_view event) {
        if (j.contains("error") || event == "error") {
          throw OpenAIError(fmt::format("{} failed mid-stream after {} event(s): {}", base_url_, call.items(),
                                        error_message(j, j.dump())));
        }
        apply_chat_usage(j, out);
        if (!j.contains("choices") || !j["choices"].is_array() || j["choices"].empty() || !j["choices"][0].is_object())
          return true;
        const auto& c = j["choices"][0];
        if (c.contains("finish_reason") && c["finish_reason"].is_string()) {
          out.done_reason = c["finish_reason"].get<std::string>();
          finished = true;
        }
        if (!c.contains("delta") || !c["delta"].is_object()) return true;
        const auto& d = c["delta"];
        reasoning += string_field(d, "reasoning_content") + string_field(d, "reasoning");
        if (d.contains("tool_calls") && d["tool_calls"].is_array()) {
          for (const auto& t : d["tool_calls"]) {
            if (!t.is_object()) continue;
            const std::int64_t index = t.contains("index") && t["index"].is_number_integer()
                                           ? t["index"].get<std::int64_t>()
                                           : static_cast<std::int64_t>(calls.size());
            nlohmann::json& call_json = calls[index];
            if (call_json.is_null()) call_json = {{"function", {{"name", ""}, {"arguments", ""}}}};
            if (t.contains("id") && t["id"].is_string()) call_json["id"] = t["id"];
            if (t.contains("function") && t["function"].is_object()) {
              const auto& f = t["function"];
              call_json["function"]["name"] =
                  call_json["function"]["name"].get<std::string>() + string_field(f, "name");
              call_json["function"]["arguments"] =
                  call_json["function"]["arguments"].get<std::string>() + string_field(f, "arguments");
            }
          }
        }
        const std::string piece = string_field(d, "content");
        if (!piece.empty()) {
          if (!out.timings.contains("ttft_ms")) out.timings["ttft_ms"] = call.elapsed_ms();
          out.message.content += piece;
          if (on_chunk && !on_chunk(piece)) return false;
        }
        return true;
      });
  if (end.canceled) {
    out.metadata["canceled"] = true;
  } else if (!end.end_marker && !finished) {
    throw OpenAIError(fmt::format("the SSE stream from {} ended after {} event(s) without finish_reason or [DONE]",
                                  call.url(), call.items()));
  }
  try {
    for (const auto& [index, c] : calls) out.message.tool_calls.push_back(tool_call_from_json(c));
  } catch (const FormatError& e) {
    throw OpenAIError(fmt::format("bad tool call from {}: {}", call.url(), e.what()));
  }
  out.tool_calls = out.message.tool_calls;
  if (!reasoning.empty()) out.metadata["reasoning_content"] = reasoning;
  out.backend = info();
  out.latency_ms = call.elapsed_ms();
  out.timings["wall_ms"] = out.latency_ms;
  return out;
}

std::vector<std::string> OpenAIBackend::list_models(double timeout_s) {
  HttpCall call(*transport_, *this);
  HttpRequest req;
  req.url = join_url(base_url_, "/models");
  req.timeout_s = timeout_s;
  if (!api_key_.empty()) req.headers.emplace_back("Authorization", "Bearer " + api_key_);
  nlohmann::json j = call.get(std::move(req), R"({"data":[...]})");
  if (!j.contains("data")) call.bad_reply();
  std::vector<std::string> ids;
  if (j["data"].is_array()) {
    for (const auto& m : j["data"]) {
      if (m.is_object() && m.contains("id") && m["id"].is_string()) ids.push_back(m["id"].get<std::string>());
    }
  }
  return ids;
}

}  // namespace g2c::inference
