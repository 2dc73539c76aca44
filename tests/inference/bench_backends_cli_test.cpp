// `g2c bench-backends` as a user runs it: the built binary on two local backends (the same model as GGUF
// and as llama2.c .bin), its table on stdout and its JSON / CSV / SVG files.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/test_util.hpp"
#include "g2c/core/mmap.hpp"

namespace g2c {
namespace {

using test::RunResult;
using test::shared_path;
using test::TempDir;

RunResult bench_backends(std::vector<std::string> args) {
  args.insert(args.begin(), "bench-backends");
  return test::run_g2c(args);
}

TEST(BenchBackendsCli, TwoLocalBackendsTableAndFiles) {
  TempDir dir;
  std::ofstream(dir.file("prompts.txt")) << "# three prompts\nOnce upon a time\nThe little dog\n\nTom and Sue went\n";
  const std::string prefix = dir.file("report");
  const RunResult o =
      bench_backends({"--backend", "local:" + shared_path("models/stories260K.gguf"), "--backend",
                      "local:" + shared_path("models/stories260K.bin"), "--prompts", dir.file("prompts.txt"), "-n", "8",
                      "--runs", "2", "--stream", "--temp", "0", "-t", "1", "--out", prefix});
  ASSERT_EQ(o.code, 0) << o.err << o.out;
  EXPECT_NE(o.out.find("local:stories260K.gguf"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("local:stories260K.bin"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("p99 ms"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("TTFT p50"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("cold start local:stories260K.bin: construct"), std::string::npos) << o.out;
  EXPECT_NE(o.err.find("machine: "), std::string::npos) << o.err;

  const nlohmann::json j = nlohmann::json::parse(read_file(prefix + ".json"));
  ASSERT_EQ(j["results"].size(), 2u);
  for (const auto& r : j["results"]) {
    EXPECT_EQ(r["n"], 6);  // 3 prompts x 2 runs
    EXPECT_EQ(r["metadata"]["max_new_tokens"], 8);
  }
  // Greedy: the same model in two containers writes the same completions, request by request.
  const auto& a = j["results"][0]["results"];
  const auto& b = j["results"][1]["results"];
  ASSERT_EQ(a.size(), b.size());
  for (std::size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a[i]["completion"], b[i]["completion"]) << i;

  const std::string csv = read_file(prefix + ".csv");
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 1 + 2 * 6) << csv;
  const std::string svg = read_file(prefix + ".svg");
  EXPECT_NE(svg.find("<svg"), std::string::npos);
  EXPECT_NE(svg.find("stories260K.bin"), std::string::npos);
}

// Cached vs naive in one table (the `local-naive:` spec), with the drift line of each backend.
TEST(BenchBackendsCli, CachedAndNaiveSideBySideWithDrift) {
  TempDir dir;
  std::ofstream(dir.file("p.txt")) << "Once upon a time\n";
  const std::string model = shared_path("models/stories260K.gguf");
  const RunResult o =
      bench_backends({"--backend", "local:" + model, "--backend", "local-naive:" + model, "--prompts",
                      dir.file("p.txt"), "-n", "16", "--runs", "3", "--temp", "0", "-t", "1", "--out", dir.file("r")});
  ASSERT_EQ(o.code, 0) << o.err << o.out;
  EXPECT_NE(o.out.find("local:stories260K.gguf"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("local-naive:stories260K.gguf"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("drift local:stories260K.gguf: first 1 p50"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("drift local-naive:stories260K.gguf: first 1 p50"), std::string::npos) << o.out;
  const nlohmann::json j = nlohmann::json::parse(read_file(dir.file("r") + ".json"));
  ASSERT_EQ(j["results"].size(), 2u);
  EXPECT_FALSE(j["results"][0]["results"][0]["metadata"]["naive"].get<bool>());
  EXPECT_TRUE(j["results"][1]["results"][0]["metadata"]["naive"].get<bool>());
  EXPECT_EQ(j["results"][0]["results"][0]["completion"], j["results"][1]["results"][0]["completion"]);
  EXPECT_EQ(j["results"][1]["drift"]["first_third"]["n"], 1);
}

TEST(BenchBackendsCli, BadSpecIsOneLineAndNonZero) {
  const RunResult o = bench_backends({"--backend", "nokind"});
  EXPECT_NE(o.code, 0);
  EXPECT_NE(o.err.find("backend spec 'nokind'"), std::string::npos) << o.err;
}

TEST(BenchBackendsCli, UnreachableServerFailsButKeepsTheOthers) {
  TempDir dir;
  std::ofstream(dir.file("p.txt")) << "Once upon a time\n";
  // Port 9 (discard) on loopback: connection refused, quickly.
  const RunResult o = bench_backends({"--backend", "local:" + shared_path("models/stories260K.gguf"), "--backend",
                                      "ollama:m@http://127.0.0.1:9", "--prompts", dir.file("p.txt"), "-n", "4",
                                      "--runs", "1", "--timeout", "2", "--out", ""});
  EXPECT_NE(o.code, 0);
  EXPECT_NE(o.out.find("local:stories260K.gguf"), std::string::npos) << o.out << o.err;
  EXPECT_NE(o.err.find("ollama:m@http://127.0.0.1:9"), std::string::npos) << o.err;
}

}  // namespace
}  // namespace g2c
