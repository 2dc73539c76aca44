// Stop strings across token boundaries, independent of any model: every way of cutting a text into
// pieces must release the same text, and never any part of the stop string.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "g2c/engine/stop_matcher.hpp"

namespace g2c::engine {
namespace {

struct Fed {
  std::string released;            // everything push()+flush() released
  std::vector<std::string> steps;  // what each push released
  bool stopped = false;
  std::string matched;
};

Fed feed(const std::vector<std::string>& stops, const std::vector<std::string>& pieces) {
  StopMatcher m(stops);
  Fed r;
  for (const std::string& p : pieces) {
    r.steps.push_back(m.push(p));
    r.released += r.steps.back();
    if (m.stopped()) break;
  }
  r.released += m.flush();
  r.stopped = m.stopped();
  r.matched = m.matched();
  return r;
}

TEST(StopMatcher, NoStopsPassesThrough) {
  const Fed r = feed({}, {"Hello", " world"});
  EXPECT_EQ(r.steps, (std::vector<std::string>{"Hello", " world"}));
  EXPECT_FALSE(r.stopped);
}

TEST(StopMatcher, StopInsideOnePiece) {
  const Fed r = feed({"END"}, {"abcENDdef"});
  EXPECT_EQ(r.released, "abc");
  EXPECT_TRUE(r.stopped);
  EXPECT_EQ(r.matched, "END");
}

TEST(StopMatcher, StopAcrossPiecesIsHeldBack) {
  // "Hello\n" then "\nUser": the first "\n" is held until the second shows the stop.
  const Fed r = feed({"\n\n"}, {"Hello\n", "\nUser"});
  EXPECT_EQ(r.steps, (std::vector<std::string>{"Hello", ""}));
  EXPECT_EQ(r.released, "Hello");
  EXPECT_TRUE(r.stopped);
}

TEST(StopMatcher, FalseStartIsReleasedLater) {
  // "Us" might start "User:", "ing" shows it does not: the held "Us" comes out with it.
  const Fed r = feed({"User:"}, {"Hi. Us", "ing", " it"});
  EXPECT_EQ(r.steps, (std::vector<std::string>{"Hi. ", "Using", " it"}));
  EXPECT_FALSE(r.stopped);
  EXPECT_EQ(r.released, "Hi. Using it");
}

TEST(StopMatcher, HeldTextIsFlushedAtTheEnd) {
  StopMatcher m({"User:"});
  EXPECT_EQ(m.push("the Use"), "the ");
  EXPECT_EQ(m.held(), 3u);
  EXPECT_EQ(m.flush(), "Use");
  EXPECT_FALSE(m.stopped());
}

TEST(StopMatcher, OverlappingPrefixes) {
  // "aab" inside "aaab": the held suffix must be the longest candidate ("aa"), not the first found.
  const Fed r = feed({"aab"}, {"a", "a", "a", "b", "c"});
  EXPECT_EQ(r.released, "a");
  EXPECT_TRUE(r.stopped);
}

TEST(StopMatcher, EarliestOfSeveralStops) {
  const Fed r = feed({"world", "lo w"}, {"hello world"});
  EXPECT_EQ(r.released, "hel");
  EXPECT_EQ(r.matched, "lo w");
}

TEST(StopMatcher, IgnoresPushAfterStop) {
  StopMatcher m({"x"});
  EXPECT_EQ(m.push("abxcd"), "ab");
  EXPECT_EQ(m.push("more"), "");
  EXPECT_EQ(m.flush(), "");
}

TEST(StopMatcher, MultiByteUtf8StopAcrossPieces) {
  // "→" is E2 86 92; pieces arrive as whole characters from the stream decoder.
  const Fed r = feed({"→ done"}, {"a → b ", "→", " do", "ne!"});
  EXPECT_EQ(r.released, "a → b ");
  EXPECT_TRUE(r.stopped);
}

// Every split of the text into up to three pieces gives the same released text, and no released prefix
// ever contains the start of the stop string.
TEST(StopMatcher, EverySplitAgrees) {
  const std::string text = "Once upon a time###\nthe end";
  const std::vector<std::string> stops = {"###\n", "zzz"};
  const std::string want = "Once upon a time";
  for (std::size_t i = 0; i <= text.size(); ++i) {
    for (std::size_t j = i; j <= text.size(); ++j) {
      const Fed r = feed(stops, {text.substr(0, i), text.substr(i, j - i), text.substr(j)});
      ASSERT_EQ(r.released, want) << i << "," << j;
      ASSERT_TRUE(r.stopped);
      std::string so_far;
      for (const std::string& s : r.steps) {
        so_far += s;
        ASSERT_EQ(so_far.find('#'), std::string::npos) << i << "," << j;
      }
    }
  }
  // And one byte at a time without a stop: everything comes out, in order.
  std::vector<std::string> bytes;
  for (char c : std::string("a##b##c#")) bytes.emplace_back(1, c);
  const Fed r = feed({"###"}, bytes);
  EXPECT_EQ(r.released, "a##b##c#");
  EXPECT_FALSE(r.stopped);
}

}  // namespace
}  // namespace g2c::engine
