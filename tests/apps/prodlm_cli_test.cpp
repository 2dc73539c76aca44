// `g2c prodlm set|show|check` as a user runs them: the manifest written atomically and read back, and
// the checks against a real `g2c serve` (both APIs), a model the server does not have, a dead port and
// a missing manifest. Every failing check prints its fix and the command exits 1.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

#include "apps/course_cli.hpp"
#include "common/test_util.hpp"

namespace g2c {
namespace {

using test::run_g2c_with;
using test::RunResult;

RunResult prodlm(std::vector<std::string> args, const std::string& manifest) {
  args.insert(args.begin(), "prodlm");
  return run_g2c_with(args, "", {{"G2C_PRODLM_MANIFEST", manifest}});
}

int count_lines(const std::string& s, const std::string& prefix) {
  int n = 0;
  std::size_t pos = 0;
  while (pos < s.size()) {
    const std::size_t end = s.find('\n', pos);
    if (s.compare(pos, prefix.size(), prefix) == 0) ++n;
    if (end == std::string::npos) break;
    pos = end + 1;
  }
  return n;
}

TEST(ProdLMCli, SetWritesShowReads) {
  test::TempDir dir;
  const std::string path = dir.file("cfg/g2c/prodlm.json");  // the folder is created
  const RunResult s = prodlm({"set", "ollama:llama3.2:3b@http://127.0.0.1:11434", "--quantization", "Q4_K_M", "--ctx",
                              "4096", "--notes", "course default"},
                             path);
  ASSERT_EQ(s.code, 0) << s.err;
  EXPECT_NE(s.out.find("wrote " + path), std::string::npos) << s.out;
  const nlohmann::json j = test::load_json(path);
  EXPECT_EQ(j["backend"], "ollama");
  EXPECT_EQ(j["model_id"], "llama3.2:3b");  // the model's own ':' kept, the URL after the last '@'
  EXPECT_EQ(j["base_url"], "http://127.0.0.1:11434");
  EXPECT_EQ(j["quantization"], "Q4_K_M");
  EXPECT_EQ(j["context_length"], 4096);
  EXPECT_EQ(j["notes"], "course default");
  // Atomic: nothing but the manifest is left in the folder.
  int files = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir.path() / "cfg/g2c")) ++files;
  EXPECT_EQ(files, 1);

  const RunResult show = prodlm({"show"}, path);
  ASSERT_EQ(show.code, 0) << show.err;
  EXPECT_NE(show.out.find("\"model_id\": \"llama3.2:3b\""), std::string::npos) << show.out;

  // --manifest beats the environment.
  const RunResult other =
      prodlm({"set", "openai:gpt-x@http://127.0.0.1:8080/v1", "--manifest", dir.file("o.json")}, path);
  ASSERT_EQ(other.code, 0) << other.err;
  EXPECT_EQ(test::load_json(dir.file("o.json"))["backend"], "openai");
  EXPECT_EQ(test::load_json(path)["backend"], "ollama");
}

TEST(ProdLMCli, SetRefusesWhatIsNotServed) {
  test::TempDir dir;
  for (const char* spec : {"local:stories260K", "auto", "nokind"}) {
    const RunResult o = prodlm({"set", spec}, dir.file("p.json"));
    EXPECT_EQ(o.code, 1) << spec;
    EXPECT_NE(o.err.find(spec), std::string::npos) << o.err;
    EXPECT_FALSE(std::filesystem::exists(dir.file("p.json")));
  }
  const RunResult bad_ctx = prodlm({"set", "ollama:m", "--ctx", "0"}, dir.file("p.json"));
  EXPECT_EQ(bad_ctx.code, 1);
  EXPECT_NE(bad_ctx.err.find("--ctx"), std::string::npos) << bad_ctx.err;
}

TEST(ProdLMCli, CheckPassesAgainstGServeOnBothApis) {
  test::ServeProcess serve;
  test::TempDir dir;
  for (const std::string& spec : {"ollama:stories260K@" + serve.url(), "openai:stories260K@" + serve.url() + "/v1",
                                  "ollama:stories260K:latest@" + serve.url()}) {
    ASSERT_EQ(prodlm({"set", spec}, dir.file("p.json")).code, 0);
    const RunResult c = prodlm({"check"}, dir.file("p.json"));
    EXPECT_EQ(c.code, 0) << spec << "\n" << c.out << c.err << serve.log();
    EXPECT_EQ(count_lines(c.out, "ok   "), 4) << c.out;  // manifest, server, model, completion
    EXPECT_NE(c.out.find("ok   completion: one-token completion"), std::string::npos) << c.out;
  }
}

TEST(ProdLMCli, CheckNamesAMissingModelAndTheFix) {
  test::ServeProcess serve;
  test::TempDir dir;
  ASSERT_EQ(prodlm({"set", "ollama:llama3.2:3b@" + serve.url()}, dir.file("p.json")).code, 0);
  const RunResult c = prodlm({"check"}, dir.file("p.json"));
  EXPECT_EQ(c.code, 1) << c.out;
  EXPECT_NE(c.out.find("ok   server"), std::string::npos) << c.out;
  EXPECT_NE(c.out.find("FAIL model: llama3.2:3b is not among"), std::string::npos) << c.out;
  EXPECT_NE(c.out.find("stories260K"), std::string::npos) << c.out;  // what the server does have
  EXPECT_NE(c.out.find("fix: `ollama pull llama3.2:3b`"), std::string::npos) << c.out;
  EXPECT_NE(c.out.find("SKIP completion"), std::string::npos) << c.out;

  ASSERT_EQ(prodlm({"set", "openai:nosuch@" + serve.url() + "/v1"}, dir.file("p.json")).code, 0);
  const RunResult o = prodlm({"check"}, dir.file("p.json"));
  EXPECT_EQ(o.code, 1) << o.out;
  EXPECT_NE(o.out.find("FAIL model: nosuch is not among"), std::string::npos) << o.out;
}

TEST(ProdLMCli, CheckOnADeadPortSaysStartTheServer) {
  test::TempDir dir;
  // Port 9 (discard) on loopback: connection refused at once.
  ASSERT_EQ(prodlm({"set", "ollama:llama3.2:3b@http://127.0.0.1:9"}, dir.file("p.json")).code, 0);
  const RunResult c = prodlm({"check", "--timeout", "2"}, dir.file("p.json"));
  EXPECT_EQ(c.code, 1);
  EXPECT_NE(c.out.find("FAIL server"), std::string::npos) << c.out;
  EXPECT_NE(c.out.find("fix: start Ollama: `ollama serve`"), std::string::npos) << c.out;
  EXPECT_NE(c.out.find("SKIP model"), std::string::npos) << c.out;
  EXPECT_NE(c.out.find("SKIP completion"), std::string::npos) << c.out;

  ASSERT_EQ(prodlm({"set", "openai:m@http://127.0.0.1:9/v1"}, dir.file("p.json")).code, 0);
  const RunResult o = prodlm({"check", "--timeout", "2"}, dir.file("p.json"));
  EXPECT_EQ(o.code, 1);
  EXPECT_NE(o.out.find("FAIL server"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("mlx_lm.server"), std::string::npos) << o.out;
}

TEST(ProdLMCli, CheckWithoutAManifestSaysHowToWriteOne) {
  test::TempDir dir;
  const RunResult c = prodlm({"check"}, dir.file("absent.json"));
  EXPECT_EQ(c.code, 1);
  EXPECT_NE(c.out.find("FAIL manifest"), std::string::npos) << c.out;
  EXPECT_NE(c.out.find("fix: g2c prodlm set"), std::string::npos) << c.out;
  const RunResult s = prodlm({"show"}, dir.file("absent.json"));
  EXPECT_EQ(s.code, 1);
  EXPECT_NE(s.err.find("absent.json"), std::string::npos) << s.err;
}

}  // namespace
}  // namespace g2c
