#include "g2c/tokenizer/pretokenizer.hpp"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "g2c/core/error.hpp"

namespace g2c::tokenizer {
namespace {

// The patterns of llama.cpp c392e50 src/llama-vocab.cpp (llm_tokenizer_bpe). Raw strings, so one
// backslash here is one backslash in the regex. llama.cpp writes some characters literally: the CR/LF
// inside some classes are written \r \n here, and every non-ASCII character as PCRE2's \x{...} with
// its exact code point (a literal copy could be silently NFC-normalised, e.g. U+1FD3 -> U+0390).
constexpr const char* kGpt2 = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S))";
constexpr const char* kLlama3 =
    R"((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr const char* kQwen2 =
    R"((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr const char* kDeepseekLetters =
    R"(\s?[A-Za-z\x{B5}\x{C0}-\x{D6}\x{D8}-\x{F6}\x{F8}-\x{1BA}\x{1BC}-\x{1BF}\x{1C4}-\x{293}\x{295}-\x{2AF}\x{370}-\x{373}\x{376}\x{377}\x{37B}-\x{37D}\x{37F}\x{386}\x{388}-\x{38A}\x{38C}\x{38E}-\x{3A1}\x{3A3}-\x{3F5}\x{3F7}-\x{481}\x{48A}-\x{52F}\x{531}-\x{556}\x{10A0}-\x{10C5}\x{13A0}-\x{13F5}\x{13F8}-\x{13FD}\x{1C90}-\x{1CBA}\x{1CBD}-\x{1CBF}\x{1D00}-\x{1D2B}\x{1D6B}-\x{1D77}\x{1D79}-\x{1D9A}\x{1E00}-\x{1F15}\x{1F18}-\x{1F1D}\x{1F20}-\x{1F45}\x{1F48}-\x{1F4D}\x{1F50}-\x{1F57}\x{1F59}\x{1F5B}\x{1F5D}\x{1F5F}-\x{1F7D}\x{1F80}-\x{1FB4}\x{1FB6}-\x{1FBC}\x{1FBE}\x{1FC2}-\x{1FC4}\x{1FC6}-\x{1FCC}\x{1FD0}-\x{1FD3}\x{1FD6}-\x{1FDB}\x{1FE0}-\x{1FEC}\x{1FF2}-\x{1FF4}\x{1FF6}-\x{1FFC}\x{2102}\x{2107}\x{210A}-\x{2113}\x{2115}\x{2119}-\x{211D}\x{2124}\x{2126}\x{2128}\x{212A}-\x{212D}\x{212F}-\x{2134}\x{2139}\x{213C}-\x{213F}\x{2145}-\x{2149}\x{214E}\x{2183}\x{2184}\x{2C00}-\x{2C7B}\x{2C7E}-\x{2CE4}\x{2CEB}-\x{2CEE}\x{2CF2}\x{2CF3}\x{A640}-\x{A66D}\x{A680}-\x{A69B}\x{A722}-\x{A76F}\x{A771}-\x{A787}\x{A78B}-\x{A78E}\x{AB70}-\x{ABBF}\x{FB00}-\x{FB06}\x{FB13}-\x{FB17}\x{FF21}-\x{FF3A}\x{FF41}-\x{FF5A}\x{10400}-\x{1044F}\x{104B0}-\x{104D3}\x{104D8}-\x{104FB}\x{10C80}-\x{10CB2}\x{10CC0}-\x{10CF2}\x{118A0}-\x{118DF}\x{1E900}-\x{1E943}]+)";
constexpr const char* kDeepseekPunct =
    R"(\s?[!-/:-~\x{FF01}-\x{FF0F}\x{FF1A}-\x{FF5E}\x{2018}-\x{201F}\x{3000}-\x{3002}]+)";
constexpr const char* kDeepseekCjk = R"([\x{4E00}-\x{9FA5}\x{800}-\x{4E00}\x{AC00}-\x{D7FF}]+)";
constexpr const char* kTekken =
    R"([^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))*((?=[\p{L}])([^A-Z]))+|[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))+((?=[\p{L}])([^A-Z]))*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr const char* kBloom = R"( ?[^(\s|.,!?\x{2026}\x{3002}\x{FF0C}\x{3001}\x{964}\x{6D4}\x{60C})]+)";

// Unicode White_Space, the set llama.cpp's \s means (its hand-written matchers use it directly; its
// std::regex paths map non-ASCII White_Space to \v first). PCRE2's own \s differs (U+180E).
constexpr const char* kWhiteSpaceItems =
    R"(\t-\r \x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000})";

enum class Family {
  kDefault,
  kLlama3,
  kDeepseekLlm,
  kDeepseek3,
  kDeepseekCoder,
  kFalcon,
  kStarcoder,
  kGpt2,
  kQwen2,
  kBloom,
  kChatglm4,
  kViking,
  kTekken,
  kChameleon,
};

std::vector<std::string> family_patterns(Family f) {
  switch (f) {
    case Family::kLlama3:
    case Family::kChatglm4: return {kLlama3};
    case Family::kDeepseekLlm:
      return {R"([\r\n])", kDeepseekLetters, kDeepseekPunct, R"(\s+$)", kDeepseekCjk, R"(\p{N}+)"};
    case Family::kDeepseek3:
      return {
          R"(\p{N}{1,3})", R"([\x{4E00}-\x{9FA5}\x{3040}-\x{309F}\x{30A0}-\x{30FF}]+)",
          R"([!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)"};
    case Family::kDeepseekCoder: return {R"([\r\n])", R"(\s?\p{L}+)", R"(\s?\p{P}+)", kDeepseekCjk, R"(\p{N})"};
    case Family::kFalcon: return {R"([\p{P}\$\+<=>\^~\|`]+)", kGpt2, R"([0-9][0-9][0-9])"};
    case Family::kStarcoder: return {R"(\p{N})", kGpt2};
    case Family::kGpt2: return {kGpt2};
    case Family::kQwen2: return {kQwen2};
    case Family::kBloom: return {kBloom};
    case Family::kViking: return {kBloom, R"(\p{N})"};
    case Family::kTekken: return {kTekken};
    case Family::kChameleon:
      return {R"(<sentinel:[0-9]+>)",    R"((IMGIMG)((A|B|C|D|E|F|G|H|I){1,4})Z)",
              R"(([\t\n]|    |  ))",     R"(\p{N})",
              R"([\p{P}!-/:-@\[-`{-~])", kGpt2};
    case Family::kDefault: break;
  }
  return {R"([\p{P}\$\+<=>\^~\|]+)", kGpt2, R"(\p{N}+)", R"([0-9][0-9][0-9])"};
}

struct PreEntry {
  const char* name;
  Family family;
  bool ignore_merges;
  bool add_bos;
  bool clear_bos;
};

// Every pre value llama.cpp c392e50 accepts (llama_vocab::impl::load), with the flags that change
// encoding. clean_spaces only affects llama.cpp's detokenizer, which g2c does not imitate.
constexpr PreEntry kPreTable[] = {
    {"default", Family::kDefault, false, false, false},
    {"llama3", Family::kLlama3, true, true, false},
    {"llama-v3", Family::kLlama3, true, true, false},
    {"llama-bpe", Family::kLlama3, true, true, false},
    {"falcon3", Family::kLlama3, true, true, false},
    {"deepseek-llm", Family::kDeepseekLlm, false, false, false},
    {"deepseek-coder", Family::kDeepseekCoder, false, false, false},
    {"deepseek-v3", Family::kDeepseek3, false, false, false},
    {"falcon", Family::kFalcon, false, false, false},
    {"mpt", Family::kGpt2, false, false, false},
    {"starcoder", Family::kStarcoder, false, false, false},
    {"gpt-2", Family::kGpt2, false, false, false},
    {"phi-2", Family::kGpt2, false, false, false},
    {"jina-es", Family::kGpt2, false, false, false},
    {"jina-de", Family::kGpt2, false, false, false},
    {"gigachat", Family::kGpt2, false, false, false},
    {"jina-v1-en", Family::kGpt2, false, false, false},
    {"jina-v2-es", Family::kGpt2, false, false, false},
    {"jina-v2-de", Family::kGpt2, false, false, false},
    {"jina-v2-code", Family::kGpt2, false, false, false},
    {"roberta-bpe", Family::kGpt2, false, false, false},
    {"refact", Family::kStarcoder, false, false, false},
    {"command-r", Family::kStarcoder, false, false, false},
    {"qwen2", Family::kQwen2, false, false, false},
    {"deepseek-r1-qwen", Family::kQwen2, false, false, false},
    {"stablelm2", Family::kQwen2, false, false, false},
    {"olmo", Family::kGpt2, false, false, false},
    {"dbrx", Family::kLlama3, false, false, false},
    {"smaug-bpe", Family::kLlama3, false, false, false},
    {"poro-chat", Family::kBloom, false, false, false},
    {"chatglm-bpe", Family::kChatglm4, false, false, true},
    {"viking", Family::kViking, false, false, false},
    {"jais", Family::kGpt2, false, false, false},
    {"tekken", Family::kTekken, true, true, false},
    {"smollm", Family::kStarcoder, false, false, false},
    {"codeshell", Family::kStarcoder, false, false, false},
    {"bloom", Family::kBloom, false, false, false},
    {"gpt3-finnish", Family::kBloom, false, false, false},
    {"exaone", Family::kStarcoder, false, false, false},
    {"chameleon", Family::kChameleon, false, true, false},
    {"minerva-7b", Family::kStarcoder, false, false, false},
    {"megrez", Family::kQwen2, false, false, false},
};

// Per-thread PCRE2 state: a JIT stack larger than the 32 KiB default, so a long run of letters
// under a backtracking pattern (tekken) cannot exhaust it. Shared by every PreTokenizer on the thread.
struct ThreadMatchState {
  pcre2_match_context* context = nullptr;
  pcre2_jit_stack* stack = nullptr;
  ThreadMatchState() {
    context = pcre2_match_context_create(nullptr);
    stack = pcre2_jit_stack_create(64 * 1024, 256 * 1024 * 1024, nullptr);
    if (context && stack) pcre2_jit_stack_assign(context, nullptr, stack);
  }
  ~ThreadMatchState() {
    if (stack) pcre2_jit_stack_free(stack);
    if (context) pcre2_match_context_free(context);
  }
};

ThreadMatchState& thread_match_state() {
  thread_local ThreadMatchState state;
  return state;
}

}  // namespace

PreTokenizerInfo pre_tokenizer_info(const std::string& pre) {
  const std::string key = pre.empty() ? "default" : pre;
  for (const auto& e : kPreTable) {
    if (key == e.name) {
      PreTokenizerInfo info;
      info.name = key;
      info.patterns = family_patterns(e.family);
      info.ignore_merges = e.ignore_merges;
      info.add_bos = e.add_bos;
      info.clear_bos = e.clear_bos;
      return info;
    }
  }
  throw UnsupportedError("unknown pre-tokenizer type tokenizer.ggml.pre = '" + pre + "'");
}

std::vector<std::string> known_pre_tokenizers() {
  std::vector<std::string> names;
  for (const auto& e : kPreTable) names.emplace_back(e.name);
  return names;
}

std::string translate_pattern(const std::string& pattern) {
  // Tekken's "a letter that is not a-z" is written as a lookahead plus a class inside a repeated
  // group; PCRE2 needs a backtracking frame per repetition of such a group, so a long word exhausts
  // the JIT stack. The same set as one class ([^\P{L}a-z] = letters minus a-z) matches identically.
  std::string p = pattern;
  for (auto [from, to] : {std::pair<std::string_view, std::string_view>{R"(((?=[\p{L}])([^a-z])))", R"([^\P{L}a-z])"},
                          {R"(((?=[\p{L}])([^A-Z])))", R"([^\P{L}A-Z])"}}) {
    for (std::size_t at; (at = p.find(from)) != std::string::npos;) p.replace(at, from.size(), to);
  }
  std::string out;
  out.reserve(p.size() + 64);
  bool in_class = false;
  for (std::size_t i = 0; i < p.size(); ++i) {
    const char c = p[i];
    if (c == '\\' && i + 1 < p.size()) {
      const char n = p[i + 1];
      if (n == 's') {
        out += in_class ? std::string(kWhiteSpaceItems) : "[" + std::string(kWhiteSpaceItems) + "]";
      } else if (n == 'S' && !in_class) {
        out += "[^" + std::string(kWhiteSpaceItems) + "]";
      } else if (n == 'S') {
        throw UnsupportedError("pre-tokenizer pattern uses \\S inside a class: " + p);
      } else {
        out += c;
        out += n;
      }
      ++i;
      continue;
    }
    if (!in_class && c == '[') {
      in_class = true;
      out += c;
      // A ']' or '^]' right after '[' is literal in both syntaxes.
      if (i + 1 < p.size() && p[i + 1] == '^') out += p[++i];
      if (i + 1 < p.size() && p[i + 1] == ']') out += p[++i];
      continue;
    }
    if (in_class && c == ']') in_class = false;
    if (!in_class && c == '$' && i + 1 == p.size()) {
      out += "\\z";  // ECMAScript $ is the end of the piece only; PCRE2's would also match before a final \n
      continue;
    }
    out += c;
  }
  return out;
}

struct PreTokenizer::Compiled {
  pcre2_code* code = nullptr;
  ~Compiled() {
    if (code) pcre2_code_free(code);
  }
};

PreTokenizer::PreTokenizer(const std::vector<std::string>& patterns) {
  for (const auto& pattern : patterns) {
    const std::string translated = translate_pattern(pattern);
    int err = 0;
    PCRE2_SIZE err_offset = 0;
    auto compiled = std::make_unique<Compiled>();
    compiled->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(translated.data()), translated.size(),
                                   PCRE2_UTF | PCRE2_UCP, &err, &err_offset, nullptr);
    if (!compiled->code) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(err, msg, sizeof(msg));
      throw Error("pre-tokenizer pattern does not compile at offset " + std::to_string(err_offset) + ": " +
                  reinterpret_cast<const char*>(msg) + " (pattern: " + pattern + ")");
    }
    // JIT is an optimisation: when unavailable pcre2_match falls back to the interpreter.
    pcre2_jit_compile(compiled->code, PCRE2_JIT_COMPLETE);
    passes_.push_back(std::move(compiled));
  }
}

PreTokenizer::~PreTokenizer() = default;

std::vector<std::pair<std::uint32_t, std::uint32_t>> PreTokenizer::split(std::string_view text) const {
  using Piece = std::pair<std::uint32_t, std::uint32_t>;
  std::vector<Piece> pieces;
  if (text.empty()) return pieces;
  pieces.emplace_back(0, static_cast<std::uint32_t>(text.size()));
  ThreadMatchState& state = thread_match_state();
  const auto* subject_base = reinterpret_cast<PCRE2_SPTR>(text.data());
  std::vector<Piece> next;
  for (const auto& pass : passes_) {
    pcre2_match_data* md = pcre2_match_data_create_from_pattern(pass->code, nullptr);
    if (!md) throw Error("out of memory for PCRE2 match data");
    next.clear();
    next.reserve(pieces.size() * 2);
    for (const Piece& piece : pieces) {
      // The piece is the whole subject, so lookaheads and \z stop at its end, as in llama.cpp.
      PCRE2_SPTR subject = subject_base + piece.first;
      const PCRE2_SIZE length = piece.second - piece.first;
      PCRE2_SIZE pos = 0;
      PCRE2_SIZE unmatched_from = 0;
      while (pos < length) {
        const int rc = pcre2_match(pass->code, subject, length, pos, PCRE2_NO_UTF_CHECK, md, state.context);
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) {
          pcre2_match_data_free(md);
          PCRE2_UCHAR msg[256];
          pcre2_get_error_message(rc, msg, sizeof(msg));
          throw Error(std::string("pre-tokenizer match failed: ") + reinterpret_cast<const char*>(msg));
        }
        const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
        const PCRE2_SIZE ms = ov[0], me = ov[1];
        if (me == ms) {  // no llama.cpp pattern matches empty; step over one character to be safe
          pos = ms + 1;
          while (pos < length && (subject[pos] & 0xC0) == 0x80) ++pos;
          continue;
        }
        if (ms > unmatched_from) next.emplace_back(piece.first + unmatched_from, piece.first + ms);
        next.emplace_back(piece.first + ms, piece.first + me);
        unmatched_from = me;
        pos = me;
      }
      if (unmatched_from < length) next.emplace_back(piece.first + unmatched_from, piece.second);
    }
    pcre2_match_data_free(md);
    pieces.swap(next);
  }
  return pieces;
}

}  // namespace g2c::tokenizer
