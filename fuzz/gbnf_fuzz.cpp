// libFuzzer target: GBNF text -> Grammar (sampling/grammar.hpp), then the matcher. Input: the grammar text
// up to the first NUL byte; the bytes after it are fed to the matcher as generated text.
//
// Properties beyond "no crash": a bad grammar is refused with GrammarError (nothing else escapes); for a
// grammar that parses, the matcher accepts (whole and byte by byte, ending complete) every string a random
// walk over the parsed grammar generates (grammar_walk.hpp), and random bytes fed one at a time agree with
// the accepted prefix fed whole.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "fuzz_common.hpp"
#include "grammar_walk.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  const std::size_t nul = in.find('\0');
  const std::string_view text = in.substr(0, nul);
  const std::string_view rest = nul == std::string_view::npos ? std::string_view() : in.substr(nul + 1);
  std::shared_ptr<const g2c::sampling::Grammar> g;
  try {
    g = g2c::sampling::Grammar::parse(text);
  } catch (const g2c::sampling::GrammarError&) {
    return 0;
  }
  g2c::fuzz::Rng rng(in);
  g2c::fuzz::GrammarWalk walk(*g, rng);
  for (int i = 0; i < 4; ++i)
    if (auto s = walk.generate()) g2c::fuzz::check_matcher_accepts(g, *s);
  g2c::fuzz::check_matcher_random_bytes(g, rest);
  return 0;
}
