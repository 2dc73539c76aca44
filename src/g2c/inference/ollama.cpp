#include "g2c/inference/ollama.hpp"

#include <cstdlib>
#include <optional>

#include <fmt/core.h>

namespace g2c::inference {
namespace {

constexpr double kNsPerMs = 1e6;

constexpr StreamSpec kOllamaStream{StreamSpec::Framing::kNdjson, "the Ollama stream", "chunk"};

// Ollama durations are integer ns (Go time.Duration); every metric is optional on the wire.
std::optional<double> ns_field_ms(const nlohmann::json& j, const char* key) {
  if (!j.contains(key) || !j[key].is_number()) return std::nullopt;
  return j[key].get<double>() / kNsPerMs;
}
std::optional<std::int64_t> int_field(const nlohmann::json& j, const char* key) {
  if (!j.contains(key) || !j[key].is_number()) return std::nullopt;
  return j[key].get<std::int64_t>();
}

// Copies the final object's counts and durations into the result. Tok/s from the server's own
// durations is only given when the duration is positive (eval_duration ~ 0 gives absurd rates).
void apply_final(const nlohmann::json& j, std::optional<std::int64_t>& prompt_tokens,
                 std::optional<std::int64_t>& completion_tokens, nlohmann::json& meta) {
  prompt_tokens = int_field(j, "prompt_eval_count");
  completion_tokens = int_field(j, "eval_count");
  if (auto v = ns_field_ms(j, "total_duration")) meta["server_total_ms"] = *v;
  if (auto v = ns_field_ms(j, "load_duration")) meta["load_ms"] = *v;
  auto pe = ns_field_ms(j, "prompt_eval_duration");
  auto ev = ns_field_ms(j, "eval_duration");
  if (pe) meta["prompt_eval_ms"] = *pe;
  if (ev) meta["eval_ms"] = *ev;
  if (pe && *pe > 0 && prompt_tokens) meta["server_prompt_tokens_per_second"] = *prompt_tokens / (*pe / 1000.0);
  if (ev && *ev > 0 && completion_tokens) meta["server_eval_tokens_per_second"] = *completion_tokens / (*ev / 1000.0);
  if (j.contains("done_reason") && j["done_reason"].is_string()) meta["done_reason"] = j["done_reason"];
  if (j.contains("model") && j["model"].is_string()) meta["model"] = j["model"];
}

// Native logprobs: [{"token","logprob","bytes","top_logprobs"}]; we keep the numbers.
void append_logprobs(const nlohmann::json& j, nlohmann::json& meta) {
  if (!j.contains("logprobs") || !j["logprobs"].is_array()) return;
  if (!meta.contains("logprobs")) meta["logprobs"] = nlohmann::json::array();
  for (const auto& e : j["logprobs"]) {
    if (e.is_object() && e.contains("logprob") && e["logprob"].is_number()) meta["logprobs"].push_back(e["logprob"]);
  }
}

}  // namespace

std::string resolve_ollama_host(std::string_view host_in) {
  std::string host(host_in);
  while (!host.empty() && (host.back() == '/' || host.back() == ' ')) host.pop_back();
  while (!host.empty() && host.front() == ' ') host.erase(0, 1);
  if (host.empty()) return kDefaultOllamaUrl;
  std::string scheme = "http";
  std::size_t p = host.find("://");
  bool had_scheme = p != std::string::npos;
  if (had_scheme) {
    scheme = host.substr(0, p);
    host = host.substr(p + 3);
  }
  std::size_t slash = host.find('/');
  std::string path = slash == std::string::npos ? "" : host.substr(slash);
  std::string hostport = host.substr(0, slash);
  bool has_port = false;
  if (!hostport.empty() && hostport.front() == '[') {
    has_port = hostport.find("]:") != std::string::npos;
  } else {
    has_port = hostport.find(':') != std::string::npos;
  }
  if (!has_port) {
    int port = had_scheme ? (scheme == "https" ? 443 : 80) : 11434;
    hostport += fmt::format(":{}", port);
  }
  return scheme + "://" + hostport + path;
}

std::string default_ollama_url() {
  const char* env = std::getenv("OLLAMA_HOST");
  return resolve_ollama_host(env ? env : "");
}

nlohmann::json ollama_options(const GenerateOptions& opts) {
  nlohmann::json o = {{"num_predict", opts.max_new_tokens}, {"temperature", opts.temperature}};
  if (opts.top_k) o["top_k"] = *opts.top_k;
  if (opts.top_p) o["top_p"] = *opts.top_p;
  if (opts.seed) o["seed"] = *opts.seed;
  if (!opts.stop.empty()) o["stop"] = opts.stop;
  return o;
}

OllamaBackend::OllamaBackend(OllamaConfig cfg)
    : model_id_(std::move(cfg.model_id)),
      base_url_(cfg.base_url.empty() ? default_ollama_url() : resolve_ollama_host(cfg.base_url)),
      timeout_s_(cfg.timeout_s),
      transport_(cfg.transport ? std::move(cfg.transport) : make_httplib_transport()),
      name_(std::move(cfg.name)),
      extra_(cfg.extra.is_object() ? std::move(cfg.extra) : nlohmann::json::object()) {
  if (model_id_.empty()) throw InvalidArgument("OllamaBackend: model_id is empty");
  if (timeout_s_ <= 0) throw InvalidArgument(fmt::format("OllamaBackend: timeout must be > 0 s, got {}", timeout_s_));
  parse_url(base_url_);  // reject a malformed URL now, not at the first request
}

OllamaBackend::OllamaBackend(std::string model_id, std::string base_url, double timeout_s)
    : OllamaBackend(OllamaConfig{std::move(model_id), std::move(base_url), timeout_s, nullptr, "ollama", {}}) {}

BackendInfo OllamaBackend::info() const {
  BackendInfo i{name_, model_id_, extra_};
  i.extra["base_url"] = base_url_;
  return i;
}

GenerateOptions OllamaBackend::tool_defaults() {
  GenerateOptions o;
  o.max_new_tokens = 512;
  o.temperature = 0.2;
  return o;
}

HttpRequest OllamaBackend::request(const std::string& path, const nlohmann::json& body) const {
  HttpRequest req;
  req.url = join_url(base_url_, path);
  req.body = body.dump();
  req.headers = {{"Accept", "application/json"}};
  req.timeout_s = timeout_s_;
  return req;
}

void OllamaBackend::raise_transport(const TransportError& e, const std::string& url) const {
  switch (e.kind()) {
    case TransportError::Kind::kConnect:
      throw OllamaError(
          fmt::format("cannot reach Ollama at {} (connection refused or host unreachable) — is "
                      "`ollama serve` running? Set OLLAMA_HOST if it listens elsewhere. [{}]",
                      base_url_, e.what()));
    case TransportError::Kind::kTimeout:
      throw OllamaError(
          fmt::format("Ollama at {} timed out after {} s on {} — the model may still be loading "
                      "(check `ollama ps`) or the timeout is too short. [{}]",
                      base_url_, timeout_s_, url, e.what()));
    default: throw OllamaError(fmt::format("talking to Ollama at {} failed: {}", base_url_, e.what()));
  }
}

void OllamaBackend::raise_status(int status, const std::string& body, const std::string& url) const {
  // Ollama answers {"error": "..."}; an unknown route gets the text "404 page not found".
  std::string msg;
  nlohmann::json j = nlohmann::json::parse(body, nullptr, false);
  bool is_ollama_error = !j.is_discarded() && j.is_object() && j.contains("error") && j["error"].is_string();
  msg = is_ollama_error ? j["error"].get<std::string>() : excerpt(body);
  if (status == 404 && is_ollama_error) {
    throw OllamaError(fmt::format("Ollama at {} does not have model '{}' ({}); run `ollama pull {}`", base_url_,
                                  model_id_, msg, model_id_),
                      status);
  }
  if (status == 404) {
    throw OllamaError(fmt::format("{} answered 404 '{}' — is this an Ollama server?", url, msg), status);
  }
  throw OllamaError(fmt::format("Ollama at {} answered HTTP {} for {}: {}", base_url_, status, url, msg), status);
}

void OllamaBackend::raise(const std::string& msg, int status) const { throw OllamaError(msg, status); }

LoglikResult OllamaBackend::loglikelihood(const std::string& /*context*/, const std::string& /*continuation*/) {
  throw UnsupportedError(fmt::format(
      "backend '{}' ({}) cannot score a continuation: Ollama's API (/api/generate, /api/chat) has no echo and "
      "returns no log-probabilities of prompt tokens; use openai:URL against a server that does (g2c serve, vLLM) "
      "or a local model",
      name_, model_id_));
}

nlohmann::json OllamaBackend::generate_request(const std::string& prompt, const GenerateOptions& opts,
                                               bool stream) const {
  nlohmann::json body = {
      {"model", model_id_}, {"prompt", prompt}, {"stream", stream}, {"options", ollama_options(opts)}};
  if (opts.logprobs) body["logprobs"] = true;
  add_format(body, opts);
  return body;
}

// Ollama's `format`: a JSON Schema, or "json" for any JSON value ({}). It has no GBNF: a grammar is refused
// rather than dropped, since an unconstrained answer would look like a constrained one.
void OllamaBackend::add_format(nlohmann::json& body, const GenerateOptions& opts) const {
  if (!opts.grammar.empty())
    throw UnsupportedError(
        fmt::format("OllamaBackend ({}): Ollama's API takes a JSON Schema (`format`), not a GBNF "
                    "grammar; use GenerateOptions::json_schema, or an in-process or openai: backend",
                    base_url_));
  if (opts.json_schema.is_null()) return;
  body["format"] = opts.json_schema.empty() ? nlohmann::json("json") : opts.json_schema;
}

InferenceResult OllamaBackend::complete(const std::string& prompt, const GenerateOptions& opts) {
  HttpCall call(*transport_, *this);
  nlohmann::json j =
      call.post(request("/api/generate", generate_request(prompt, opts, false)), R"({"response": "...", ...})");
  if (j.contains("error")) {
    throw OllamaError(fmt::format("Ollama at {}: {}", base_url_, j["error"].dump()), call.status());
  }
  if (!j.contains("response") || !j["response"].is_string()) call.bad_reply();
  InferenceResult r;
  r.prompt = prompt;
  r.completion = j["response"].get<std::string>();
  r.backend = info();
  apply_final(j, r.prompt_tokens, r.completion_tokens, r.metadata);
  append_logprobs(j, r.metadata);
  r.metadata["stream"] = false;
  r.latency_ms = call.elapsed_ms();
  return r;
}

InferenceResult OllamaBackend::stream(const std::string& prompt, const GenerateOptions& opts,
                                      const ChunkCallback& on_chunk) {
  HttpCall call(*transport_, *this);
  HttpRequest req = request("/api/generate", generate_request(prompt, opts, true));
  req.headers = {{"Accept", "application/x-ndjson"}};
  InferenceResult r;
  r.prompt = prompt;
  r.backend = info();
  r.metadata["stream"] = true;
  bool done = false;
  HttpCall::StreamEnd end =
      call.post_stream(std::move(req), kOllamaStream, [&](const nlohmann::json& j, std::string_view) {
        if (j.contains("error")) {
          std::string msg = j["error"].is_string() ? j["error"].get<std::string>() : j["error"].dump();
          throw OllamaError(
              fmt::format("Ollama at {} failed mid-stream after {} chunk(s): {}", base_url_, call.items(), msg));
        }
        std::string piece = j.contains("response") && j["response"].is_string() ? j["response"].get<std::string>() : "";
        append_logprobs(j, r.metadata);
        if (!piece.empty()) {
          if (r.completion.empty()) r.metadata["ttft_ms"] = call.elapsed_ms();
          r.completion += piece;
          if (on_chunk && !on_chunk(piece)) return false;
        }
        if (j.value("done", false)) {
          done = true;
          apply_final(j, r.prompt_tokens, r.completion_tokens, r.metadata);
        }
        return true;
      });
  if (end.canceled) {
    r.metadata["canceled"] = true;
  } else if (!done) {
    throw OllamaError(
        fmt::format("the Ollama stream from {} ended after {} chunk(s) without a done:true object "
                    "(connection cut or server crashed)",
                    call.url(), call.items()));
  }
  r.latency_ms = call.elapsed_ms();
  return r;
}

nlohmann::json OllamaBackend::chat_body(const std::vector<ChatMessage>& messages, const std::vector<ToolSpec>& tools,
                                        const GenerateOptions& opts, bool stream) const {
  nlohmann::json msgs = nlohmann::json::array();
  for (const ChatMessage& m : messages) msgs.push_back(message_to_json(m, /*arguments_as_string=*/false));
  nlohmann::json body = {
      {"model", model_id_}, {"messages", msgs}, {"stream", stream}, {"options", ollama_options(opts)}};
  if (!tools.empty()) body["tools"] = tools;
  add_format(body, opts);
  return body;
}

namespace {

// A /api/chat reply object's message (a whole reply, or one chunk of a stream): content, tool calls and
// thinking appended to `out`.
void append_message(const nlohmann::json& m, ChatResult& out, const std::string& url) {
  if (m.contains("content") && m["content"].is_string()) out.message.content += m["content"].get<std::string>();
  if (m.contains("thinking") && m["thinking"].is_string() && !m["thinking"].get<std::string>().empty()) {
    out.metadata["reasoning_content"] =
        out.metadata.value("reasoning_content", std::string()) + m["thinking"].get<std::string>();
  }
  if (m.contains("tool_calls") && m["tool_calls"].is_array()) {
    try {
      for (const auto& c : m["tool_calls"]) out.message.tool_calls.push_back(tool_call_from_json(c));
    } catch (const FormatError& e) {
      throw OllamaError(fmt::format("bad tool call from Ollama at {}: {}", url, e.what()));
    }
  }
  out.tool_calls = out.message.tool_calls;
}

// The done:true object's counters and durations.
void apply_chat_final(const nlohmann::json& j, ChatResult& out) {
  nlohmann::json meta = nlohmann::json::object();
  apply_final(j, out.prompt_tokens, out.completion_tokens, meta);
  for (const char* key : {"server_total_ms", "load_ms", "prompt_eval_ms", "eval_ms"}) {
    if (meta.contains(key)) out.timings[key] = meta[key];
  }
  if (meta.contains("done_reason")) out.done_reason = meta["done_reason"].get<std::string>();
}

}  // namespace

ChatResult OllamaBackend::chat(const std::vector<ChatMessage>& messages, const std::vector<ToolSpec>& tools,
                               const GenerateOptions& opts) {
  HttpCall call(*transport_, *this);
  nlohmann::json j =
      call.post(request("/api/chat", chat_body(messages, tools, opts, false)), R"({"message": {...}, ...})");
  if (!j.contains("message") || !j["message"].is_object()) call.bad_reply();
  const nlohmann::json& m = j["message"];
  ChatResult out;
  out.message.role = m.value("role", "assistant");
  append_message(m, out, call.url());
  apply_chat_final(j, out);
  out.backend = info();
  out.latency_ms = call.elapsed_ms();
  out.timings["wall_ms"] = out.latency_ms;
  return out;
}

ChatResult OllamaBackend::chat_stream(const std::vector<ChatMessage>& messages, const std::vector<ToolSpec>& tools,
                                      const GenerateOptions& opts, const ChunkCallback& on_chunk) {
  HttpCall call(*transport_, *this);
  HttpRequest req = request("/api/chat", chat_body(messages, tools, opts, true));
  req.headers = {{"Accept", "application/x-ndjson"}};
  ChatResult out;
  out.message.role = "assistant";
  bool done = false;
  HttpCall::StreamEnd end =
      call.post_stream(std::move(req), kOllamaStream, [&](const nlohmann::json& j, std::string_view) {
        if (j.contains("error")) {
          std::string msg = j["error"].is_string() ? j["error"].get<std::string>() : j["error"].dump();
          throw OllamaError(
              fmt::format("Ollama at {} failed mid-stream after {} chunk(s): {}", base_url_, call.items(), msg));
        }
        if (j.contains("message") && j["message"].is_object()) {
          const std::size_t before = out.message.content.size();
          append_message(j["message"], out, call.url());
          if (out.message.content.size() > before) {
            if (!out.timings.contains("ttft_ms")) out.timings["ttft_ms"] = call.elapsed_ms();
            if (on_chunk && !on_chunk(std::string_view(out.message.content).substr(before))) return false;
          }
        }
        if (j.value("done", false)) {
          done = true;
          apply_chat_final(j, out);
        }
        return true;
      });
  if (end.canceled) {
    out.metadata["canceled"] = true;
  } else if (!done) {
    throw OllamaError(
        fmt::format("the Ollama chat stream from {} ended after {} chunk(s) without a done:true object "
                    "(connection cut or server crashed)",
                    call.url(), call.items()));
  }
  out.backend = info();
  out.latency_ms = call.elapsed_ms();
  out.timings["wall_ms"] = out.latency_ms;
  return out;
}

ChatResult OllamaBackend::chat_with_tools(const std::vector<ChatMessage>& messages, const std::vector<ToolSpec>& tools,
                                          const GenerateOptions& opts) {
  return chat(messages, tools, opts);
}

std::string OllamaBackend::version(double timeout_s) {
  HttpCall call(*transport_, *this);
  HttpRequest req;
  req.url = join_url(base_url_, "/api/version");
  req.timeout_s = timeout_s;
  nlohmann::json j = call.get(std::move(req), R"({"version": "..."})");
  if (!j.contains("version") || !j["version"].is_string()) call.bad_reply();
  return j["version"].get<std::string>();
}

}  // namespace g2c::inference
