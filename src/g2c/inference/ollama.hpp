#pragma once
// OllamaBackend: the course's production path. POSTs to a running Ollama (or `g2c serve`, which
// speaks the same API): /api/generate for complete()/stream() (one JSON object, or NDJSON chunks),
// /api/chat for chat() / chat_with_tools(). Wire shapes: ../shared/docs/api-compat.md §2.
//
// Timings: latency_ms is our own wall clock around the whole call (building the request and parsing
// the answer included, see http_call.hpp); the server's own durations (integer ns on the wire) are
// converted to ms into metadata (server_total_ms, load_ms, prompt_eval_ms, eval_ms) so a benchmark
// can show both and their difference.
#include <memory>
#include <string>
#include <string_view>

#include "g2c/core/error.hpp"
#include "g2c/inference/backend.hpp"
#include "g2c/inference/http_call.hpp"
#include "g2c/inference/http_transport.hpp"

namespace g2c::inference {

// Everything that goes wrong talking to Ollama: no server, unknown model, HTTP errors, bad JSON,
// timeouts, errors inside a stream. status() is the HTTP status when there was one, else 0.
class OllamaError : public Error {
 public:
  explicit OllamaError(const std::string& msg, int status = 0) : Error(msg), status_(status) {}
  int status() const { return status_; }

 private:
  int status_;
};

inline constexpr const char* kDefaultOllamaUrl = "http://127.0.0.1:11434";

// $OLLAMA_HOST resolved as the Ollama clients do: "host" or "host:port" without a scheme gets
// http:// and port 11434; a scheme without a port gets the scheme's default (80 / 443); unset or
// empty gives kDefaultOllamaUrl. A trailing slash is dropped.
std::string resolve_ollama_host(std::string_view host);
std::string default_ollama_url();

struct OllamaConfig {
  std::string model_id = "llama3.2:3b";
  std::string base_url;                      // empty: default_ollama_url()
  double timeout_s = 120.0;                  // connect timeout and the longest silence while reading
  std::shared_ptr<HttpTransport> transport;  // null: make_httplib_transport()
  std::string name = "ollama";
  nlohmann::json extra = nlohmann::json::object();
};

class OllamaBackend : public Backend, private HttpProtocol {
 public:
  explicit OllamaBackend(OllamaConfig cfg = {});
  explicit OllamaBackend(std::string model_id, std::string base_url = "", double timeout_s = 120.0);

  BackendInfo info() const override;
  const std::string& base_url() const { return base_url_; }

  InferenceResult complete(const std::string& prompt, const GenerateOptions& opts = {}) override;
  InferenceResult stream(const std::string& prompt, const GenerateOptions& opts,
                         const ChunkCallback& on_chunk) override;
  ChatResult chat(const std::vector<ChatMessage>& messages, const std::vector<ToolSpec>& tools = {},
                  const GenerateOptions& opts = {}) override;
  // POST /api/chat with "stream": true; content chunks go to on_chunk, tool calls and thinking
  // (message.thinking) are gathered into the result.
  ChatResult chat_stream(const std::vector<ChatMessage>& messages, const std::vector<ToolSpec>& tools,
                         const GenerateOptions& opts, const ChunkCallback& on_chunk) override;

  // Refused with UnsupportedError: Ollama's API (/api/generate, /api/chat) has no echo and returns no
  // log-probabilities of prompt tokens, so a continuation cannot be scored. No request is sent.
  LoglikResult loglikelihood(const std::string& context, const std::string& continuation) override;

  // The seed's native tool-calling path (Module 18): chat() with its defaults (512 new tokens,
  // temperature 0.2).
  static GenerateOptions tool_defaults();
  ChatResult chat_with_tools(const std::vector<ChatMessage>& messages, const std::vector<ToolSpec>& tools = {},
                             const GenerateOptions& opts = tool_defaults());

  // GET /api/version: the server's version string; throws OllamaError when nothing answers.
  std::string version(double timeout_s = 5.0);

  // The request body complete()/stream() send (exposed for tests and for logging).
  void add_format(nlohmann::json& body, const GenerateOptions& opts) const;
  nlohmann::json generate_request(const std::string& prompt, const GenerateOptions& opts, bool stream) const;
  nlohmann::json chat_body(const std::vector<ChatMessage>& messages, const std::vector<ToolSpec>& tools,
                           const GenerateOptions& opts, bool stream) const;

 private:
  HttpRequest request(const std::string& path, const nlohmann::json& body) const;
  // HttpProtocol: Ollama's words for each failure (with the fix to try), thrown as OllamaError.
  [[noreturn]] void raise_transport(const TransportError& e, const std::string& url) const override;
  [[noreturn]] void raise_status(int status, const std::string& body, const std::string& url) const override;
  [[noreturn]] void raise(const std::string& msg, int status) const override;

  std::string model_id_;
  std::string base_url_;
  double timeout_s_;
  std::shared_ptr<HttpTransport> transport_;
  std::string name_;
  nlohmann::json extra_;
};

// Ollama "options" for a request: num_predict, temperature, and top_k / top_p / seed / stop when set.
nlohmann::json ollama_options(const GenerateOptions& opts);

}  // namespace g2c::inference
