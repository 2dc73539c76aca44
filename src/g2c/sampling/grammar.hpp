#pragma once
// Grammar-constrained decoding: GBNF grammars in llama.cpp's syntax (grammars/README.md at c392e50), a
// matcher advanced by bytes, and the per-vocabulary data that turns a matcher state into a token mask.
//
//   auto g = Grammar::parse(R"(root ::= "yes" | "no")");         // GrammarError with line:col when bad
//   GrammarMatcher m(g);
//   m.accept("ye");  m.complete();    // true, false: "ye" is a prefix of the language, not a sentence
//
// Syntax: `name ::= alternatives` rules (names [a-zA-Z0-9-]+, a later definition of a name replaces the
// earlier one); a sequence of "literals" (escapes \n \r \t \\ \" \[ \] \xHH \uHHHH \UHHHHHHHH),
// [character classes] with ranges a-z and [^negation], `.` (any character), rule references and
// ( groups ), each optionally followed by * + ? {m} {m,} {m,n} {,n}; `|` alternation; `#` comments to the
// end of the line. A rule ends at a newline outside parentheses. Matching is by Unicode code point; the
// matcher takes UTF-8 bytes and keeps an unfinished character between calls (a token may end inside one).
// Left recursion is refused when the grammar is parsed, as llama.cpp refuses it.
//
// The matcher is a set of stacks, each a chain of positions in the grammar (the innermost first), hash-
// consed into nodes so that a stack is one integer and expanding a node (following rule references to the
// next character class) is computed once per matcher. A position at the end of an alternative is never
// pushed (tail calls), so right-recursive repetition does not grow the stacks.
#include <bitset>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "g2c/core/error.hpp"

namespace g2c::sampling {

// A grammar that does not parse: the message is "grammar:LINE:COL: what" (1-based).
class GrammarError : public InvalidArgument {
 public:
  using InvalidArgument::InvalidArgument;
};

// A set of code points: inclusive ranges, possibly negated ([^...]); `.` is the empty negated set.
struct CharSet {
  std::vector<std::pair<std::uint32_t, std::uint32_t>> ranges;
  bool negated = false;
  std::bitset<128> ascii;  // contains() for c < 128, precomputed

  void finish();  // fills `ascii`; call after editing ranges
  bool contains(std::uint32_t c) const { return c < 128 ? ascii[c] : contains_slow(c); }
  bool contains_slow(std::uint32_t c) const;
  // Whether some code point in [lo, hi] is in the set.
  bool intersects(std::uint32_t lo, std::uint32_t hi) const;
  std::string describe() const;  // as GBNF: [a-z], [^"], ., "x"
};

class Grammar {
 public:
  // Parses GBNF `text`; `root` names the start rule. Throws GrammarError.
  static std::shared_ptr<const Grammar> parse(std::string_view text, std::string_view root = "root");

  enum class Kind : std::uint8_t { kChars, kRef, kEnd };
  struct Elem {
    Kind kind;
    std::uint32_t arg;  // kChars: index into sets(); kRef: rule id
  };
  // Every alternative of every rule, each ending with a kEnd element.
  const std::vector<Elem>& elems() const { return elems_; }
  const std::vector<CharSet>& sets() const { return sets_; }
  // The start index in elems() of each alternative of rule r.
  const std::vector<std::uint32_t>& alternatives(std::uint32_t r) const { return rules_[r]; }
  std::uint32_t root() const { return root_; }
  std::size_t n_rules() const { return rules_.size(); }
  const std::string& rule_name(std::uint32_t r) const { return names_[r]; }

 private:
  friend class GrammarParser;
  std::vector<Elem> elems_;
  std::vector<CharSet> sets_;
  std::vector<std::vector<std::uint32_t>> rules_;
  std::vector<std::string> names_;
  std::uint32_t root_ = 0;
};

// An unfinished UTF-8 character: its value so far and how many continuation bytes it still needs.
// Only well-formed UTF-8 is accepted: no overlong forms, surrogates or code points past U+10FFFF
// (next_lo/next_hi: the range the next continuation byte must fall in).
struct PartialUtf8 {
  std::uint32_t value = 0;
  std::int32_t n_remain = 0;
  std::uint8_t next_lo = 0x80, next_hi = 0xBF;
  std::uint32_t min_cp = 0;  // the smallest code point of this length (no overlong forms)
};

// Where a matcher is: a sorted set of stack ids (0 = the empty stack: the input so far is a sentence)
// and an unfinished character. Small; copy freely.
struct GrammarState {
  std::vector<std::uint32_t> stacks;
  PartialUtf8 partial;
};

class GrammarMatcher {
 public:
  explicit GrammarMatcher(std::shared_ptr<const Grammar> grammar);

  // Feeds `bytes`. When they can continue a string of the language the state advances and true is
  // returned; otherwise the state is left as it was and false is returned.
  bool accept(std::string_view bytes);
  // The input so far is a whole sentence of the language (no unfinished character).
  bool complete() const;
  // Some non-empty continuation is possible.
  bool can_continue() const;

  const GrammarState& state() const { return state_; }
  void set_state(const GrammarState& s) { state_ = s; }
  // One byte from `from` into `to` (which must differ); false (and `to` empty) when the byte cannot
  // continue. Exposed for the token mask walk.
  bool step_byte(const GrammarState& from, std::uint8_t byte, GrammarState& to);
  // The character sets the stacks of `s` wait on (for error messages).
  std::string expected(const GrammarState& s) const;
  const Grammar& grammar() const { return *g_; }

 private:
  std::uint32_t node(std::uint32_t pos, std::uint32_t parent);
  std::span<const std::uint32_t> expand(std::uint32_t id);
  std::span<const std::uint32_t> after(std::uint32_t id);
  void step_cp(const std::vector<std::uint32_t>& from, std::uint32_t cp, std::vector<std::uint32_t>& to);
  void filter_partial(const std::vector<std::uint32_t>& from, PartialUtf8 p, std::vector<std::uint32_t>& to) const;

  struct Node {
    std::uint32_t pos, parent;
    std::uint32_t exp_off = 0, exp_len = 0, aft_off = 0, aft_len = 0;
    std::uint8_t exp_state = 0, aft_state = 0;  // 0 not computed, 1 in progress, 2 done
  };
  std::shared_ptr<const Grammar> g_;
  std::vector<Node> nodes_;  // [0] is the empty stack
  std::unordered_map<std::uint64_t, std::uint32_t> index_;
  std::vector<std::uint32_t> pool_;  // expand()/after() results
  GrammarState state_, scratch_;
};

// What a vocabulary gives the grammar, built once per tokenizer: each token's bytes in a trie, which
// tokens end a generation (allowed only where the grammar is complete) and which may never appear
// (control and other special tokens), and which code points the vocabulary can produce at all.
enum class TokenRole : std::uint8_t { kText, kEog, kNever };

class GrammarVocab {
 public:
  // token_bytes[id]: the bytes the token adds to the text; roles[id] as above. A text token with no bytes
  // is treated as kNever.
  GrammarVocab(std::vector<std::string> token_bytes, std::vector<TokenRole> roles);

  std::size_t n_vocab() const { return bytes_.size(); }
  const std::string& bytes(std::int32_t id) const { return bytes_[static_cast<std::size_t>(id)]; }
  TokenRole role(std::int32_t id) const { return roles_[static_cast<std::size_t>(id)]; }
  // Throws InvalidArgument when the grammar needs a character no token can produce (e.g. no `{` token and
  // no byte fallback), naming the rule and the character set.
  void check_coverage(const Grammar& g) const;

  struct TrieNode {
    std::uint32_t child_begin, child_end;  // children are contiguous in nodes()
    std::uint32_t tok_begin, tok_end;      // tokens ending here, in trie_tokens()
    std::uint8_t byte;                     // the byte leading here from the parent
  };
  const std::vector<TrieNode>& nodes() const { return trie_; }
  const std::vector<std::int32_t>& trie_tokens() const { return trie_tokens_; }

 private:
  bool produces(const CharSet& s) const;
  std::vector<std::string> bytes_;
  std::vector<TokenRole> roles_;
  std::vector<TrieNode> trie_;  // [0] is the root
  std::vector<std::int32_t> trie_tokens_;
  std::vector<std::uint32_t> cps_;  // sorted code points that some text token contains whole
  bool all_bytes_ = false;          // every byte is a token: any character can be produced
};

// One sequence's grammar over a vocabulary: which tokens may come next.
class TokenGrammar {
 public:
  TokenGrammar(std::shared_ptr<const Grammar> grammar, std::shared_ptr<const GrammarVocab> vocab);

  // Whether `token` may come next (an EOG token: only where the grammar is complete).
  bool allows(std::int32_t token);
  // Advances past `token`, which allows() accepted.
  void accept(std::int32_t token);
  // The same with the token's text given (a caller that shows a token differently, e.g. without the
  // leading space of the first word): `text` instead of the vocabulary's bytes.
  bool allows_text(std::int32_t token, std::string_view text);
  void accept_text(std::int32_t token, std::string_view text);
  // Sets the logit of every token that may not come next to -inf; returns how many remain allowed.
  std::size_t mask(std::span<float> logits);
  bool complete() const { return m_.complete(); }
  bool can_continue() const { return m_.can_continue(); }
  std::string expected() const { return m_.expected(m_.state()); }

 private:
  void walk(std::uint32_t node, std::size_t depth);
  std::shared_ptr<const GrammarVocab> vocab_;
  GrammarMatcher m_;
  std::vector<GrammarState> depth_states_;  // [depth] the state after the trie path to that depth
  std::vector<std::uint8_t> allowed_;       // [n_vocab], scratch of mask()
};

}  // namespace g2c::sampling
