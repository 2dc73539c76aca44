#include "g2c/inference/router.hpp"

#include <gtest/gtest.h>

#include "fake_backend.hpp"
#include "g2c/core/error.hpp"

namespace g2c::inference {
namespace {

using testing::FakeBackend;

struct Fixture {
  std::shared_ptr<FakeBackend> tiny = std::make_shared<FakeBackend>("tiny", "tiny answer");
  std::shared_ptr<FakeBackend> big = std::make_shared<FakeBackend>("big", "big answer");
  std::vector<std::shared_ptr<Backend>> all() { return {tiny, big}; }
};

TEST(Router, RulesPickTheFirstMatchAndSayWhy) {
  Fixture f;
  RouterConfig cfg;
  RouteRule long_prompt{"long-prompt", 1, 40, std::nullopt, "", std::nullopt, std::nullopt};
  RouteRule code{"code", 1, std::nullopt, std::nullopt, R"(\b(def|class|#include)\b)", std::nullopt, std::nullopt};
  RouteRule long_answer{"long-answer", 1, std::nullopt, std::nullopt, "", 256, std::nullopt};
  cfg.rules = {long_prompt, code, long_answer};
  RouterBackend r(f.all(), cfg);

  InferenceResult a = r.complete("short question");
  EXPECT_EQ(a.completion, "tiny answer");
  EXPECT_EQ(a.metadata["router"]["decision"], "default");
  EXPECT_EQ(a.metadata["router"]["backend"], "tiny");

  InferenceResult b = r.complete(std::string(50, 'x'));
  EXPECT_EQ(b.completion, "big answer");
  EXPECT_EQ(b.metadata["router"]["decision"], "rule:long-prompt");
  EXPECT_EQ(b.metadata["router"]["reason"], "rule 'long-prompt': prompt 50 bytes >= 40");

  InferenceResult c = r.complete("def f(): pass");
  EXPECT_EQ(c.metadata["router"]["decision"], "rule:code");
  EXPECT_NE(c.metadata["router"]["reason"].get<std::string>().find("matches"), std::string::npos);

  GenerateOptions o;
  o.max_new_tokens = 300;
  InferenceResult d = r.complete("hi", o);
  EXPECT_EQ(d.metadata["router"]["decision"], "rule:long-answer");
  EXPECT_EQ(d.metadata["router"]["reason"], "rule 'long-answer': max_new_tokens 300 >= 256");
  EXPECT_EQ(f.big->calls, 3);
  EXPECT_EQ(f.tiny->calls, 1);
}

TEST(Router, ConfidenceKeepsTheTinyAnswerOrEscalates) {
  Fixture f;
  RouterConfig cfg;
  cfg.confidence = ConfidenceRoute{0, 1, 3, -1.0};
  RouterBackend r(f.all(), cfg);

  // Mean of the first k=3: (-0.1 - 0.2 - 0.3) / 3 = -0.2 >= -1.0 -> keep; the 4th token is ignored.
  f.tiny->logprobs = {-0.1, -0.2, -0.3, -9.0};
  InferenceResult a = r.complete("easy");
  EXPECT_TRUE(f.tiny->last_opts.logprobs);  // the router asked for logprobs
  EXPECT_EQ(a.completion, "tiny answer");
  EXPECT_EQ(a.metadata["router"]["decision"], "confident");
  EXPECT_NEAR(a.metadata["router"]["confidence"]["mean_logprob"].get<double>(), -0.2, 1e-12);
  EXPECT_EQ(a.metadata["router"]["confidence"]["n_tokens"], 3);
  EXPECT_EQ(f.big->calls, 0);

  // (-0.5 - 2.0 - 1.0) / 3 = -1.1667 < -1.0 -> escalate.
  f.tiny->logprobs = {-0.5, -2.0, -1.0};
  InferenceResult b = r.complete("hard");
  EXPECT_EQ(b.completion, "big answer");
  EXPECT_EQ(b.metadata["router"]["decision"], "escalate");
  EXPECT_NEAR(b.metadata["router"]["confidence"]["mean_logprob"].get<double>(), -3.5 / 3, 1e-12);
  EXPECT_NE(b.metadata["router"]["reason"].get<std::string>().find("< threshold -1"), std::string::npos);

  // No logprobs reported: escalate, and say so.
  f.tiny->logprobs.clear();
  InferenceResult c = r.complete("?");
  EXPECT_EQ(c.completion, "big answer");
  EXPECT_EQ(c.metadata["router"]["reason"], "tiny backend reported no logprobs; escalating");
}

TEST(Router, MeanLogprobUsesFewerTokensWhenTheAnswerIsShort) {
  int n = 0;
  auto m = RouterBackend::mean_logprob(nlohmann::json{{"logprobs", {-1.0, -3.0}}}, 8, &n);
  ASSERT_TRUE(m);
  EXPECT_DOUBLE_EQ(*m, -2.0);
  EXPECT_EQ(n, 2);
  EXPECT_FALSE(RouterBackend::mean_logprob(nlohmann::json::object(), 8));
}

TEST(Router, FallsBackToTheNextBackendOnError) {
  Fixture f;
  f.tiny->fail = true;
  RouterBackend r(f.all(), {});
  InferenceResult a = r.complete("hi");
  EXPECT_EQ(a.completion, "big answer");
  EXPECT_EQ(a.metadata["router"]["target_index"], 0);
  EXPECT_EQ(a.metadata["router"]["backend_index"], 1);
  ASSERT_EQ(a.metadata["router"]["fallbacks"].size(), 1u);
  EXPECT_EQ(a.metadata["router"]["fallbacks"][0]["error"], "tiny is down");

  // Fallback wraps around: big (the target) fails, tiny answers.
  f.tiny->fail = false;
  f.big->fail = true;
  RouterConfig cfg;
  cfg.default_target = 1;
  RouterBackend r2(f.all(), cfg);
  EXPECT_EQ(r2.complete("hi").completion, "tiny answer");

  // Everything down: one error naming every failure.
  f.tiny->fail = true;
  try {
    r2.complete("hi");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("big is down"), std::string::npos) << msg;
    EXPECT_NE(msg.find("tiny is down"), std::string::npos) << msg;
  }
  // Fallback off: the first error propagates unchanged.
  cfg.fallback_on_error = false;
  RouterBackend r3(f.all(), cfg);
  try {
    r3.complete("hi");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "big is down");
  }
}

TEST(Router, StreamAndChatRoute) {
  Fixture f;
  RouterConfig cfg;
  cfg.rules = {RouteRule{"weather", 1, std::nullopt, std::nullopt, "weather", std::nullopt, std::nullopt}};
  RouterBackend r(f.all(), cfg);
  std::string got;
  InferenceResult s = r.stream("weather today?", {}, [&](std::string_view p) {
    got += p;
    return true;
  });
  EXPECT_EQ(got, "big answer");
  EXPECT_EQ(s.metadata["router"]["decision"], "rule:weather");
  ChatResult c = r.chat({{"user", "weather in Paris", {}, "", ""}});
  EXPECT_EQ(c.message.content, "big answer");
  EXPECT_EQ(c.timings["router"]["decision"], "rule:weather");
  std::string chat_got;
  ChatResult cs = r.chat_stream({{"user", "weather in Paris", {}, "", ""}}, {}, {}, [&](std::string_view p) {
    chat_got += p;
    return true;
  });
  EXPECT_EQ(chat_got, "big answer");
  EXPECT_EQ(cs.timings["router"]["decision"], "rule:weather");
  // The routed backend is down: nothing was shown, so the stream falls back to the default.
  f.big->fail = true;
  chat_got.clear();
  cs = r.chat_stream({{"user", "weather in Paris", {}, "", ""}}, {}, {}, [&](std::string_view p) {
    chat_got += p;
    return true;
  });
  EXPECT_EQ(cs.timings["router"]["fallbacks"].size(), 1u);
  EXPECT_EQ(chat_got, cs.message.content);
  EXPECT_NE(chat_got, "big answer");
}

TEST(Router, RegexRulesSurviveLongAndInvalidUtf8Prompts) {
  Fixture f;
  RouterConfig cfg;
  cfg.rules = {
      RouteRule{"sql", 1, std::nullopt, std::nullopt, R"((?i)\bselect\b.+\bfrom\b)", std::nullopt, std::nullopt}};
  RouterBackend r(f.all(), cfg);
  // 4 MiB of text: libstdc++'s std::regex recurses per character and risks the stack on this.
  std::string big(4u << 20, 'a');
  EXPECT_EQ(r.complete(big + " SELECT x FROM t").metadata["router"]["decision"], "rule:sql");
  EXPECT_EQ(r.complete(big).metadata["router"]["decision"], "default");
  // Broken UTF-8 is searched, not rejected.
  EXPECT_EQ(r.complete("\xff\xfe select 1 from dual").metadata["router"]["decision"], "rule:sql");
}

TEST(Router, RejectsBadConfiguration) {
  Fixture f;
  RouterConfig cfg;
  cfg.rules = {RouteRule{"r", 5, std::nullopt, std::nullopt, "", std::nullopt, std::nullopt}};
  EXPECT_THROW(RouterBackend(f.all(), cfg), InvalidArgument);
  cfg.rules = {RouteRule{"r", 0, std::nullopt, std::nullopt, "([", std::nullopt, std::nullopt}};
  EXPECT_THROW(RouterBackend(f.all(), cfg), InvalidArgument);
  EXPECT_THROW(RouterBackend({}, {}), InvalidArgument);
}

}  // namespace
}  // namespace g2c::inference
