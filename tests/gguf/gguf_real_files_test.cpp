// The reader on real files written by llama.cpp / gguf-py (../shared): every file parses, and tensor
// offsets and sizes agree with the ones gguf-py recorded in quant-goldens/goldens.json (an
// independent reader). (`g2c info` on every one of them: gguf_info_cli_test.cpp.)
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/test_util.hpp"
#include "g2c/gguf/gguf.hpp"

namespace g2c::gguf {
namespace {

using test::shared_path;

TEST(GgufRealFiles, EverySharedFileParses) {
  auto files = test::shared_gguf_files();
  ASSERT_GE(files.size(), 20u) << "expected the ../shared GGUF files";
  for (const auto& p : files) {
    try {
      auto f = File::open(p);
      EXPECT_GE(f->version(), 2u) << p;
      for (const auto& t : f->tensors()) EXPECT_LE(f->data_offset() + t.offset + t.n_bytes, f->file_size()) << p;
    } catch (const std::exception& e) {
      ADD_FAILURE() << p << ": " << e.what();
    }
  }
}

TEST(GgufRealFiles, Stories260KHyperparameters) {
  // Values from ../shared/models/README.md (the llama2.c stories260K model).
  auto f = File::open(shared_path("models/stories260K.gguf"));
  EXPECT_EQ(f->architecture(), "llama");
  EXPECT_EQ(f->require_int("llama.embedding_length"), 64);
  EXPECT_EQ(f->require_int("llama.block_count"), 5);
  EXPECT_EQ(f->require_int("llama.attention.head_count"), 8);
  EXPECT_EQ(f->require_int("llama.attention.head_count_kv"), 4);
  EXPECT_EQ(f->require_int("llama.feed_forward_length"), 172);
  EXPECT_EQ(f->find("tokenizer.ggml.tokens")->size(), 512u);
  EXPECT_EQ(f->find("tokenizer.ggml.tokens")->strings()[1], "<s>");
  EXPECT_EQ(f->require_int("tokenizer.ggml.seperator_token_id"), 4294967295ll);
  const TensorInfo* t = f->find_tensor("blk.0.ffn_down.weight");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->shape_string(), "[172, 64]");
}

TEST(GgufRealFiles, CopyOfWritesTheSameBytesLlamaCppWrote) {
  // Writer::copy_of re-emits a file written by llama.cpp's converter byte for byte (same keys, types,
  // order, alignment and padding), so a copy with one key changed differs from it in that key only.
  for (const char* name : {"models/stories260K.gguf", "models/TinyStories-656K-Q8_0.gguf"}) {
    const std::string path = shared_path(name);
    const std::string original = test::read_file(path);
    const std::vector<std::uint8_t> copy = Writer::copy_of(*File::open(path)).to_bytes();
    ASSERT_EQ(copy.size(), original.size()) << name;
    EXPECT_TRUE(std::equal(copy.begin(), copy.end(), original.begin(), [](std::uint8_t a, char b) {
      return a == static_cast<std::uint8_t>(b);
    })) << name;
  }
}

TEST(GgufRealFiles, OffsetsMatchGgufPyRecords) {
  const auto j = test::load_json(shared_path("quant-goldens/goldens.json"));
  int checked = 0;
  for (const auto& file : j["files"]) {
    auto f = File::open(shared_path("quant-goldens/" + file["file"].get<std::string>()));
    EXPECT_EQ(f->file_size(), file["size"].get<std::uint64_t>());
    for (const auto& rec : file["tensors"]) {
      const TensorInfo* t = f->find_tensor(rec["name"].get<std::string>());
      ASSERT_NE(t, nullptr) << rec["name"];
      EXPECT_STREQ(type_name(t->type), rec["type"].get<std::string>().c_str());
      EXPECT_EQ(static_cast<std::uint32_t>(t->type), rec["type_id"].get<std::uint32_t>());
      EXPECT_EQ(t->n_bytes, rec["n_bytes"].get<std::uint64_t>());
      EXPECT_EQ(f->data_offset() + t->offset, rec["data_offset"].get<std::uint64_t>());
      EXPECT_EQ(t->ne[0], rec["ne"][0].get<std::int64_t>());
      ++checked;
    }
  }
  EXPECT_GE(checked, 100);
}

}  // namespace
}  // namespace g2c::gguf
