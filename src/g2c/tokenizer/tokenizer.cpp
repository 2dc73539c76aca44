// Loading (GGUF keys, llama2.c tokenizer.bin), special-token partitioning, decoding. The three
// encoders live in encode.cpp. Facts follow llama.cpp c392e50 src/llama-vocab.cpp (llama_vocab::impl::
// load, tokenizer_st_partition, tokenize, token_to_piece); the code is g2c's own.
#include "g2c/tokenizer/tokenizer.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <utility>

#include "g2c/core/error.hpp"
#include "g2c/core/log.hpp"
#include "g2c/core/mmap.hpp"
#include "g2c/gguf/gguf.hpp"
#include "g2c/tokenizer/pretokenizer.hpp"
#include "g2c/tokenizer/tokenizer_internal.hpp"

namespace g2c::tokenizer {

const char* vocab_type_name(VocabType t) {
  switch (t) {
    case VocabType::SPM: return "llama";
    case VocabType::BPE: return "gpt2";
    case VocabType::WPM: return "bert";
  }
  return "?";
}

namespace {

std::uint32_t attr_of(TokenType t) {
  switch (t) {
    case TokenType::UNKNOWN: return kAttrUnknown;
    case TokenType::UNUSED: return kAttrUnused;
    case TokenType::NORMAL: return kAttrNormal;
    case TokenType::CONTROL: return kAttrControl;
    case TokenType::USER_DEFINED: return kAttrUserDefined;
    case TokenType::BYTE: return kAttrByte;
    case TokenType::UNDEFINED: return 0;
  }
  return 0;
}

// "<0xNN>" with two hex digits -> NN, else -1.
int parse_byte_piece(const std::string& s) {
  if (s.size() != 6 || s[0] != '<' || s[1] != '0' || s[2] != 'x' || s[5] != '>') return -1;
  auto hex = [](char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  const int hi = hex(s[3]), lo = hex(s[4]);
  return (hi < 0 || lo < 0) ? -1 : hi * 16 + lo;
}

std::string replace_all(std::string s, std::string_view from, std::string_view to) {
  std::string out;
  out.reserve(s.size());
  std::size_t pos = 0;
  for (std::size_t hit; (hit = s.find(from, pos)) != std::string::npos; pos = hit + from.size()) {
    out.append(s, pos, hit - pos);
    out.append(to);
  }
  out.append(s, pos, std::string::npos);
  return out;
}

constexpr std::string_view kSpace = "\xE2\x96\x81";  // U+2581, SentencePiece's space

}  // namespace

Tokenizer::~Tokenizer() = default;

std::unique_ptr<Tokenizer> Tokenizer::from_gguf(const gguf::File& file) {
  std::unique_ptr<Tokenizer> t(new Tokenizer());
  const std::string& name = file.path();
  auto fail = [&](const std::string& msg) { return FormatError(name + ": " + msg); };

  const std::string model = file.require_str("tokenizer.ggml.model");
  const std::string pre = file.get_str("tokenizer.ggml.pre").value_or("");
  // llama.cpp's defaults per tokenizer model, before the explicit keys are read.
  if (model == "llama") {
    t->type_ = VocabType::SPM;
    t->bos_ = 1, t->eos_ = 2, t->unk_ = 0;
    t->add_space_prefix_ = true, t->add_bos_ = true, t->add_eos_ = false;
  } else if (model == "bert") {
    t->type_ = VocabType::WPM;
    t->bos_ = 101, t->unk_ = 100, t->sep_ = 102, t->pad_ = 0, t->mask_ = 103;
    t->add_space_prefix_ = false, t->add_bos_ = true, t->add_eos_ = false;
  } else if (model == "gpt2") {
    t->type_ = VocabType::BPE;
    t->bos_ = 11, t->eos_ = 11;  // llama.cpp's (odd) defaults when the keys are missing
    const PreTokenizerInfo info = pre_tokenizer_info(pre);
    if (pre.empty()) log_warn("{}: no tokenizer.ggml.pre; using the 'default' pre-tokenizer as llama.cpp does", name);
    t->pre_ = info.name;
    t->ignore_merges_ = info.ignore_merges;
    t->add_bos_ = info.add_bos;
    if (info.clear_bos) t->bos_ = kNoToken;
    t->add_space_prefix_ = false;
    t->pre_tokenizer_ = std::make_unique<PreTokenizer>(info.patterns);
  } else {
    throw UnsupportedError(name + ": tokenizer.ggml.model = '" + model +
                           "' is not supported (g2c implements llama, gpt2 and bert)");
  }
  if (auto v = file.get_bool("tokenizer.ggml.add_space_prefix")) t->add_space_prefix_ = *v;

  const gguf::Value* tokens = file.find("tokenizer.ggml.tokens");
  if (!tokens) throw fail("missing key 'tokenizer.ggml.tokens'");
  if (!tokens->is_array() || tokens->elem_type() != gguf::ValueType::STRING)
    throw fail("tokenizer.ggml.tokens: expected an array of strings");
  const auto& texts = tokens->strings();
  const std::size_t n = texts.size();
  if (n == 0) throw fail("tokenizer.ggml.tokens is empty");
  if (n > 0x7FFFFFFF) throw fail("tokenizer.ggml.tokens has too many entries");

  std::vector<float> scores;
  if (const gguf::Value* v = file.find("tokenizer.ggml.scores")) {
    if (!v->is_array() || v->elem_type() == gguf::ValueType::STRING)
      throw fail("tokenizer.ggml.scores: expected a numeric array");
    scores = v->to_f32_vector();
    if (scores.size() != n)
      throw fail(fmt::format("tokenizer.ggml.scores: expected {} entries (one per token), got {}", n, scores.size()));
  }
  std::vector<std::int64_t> types;
  if (const gguf::Value* v = file.find("tokenizer.ggml.token_type")) {
    if (!v->is_array() || v->elem_type() == gguf::ValueType::STRING || v->is_float())
      throw fail("tokenizer.ggml.token_type: expected an integer array");
    try {
      types = v->to_i64_vector();
    } catch (const InvalidArgument& e) {
      throw fail(std::string("tokenizer.ggml.token_type: ") + e.what());
    }
    if (types.size() != n)
      throw fail(
          fmt::format("tokenizer.ggml.token_type: expected {} entries (one per token), got {}", n, types.size()));
  }

  t->tokens_.resize(n);
  for (std::size_t i = 0; i < n; ++i) {
    Token& tok = t->tokens_[i];
    tok.text = texts[i].empty() ? "[EMPTY_" + std::to_string(i) + "]" : texts[i];
    tok.score = scores.empty() ? 0.0f : scores[i];
    const std::int64_t ty = types.empty() ? 1 : types[i];
    tok.type = (ty >= 0 && ty <= 6) ? static_cast<TokenType>(ty) : TokenType::UNDEFINED;
    tok.attr = attr_of(tok.type);
  }

  if (t->type_ == VocabType::BPE) {
    const gguf::Value* merges = file.find("tokenizer.ggml.merges");
    if (!merges) throw fail("missing key 'tokenizer.ggml.merges' (required for a gpt2 tokenizer)");
    if (!merges->is_array() || merges->elem_type() != gguf::ValueType::STRING)
      throw fail("tokenizer.ggml.merges: expected an array of strings");
    const auto& m = merges->strings();
    t->merge_rank_.reserve(m.size() * 2);
    std::string key;
    for (std::size_t i = 0; i < m.size(); ++i) {
      // Split at the first space at position >= 1 (a part may itself be a space-less "Ġ...").
      const std::size_t pos = m[i].find(' ', 1);
      std::string_view first, second;
      if (pos != std::string::npos) {
        first = std::string_view(m[i]).substr(0, pos);
        second = std::string_view(m[i]).substr(pos + 1);
      }
      make_merge_key(first, second, key);
      t->merge_rank_.emplace(key, static_cast<int>(i));  // a repeated pair keeps its first rank
    }
  }

  // Special ids: an id outside the vocabulary keeps the default (4294967295 means "none" in files).
  auto read_id = [&](const char* key, std::int32_t& id) {
    const gguf::Value* v = file.find(key);
    if (!v) return;
    std::int64_t x = -1;
    try {
      x = v->as_i64();
    } catch (const InvalidArgument&) {
      x = -1;
    }
    if (x < 0 || x >= static_cast<std::int64_t>(n)) {
      if (!(v->is_integer() && x == -1) && x != 4294967295LL)
        log_warn("{}: {} = {} is not a token id; keeping {}", name, key, x, id);
      return;
    }
    id = static_cast<std::int32_t>(x);
  };
  read_id("tokenizer.ggml.bos_token_id", t->bos_);
  read_id("tokenizer.ggml.eos_token_id", t->eos_);
  read_id("tokenizer.ggml.eot_token_id", t->eot_);
  read_id("tokenizer.ggml.eom_token_id", t->eom_);
  read_id("tokenizer.ggml.unknown_token_id", t->unk_);
  read_id("tokenizer.ggml.seperator_token_id", t->sep_);  // GGUF's spelling
  read_id("tokenizer.ggml.padding_token_id", t->pad_);
  read_id("tokenizer.ggml.mask_token_id", t->mask_);
  read_id("tokenizer.ggml.fim_pre_token_id", t->fim_pre_);
  read_id("tokenizer.ggml.fim_suf_token_id", t->fim_suf_);
  read_id("tokenizer.ggml.fim_mid_token_id", t->fim_mid_);
  read_id("tokenizer.ggml.fim_pad_token_id", t->fim_pad_);
  read_id("tokenizer.ggml.fim_rep_token_id", t->fim_rep_);
  read_id("tokenizer.ggml.fim_sep_token_id", t->fim_sep_);
  read_id("tokenizer.ggml.prefix_token_id", t->fim_pre_);  // deprecated spellings
  read_id("tokenizer.ggml.suffix_token_id", t->fim_suf_);
  read_id("tokenizer.ggml.middle_token_id", t->fim_mid_);
  if (auto v = file.get_bool("tokenizer.ggml.add_bos_token")) t->add_bos_ = *v;
  if (auto v = file.get_bool("tokenizer.ggml.add_eos_token")) t->add_eos_ = *v;

  std::string model_name = file.get_str("general.name").value_or("");
  t->finish_load(model_name);

  if (t->type_ == VocabType::BPE) {
    const auto& m = file.find("tokenizer.ggml.merges")->strings();
    t->merge_by_ids_.reserve(m.size() * 2);
    for (std::size_t i = 0; i < m.size(); ++i) {
      const std::size_t pos = m[i].find(' ', 1);
      if (pos == std::string::npos) continue;
      const std::string_view first = std::string_view(m[i]).substr(0, pos),
                             second = std::string_view(m[i]).substr(pos + 1);
      const std::int32_t l = t->find(first), r = t->find(second);
      if (l == kNoToken || r == kNoToken) continue;
      std::string merged(first);
      merged += second;
      const std::uint64_t key =
          (static_cast<std::uint64_t>(static_cast<std::uint32_t>(l)) << 32) | static_cast<std::uint32_t>(r);
      t->merge_by_ids_.emplace(key, MergeById{static_cast<int>(i), t->find(merged)});
    }
  }
  return t;
}

std::unique_ptr<Tokenizer> Tokenizer::from_llama2c(const std::string& path, int vocab_size) {
  if (vocab_size < 0)
    throw InvalidArgument(fmt::format("{}: vocab_size must not be negative, got {}", path, vocab_size));
  const std::string bytes = read_file(path);
  std::size_t off = 0;
  auto take = [&](void* dst, std::size_t len, const char* what) {
    if (bytes.size() - off < len)
      throw FormatError(fmt::format("{}: truncated at byte {} reading {} (file has {} bytes, vocab_size {})", path, off,
                                    what, bytes.size(), vocab_size));
    std::memcpy(dst, bytes.data() + off, len);
    off += len;
  };
  std::uint32_t max_token_length = 0;
  take(&max_token_length, 4, "max_token_length");

  std::unique_ptr<Tokenizer> t(new Tokenizer());
  t->type_ = VocabType::SPM;
  t->bos_ = 1, t->eos_ = 2, t->unk_ = 0;
  t->add_space_prefix_ = true, t->add_bos_ = true, t->add_eos_ = false;
  // vocab_size 0: the count is not stored, so read records until the end of the file.
  const bool to_end = vocab_size == 0;
  if (!to_end) t->tokens_.reserve(static_cast<std::size_t>(vocab_size));
  for (int i = 0; to_end ? off < bytes.size() : i < vocab_size; ++i) {
    t->tokens_.emplace_back();
    float score = 0;
    std::int32_t len = 0;
    take(&score, 4, "a token score");
    take(&len, 4, "a token length");
    if (len < 0 || static_cast<std::uint32_t>(len) > max_token_length + 16u)
      throw FormatError(
          fmt::format("{}: token {} has length {} (max_token_length {})", path, i, len, max_token_length));
    std::string s(static_cast<std::size_t>(len), '\0');
    if (len > 0) take(s.data(), static_cast<std::size_t>(len), "token bytes");
    Token& tok = t->tokens_.back();
    tok.score = score;
    // export() wrote SentencePiece pieces with U+2581 as ' ' and BOS/EOS as "\n<s>\n" / "\n</s>\n";
    // undo that so the vocabulary equals the GGUF conversion of the same model.
    if (i == 1 && s == "\n<s>\n") {
      tok.text = "<s>", tok.type = TokenType::CONTROL;
    } else if (i == 2 && s == "\n</s>\n") {
      tok.text = "</s>", tok.type = TokenType::CONTROL;
    } else if (i == 0 && s == "<unk>") {
      tok.text = s, tok.type = TokenType::UNKNOWN;
    } else if (parse_byte_piece(s) >= 0) {
      tok.text = s, tok.type = TokenType::BYTE;
    } else {
      tok.text = replace_all(s, " ", kSpace), tok.type = TokenType::NORMAL;
    }
    if (tok.text.empty()) tok.text = "[EMPTY_" + std::to_string(i) + "]";
    tok.attr = attr_of(tok.type);
  }
  if (t->tokens_.empty()) throw FormatError(path + ": no tokens");
  t->finish_load("");
  return t;
}

void Tokenizer::finish_load(const std::string& model_name) {
  const std::size_t n = tokens_.size();
  text_to_id_.reserve(n * 2);
  for (std::size_t i = 0; i < n; ++i) {
    text_to_id_[tokens_[i].text] = static_cast<std::int32_t>(i);  // a repeated string maps to its last id
    max_token_len_ = std::max(max_token_len_, static_cast<int>(tokens_[i].text.size()));
  }

  // Control-looking pieces llama.cpp recognises by text. The first candidate present wins for eot
  // (llama.cpp takes whichever its hash map yields first; this order is deterministic).
  auto mark_control = [&](std::int32_t id) {
    if (!(tokens_[id].attr & kAttrControl)) {
      log_debug("token {} '{}' looks like a control token; treating it as one (as llama.cpp does)", id,
                tokens_[id].text);
      tokens_[id].attr = kAttrControl;
      tokens_[id].type = TokenType::CONTROL;
    }
  };
  auto detect = [&](std::int32_t& id, std::initializer_list<std::string_view> candidates) {
    if (id != kNoToken) return;
    for (std::string_view c : candidates) {
      if (std::int32_t found = find(c); found != kNoToken) {
        id = found;
        mark_control(found);
        return;
      }
    }
  };
  detect(eot_, {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<EOT>",
                "<\xEF\xBD\x9C"
                "end\xE2\x96\x81"
                "of\xE2\x96\x81"
                "sentence\xEF\xBD\x9C>"});
  detect(eom_, {"<|eom_id|>"});
  detect(fim_pre_, {"<|fim_prefix|>", "<fim-prefix>",
                    "<\xEF\xBD\x9C"
                    "fim\xE2\x96\x81"
                    "begin\xEF\xBD\x9C>",
                    "<PRE>"});
  detect(fim_suf_, {"<|fim_suffix|>", "<fim-suffix>",
                    "<\xEF\xBD\x9C"
                    "fim\xE2\x96\x81"
                    "hole\xEF\xBD\x9C>",
                    "<SUF>"});
  detect(fim_mid_, {"<|fim_middle|>", "<fim-middle>",
                    "<\xEF\xBD\x9C"
                    "fim\xE2\x96\x81"
                    "end\xEF\xBD\x9C>",
                    "<MID>"});
  detect(fim_pad_, {"<|fim_pad|>", "<fim-pad>", "<PAD>"});
  detect(fim_rep_, {"<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>"});
  detect(fim_sep_, {"<|file_sep|>"});

  // End-of-generation set.
  auto add_eog = [&](std::int32_t id) {
    if (id != kNoToken && std::find(eog_.begin(), eog_.end(), id) == eog_.end()) eog_.push_back(id);
  };
  add_eog(fim_pad_);
  add_eog(fim_rep_);
  add_eog(fim_sep_);
  for (std::string_view s :
       {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|eom_id|>", "<EOT>"}) {
    if (std::int32_t id = find(s); id != kNoToken) {
      add_eog(id);
      mark_control(id);
    }
  }
  add_eog(eos_);
  add_eog(eot_);
  add_eog(eom_);
  std::sort(eog_.begin(), eog_.end());

  // Pieces matched whole before tokenizing, longest first. std::sort over ascending ids with the
  // same comparator as llama.cpp, so equal-length pieces are tried in the same order.
  for (std::size_t i = 0; i < n; ++i)
    if (tokens_[i].attr & (kAttrControl | kAttrUserDefined | kAttrUnknown))
      special_by_length_.push_back(static_cast<std::int32_t>(i));
  std::sort(special_by_length_.begin(), special_by_length_.end(),
            [&](std::int32_t a, std::int32_t b) { return tokens_[a].text.size() > tokens_[b].text.size(); });

  // Per-model strip rules llama.cpp applies around special pieces.
  std::string lname = model_name;
  for (char& c : lname) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  auto set_attr = [&](std::string_view text, std::uint32_t bit, bool on) {
    if (std::int32_t id = find(text); id != kNoToken) {
      tokens_[id].attr = on ? (tokens_[id].attr | bit) : (tokens_[id].attr & ~bit);
    }
  };
  if (pre_ == "jina-v2-de" || pre_ == "jina-v2-es" || pre_ == "jina-v2-code") {
    set_attr("<mask>", kAttrLstrip, true);
  } else if (lname.find("phi-3") != std::string::npos || lname.find("phi3") != std::string::npos) {
    for (std::int32_t id : special_by_length_) tokens_[id].attr |= kAttrRstrip;
    set_attr("</s>", kAttrRstrip, true);
    for (std::string_view s : {"<unk>", "<s>", "<|endoftext|>"}) set_attr(s, kAttrRstrip, false);
  }

  // Byte fallback ids.
  for (int b = 0; b < 256; ++b) {
    std::int32_t id = kNoToken;
    if (type_ == VocabType::SPM) {
      id = find(fmt::format("<0x{:02X}>", b));
      if (id == kNoToken) id = find(std::string(1, static_cast<char>(b)));
    } else {
      id = find(byte_to_unicode(static_cast<std::uint8_t>(b)));
    }
    byte_tokens_[b] = id;
  }

  if (type_ == VocabType::SPM) {
    for (const Token& tok : tokens_) {
      const std::string& t = tok.text;
      std::size_t prev = 0;
      for (std::size_t off = 0; off < t.size();) {
        const std::size_t len = std::min(utf8_len_from_lead(static_cast<unsigned char>(t[off])), t.size() - off);
        if (off > 0 && std::string_view(t).substr(off, len) == kSpace)
          spm_joins_space_.insert(t.substr(prev, off - prev));
        prev = off;
        off += len;
      }
    }
  }

  pieces_.resize(n);
  for (std::size_t i = 0; i < n; ++i) pieces_[i] = make_piece(static_cast<std::int32_t>(i));
}

std::string Tokenizer::make_piece(std::int32_t id) const {
  const Token& tok = tokens_[id];
  if (tok.attr & (kAttrUnknown | kAttrControl | kAttrUserDefined)) return tok.text;
  if (type_ == VocabType::BPE) {
    if (!(tok.attr & kAttrNormal)) return {};
    std::string out;
    for (std::uint32_t cpt : decode_utf8_lossy(tok.text)) {
      const int b = unicode_to_byte(cpt);
      if (b >= 0) {
        out.push_back(static_cast<char>(b));
      } else {  // not in the byte-level alphabet: llama.cpp's marker, kept for identical output
        std::string utf8;
        append_utf8(utf8, cpt);
        out += "[UNK_BYTE_0x";
        for (unsigned char c : utf8) out += fmt::format("{:02x}", c);
        out += tok.text + "]";
      }
    }
    return out;
  }
  if (tok.attr & kAttrNormal) return replace_all(tok.text, kSpace, " ");
  if (tok.attr & kAttrByte) {
    const int b = parse_byte_piece(tok.text);
    return b >= 0 ? std::string(1, static_cast<char>(b)) : std::string();
  }
  return {};
}

void Tokenizer::check_id(std::int32_t id) const {
  if (id < 0 || id >= n_vocab())
    throw InvalidArgument(fmt::format("token id {} is outside the vocabulary [0, {})", id, n_vocab()));
}

const std::string& Tokenizer::piece(std::int32_t id) const {
  check_id(id);
  return pieces_[id];
}
const std::string& Tokenizer::token_text(std::int32_t id) const {
  check_id(id);
  return tokens_[id].text;
}
TokenType Tokenizer::token_type(std::int32_t id) const {
  check_id(id);
  return tokens_[id].type;
}
float Tokenizer::score(std::int32_t id) const {
  check_id(id);
  return tokens_[id].score;
}

std::int32_t Tokenizer::find(std::string_view text) const {
  auto it = text_to_id_.find(std::string(text));
  return it == text_to_id_.end() ? kNoToken : it->second;
}

bool Tokenizer::is_eog(std::int32_t id) const {
  return id != kNoToken && std::binary_search(eog_.begin(), eog_.end(), id);
}

// ---- special-token partition --------------------------------------------------------------------

std::vector<Tokenizer::Fragment> Tokenizer::partition(std::string_view text, bool parse_special) const {
  std::vector<Fragment> frags;
  if (text.empty()) return frags;
  frags.push_back({kNoToken, 0, text.size()});
  std::vector<Fragment> next;
  auto is_space = [](char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; };
  for (std::int32_t special : special_by_length_) {
    const Token& tok = tokens_[special];
    if (!parse_special && (tok.attr & (kAttrControl | kAttrUnknown))) continue;  // user-defined: always
    const std::string_view needle = tok.text;
    next.clear();
    bool changed = false;
    for (const Fragment& f : frags) {
      if (f.token != kNoToken) {
        next.push_back(f);
        continue;
      }
      std::size_t base = f.begin, end = f.end;
      for (;;) {
        const std::size_t hit = text.substr(0, end).find(needle, base);
        if (hit == std::string_view::npos) break;
        changed = true;
        std::size_t left_end = hit;
        if (tok.attr & kAttrLstrip)
          while (left_end > base && is_space(text[left_end - 1])) --left_end;
        if (left_end > base) next.push_back({kNoToken, base, left_end});
        next.push_back({special, hit, hit + needle.size()});
        base = hit + needle.size();
        if (tok.attr & kAttrRstrip)
          while (base < end && is_space(text[base])) ++base;
      }
      if (base < end) next.push_back({kNoToken, base, end});
    }
    if (changed) frags.swap(next);
  }
  return frags;
}

// ---- encode / decode ----------------------------------------------------------------------------

std::vector<std::int32_t> Tokenizer::encode(std::string_view text, bool add_special, bool parse_special) const {
  std::vector<std::int32_t> out;
  out.reserve(text.size() / 3 + 4);
  const std::vector<Fragment> frags = partition(text, parse_special);
  switch (type_) {
    case VocabType::SPM: {
      if (add_special && add_bos_ && bos_ != kNoToken) out.push_back(bos_);
      bool prev_special = true;  // the first fragment gets the dummy-prefix space
      std::string buf;
      for (const Fragment& f : frags) {
        if (f.token != kNoToken) {
          out.push_back(f.token);
          prev_special = true;
          continue;
        }
        buf.clear();
        if (add_space_prefix_ && prev_special) buf += ' ';
        buf.append(text.substr(f.begin, f.end - f.begin));
        encode_spm(replace_all(std::move(buf), " ", kSpace), out);
        buf.clear();
        prev_special = false;
      }
      if (add_special && add_eos_ && eos_ != kNoToken) out.push_back(eos_);
      break;
    }
    case VocabType::BPE: {
      if (add_special && add_bos_ && bos_ != kNoToken) out.push_back(bos_);
      for (const Fragment& f : frags) {
        if (f.token != kNoToken) {
          out.push_back(f.token);
        } else {
          encode_bpe(text.substr(f.begin, f.end - f.begin), out);
        }
      }
      if (add_special && add_eos_ && eos_ != kNoToken) out.push_back(eos_);
      break;
    }
    case VocabType::WPM: {
      if (add_special && bos_ != kNoToken) out.push_back(bos_);
      for (const Fragment& f : frags) {
        if (f.token != kNoToken) {
          out.push_back(f.token);
        } else {
          encode_wpm(text.substr(f.begin, f.end - f.begin), out);
        }
      }
      if (add_special && sep_ != kNoToken) out.push_back(sep_);
      break;
    }
  }
  return out;
}

std::string Tokenizer::decode(std::span<const std::int32_t> ids, bool render_special) const {
  for (std::int32_t id : ids) check_id(id);
  Utf8Stream utf8;
  std::string out;
  for (std::int32_t id : ids) {
    if (!render_special && (tokens_[id].attr & (kAttrControl | kAttrUnknown))) continue;
    out += utf8.push(pieces_[id]);
  }
  out += utf8.flush();
  return out;
}

std::string StreamDecoder::push(std::int32_t id) {
  tok_.check_id(id);
  if (!render_special_ && (tok_.tokens_[id].attr & (kAttrControl | kAttrUnknown))) return {};
  return utf8_.push(tok_.pieces_[id]);
}

std::string StreamDecoder::flush() { return utf8_.flush(); }

}  // namespace g2c::tokenizer
