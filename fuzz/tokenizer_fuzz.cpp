// libFuzzer target: tokenizer encode + streaming decode on every vocabulary type, loaded once at start-up:
// SPM (llama-spm, stories260K), WordPiece (bert-bge), and byte-level BPE with every pre-tokenizer family
// (the synthetic vocabularies of ../shared/tokenizer-vectors-synthetic; the families that have no file
// there get the synthetic vocabulary with its tokenizer.ggml.pre value rewritten), plus the real GPT-2.
//
// Input: byte 0 picks the vocabulary, byte 1 the flags (bit 0 add_special, bit 1 parse_special, bit 2
// render_special, bit 3: the rest is a sequence of 16-bit token ids instead of text); the rest is the text
// (any bytes: invalid UTF-8 included).
//
// Properties beyond "no crash, no sanitizer report":
//  * every id is in [0, n_vocab); decode() is valid UTF-8;
//  * streaming: every StreamDecoder chunk is valid UTF-8 and the chunks plus flush() equal decode();
//  * round trip, for valid UTF-8 text encoded without special handling (add_special = parse_special = false,
//    render_special = false): byte-level BPE decode(encode(x)) == x (the byte alphabet is lossless);
//    SPM with byte-fallback tokens decode(encode(x)) == " " + x (the dummy-prefix space; x when x is empty
//    or the vocabulary has no add_space_prefix) when x has no U+2581 (SPM's space marker, which decodes as a
//    space: lossy by design). WordPiece is lossy (lower-casing, accent stripping,
//    whitespace) and has no round trip: only the streaming property is checked there.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "fuzz_common.hpp"
#include "g2c/core/error.hpp"
#include "g2c/gguf/gguf.hpp"
#include "g2c/tokenizer/tokenizer.hpp"

namespace {

using g2c::tokenizer::StreamDecoder;
using g2c::tokenizer::Tokenizer;
using g2c::tokenizer::VocabType;

struct Vocab {
  std::string name;
  std::unique_ptr<Tokenizer> tok;
  bool spm_lossless = false;  // SPM with <0xNN> byte tokens
};

std::vector<std::uint8_t> read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) g2c::fuzz::property_failed("cannot read a vocabulary (set G2C_SHARED_DIR)", path);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

// The GGUF bytes with the string value of tokenizer.ggml.pre replaced by `pre` (the key is followed by its
// u32 type and u64 length, little-endian).
std::vector<std::uint8_t> with_pre(const std::vector<std::uint8_t>& in, const std::string& pre) {
  static const std::string key = "tokenizer.ggml.pre";
  const auto it = std::search(in.begin(), in.end(), key.begin(), key.end());
  if (it == in.end()) g2c::fuzz::property_failed("no tokenizer.ggml.pre in the synthetic vocabulary");
  const std::size_t at = static_cast<std::size_t>(it - in.begin()) + key.size() + 4;  // the value's length
  std::uint64_t old_len = 0;
  std::memcpy(&old_len, in.data() + at, 8);
  std::vector<std::uint8_t> out(in.begin(), in.begin() + static_cast<std::ptrdiff_t>(at));
  const std::uint64_t len = pre.size();
  out.insert(out.end(), reinterpret_cast<const std::uint8_t*>(&len), reinterpret_cast<const std::uint8_t*>(&len) + 8);
  out.insert(out.end(), pre.begin(), pre.end());
  out.insert(out.end(), in.begin() + static_cast<std::ptrdiff_t>(at + 8 + old_len), in.end());
  return out;
}

std::vector<Vocab>& vocabs() {
  static std::vector<Vocab> v = [] {
    std::vector<Vocab> out;
    const std::string shared = g2c::fuzz::shared_dir();
    auto add = [&](const std::string& name, const std::vector<std::uint8_t>& bytes) {
      auto file = g2c::gguf::File::parse(std::span<const std::uint8_t>(bytes.data(), bytes.size()), name);
      Vocab voc{name, Tokenizer::from_gguf(*file)};
      voc.spm_lossless = voc.tok->type() == VocabType::SPM && voc.tok->find("<0x41>") != g2c::tokenizer::kNoToken;
      out.push_back(std::move(voc));
    };
    for (const char* f : {"tokenizer-vectors/ggml-vocab-llama-spm.gguf", "models/stories260K.gguf",
                          "tokenizer-vectors/ggml-vocab-bert-bge.gguf", "tokenizer-vectors/ggml-vocab-gpt-2.gguf"})
      add(f, read_file(shared + "/" + f));
    const std::string synth = shared + "/tokenizer-vectors-synthetic/ggml-vocab-synth-";
    for (const char* pre : {"default", "llama-bpe", "qwen2", "stablelm2", "command-r", "smollm", "phi-2", "bloom",
                            "poro-chat", "chatglm-bpe", "tekken"})
      add(std::string("synth-") + pre, read_file(synth + pre + ".gguf"));
    // The pre-tokenizer families with no synthetic file: the same vocabulary under another pre value.
    const auto base = read_file(synth + "qwen2.gguf");  // "default" has no pre key to rewrite
    for (const char* pre : {"deepseek-llm", "deepseek-coder", "deepseek-v3", "falcon", "starcoder", "viking",
                            "chameleon", "gpt-2", "jais", "exaone", "gpt3-finnish", "default"})
      add(std::string("synth-as-") + pre, with_pre(base, pre));
    return out;
  }();
  return v;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  vocabs();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  auto& all = vocabs();
  const Vocab& v = all[data[0] % all.size()];
  const Tokenizer& tok = *v.tok;
  const bool add_special = data[1] & 1, parse_special = data[1] & 2, render_special = data[1] & 4;
  const bool ids_mode = data[1] & 8;
  const std::string text(reinterpret_cast<const char*>(data + 2), size - 2);

  std::vector<std::int32_t> ids;
  if (ids_mode) {
    for (std::size_t i = 0; i + 1 < text.size(); i += 2)
      ids.push_back(
          static_cast<std::int32_t>((static_cast<std::uint8_t>(text[i]) | static_cast<std::uint8_t>(text[i + 1]) << 8) %
                                    static_cast<unsigned>(tok.n_vocab())));
  } else {
    ids = tok.encode(text, add_special, parse_special);
  }
  for (auto id : ids) G2C_FUZZ_CHECK(id >= 0 && id < tok.n_vocab(), v.name);

  const std::string one_shot = tok.decode(ids, render_special);
  G2C_FUZZ_CHECK(g2c::fuzz::valid_utf8(one_shot), v.name);
  StreamDecoder stream(tok, render_special);
  std::string joined;
  for (auto id : ids) {
    const std::string chunk = stream.push(id);
    G2C_FUZZ_CHECK(g2c::fuzz::valid_utf8(chunk), v.name);
    joined += chunk;
  }
  const std::string tail = stream.flush();
  G2C_FUZZ_CHECK(g2c::fuzz::valid_utf8(tail), v.name);
  joined += tail;
  G2C_FUZZ_CHECK(joined == one_shot, v.name + ": stream '" + joined + "' decode '" + one_shot + "'");

  if (!ids_mode && !add_special && !parse_special && !render_special && g2c::fuzz::valid_utf8(text)) {
    if (tok.type() == VocabType::BPE) {
      G2C_FUZZ_CHECK(one_shot == text, v.name + ": decode '" + one_shot + "'");
    } else if (v.spm_lossless && text.find("\xE2\x96\x81") == std::string::npos) {
      const std::string expected = (text.empty() || !tok.add_space_prefix() ? "" : " ") + text;
      G2C_FUZZ_CHECK(one_shot == expected, v.name + ": decode '" + one_shot + "'");
    }
  }
  return 0;
}
