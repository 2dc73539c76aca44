#pragma once
// Request bodies -> typed requests, for both APIs, without a model: every type and range check a
// handler needs happens here, so a malformed request is a 400 naming the field before anything runs
// (and this file can be fuzzed alone). Unknown fields are ignored, as both APIs require.
//
// Sampling defaults (where a request is silent):
//   Ollama  temperature 0.8, top_k 40, top_p 0.9, min_p 0, repeat_penalty 1, repeat_last_n 64,
//           num_predict -1 (until an end token, a stop or a full context), random seed.
//   OpenAI  temperature 1, top_p 1, top_k 40, min_p 0, no penalties, max_tokens unlimited (as Ollama and
//           llama-server; OpenAI's own /v1/completions default of 16 is not applied).
// Integer fields accept integral floats (100.0); a value outside int32 is a 400.
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "g2c/engine/generate.hpp"
#include "g2c/inference/backend.hpp"

namespace g2c::server {

using Json = nlohmann::json;

// The body as a JSON object: 400 "missing request body" when empty, "invalid JSON: ..." when it does not
// parse (invalid UTF-8 included), "request body must be a JSON object" otherwise.
Json parse_body(const std::string& body);

// keep_alive as Ollama reads it: a number of seconds, or a Go duration string ("5m", "1h30m", "300ms",
// "0"); a unit-less numeric string is taken as seconds. Negative: keep forever (nanoseconds::max()).
std::optional<std::chrono::nanoseconds> parse_keep_alive(const Json& body);

// Settings shared by every generating request once its API's fields are read. Log-probabilities asked
// for (Ollama logprobs/top_logprobs, OpenAI logprobs/top_logprobs or the legacy integer logprobs) are
// params.logprobs and params.top_logprobs.
struct Sampling {
  engine::GenerateParams params;
  std::optional<std::int32_t> num_ctx;  // asked context per sequence (clamped by the server)
};

// Ollama's `options` object (api-compat.md §2.2) over Ollama's defaults.
Sampling parse_ollama_options(const Json& body);

struct OllamaGenerateRequest {
  std::string model;
  std::string prompt;
  std::string system;
  bool raw = false;
  bool stream = true;
  std::vector<std::int32_t> context;  // token ids of an earlier exchange to continue
  Sampling sampling;
  std::optional<std::chrono::nanoseconds> keep_alive;
  bool truncate = false;  // drop the oldest prompt tokens instead of a 400 when the prompt does not fit
};
OllamaGenerateRequest parse_ollama_generate(const Json& body);

struct OllamaChatRequest {
  std::string model;
  std::vector<inference::ChatMessage> messages;
  std::vector<inference::ToolSpec> tools;  // shape-checked; the model's template decides if it can use them
  bool stream = true;
  Sampling sampling;
  std::optional<std::chrono::nanoseconds> keep_alive;
  bool truncate = false;
  // Ollama's `think` (a boolean, or a level "low" | "medium" | "high" | "max", which is true): absent, the
  // thinking of a model that thinks is returned apart (message.thinking); true on a model whose template
  // does not think is a 400 "<model> does not support thinking"; false leaves the thinking out of the reply.
  std::optional<bool> think;
};
OllamaChatRequest parse_ollama_chat(const Json& body);

struct EmbedRequest {
  std::string model;
  std::vector<std::string> inputs;
  bool truncate = true;
  std::optional<std::int32_t> dimensions;
  std::optional<std::chrono::nanoseconds> keep_alive;
  std::optional<std::int32_t> num_ctx;
};
EmbedRequest parse_ollama_embed(const Json& body);       // /api/embed: input string or array of strings
EmbedRequest parse_ollama_embeddings(const Json& body);  // /api/embeddings: prompt string (one input, may be "")

struct OpenAICompletionRequest {
  std::string model;
  std::string prompt_text;               // when the prompt is text
  std::vector<std::int32_t> prompt_ids;  // when the prompt is token ids (checked against the vocabulary later)
  bool prompt_is_ids = false;
  bool echo = false;           // the prompt's text (and, with logprobs, its tokens' log-probabilities) comes first
  bool return_tokens = false;  // llama-server's extension: each choice (or chunk) also carries the ids, "tokens"
  bool stream = false;
  bool include_usage = false;
  Sampling sampling;
};
OpenAICompletionRequest parse_openai_completion(const Json& body);

struct OpenAIChatRequest {
  std::string model;
  std::vector<inference::ChatMessage> messages;
  std::vector<inference::ToolSpec> tools;  // after tool_choice: "none" leaves none; "required" / named: 400
  bool stream = false;
  bool include_usage = false;
  Sampling sampling;
};
OpenAIChatRequest parse_openai_chat(const Json& body);

struct OpenAIEmbeddingsRequest {
  std::string model;
  std::vector<std::string> inputs;
  bool base64 = false;
  std::optional<std::int32_t> dimensions;
};
OpenAIEmbeddingsRequest parse_openai_embeddings(const Json& body);

// The `model` field, required and a non-empty string (Ollama also reads `name`).
std::string require_model(const Json& body, bool allow_name_alias);

}  // namespace g2c::server
