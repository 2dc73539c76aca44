#pragma once
// Byte-level BPE pre-tokenizers: the split each `tokenizer.ggml.pre` value selects in llama.cpp at
// c392e50 (src/llama-vocab.cpp, llm_tokenizer_bpe), run with PCRE2 (UTF + UCP, JIT).
//
// A pre-tokenizer is a list of patterns applied as passes: each pass cuts only inside the pieces the
// previous pass left, and inside a piece any stretch the pattern does not match stays a piece of its
// own (llama.cpp unicode_regex_split). `\s` means Unicode White_Space in every pattern, `$` the end of
// the piece: the translation below makes PCRE2 agree with llama.cpp's mix of hand-written matchers,
// "collapsed" std::regex and std::wregex on those two points.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace g2c::tokenizer {

struct PreTokenizerInfo {
  std::string name;                   // the canonical pre value, "default" when the key is absent
  std::vector<std::string> patterns;  // as llama.cpp writes them
  bool ignore_merges = false;         // whole pre-token found in vocab -> emit it without BPE
  bool add_bos = false;               // llama.cpp's add_bos default for this pre type
  bool clear_bos = false;             // chatglm-bpe: bos id defaults to none
};

// The pre-tokenizer for a `tokenizer.ggml.pre` value ("" = key absent = "default"). Throws
// UnsupportedError naming the value when llama.cpp would refuse it too.
PreTokenizerInfo pre_tokenizer_info(const std::string& pre);
// Every pre value accepted, in llama.cpp's order.
std::vector<std::string> known_pre_tokenizers();

class PreTokenizer {
 public:
  explicit PreTokenizer(const std::vector<std::string>& patterns);
  ~PreTokenizer();
  PreTokenizer(const PreTokenizer&) = delete;
  PreTokenizer& operator=(const PreTokenizer&) = delete;

  // Splits valid UTF-8 `text` into pieces, returned as [begin, end) byte offsets covering the text in
  // order. Thread-safe: match state is per call / per thread.
  std::vector<std::pair<std::uint32_t, std::uint32_t>> split(std::string_view text) const;

 private:
  struct Compiled;
  std::vector<std::unique_ptr<Compiled>> passes_;
};

// Translates a llama.cpp pattern to PCRE2 syntax (exposed for tests): `\s`/`\S` become explicit
// White_Space classes, a trailing `$` becomes `\z`.
std::string translate_pattern(const std::string& pattern);

}  // namespace g2c::tokenizer
