#pragma once
// Stop strings over streamed text. Generated text arrives in pieces (one per token, cut anywhere), and a
// stop string may span several pieces, so text that could be the start of a stop string is held back
// until the next pieces show whether it is one. The stop string itself and everything after it are never
// released. Pure string logic, no model: tests/engine/stop_matcher_test.cpp drives it piece by piece.
//
//   StopMatcher m({"\n\n", "User:"});
//   m.push("Hello\n")   -> "Hello"   ("\n" held: could begin "\n\n")
//   m.push("\nUser")    -> ""        (stop "\n\n" found: stopped(), nothing after it is released)
//
// Cost: each push scans the held text plus the new piece for every stop string, O(piece + longest stop).
#include <string>
#include <string_view>
#include <vector>

namespace g2c::engine {

class StopMatcher {
 public:
  // Empty strings in `stops` are ignored (they would match at once).
  explicit StopMatcher(std::vector<std::string> stops = {});

  // Appends generated text; returns the part that is now safe to show. After a stop string completes,
  // returns the text before it, sets stopped(), and ignores any later push.
  std::string push(std::string_view text);
  // End of generation without a stop: returns the held-back text.
  std::string flush();

  bool stopped() const { return stopped_; }
  // The stop string that ended the text ("" while not stopped).
  const std::string& matched() const { return matched_; }
  // Bytes currently held back.
  std::size_t held() const { return held_.size(); }
  bool empty() const { return stops_.empty(); }

 private:
  std::vector<std::string> stops_;
  std::string held_;
  std::string matched_;
  bool stopped_ = false;
};

}  // namespace g2c::engine
