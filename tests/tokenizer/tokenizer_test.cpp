// Tokenizer behaviour beyond the vector files: llama2.c tokenizer.bin vs its GGUF twin, special-token
// parsing, metadata defaults, end-of-generation ids, bad input and thread safety (the g2c tokenize command:
// tokenize_cli_test.cpp).
//
// Bad input, the documented behaviour (also in tokenizer.hpp):
//  * invalid UTF-8: SPM turns each byte it cannot place into its <0xNN> byte token; BPE and WordPiece
//    see each byte where no well-formed sequence starts as U+FFFD (llama.cpp's rule), so BPE gives the
//    ids of "\xEF\xBF\xBD" there and WordPiece drops it;
//  * NUL bytes are ordinary characters (SPM: <0x00>; byte-level BPE: the alphabet's U+0100);
//  * the empty string gives no ids, or only the BOS/EOS (CLS/SEP) that add_special asks for;
//  * a 10 MB input is encoded in one call and decodes back to itself;
//  * ids outside the vocabulary make decode/piece/StreamDecoder throw InvalidArgument.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <thread>

#include "common/goldens.hpp"
#include "g2c/core/error.hpp"
#include "g2c/gguf/gguf.hpp"
#include "g2c/tokenizer/pretokenizer.hpp"
#include "g2c/tokenizer/tokenizer.hpp"
#include "g2c/tokenizer/tokenizer_internal.hpp"
#include "vectors.hpp"

namespace g2c::tokenizer {
namespace {

namespace fs = std::filesystem;
using Ids = std::vector<std::int32_t>;

const fs::path kShared = g2c::test::shared_path("");
const fs::path kVectors = kShared / "tokenizer-vectors";
const fs::path kSynth = kShared / "tokenizer-vectors-synthetic";

std::unique_ptr<Tokenizer> load(const fs::path& p) {
  auto f = gguf::File::open(p.string());
  return Tokenizer::from_gguf(*f);
}

std::vector<std::string> vector_inputs() { return test::read_inputs(kVectors / "ggml-vocab-gpt-2.gguf.inp"); }

// ---- llama2.c tokenizer.bin ----------------------------------------------------------------------

TEST(TokenizerLlama2c, Tok512MatchesStories260KGguf) {
  auto bin = Tokenizer::from_llama2c((kShared / "models" / "tok512.bin").string(), 512);
  auto gguf = load(kShared / "models" / "stories260K.gguf");
  ASSERT_EQ(bin->n_vocab(), 512);
  ASSERT_EQ(gguf->n_vocab(), 512);
  // Same vocabulary after undoing export()'s spelling: texts, scores and types.
  for (int id = 0; id < 512; ++id) {
    EXPECT_EQ(bin->token_text(id), gguf->token_text(id)) << id;
    EXPECT_EQ(bin->score(id), gguf->score(id)) << id;
    EXPECT_EQ(bin->token_type(id), gguf->token_type(id)) << id;
  }
  EXPECT_EQ(bin->bos_id(), 1);
  EXPECT_EQ(bin->eos_id(), 2);
  EXPECT_TRUE(bin->add_bos());
  // Identical ids on every vector input, in every mode.
  int compared = 0;
  for (const auto& input : vector_inputs()) {
    for (bool special : {false, true}) {
      EXPECT_EQ(bin->encode(input, special, special), gguf->encode(input, special, special)) << input;
      ++compared;
    }
  }
  EXPECT_EQ(compared, 92);
}

// The greedy sample of stories260K from ../shared/models/README.md (independent float64 reference,
// also llama2.c's doc/stories260K.md): its first 65 ids decode to the documented text.
TEST(TokenizerLlama2c, DecodesTheDocumentedStories260KSample) {
  const Ids ids = g2c::test::kStories260KGreedyIds;
  const std::string expected = " " + g2c::test::kStories260KGreedyText;
  auto bin = Tokenizer::from_llama2c((kShared / "models" / "tok512.bin").string(), 512);
  auto gguf = load(kShared / "models" / "stories260K.gguf");
  EXPECT_EQ(bin->decode(ids), expected);
  EXPECT_EQ(gguf->decode(ids), expected);
  // BOS is a control token: nothing unless asked for.
  Ids with_bos = {1, 403};
  EXPECT_EQ(gguf->decode(with_bos), " Once");
  EXPECT_EQ(gguf->decode(with_bos, /*render_special=*/true), "<s> Once");
}

TEST(TokenizerLlama2c, CountReadToEndAndTruncationIsAFormatError) {
  auto all = Tokenizer::from_llama2c((kShared / "models" / "tok512.bin").string(), 0);
  EXPECT_EQ(all->n_vocab(), 512);
  EXPECT_THROW(Tokenizer::from_llama2c((kShared / "models" / "tok512.bin").string(), 513), FormatError);
  EXPECT_THROW(Tokenizer::from_llama2c("/nonexistent/tok.bin", 512), Error);
}

// SPM cuts the text where no merge can cross (encode.cpp); it must give exactly the ids of llama.cpp's
// single queue over the whole fragment, also for a vocabulary whose pieces carry U+2581 inside
// (TinyStories-656K: "was\u2581a\u2581").
TEST(TokenizerSpm, ChunkedEqualsWholeFragmentMerging) {
  std::string mixed;
  for (const auto& s : vector_inputs()) mixed += s + " ";
  for (int i = 0; i < 20; ++i)
    mixed += "Once upon a time, there was a little girl named Lily. She was a happy girl.  \n";
  int compared = 0;
  for (const fs::path& p :
       {kVectors / "ggml-vocab-llama-spm.gguf", kVectors / "ggml-vocab-phi-3.gguf",
        kShared / "models" / "stories260K.gguf", kShared / "models" / "TinyStories-656K-Q8_0.gguf"}) {
    auto t = load(p);
    std::vector<std::string> texts = vector_inputs();
    texts.push_back(mixed);
    for (const auto& text : texts) {
      g_spm_chunking = true;
      const Ids chunked = t->encode(text, true, true);
      g_spm_chunking = false;
      const Ids whole = t->encode(text, true, true);
      g_spm_chunking = true;
      EXPECT_EQ(chunked, whole) << p << " '" << text << "'";
      ++compared;
    }
  }
  EXPECT_EQ(compared, 4 * 47);
}

// ---- metadata ------------------------------------------------------------------------------------

TEST(TokenizerMetadata, DefaultsAndKeysFollowLlamaCpp) {
  auto spm = load(kVectors / "ggml-vocab-llama-spm.gguf");
  EXPECT_EQ(spm->type(), VocabType::SPM);
  EXPECT_TRUE(spm->add_bos());
  EXPECT_TRUE(spm->add_space_prefix());  // no key in the file: the SPM default
  EXPECT_EQ(spm->bos_id(), 1);
  EXPECT_EQ(spm->eos_id(), 2);
  EXPECT_EQ(spm->unk_id(), 0);
  EXPECT_EQ(spm->encode("Hello world", true, false), (Ids{1, 15043, 3186}));

  auto gpt2 = load(kVectors / "ggml-vocab-gpt-2.gguf");
  EXPECT_EQ(gpt2->type(), VocabType::BPE);
  EXPECT_EQ(gpt2->pre(), "gpt-2");
  EXPECT_FALSE(gpt2->add_bos());
  EXPECT_EQ(gpt2->encode("Hello world", true, true), (Ids{15496, 995}));
  EXPECT_TRUE(gpt2->is_eog(50256));

  auto bert = load(kVectors / "ggml-vocab-bert-bge.gguf");
  EXPECT_EQ(bert->type(), VocabType::WPM);
  EXPECT_EQ(bert->sep_id(), 102);
  EXPECT_EQ(bert->encode(" Hello World!", true, false), (Ids{101, 7592, 2088, 999, 102}));

  // llama-bpe: add_bos defaults to true for this pre type (the file has no add_bos key).
  auto l3 = load(kSynth / "ggml-vocab-synth-llama-bpe.gguf");
  EXPECT_TRUE(l3->add_bos());
  EXPECT_EQ(l3->encode("Hello world", true, false), (Ids{3268, 3257, 3261}));
  auto def = load(kSynth / "ggml-vocab-synth-default.gguf");
  EXPECT_EQ(def->pre(), "default");
  EXPECT_FALSE(def->add_bos());
}

TEST(TokenizerMetadata, MisspelledSeparatorKeyAndOutOfRangeIds) {
  gguf::Writer w;
  w.set("general.architecture", gguf::Value::str("bert"));
  w.set("tokenizer.ggml.model", gguf::Value::str("bert"));
  w.set("tokenizer.ggml.tokens", gguf::Value::array_str({"[PAD]", "[UNK]", "[CLS]", "[SEP]", "\xE2\x96\x81hi", "x"}));
  w.set("tokenizer.ggml.unknown_token_id", gguf::Value::u32(1));
  w.set("tokenizer.ggml.bos_token_id", gguf::Value::u32(2));
  w.set("tokenizer.ggml.seperator_token_id", gguf::Value::u32(3));
  w.set("tokenizer.ggml.padding_token_id", gguf::Value::u32(4294967295u));  // "none" in files
  const auto bytes = w.to_bytes();
  auto f = gguf::File::parse(bytes, "mini-bert");
  auto t = Tokenizer::from_gguf(*f);
  EXPECT_EQ(t->sep_id(), 3);
  EXPECT_EQ(t->pad_id(), 0);  // out of range: the bert default stays
  EXPECT_EQ(t->encode("hi hix !", true, false), (Ids{2, 4, 4, 5, 1, 3}));
}

TEST(TokenizerMetadata, UnknownModelOrPreIsRefused) {
  gguf::Writer w;
  w.set("tokenizer.ggml.model", gguf::Value::str("gpt2"));
  w.set("tokenizer.ggml.pre", gguf::Value::str("no-such-pre"));
  w.set("tokenizer.ggml.tokens", gguf::Value::array_str({"a", "b"}));
  w.set("tokenizer.ggml.merges", gguf::Value::array_str({"a b"}));
  auto bytes = w.to_bytes();
  auto f = gguf::File::parse(bytes, "bad-pre");
  EXPECT_THROW(Tokenizer::from_gguf(*f), UnsupportedError);
  w.set("tokenizer.ggml.model", gguf::Value::str("t5"));
  bytes = w.to_bytes();
  f = gguf::File::parse(bytes, "t5");
  EXPECT_THROW(Tokenizer::from_gguf(*f), UnsupportedError);
  w.set("tokenizer.ggml.model", gguf::Value::str("gpt2"));
  w.set("tokenizer.ggml.pre", gguf::Value::str("gpt-2"));
  w.remove("tokenizer.ggml.merges");
  bytes = w.to_bytes();
  f = gguf::File::parse(bytes, "no-merges");
  EXPECT_THROW(Tokenizer::from_gguf(*f), FormatError);
}

// ---- special tokens and end of generation --------------------------------------------------------

TEST(TokenizerSpecial, ControlPiecesParsedOnlyWhenAsked) {
  auto t = load(kSynth / "ggml-vocab-synth-qwen2.gguf");
  const std::int32_t im_start = t->find("<|im_start|>"), im_end = t->find("<|im_end|>");
  ASSERT_EQ(im_start, 3270);
  ASSERT_EQ(im_end, 3271);
  const std::string text = "<|im_start|>user\nHello<|im_end|>";
  const Ids on = t->encode(text, false, true);
  ASSERT_GE(on.size(), 3u);
  EXPECT_EQ(on.front(), im_start);
  EXPECT_EQ(on.back(), im_end);
  // Between the specials, exactly the ids of the plain text.
  Ids middle = t->encode("user\nHello", false, false);
  EXPECT_EQ(Ids(on.begin() + 1, on.end() - 1), middle);
  const Ids off = t->encode(text, false, false);
  EXPECT_EQ(std::count(off.begin(), off.end(), im_start), 0);
  EXPECT_EQ(t->decode(off), text);  // plain text: round trip
  EXPECT_EQ(t->decode(on), "user\nHello");
  EXPECT_EQ(t->decode(on, true), text);
}

TEST(TokenizerSpecial, SpmDummyPrefixAfterSpecialAndPhi3Rstrip) {
  auto t = load(kVectors / "ggml-vocab-phi-3.gguf");
  const std::int32_t user = t->find("<|user|>"), end = t->find("<|end|>");
  ASSERT_NE(user, kNoToken);
  ASSERT_NE(end, kNoToken);
  // The text after a special piece gets the dummy-prefix space again (llama.cpp is_prev_special), and
  // phi-3 strips whitespace right of its special pieces.
  const Ids ids = t->encode("<|user|>\nHello<|end|>", true, true);
  Ids expected = {t->bos_id(), user};
  for (auto id : t->encode("Hello", false, false)) expected.push_back(id);
  expected.push_back(end);
  EXPECT_EQ(ids, expected);
  EXPECT_TRUE(t->is_eog(end));
  EXPECT_TRUE(t->is_eog(t->find("<|endoftext|>")));
  EXPECT_FALSE(t->is_eog(user));
}

TEST(TokenizerSpecial, EndOfGenerationSet) {
  auto t = load(kSynth / "ggml-vocab-synth-chatglm-bpe.gguf");
  EXPECT_TRUE(t->is_eog(3269));  // eos <|endoftext|>
  EXPECT_TRUE(t->is_eog(3271));  // <|im_end|>, found by text
  EXPECT_FALSE(t->is_eog(3268));
  EXPECT_FALSE(t->is_eog(3270));
  EXPECT_FALSE(t->is_eog(kNoToken));
  EXPECT_EQ(t->bos_id(), 3268);  // chatglm-bpe clears the default, the key sets it again
}

// ---- pre-tokenizer translation ---------------------------------------------------------------------

TEST(TokenizerPreTokenizer, TranslationAndSplitSemantics) {
  EXPECT_EQ(translate_pattern(R"(\s+$)").substr(0, 1), "[");
  EXPECT_NE(translate_pattern(R"(\s+$)").find("\\z"), std::string::npos);
  // Unmatched stretches stay pieces: GPT-2 has no bare \s+ alternative.
  PreTokenizer gpt2(pre_tokenizer_info("gpt-2").patterns);
  const std::string text = "a\tb  c\u3000d";
  std::vector<std::string> pieces;
  for (auto [b, e] : gpt2.split(text)) pieces.push_back(text.substr(b, e - b));
  EXPECT_EQ(pieces, (std::vector<std::string>{"a", "\t", "b", " ", " c", "\u3000", "d"}));
  PreTokenizer deepseek(pre_tokenizer_info("deepseek-llm").patterns);
  const std::string t2 = "x \n";  // "\s+$" ends at the piece's end only
  pieces.clear();
  for (auto [b, e] : deepseek.split(t2)) pieces.push_back(t2.substr(b, e - b));
  EXPECT_EQ(pieces, (std::vector<std::string>{"x", " ", "\n"}));
  EXPECT_THROW(pre_tokenizer_info("gpt-4o"), UnsupportedError);
}

// Every pre value compiles (PCRE2 + JIT), and its split covers each vector input exactly, in order,
// with no empty piece. The issue's list is checked by name, so a missing one fails here.
TEST(TokenizerPreTokenizer, EveryKnownValueCompilesAndCoversTheText) {
  const auto names = known_pre_tokenizers();
  for (const char* required :
       {"default", "llama-bpe", "gpt-2", "falcon", "deepseek-llm", "deepseek-coder", "starcoder", "refact", "mpt",
        "qwen2", "command-r", "smollm", "stablelm2", "phi-2", "chatglm-bpe", "tekken", "bloom", "poro-chat"})
    EXPECT_NE(std::find(names.begin(), names.end(), required), names.end()) << required;
  for (const auto& name : names) {
    PreTokenizer pt(pre_tokenizer_info(name).patterns);
    for (const auto& input : vector_inputs()) {
      std::uint32_t at = 0;
      for (auto [b, e] : pt.split(input)) {
        ASSERT_EQ(b, at) << name;
        ASSERT_LT(b, e) << name;
        at = e;
      }
      EXPECT_EQ(at, input.size()) << name;
    }
  }
}

// ---- bad input -------------------------------------------------------------------------------------

TEST(TokenizerBadInput, EmptyString) {
  auto spm = load(kVectors / "ggml-vocab-llama-spm.gguf");
  auto bpe = load(kVectors / "ggml-vocab-gpt-2.gguf");
  auto wpm = load(kVectors / "ggml-vocab-bert-bge.gguf");
  EXPECT_TRUE(spm->encode("", false, true).empty());
  EXPECT_EQ(spm->encode("", true, true), (Ids{1}));
  EXPECT_TRUE(bpe->encode("", true, true).empty());
  EXPECT_EQ(wpm->encode("", true, true), (Ids{101, 102}));
  EXPECT_EQ(spm->decode(Ids{}), "");
  StreamDecoder s(*spm);
  EXPECT_EQ(s.flush(), "");
}

TEST(TokenizerBadInput, InvalidUtf8) {
  auto spm = load(kVectors / "ggml-vocab-llama-spm.gguf");
  auto bpe = load(kVectors / "ggml-vocab-gpt-2.gguf");
  auto wpm = load(kVectors / "ggml-vocab-bert-bge.gguf");
  // SPM: byte tokens (<0xFF> = 0xFF + 3), and decoding gives the bytes back, sanitized.
  EXPECT_EQ(spm->encode("\xFF", false, false), (Ids{29871, 0xFF + 3}));
  EXPECT_EQ(spm->decode(spm->encode("a\xFF", false, false)), " a\xEF\xBF\xBD");
  // BPE: a bad byte is U+FFFD.
  EXPECT_EQ(bpe->encode("x\xC3(y", false, false), bpe->encode("x\xEF\xBF\xBD(y", false, false));
  EXPECT_EQ(bpe->encode("\xE2\x82", false, false), bpe->encode("\xEF\xBF\xBD\xEF\xBF\xBD", false, false));
  // WordPiece: dropped, the word continues.
  EXPECT_EQ(wpm->encode("hel\x80lo", false, false), wpm->encode("hello", false, false));
  for (const char* bad : {"\xC0\xAF", "\xED\xA0\x80", "\xF4\x90\x80\x80", "\xF8", "abc\xE2\x82"}) {
    for (Tokenizer* t : {spm.get(), bpe.get(), wpm.get()}) {
      const Ids ids = t->encode(bad, true, true);
      const std::string out = t->decode(ids);
      EXPECT_EQ(out, sanitize_utf8(out));  // valid UTF-8
    }
  }
  // A character split across byte tokens is held back by the stream decoder until complete.
  StreamDecoder s(*spm);
  EXPECT_EQ(s.push(0xE2 + 3), "");
  EXPECT_EQ(s.push(0x82 + 3), "");
  EXPECT_EQ(s.push(0xAC + 3), "\xE2\x82\xAC");
  EXPECT_EQ(s.push(0xE2 + 3), "");
  EXPECT_EQ(s.flush(), "\xEF\xBF\xBD");  // never completed
  EXPECT_EQ(spm->decode(Ids{0xE2 + 3, 0x41 + 3}),
            "\xEF\xBF\xBD"
            "A");
}

TEST(TokenizerBadInput, NulBytes) {
  const std::string text("a\0b\0", 4);
  auto spm = load(kVectors / "ggml-vocab-llama-spm.gguf");
  auto bpe = load(kVectors / "ggml-vocab-gpt-2.gguf");
  auto wpm = load(kVectors / "ggml-vocab-bert-bge.gguf");
  const Ids s = spm->encode(text, false, false);
  EXPECT_EQ(std::count(s.begin(), s.end(), 3), 2);  // <0x00> is id 3
  EXPECT_EQ(spm->decode(s), std::string(" ") + text);
  EXPECT_EQ(bpe->decode(bpe->encode(text, false, false)), text);
  EXPECT_EQ(wpm->encode(text, false, false), wpm->encode("ab", false, false));
}

TEST(TokenizerBadInput, TenMegabytes) {
  std::string big;
  const auto inputs = vector_inputs();
  while (big.size() < 10u * 1000 * 1000)
    for (const auto& s : inputs) big += s;
  for (const char* name : {"ggml-vocab-llama-spm.gguf", "ggml-vocab-gpt-2.gguf", "ggml-vocab-bert-bge.gguf"}) {
    auto t = load(kVectors / name);
    const auto t0 = std::chrono::steady_clock::now();
    const Ids ids = t->encode(big, false, false);
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("%s: %zu bytes -> %zu ids in %.2f s\n", name, big.size(), ids.size(), secs);
    EXPECT_GT(ids.size(), big.size() / 10) << name;
    if (t->type() == VocabType::BPE) {
      EXPECT_EQ(t->decode(ids), big);
    } else if (t->type() == VocabType::SPM) {
      EXPECT_EQ(t->decode(ids), std::string(" ") + big);
    }
  }
  auto tekken = load(kSynth / "ggml-vocab-synth-tekken.gguf");
  const std::string letters(10u * 1000 * 1000, 'a');  // one 10 MB pre-token under a backtracking pattern
  EXPECT_EQ(tekken->decode(tekken->encode(letters, false, false)), letters);
}

TEST(TokenizerBadInput, IdsOutsideTheVocabulary) {
  auto t = load(kVectors / "ggml-vocab-gpt-2.gguf");
  EXPECT_THROW(t->decode(Ids{15496, 50257}), InvalidArgument);
  EXPECT_THROW(t->piece(-1), InvalidArgument);
  StreamDecoder s(*t);
  EXPECT_THROW(s.push(1 << 30), InvalidArgument);
}

// ---- threads -----------------------------------------------------------------------------------------

TEST(TokenizerThreads, OneTokenizerManyThreads) {
  auto t = load(kSynth / "ggml-vocab-synth-tekken.gguf");
  const auto inputs = vector_inputs();
  std::vector<Ids> expected;
  for (const auto& s : inputs) expected.push_back(t->encode(s, true, true));
  std::vector<int> mismatches(8, 0);
  std::vector<std::thread> threads;
  for (int k = 0; k < 8; ++k) {
    threads.emplace_back([&, k] {
      for (int rep = 0; rep < 20; ++rep)
        for (std::size_t i = 0; i < inputs.size(); ++i)
          if (t->encode(inputs[i], true, true) != expected[i]) ++mismatches[k];
    });
  }
  for (auto& th : threads) th.join();
  for (int m : mismatches) EXPECT_EQ(m, 0);
}

}  // namespace
}  // namespace g2c::tokenizer
