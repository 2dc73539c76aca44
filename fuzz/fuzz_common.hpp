#pragma once
// Helpers shared by the libFuzzer targets: the shared folder, a property failure that libFuzzer reports
// as a crash (with the input saved), and a small deterministic RNG seeded from the input.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace g2c::fuzz {

// $G2C_SHARED_DIR, else ../shared beside the source tree (set by fuzz/CMakeLists.txt).
inline std::string shared_dir() {
  if (const char* e = std::getenv("G2C_SHARED_DIR"); e && *e) return e;
  return G2C_FUZZ_SHARED_DIR;
}

// A property that does not hold: print it and abort (libFuzzer saves the input as crash-*).
[[noreturn]] inline void property_failed(const char* what, std::string_view detail = {}) {
  std::fprintf(stderr, "PROPERTY FAILED: %s\n%.*s\n", what, static_cast<int>(detail.size()), detail.data());
  std::abort();
}

#define G2C_FUZZ_CHECK(cond, detail)                                              \
  do {                                                                            \
    if (!(cond)) ::g2c::fuzz::property_failed(#cond " (" __FILE__ ")", (detail)); \
  } while (0)

// SplitMix64 seeded from the input bytes: the same input always makes the same choices.
class Rng {
 public:
  explicit Rng(std::string_view seed) {
    for (unsigned char c : seed) s_ = (s_ ^ c) * 0x100000001B3ULL;
  }
  std::uint64_t next() {
    std::uint64_t z = (s_ += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
  std::uint64_t below(std::uint64_t n) { return n ? next() % n : 0; }

 private:
  std::uint64_t s_ = 0xCBF29CE484222325ULL;
};

inline bool valid_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::size_t n = 0;
    std::uint32_t cp = 0, min = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      n = 1, cp = c & 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
      n = 2, cp = c & 0x0F, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
      n = 3, cp = c & 0x07, min = 0x10000;
    } else {
      return false;
    }
    if (i + n >= s.size()) return false;  // the character runs past the end
    for (std::size_t k = 1; k <= n; ++k) {
      const auto d = static_cast<unsigned char>(s[i + k]);
      if ((d & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (d & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += n + 1;
  }
  return true;
}

// Appends code point `cp` (a scalar value) as UTF-8.
inline void append_utf8(std::string& out, std::uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

}  // namespace g2c::fuzz
