// `g2c info` as a user runs it, on every GGUF file of ../shared and on a malformed one. A binary of its
// own, so the reader's tests build without the g2c command (make test-asan-parsers).
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>

#include "common/test_util.hpp"

namespace g2c::gguf {
namespace {

using test::run_g2c;

TEST(GgufRealFiles, InfoCommandExitsZeroOnEveryFile) {
  ASSERT_TRUE(std::filesystem::exists(test::g2c_binary())) << test::g2c_binary();
  for (const auto& p : test::shared_gguf_files()) {
    EXPECT_EQ(run_g2c({"info", p}).code, 0) << "g2c info " << p;
    EXPECT_EQ(run_g2c({"info", "--json", p}).code, 0) << "g2c info --json " << p;
  }
  // A bad file: one line on stderr, non-zero exit.
  test::TempDir dir;
  const std::string bad = dir.file("g2c_bad_info.gguf");
  std::ofstream(bad) << "GGUF but not really";
  const test::RunResult r = run_g2c({"info", bad});
  EXPECT_NE(r.code, 0);
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_NE(r.err.find("g2c_bad_info.gguf"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace g2c::gguf
