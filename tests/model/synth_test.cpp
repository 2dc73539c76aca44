// g2c synth: shapes, generator, vocabulary, and that the files load (g2c here; llama.cpp by hand, see
// docs/benchmarks.md (quantize section)). Independent checks: the generator's first values were computed by a
// separate Python implementation of the documented formula (synth.hpp), the weight statistics are
// those of N(0, 0.02), and the tokenizer keys are compared with the vocabulary file they came from.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "common/test_util.hpp"
#include "g2c/core/error.hpp"
#include "g2c/core/mmap.hpp"
#include "g2c/gguf/gguf.hpp"
#include "g2c/model/model.hpp"
#include "g2c/model/synth.hpp"
#include "g2c/quant/quant.hpp"

namespace g2c::model {
namespace {

using test::shared_path;
using test::TempDir;

const std::string kSpmVocab = shared_path("tokenizer-vectors/ggml-vocab-llama-spm.gguf");

std::vector<std::uint32_t> bits(const std::vector<float>& v) {
  std::vector<std::uint32_t> b(v.size());
  std::memcpy(b.data(), v.data(), v.size() * 4);
  return b;
}

// Values from an independent Python transcription of the formula in synth.hpp (float32 bit patterns).
TEST(SynthGenerator, MatchesDocumentedFormula) {
  std::vector<float> v(6);
  synth_row(0, "token_embd.weight", 0, 6, false, v.data());
  EXPECT_EQ(bits(v),
            (std::vector<std::uint32_t>{0xbc4737ea, 0xbd271099, 0xbc952130, 0x3cfabc7b, 0x3cabde4e, 0x3c962c59}));
  v.resize(5);
  synth_row(42, "blk.3.attn_v.weight", 7, 5, false, v.data());  // odd row length: the last sin is unused
  EXPECT_EQ(bits(v), (std::vector<std::uint32_t>{0x3b674e18, 0xbb990b45, 0x3cfc9b56, 0xbc94b9e1, 0xbc73498b}));
  v.resize(4);
  synth_row(7, "output_norm.weight", 0, 4, true, v.data());
  EXPECT_EQ(bits(v), (std::vector<std::uint32_t>{0x3f7a9dec, 0x3f817cc8, 0x3f76de34, 0x3f80f0c4}));
}

TEST(SynthGenerator, StatisticsOfNormal002) {
  constexpr int kN = 1 << 18;
  std::vector<float> v(kN);
  synth_row(1, "blk.0.ffn_up.weight", 3, kN, false, v.data());
  double s = 0, s2 = 0, s4 = 0;
  int beyond3 = 0;
  for (float x : v) s += x, s2 += double(x) * x, s4 += std::pow(double(x), 4), beyond3 += std::fabs(x) > 0.06f;
  const double mean = s / kN, var = s2 / kN - mean * mean;
  EXPECT_NEAR(mean, 0.0, 5 * 0.02 / std::sqrt(kN));
  EXPECT_NEAR(std::sqrt(var), 0.02, 0.02 * 0.01);
  EXPECT_NEAR(s4 / kN / (var * var), 3.0, 0.05);      // kurtosis of a normal
  EXPECT_NEAR(beyond3 / double(kN), 0.0027, 0.0006);  // P(|z| > 3)
  synth_row(1, "blk.0.ffn_norm.weight", 0, kN, true, v.data());
  s = 0;
  for (float x : v) s += x;
  EXPECT_NEAR(s / kN, 1.0, 0.001);
}

TEST(SynthShapes, RealShapes) {
  const auto tl = *synth_shape("tinyllama-1.1b");
  EXPECT_EQ(tl.n_embd, 2048);
  EXPECT_EQ(tl.n_layer, 22);
  EXPECT_EQ(tl.n_head, 32);
  EXPECT_EQ(tl.n_head_kv, 4);
  EXPECT_EQ(tl.n_ff, 5632);
  EXPECT_EQ(tl.n_vocab, 32000);
  std::uint64_t params = 0;
  for (const auto& t : synth_tensors(tl)) params += t.ne[0] * t.ne[1];
  EXPECT_EQ(params, 1100048384u);  // TinyLlama-1.1B's parameter count
  const auto l110 = *synth_shape("llama-110m");
  const auto t110 = synth_tensors(l110);
  EXPECT_EQ(t110.size(), 1u + 12 * 9 + 1);  // tied: no output.weight
  EXPECT_EQ(t110.back().name, "output_norm.weight");
  params = 0;
  for (const auto& t : t110) params += t.ne[0] * t.ne[1];
  EXPECT_EQ(params, 109529856u);  // llama.cpp prints "model params = 109.53 M" for the synth file
  const auto qw = *synth_shape("qwen2.5-0.5b");
  params = 0;
  for (const auto& t : synth_tensors(qw)) params += t.ne[0] * t.ne[1];
  EXPECT_EQ(params, 494032768u);  // Qwen2.5-0.5B: 0.49B
  EXPECT_EQ(synth_shape("smollm2-135m")->n_vocab, 49152);
  EXPECT_FALSE(synth_shape("gpt-5").has_value());
  for (const auto& s : synth_shapes()) EXPECT_EQ(s.like.find("tiny-test"), std::string::npos);  // hidden
}

TEST(SynthVocab, SyntheticBpeIsConsistent) {
  const auto s = *synth_shape("smollm2-135m");
  const auto v = synthetic_bpe_vocab(s);
  ASSERT_EQ(v.tokens.size(), 49152u);
  EXPECT_EQ(v.tokens[0], "<|endoftext|>");
  EXPECT_EQ(v.token_type[2], 3);
  const std::set<std::string> uniq(v.tokens.begin(), v.tokens.end());
  EXPECT_EQ(uniq.size(), v.tokens.size());
  EXPECT_EQ(v.merges.size(), 49152u - 3 - 256);
  for (std::size_t i = 0; i < v.merges.size(); i += 997) {  // each merge joins two tokens into a token
    const auto sp = v.merges[i].find(' ');
    const std::string a = v.merges[i].substr(0, sp), b = v.merges[i].substr(sp + 1);
    EXPECT_TRUE(uniq.count(a) && uniq.count(b) && uniq.count(a + b)) << v.merges[i];
  }
}

// A tiny shape with the copied llama SPM vocabulary: keys equal the source's, file loads in g2c and
// runs a forward pass; the thread count does not change a byte.
TEST(SynthModel, CopiedVocabLoadsAndRuns) {
  TempDir dir;
  SynthShape s = *synth_shape("llama-110m");
  s.like = "llama-110m-mini";
  s.n_embd = 64, s.n_layer = 2, s.n_head = 4, s.n_head_kv = 2, s.n_ff = 128;
  SynthOptions o;
  o.shape = s;
  o.ftype = FileType::MOSTLY_Q8_0;
  o.vocab_path = kSpmVocab;
  o.seed = 5;
  o.threads = 1;
  synth_model(o, dir.file("a.gguf"));
  o.threads = 2;
  synth_model(o, dir.file("b.gguf"));
  EXPECT_EQ(read_file(dir.file("a.gguf")), read_file(dir.file("b.gguf")));

  auto f = gguf::File::open(dir.file("a.gguf"));
  auto v = gguf::File::open(kSpmVocab);
  int n_tok_keys = 0;
  for (const auto& kv : v->kvs()) {
    if (kv.key.rfind("tokenizer.", 0) != 0) continue;
    ++n_tok_keys;
    const gguf::Value* got = f->find(kv.key);
    ASSERT_NE(got, nullptr) << kv.key;
    EXPECT_TRUE(*got == kv.value) << kv.key;
  }
  EXPECT_EQ(n_tok_keys, 10);
  EXPECT_EQ(f->get_int("general.file_type"), 7);
  EXPECT_EQ(f->get_int("llama.block_count"), 2);
  EXPECT_EQ(f->get_int("llama.attention.head_count_kv"), 2);
  EXPECT_EQ(f->find_tensor("output.weight"), nullptr);
  EXPECT_EQ(f->find_tensor("token_embd.weight")->type, GgmlType::Q8_0);  // tied + Q8_0 recipe: stays Q8_0
  EXPECT_EQ(f->find_tensor("blk.1.ffn_down.weight")->type, GgmlType::Q8_0);
  EXPECT_EQ(f->find_tensor("blk.1.ffn_norm.weight")->type, GgmlType::F32);
  // The stored Q8_0 rows decode to the generator's values within Q8_0's error.
  const gguf::TensorInfo* t = f->find_tensor("blk.0.attn_q.weight");
  std::vector<float> got(64), want(64);
  quant::dequantize_row(t->type, t->data + 3 * 68, got.data(), 64);
  synth_row(5, "blk.0.attn_q.weight", 3, 64, false, want.data());
  for (int i = 0; i < 64; ++i) EXPECT_NEAR(got[i], want[i], 0.001f);

  auto m = Model::load(dir.file("a.gguf"));
  EXPECT_EQ(m->hparams().n_vocab, 32000);
  EXPECT_EQ(m->hparams().n_embd, 64);
  ContextOptions co;
  co.n_ctx = 16;
  co.threads = 1;
  Context ctx(*m, co);
  ctx.decode({{1, 0, 0, false}, {450, 0, 1, true}});
  int finite = 0;
  for (float x : ctx.logits(0)) finite += std::isfinite(x);
  EXPECT_EQ(finite, 32000);
}

TEST(SynthModel, TinyTestAndOddShapeLoadInG2c) {
  TempDir dir;
  for (const char* like : {"tiny-test", "tiny-test-odd"}) {
    SCOPED_TRACE(like);
    SynthOptions o;
    o.shape = *synth_shape(like);
    o.ftype = FileType::MOSTLY_Q4_K_M;
    o.threads = 2;
    const SynthReport rep = synth_model(o, dir.file("m.gguf"));
    auto f = gguf::File::open(dir.file("m.gguf"));
    const std::string a = o.shape.arch;
    EXPECT_EQ(f->architecture(), a);
    EXPECT_EQ(f->get_int(a + ".embedding_length"), o.shape.n_embd);
    EXPECT_EQ(f->get_int(a + ".feed_forward_length"), o.shape.n_ff);
    EXPECT_EQ(f->get_int("general.file_type"), 15);
    EXPECT_EQ(f->get_int("general.quantization_version"), 2);
    ASSERT_EQ(f->tensors().size(), rep.tensors.size());
    for (const auto& t : rep.tensors) EXPECT_EQ(f->find_tensor(t.name)->type, t.type) << t.name;
    auto m = Model::load(dir.file("m.gguf"));
    EXPECT_EQ(m->hparams().n_layer, o.shape.n_layer);
  }
  SynthOptions bad;
  bad.shape = *synth_shape("llama-110m");
  bad.vocab_path = shared_path("tokenizer-vectors/ggml-vocab-gpt-2.gguf");  // 50257 tokens
  EXPECT_THROW(synth_model(bad, dir.file("bad.gguf")), InvalidArgument);
  EXPECT_FALSE(std::filesystem::exists(dir.file("bad.gguf")));
}

}  // namespace
}  // namespace g2c::model
