// `g2c template` as a user runs it: the prompt it prints is byte-compared with Python's jinja2
// (jinja_reference.py) rendering the same template file over the same messages and date.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "common/test_util.hpp"

namespace g2c::tokenizer {
namespace {

using OJson = nlohmann::ordered_json;
const std::filesystem::path kDir = G2C_TOKENIZER_TEST_DIR;

std::string read(const std::string& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// jinja2's rendering of `tmpl_file` with this context.
std::string jinja2(const std::string& tmpl_file, const OJson& ctx, long long now) {
  test::TempDir dir;
  const OJson jobs = OJson::array({{{"template", read(tmpl_file)}, {"context", ctx}, {"now", now}}});
  std::ofstream(dir.file("jobs.json"), std::ios::binary) << jobs.dump();
  const std::string cmd = "/usr/bin/python3 '" + (kDir / "jinja_reference.py").string() + "' '" +
                          dir.file("jobs.json") + "' > '" + dir.file("out.json") + "'";
  if (std::system(cmd.c_str()) != 0) throw std::runtime_error("reference renderer failed: " + cmd);
  const OJson out = OJson::parse(read(dir.file("out.json")));
  if (!out[0]["ok"].get<bool>()) throw std::runtime_error("jinja2 refused: " + out[0].dump());
  return out[0]["text"].get<std::string>();
}

TEST(TemplateCli, PrintsWhatJinja2Renders) {
  test::TempDir dir;
  const OJson conv = OJson::parse(read((kDir / "data/chat_conversations.json").string()));
  const OJson msgs = conv["conversations"][8]["messages"];  // tool_result: system, user, call, result
  ASSERT_EQ(conv["conversations"][8]["name"], "tool_result");
  std::ofstream(dir.file("m.json")) << OJson({{"messages", msgs}, {"tools", conv["tools"]}}).dump();
  const long long dec1 = 1733011200;  // 2024-12-01T00:00:00Z
  for (const char* name : {"meta-llama-Llama-3.2-3B-Instruct.jinja", "Qwen-Qwen2.5-7B-Instruct.jinja"}) {
    const std::string file = (kDir / "data/templates" / name).string();
    const test::RunResult r = test::run_g2c({"template", "--template-file", file, "--bos", "<|begin_of_text|>",
                                             "--messages", dir.file("m.json"), "--date", "2024-12-01"});
    ASSERT_EQ(r.code, 0) << r.err;
    const OJson ctx = {{"messages", msgs},
                       {"tools", conv["tools"]},
                       {"documents", nullptr},
                       {"add_generation_prompt", true},
                       {"bos_token", "<|begin_of_text|>"},
                       {"eos_token", ""}};
    EXPECT_EQ(r.out, jinja2(file, ctx, dec1)) << name;
    if (std::string(name).find("3.2") != std::string::npos) {
      EXPECT_NE(r.out.find("01 Dec 2024"), std::string::npos);
    }
  }
  // --no-generation-prompt
  const std::string qwen = (kDir / "data/templates/Qwen-Qwen2.5-7B-Instruct.jinja").string();
  const test::RunResult r =
      test::run_g2c({"template", "--template-file", qwen, "--messages", dir.file("m.json"), "--no-generation-prompt"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out.find("<|im_start|>assistant\n", r.out.size() - 30), std::string::npos) << r.out;
}

TEST(TemplateCli, TheTemplatesRefusalIsOneLine) {
  test::TempDir dir;
  std::ofstream(dir.file("m.json"))
      << R"({"messages": [{"role": "system", "content": "x"}, {"role": "user", "content": "y"}]})";
  const std::string gemma = (kDir / "data/templates/google-gemma-2-2b-it.jinja").string();
  test::RunResult r = test::run_g2c({"template", "--template-file", gemma, "--messages", dir.file("m.json")});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, "g2c: error: the chat template refuses this conversation: System role not supported\n");
  std::ofstream(dir.file("bad.json")) << R"({"msgs": []})";
  r = test::run_g2c({"template", "--template-file", gemma, "--messages", dir.file("bad.json")});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("expected {\"messages\""), std::string::npos) << r.err;
  r = test::run_g2c({"template", "--template-file", gemma, "--messages", dir.file("m.json"), "--date", "2024-13-01"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("--date '2024-13-01'"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace g2c::tokenizer
