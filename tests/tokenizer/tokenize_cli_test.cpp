// `g2c tokenize` as a user runs it: the built binary against the llama.cpp tokenizer vectors. A binary
// of its own, so the tokenizer's own tests build without the g2c command (make test-asan-parsers).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "common/test_util.hpp"
#include "vectors.hpp"

namespace g2c::tokenizer {
namespace {

using g2c::test::run_g2c;
using g2c::test::shared_path;

TEST(TokenizerCli, TokenizeIdsMatchesTheVector) {
  ASSERT_TRUE(std::filesystem::exists(g2c::test::g2c_binary())) << g2c::test::g2c_binary();
  const std::string model = shared_path("tokenizer-vectors/ggml-vocab-gpt-2.gguf");
  // Case 12 of the vector file: "Hello world" -> 15496 995.
  g2c::test::RunResult r =
      run_g2c({"tokenize", "--model", model, "--ids", "--no-bos", "--no-parse-special", "Hello world"});
  EXPECT_EQ(r.out, "[15496, 995]\n");
  EXPECT_EQ(r.code, 0);
  // From a file, read as bytes: the long stress case of the llama-spm vectors, against its .out line.
  const std::string spm = shared_path("tokenizer-vectors/ggml-vocab-llama-spm.gguf");
  const auto inputs = test::read_inputs(spm + ".inp");
  const auto outputs = test::read_outputs(spm + ".out");
  g2c::test::TempDir dir;
  const std::string text = dir.file("case.txt");
  std::ofstream(text, std::ios::binary) << inputs.back();
  std::string expected = "[";
  for (std::size_t i = 0; i < outputs.back().size(); ++i)
    expected += (i ? ", " : "") + std::to_string(outputs.back()[i]);
  expected += "]\n";
  EXPECT_EQ(run_g2c({"tokenize", "-m", spm, "--ids", "--no-bos", "-f", text}).out, expected);
  // Defaults: BOS added; an empty text is valid.
  r = run_g2c({"tokenize", "-m", shared_path("models/stories260K.gguf"), "--ids", ""});
  EXPECT_EQ(r.out, "[1]\n");
  EXPECT_EQ(r.code, 0);
  // Failure: one line on stderr, non-zero exit.
  EXPECT_NE(run_g2c({"tokenize", "-m", "/nonexistent/model.gguf", "--ids", "x"}).code, 0);
}

}  // namespace
}  // namespace g2c::tokenizer
