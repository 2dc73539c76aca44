#include "g2c/inference/http_transport.hpp"

#include <httplib.h>

#include <charconv>
#include <cmath>
#include <exception>

#include <fmt/core.h>

#include "g2c/core/timer.hpp"

namespace g2c::inference {

std::string ParsedUrl::origin() const { return scheme + "://" + host + ":" + std::to_string(port); }

ParsedUrl parse_url(const std::string& url) {
  ParsedUrl u;
  std::size_t p = url.find("://");
  if (p == std::string::npos) throw InvalidArgument("URL '" + url + "': expected http://host[:port][/path]");
  u.scheme = url.substr(0, p);
  if (u.scheme != "http" && u.scheme != "https") {
    throw InvalidArgument("URL '" + url + "': scheme must be http or https, got '" + u.scheme + "'");
  }
  std::string rest = url.substr(p + 3);
  std::size_t slash = rest.find('/');
  std::string hostport = rest.substr(0, slash);
  u.path = slash == std::string::npos ? "/" : rest.substr(slash);
  if (hostport.empty()) throw InvalidArgument("URL '" + url + "': no host");
  std::string port_text;
  if (hostport.front() == '[') {  // [::1]:8080
    std::size_t close = hostport.find(']');
    if (close == std::string::npos) throw InvalidArgument("URL '" + url + "': unterminated IPv6 host");
    u.host = hostport.substr(1, close - 1);
    if (close + 1 < hostport.size() && hostport[close + 1] == ':') port_text = hostport.substr(close + 2);
  } else {
    std::size_t colon = hostport.rfind(':');
    u.host = hostport.substr(0, colon);
    if (colon != std::string::npos) port_text = hostport.substr(colon + 1);
  }
  if (port_text.empty()) {
    u.port = u.scheme == "https" ? 443 : 80;
  } else {
    auto [ptr, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), u.port);
    if (ec != std::errc() || ptr != port_text.data() + port_text.size() || u.port <= 0 || u.port > 65535) {
      throw InvalidArgument("URL '" + url + "': bad port '" + port_text + "'");
    }
  }
  return u;
}

std::string join_url(std::string_view base, std::string_view path) {
  std::string b(base);
  while (!b.empty() && b.back() == '/') b.pop_back();
  if (path.empty()) return b;
  if (path.front() != '/') b += '/';
  b += path;
  return b;
}

namespace {

void configure(httplib::Client& cli, double timeout_s) {
  auto us = std::chrono::microseconds(static_cast<std::int64_t>(std::max(timeout_s, 0.001) * 1e6));
  cli.set_connection_timeout(us);
  cli.set_read_timeout(us);
  cli.set_write_timeout(us);
  cli.set_keep_alive(false);
}

httplib::Headers to_headers(const HttpRequest& req) {
  httplib::Headers h;
  for (const auto& [k, v] : req.headers) h.emplace(k, v);
  return h;
}

std::string fmt_seconds(double s) { return fmt::format("{:g} s", s); }

// httplib 0.11 reports a read timeout as a plain Read error; the elapsed time tells them apart.
[[noreturn]] void throw_transport(httplib::Error err, const HttpRequest& req, double elapsed_s) {
  std::string what = httplib::to_string(err);
  switch (err) {
    case httplib::Error::Connection:
      throw TransportError(TransportError::Kind::kConnect, "cannot connect to " + req.url + ": " + what);
    case httplib::Error::ConnectionTimeout:
      throw TransportError(TransportError::Kind::kTimeout,
                           "timed out connecting to " + req.url + " after " + fmt_seconds(req.timeout_s));
    case httplib::Error::Read:
      if (elapsed_s >= 0.9 * req.timeout_s) {
        throw TransportError(TransportError::Kind::kTimeout,
                             "no answer from " + req.url + " within " + fmt_seconds(req.timeout_s) + " (read timeout)");
      }
      throw TransportError(TransportError::Kind::kRead, "reading the answer from " + req.url + " failed: " + what);
    default: throw TransportError(TransportError::Kind::kOther, "HTTP request to " + req.url + " failed: " + what);
  }
}

class HttplibTransport final : public HttpTransport {
 public:
  HttpResponse post_json(const HttpRequest& req) override {
    ParsedUrl u = parse_url(req.url);
    httplib::Client cli(u.origin());
    configure(cli, req.timeout_s);
    Timer t;
    httplib::Result r = cli.Post(u.path, to_headers(req), req.body, "application/json");
    if (!r) throw_transport(r.error(), req, t.elapsed_ms() / 1000.0);
    return {r->status, r->get_header_value("Content-Type"), r->body, false};
  }

  HttpResponse get(const HttpRequest& req) override {
    ParsedUrl u = parse_url(req.url);
    httplib::Client cli(u.origin());
    configure(cli, req.timeout_s);
    Timer t;
    httplib::Result r = cli.Get(u.path, to_headers(req));
    if (!r) throw_transport(r.error(), req, t.elapsed_ms() / 1000.0);
    return {r->status, r->get_header_value("Content-Type"), r->body, false};
  }

  // httplib 0.11's Post() has no content receiver; a hand-filled Request through send() does.
  HttpResponse post_json_stream(const HttpRequest& req, const BodyChunkFn& on_chunk) override {
    ParsedUrl u = parse_url(req.url);
    httplib::Client cli(u.origin());
    configure(cli, req.timeout_s);
    HttpResponse out;
    bool user_stopped = false;
    std::exception_ptr pending;
    httplib::Request hreq;
    hreq.method = "POST";
    hreq.path = u.path;
    hreq.headers = to_headers(req);
    hreq.set_header("Content-Type", "application/json");
    hreq.body = req.body;
    hreq.response_handler = [&](const httplib::Response& res) {
      out.status = res.status;
      out.content_type = res.get_header_value("Content-Type");
      return true;
    };
    hreq.content_receiver = [&](const char* data, std::size_t n, std::uint64_t, std::uint64_t) {
      if (out.status < 200 || out.status >= 300) {
        out.body.append(data, n);
        return true;
      }
      // An exception must not unwind through httplib's socket code: park it, stop, rethrow below.
      try {
        if (on_chunk(std::string_view(data, n))) return true;
      } catch (...) {
        pending = std::current_exception();
      }
      user_stopped = true;
      return false;
    };
    Timer t;
    httplib::Result r = cli.send(hreq);
    if (pending) std::rethrow_exception(pending);
    if (user_stopped) {
      out.canceled = true;
      return out;
    }
    if (!r) throw_transport(r.error(), req, t.elapsed_ms() / 1000.0);
    out.status = r->status;
    return out;
  }
};

}  // namespace

std::shared_ptr<HttpTransport> make_httplib_transport() { return std::make_shared<HttplibTransport>(); }

}  // namespace g2c::inference
