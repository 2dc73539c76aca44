// The architecture table against files it did not write: for each model of ../shared/arch-goldens, the
// tensors (names and GGUF shapes) that the table gives its architecture and hyperparameters are exactly
// the tensor list goldens.json records for the file that llama.cpp loaded; and the table's key names
// are the keys those files carry.
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <tuple>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/test_util.hpp"
#include "g2c/gguf/gguf.hpp"
#include "g2c/model/arch/arch.hpp"

namespace g2c::model {
namespace {

const std::string kGoldens = test::shared_path("arch-goldens/");

nlohmann::json goldens() { return test::load_json(kGoldens + "goldens.json"); }

using Entry = std::tuple<std::string, std::int64_t, std::int64_t>;  // name, ne[0], ne[1] (1 for vectors)

// What the table says a file of this architecture holds: every required tensor, and the optional ones
// the golden says are there (tied embeddings: no output.weight; Llama 3 rope: rope_freqs.weight).
std::set<Entry> table_tensors(const ArchSpec& spec, const HParams& hp, const std::set<std::string>& present) {
  std::set<Entry> out;
  for (const TensorSpec& ts : tensor_specs()) {
    if (spec.has(ts.id) == Has::kNo) continue;
    for (std::int64_t il = ts.per_layer ? 0 : -1; il < (ts.per_layer ? hp.n_layer : 0); ++il) {
      const std::string name = tensor_name(ts.id, il);
      if (spec.has(ts.id) == Has::kOptional && !present.count(name)) continue;
      out.insert({name, dim_size(ts.n_in, hp), dim_size(ts.n_out, hp)});
    }
  }
  return out;
}

TEST(ArchTable, TensorListsOfTheGoldenModels) {
  const nlohmann::json g = goldens();
  int checked = 0;
  for (const auto& m : g["models"]) {
    SCOPED_TRACE(m["file"].get<std::string>());
    const ArchSpec* spec = find_arch(m["arch"].get<std::string>());
    ASSERT_NE(spec, nullptr);
    const auto& h = m["hparams"];
    HParams hp;
    hp.n_vocab = h["n_vocab"], hp.n_embd = h["n_embd"], hp.n_layer = h["n_layer"], hp.n_ff = h["n_ff"];
    hp.n_head = h["n_head"], hp.n_head_kv = h["n_head_kv"], hp.head_dim = h["head_dim"];
    hp.n_ctx_train = h["n_ctx_train"], hp.n_rot = hp.head_dim;
    std::set<Entry> golden;
    std::set<std::string> names;
    for (const auto& t : m["tensors"]) {
      const auto& ne = t[2];
      golden.insert(
          {t[0].get<std::string>(), ne[0].get<std::int64_t>(), ne.size() > 1 ? ne[1].get<std::int64_t>() : 1});
      names.insert(t[0].get<std::string>());
    }
    EXPECT_EQ(table_tensors(*spec, hp, names), golden);
    EXPECT_EQ(names.count("output.weight") == 0, h["tied_embeddings"].get<bool>());
    ++checked;
  }
  EXPECT_EQ(checked, 7);
}

TEST(ArchTable, KeyNamesAreTheFilesKeys) {
  const nlohmann::json g = goldens();
  for (const auto& m : g["models"]) {
    SCOPED_TRACE(m["file"].get<std::string>());
    auto f = gguf::File::open(kGoldens + m["file"].get<std::string>());
    const ArchSpec* spec = find_arch(f->architecture());
    ASSERT_NE(spec, nullptr);
    for (Key k :
         {Key::kContextLength, Key::kEmbeddingLength, Key::kBlockCount, Key::kFeedForwardLength, Key::kHeadCount})
      EXPECT_NE(f->find(key_name(spec->name, k)), nullptr) << key_name(spec->name, k);
    const Key eps = spec->norm == NormType::kRms ? Key::kLayerNormRmsEps : Key::kLayerNormEps;
    EXPECT_NE(f->find(key_name(spec->name, eps)), nullptr) << key_name(spec->name, eps);
    if (spec->rope != RopeType::kNone) {
      EXPECT_NE(f->find(key_name(spec->name, Key::kRopeFreqBase)), nullptr);
    }
  }
}

TEST(ArchTable, Lookups) {
  EXPECT_EQ(find_arch("qwen2")->arch, Arch::kQwen2);
  EXPECT_EQ(find_arch("falcon"), nullptr);
  EXPECT_EQ(supported_arch_names(), "llama, qwen2, gpt2");
  EXPECT_EQ(tensor_name(Tensor::kAttnV, 7), "blk.7.attn_v.weight");
  EXPECT_EQ(tensor_name(Tensor::kOutput), "output.weight");
  EXPECT_EQ(key_name("gpt2", Key::kLayerNormEps), "gpt2.attention.layer_norm_epsilon");
  for (const ArchSpec& a : arch_specs()) {
    EXPECT_EQ(&arch_spec(a.arch), &a);
    EXPECT_EQ(a.has(Tensor::kTokEmbd), Has::kRequired) << a.name;
  }
}

}  // namespace
}  // namespace g2c::model
