#pragma once
// A scripted HttpTransport for the HTTP backends' tests, no socket: it answers every request with one
// status, a whole body (post_json / get) or a body in pieces (post_json_stream), optionally followed
// by a transport failure. It keeps the real transport's rules: a body outside 2xx is returned, never
// streamed; on_chunk returning false ends the call as canceled.
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "g2c/inference/http_transport.hpp"

namespace g2c::inference::testing {

class ScriptedTransport : public HttpTransport {
 public:
  int status = 200;
  std::string body;                          // post_json / get; handed over (moved) once, so no copy is timed
  std::vector<std::string> pieces;           // post_json_stream, as the socket would deliver them
  std::optional<TransportError::Kind> fail;  // thrown instead of an answer (after the pieces when streaming)
  int calls = 0;

  HttpResponse post_json(const HttpRequest&) override { return whole(); }
  HttpResponse get(const HttpRequest&) override { return whole(); }

  HttpResponse post_json_stream(const HttpRequest&, const BodyChunkFn& on_chunk) override {
    ++calls;
    if (status < 200 || status >= 300) {
      std::string all;
      for (const std::string& p : pieces) all += p;
      return {status, "application/json", all, false};
    }
    for (const std::string& p : pieces) {
      if (!on_chunk(p)) return {status, "application/x-ndjson", "", true};
    }
    if (fail) throw TransportError(*fail, "scripted failure");
    return {status, "application/x-ndjson", "", false};
  }

 private:
  HttpResponse whole() {
    ++calls;
    if (fail) throw TransportError(*fail, "scripted failure");
    return {status, "application/json", std::move(body), false};
  }
};

}  // namespace g2c::inference::testing
