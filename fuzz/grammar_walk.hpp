#pragma once
// A random-walk generator over a parsed grammar (sampling/grammar.hpp has no generator of its own): from
// the root, pick an alternative of each rule reached and a code point of each character set, so every
// string it finishes is a sentence of the grammar's language by construction. Used by the grammar
// targets for the property "the matcher accepts every string the grammar generates".
//
// Bounded: recursion depth and output length; past half the depth it prefers the alternative with the
// fewest rule references (so repetitions end). A walk that runs out of budget, or meets a set with no
// encodable code point (only surrogates, say), gives up: std::nullopt, no property is checked.
#include <cstdint>
#include <optional>
#include <string>

#include "fuzz_common.hpp"
#include "g2c/sampling/grammar.hpp"

namespace g2c::fuzz {

class GrammarWalk {
 public:
  GrammarWalk(const sampling::Grammar& g, Rng& rng, std::size_t max_bytes = 512, int max_depth = 48)
      : g_(g), rng_(rng), max_bytes_(max_bytes), max_depth_(max_depth) {}

  std::optional<std::string> generate() {
    out_.clear();
    steps_ = 20000;
    if (!rule(g_.root(), 0)) return std::nullopt;
    return out_;
  }

 private:
  using Kind = sampling::Grammar::Kind;

  bool rule(std::uint32_t r, int depth) {
    if (depth > max_depth_ || --steps_ < 0) return false;
    const auto& alts = g_.alternatives(r);
    if (alts.empty()) return false;
    std::uint32_t a = alts[rng_.below(alts.size())];
    if (depth > max_depth_ / 2) {  // head for the end: fewest references first
      std::size_t best = SIZE_MAX;
      for (auto start : alts) {
        std::size_t refs = 0;
        for (auto i = start; g_.elems()[i].kind != Kind::kEnd; ++i) refs += g_.elems()[i].kind == Kind::kRef;
        if (refs < best || (refs == best && rng_.below(2))) best = refs, a = start;
      }
    }
    for (auto i = a; g_.elems()[i].kind != Kind::kEnd; ++i) {
      const auto& e = g_.elems()[i];
      if (e.kind == Kind::kRef) {
        if (!rule(e.arg, depth + 1)) return false;
      } else {
        auto cp = pick(g_.sets()[e.arg]);
        if (!cp) return false;
        append_utf8(out_, *cp);
        if (out_.size() > max_bytes_) return false;
      }
    }
    return true;
  }

  static bool scalar(std::uint64_t cp) { return cp <= 0x10FFFF && !(cp >= 0xD800 && cp <= 0xDFFF); }

  std::optional<std::uint32_t> pick(const sampling::CharSet& s) {
    for (int attempt = 0; attempt < 16; ++attempt) {
      std::uint64_t cp;
      if (!s.negated) {
        if (s.ranges.empty()) return std::nullopt;
        const auto& [lo, hi] = s.ranges[rng_.below(s.ranges.size())];
        if (lo > hi) return std::nullopt;
        cp = lo + rng_.below(std::uint64_t{hi} - lo + 1);
        if (!scalar(cp)) continue;
        // A code point of one of the set's ranges is in the set.
        G2C_FUZZ_CHECK(s.contains(static_cast<std::uint32_t>(cp)), s.describe());
        return static_cast<std::uint32_t>(cp);
      }
      switch (rng_.below(3)) {
        case 0: cp = 0x20 + rng_.below(0x5F); break;
        case 1: cp = rng_.below(0x800); break;
        default: cp = rng_.below(0x110000); break;
      }
      if (scalar(cp) && s.contains(static_cast<std::uint32_t>(cp))) return static_cast<std::uint32_t>(cp);
    }
    return std::nullopt;
  }

  const sampling::Grammar& g_;
  Rng& rng_;
  std::size_t max_bytes_;
  int max_depth_;
  long steps_ = 0;
  std::string out_;
};

// The matcher accepts `s` whole and byte by byte, and it is a complete sentence either way.
inline void check_matcher_accepts(const std::shared_ptr<const sampling::Grammar>& g, const std::string& s) {
  sampling::GrammarMatcher whole(g);
  G2C_FUZZ_CHECK(whole.accept(s), "generated string refused: '" + s + "'");
  G2C_FUZZ_CHECK(whole.complete(), "generated string not complete: '" + s + "'");
  sampling::GrammarMatcher bytes(g);
  for (std::size_t i = 0; i < s.size(); ++i)
    G2C_FUZZ_CHECK(bytes.accept(std::string_view(s).substr(i, 1)), "byte " + std::to_string(i) + " of '" + s + "'");
  G2C_FUZZ_CHECK(bytes.complete(), "generated string not complete byte by byte: '" + s + "'");
}

// Random bytes into the matcher: accept() either advances or leaves the state as it was, and feeding the
// bytes one at a time agrees with feeding the accepted prefix whole.
inline void check_matcher_random_bytes(const std::shared_ptr<const sampling::Grammar>& g, std::string_view bytes) {
  sampling::GrammarMatcher m(g);
  std::string accepted;
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    const auto before = m.state().stacks;
    if (m.accept(bytes.substr(i, 1))) {
      accepted += bytes[i];
    } else {
      G2C_FUZZ_CHECK(m.state().stacks == before, "a refused byte changed the state");
    }
  }
  (void)m.can_continue();
  (void)m.expected(m.state());
  sampling::GrammarMatcher again(g);
  G2C_FUZZ_CHECK(again.accept(accepted), "the bytes accepted one by one are refused whole");
  G2C_FUZZ_CHECK(again.complete() == m.complete(), "complete() differs between whole and byte feeding");
}

}  // namespace g2c::fuzz
