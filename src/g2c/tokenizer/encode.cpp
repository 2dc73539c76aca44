// The three encoders. Each follows the corresponding llama.cpp c392e50 session (llm_tokenizer_spm_
// session, llm_tokenizer_bpe_session, llm_tokenizer_wpm_session) step for step where the order of
// operations decides the ids: same priority-queue ordering, same stale-entry rule, same fallbacks.
#include <algorithm>
#include <queue>
#include <unordered_map>
#include <vector>

#include "g2c/tokenizer/pretokenizer.hpp"
#include "g2c/tokenizer/tokenizer.hpp"
#include "g2c/tokenizer/tokenizer_internal.hpp"

namespace g2c::tokenizer {
namespace {

// A run of text in the symbol chain: [off, off + n) of the word; n == 0 once merged away.
struct Symbol {
  std::int32_t prev;
  std::int32_t next;
  std::uint32_t off;
  std::uint32_t n;
};

// Splits `text` into one symbol per UTF-8 character, counting lengths from lead bytes (clamped at
// the end) without validating, as llama.cpp does.
void split_chars(std::string_view text, std::vector<Symbol>& symbols) {
  symbols.clear();
  std::int32_t index = 0;
  for (std::size_t off = 0; off < text.size();) {
    const std::size_t len = std::min(utf8_len_from_lead(static_cast<unsigned char>(text[off])), text.size() - off);
    const std::size_t end = off + len;
    symbols.push_back({index - 1, end == text.size() ? -1 : index + 1, static_cast<std::uint32_t>(off),
                       static_cast<std::uint32_t>(len)});
    off = end;
    ++index;
  }
}

}  // namespace

// ---- SPM: merge the adjacent pair whose concatenation is the highest-scoring token ----------------

std::atomic<bool> g_spm_chunking{true};

// llama.cpp merges over the whole fragment with one queue, so a long text keeps one candidate pair per
// character in a heap. The result is the same if the text is cut where no merge can ever cross: a
// merged symbol is always a vocabulary token, so a boundary between characters x|y can only be merged
// across if some token contains "xy". Before each U+2581 whose left neighbour never precedes U+2581
// inside a token (for Llama-style vocabularies: anything but U+2581 itself), the chunks evolve
// independently, and within a chunk the queue pops in the same (score, position) order as before.
// Cuts fall on the same character boundaries the whole-text split would use.
void Tokenizer::encode_spm(std::string_view text, std::vector<std::int32_t>& out) const {
  constexpr std::string_view kSpace = "\xE2\x96\x81";
  if (!g_spm_chunking.load(std::memory_order_relaxed)) {
    encode_spm_chunk(text, out);
    return;
  }
  std::size_t chunk_begin = 0, prev_char = 0;
  std::string key;
  for (std::size_t off = 0; off < text.size();) {
    const std::size_t len = std::min(utf8_len_from_lead(static_cast<unsigned char>(text[off])), text.size() - off);
    if (off > chunk_begin && text.substr(off, len) == kSpace) {
      key.assign(text.substr(prev_char, off - prev_char));
      if (!spm_joins_space_.count(key)) {
        encode_spm_chunk(text.substr(chunk_begin, off - chunk_begin), out);
        chunk_begin = off;
      }
    }
    prev_char = off;
    off += len;
  }
  encode_spm_chunk(text.substr(chunk_begin), out);
}

void Tokenizer::encode_spm_chunk(std::string_view text, std::vector<std::int32_t>& out) const {
  struct Bigram {
    std::int32_t left, right;
    float score;
    std::uint32_t size;
  };
  // Highest score first; on a tie the leftmost pair.
  auto cmp = [](const Bigram& l, const Bigram& r) {
    return l.score < r.score || (l.score == r.score && l.left > r.left);
  };
  std::priority_queue<Bigram, std::vector<Bigram>, decltype(cmp)> queue(cmp);
  std::vector<Symbol> symbols;
  split_chars(text, symbols);
  std::string key;

  auto try_add = [&](std::int32_t left, std::int32_t right) {
    if (left < 0 || right < 0) return;
    key.assign(text.substr(symbols[left].off, symbols[left].n + symbols[right].n));
    auto it = text_to_id_.find(key);
    if (it == text_to_id_.end()) return;
    queue.push({left, right, tokens_[it->second].score, static_cast<std::uint32_t>(key.size())});
  };
  for (std::int32_t i = 1; i < static_cast<std::int32_t>(symbols.size()); ++i) try_add(i - 1, i);

  while (!queue.empty()) {
    const Bigram b = queue.top();
    queue.pop();
    Symbol& l = symbols[b.left];
    Symbol& r = symbols[b.right];
    if (l.n == 0 || r.n == 0 || l.n + r.n != b.size) continue;  // stale: one side changed since
    l.n += r.n;
    r.n = 0;
    l.next = r.next;
    if (r.next >= 0) symbols[r.next].prev = b.left;
    try_add(l.prev, b.left);
    try_add(b.left, l.next);
  }

  // Emit: a symbol that is a token as is, otherwise its bytes. (llama.cpp also keeps a map from
  // merged text back to the pair that formed it, to split a symbol that is not a token; but a
  // merged text is always a token, so that lookup can never succeed and is left out here.)
  for (std::int32_t i = symbols.empty() ? -1 : 0; i != -1; i = symbols[i].next) {
    const Symbol& s = symbols[i];
    key.assign(text.substr(s.off, s.n));
    if (auto it = text_to_id_.find(key); it != text_to_id_.end()) {
      out.push_back(it->second);
      continue;
    }
    for (std::uint32_t j = 0; j < s.n; ++j) {
      const std::int32_t id = byte_tokens_[static_cast<unsigned char>(text[s.off + j])];
      if (id != kNoToken) {
        out.push_back(id);
      } else if (unk_ != kNoToken) {
        out.push_back(unk_);  // a vocab without byte tokens (llama.cpp throws here)
      }
    }
  }
}

// ---- byte-level BPE -----------------------------------------------------------------------------

int Tokenizer::bpe_rank(std::string_view left, std::string_view right, std::string& key) const {
  make_merge_key(left, right, key);
  auto it = merge_rank_.find(key);
  return it == merge_rank_.end() ? -1 : it->second;
}

struct Tokenizer::BpeScratch {
  std::vector<Symbol> symbols;
  std::vector<std::int32_t> ids;  // token id of each symbol's text, kNoToken when not a token
  std::string key;
};

void Tokenizer::encode_bpe(std::string_view raw, std::vector<std::int32_t>& out) const {
  // llama.cpp decodes to code points with U+FFFD for bad bytes before splitting; PCRE2 then sees
  // valid UTF-8 only.
  const std::string text = sanitize_utf8(raw);
  std::string word;
  BpeScratch scratch;
  for (const auto& [b, e] : pre_tokenizer_->split(text)) {
    word.clear();
    for (std::uint32_t i = b; i < e; ++i) word += byte_to_unicode(static_cast<std::uint8_t>(text[i]));
    bpe_word(std::string_view(text).substr(b, e - b), word, scratch, out);
  }
}

// `raw` is the pre-token's bytes, `word` the same in the byte-level alphabet (one character per byte).
void Tokenizer::bpe_word(std::string_view raw, std::string_view word, BpeScratch& sc,
                         std::vector<std::int32_t>& out) const {
  std::string& key = sc.key;
  if (ignore_merges_) {
    key.assign(word);
    if (auto it = text_to_id_.find(key); it != text_to_id_.end()) {
      out.push_back(it->second);
      return;
    }
  }
  struct Bigram {
    std::int32_t left, right;
    int rank;
    std::uint32_t size;
    std::int32_t merged;  // id of the merged text, kNoToken if none
  };
  // Lowest rank first; on a tie the leftmost pair.
  auto cmp = [](const Bigram& l, const Bigram& r) { return l.rank > r.rank || (l.rank == r.rank && l.left > r.left); };
  std::priority_queue<Bigram, std::vector<Bigram>, decltype(cmp)> queue(cmp);
  std::vector<Symbol>& symbols = sc.symbols;
  split_chars(word, symbols);
  std::vector<std::int32_t>& ids = sc.ids;
  ids.resize(symbols.size());
  for (std::size_t i = 0; i < symbols.size(); ++i) ids[i] = byte_tokens_[static_cast<unsigned char>(raw[i])];
  auto add = [&](std::int32_t left, std::int32_t right) {
    if (left < 0 || right < 0) return;
    const Symbol& l = symbols[left];
    const Symbol& r = symbols[right];
    if (ids[left] != kNoToken && ids[right] != kNoToken) {
      const std::uint64_t k = (static_cast<std::uint64_t>(static_cast<std::uint32_t>(ids[left])) << 32) |
                              static_cast<std::uint32_t>(ids[right]);
      auto it = merge_by_ids_.find(k);
      if (it == merge_by_ids_.end()) return;
      queue.push({left, right, it->second.rank, l.n + r.n, it->second.merged});
      return;
    }
    // A part that is not a token (a merge result missing from the vocab): look the strings up.
    const int rank = bpe_rank(word.substr(l.off, l.n), word.substr(r.off, r.n), key);
    if (rank < 0) return;
    key.assign(word.substr(l.off, l.n + r.n));
    auto it = text_to_id_.find(key);
    queue.push({left, right, rank, l.n + r.n, it == text_to_id_.end() ? kNoToken : it->second});
  };
  for (std::int32_t i = 1; i < static_cast<std::int32_t>(symbols.size()); ++i) add(i - 1, i);
  while (!queue.empty()) {
    const Bigram bg = queue.top();
    queue.pop();
    Symbol& l = symbols[bg.left];
    Symbol& r = symbols[bg.right];
    if (l.n == 0 || r.n == 0 || l.n + r.n != bg.size) continue;  // outdated pair
    l.n += r.n;
    r.n = 0;
    ids[bg.left] = bg.merged;
    l.next = r.next;
    if (r.next >= 0) symbols[r.next].prev = bg.left;
    add(l.prev, bg.left);
    add(bg.left, l.next);
  }
  for (std::size_t i = 0; i < symbols.size(); ++i) {
    const Symbol& s = symbols[i];
    if (s.n == 0) continue;
    if (ids[i] != kNoToken) {
      out.push_back(ids[i]);
      continue;
    }
    // Not a token: llama.cpp looks up each single byte of the alphabet string (only ASCII ones can
    // hit) and drops the rest.
    for (std::uint32_t j = 0; j < s.n; ++j) {
      key.assign(1, word[s.off + j]);
      if (auto it = text_to_id_.find(key); it != text_to_id_.end()) out.push_back(it->second);
    }
  }
}

// ---- WordPiece ----------------------------------------------------------------------------------

namespace {

bool is_chinese_char(std::uint32_t c) {
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
         (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) ||
         (c >= 0x2B920 && c <= 0x2CEAF) ||  // HF's (and llama.cpp's) bound, not Unicode's 0x2B820
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

// BERT basic tokenization as llama.cpp does it: first-code-point "NFD" (drops accents), lowercase,
// whitespace splits, control/NUL/U+FFFD dropped, punctuation, ASCII symbols and CJK ideographs
// become one-character words.
std::vector<std::string> wpm_words(std::string_view text) {
  std::vector<std::string> words(1);
  for (std::uint32_t cpt : decode_utf8_lossy(text)) {
    cpt = nfd_first(cpt);
    if (is_whitespace(cpt)) {
      if (!words.back().empty()) words.emplace_back();
      continue;
    }
    const CharCategory cat = char_category(cpt);
    if (cpt == 0 || cpt == 0xFFFD || cat == CharCategory::kOther) continue;
    std::string s;
    append_utf8(s, to_lower(cpt));
    if (cat == CharCategory::kPunctuation || (cpt < 0x7F && cat == CharCategory::kSymbol) || is_chinese_char(cpt)) {
      if (!words.back().empty()) words.emplace_back();
      words.back() = std::move(s);
      words.emplace_back();
    } else {
      words.back() += s;
    }
  }
  if (words.back().empty()) words.pop_back();
  return words;
}

}  // namespace

void Tokenizer::encode_wpm(std::string_view text, std::vector<std::int32_t>& out) const {
  std::string key;
  for (const std::string& w : wpm_words(text)) {
    if (w.empty()) continue;
    // Word-initial pieces are stored with a leading U+2581; continuations bare.
    const std::string word = "\xE2\x96\x81" + w;
    const int n = static_cast<int>(word.size());
    const std::size_t start = out.size();
    for (int i = 0; i < n; ++i) {
      bool match = false;
      for (int j = std::min(n, i + max_token_len_ + 1); j > i; --j) {
        key.assign(word, static_cast<std::size_t>(i), static_cast<std::size_t>(j - i));
        if (auto it = text_to_id_.find(key); it != text_to_id_.end()) {
          out.push_back(it->second);
          match = true;
          i = j - 1;
          break;
        }
      }
      if (!match) {  // the whole word becomes [UNK]
        out.resize(start);
        break;
      }
    }
    if (out.size() == start) out.push_back(unk_);
  }
}

}  // namespace g2c::tokenizer
