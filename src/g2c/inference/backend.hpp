#pragma once
// The course API (seed module 16): one interface that everything downstream (RAG, tools, agents,
// evals, the server) calls, whatever runs the model. A Backend is a value passed to whoever needs it
// (dependency injection); nothing here is a global or a singleton.
//
// Metadata contract (keys a backend may put in InferenceResult::metadata; benchmark() and
// RouterBackend read them, and all are optional):
//   "server_total_ms"   double  time the server says it spent on the request (Ollama total_duration,
//                               llama.cpp timings prompt_ms + predicted_ms); wall − this = overhead
//   "load_ms"           double  server-reported model load / scheduling time
//   "prompt_eval_ms"    double  prefill time (server-reported, or measured in-process)
//   "eval_ms"           double  decode time for the completion tokens
//   "prefill_ns", "decode_ns"   int64  the same two in ns, as the in-process backends report them
//   "ttft_ms"           double  stream(): wall ms from the call to the first non-empty chunk
//   "logprobs"          array of double: natural-log probability of each generated token, in order
//                               (filled when GenerateOptions::logprobs is set and the backend can)
//   "done_reason"       string  "stop" | "length" | "canceled" | ... as the server or engine says
//   "canceled"          bool    stream() stopped because on_chunk returned false. One event, one
//                               spelling: done_reason "canceled" (the engine stopped) and this key
//                               say the same thing; an HTTP backend sets only this key (the server
//                               just sees the connection close), so read this one to ask "canceled?"
// Durations in metadata are always milliseconds unless the key ends in _ns.
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "g2c/tokenizer/chat_template.hpp"
#include "g2c/tokenizer/tool_calls.hpp"

namespace g2c::inference {

// Who answered: "ollama" / "openai" / "local" / "router" ..., the model id the server or file
// knows, and free-form details (quantization, context_length, base_url, isa, threads, why chosen).
struct BackendInfo {
  std::string name;
  std::string model_id;
  nlohmann::json extra = nlohmann::json::object();
};

struct InferenceResult {
  std::string prompt;
  std::string completion;  // the generated text only, never the prompt
  std::optional<std::int64_t> prompt_tokens;
  std::optional<std::int64_t> completion_tokens;
  double latency_ms = 0.0;  // wall clock around the whole call, measured by the caller-side wrapper
  BackendInfo backend;
  nlohmann::json metadata = nlohmann::json::object();

  // Completion tokens per second of wall latency; empty when the token count is unknown or the
  // latency is not positive (a zero denominator would print as a million tok/s).
  std::optional<double> tokens_per_second() const;
};

// Sampling and stop settings; the defaults are the seed's complete() keyword defaults.
struct GenerateOptions {
  int max_new_tokens = 128;
  double temperature = 1.0;
  std::optional<int> top_k;
  std::optional<double> top_p;
  std::optional<std::uint64_t> seed;
  std::vector<std::string> stop;  // generation ends before any of these strings
  // Ask for per-token log-probabilities in metadata["logprobs"] (RouterBackend's confidence rule).
  // Backends that cannot report them ignore the flag.
  bool logprobs = false;
  // Constrained decoding (engine/generate.hpp, sampling/grammar.hpp): the completion follows a GBNF
  // grammar, or JSON valid under a JSON Schema (null: none; {} is any JSON value). At most one of the two.
  // In-process backends apply them and set metadata["grammar_complete"] (false when max_new_tokens cut the
  // text: done_reason "length"); OllamaBackend sends the schema as `format` and refuses a grammar (its API
  // has none); OpenAIBackend sends response_format, and a grammar as llama-server's `grammar` field.
  std::string grammar;
  nlohmann::json json_schema;

  nlohmann::json to_json() const;  // for benchmark metadata
};

// Receives each piece of text as it is generated; returning false cancels the generation.
using ChunkCallback = std::function<bool(std::string_view text)>;

// One tool call requested by the model. `arguments` is parsed JSON (an object); when a server sent
// arguments that do not parse, it holds the raw string and `arguments_valid` is false.
struct ToolCall {
  std::string id;
  std::string name;
  nlohmann::json arguments = nlohmann::json::object();
  bool arguments_valid = true;
};

// role: "system" | "user" | "assistant" | "tool". A tool result names its tool in tool_name (Ollama)
// and/or the call it answers in tool_call_id (OpenAI).
struct ChatMessage {
  std::string role;
  std::string content;
  std::vector<ToolCall> tool_calls;
  std::string tool_name;
  std::string tool_call_id;
};

// A tool the model may call: {"type":"function","function":{"name","description","parameters"}}.
using ToolSpec = nlohmann::json;

struct ChatResult {
  ChatMessage message;               // the assistant turn (content may be empty when it calls tools)
  std::vector<ToolCall> tool_calls;  // same as message.tool_calls, for the seed's result.tool_calls
  std::optional<std::int64_t> prompt_tokens;
  std::optional<std::int64_t> completion_tokens;
  double latency_ms = 0.0;
  // Server or engine durations in ms ("server_total_ms", "prompt_eval_ms", "eval_ms", "load_ms").
  nlohmann::json timings = nlohmann::json::object();
  std::string done_reason;
  BackendInfo backend;
  // "tool_call_error" (string): the model wrote a malformed call; it is in message.content as text.
  // "reasoning_content" (string): the model's thinking (DeepSeek R1 <think>), kept out of content.
  nlohmann::json metadata = nlohmann::json::object();
};

// The log-likelihood of a continuation given a context (Backend::loglikelihood): how evals score
// multiple choice and perplexity. The backend tokenizes context + continuation as ONE text (BOS added
// as for a completion) and scores every token given the ones before it; the continuation's tokens are
// those from the token holding the continuation's first character on (text offsets), so a token that
// straddles the boundary counts as the continuation's.
struct LoglikResult {
  double logprob = 0.0;       // sum of the continuation tokens' natural-log probabilities
  std::int64_t n_tokens = 0;  // continuation tokens
  bool is_greedy = false;     // every continuation token was the most likely one at its position
  // The whole text as scored, one entry per token (the first one, usually BOS, has no prediction):
  std::vector<std::int32_t> token_ids;  // empty when the API returns no ids
  std::vector<std::string> tokens;      // each token's text
  std::vector<double> token_logprobs;   // [0] NaN
  std::vector<bool> token_greedy;       // [0] false
  std::int64_t n_context_tokens = 0;    // tokens before the continuation's first
  double latency_ms = 0.0;
  BackendInfo backend;
};

// Index of the first continuation token: the first token whose text extends past `context_chars`
// (offsets[i] = where token i starts in the text, `text_chars` = the text's length); at least 1, since
// nothing predicts token 0. Shared by every backend so they split the same way.
std::size_t continuation_start(const std::vector<std::size_t>& offsets, std::size_t text_chars,
                               std::size_t context_chars);
// Fills logprob, n_tokens, is_greedy and n_context_tokens from the per-token arrays and the start.
void sum_continuation(LoglikResult& r, std::size_t start);

// A Backend need not be thread-safe. The HTTP backends keep no per-request state (one connection per
// call) and may be shared between threads; in-process backends own a KV cache and may not.
class Backend {
 public:
  virtual ~Backend() = default;

  virtual BackendInfo info() const = 0;

  virtual InferenceResult complete(const std::string& prompt, const GenerateOptions& opts = {}) = 0;

  // Streams the completion to on_chunk; the returned result holds the whole text (the concatenation
  // of the chunks) and, when on_chunk returned false, metadata["canceled"] = true. The default calls
  // complete() and delivers the text as one chunk.
  virtual InferenceResult stream(const std::string& prompt, const GenerateOptions& opts, const ChunkCallback& on_chunk);

  // One assistant turn for `messages`, with optional tools. The default renders the messages with
  // the plain fallback template (tokenizer/chat_template.hpp), calls complete(), and returns no tool calls; it
  // throws UnsupportedError when tools are given, since it cannot parse calls out of plain text.
  virtual ChatResult chat(const std::vector<ChatMessage>& messages, const std::vector<ToolSpec>& tools = {},
                          const GenerateOptions& opts = {});

  // chat() with the reply's text delivered to on_chunk as it is generated. Only content is streamed: a
  // tool call or the model's reasoning is held back and arrives whole in the result (text before a call
  // is delivered). Returning false cancels: the result holds what was generated and
  // metadata["canceled"] = true. The result's message.content is the concatenation of the chunks. The
  // default calls chat() and delivers the content as one chunk.
  virtual ChatResult chat_stream(const std::vector<ChatMessage>& messages, const std::vector<ToolSpec>& tools,
                                 const GenerateOptions& opts, const ChunkCallback& on_chunk);

  // log P(continuation | context) with the per-token detail above. The default throws UnsupportedError
  // naming the backend; in-process backends score in the engine, OpenAIBackend through /v1/completions
  // with echo + logprobs, OllamaBackend refuses (its API returns no prompt log-probabilities).
  virtual LoglikResult loglikelihood(const std::string& context, const std::string& continuation);
};

// Messages <-> the JSON shape both HTTP APIs use ({"role","content",...}). `arguments_as_string`
// selects OpenAI's tool_calls shape (arguments as a JSON-encoded string) over Ollama's (an object).
nlohmann::json message_to_json(const ChatMessage& m, bool arguments_as_string);
// What a chat template reads of each message (role, content, tool name), for tokenizer::render_chat.
std::vector<tokenizer::ChatTurn> chat_turns(const std::vector<ChatMessage>& messages);
// The conversation and tools in Hugging Face's shapes, for tokenizer::render_chat (assistant
// tool_calls as {id, type: "function", function: {name, arguments: object}}; a tool result's
// tool_call_id and its tool name as "name").
tokenizer::ChatRequest chat_request(const std::vector<ChatMessage>& messages, const std::vector<ToolSpec>& tools);
// A new call id for a call the model wrote without one: "call_" + 8 lowercase alphanumerics (Ollama's
// shape), or 9 alphanumerics for mistral-nemo, whose template refuses any other id.
std::string new_tool_call_id(tokenizer::ChatFamily family);
// Parsed calls -> the course's ToolCalls (ids filled in where the model gave none).
std::vector<ToolCall> tool_calls_of(const tokenizer::ParsedChat& parsed, tokenizer::ChatFamily family);
// Parses a tool call in either shape: {"id","function":{"name","arguments"}} with arguments an object
// (Ollama) or a JSON string (OpenAI).
ToolCall tool_call_from_json(const nlohmann::json& j);

nlohmann::json to_json(const BackendInfo& info);
nlohmann::json to_json(const InferenceResult& r);
nlohmann::json to_json(const LoglikResult& r);

}  // namespace g2c::inference
