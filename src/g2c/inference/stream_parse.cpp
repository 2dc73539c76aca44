#include "g2c/inference/stream_parse.hpp"

#include "g2c/core/error.hpp"

namespace g2c::inference {

bool LineSplitter::feed(std::string_view data, const std::function<bool(std::string_view)>& on_line) {
  buf_.append(data);
  std::size_t start = 0;
  for (;;) {
    std::size_t nl = buf_.find('\n', start);
    if (nl == std::string::npos) break;
    std::string_view l(buf_.data() + start, nl - start);
    if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
    start = nl + 1;
    if (!l.empty() && !on_line(l)) {
      buf_.erase(0, start);
      return false;
    }
  }
  buf_.erase(0, start);
  if (buf_.size() > max_line_) {
    throw FormatError("stream line longer than " + std::to_string(max_line_) + " bytes without a newline");
  }
  return true;
}

bool LineSplitter::finish(const std::function<bool(std::string_view)>& on_line) {
  std::string rest;
  rest.swap(buf_);
  std::string_view l(rest);
  if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
  return l.empty() || on_line(l);
}

bool SseParser::line(std::string_view l, const std::function<bool(const SseEvent&)>& on_event) {
  if (l.empty()) {  // blank line: dispatch
    bool keep_going = true;
    if (has_data_ || !cur_.event.empty()) keep_going = on_event(cur_);
    cur_ = SseEvent{};
    has_data_ = false;
    return keep_going;
  }
  if (l.front() == ':') return true;  // comment / keep-alive ping
  std::string_view field = l, value;
  std::size_t colon = l.find(':');
  if (colon != std::string_view::npos) {
    field = l.substr(0, colon);
    value = l.substr(colon + 1);
    if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  }
  if (field == "data") {
    if (has_data_) cur_.data += '\n';
    cur_.data.append(value);
    has_data_ = true;
  } else if (field == "event") {
    cur_.event.assign(value);
  }
  return true;
}

bool SseParser::feed(std::string_view data, const std::function<bool(const SseEvent&)>& on_event) {
  for (char c : data) {
    if (c == '\n' && last_was_cr_) {  // the \n of a \r\n pair: the line already ended at \r
      last_was_cr_ = false;
      continue;
    }
    last_was_cr_ = (c == '\r');
    if (c == '\n' || c == '\r') {
      std::string l;
      l.swap(buf_);
      if (!line(l, on_event)) return false;
    } else {
      buf_.push_back(c);
    }
  }
  return true;
}

bool SseParser::finish(const std::function<bool(const SseEvent&)>& on_event) {
  if (!buf_.empty()) {
    std::string l;
    l.swap(buf_);
    if (!line(l, on_event)) return false;
  }
  return line("", on_event);
}

}  // namespace g2c::inference
