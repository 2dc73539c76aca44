#pragma once
// What the route files share (server-internal): the state every handler reads, and the helpers that
// write a reply in one API's shape.
#include <httplib.h>

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <regex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "g2c/server/api_error.hpp"
#include "g2c/server/metrics.hpp"
#include "g2c/server/model_pool.hpp"
#include "g2c/server/server.hpp"
#include "g2c/tokenizer/tool_calls.hpp"

namespace g2c::server {

using Json = nlohmann::json;

struct ServerState {
  ServerOptions opts;
  Metrics metrics;
  ModelPool pool;
  std::atomic<bool> stopping{false};
  std::vector<std::pair<std::string, std::regex>> routes;  // method, path pattern: for 405s
  // Handlers running plus streamed responses not yet released: stop() waits for them to reach 0 before
  // closing the listener, since cpp-httplib stops writing a chunked body as soon as it closes.
  std::mutex streams_mu;
  std::condition_variable streams_cv;
  int open_streams = 0;
  void hold() {
    std::lock_guard lk(streams_mu);
    ++open_streams;
  }
  void release() {
    std::lock_guard lk(streams_mu);
    --open_streams;
    streams_cv.notify_all();
  }
  explicit ServerState(ServerOptions o) : opts(std::move(o)), pool(opts.pool) {}
};

enum class Api { kOllama, kOpenAI };

// Registers `handler` for `method` + `pattern`: exceptions become errors in the API's shape (ApiError
// with its status; any other exception 500), and every answer is counted in the metrics under `route`.
using Handler = std::function<void(const httplib::Request&, httplib::Response&)>;
void add_route(httplib::Server& http, ServerState& st, const char* method, const std::string& pattern, Api api,
               const std::string& route, Handler handler);

void reply_json(httplib::Response& res, const Json& body, int status = 200);
// The error body in the API's shape: Ollama {"error": msg}; OpenAI {"error": {message, type, param, code}}.
Json error_body(Api api, int status, const std::string& message, const std::string& param = {});

// Unix time in ns / s, and Ollama's created_at.
std::int64_t unix_ns();
std::string created_at();

// The prompt text of a chat for `m`: its GGUF template when it has one we render, else the plain
// fallback, whose replies also stop at the next "\nUser:" / "\nSystem:" (added to `stop`).
std::string render_chat_prompt(const ServedModel& m, const std::vector<inference::ChatMessage>& messages,
                               std::vector<std::string>& stop);
// A chat's prompt with tools, and how its reply is read: with tools (or a deepseek-r1 template, whose
// <think> is kept apart) the reply goes through tokenizer::ToolCallStream / parse_tool_calls in the
// template family's format. Tools on a model whose template has no tool-call format: 400 "<model> does
// not support tools". A conversation the template refuses: 400 with the template's message.
struct ChatPrompt {
  std::string text;
  tokenizer::ChatFamily family = tokenizer::ChatFamily::kPlain;
  bool tools = false;
  bool reasoning = false;
  bool reasoning_open = false;  // the prompt ends inside the thinking (tokenizer::prompt_opens_reasoning)
  bool parse() const { return tools || reasoning; }
  tokenizer::ToolCallStream stream() const { return tokenizer::ToolCallStream(family, reasoning, reasoning_open); }
  // The whole reply, read as stream() reads it.
  tokenizer::ParsedChat read(std::string_view text) const {
    return tokenizer::parse_reply(family, text, reasoning, reasoning_open);
  }
};
ChatPrompt render_chat_prompt(const ServedModel& m, const std::string& model_name,
                              const std::vector<inference::ChatMessage>& messages,
                              const std::vector<inference::ToolSpec>& tools, std::vector<std::string>& stop);
// The text of one token as a client sees it in logprobs (the tokenizer's decode of that id alone).
std::string token_text(const ServedModel& m, std::int32_t id);
Json token_bytes(const std::string& text);
// Clamps a request's num_ctx to the served context, logging when it asked for more.
void note_num_ctx(const ServedModel& m, const std::optional<std::int32_t>& num_ctx, const std::string& route);

// Embeds each input with m's embedding context (mean pooling; L2-normalised when `normalize`), cut to
// `dimensions` and re-normalised when asked (Ollama's and OpenAI's `dimensions`). An input over the context
// is a 400 unless `truncate`; `n_tokens` receives the tokens embedded.
std::vector<std::vector<float>> embed_inputs(ServedModel& m, const std::vector<std::string>& inputs, bool normalize,
                                             bool truncate, std::optional<std::int32_t> dimensions,
                                             std::int64_t& n_tokens);

// Writes a streamed response: `produce(write)` calls write(chunk) for each piece of the body and returns
// when done; write returns false once the client is gone (then produce should cancel and return).
void stream_response(ServerState& st, httplib::Response& res, const char* content_type,
                     std::function<void(const std::function<bool(const std::string&)>&)> produce);

void add_ollama_routes(httplib::Server& http, ServerState& st);
void add_openai_routes(httplib::Server& http, ServerState& st);
void add_ops_routes(httplib::Server& http, ServerState& st);

}  // namespace g2c::server
