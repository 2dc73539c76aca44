// engine::open_model: a GGUF with its own vocabulary, a llama2.c .bin with its tokenizer found beside it
// or given, and the errors when there is none.
#include "g2c/engine/open_model.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "g2c/core/error.hpp"

namespace g2c::engine {
namespace {

namespace fs = std::filesystem;
const std::string kModels = std::string(G2C_SHARED_DIR) + "/models";

// A fresh folder per test holding symlinks to the shared files, removed afterwards.
class Folder {
 public:
  Folder() : path_(fs::path(::testing::TempDir()) / ("g2c_open_model_" + test_name())) {
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~Folder() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string link(const std::string& target, const std::string& name) const {
    fs::create_symlink(target, path_ / name);
    return (path_ / name).string();
  }
  std::string operator/(const std::string& name) const { return (path_ / name).string(); }

 private:
  static std::string test_name() { return ::testing::UnitTest::GetInstance()->current_test_info()->name(); }
  fs::path path_;
};

// The GGUF and the .bin are the same model, so their tokenizers agree (llama2.c's tok512.bin is the
// vocabulary the GGUF was converted with).
std::vector<std::int32_t> encode(const OpenedModel& m) {
  return m.tokenizer->encode("Once upon a time, there was", /*add_special=*/true, /*parse_special=*/false);
}

TEST(OpenModel, GgufCarriesItsTokenizer) {
  const OpenedModel m = open_model(kModels + "/stories260K.gguf");
  ASSERT_TRUE(m.model && m.tokenizer);
  EXPECT_NE(m.model->gguf(), nullptr);
  EXPECT_EQ(m.tokenizer_path, "");
  EXPECT_EQ(m.tokenizer->n_vocab(), m.model->hparams().n_vocab);
  EXPECT_EQ(encode(m).front(), m.tokenizer->bos_id());
  // A tokenizer given for a GGUF is not read: its own vocabulary wins.
  EXPECT_EQ(open_model(kModels + "/stories260K.gguf", "/nonexistent/tok.bin").tokenizer_path, "");
}

TEST(OpenModel, BinFindsItsTokenizerBeside) {
  const OpenedModel gguf = open_model(kModels + "/stories260K.gguf");
  const OpenedModel bin = open_model(kModels + "/stories260K.bin");  // tok512.bin lies beside it
  ASSERT_TRUE(bin.model && bin.tokenizer);
  EXPECT_EQ(bin.model->gguf(), nullptr);
  EXPECT_EQ(bin.tokenizer_path, kModels + "/tok512.bin");
  EXPECT_EQ(encode(bin), encode(gguf));

  // tokenizer.bin is looked for before tok<vocab>.bin.
  const Folder dir;
  dir.link(kModels + "/stories260K.bin", "m.bin");
  dir.link(kModels + "/tok512.bin", "tok512.bin");
  EXPECT_EQ(open_model(dir / "m.bin").tokenizer_path, dir / "tok512.bin");
  dir.link(kModels + "/tok512.bin", "tokenizer.bin");
  EXPECT_EQ(open_model(dir / "m.bin").tokenizer_path, dir / "tokenizer.bin");
}

TEST(OpenModel, BinWithTheTokenizerGiven) {
  const Folder dir;
  dir.link(kModels + "/stories260K.bin", "m.bin");
  const OpenedModel m = open_model(dir / "m.bin", kModels + "/tok512.bin");
  ASSERT_TRUE(m.tokenizer);
  EXPECT_EQ(m.tokenizer_path, kModels + "/tok512.bin");
  EXPECT_EQ(encode(m), encode(open_model(kModels + "/stories260K.gguf")));
}

TEST(OpenModel, BinWithoutTokenizerNamesEveryFileLookedFor) {
  const Folder dir;
  dir.link(kModels + "/stories260K.bin", "m.bin");
  try {
    open_model(dir / "m.bin");
    FAIL() << "no error without a tokenizer";
  } catch (const IoError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("llama2.c checkpoint " + (dir / "m.bin") + " needs its tokenizer"), std::string::npos) << msg;
    EXPECT_NE(msg.find(dir / "tokenizer.bin"), std::string::npos) << msg;
    EXPECT_NE(msg.find(dir / "tok512.bin"), std::string::npos) << msg;
  }
  try {
    open_model(dir / "m.bin", dir / "missing.bin");
    FAIL() << "no error for a missing tokenizer";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("tokenizer '" + (dir / "missing.bin") + "' not found"), std::string::npos)
        << e.what();
  }
  // Token ids alone need no tokenizer.
  const OpenedModel m = open_model(dir / "m.bin", "", TokenizerNeed::kOptional);
  ASSERT_TRUE(m.model);
  EXPECT_EQ(m.tokenizer, nullptr);
  EXPECT_EQ(m.tokenizer_path, "");
}

}  // namespace
}  // namespace g2c::engine
