#include "g2c/inference/http_call.hpp"

#include <utility>

#include <fmt/core.h>

#include "g2c/core/error.hpp"
#include "g2c/inference/stream_parse.hpp"

namespace g2c::inference {
namespace {

// Every HttpProtocol hook throws, but the compiler cannot see that through a virtual call.
[[noreturn]] void hook_returned() { G2C_CHECK_MSG(false, "an HttpProtocol hook returned instead of throwing"); }

}  // namespace

std::string excerpt(std::string_view body, std::size_t n) {
  return body.size() <= n ? std::string(body) : std::string(body.substr(0, n)) + "...";
}

nlohmann::json HttpCall::post(HttpRequest req, std::string expect) { return answer(req, true, std::move(expect)); }

nlohmann::json HttpCall::get(HttpRequest req, std::string expect) { return answer(req, false, std::move(expect)); }

nlohmann::json HttpCall::answer(const HttpRequest& req, bool post, std::string expect) {
  url_ = req.url;
  expect_ = std::move(expect);
  HttpResponse res;
  try {
    res = post ? transport_.post_json(req) : transport_.get(req);
  } catch (const TransportError& e) {
    protocol_.raise_transport(e, url_);
  }
  check_status(res);
  status_ = res.status;
  body_ = std::move(res.body);
  nlohmann::json j = nlohmann::json::parse(body_, nullptr, false);
  if (j.is_discarded() || !j.is_object()) bad_reply();
  return j;
}

void HttpCall::bad_reply() const {
  protocol_.raise(fmt::format("bad JSON from {}: expected {}, got '{}'", url_, expect_, excerpt(body_)), 0);
  hook_returned();
}

void HttpCall::check_status(const HttpResponse& res) const {
  if (res.status < 200 || res.status >= 300) protocol_.raise_status(res.status, res.body, url_);
}

HttpCall::StreamEnd HttpCall::post_stream(HttpRequest req, const StreamSpec& spec, const ItemFn& on_item) {
  url_ = req.url;
  StreamEnd end;
  const auto deliver = [&](std::string_view data, std::string_view event) {
    if (spec.end_marker != nullptr && data == spec.end_marker) {
      end.end_marker = true;
      return true;
    }
    nlohmann::json j = nlohmann::json::parse(data, nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
      protocol_.raise(
          fmt::format("bad JSON in {} from {} after {} {}(s): '{}'", spec.name, url_, items_, spec.unit, excerpt(data)),
          0);
    }
    if (!on_item(j, event)) return false;
    ++items_;
    return true;
  };
  LineSplitter lines;
  SseParser events;
  const auto on_line = [&](std::string_view line) { return deliver(line, ""); };
  const auto on_event = [&](const SseEvent& ev) { return deliver(ev.data, ev.event); };
  const bool ndjson = spec.framing == StreamSpec::Framing::kNdjson;

  HttpResponse res;
  try {
    res = transport_.post_json_stream(req, [&](std::string_view data) {
      try {
        return ndjson ? lines.feed(data, on_line) : events.feed(data, on_event);
      } catch (const FormatError& e) {  // a line past LineSplitter's limit
        protocol_.raise(fmt::format("{} from {}: {}", spec.name, url_, e.what()), 0);
        hook_returned();
      }
    });
  } catch (const TransportError& e) {
    if (items_ > 0 && e.kind() != TransportError::Kind::kConnect) {
      protocol_.raise(fmt::format("{} from {} broke after {} {}(s): {}", spec.name, url_, items_, spec.unit, e.what()),
                      0);
    }
    protocol_.raise_transport(e, url_);
  }
  check_status(res);
  status_ = res.status;
  if (res.canceled) {
    end.canceled = true;
    return end;
  }
  // A server may close without the last newline or blank line: what is left is the last item.
  end.canceled = !(ndjson ? lines.finish(on_line) : events.finish(on_event));
  return end;
}

}  // namespace g2c::inference
