// `g2c run` as a user runs it: the built binary, stdout holding only the completion, timings on stderr.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include "common/test_util.hpp"

namespace {

const std::string kBinary = std::string(G2C_BINARY_DIR) + "/apps/g2c/g2c";
const std::string kModels = std::string(G2C_SHARED_DIR) + "/models";
// ../shared/models/README.md: greedy text of stories260K after BOS (65 tokens).
const std::string kGreedyText =
    "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, "
    "she saw a big, red ball. She wanted to play with it, but it was too high.\nLily'";

struct Output {
  int status = -1;
  std::string out, err;
};

Output run(const std::string& args) {
  // A folder of this call's own: ctest -j runs these tests in parallel processes.
  const g2c::test::TempDir dir;
  const std::string err_path = dir.file("stderr.txt");
  const std::string cmd = kBinary + " run " + args + " 2>" + err_path;
  Output o;
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return o;
  char buf[4096];
  std::size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) o.out.append(buf, n);
  o.status = pclose(p);
  std::ifstream f(err_path);
  std::stringstream ss;
  ss << f.rdbuf();
  o.err = ss.str();
  return o;
}

TEST(RunCli, GreedyFromBosPrintsOnlyTheReadmeText) {
  const Output o = run("--model " + kModels + "/stories260K.gguf --temp 0 -n 65 -t 1 ''");
  ASSERT_EQ(o.status, 0) << o.err;
  EXPECT_EQ(o.out, kGreedyText);
  EXPECT_NE(o.err.find("load: "), std::string::npos) << o.err;
  EXPECT_NE(o.err.find("prompt: 1 tokens"), std::string::npos) << o.err;
  EXPECT_NE(o.err.find("generation: 65 tokens"), std::string::npos) << o.err;
  EXPECT_NE(o.err.find("tok/s"), std::string::npos) << o.err;
}

TEST(RunCli, NoKvCacheGivesTheSameText) {
  const Output o = run("--model " + kModels + "/stories260K.gguf --temp 0 -n 65 -t 1 --no-kv-cache ''");
  ASSERT_EQ(o.status, 0) << o.err;
  EXPECT_EQ(o.out, kGreedyText);
  EXPECT_NE(o.err.find("no kv cache"), std::string::npos) << o.err;
}

TEST(RunCli, PromptIsNotEchoed) {
  // "Once upon a time," encodes (BOS, space prefix) to the golden's first five ids, so the completion is
  // the golden's continuation.
  const Output o = run("--model " + kModels + "/stories260K.gguf --temp 0 -n 5 -t 1 'Once upon a time,'");
  ASSERT_EQ(o.status, 0) << o.err;
  EXPECT_EQ(o.out, " there was a little g");
  EXPECT_NE(o.err.find("prompt: 6 tokens"), std::string::npos) << o.err;
}

TEST(RunCli, LlamaTwoCCheckpointWithItsTokenizer) {
  const Output o =
      run("--model " + kModels + "/stories260K.bin --tokenizer " + kModels + "/tok512.bin --temp 0 -n 65 -t 1 ''");
  ASSERT_EQ(o.status, 0) << o.err;
  EXPECT_EQ(o.out, kGreedyText);
}

TEST(RunCli, SeededRunsRepeatAndStopStringsCut) {
  const std::string base = "--model " + kModels + "/stories260K.gguf -n 30 -t 1 --temp 1 --seed 7 ''";
  const Output a = run(base);
  const Output b = run(base);
  ASSERT_EQ(a.status, 0) << a.err;
  EXPECT_EQ(a.out, b.out);
  EXPECT_NE(a.err.find("seed 7"), std::string::npos) << a.err;
  const Output s = run("--model " + kModels + "/stories260K.gguf --temp 0 -n 65 -t 1 --stop ' little' ''");
  ASSERT_EQ(s.status, 0) << s.err;
  EXPECT_EQ(s.out, "Once upon a time, there was a");
  EXPECT_NE(s.err.find("stop: stop"), std::string::npos) << s.err;
}

TEST(RunCli, MissingModelIsOneLineAndNonZero) {
  const Output o = run("--model /nonexistent/model.gguf 'hi'");
  EXPECT_NE(o.status, 0);
  EXPECT_TRUE(o.out.empty());
  EXPECT_NE(o.err.find("g2c: error:"), std::string::npos) << o.err;
}

}  // namespace
