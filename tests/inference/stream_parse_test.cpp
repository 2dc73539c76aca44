#include "g2c/inference/stream_parse.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "g2c/core/error.hpp"

namespace g2c::inference {
namespace {

std::vector<std::string> split_all(const std::string& body, std::size_t piece) {
  LineSplitter s;
  std::vector<std::string> out;
  auto on = [&](std::string_view l) {
    out.emplace_back(l);
    return true;
  };
  for (std::size_t i = 0; i < body.size(); i += piece) s.feed(std::string_view(body).substr(i, piece), on);
  s.finish(on);
  return out;
}

TEST(LineSplitter, SameLinesWhateverTheChunking) {
  const std::string body = "{\"a\":1}\r\n\n{\"b\":2}\n{\"c\":3}";  // CRLF, a blank line, no final newline
  const std::vector<std::string> want = {"{\"a\":1}", "{\"b\":2}", "{\"c\":3}"};
  for (std::size_t piece : {1u, 2u, 3u, 7u, 100u}) EXPECT_EQ(split_all(body, piece), want) << "piece " << piece;
}

TEST(LineSplitter, StopsWhenTheCallbackSaysSo) {
  LineSplitter s;
  int n = 0;
  EXPECT_FALSE(s.feed("a\nb\nc\n", [&](std::string_view) { return ++n < 2; }));
  EXPECT_EQ(n, 2);
}

TEST(LineSplitter, RefusesAnEndlessLine) {
  LineSplitter s(16);
  EXPECT_THROW(s.feed(std::string(17, 'x'), [](std::string_view) { return true; }), FormatError);
}

std::vector<SseEvent> parse_all(const std::string& body, std::size_t piece) {
  SseParser p;
  std::vector<SseEvent> out;
  auto on = [&](const SseEvent& e) {
    out.push_back(e);
    return true;
  };
  for (std::size_t i = 0; i < body.size(); i += piece) p.feed(std::string_view(body).substr(i, piece), on);
  p.finish(on);
  return out;
}

TEST(SseParser, EventsCommentsAndLineEndings) {
  // The WHATWG rules openai-node follows: comments ignored, one space after ':' dropped, multi-line
  // data joined with '\n', \n / \r\n / \r all end lines, a blank line ends an event.
  const std::string body =
      ": ping\n\n"
      "data: {\"x\":1}\n\n"
      "event: error\r\ndata:{\"y\":2}\r\n\r\n"
      "data: line1\rdata: line2\r\r"
      "id: 7\nretry: 10\ndata:  two spaces\n\n"
      "data: [DONE]";  // closed without the final blank line
  for (std::size_t piece : {1u, 2u, 5u, 1000u}) {
    std::vector<SseEvent> ev = parse_all(body, piece);
    ASSERT_EQ(ev.size(), 5u) << "piece " << piece;
    EXPECT_EQ(ev[0].data, "{\"x\":1}");
    EXPECT_EQ(ev[0].event, "");
    EXPECT_EQ(ev[1].event, "error");
    EXPECT_EQ(ev[1].data, "{\"y\":2}");
    EXPECT_EQ(ev[2].data, "line1\nline2");
    EXPECT_EQ(ev[3].data, " two spaces");
    EXPECT_EQ(ev[4].data, "[DONE]");
  }
}

}  // namespace
}  // namespace g2c::inference
