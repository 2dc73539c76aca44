// The README's promise for every command: bad input is one line on stderr and exit status 1, whether the
// command line itself is wrong (an unknown command or option, a missing required one) or what it names
// is; --help still prints the usage and exits 0.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "common/test_util.hpp"

namespace g2c {
namespace {

using test::run_g2c;

void expect_one_line_error(const std::vector<std::string>& args, const std::string& names) {
  const test::RunResult r = run_g2c(args);
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_EQ(r.err.rfind("g2c: error: ", 0), 0u) << r.err;
  EXPECT_NE(r.err.find(names), std::string::npos) << r.err;
  EXPECT_TRUE(r.out.empty()) << r.out;
}

TEST(CliErrors, BadCommandLinesAreOneLineAndExitOne) {
  expect_one_line_error({"nosuchcmd"}, "unknown command 'nosuchcmd' (commands: info, tokenize");
  expect_one_line_error({}, "subcommand");
  expect_one_line_error({"run", "-m", "x.gguf", "--bogus", "x"}, "--bogus");
  expect_one_line_error({"run", "hello"}, "--model");
  expect_one_line_error({"bench", "-m", "x.gguf", "-t", "two"}, "two");
}

TEST(CliErrors, BadFilesAreOneLineAndExitOne) {
  expect_one_line_error({"info", "no-such-file.gguf"}, "no-such-file.gguf");
}

TEST(CliErrors, HelpStillExitsZero) {
  const test::RunResult r = run_g2c({"--help"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("run"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace g2c
