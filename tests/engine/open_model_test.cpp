// engine::open_model: a GGUF with its own vocabulary, a llama2.c .bin with its tokenizer found beside it
// or given, and the errors when there is none.
#include "g2c/engine/open_model.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "common/test_util.hpp"
#include "g2c/core/error.hpp"

namespace g2c::engine {
namespace {

namespace fs = std::filesystem;
const std::string kModels = test::shared_path("models");

using test::TempDir;

// A symlink `name` in `dir` to one of the shared files.
std::string link(const TempDir& dir, const std::string& target, const std::string& name) {
  fs::create_symlink(target, dir.path() / name);
  return dir.file(name);
}

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
  const TempDir dir;
  link(dir, kModels + "/stories260K.bin", "m.bin");
  link(dir, kModels + "/tok512.bin", "tok512.bin");
  EXPECT_EQ(open_model(dir.file("m.bin")).tokenizer_path, dir.file("tok512.bin"));
  link(dir, kModels + "/tok512.bin", "tokenizer.bin");
  EXPECT_EQ(open_model(dir.file("m.bin")).tokenizer_path, dir.file("tokenizer.bin"));
}

TEST(OpenModel, BinWithTheTokenizerGiven) {
  const TempDir dir;
  link(dir, kModels + "/stories260K.bin", "m.bin");
  const OpenedModel m = open_model(dir.file("m.bin"), kModels + "/tok512.bin");
  ASSERT_TRUE(m.tokenizer);
  EXPECT_EQ(m.tokenizer_path, kModels + "/tok512.bin");
  EXPECT_EQ(encode(m), encode(open_model(kModels + "/stories260K.gguf")));
}

TEST(OpenModel, BinWithoutTokenizerNamesEveryFileLookedFor) {
  const TempDir dir;
  link(dir, kModels + "/stories260K.bin", "m.bin");
  try {
    open_model(dir.file("m.bin"));
    FAIL() << "no error without a tokenizer";
  } catch (const IoError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("llama2.c checkpoint " + dir.file("m.bin") + " needs its tokenizer"), std::string::npos) << msg;
    EXPECT_NE(msg.find(dir.file("tokenizer.bin")), std::string::npos) << msg;
    EXPECT_NE(msg.find(dir.file("tok512.bin")), std::string::npos) << msg;
  }
  try {
    open_model(dir.file("m.bin"), dir.file("missing.bin"));
    FAIL() << "no error for a missing tokenizer";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("tokenizer '" + dir.file("missing.bin") + "' not found"), std::string::npos)
        << e.what();
  }
  // Token ids alone need no tokenizer.
  const OpenedModel m = open_model(dir.file("m.bin"), "", TokenizerNeed::kOptional);
  ASSERT_TRUE(m.model);
  EXPECT_EQ(m.tokenizer, nullptr);
  EXPECT_EQ(m.tokenizer_path, "");
}

}  // namespace
}  // namespace g2c::engine
