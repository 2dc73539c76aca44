#pragma once
// OpenAIBackend: any server that speaks the OpenAI HTTP API — vLLM (`vllm serve`), llama.cpp's
// `llama-server`, LM Studio, `mlx_lm.server`, Ollama's /v1, and `g2c serve`.
//   complete()/stream() -> POST {base}/completions   (legacy text completion; SSE when streaming)
//   chat()              -> POST {base}/chat/completions (tools; arguments arrive JSON-encoded)
// Token counts come from `usage` (streams ask for it with stream_options.include_usage); server
// timings from llama.cpp's `timings` object when present. Wire shapes: api-compat.md §4.
#include <memory>
#include <string>

#include "g2c/core/error.hpp"
#include "g2c/inference/backend.hpp"
#include "g2c/inference/http_call.hpp"
#include "g2c/inference/http_transport.hpp"

namespace g2c::inference {

class OpenAIError : public Error {
 public:
  explicit OpenAIError(const std::string& msg, int status = 0) : Error(msg), status_(status) {}
  int status() const { return status_; }

 private:
  int status_;
};

struct OpenAIConfig {
  // "http://host:port/v1". A URL with no path gets "/v1" appended; any other path is used as given.
  std::string base_url = "http://127.0.0.1:8080/v1";
  std::string model;
  std::string api_key;  // sent as "Authorization: Bearer <key>" when not empty
  double timeout_s = 120.0;
  std::shared_ptr<HttpTransport> transport;  // null: make_httplib_transport()
  std::string name = "openai";
  nlohmann::json extra = nlohmann::json::object();
};

class OpenAIBackend : public Backend, private HttpProtocol {
 public:
  explicit OpenAIBackend(OpenAIConfig cfg);
  OpenAIBackend(std::string base_url, std::string model, std::string api_key = "");

  BackendInfo info() const override;
  const std::string& base_url() const { return base_url_; }

  InferenceResult complete(const std::string& prompt, const GenerateOptions& opts = {}) override;
  InferenceResult stream(const std::string& prompt, const GenerateOptions& opts,
                         const ChunkCallback& on_chunk) override;
  ChatResult chat(const std::vector<ChatMessage>& messages, const std::vector<ToolSpec>& tools = {},
                  const GenerateOptions& opts = {}) override;
  // POST {base}/chat/completions with "stream": true: delta.content to on_chunk; delta.tool_calls
  // (pieces keyed by index) and delta.reasoning_content gathered into the result.
  ChatResult chat_stream(const std::vector<ChatMessage>& messages, const std::vector<ToolSpec>& tools,
                         const GenerateOptions& opts, const ChunkCallback& on_chunk) override;

  // POST {base}/completions with the text as prompt, echo, logprobs 1 (the top alternative, for
  // is_greedy), max_tokens 0 and return_tokens (g2c serve's and llama-server's ids; optional): the
  // legacy logprobs' token_logprobs, top_logprobs and text_offset of the prompt. g2c serve and vLLM
  // answer it; a server that returns no prompt log-probabilities gets an OpenAIError saying so.
  LoglikResult loglikelihood(const std::string& context, const std::string& continuation) override;

  // GET {base}/models: the ids the server lists; throws OpenAIError when nothing answers.
  std::vector<std::string> list_models(double timeout_s = 5.0);

  static void add_constraints(nlohmann::json& body, const GenerateOptions& opts);
  nlohmann::json completion_request(const std::string& prompt, const GenerateOptions& opts, bool stream) const;
  nlohmann::json chat_body(const std::vector<ChatMessage>& messages, const std::vector<ToolSpec>& tools,
                           const GenerateOptions& opts, bool stream) const;

 private:
  HttpRequest request(const std::string& path, const nlohmann::json& body) const;
  // HttpProtocol: this API's words for each failure, thrown as OpenAIError.
  [[noreturn]] void raise_transport(const TransportError& e, const std::string& url) const override;
  [[noreturn]] void raise_status(int status, const std::string& body, const std::string& url) const override;
  [[noreturn]] void raise(const std::string& msg, int status) const override;

  std::string base_url_;
  std::string model_;
  std::string api_key_;
  double timeout_s_;
  std::shared_ptr<HttpTransport> transport_;
  std::string name_;
  nlohmann::json extra_;
};

// "http://h:8000" -> "http://h:8000/v1"; "http://h:8000/v1/" -> "http://h:8000/v1"; other paths kept.
std::string normalize_openai_base_url(const std::string& url);

}  // namespace g2c::inference
