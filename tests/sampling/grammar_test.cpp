// The GBNF engine: llama.cpp's verdict on every string of data/gbnf/goldens.json (every grammar of
// llama.cpp's grammars/ folder at c392e50 and four of ours; make_goldens.py says how it was recorded),
// parse errors with line:col, the byte-level matcher across split characters, and token masks over a
// small vocabulary compared with checking each token on its own.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "common/test_util.hpp"
#include "g2c/sampling/grammar.hpp"

namespace g2c::sampling {
namespace {

const std::string kDir = G2C_GBNF_DIR;

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error("cannot read " + path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// UTF-8 code points of s as separate byte strings.
std::vector<std::string> chars(const std::string& s) {
  std::vector<std::string> out;
  for (std::size_t i = 0; i < s.size();) {
    const auto b = static_cast<unsigned char>(s[i]);
    const std::size_t n = b < 0x80 ? 1 : (b >> 5) == 6 ? 2 : (b >> 4) == 14 ? 3 : 4;
    out.push_back(s.substr(i, n));
    i += n;
  }
  return out;
}

struct Verdict {
  std::string what;  // accept, prefix, reject
  int pos = -1;
};

Verdict judge(const std::shared_ptr<const Grammar>& g, const std::string& input) {
  GrammarMatcher m(g);
  const auto cs = chars(input);
  for (std::size_t i = 0; i < cs.size(); ++i) {
    if (!m.accept(cs[i])) return {"reject", static_cast<int>(i)};
  }
  if (m.complete()) return {"accept", -1};
  return {"prefix", static_cast<int>(cs.size())};
}

TEST(GrammarGolden, EveryStringAgreesWithLlamaCppValidator) {
  const auto goldens = test::load_json(kDir + "/goldens.json");
  std::size_t n_cases = 0, n_grammars = 0;
  std::map<std::string, int> by_verdict;
  for (const auto& [name, cases] : goldens.at("grammars").items()) {
    ++n_grammars;
    const auto g = Grammar::parse(read_file(kDir + "/" + name));
    for (const auto& c : cases) {
      const std::string input = c.at("input");
      const Verdict want{c.at("verdict"), c.contains("pos") ? c.at("pos").get<int>() : -1};
      const Verdict got = judge(g, input);
      ++n_cases;
      ++by_verdict[want.what];
      EXPECT_EQ(got.what, want.what) << name << " on \"" << input << "\"";
      if (want.what == "reject") {
        EXPECT_EQ(got.pos, want.pos) << name << " on \"" << input << "\"";
      }
      // Fed as one chunk of bytes the answer is the same.
      GrammarMatcher whole(g);
      const bool ok = whole.accept(input);
      EXPECT_EQ(ok, want.what != "reject") << name << " on \"" << input << "\"";
      if (ok) {
        EXPECT_EQ(whole.complete(), want.what == "accept") << name << " on \"" << input << "\"";
      }
    }
  }
  EXPECT_EQ(n_grammars, 12u);
  EXPECT_GT(n_cases, 1000u);
  // The corpus exercises all three answers.
  EXPECT_GT(by_verdict["accept"], 40);
  EXPECT_GT(by_verdict["prefix"], 300);
  EXPECT_GT(by_verdict["reject"], 100);
}

std::string parse_error(const std::string& text) {
  try {
    Grammar::parse(text);
  } catch (const GrammarError& e) {
    return e.what();
  }
  return "";
}

TEST(GrammarParse, ErrorsNameLineAndColumn) {
  EXPECT_EQ(parse_error("root ::= \"a\" | foo\n"), "grammar:1:16: undefined rule 'foo'");
  EXPECT_EQ(parse_error("root ::= \"a\"\nx ::= (\"b\"\n"), "grammar:2:7: expected ')' to close the group opened here");
  EXPECT_EQ(parse_error("root ::= [a-z\n"), "grammar:1:10: unterminated character class");
  EXPECT_EQ(parse_error("root ::= \"\\q\"\n"), "grammar:1:11: unknown escape \\q");
  EXPECT_EQ(parse_error("# c\nroot = \"a\"\n"), "grammar:2:6: expected ::= after rule name 'root'");
  EXPECT_EQ(parse_error("root ::= * \"a\"\n"), "grammar:1:10: expected an item before the repetition operator");
  EXPECT_EQ(parse_error("root ::= \"a\"{3,1}\n"), "grammar:1:13: repetition {m,n} with n < m");
  EXPECT_EQ(parse_error("root ::= \"\\x4\"\n"), "grammar:1:11: expected 2 hex digits after \\x");
  EXPECT_EQ(parse_error("root ::= \"a\" )\n"), "grammar:1:14: expected the end of the line, got ')'");
  EXPECT_EQ(parse_error("rot ::= \"a\"\n"), "grammar: no rule named 'root' (the start rule)");
  EXPECT_EQ(parse_error("root ::= root \"a\" | \"b\"\n"),
            "grammar: left recursion in rule 'root' (a rule that can reach itself before matching a character)");
  EXPECT_EQ(parse_error("root ::= x\nx ::= y? root\ny ::= \"a\"\n").substr(0, 30), "grammar: left recursion in rul");
  EXPECT_EQ(parse_error("root ::= \"é\"\n"), "");
}

TEST(GrammarParse, RepetitionForms) {
  const auto g = Grammar::parse("root ::= \"ab\"{2} [0-9]{1,3} \"x\"{2,} \"-\"?\n");
  EXPECT_EQ(judge(g, "ababx").what, "reject");
  EXPECT_EQ(judge(g, "abab1xx").what, "accept");
  EXPECT_EQ(judge(g, "abab123xxx-").what, "accept");
  EXPECT_EQ(judge(g, "abab1234").what, "reject");
  EXPECT_EQ(judge(g, "abab12x").what, "prefix");
  EXPECT_EQ(judge(g, "abab12xx--").what, "reject");
}

TEST(GrammarMatcher, SplitCharactersAcrossCalls) {
  const auto g = Grammar::parse("root ::= [α-γ]+ \"😀\"\n");
  GrammarMatcher m(g);
  const std::string s = "αβ😀";
  for (char c : s) ASSERT_TRUE(m.accept(std::string(1, c)));
  EXPECT_TRUE(m.complete());
  // A lead byte whose characters the grammar cannot take is refused at once, before the character ends.
  GrammarMatcher m2(g);
  EXPECT_FALSE(m2.accept("\xD0"));  // U+0400..U+043F: no Greek there
  EXPECT_TRUE(m2.accept("\xCE"));   // U+0380..U+03BF holds α..γ
  EXPECT_FALSE(m2.complete());
  EXPECT_FALSE(m2.accept("\xB6"));  // U+03B6 ζ
  EXPECT_TRUE(m2.accept("\xB2"));   // U+03B2 β
  // Ill-formed bytes never match, not even under `.`.
  const auto any = Grammar::parse("root ::= .*\n");
  GrammarMatcher m3(any);
  EXPECT_FALSE(m3.accept("\x80"));
  EXPECT_FALSE(m3.accept("\xFF"));
  EXPECT_TRUE(m3.accept("\xE2\x86"));
  EXPECT_FALSE(m3.accept("a"));  // a lead byte wants a continuation
  EXPECT_TRUE(m3.accept("\x92"));
  EXPECT_TRUE(m3.complete());
  // Overlong forms ("{" as C1 BB or E0 81 BB), surrogates and code points past U+10FFFF are not UTF-8.
  for (const char* bad : {"\xC1\xBB", "\xE0\x81\xBB", "\xED\xA0\x80", "\xF4\x90\x80\x80", "\xF5"}) {
    GrammarMatcher m4(any);
    EXPECT_FALSE(m4.accept(bad)) << bad;
  }
  // A lead byte that could only start an overlong "{" is refused at once.
  const auto brace = Grammar::parse("root ::= \"{\"\n");
  for (const char* lead : {"\xC1", "\xE0", "\xF0"}) {
    GrammarMatcher mb(brace);
    EXPECT_FALSE(mb.accept(lead)) << lead;
  }
  GrammarMatcher m5(any);
  EXPECT_TRUE(m5.accept("\xF4\x8F\xBF\xBF\xED\x9F\xBF\xE0\xA0\x80"));
}

TEST(GrammarMatcher, FailedAcceptLeavesTheStateAlone) {
  const auto g = Grammar::parse("root ::= \"ab\" \"c\"*\n");
  GrammarMatcher m(g);
  EXPECT_TRUE(m.accept("a"));
  EXPECT_FALSE(m.accept("bx"));
  EXPECT_TRUE(m.accept("bcc"));
  EXPECT_TRUE(m.complete());
  EXPECT_TRUE(m.can_continue());
  const auto done = Grammar::parse("root ::= \"ab\"\n");
  GrammarMatcher m2(done);
  EXPECT_TRUE(m2.accept("ab"));
  EXPECT_TRUE(m2.complete());
  EXPECT_FALSE(m2.can_continue());
}

TEST(GrammarMatcher, DeepNestingStaysCheap) {
  // Right recursion is a tail call: 100000 repetitions keep the stack count at its start.
  const auto g = Grammar::parse("root ::= (\"a\" | \"b\")* \"!\"\n");
  GrammarMatcher m(g);
  const std::size_t n0 = m.state().stacks.size();
  for (int i = 0; i < 100000; ++i) ASSERT_TRUE(m.accept(i % 3 ? "a" : "b"));
  EXPECT_EQ(m.state().stacks.size(), n0);
  EXPECT_TRUE(m.accept("!"));
  EXPECT_TRUE(m.complete());
}

// A vocabulary of pieces; the mask from the trie walk equals checking each token alone.
TEST(TokenGrammar, MaskEqualsPerTokenCheck) {
  std::vector<std::string> pieces = {"",    "{",   "}",    "\"",   "a", "ab",   "\":", " ",    "1", "12",
                                     "{\"", "\"}", "\xCE", "\xB1", "α", "αβ\"", "tr",  "true", ",", "\n"};
  std::vector<TokenRole> roles(pieces.size(), TokenRole::kText);
  roles[0] = TokenRole::kEog;
  pieces.push_back("<s>");
  roles.push_back(TokenRole::kNever);
  const auto vocab = std::make_shared<GrammarVocab>(pieces, roles);
  const auto g = Grammar::parse(read_file(kDir + "/llama.cpp/json.gbnf"));
  TokenGrammar tg(g, vocab);
  // Walk a fixed path, comparing the mask with allows() at every step.
  const std::vector<int> path = {10, 4, 6, 7, 17, 18, 3, 12, 13, 14, 6, 9, 2};
  for (std::size_t step = 0; step <= path.size(); ++step) {
    std::vector<float> logits(pieces.size(), 0.0f);
    const std::size_t n = tg.mask(logits);
    std::size_t n_allowed = 0;
    for (std::size_t id = 0; id < pieces.size(); ++id) {
      const bool allowed = tg.allows(static_cast<std::int32_t>(id));
      n_allowed += allowed ? 1 : 0;
      EXPECT_EQ(std::isinf(logits[id]), !allowed) << "step " << step << " token " << id;
    }
    EXPECT_EQ(n, n_allowed);
    if (step == path.size()) break;
    ASSERT_TRUE(tg.allows(path[step])) << "step " << step;
    tg.accept(path[step]);
  }
  EXPECT_TRUE(tg.complete());
  EXPECT_TRUE(tg.allows(0));    // EOG once complete
  EXPECT_FALSE(tg.allows(20));  // a control token never
}

TEST(GrammarVocab, CoverageErrorNamesTheMissingCharacter) {
  const auto g = Grammar::parse(read_file(kDir + "/llama.cpp/json.gbnf"));
  std::vector<std::string> pieces = {"\"", "a", "}", " ", "1"};
  GrammarVocab no_brace(pieces, std::vector<TokenRole>(pieces.size(), TokenRole::kText));
  try {
    no_brace.check_coverage(*g);
    FAIL() << "expected an error";
  } catch (const InvalidArgument& e) {
    EXPECT_EQ(std::string(e.what()),
              "grammar: the model's vocabulary cannot produce \"{\", which rule 'object' needs (no token contains it "
              "and there is no byte fallback)");
  }
  pieces.push_back("x{");
  GrammarVocab with_brace(pieces, std::vector<TokenRole>(pieces.size(), TokenRole::kText));
  EXPECT_NO_THROW(with_brace.check_coverage(*g));
  // Byte fallback: every byte a token, so any character can be spelled.
  std::vector<std::string> bytes;
  for (int b = 0; b < 256; ++b) bytes.push_back(std::string(1, static_cast<char>(b)));
  GrammarVocab all(bytes, std::vector<TokenRole>(bytes.size(), TokenRole::kText));
  EXPECT_NO_THROW(all.check_coverage(*Grammar::parse("root ::= \"日本\"\n")));
  // A character needed only on an optional branch is not an error.
  EXPECT_NO_THROW(no_brace.check_coverage(*Grammar::parse("root ::= \"a\" \"{\"?\n")));
}

}  // namespace
}  // namespace g2c::sampling
