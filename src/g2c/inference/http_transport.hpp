#pragma once
// The HTTP seam of the remote backends (the seed's injectable `urlopen`). Backends hold a
// shared_ptr<HttpTransport>; tests and users can pass their own (recording, fault-injecting, or a
// transport over another HTTP stack). The real one runs on cpp-httplib. A transport only moves bytes;
// the backends reach it through HttpCall (http_call.hpp), which owns the status, JSON and error rules.
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "g2c/core/error.hpp"

namespace g2c::inference {

struct HttpRequest {
  std::string url;   // "http://127.0.0.1:11434/api/generate"
  std::string body;  // JSON text (POST); ignored by get()
  std::vector<std::pair<std::string, std::string>> headers;
  double timeout_s = 120.0;  // connect timeout, and the longest silence allowed while reading
};

struct HttpResponse {
  int status = 0;
  std::string content_type;
  // post_json / get: the whole body. post_json_stream: only the body of a status outside 2xx (the
  // server's error, or a redirect's page); a 2xx body goes to on_chunk instead.
  std::string body;
  bool canceled = false;  // post_json_stream: on_chunk returned false
};

// The transport could not get an HTTP answer at all (as opposed to an HTTP error status).
class TransportError : public IoError {
 public:
  enum class Kind { kConnect, kTimeout, kRead, kOther };
  TransportError(Kind kind, const std::string& msg) : IoError(msg), kind_(kind) {}
  Kind kind() const { return kind_; }

 private:
  Kind kind_;
};

// Receives the response body of a 2xx answer as it arrives (arbitrary splits, not lines);
// returning false stops reading and closes the connection. An exception it throws stops the
// request and comes out of post_json_stream unchanged.
using BodyChunkFn = std::function<bool(std::string_view data)>;

class HttpTransport {
 public:
  virtual ~HttpTransport() = default;
  // All three throw TransportError when no HTTP response arrives; an HTTP error status is returned.
  virtual HttpResponse post_json(const HttpRequest& req) = 0;
  virtual HttpResponse post_json_stream(const HttpRequest& req, const BodyChunkFn& on_chunk) = 0;
  virtual HttpResponse get(const HttpRequest& req) = 0;
};

// cpp-httplib; http and https (the Debian build has OpenSSL). One connection per request.
std::shared_ptr<HttpTransport> make_httplib_transport();

struct ParsedUrl {
  std::string scheme;  // "http" | "https"
  std::string host;
  int port = 0;
  std::string path;            // starts with "/", may carry a query
  std::string origin() const;  // "http://host:port"
};
// Throws InvalidArgument for anything but http(s)://host[:port][/path].
ParsedUrl parse_url(const std::string& url);

// Joins a base URL and an absolute path without doubling or dropping the slash.
std::string join_url(std::string_view base, std::string_view path);

}  // namespace g2c::inference
