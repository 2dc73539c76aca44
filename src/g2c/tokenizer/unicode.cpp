#include "g2c/tokenizer/unicode.hpp"

#include <algorithm>
#include <array>
#include <iterator>

namespace g2c::tokenizer {
namespace {

#include "unicode_tables.inc"

constexpr std::uint32_t kReplacement = 0xFFFD;

// Looks `cpt` up in a sorted {key, value} table.
template <std::size_t N>
const std::uint32_t* find_pair(const std::uint32_t (&table)[N][2], std::uint32_t cpt) {
  const auto* it = std::lower_bound(std::begin(table), std::end(table), cpt,
                                    [](const std::uint32_t(&e)[2], std::uint32_t v) { return e[0] < v; });
  if (it != std::end(table) && (*it)[0] == cpt) return *it;
  return nullptr;
}

struct ByteAlphabet {
  std::array<std::string, 256> to_utf8;
  std::array<std::int16_t, 324> from_cpt;  // every stand-in code point is < 0x144
  ByteAlphabet() {
    from_cpt.fill(-1);
    int n = 0;
    for (int b = 0; b < 256; ++b) {
      const bool self = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      const std::uint32_t cpt = self ? static_cast<std::uint32_t>(b) : 256u + static_cast<std::uint32_t>(n++);
      append_utf8(to_utf8[b], cpt);
      from_cpt[cpt] = static_cast<std::int16_t>(b);
    }
  }
};

const ByteAlphabet& byte_alphabet() {
  static const ByteAlphabet a;
  return a;
}

}  // namespace

CharCategory char_category(std::uint32_t cpt) {
  if (cpt >= 0x110000) return CharCategory::kUnassigned;
  const auto* it = std::upper_bound(std::begin(kCategoryRuns), std::end(kCategoryRuns), cpt,
                                    [](std::uint32_t v, const std::uint32_t(&e)[2]) { return v < e[0]; });
  return static_cast<CharCategory>((*(it - 1))[1]);
}

bool is_whitespace(std::uint32_t cpt) {
  if (cpt <= 0x20) return cpt == 0x20 || (cpt >= 0x09 && cpt <= 0x0D);
  if (cpt < 0x85) return false;
  return cpt == 0x85 || cpt == 0xA0 || cpt == 0x1680 || (cpt >= 0x2000 && cpt <= 0x200A) || cpt == 0x2028 ||
         cpt == 0x2029 || cpt == 0x202F || cpt == 0x205F || cpt == 0x3000;
}

std::uint32_t to_lower(std::uint32_t cpt) {
  if (cpt < 0x80) return (cpt >= 'A' && cpt <= 'Z') ? cpt + 32 : cpt;
  const auto* e = find_pair(kLowercase, cpt);
  return e ? e[1] : cpt;
}

std::uint32_t nfd_first(std::uint32_t cpt) {
  if (cpt < 0xC0) return cpt;
  const auto* e = find_pair(kNfdFirst, cpt);
  return e ? e[1] : cpt;
}

void append_utf8(std::string& out, std::uint32_t cpt) {
  if (cpt < 0x80) {
    out.push_back(static_cast<char>(cpt));
  } else if (cpt < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cpt >> 6)));
    out.push_back(static_cast<char>(0x80 | (cpt & 0x3F)));
  } else if (cpt < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cpt >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cpt >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cpt & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cpt >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cpt >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cpt >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cpt & 0x3F)));
  }
}

namespace {
// Decodes one well-formed sequence at text[i]; returns its length, or 0 when ill-formed.
std::size_t decode_one(std::string_view text, std::size_t i, std::uint32_t& cpt) {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const std::size_t n = text.size();
  const unsigned char c = s[i];
  if (c < 0x80) {
    cpt = c;
    return 1;
  }
  std::size_t len;
  unsigned char lo = 0x80, hi = 0xBF;
  if (c >= 0xC2 && c <= 0xDF) {
    len = 2;
    cpt = c & 0x1F;
  } else if (c >= 0xE0 && c <= 0xEF) {
    len = 3;
    cpt = c & 0x0F;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    len = 4;
    cpt = c & 0x07;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  if (i + len > n) return 0;
  for (std::size_t k = 1; k < len; ++k) {
    const unsigned char cc = s[i + k];
    if (cc < lo || cc > hi) return 0;
    lo = 0x80;
    hi = 0xBF;
    cpt = (cpt << 6) | (cc & 0x3F);
  }
  return len;
}
}  // namespace

std::vector<std::uint32_t> decode_utf8_lossy(std::string_view text) {
  std::vector<std::uint32_t> out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size();) {
    std::uint32_t cpt = 0;
    const std::size_t len = decode_one(text, i, cpt);
    if (len == 0) {
      out.push_back(kReplacement);
      ++i;
    } else {
      out.push_back(cpt);
      i += len;
    }
  }
  return out;
}

std::string sanitize_utf8(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size();) {
    std::uint32_t cpt = 0;
    const std::size_t len = decode_one(text, i, cpt);
    if (len == 0) {
      append_utf8(out, kReplacement);
      ++i;
    } else {
      out.append(text.substr(i, len));
      i += len;
    }
  }
  return out;
}

const std::string& byte_to_unicode(std::uint8_t b) { return byte_alphabet().to_utf8[b]; }

int unicode_to_byte(std::uint32_t cpt) {
  const auto& a = byte_alphabet();
  return cpt < a.from_cpt.size() ? a.from_cpt[cpt] : -1;
}

// ---- Utf8Stream ---------------------------------------------------------------------------------

void Utf8Stream::feed(unsigned char c, std::string& out) {
  if (n_pending_ > 0) {
    if (c >= lo_ && c <= hi_) {
      pending_[n_pending_++] = static_cast<char>(c);
      lo_ = 0x80;
      hi_ = 0xBF;
      if (n_pending_ == need_) {
        out.append(pending_, static_cast<std::size_t>(n_pending_));
        n_pending_ = 0;
      }
      return;
    }
    // The held bytes are a maximal subpart of an ill-formed sequence; `c` starts afresh.
    append_utf8(out, kReplacement);
    n_pending_ = 0;
  }
  if (c < 0x80) {
    out.push_back(static_cast<char>(c));
    return;
  }
  lo_ = 0x80;
  hi_ = 0xBF;
  if (c >= 0xC2 && c <= 0xDF) {
    need_ = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    need_ = 3;
    if (c == 0xE0) lo_ = 0xA0;
    if (c == 0xED) hi_ = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    need_ = 4;
    if (c == 0xF0) lo_ = 0x90;
    if (c == 0xF4) hi_ = 0x8F;
  } else {
    append_utf8(out, kReplacement);
    return;
  }
  pending_[0] = static_cast<char>(c);
  n_pending_ = 1;
}

std::string Utf8Stream::push(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() + 4);
  for (char ch : bytes) feed(static_cast<unsigned char>(ch), out);
  return out;
}

std::string Utf8Stream::flush() {
  std::string out;
  if (n_pending_ > 0) append_utf8(out, kReplacement);
  n_pending_ = 0;
  return out;
}

}  // namespace g2c::tokenizer
