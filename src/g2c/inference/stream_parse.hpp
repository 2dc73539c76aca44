#pragma once
// Incremental parsers for the two streaming formats: NDJSON (Ollama: one JSON object per line) and
// Server-Sent Events (OpenAI: "data: {...}" events separated by blank lines). Both take the body in
// arbitrary pieces, as the socket delivers it, and keep the unfinished tail buffered.
#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

namespace g2c::inference {

// Splits on '\n', strips one trailing '\r', skips empty lines. A line may be long (tool calls,
// logprobs): there is no limit beyond `max_line_bytes`, past which feed() throws FormatError.
class LineSplitter {
 public:
  explicit LineSplitter(std::size_t max_line_bytes = 64u << 20) : max_line_(max_line_bytes) {}
  // Calls on_line for every complete line; stops early (returns false) when on_line returns false.
  bool feed(std::string_view data, const std::function<bool(std::string_view line)>& on_line);
  // The unterminated rest (a last line without '\n'), handed over once at end of stream.
  bool finish(const std::function<bool(std::string_view line)>& on_line);

 private:
  std::string buf_;
  std::size_t max_line_;
};

// One SSE event: the joined "data:" lines and the "event:" name ("" when absent).
struct SseEvent {
  std::string event;
  std::string data;
};

// Follows the WHATWG event-stream rules that openai-node implements: events end at a blank line
// (\n\n, \r\n\r\n or \r\r), lines starting with ':' are comments (keep-alive pings), "field: value"
// loses one space after the colon, several data lines are joined with '\n'; other fields are ignored.
class SseParser {
 public:
  bool feed(std::string_view data, const std::function<bool(const SseEvent&)>& on_event);
  // Dispatches a last event that the server closed without a blank line.
  bool finish(const std::function<bool(const SseEvent&)>& on_event);

 private:
  bool line(std::string_view l, const std::function<bool(const SseEvent&)>& on_event);
  std::string buf_;
  SseEvent cur_;
  bool has_data_ = false;
  bool last_was_cr_ = false;
};

}  // namespace g2c::inference
