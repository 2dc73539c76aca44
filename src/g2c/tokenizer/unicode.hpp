#pragma once
// Unicode helpers for the tokenizers: UTF-8 decoding with llama.cpp's error rule, the GPT-2 byte-level
// alphabet, the few character facts BERT basic tokenization needs, and an incremental UTF-8 sanitizer
// shared by one-shot and streaming decoding.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace g2c::tokenizer {

// Major general category (first letter of the Unicode category); kUnassigned is Cn.
enum class CharCategory : std::uint8_t {
  kUnassigned = 0,
  kOther = 1,  // Cc Cf Co Cs
  kNumber = 2,
  kLetter = 3,
  kSeparator = 4,
  kMark = 5,
  kPunctuation = 6,
  kSymbol = 7,
};

CharCategory char_category(std::uint32_t cpt);
// Unicode White_Space (the set llama.cpp uses for \s): 0x09-0x0D, 0x20, 0x85, 0xA0, 0x1680,
// 0x2000-0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000.
bool is_whitespace(std::uint32_t cpt);
// Simple (one code point) lowercase mapping; unchanged when there is none.
std::uint32_t to_lower(std::uint32_t cpt);
// The first code point of the canonical decomposition (llama.cpp's "NFD": drops accents).
std::uint32_t nfd_first(std::uint32_t cpt);

// Byte length of the UTF-8 sequence a lead byte announces, as llama.cpp counts it (a continuation
// or invalid lead byte counts as 1; no validation).
inline std::size_t utf8_len_from_lead(unsigned char c) {
  static constexpr std::uint8_t kLen[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
  return kLen[c >> 4];
}

void append_utf8(std::string& out, std::uint32_t cpt);

// Decodes `text` to code points. A byte where no well-formed sequence starts (bad lead, truncated
// or bad continuation, overlong, surrogate, > U+10FFFF) becomes one U+FFFD and decoding resumes at
// the next byte (llama.cpp's rule in unicode_cpts_from_utf8, stricter about overlongs/surrogates).
std::vector<std::uint32_t> decode_utf8_lossy(std::string_view text);
// The same replacement, re-encoded: the result is valid UTF-8.
std::string sanitize_utf8(std::string_view text);

// GPT-2 byte-level alphabet (formats.md 3.2): byte -> the UTF-8 of its stand-in code point.
const std::string& byte_to_unicode(std::uint8_t b);
// Inverse for one code point; -1 when the code point is not in the alphabet.
int unicode_to_byte(std::uint32_t cpt);

// Incremental UTF-8 validator: push arbitrary byte chunks, get back only complete, valid text.
// Bytes that can still become a valid character are held; an ill-formed sequence is replaced by one
// U+FFFD per maximal subpart (Unicode 15 §3.9, "substitution of maximal subparts"). flush() replaces
// whatever is held at the end. Pushing everything then flushing equals pushing in any split, which is
// what makes streaming output identical to one-shot decoding.
class Utf8Stream {
 public:
  std::string push(std::string_view bytes);
  std::string flush();

 private:
  void feed(unsigned char c, std::string& out);
  char pending_[4] = {};
  int n_pending_ = 0;
  int need_ = 0;             // total length of the sequence being collected
  unsigned char lo_ = 0x80;  // allowed range for the next continuation byte
  unsigned char hi_ = 0xBF;
};

}  // namespace g2c::tokenizer
