// LocalTransformerBackend over the engine, checked against ../shared/models/README.md's greedy goldens
// (an independent float64 forward pass, matching llama2.c's documented sample).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/test_util.hpp"
#include "g2c/core/error.hpp"
#include "g2c/gguf/gguf.hpp"
#include "g2c/inference/artifact.hpp"
#include "g2c/inference/benchmark.hpp"
#include "g2c/inference/local_backend.hpp"
#include "g2c/model/model.hpp"
#include "g2c/tokenizer/chat_template.hpp"
#include "g2c/tokenizer/tokenizer.hpp"

namespace g2c::inference {
namespace {

const std::string kModels = std::string(G2C_SHARED_DIR) + "/models";
// README.md "Reference outputs": stories260K greedy after BOS, 65 tokens (.gguf and .bin alike).
const std::string kGreedyText =
    "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, "
    "she saw a big, red ball. She wanted to play with it, but it was too high.\nLily'";
// The same golden's first 61 tokens: the 62nd id is 13 = <0x0A>, the newline before "Lily'".
const std::string kGreedyTextBeforeNewline =
    "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, "
    "she saw a big, red ball. She wanted to play with it, but it was too high.";

GenerateOptions greedy(int n) {
  GenerateOptions o;
  o.max_new_tokens = n;
  o.temperature = 0.0;
  return o;
}

std::unique_ptr<LocalTransformerBackend> make_local(const std::string& file = "stories260K.gguf",
                                                    std::optional<std::int32_t> eos_id = std::nullopt) {
  std::shared_ptr<const model::Model> m = model::Model::load(kModels + "/" + file);
  std::shared_ptr<const tokenizer::Tokenizer> t = tokenizer::Tokenizer::from_gguf(*m->gguf());
  model::ContextOptions co;
  co.threads = 1;
  return std::make_unique<LocalTransformerBackend>(m, t, "stories260K", eos_id, "local", nlohmann::json::object(), co);
}

TEST(LocalBackend, GreedyFromBosIsTheReadmeGolden) {
  auto b = make_local();
  InferenceResult r = b->complete("", greedy(65));
  EXPECT_EQ(r.completion, kGreedyText);
  EXPECT_EQ(r.prompt_tokens, 1);  // BOS alone
  EXPECT_EQ(r.completion_tokens, 65);
  EXPECT_EQ(r.metadata["done_reason"], "length");
  EXPECT_EQ(r.backend.name, "local");
  EXPECT_EQ(r.backend.model_id, "stories260K");
}

TEST(LocalBackend, InfoAndMetadataCarryTimingsIsaAndThreads) {
  auto b = make_local();
  const BackendInfo info = b->info();
  EXPECT_EQ(info.extra["quantization"], "F32");
  EXPECT_EQ(info.extra["threads"], 1);
  EXPECT_EQ(info.extra["chat_template"], "plain");
  EXPECT_FALSE(info.extra["isa"].get<std::string>().empty());
  EXPECT_EQ(info.extra["context_length"], 2048);  // llama.context_length, under the 4096 cap

  InferenceResult r = b->complete("Once upon a time", greedy(20));
  EXPECT_EQ(r.prompt, "Once upon a time");
  EXPECT_EQ(r.completion_tokens, 20);
  // Exact prompt count: BOS + the tokenizer's ids for the text.
  EXPECT_EQ(r.prompt_tokens, static_cast<std::int64_t>(b->tokenizer().encode("Once upon a time", true, true).size()));
  const auto prefill = r.metadata["prefill_ns"].get<std::int64_t>();
  const auto decode = r.metadata["decode_ns"].get<std::int64_t>();
  EXPECT_GT(prefill, 0);
  EXPECT_GT(decode, 0);
  EXPECT_DOUBLE_EQ(r.metadata["prompt_eval_ms"].get<double>(), static_cast<double>(prefill) / 1e6);
  // The wall clock covers the whole call, so it is at least the engine's own two timings.
  EXPECT_GE(r.latency_ms, static_cast<double>(prefill + decode) / 1e6);
  EXPECT_EQ(r.metadata["threads"], 1);
  EXPECT_EQ(r.metadata["isa"], info.extra["isa"]);
  ASSERT_TRUE(r.tokens_per_second().has_value());
  EXPECT_FALSE(r.metadata.contains("logprobs"));
  EXPECT_FALSE(r.metadata.contains("ttft_ms"));  // complete() does not stream
}

TEST(LocalBackend, PromptIsNotEchoedAndContinuesTheGolden) {
  auto b = make_local();
  // "Once upon a time," encodes to the golden's first ids after BOS, so greedy continues the golden.
  const std::string prompt = "Once upon a time,";
  InferenceResult r = b->complete(prompt, greedy(20));
  ASSERT_GT(r.completion.size(), 40u);
  EXPECT_EQ(r.completion, kGreedyText.substr(prompt.size(), r.completion.size()));
}

TEST(LocalBackend, StreamConcatenationEqualsComplete) {
  auto b = make_local();
  GenerateOptions o;
  o.max_new_tokens = 48;
  o.temperature = 1.0;
  o.seed = 1234;
  std::string streamed;
  int chunks = 0;
  InferenceResult s = b->stream("Lily saw a cat.", o, [&](std::string_view piece) {
    EXPECT_FALSE(piece.empty());
    streamed += piece;
    ++chunks;
    return true;
  });
  InferenceResult c = b->complete("Lily saw a cat.", o);
  EXPECT_EQ(streamed, s.completion);
  EXPECT_EQ(s.completion, c.completion);  // the same seed: the same sample
  EXPECT_EQ(s.completion_tokens, c.completion_tokens);
  EXPECT_GT(chunks, 1);
  EXPECT_EQ(s.metadata["canceled"], false);
  EXPECT_EQ(s.metadata["seed"], 1234u);
  ASSERT_TRUE(s.metadata.contains("ttft_ms"));
  EXPECT_LE(s.metadata["ttft_ms"].get<double>(), s.latency_ms);
}

TEST(LocalBackend, ReturningFalseCancels) {
  auto b = make_local();
  std::string streamed;
  int chunks = 0;
  InferenceResult r = b->stream("", greedy(65), [&](std::string_view piece) {
    streamed += piece;
    return ++chunks < 3;
  });
  EXPECT_EQ(chunks, 3);
  EXPECT_EQ(r.metadata["canceled"], true);
  EXPECT_EQ(r.metadata["done_reason"], "canceled");
  EXPECT_EQ(r.completion, streamed);
  EXPECT_EQ(r.completion, "Once upon a");  // three word-tokens of the golden
  EXPECT_EQ(r.completion_tokens, 3);
}

TEST(LocalBackend, StopStringsEndTheCompletion) {
  auto b = make_local();
  GenerateOptions o = greedy(65);
  o.stop = {"Lily"};
  InferenceResult r = b->complete("", o);
  EXPECT_EQ(r.completion, "Once upon a time, there was a little girl named ");
  EXPECT_EQ(r.metadata["done_reason"], "stop");
}

TEST(LocalBackend, CustomEosIdEndsWithoutShowingOrCountingIt) {
  // id 13 is the byte token <0x0A>; greedy reaches it after 61 tokens (README golden ids).
  auto b = make_local("stories260K.gguf", 13);
  std::string streamed;
  InferenceResult r = b->stream("", greedy(65), [&](std::string_view p) {
    streamed += p;
    return true;
  });
  EXPECT_EQ(r.completion, kGreedyTextBeforeNewline);
  EXPECT_EQ(streamed, r.completion);
  EXPECT_EQ(r.completion_tokens, 61);
  EXPECT_EQ(r.metadata["done_reason"], "stop");
  EXPECT_EQ(r.metadata["canceled"], false);
}

TEST(LocalBackend, EosMinusOneRunsToMaxTokens) {
  // TinyStories-656K ends its greedy story with <|end_story|> (EOS, id 2) after 143 tokens.
  std::shared_ptr<const model::Model> m = model::Model::load(kModels + "/TinyStories-656K-Q8_0.gguf");
  std::shared_ptr<const tokenizer::Tokenizer> t = tokenizer::Tokenizer::from_gguf(*m->gguf());
  LocalTransformerBackend plain(m, t, "tiny656k");
  LocalTransformerBackend no_eos(m, t, "tiny656k", -1);
  InferenceResult a = plain.complete("", greedy(400));
  InferenceResult b = no_eos.complete("", greedy(400));
  ASSERT_EQ(a.metadata["stop_reason"], "eog") << a.completion;
  EXPECT_EQ(a.metadata["done_reason"], "stop");
  EXPECT_LT(*a.completion_tokens, 400);
  EXPECT_EQ(b.completion_tokens, 400);
  EXPECT_EQ(b.metadata["done_reason"], "length");
  EXPECT_EQ(b.completion.substr(0, a.completion.size()), a.completion);
  EXPECT_THROW(make_local("stories260K.gguf", 512), InvalidArgument);
}

TEST(LocalBackend, LogprobsWhenAsked) {
  auto b = make_local();
  GenerateOptions o = greedy(10);
  o.logprobs = true;
  InferenceResult r = b->complete("", o);
  ASSERT_TRUE(r.metadata.contains("logprobs"));
  const std::vector<double> lp = r.metadata["logprobs"].get<std::vector<double>>();
  ASSERT_EQ(lp.size(), 10u);
  for (double v : lp) EXPECT_LE(v, 0.0);
  // Step 0 (README): the top logit 17.02 leads the next (15.41) by 1.6, so greedy's pick is likely.
  EXPECT_GT(lp[0], std::log(0.5));
}

TEST(LocalBackend, ConcurrentCallsAreSerialisedAndCorrect) {
  auto b = make_local();
  std::vector<std::string> out(4);
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&, i] { out[static_cast<std::size_t>(i)] = b->complete("", greedy(65)).completion; });
  }
  for (auto& t : threads) t.join();
  for (const auto& s : out) EXPECT_EQ(s, kGreedyText);
}

TEST(LocalBackend, ChatUsesThePlainFallbackWithoutTemplate) {
  auto b = make_local();
  EXPECT_EQ(b->chat_template().family, tokenizer::ChatFamily::kPlain);
  std::vector<ChatMessage> msgs = {{"user", "Tell me a story.", {}, "", ""}};
  const std::string rendered = tokenizer::render_chat(tokenizer::ChatTemplate{}, chat_turns(msgs));
  ChatResult r = b->chat(msgs, {}, greedy(40));
  EXPECT_EQ(r.message.role, "assistant");
  EXPECT_EQ(r.message.content.find("\nUser:"), std::string::npos);
  EXPECT_EQ(r.prompt_tokens, static_cast<std::int64_t>(b->tokenizer().encode(rendered, true, true).size()));
  EXPECT_TRUE(r.timings.contains("prompt_eval_ms"));
  EXPECT_GT(r.latency_ms, 0.0);
  // The rendered prompt is exactly what complete() gets.
  InferenceResult c = b->complete(rendered, [] {
    GenerateOptions o = greedy(40);
    o.stop = {"\nUser:", "\nSystem:"};
    return o;
  }());
  std::string trimmed = c.completion;
  trimmed.erase(0, trimmed.find_first_not_of(" \n"));
  trimmed.erase(trimmed.find_last_not_of(" \n") + 1);
  EXPECT_EQ(r.message.content, trimmed);
  const std::vector<ToolSpec> tools = {nlohmann::json{{"type", "function"}, {"function", {{"name", "f"}}}}};
  EXPECT_THROW(b->chat(msgs, tools, greedy(4)), UnsupportedError);
}

std::string read_text(const std::string& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

TEST(LocalBackend, ChatWithToolsRendersWhatJinja2Renders) {
  // stories260K given Qwen 2.5's template (as `g2c template --write-gguf` writes it): chat() with tools,
  // an assistant call and its result renders, token for token, what Python's jinja2 renders
  // (tests/tokenizer/jinja_reference.py). Its output is random text: no call is expected back.
  const std::string tdir = G2C_TOKENIZER_TEST_DIR;
  const std::string tmpl_text = read_text(tdir + "/data/templates/Qwen-Qwen2.5-7B-Instruct.jinja");
  test::TempDir dir;
  const std::string path = dir.file("qwen-tools.gguf");
  {
    const auto in = gguf::File::open(kModels + "/stories260K.gguf");
    gguf::Writer w(in->alignment());
    for (const auto& kv : in->kvs()) w.set(kv.key, kv.value);
    w.set("tokenizer.chat_template", gguf::Value::str(tmpl_text));
    for (const auto& t : in->tensors())
      w.add_tensor(t.name, t.type, std::span<const std::int64_t>(t.ne.data(), t.n_dims),
                   std::span<const std::uint8_t>(t.data, t.n_bytes));
    w.write(path);
  }
  std::shared_ptr<const model::Model> m = model::Model::load(path);
  std::shared_ptr<const tokenizer::Tokenizer> tok = tokenizer::Tokenizer::from_gguf(*m->gguf());
  LocalTransformerBackend b(m, tok, "qwen-tools");
  EXPECT_EQ(b.chat_template().family, tokenizer::ChatFamily::kHermes);
  EXPECT_EQ(b.info().extra["chat_template"], "hermes");
  ToolCall call;
  call.id = "call_abc12345";
  call.name = "get_weather";
  call.arguments = {{"city", "Paris"}};
  std::vector<ChatMessage> msgs = {{"user", "Weather in Paris?", {}, "", ""},
                                   {"assistant", "", {call}, "", ""},
                                   {"tool", "11 degrees", {}, "get_weather", "call_abc12345"}};
  const nlohmann::json tool = {
      {"type", "function"},
      {"function",
       {{"name", "get_weather"},
        {"description", "Get the weather"},
        {"parameters", {{"type", "object"}, {"properties", {{"city", {{"type", "string"}}}}}}}}}};
  const ChatResult r = b.chat(msgs, {tool}, greedy(4));
  EXPECT_EQ(r.message.role, "assistant");
  EXPECT_EQ(r.message.tool_calls.size(), r.tool_calls.size());
  // The reference: the same conversation in Hugging Face's shape, rendered by jinja2.
  const nlohmann::ordered_json hf = nlohmann::ordered_json::parse(R"([
    {"role": "user", "content": "Weather in Paris?"},
    {"role": "assistant", "content": "", "tool_calls": [{"id": "call_abc12345", "type": "function",
      "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]},
    {"role": "tool", "content": "11 degrees", "tool_call_id": "call_abc12345", "name": "get_weather"}])");
  const nlohmann::ordered_json jobs = nlohmann::ordered_json::array(
      {{{"template", tmpl_text},
        {"context",
         {{"messages", hf},
          {"tools", nlohmann::ordered_json::array({nlohmann::ordered_json::parse(tool.dump())})},
          {"documents", nullptr},
          {"add_generation_prompt", true},
          {"bos_token", "<s>"},
          {"eos_token", "</s>"}}}}});
  std::ofstream(dir.file("jobs.json")) << jobs.dump();
  const std::string cmd = "/usr/bin/python3 '" + tdir + "/jinja_reference.py' '" + dir.file("jobs.json") + "' > '" +
                          dir.file("out.json") + "'";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  const auto out = nlohmann::json::parse(read_text(dir.file("out.json")));
  ASSERT_TRUE(out[0]["ok"].get<bool>()) << out.dump();
  EXPECT_EQ(r.prompt_tokens,
            static_cast<std::int64_t>(tok->encode(out[0]["text"].get<std::string>(), true, true).size()));
  // A template with no tool-call format (stories260K's plain fallback) refuses tools.
  EXPECT_THROW(make_local()->chat(msgs, {tool}, greedy(2)), UnsupportedError);
}

TEST(LocalBackend, ChatTemplateComesFromTheGguf) {
  // TinyStories-656K has no tokenizer.chat_template either: plain, and chat still answers.
  std::shared_ptr<const model::Model> m = model::Model::load(kModels + "/TinyStories-656K-Q8_0.gguf");
  std::shared_ptr<const tokenizer::Tokenizer> t = tokenizer::Tokenizer::from_gguf(*m->gguf());
  LocalTransformerBackend b(m, t, "tiny656k");
  EXPECT_EQ(b.info().extra["quantization"], "Q8_0");
  EXPECT_EQ(b.chat_template().family,
            m->gguf()->get_str("tokenizer.chat_template")
                ? tokenizer::detect_chat_template(*m->gguf()->get_str("tokenizer.chat_template")).family
                : tokenizer::ChatFamily::kPlain);
}

TEST(LocalBackend, TinyStoriesQ8GreedyMatchesItsGolden) {
  std::shared_ptr<const model::Model> m = model::Model::load(kModels + "/TinyStories-656K-Q8_0.gguf");
  std::shared_ptr<const tokenizer::Tokenizer> t = tokenizer::Tokenizer::from_gguf(*m->gguf());
  LocalTransformerBackend b(m, t, "tiny656k");
  InferenceResult r = b.complete("", greedy(12));
  // README: "Once upon a time, there was a little girl named Lily. She had a toy car ..."
  EXPECT_EQ(r.completion.substr(0, 40), std::string("Once upon a time, there was a little gir"));
}

TEST(LocalBackend, BenchmarkGivesSaneNumbers) {
  auto b = make_local();
  BenchmarkOptions o;
  o.generate.max_new_tokens = 16;
  o.generate.seed = 7;
  o.runs = 2;
  o.stream = true;
  const std::vector<std::string> prompts = {"Once upon a time", "The little dog", "Tom and Sue"};
  BenchmarkResult r = benchmark(*b, prompts, o);
  EXPECT_EQ(r.n, 6);
  ASSERT_EQ(r.per_request_latency_ms.size(), 6u);
  EXPECT_GT(r.latency_ms_p50, 0.0);
  EXPECT_LE(r.latency_ms_p50, r.latency_ms_p90);
  EXPECT_LE(r.latency_ms_p90, r.latency_ms_p99);
  ASSERT_TRUE(r.completion_tokens_total.has_value());
  std::int64_t sum = 0;
  for (const auto& res : r.results) sum += *res.completion_tokens;
  EXPECT_EQ(*r.completion_tokens_total, sum);
  EXPECT_GT(sum, 0);
  EXPECT_TRUE(r.tokens_per_second_overall.has_value());
  EXPECT_TRUE(r.ttft_ms_p50.has_value());
  EXPECT_TRUE(r.prompt_tokens_per_second.has_value());
  EXPECT_TRUE(r.generation_tokens_per_second.has_value());
  EXPECT_FALSE(r.server_ms_p50.has_value());  // in-process: no server time, no residual
  EXPECT_EQ(r.metadata["quantization"], "F32");
  EXPECT_EQ(r.metadata["threads"], 1);
}

}  // namespace
}  // namespace g2c::inference
