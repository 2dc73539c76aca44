// libFuzzer target: JSON Schema -> GBNF (sampling/json_schema.hpp) -> Grammar -> matcher. Input: a JSON
// schema; the bytes after a NUL byte (if any) are fed to the matcher as generated text.
//
// Properties beyond "no crash": an unsupported or malformed schema is refused with InvalidArgument; the
// GBNF the converter writes always parses; every string a random walk over that grammar generates is
// accepted by the matcher and is JSON that parses (constrained decoding promises JSON).
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "fuzz_common.hpp"
#include "g2c/sampling/json_schema.hpp"
#include "grammar_walk.hpp"

namespace {

// The string grammar allows any \uXXXX escape, lone surrogates included, as RFC 8259's syntax and llama.cpp's
// converter do, and numbers of any exponent; nlohmann::json refuses a lone surrogate and a number that
// overflows a double, so the JSON check reads every \u escape as \u0041 and every exponent as 1.
std::string neutral_escapes(std::string s) {
  bool in_string = false;
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (in_string) {
      if (c == '\\' && i + 1 < s.size()) {
        if (s[i + 1] == 'u' && i + 6 <= s.size()) {
          out += "\\u0041";
          i += 5;
        } else {
          out += s.substr(i, 2);
          ++i;
        }
        continue;
      }
      if (c == '"') in_string = false;
      out += c;
      continue;
    }
    if (c == '"') in_string = true;
    out += c;
    if ((c == 'e' || c == 'E') && i > 0 && (std::isdigit(static_cast<unsigned char>(s[i - 1])) || s[i - 1] == '.')) {
      std::size_t j = i + 1;
      if (j < s.size() && (s[j] == '+' || s[j] == '-')) out += s[j++];
      const std::size_t digits = j;
      while (j < s.size() && std::isdigit(static_cast<unsigned char>(s[j]))) ++j;
      if (j > digits) out += '1';
      i = j - 1;
    }
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  const std::size_t nul = in.find('\0');
  const std::string_view text = in.substr(0, nul);
  const std::string_view rest = nul == std::string_view::npos ? std::string_view() : in.substr(nul + 1);
  const auto schema = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (schema.is_discarded()) return 0;
  std::string gbnf;
  try {
    gbnf = g2c::sampling::json_schema_to_gbnf(schema);
  } catch (const g2c::InvalidArgument&) {
    return 0;
  }
  std::shared_ptr<const g2c::sampling::Grammar> g;
  try {
    g = g2c::sampling::Grammar::parse(gbnf);
  } catch (const g2c::sampling::GrammarError& e) {
    g2c::fuzz::property_failed("the converter wrote GBNF that does not parse", std::string(e.what()) + "\n" + gbnf);
  }
  g2c::fuzz::Rng rng(in);
  g2c::fuzz::GrammarWalk walk(*g, rng, 1024, 64);
  for (int i = 0; i < 4; ++i) {
    auto s = walk.generate();
    if (!s) continue;
    g2c::fuzz::check_matcher_accepts(g, *s);
    G2C_FUZZ_CHECK(nlohmann::json::accept(neutral_escapes(*s)), "generated text is not JSON: '" + *s + "'\n" + gbnf);
  }
  g2c::fuzz::check_matcher_random_bytes(g, rest);
  return 0;
}
