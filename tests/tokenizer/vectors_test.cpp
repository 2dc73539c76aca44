// Every .inp/.out case of the llama.cpp vector folders (8 real vocabularies: HF transformers ids that
// llama.cpp reproduces; 11 synthetic BPE vocabularies: ids llama.cpp c392e50 itself produced), run as
// the READMEs say: no BOS/EOS, special parsing off, inputs as raw bytes. Prints a per-vocabulary table.
// Also: the streaming decoder property on every input of every vocabulary, and the decode round trip.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>

#include "g2c/gguf/gguf.hpp"
#include "g2c/tokenizer/tokenizer.hpp"
#include "vectors.hpp"

namespace g2c::tokenizer {
namespace {

using test::all_vocab_files;
using test::read_inputs;
using test::read_outputs;

std::string show(const std::vector<int>& ids) {
  std::string s;
  for (int id : ids) s.append(1, ' ').append(std::to_string(id));
  return s;
}

// Independent strict UTF-8 check (RFC 3629: no overlongs, surrogates or > U+10FFFF).
bool valid_utf8(const std::string& s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const std::size_t n = s.size();
  for (std::size_t i = 0; i < n;) {
    const unsigned char c = p[i];
    std::size_t len;
    std::uint32_t cp;
    if (c < 0x80) {
      ++i;
      continue;
    }
    if ((c & 0xE0) == 0xC0) {
      len = 2;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4;
      cp = c & 0x07;
    } else
      return false;
    if (i + len > n) return false;
    for (std::size_t k = 1; k < len; ++k) {
      if ((p[i + k] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (p[i + k] & 0x3F);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000)) return false;
    if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += len;
  }
  return true;
}

TEST(TokenizerVectors, EveryCaseOfEveryVocabularyMatches) {
  const auto files = all_vocab_files();
  ASSERT_EQ(files.size(), 19u) << "expected 8 real + 11 synthetic vocabularies under " << g2c::test::shared_path("");
  std::printf("\n%-22s %-6s %-14s %7s %6s %7s\n", "vocabulary", "model", "pre", "n_vocab", "cases", "passed");
  int total = 0, total_pass = 0;
  for (const auto& vf : files) {
    auto file = gguf::File::open(vf.gguf.string());
    auto tok = Tokenizer::from_gguf(*file);
    const auto inputs = read_inputs(vf.gguf.string() + ".inp");
    const auto outputs = read_outputs(vf.gguf.string() + ".out");
    ASSERT_EQ(inputs.size(), 46u) << vf.name;
    ASSERT_EQ(outputs.size(), inputs.size()) << vf.name;
    int pass = 0;
    for (std::size_t i = 0; i < inputs.size(); ++i) {
      const auto ids = tok->encode(inputs[i], /*add_special=*/false, /*parse_special=*/false);
      const std::vector<int> got(ids.begin(), ids.end());
      if (got == outputs[i]) {
        ++pass;
      } else {
        ADD_FAILURE() << vf.name << " case " << i + 1 << " input '" << inputs[i] << "'\n  expected" << show(outputs[i])
                      << "\n  got     " << show(got);
      }
    }
    std::printf("%-22s %-6s %-14s %7d %6zu %7d\n", vf.name.c_str(), vocab_type_name(tok->type()),
                tok->pre().empty() ? "-" : tok->pre().c_str(), tok->n_vocab(), inputs.size(), pass);
    total += static_cast<int>(inputs.size());
    total_pass += pass;
  }
  std::printf("%-22s %-6s %-14s %7s %6d %7d\n\n", "total", "", "", "", total, total_pass);
  EXPECT_EQ(total_pass, total);
}

// Fed one id at a time, every chunk is valid UTF-8 and the chunks concatenate to the one-shot decode.
// The one-shot decode is itself checked against the input bytes where the tokenizer is lossless
// (byte-level BPE: exactly the input; SPM: the input after the dummy-prefix space).
TEST(TokenizerVectors, StreamingDecoderOnEveryInput) {
  int checked = 0, round_trips = 0;
  for (const auto& vf : all_vocab_files()) {
    auto file = gguf::File::open(vf.gguf.string());
    auto tok = Tokenizer::from_gguf(*file);
    for (const auto& input : read_inputs(vf.gguf.string() + ".inp")) {
      for (bool special : {false, true}) {
        const auto ids = tok->encode(input, /*add_special=*/special, /*parse_special=*/special);
        const std::string one_shot = tok->decode(ids);
        ASSERT_TRUE(valid_utf8(one_shot)) << vf.name;
        StreamDecoder stream(*tok);
        std::string joined;
        for (auto id : ids) {
          const std::string chunk = stream.push(id);
          ASSERT_TRUE(valid_utf8(chunk)) << vf.name << " input '" << input << "' id " << id;
          joined += chunk;
        }
        const std::string tail = stream.flush();
        ASSERT_TRUE(valid_utf8(tail)) << vf.name;
        joined += tail;
        ASSERT_EQ(joined, one_shot) << vf.name << " input '" << input << "'";
        ++checked;
        if (!special && tok->type() == VocabType::BPE) {
          EXPECT_EQ(one_shot, input) << vf.name;
          ++round_trips;
        } else if (!special && tok->type() == VocabType::SPM) {
          std::string expected;
          if (!input.empty()) expected.append(1, ' ').append(input);
          EXPECT_EQ(one_shot, expected) << vf.name;
          ++round_trips;
        }
      }
    }
  }
  EXPECT_EQ(checked, 19 * 46 * 2);
  std::printf("streaming checked on %d encodings, decode round trip on %d\n", checked, round_trips);
}

}  // namespace
}  // namespace g2c::tokenizer
