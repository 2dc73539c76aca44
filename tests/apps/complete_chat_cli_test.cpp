// `g2c complete` and `g2c chat` as a user runs them: the built binary on every kind of backend spec,
// the served ones against a real `g2c serve` this test starts. Completions are checked against the
// README's greedy golden for stories260K (an independent float64 forward pass) and against each other:
// the same model, greedy, gives the same text whether it runs here, without a KV cache, or behind
// either HTTP API.
#include <gtest/gtest.h>

#include <regex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "apps/course_cli.hpp"
#include "common/test_util.hpp"

namespace g2c {
namespace {

using test::run_g2c_with;
using test::RunResult;
using test::shared_path;

// ../shared/models/README.md "Reference outputs": stories260K greedy after BOS, 65 tokens.
const std::string kGreedyText =
    "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, "
    "she saw a big, red ball. She wanted to play with it, but it was too high.\nLily'";

std::string local_spec(const char* kind = "local") {
  return std::string(kind) + ":" + shared_path("models/stories260K.gguf");
}

RunResult complete(const std::string& spec, const std::string& prompt, std::vector<std::string> extra = {}) {
  std::vector<std::string> args = {"complete", "--backend", spec, "--temp", "0", "-t", "1", "--timeout", "30"};
  args.insert(args.end(), extra.begin(), extra.end());
  args.push_back(prompt);
  return run_g2c_with(args, "");
}

// The stats line's "N prompt + M completion tokens", one per call, in order.
std::vector<std::pair<int, int>> token_counts(const std::string& err) {
  std::vector<std::pair<int, int>> v;
  const std::regex re("\\| ([0-9]+) prompt \\+ ([0-9]+) completion tokens \\|");
  for (auto it = std::sregex_iterator(err.begin(), err.end(), re); it != std::sregex_iterator(); ++it)
    v.emplace_back(std::stoi((*it)[1]), std::stoi((*it)[2]));
  return v;
}

TEST(CompleteCli, LocalGreedyIsTheReadmeGolden) {
  const RunResult o = complete(local_spec(), "", {"-n", "65"});
  ASSERT_EQ(o.code, 0) << o.err;
  EXPECT_EQ(o.out, kGreedyText + "\n");
  EXPECT_EQ(token_counts(o.err), (std::vector<std::pair<int, int>>{{1, 65}})) << o.err;
  EXPECT_NE(o.err.find("tok/s"), std::string::npos) << o.err;
  EXPECT_NE(o.err.find("engine "), std::string::npos) << o.err;  // prefill + decode of the in-process engine
}

TEST(CompleteCli, NaiveStreamAndJsonAgree) {
  const RunResult cached = complete(local_spec(), "Once upon a time", {"-n", "24"});
  const RunResult naive = complete(local_spec("local-naive"), "Once upon a time", {"-n", "24", "--json"});
  const RunResult streamed = complete(local_spec(), "Once upon a time", {"-n", "24", "--stream"});
  ASSERT_EQ(cached.code, 0) << cached.err;
  ASSERT_EQ(naive.code, 0) << naive.err;
  ASSERT_EQ(streamed.code, 0) << streamed.err;
  const nlohmann::json j = nlohmann::json::parse(naive.out);
  EXPECT_EQ(j["completion"].get<std::string>() + "\n", cached.out);
  EXPECT_TRUE(j["metadata"]["naive"].get<bool>()) << j.dump();
  EXPECT_EQ(j["backend"]["name"], "local-naive");
  EXPECT_EQ(j["completion_tokens"], 24);
  EXPECT_EQ(streamed.out, cached.out);
}

TEST(CompleteCli, DashReadsThePromptFromStdin) {
  const RunResult arg = complete(local_spec(), "Once upon a time", {"-n", "12"});
  const RunResult in = run_g2c_with({"complete", "--backend", local_spec(), "--temp", "0", "-t", "1", "-n", "12", "-"},
                                    "Once upon a time");
  ASSERT_EQ(arg.code, 0) << arg.err;
  ASSERT_EQ(in.code, 0) << in.err;
  EXPECT_EQ(in.out, arg.out);
  EXPECT_EQ(token_counts(in.err), token_counts(arg.err));
}

TEST(CompleteCli, BadSpecIsOneLineAndNonZero) {
  for (const char* spec : {"nokind", "local:", "ollama:m@", "auto:x", "carrier-pigeon:m"}) {
    const RunResult o = complete(spec, "hi");
    EXPECT_EQ(o.code, 1) << spec;
    EXPECT_NE(o.err.find(std::string("backend spec '") + spec + "'"), std::string::npos) << o.err;
    EXPECT_EQ(std::count(o.err.begin(), o.err.end(), '\n'), 1) << o.err;
    EXPECT_TRUE(o.out.empty()) << o.out;
  }
}

TEST(CompleteCli, DeadServerIsOneLineAndNonZero) {
  const RunResult o = complete("ollama:m@http://127.0.0.1:9", "hi");
  EXPECT_EQ(o.code, 1);
  EXPECT_NE(o.err.find("127.0.0.1:9"), std::string::npos) << o.err;
}

TEST(CompleteCli, AutoSaysWhatItChoseAndWhy) {
  test::TempDir dir;
  const std::map<std::string, std::string> env = {{"G2C_PRODLM_MANIFEST", dir.file("none.json")},
                                                  {"G2C_ARTIFACTS_DIR", shared_path("models")}};
  const RunResult o =
      run_g2c_with({"complete", "--backend", "auto", "--temp", "0", "-n", "65", "-t", "1", ""}, "", env);
  ASSERT_EQ(o.code, 0) << o.err;
  EXPECT_EQ(o.out, kGreedyText + "\n");  // the default artifact is stories260K
  EXPECT_NE(o.err.find("backend auto chose local"), std::string::npos) << o.err;
  EXPECT_NE(o.err.find("no ProdLM manifest at " + dir.file("none.json")), std::string::npos) << o.err;
}

TEST(CompleteCli, ServedThroughBothApisMatchesLocal) {
  test::ServeProcess serve;
  const std::string prompt = "Once upon a time";
  const RunResult local = complete(local_spec(), prompt, {"-n", "16"});
  ASSERT_EQ(local.code, 0) << local.err;
  for (const std::string& spec : {"ollama:stories260K@" + serve.url(), "openai:stories260K@" + serve.url() + "/v1"}) {
    const RunResult o = complete(spec, prompt, {"-n", "16"});
    ASSERT_EQ(o.code, 0) << spec << "\n" << o.err << serve.log();
    std::string served = o.out;
    for (std::size_t at = 0; at < served.size(); at = served.find('\n', at) + 1) {
      if (served[at] == ' ') served.erase(at, 1);
      if (served.find('\n', at) == std::string::npos) break;
    }
    EXPECT_EQ(served, local.out) << spec;
    EXPECT_NE(o.err.find("16 completion tokens"), std::string::npos) << o.err;
    EXPECT_NE(o.err.find("server "), std::string::npos) << o.err;  // the server's own time
    const RunResult s = complete(spec, prompt, {"-n", "16", "--stream"});
    ASSERT_EQ(s.code, 0) << s.err;
    EXPECT_EQ(s.out, local.out) << spec;
  }
  // auto picks ProdLM when its manifest's server answers.
  test::TempDir dir;
  std::ofstream(dir.file("prodlm.json")) << nlohmann::json{
      {"backend", "ollama"},
      {"model_id", "stories260K"},
      {"base_url", serve.url()}}.dump();
  const RunResult a = run_g2c_with({"complete", "--backend", "auto", "--temp", "0", "-n", "16", prompt}, "",
                                   {{"G2C_PRODLM_MANIFEST", dir.file("prodlm.json")}});
  ASSERT_EQ(a.code, 0) << a.err;
  EXPECT_EQ(a.out, local.out);
  EXPECT_NE(a.err.find("backend auto chose prodlm"), std::string::npos) << a.err;
  const RunResult p = run_g2c_with(
      {"complete", "--backend", "prodlm:" + dir.file("prodlm.json"), "--temp", "0", "-n", "16", prompt}, "");
  ASSERT_EQ(p.code, 0) << p.err;
  EXPECT_EQ(p.out, local.out);
}

TEST(ChatCli, LinesAreMessagesResetAndQuit) {
  // Four lines: two messages around a /reset, then /quit; the line after /quit is never read.
  const RunResult o = run_g2c_with(
      {"chat", "--backend", local_spec(), "--temp", "0", "-n", "8", "-t", "1", "--system", "You tell stories."},
      "Hello\nTell me more\n/reset\nHello\n/quit\nnot read\n");
  ASSERT_EQ(o.code, 0) << o.err;
  const auto counts = token_counts(o.err);
  ASSERT_EQ(counts.size(), 3u) << o.err;
  // History: the second message is sent after the first exchange, so its prompt is longer; after
  // /reset the same first message gives the same prompt again.
  EXPECT_GT(counts[1].first, counts[0].first + 3) << o.err;
  EXPECT_EQ(counts[2].first, counts[0].first) << o.err;
  EXPECT_NE(o.err.find("history cleared"), std::string::npos) << o.err;
  EXPECT_EQ(o.err.find("> "), std::string::npos) << "no prompt when stdin is not a terminal: " << o.err;
}

TEST(ChatCli, ServedChatKeepsHistory) {
  test::ServeProcess serve;
  // The replies stream (chat_stream: /api/chat and /v1/chat/completions with stream true) and equal the
  // in-process chat's, reply for reply (the in-process plain layout trims the reply; the server sends the
  // space the model wrote after "Assistant:", as Ollama would).
  const RunResult local =
      run_g2c_with({"chat", "--backend", local_spec(), "--temp", "0", "-n", "8", "-t", "1"}, "Hello\nAnd then?\n");
  ASSERT_EQ(local.code, 0) << local.err;
  for (const std::string& spec : {"ollama:stories260K@" + serve.url(), "openai:stories260K@" + serve.url() + "/v1"}) {
    const RunResult o =
        run_g2c_with({"chat", "--backend", spec, "--temp", "0", "-n", "8", "--timeout", "30"}, "Hello\nAnd then?\n");
    ASSERT_EQ(o.code, 0) << spec << "\n" << o.err << serve.log();
    const auto counts = token_counts(o.err);
    ASSERT_EQ(counts.size(), 2u) << o.err;
    EXPECT_GT(counts[1].first, counts[0].first) << o.err;  // the first exchange went along
    std::string served = o.out;
    for (std::size_t at = 0; at < served.size(); at = served.find('\n', at) + 1) {
      if (served[at] == ' ') served.erase(at, 1);
      if (served.find('\n', at) == std::string::npos) break;
    }
    EXPECT_EQ(served, local.out) << spec;
    EXPECT_NE(o.err.find("server "), std::string::npos) << o.err;
  }
}

}  // namespace
}  // namespace g2c
