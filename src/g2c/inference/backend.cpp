#include "g2c/inference/backend.hpp"

#include <algorithm>
#include <cmath>
#include <random>

#include "g2c/core/error.hpp"
#include "g2c/core/timer.hpp"

namespace g2c::inference {

std::optional<double> InferenceResult::tokens_per_second() const {
  if (!completion_tokens || latency_ms <= 0.0) return std::nullopt;
  return static_cast<double>(*completion_tokens) / (latency_ms / 1000.0);
}

nlohmann::json GenerateOptions::to_json() const {
  nlohmann::json j = {{"max_new_tokens", max_new_tokens}, {"temperature", temperature}};
  j["top_k"] = top_k ? nlohmann::json(*top_k) : nlohmann::json(nullptr);
  j["top_p"] = top_p ? nlohmann::json(*top_p) : nlohmann::json(nullptr);
  j["seed"] = seed ? nlohmann::json(*seed) : nlohmann::json(nullptr);
  j["stop"] = stop;
  return j;
}

InferenceResult Backend::stream(const std::string& prompt, const GenerateOptions& opts, const ChunkCallback& on_chunk) {
  InferenceResult r = complete(prompt, opts);
  if (!r.completion.empty() && on_chunk && !on_chunk(r.completion)) r.metadata["canceled"] = true;
  return r;
}

ChatResult Backend::chat(const std::vector<ChatMessage>& messages, const std::vector<ToolSpec>& tools,
                         const GenerateOptions& opts) {
  if (!tools.empty()) {
    throw UnsupportedError("backend '" + info().name + "' does not support tools (chat with " +
                           std::to_string(tools.size()) + " tool(s) given)");
  }
  Timer timer;
  InferenceResult r = complete(tokenizer::render_chat(tokenizer::ChatTemplate{}, chat_turns(messages), true), opts);
  ChatResult out;
  out.message.role = "assistant";
  out.message.content = r.completion;
  out.prompt_tokens = r.prompt_tokens;
  out.completion_tokens = r.completion_tokens;
  out.latency_ms = timer.elapsed_ms();
  for (const char* key : {"server_total_ms", "prompt_eval_ms", "eval_ms", "load_ms"}) {
    if (r.metadata.contains(key)) out.timings[key] = r.metadata[key];
  }
  if (r.metadata.contains("done_reason") && r.metadata["done_reason"].is_string()) {
    out.done_reason = r.metadata["done_reason"].get<std::string>();
  }
  out.backend = r.backend;
  return out;
}

ChatResult Backend::chat_stream(const std::vector<ChatMessage>& messages, const std::vector<ToolSpec>& tools,
                                const GenerateOptions& opts, const ChunkCallback& on_chunk) {
  ChatResult r = chat(messages, tools, opts);
  if (!r.message.content.empty() && on_chunk && !on_chunk(r.message.content)) r.metadata["canceled"] = true;
  return r;
}

nlohmann::json message_to_json(const ChatMessage& m, bool arguments_as_string) {
  nlohmann::json j = {{"role", m.role}, {"content", m.content}};
  if (!m.tool_calls.empty()) {
    nlohmann::json calls = nlohmann::json::array();
    for (const ToolCall& c : m.tool_calls) {
      nlohmann::json fn = {{"name", c.name}};
      if (arguments_as_string) {
        fn["arguments"] = c.arguments.is_string() ? c.arguments.get<std::string>() : c.arguments.dump();
      } else {
        fn["arguments"] = c.arguments;
      }
      nlohmann::json call = {{"function", fn}};
      if (!c.id.empty()) call["id"] = c.id;
      if (arguments_as_string) call["type"] = "function";
      calls.push_back(call);
    }
    j["tool_calls"] = calls;
  }
  if (!m.tool_name.empty()) j["tool_name"] = m.tool_name;
  if (!m.tool_call_id.empty()) j["tool_call_id"] = m.tool_call_id;
  return j;
}

std::vector<tokenizer::ChatTurn> chat_turns(const std::vector<ChatMessage>& messages) {
  std::vector<tokenizer::ChatTurn> turns;
  turns.reserve(messages.size());
  for (const ChatMessage& m : messages) turns.push_back({m.role, m.content, m.tool_name});
  return turns;
}

tokenizer::ChatRequest chat_request(const std::vector<ChatMessage>& messages, const std::vector<ToolSpec>& tools) {
  using OJson = nlohmann::ordered_json;
  tokenizer::ChatRequest req;
  for (const ChatMessage& m : messages) {
    OJson j = {{"role", m.role}, {"content", m.content}};
    if (!m.tool_calls.empty()) {
      OJson calls = OJson::array();
      for (const ToolCall& c : m.tool_calls) {
        OJson args = c.arguments.is_object() ? OJson::parse(c.arguments.dump()) : OJson::object();
        if (!c.arguments_valid && c.arguments.is_string()) args = c.arguments.get<std::string>();
        OJson call = {{"id", c.id}, {"type", "function"}, {"function", {{"name", c.name}, {"arguments", args}}}};
        if (c.id.empty()) call.erase("id");
        calls.push_back(std::move(call));
      }
      j["tool_calls"] = std::move(calls);
    }
    if (!m.tool_call_id.empty()) j["tool_call_id"] = m.tool_call_id;
    if (!m.tool_name.empty()) j["name"] = m.tool_name;
    req.messages.push_back(std::move(j));
  }
  if (!tools.empty()) {
    req.tools = OJson::array();
    for (const ToolSpec& t : tools) req.tools.push_back(OJson::parse(t.dump()));
  }
  return req;
}

std::string new_tool_call_id(tokenizer::ChatFamily family) {
  static const std::string kLower = "abcdefghijklmnopqrstuvwxyz0123456789";
  static const std::string kAlnum = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  thread_local std::mt19937_64 rng{std::random_device{}()};
  const bool mistral = family == tokenizer::ChatFamily::kMistralNemo;
  const std::string& chars = mistral ? kAlnum : kLower;
  std::string id = mistral ? "" : "call_";
  for (int i = 0; i < (mistral ? 9 : 8); ++i) id += chars[rng() % chars.size()];
  return id;
}

std::vector<ToolCall> tool_calls_of(const tokenizer::ParsedChat& parsed, tokenizer::ChatFamily family) {
  std::vector<ToolCall> out;
  for (const tokenizer::ParsedToolCall& p : parsed.tool_calls) {
    ToolCall c;
    c.id = p.id.empty() ? new_tool_call_id(family) : p.id;
    c.name = p.name;
    c.arguments = nlohmann::json::parse(p.arguments.dump());
    out.push_back(std::move(c));
  }
  return out;
}

ToolCall tool_call_from_json(const nlohmann::json& j) {
  ToolCall c;
  if (!j.is_object()) throw FormatError("tool call: expected a JSON object, got " + j.dump());
  if (j.contains("id") && j["id"].is_string()) c.id = j["id"].get<std::string>();
  const nlohmann::json* fn = j.contains("function") ? &j["function"] : &j;
  if (!fn->is_object() || !fn->contains("name") || !(*fn)["name"].is_string()) {
    throw FormatError("tool call: expected function.name, got " + j.dump());
  }
  c.name = (*fn)["name"].get<std::string>();
  if (!fn->contains("arguments") || (*fn)["arguments"].is_null()) {
    c.arguments = nlohmann::json::object();
  } else if ((*fn)["arguments"].is_string()) {
    // OpenAI sends the arguments JSON-encoded; a model can emit text that does not parse.
    const std::string& s = (*fn)["arguments"].get_ref<const std::string&>();
    nlohmann::json parsed = nlohmann::json::parse(s, nullptr, /*allow_exceptions=*/false);
    if (parsed.is_discarded()) {
      c.arguments = s;
      c.arguments_valid = false;
    } else {
      c.arguments = std::move(parsed);
    }
  } else {
    c.arguments = (*fn)["arguments"];
  }
  return c;
}

LoglikResult Backend::loglikelihood(const std::string& /*context*/, const std::string& /*continuation*/) {
  const BackendInfo i = info();
  throw UnsupportedError("backend '" + i.name + "' (" + i.model_id +
                         ") cannot score a continuation: it gives no log-probabilities of prompt tokens");
}

std::size_t continuation_start(const std::vector<std::size_t>& offsets, std::size_t text_chars,
                               std::size_t context_chars) {
  const std::size_t n = offsets.size();
  for (std::size_t i = 1; i < n; ++i) {
    const std::size_t end = i + 1 < n ? offsets[i + 1] : text_chars;
    if (end > context_chars) return i;
  }
  return n;  // the continuation adds no token of its own
}

void sum_continuation(LoglikResult& r, std::size_t start) {
  if (start < 1) start = 1;
  r.n_context_tokens = static_cast<std::int64_t>(std::min(start, r.token_logprobs.size()));
  r.logprob = 0.0;
  r.n_tokens = 0;
  r.is_greedy = true;
  for (std::size_t i = start; i < r.token_logprobs.size(); ++i) {
    r.logprob += r.token_logprobs[i];
    ++r.n_tokens;
    if (i >= r.token_greedy.size() || !r.token_greedy[i]) r.is_greedy = false;
  }
}

nlohmann::json to_json(const LoglikResult& r) {
  nlohmann::json lps = nlohmann::json::array();
  for (double v : r.token_logprobs) lps.push_back(std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr));
  return {{"logprob", r.logprob},       {"n_tokens", r.n_tokens},
          {"is_greedy", r.is_greedy},   {"n_context_tokens", r.n_context_tokens},
          {"token_ids", r.token_ids},   {"tokens", r.tokens},
          {"token_logprobs", lps},      {"token_greedy", r.token_greedy},
          {"latency_ms", r.latency_ms}, {"backend", to_json(r.backend)}};
}

nlohmann::json to_json(const BackendInfo& info) {
  return {{"name", info.name}, {"model_id", info.model_id}, {"extra", info.extra}};
}

nlohmann::json to_json(const InferenceResult& r) {
  auto opt = [](const std::optional<std::int64_t>& v) { return v ? nlohmann::json(*v) : nlohmann::json(nullptr); };
  std::optional<double> tps = r.tokens_per_second();
  return {{"prompt", r.prompt},
          {"completion", r.completion},
          {"prompt_tokens", opt(r.prompt_tokens)},
          {"completion_tokens", opt(r.completion_tokens)},
          {"latency_ms", r.latency_ms},
          {"tokens_per_second", tps ? nlohmann::json(*tps) : nlohmann::json(nullptr)},
          {"backend", to_json(r.backend)},
          {"metadata", r.metadata}};
}

}  // namespace g2c::inference
