// `g2c bench-backends` as a user runs it: the built binary on two local backends (the same model as GGUF
// and as llama2.c .bin), its table on stdout and its JSON / CSV / SVG files.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <unistd.h>

#include <nlohmann/json.hpp>

namespace {
namespace fs = std::filesystem;

const std::string kBinary = std::string(G2C_BINARY_DIR) + "/apps/g2c/g2c";
const std::string kModels = std::string(G2C_SHARED_DIR) + "/models";

struct Output {
  int status = -1;
  std::string out, err;
};

std::string slurp(const fs::path& p) {
  std::ifstream f(p);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// A path of this test alone: ctest runs the cases of this binary side by side, and other checkouts
// on the machine run the same cases in the same temp folder.
fs::path scratch(const std::string& name) {
  const ::testing::TestInfo* t = ::testing::UnitTest::GetInstance()->current_test_info();
  return fs::path(::testing::TempDir()) / (name + "_" + t->name() + "_" + std::to_string(::getpid()));
}

Output run(const std::string& args) {
  const std::string err_path = scratch("g2c_bench_backends_stderr").string();
  const std::string cmd = kBinary + " bench-backends " + args + " 2>" + err_path;
  Output o;
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return o;
  char buf[4096];
  std::size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) o.out.append(buf, n);
  o.status = pclose(p);
  o.err = slurp(err_path);
  fs::remove(err_path);
  return o;
}

TEST(BenchBackendsCli, TwoLocalBackendsTableAndFiles) {
  const fs::path dir = scratch("g2c_bench_backends_cli");
  fs::remove_all(dir);
  fs::create_directories(dir);
  std::ofstream(dir / "prompts.txt") << "# three prompts\nOnce upon a time\nThe little dog\n\nTom and Sue went\n";
  const std::string prefix = (dir / "report").string();
  const Output o = run("--backend local:" + kModels + "/stories260K.gguf --backend local:" + kModels +
                       "/stories260K.bin --prompts " + (dir / "prompts.txt").string() +
                       " -n 8 --runs 2 --stream --temp 0 -t 1 --out " + prefix);
  ASSERT_EQ(o.status, 0) << o.err << o.out;
  EXPECT_NE(o.out.find("local:stories260K.gguf"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("local:stories260K.bin"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("p99 ms"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("TTFT p50"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("cold start local:stories260K.bin: construct"), std::string::npos) << o.out;
  EXPECT_NE(o.err.find("machine: "), std::string::npos) << o.err;

  const nlohmann::json j = nlohmann::json::parse(slurp(prefix + ".json"));
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

  const std::string csv = slurp(prefix + ".csv");
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 1 + 2 * 6) << csv;
  const std::string svg = slurp(prefix + ".svg");
  EXPECT_NE(svg.find("<svg"), std::string::npos);
  EXPECT_NE(svg.find("stories260K.bin"), std::string::npos);
  fs::remove_all(dir);
}

TEST(BenchBackendsCli, BadSpecIsOneLineAndNonZero) {
  const Output o = run("--backend nokind");
  EXPECT_NE(o.status, 0);
  EXPECT_NE(o.err.find("backend spec 'nokind'"), std::string::npos) << o.err;
}

TEST(BenchBackendsCli, UnreachableServerFailsButKeepsTheOthers) {
  const fs::path dir = scratch("g2c_bench_backends_cli");
  fs::create_directories(dir);
  std::ofstream(dir / "p.txt") << "Once upon a time\n";
  // Port 9 (discard) on loopback: connection refused, quickly.
  const Output o =
      run("--backend local:" + kModels + "/stories260K.gguf --backend ollama:m@http://127.0.0.1:9 --prompts " +
          (dir / "p.txt").string() + " -n 4 --runs 1 --timeout 2 --out ''");
  EXPECT_NE(o.status, 0);
  EXPECT_NE(o.out.find("local:stories260K.gguf"), std::string::npos) << o.out << o.err;
  EXPECT_NE(o.err.find("ollama:m@http://127.0.0.1:9"), std::string::npos) << o.err;
  fs::remove_all(dir);
}

}  // namespace
