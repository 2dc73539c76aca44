#pragma once
// The one path every call of the remote backends (Ollama, OpenAI) takes: start the clock, send, check
// the status, parse the JSON, and turn each failure into the protocol's own error. A backend keeps
// only its request and response shapes and its wording (HttpProtocol); the order of the steps and
// these rules live here:
//   latency  the clock starts when the HttpCall is made, before the request is built, and the backend
//            reads elapsed_ms() after it has parsed the answer: the course's latency is the whole call.
//   status   anything outside 2xx is an error, 3xx included (redirects are not followed, and a
//            redirect's body is not the answer); the server's error body goes into the message.
//   body     one JSON object, else "bad JSON from <url>: expected <shape>, got '<body>'".
//   streams  NDJSON lines or SSE events, each one JSON object handed to a callback as it arrives; a
//            connection lost after some items is a broken stream, before any an unreachable server.
#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "g2c/core/timer.hpp"
#include "g2c/inference/http_transport.hpp"

namespace g2c::inference {

// How a protocol words its failures, and the error type it throws (OllamaError, OpenAIError).
// Every function throws; none returns.
class HttpProtocol {
 public:
  // No HTTP answer at all: refused, timed out, or cut before the status line.
  [[noreturn]] virtual void raise_transport(const TransportError& e, const std::string& url) const = 0;
  // An answer with a status outside 2xx; `body` is the server's error body.
  [[noreturn]] virtual void raise_status(int status, const std::string& body, const std::string& url) const = 0;
  // Anything else (a body that is not the protocol's shape, an error inside a stream), message written.
  [[noreturn]] virtual void raise(const std::string& msg, int status) const = 0;

 protected:
  ~HttpProtocol() = default;
};

// How a stream is framed, and the words its messages use.
struct StreamSpec {
  enum class Framing { kNdjson, kSse } framing;
  const char* name;                  // "the Ollama stream"
  const char* unit;                  // what it counts: "chunk" (messages add "(s)")
  const char* end_marker = nullptr;  // a non-JSON item that ends the stream (OpenAI's "[DONE]")
};

// The first `n` bytes of a body, for error messages.
std::string excerpt(std::string_view body, std::size_t n = 200);

// One call. Not reusable: make one per Backend call, first thing, so the clock covers it all.
class HttpCall {
 public:
  HttpCall(HttpTransport& transport, const HttpProtocol& protocol) : transport_(transport), protocol_(protocol) {}

  double elapsed_ms() const { return clock_.elapsed_ms(); }

  // The answer's JSON object. `expect` names the shape the caller needs, for the bad-JSON message here
  // and in bad_reply().
  nlohmann::json post(HttpRequest req, std::string expect);
  nlohmann::json get(HttpRequest req, std::string expect);
  // For an answer that is JSON but lacks what the caller needs.
  [[noreturn]] void bad_reply() const;
  int status() const { return status_; }
  const std::string& url() const { return url_; }

  // Receives each item of a stream: the JSON object and the SSE event name ("" for NDJSON). Returning
  // false stops reading (the user canceled); a protocol error is thrown from here and comes out of
  // post_stream unchanged, as does any exception of the user's own chunk callback.
  using ItemFn = std::function<bool(const nlohmann::json& item, std::string_view event)>;
  struct StreamEnd {
    bool canceled = false;    // on_item returned false
    bool end_marker = false;  // StreamSpec::end_marker arrived
  };
  // Reads to the end of the stream: every item goes to on_item, an unterminated last one included.
  StreamEnd post_stream(HttpRequest req, const StreamSpec& spec, const ItemFn& on_item);
  int items() const { return items_; }  // items on_item has accepted so far

 private:
  nlohmann::json answer(const HttpRequest& req, bool post, std::string expect);
  void check_status(const HttpResponse& res) const;

  HttpTransport& transport_;
  const HttpProtocol& protocol_;
  Timer clock_;
  std::string url_;
  std::string expect_;
  std::string body_;
  int status_ = 0;
  int items_ = 0;
};

}  // namespace g2c::inference
