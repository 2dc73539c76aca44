// `g2c run` with --grammar-file / --json-schema / --format json, as a user runs it: constrained output
// on stdout, the grammar's state on stderr, one-line errors for a bad grammar, an unsupported schema
// keyword and a vocabulary that cannot spell the grammar.
#include <gtest/gtest.h>

#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "common/test_util.hpp"

namespace g2c {
namespace {

const std::string kModel = test::shared_path("models/stories260K.gguf");

TEST(RunGrammarCli, FormatJsonAndSchemaConstrainStdout) {
  test::RunResult r =
      test::run_g2c({"run", "-m", kModel, "--format", "json", "-n", "400", "-s", "3", "Once upon a time"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out.substr(0, 1), "{");
  if (r.err.find("grammar complete") != std::string::npos) {
    EXPECT_TRUE(nlohmann::json::parse(r.out).is_object());
  }
  test::TempDir dir;
  const std::string schema = dir.file("s.json");
  std::ofstream(schema) << R"({"type":"object","properties":{"ok":{"type":"boolean"},"n":{"type":"integer"}},
                             "required":["ok","n"],"additionalProperties":false})";
  r = test::run_g2c({"run", "-m", kModel, "--json-schema", schema, "-s", "4", "Once upon a time"});
  ASSERT_EQ(r.code, 0) << r.err;
  const auto doc = nlohmann::json::parse(r.out);
  EXPECT_TRUE(doc["ok"].is_boolean());
  EXPECT_TRUE(doc["n"].is_number_integer());
  EXPECT_NE(r.err.find("; grammar complete"), std::string::npos) << r.err;
  // Cut by -n: printed as is, and stderr says so.
  r = test::run_g2c({"run", "-m", kModel, "--json-schema", schema, "-n", "2", "Once upon a time"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("stop: max_tokens"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("; grammar incomplete"), std::string::npos) << r.err;
}

TEST(RunGrammarCli, ErrorsAreOneLineNamingTheProblem) {
  test::TempDir dir;
  const std::string bad = dir.file("bad.gbnf");
  std::ofstream(bad) << "root ::= \"a\"\nx ::= [a-\n";
  test::RunResult r = test::run_g2c({"run", "-m", kModel, "--grammar-file", bad, "x"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "g2c: error: " + bad + ": grammar:2:7: unterminated character class\n");
  const std::string schema = dir.file("s.json");
  std::ofstream(schema) << R"({"type":"string","pattern":"^a"})";
  r = test::run_g2c({"run", "-m", kModel, "--json-schema", schema, "x"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "g2c: error: " + schema + ": json schema: unsupported keyword(s): pattern (at #)\n");
  r = test::run_g2c({"run", "-m", test::shared_path("models/TinyStories-656K-Q8_0.gguf"), "--format", "json", "x"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("cannot produce \"{\""), std::string::npos) << r.err;
  r = test::run_g2c({"run", "-m", kModel, "--format", "yaml", "x"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("--format: expected \"json\""), std::string::npos) << r.err;
}

}  // namespace
}  // namespace g2c
