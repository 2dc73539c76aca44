// The reader on real files written by llama.cpp / gguf-py (../shared): every file parses, and tensor
// offsets and sizes agree with the ones gguf-py recorded in quant-goldens/goldens.json (an
// independent reader). `g2c info` exits 0 on every one of them.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "g2c/gguf/gguf.hpp"

namespace fs = std::filesystem;

namespace g2c::gguf {
namespace {

std::vector<std::string> shared_ggufs() {
  std::vector<std::string> out;
  for (const char* sub :
       {"models", "tokenizer-vectors", "tokenizer-vectors-synthetic", "arch-goldens", "quant-goldens"}) {
    fs::path dir = fs::path(G2C_SHARED_DIR) / sub;
    if (!fs::is_directory(dir)) continue;
    for (const auto& e : fs::recursive_directory_iterator(dir))
      if (e.is_regular_file() && e.path().extension() == ".gguf") out.push_back(e.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

TEST(GgufRealFiles, EverySharedFileParses) {
  auto files = shared_ggufs();
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
  auto f = File::open(std::string(G2C_SHARED_DIR) + "/models/stories260K.gguf");
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

TEST(GgufRealFiles, OffsetsMatchGgufPyRecords) {
  std::ifstream in(std::string(G2C_SHARED_DIR) + "/quant-goldens/goldens.json");
  ASSERT_TRUE(in) << "quant-goldens/goldens.json";
  auto j = nlohmann::json::parse(in);
  int checked = 0;
  for (const auto& file : j["files"]) {
    auto f = File::open(std::string(G2C_SHARED_DIR) + "/quant-goldens/" + file["file"].get<std::string>());
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

TEST(GgufRealFiles, InfoCommandExitsZeroOnEveryFile) {
  std::string g2c = std::string(G2C_BINARY_DIR) + "/apps/g2c/g2c";
  ASSERT_TRUE(fs::exists(g2c)) << g2c;
  for (const auto& p : shared_ggufs()) {
    std::string cmd = "'" + g2c + "' info '" + p + "' > /dev/null";
    EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
    cmd = "'" + g2c + "' info --json '" + p + "' > /dev/null";
    EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
  }
  // A bad file: one line on stderr, non-zero exit.
  auto bad = fs::temp_directory_path() / "g2c_bad_info.gguf";
  std::ofstream(bad) << "GGUF but not really";
  std::string out = (fs::temp_directory_path() / "g2c_bad_info.err").string();
  std::string cmd = "'" + g2c + "' info '" + bad.string() + "' 2> '" + out + "'";
  EXPECT_NE(std::system(cmd.c_str()), 0);
  std::ifstream err(out);
  std::string all((std::istreambuf_iterator<char>(err)), std::istreambuf_iterator<char>());
  EXPECT_EQ(std::count(all.begin(), all.end(), '\n'), 1) << all;
  EXPECT_NE(all.find("g2c_bad_info.gguf"), std::string::npos) << all;
  fs::remove(bad);
  fs::remove(out);
}

}  // namespace
}  // namespace g2c::gguf
