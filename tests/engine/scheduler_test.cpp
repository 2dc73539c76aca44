// The batching scheduler: concurrent requests give the ids of independent references (the README's
// greedy golden for stories260K, llama.cpp's greedy ids for the arch-goldens), bit-identical results
// to generate() run alone on the ref kernels, queue limits, cancel, chunked prefill that never stalls a
// running stream (counted in steps, never timed), a prompt over the context failing alone, and prompt
// log-probabilities through chunks equal to one plain Context::decode.
// Callbacks that block on a Gate hold the scheduler thread between steps, which makes the
// interleavings these tests need deterministic.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <future>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/goldens.hpp"
#include "g2c/engine/generate.hpp"
#include "g2c/engine/scheduler.hpp"
#include "g2c/kernels/kernels.hpp"
#include "g2c/model/model.hpp"
#include "g2c/sampling/sampler.hpp"
#include "g2c/tokenizer/tokenizer.hpp"

namespace g2c::engine {
namespace {

const std::string kShared = std::string(G2C_SHARED_DIR);

const std::vector<std::int32_t>& kGreedyIds = test::kStories260KGreedyIds;
const std::string& kGreedyText = test::kStories260KGreedyText;

std::vector<std::int32_t> slice(const std::vector<std::int32_t>& v, std::size_t from, std::size_t to) {
  return {v.begin() + static_cast<std::ptrdiff_t>(from), v.begin() + static_cast<std::ptrdiff_t>(to)};
}

GenerateParams greedy(std::int32_t n) {
  GenerateParams p;
  p.max_tokens = n;
  p.sampling.temperature = 0.0f;
  return p;
}

bool ref_isa() { return std::string(kernels::kernels().isa_name) == "ref"; }

// Held closed, a callback waiting on it holds the scheduler thread between two steps. Opens when
// destroyed, so a failing test never leaves the scheduler thread blocked (declare it after the
// Scheduler: it is destroyed first).
class Gate {
 public:
  ~Gate() { open(); }
  void open() {
    if (!opened_) p_.set_value();
    opened_ = true;
  }
  std::shared_future<void> future() const { return f_; }

 private:
  std::promise<void> p_;
  std::shared_future<void> f_ = p_.get_future().share();
  bool opened_ = false;
};

class Stories : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    model_ = model::Model::load(kShared + "/models/stories260K.gguf").release();
    tok_ = tokenizer::Tokenizer::from_gguf(*model_->gguf()).release();
  }
  static void TearDownTestSuite() {
    delete tok_;
    delete model_;
  }
  static SchedulerOptions options(std::int32_t n_parallel, std::int32_t n_ctx = 512) {
    SchedulerOptions o;
    o.n_parallel = n_parallel;
    o.n_ctx = n_ctx;
    o.threads = 1;
    o.queue_max = 16;
    return o;
  }
  static std::vector<std::int32_t> bos_then(std::size_t k) {
    std::vector<std::int32_t> p{1};
    p.insert(p.end(), kGreedyIds.begin(), kGreedyIds.begin() + static_cast<std::ptrdiff_t>(k));
    return p;
  }

  static model::Model* model_;
  static tokenizer::Tokenizer* tok_;
};
model::Model* Stories::model_ = nullptr;
tokenizer::Tokenizer* Stories::tok_ = nullptr;

// (1) Four greedy requests with different prompts (BOS and prefixes of the golden) run together and
// each continues the golden from where its prompt stops.
TEST_F(Stories, FourConcurrentGreedyRequestsMatchTheGolden) {
  Scheduler sched(*model_, *tok_, options(4));
  Gate gate;
  const std::vector<std::size_t> starts = {0, 3, 10, 20};
  std::vector<RequestHandle> hs;
  std::vector<std::string> streamed(starts.size());
  for (std::size_t i = 0; i < starts.size(); ++i) {
    auto f = gate.future();
    // Every request blocks on its first token until all four are submitted, so all share the steps.
    hs.push_back(sched.submit(bos_then(starts[i]), greedy(40), [&streamed, i, f](const TokenEvent& e) {
      if (e.index == 0) f.wait();
      streamed[i] += e.text;
      return true;
    }));
  }
  gate.open();
  for (std::size_t i = 0; i < starts.size(); ++i) {
    const GenerateResult r = hs[i].wait();
    EXPECT_EQ(r.tokens, slice(kGreedyIds, starts[i], starts[i] + 40)) << "request " << i;
    EXPECT_EQ(r.stop_reason, StopReason::kMaxTokens);
    EXPECT_EQ(r.stats.n_prompt_tokens, static_cast<std::int32_t>(starts[i] + 1));
    EXPECT_EQ(r.stats.n_generated, 40);
    EXPECT_EQ(r.stats.n_decode_steps, 39);
    EXPECT_EQ(streamed[i], r.text);
  }
  // BOS alone: the space rule of generate() applies ("Once", not " Once").
  const GenerateResult first = hs[0].wait();
  EXPECT_EQ(kGreedyText.rfind(first.text, 0), 0u) << first.text;
  EXPECT_GT(first.text.size(), 100u);
  const SchedulerStats st = sched.stats();
  EXPECT_EQ(st.completed, 4u);
  EXPECT_EQ(st.active, 0);
  EXPECT_EQ(st.kv_cells, 0);
  EXPECT_EQ(st.generated_tokens, 160u);
  EXPECT_EQ(st.prompt_tokens, 1u + 4u + 11u + 21u);
  EXPECT_LT(st.steps, 160u);  // shared passes: far fewer than one per token
}

// (1) llama.cpp's greedy ids for the F32 arch-goldens (the quantized ones are compared by teacher
// forcing in the model tests, since llama.cpp rounds their activations differently). Prompts are the
// golden input followed by k of its greedy ids, so request k must continue with greedy_ids[k:].
TEST(ArchGoldens, FourConcurrentGreedyRequestsMatchLlamaCpp) {
  std::ifstream in(kShared + "/arch-goldens/goldens.json");
  const nlohmann::json goldens = nlohmann::json::parse(in);
  for (const std::string name : {"qwen2-tiny", "gpt2-tiny", "llama3rope-tiny"}) {
    SCOPED_TRACE(name);
    const nlohmann::json* g = nullptr;
    for (const auto& m : goldens["models"])
      if (m["name"] == name) g = &m;
    ASSERT_NE(g, nullptr);
    auto model = model::Model::load(kShared + "/arch-goldens/" + (*g)["file"].get<std::string>());
    auto tok = tokenizer::Tokenizer::from_gguf(*model->gguf());
    SchedulerOptions o;
    o.n_parallel = 4;
    o.n_ctx = static_cast<std::int32_t>(std::min<std::int64_t>(256, model->hparams().n_ctx_train));
    o.threads = 1;
    o.chunk = 16;
    Scheduler sched(*model, *tok, o);
    Gate gate;

    struct Case {
      std::vector<std::int32_t> prompt, want;
    };
    std::vector<Case> cases;
    const auto input = (*g)["input_ids"].get<std::vector<std::int32_t>>();
    const auto greedy_ids = (*g)["greedy_ids"].get<std::vector<std::int32_t>>();
    for (std::size_t k : {0, 5, 11, 20}) {
      Case c{input, slice(greedy_ids, k, greedy_ids.size())};
      c.prompt.insert(c.prompt.end(), greedy_ids.begin(), greedy_ids.begin() + static_cast<std::ptrdiff_t>(k));
      cases.push_back(c);
    }
    if (g->contains("long_input")) {  // a fifth request, queued until a sequence frees
      const auto& li = (*g)["long_input"];
      cases.push_back(
          {li["input_ids"].get<std::vector<std::int32_t>>(), li["greedy_ids"].get<std::vector<std::int32_t>>()});
    }
    std::vector<RequestHandle> hs;
    for (const Case& c : cases) {
      GenerateParams p = greedy(static_cast<std::int32_t>(c.want.size()));
      p.ignore_eos = true;  // the goldens decode past EOS
      auto f = gate.future();
      hs.push_back(sched.submit(c.prompt, p, [f](const TokenEvent&) {
        f.wait();
        return true;
      }));
    }
    gate.open();
    for (std::size_t i = 0; i < cases.size(); ++i) EXPECT_EQ(hs[i].wait().tokens, cases[i].want) << "request " << i;
  }
}

// (2) Every request equals generate() run alone: on ref bit for bit (tokens, text, logprobs), elsewhere
// only the streaming invariants are checked (SIMD batched and single-token passes may round apart).
TEST_F(Stories, EachRequestEqualsGenerateAlone) {
  struct Case {
    std::vector<std::int32_t> prompt;
    GenerateParams params;
  };
  std::vector<Case> cases;
  {
    GenerateParams p = greedy(40);
    p.logprobs = true;
    cases.push_back({{1}, p});
  }
  {
    GenerateParams p;  // seeded sampling with the default chain
    p.max_tokens = 50;
    p.sampling.temperature = 1.0f;
    p.sampling.seed = 7;
    p.logprobs = true;
    cases.push_back({tok_->encode("Once upon a time", true, false), p});
  }
  {
    GenerateParams p;  // penalties over the prompt window, and a stop string
    p.max_tokens = 60;
    p.sampling.temperature = 0.8f;
    p.sampling.seed = 3;
    p.sampling.repeat_penalty = 1.3f;
    p.stop = {". She"};
    cases.push_back({bos_then(30), p});
  }
  {
    GenerateParams p;  // hot and unfiltered: byte tokens, UTF-8 held back
    p.max_tokens = 100;
    p.ignore_eos = true;
    p.sampling.temperature = 8.0f;
    p.sampling.top_k = 0;
    p.sampling.top_p = 1.0f;
    p.sampling.min_p = 0.0f;
    p.sampling.seed = 11;
    cases.push_back({{1}, p});
  }
  {
    GenerateParams p = greedy(-1);  // until the 128-position context is full
    p.ignore_eos = true;
    cases.push_back({bos_then(20), p});
  }
  SchedulerOptions o = options(3, 128);
  o.chunk = 8;  // prompts split into chunks that share steps with the others' decode tokens
  Scheduler sched(*model_, *tok_, o);
  std::vector<RequestHandle> hs;
  std::vector<std::string> streamed(cases.size());
  for (std::size_t i = 0; i < cases.size(); ++i) {
    hs.push_back(sched.submit(cases[i].prompt, cases[i].params, [&streamed, i](const TokenEvent& e) {
      streamed[i] += e.text;
      return true;
    }));
  }
  model::ContextOptions co;
  co.n_ctx = 128;
  co.threads = 1;
  model::Context alone(*model_, co);
  std::set<StopReason> reasons;
  for (std::size_t i = 0; i < cases.size(); ++i) {
    SCOPED_TRACE("request " + std::to_string(i));
    const GenerateResult r = hs[i].wait();
    EXPECT_EQ(streamed[i], r.text);
    EXPECT_EQ(r.seed, cases[i].params.sampling.seed == sampling::kRandomSeed ? r.seed : cases[i].params.sampling.seed);
    EXPECT_EQ(r.logprobs.size(), cases[i].params.logprobs ? r.tokens.size() : 0u);
    const GenerateResult want = generate(alone, *tok_, cases[i].prompt, cases[i].params);
    reasons.insert(r.stop_reason);
    if (!ref_isa()) continue;
    EXPECT_EQ(r.tokens, want.tokens);
    EXPECT_EQ(r.text, want.text);
    EXPECT_EQ(r.logprobs, want.logprobs);
    EXPECT_EQ(r.stop_reason, want.stop_reason);
    EXPECT_EQ(r.stop_string, want.stop_string);
    EXPECT_EQ(r.stats.n_generated, want.stats.n_generated);
    EXPECT_EQ(r.stats.n_decode_steps, want.stats.n_decode_steps);
  }
  if (!ref_isa())
    GTEST_SKIP() << "bit-identity is checked under G2C_ISA=ref (this run: " << kernels::kernels().isa_name << ")";
}

// (3) n_parallel running + queue_max waiting, then QueueFull.
TEST_F(Stories, QueueFullBeyondParallelPlusQueueMax) {
  SchedulerOptions o = options(2);
  o.queue_max = 1;
  Scheduler sched(*model_, *tok_, o);
  Gate gate;
  std::promise<void> blocked;
  auto f = gate.future();
  // No request can complete before its first callback, and every first callback waits for the gate,
  // so nothing leaves the scheduler while the test submits.
  const OnToken hold = [f](const TokenEvent&) {
    f.wait();
    return true;
  };
  std::vector<RequestHandle> hs;
  for (int i = 0; i < 3; ++i) hs.push_back(sched.submit(bos_then(static_cast<std::size_t>(i)), greedy(8), hold));
  EXPECT_THROW(sched.submit(bos_then(0), greedy(8), hold), QueueFull);
  EXPECT_THROW(sched.submit(bos_then(1), greedy(8), hold), QueueFull);
  try {
    sched.submit(bos_then(0), greedy(8));
    ADD_FAILURE() << "no QueueFull";
  } catch (const Error& e) {  // a g2c::Error, so a server's catch-all error path sees it too
    EXPECT_NE(std::string(e.what()).find("queue full"), std::string::npos) << e.what();
  }
  SchedulerStats st = sched.stats();
  EXPECT_EQ(st.submitted, 3u);
  EXPECT_EQ(st.rejected, 3u);
  EXPECT_EQ(st.active + st.queued, 3);
  gate.open();
  for (int i = 0; i < 3; ++i) {
    const GenerateResult r = hs[static_cast<std::size_t>(i)].wait();
    EXPECT_EQ(r.tokens, slice(kGreedyIds, static_cast<std::size_t>(i), static_cast<std::size_t>(i) + 8));
  }
  // Room again once they are done.
  EXPECT_EQ(sched.submit(bos_then(0), greedy(3)).wait().tokens, slice(kGreedyIds, 0, 3));
}

// (4) Cancel from another thread, by the callback, and of a queued request; the sequence is freed and
// the next request runs in it.
TEST_F(Stories, CancelFreesTheSequence) {
  Scheduler sched(*model_, *tok_, options(1));
  Gate gate;
  std::promise<void> at_token_3;
  auto f = gate.future();
  RequestHandle a = sched.submit(bos_then(0), greedy(200), [&at_token_3, f](const TokenEvent& e) {
    if (e.index == 3) {
      at_token_3.set_value();
      f.wait();  // the scheduler thread stays here until the test has canceled
    }
    return true;
  });
  at_token_3.get_future().wait();
  RequestHandle queued = sched.submit(bos_then(0), greedy(5));  // n_parallel 1: waits
  EXPECT_EQ(sched.stats().active, 1);
  EXPECT_EQ(sched.stats().queued, 1);
  a.cancel();
  queued.cancel();
  gate.open();
  const GenerateResult ra = a.wait();
  EXPECT_EQ(ra.stop_reason, StopReason::kCanceled);
  EXPECT_EQ(ra.tokens, slice(kGreedyIds, 0, 4));  // canceled before the next step: no fifth token
  const GenerateResult rq = queued.wait();
  EXPECT_EQ(rq.stop_reason, StopReason::kCanceled);
  EXPECT_TRUE(rq.tokens.empty());
  SchedulerStats st = sched.stats();
  EXPECT_EQ(st.active, 0);
  EXPECT_EQ(st.kv_cells, 0);
  EXPECT_EQ(st.canceled, 2u);

  // A callback returning false cancels too.
  int seen = 0;
  const GenerateResult rb = sched.submit(bos_then(0), greedy(65), [&](const TokenEvent&) { return ++seen < 5; }).wait();
  EXPECT_EQ(rb.stop_reason, StopReason::kCanceled);
  EXPECT_EQ(rb.text, "Once upon a time,");
  // The freed sequence serves the next request.
  EXPECT_EQ(sched.submit(bos_then(10), greedy(10)).wait().tokens, slice(kGreedyIds, 10, 20));
  EXPECT_EQ(sched.stats().canceled, 3u);
  EXPECT_EQ(sched.stats().active, 0);
}

// (5) A 200-token prompt arrives while a stream runs: with chunk 32 its prefill takes 7 steps, and the
// running stream still gets a token on every step.
TEST_F(Stories, LongPromptDoesNotStallARunningStream) {
  SchedulerOptions o = options(2);
  o.chunk = 32;
  Scheduler sched(*model_, *tok_, o);
  std::vector<std::int32_t> long_prompt{1};
  while (long_prompt.size() < 200) long_prompt.push_back(kGreedyIds[long_prompt.size() % kGreedyIds.size()]);
  std::vector<std::uint64_t> a_steps, b_steps;
  RequestHandle b;
  std::uint64_t submitted_at = 0;
  RequestHandle a = sched.submit(bos_then(0), greedy(40), [&](const TokenEvent& e) {
    a_steps.push_back(sched.stats().steps);
    if (e.index == 5) {  // B arrives between two of A's steps
      submitted_at = a_steps.back();
      b = sched.submit(long_prompt, greedy(5), [&](const TokenEvent&) {
        b_steps.push_back(sched.stats().steps);
        return true;
      });
    }
    return true;
  });
  const GenerateResult ra = a.wait();
  const GenerateResult rb = b.wait();
  EXPECT_EQ(ra.tokens, slice(kGreedyIds, 0, 40));
  ASSERT_EQ(a_steps.size(), 40u);
  for (std::size_t i = 1; i < a_steps.size(); ++i) EXPECT_EQ(a_steps[i], a_steps[i - 1] + 1) << "token " << i;
  ASSERT_EQ(b_steps.size(), 5u);
  EXPECT_EQ(b_steps[0], submitted_at + 7);  // ceil(200 / 32) steps of prefill, the first token on the last
  EXPECT_EQ(rb.stats.n_prompt_tokens, 200);
  EXPECT_EQ(rb.tokens.size(), 5u);
  const std::uint64_t overlap = b_steps[0] - submitted_at;
  EXPECT_GE(a_steps.back(), submitted_at + overlap);  // A was still running through B's whole prefill
}

// (6) A prompt over the context fails that request only, with ContextOverflow's message.
TEST_F(Stories, PromptOverTheContextFailsThatRequestOnly) {
  Scheduler sched(*model_, *tok_, options(2, 64));
  Gate gate;
  auto f = gate.future();
  RequestHandle a = sched.submit(bos_then(0), greedy(30), [f](const TokenEvent&) {
    f.wait();
    return true;
  });
  const std::vector<std::int32_t> too_long(100, 1);
  try {
    sched.submit(too_long, greedy(5));
    ADD_FAILURE() << "no ContextOverflow";
  } catch (const model::ContextOverflow& e) {
    EXPECT_NE(std::string(e.what()).find("100 tokens but the context holds 64"), std::string::npos) << e.what();
  }
  EXPECT_THROW(sched.submit(std::vector<std::int32_t>{}, greedy(5)), InvalidArgument);
  // A callback that throws fails its own request.
  RequestHandle c = sched.submit(bos_then(3), greedy(5),
                                 [](const TokenEvent&) -> bool { throw InvalidArgument("client went away"); });
  gate.open();
  EXPECT_EQ(a.wait().tokens, slice(kGreedyIds, 0, 30));
  EXPECT_THROW(c.wait(), InvalidArgument);
  // With truncate_prompt the same prompt runs (generate()'s rule: room for min(max_tokens, n_ctx/2)).
  GenerateParams p = greedy(5);
  p.truncate_prompt = true;
  const GenerateResult rt = sched.submit(too_long, p).wait();
  EXPECT_EQ(rt.stats.n_prompt_tokens, 59);
  EXPECT_EQ(rt.stats.n_prompt_dropped, 41);
  EXPECT_EQ(rt.tokens.size(), 5u);
  const SchedulerStats st = sched.stats();
  EXPECT_EQ(st.submitted, 3u);
  EXPECT_EQ(st.failed, 1u);
  EXPECT_EQ(st.active, 0);
}

TEST_F(Stories, ShutdownCancelsOrDrains) {
  std::vector<RequestHandle> hs;
  {
    Scheduler sched(*model_, *tok_, options(1));
    Gate gate;
    auto f = gate.future();
    hs.push_back(sched.submit(bos_then(0), greedy(100), [f](const TokenEvent&) {
      f.wait();
      return true;
    }));
    hs.push_back(sched.submit(bos_then(0), greedy(100)));  // queued
    gate.open();
  }  // the destructor cancels both
  for (const auto& h : hs) EXPECT_EQ(h.wait().stop_reason, StopReason::kCanceled);
  EXPECT_TRUE(hs[1].wait().tokens.empty());

  Scheduler sched(*model_, *tok_, options(1));
  RequestHandle x = sched.submit(bos_then(0), greedy(20));
  RequestHandle y = sched.submit(bos_then(5), greedy(20));
  sched.shutdown(Scheduler::ShutdownMode::kDrain);
  EXPECT_EQ(x.wait().tokens, slice(kGreedyIds, 0, 20));
  EXPECT_EQ(y.wait().tokens, slice(kGreedyIds, 5, 25));
  EXPECT_THROW(sched.submit(bos_then(0), greedy(1)), SchedulerClosed);
}

// (8) Prompt-prefix reuse. A finished request leaves bos + golden[0, 14) in its sequence (its prompt
// and the generated tokens fed back); the next request, bos + golden[0, 20), reuses those 15 tokens,
// computes 6, and still continues the golden (the independent check); under G2C_ISA=ref its tokens
// and logprobs equal, bit for bit, the same request run with reuse off. A prompt sharing nothing, and
// a prompt_logprobs request, reuse nothing; the counts reach SchedulerStats.
TEST_F(Stories, PromptPrefixReuseComputesOnlyTheRestAndChangesNothing) {
  Scheduler sched(*model_, *tok_, options(2));
  const GenerateResult a = sched.submit(bos_then(5), greedy(10)).wait();
  EXPECT_EQ(a.tokens, slice(kGreedyIds, 5, 15));
  EXPECT_EQ(a.stats.n_prompt_cached, 0);
  GenerateParams p = greedy(20);
  p.logprobs = true;
  const GenerateResult b = sched.submit(bos_then(20), p).wait();
  EXPECT_EQ(b.stats.n_prompt_cached, 15);
  EXPECT_EQ(b.stats.n_prompt_tokens, 21);
  EXPECT_EQ(b.tokens, slice(kGreedyIds, 20, 40));
  EXPECT_EQ(sched.stats().prompt_tokens_cached, 15u);
  EXPECT_EQ(sched.stats().prompt_tokens, 6u + 6u);  // a's 6, b's 21 - 15

  // The same request again: now the whole prompt but its last token is cached (20).
  const GenerateResult b2 = sched.submit(bos_then(20), p).wait();
  EXPECT_EQ(b2.stats.n_prompt_cached, 20);

  SchedulerOptions off = options(2);
  off.prefix_reuse = false;
  Scheduler fresh(*model_, *tok_, off);
  (void)fresh.submit(bos_then(5), greedy(10)).wait();
  const GenerateResult f = fresh.submit(bos_then(20), p).wait();
  EXPECT_EQ(f.stats.n_prompt_cached, 0);
  EXPECT_EQ(fresh.stats().prompt_tokens_cached, 0u);
  for (const GenerateResult* r : {&b, &b2}) {
    EXPECT_EQ(r->tokens, f.tokens);
    ASSERT_EQ(r->logprobs.size(), f.logprobs.size());
    for (std::size_t i = 0; i < f.logprobs.size(); ++i) {
      if (ref_isa())
        EXPECT_EQ(r->logprobs[i], f.logprobs[i]) << "token " << i;
      else
        EXPECT_NEAR(r->logprobs[i], f.logprobs[i], 1e-4) << "token " << i;
    }
  }

  // Nothing shared (no BOS): nothing reused; prompt_logprobs: never reused.
  const GenerateResult c = sched.submit(slice(kGreedyIds, 0, 8), greedy(2)).wait();
  EXPECT_EQ(c.stats.n_prompt_cached, 0);
  GenerateParams pl = greedy(2);
  pl.prompt_logprobs = true;
  const GenerateResult d = sched.submit(bos_then(20), pl).wait();
  EXPECT_EQ(d.stats.n_prompt_cached, 0);
  EXPECT_EQ(d.tokens, slice(kGreedyIds, 20, 22));
}

// (7) Prompt log-probabilities (echo scoring). The independent reference is one plain Context::decode
// of the whole prompt with logits for every token: position i - 1's row scores token i. Through the
// scheduler the prompt arrives in chunks, with other requests' prompt chunks and decode tokens in the
// same passes; the values must not notice (exactly under G2C_ISA=ref, to float rounding elsewhere).
struct PromptScores {
  std::vector<double> logprobs;                          // [n], [0] unused
  std::vector<std::vector<sampling::TokenLogprob>> top;  // [n], [0] unused
};
PromptScores plain_decode_scores(const model::Model& model, const std::vector<std::int32_t>& prompt, std::int32_t k) {
  model::ContextOptions co;
  co.n_ctx = static_cast<std::int32_t>(prompt.size());
  co.threads = 1;
  model::Context ctx(model, co);
  std::vector<model::BatchToken> batch;
  for (std::size_t i = 0; i < prompt.size(); ++i) batch.push_back({prompt[i], 0, static_cast<std::int32_t>(i), true});
  ctx.decode(batch);
  PromptScores s;
  s.logprobs.resize(prompt.size());
  s.top.resize(prompt.size());
  for (std::size_t i = 1; i < prompt.size(); ++i) {
    const auto logits = ctx.logits(static_cast<std::int32_t>(i - 1));
    s.logprobs[i] = sampling::log_softmax_at(logits, prompt[i]);
    s.top[i] = sampling::top_logprobs(logits, k);
  }
  return s;
}

void expect_same_logprob(double got, double want, const std::string& what) {
  if (ref_isa()) {
    EXPECT_EQ(got, want) << what;
  } else {
    EXPECT_NEAR(got, want, 1e-4) << what;
  }
}

void expect_prompt_scores(const GenerateResult& r, const std::vector<std::int32_t>& prompt, const PromptScores& want,
                          std::int32_t k) {
  ASSERT_EQ(r.prompt_logprobs.size(), prompt.size());
  EXPECT_TRUE(std::isnan(r.prompt_logprobs[0]));
  for (std::size_t i = 1; i < prompt.size(); ++i)
    expect_same_logprob(r.prompt_logprobs[i], want.logprobs[i], "prompt token " + std::to_string(i));
  if (k == 0) {
    EXPECT_TRUE(r.prompt_top_logprobs.empty());
    return;
  }
  ASSERT_EQ(r.prompt_top_logprobs.size(), prompt.size());
  EXPECT_TRUE(r.prompt_top_logprobs[0].empty());
  for (std::size_t i = 1; i < prompt.size(); ++i) {
    ASSERT_EQ(r.prompt_top_logprobs[i].size(), static_cast<std::size_t>(k));
    for (std::size_t j = 0; j < static_cast<std::size_t>(k); ++j) {
      const std::string what = "prompt token " + std::to_string(i) + " rank " + std::to_string(j);
      expect_same_logprob(r.prompt_top_logprobs[i][j].logprob, want.top[i][j].logprob, what);
      if (ref_isa()) {
        EXPECT_EQ(r.prompt_top_logprobs[i][j].token, want.top[i][j].token) << what;
      }
    }
  }
}

// Three scoring requests in flight at once, prompts of several chunks, one of them generating (its
// decode tokens share passes with the others' scored chunks), two with max_tokens 0.
TEST_F(Stories, PromptLogprobsThroughChunksEqualOnePlainDecode) {
  SchedulerOptions o = options(3, 256);
  o.chunk = 8;
  Scheduler sched(*model_, *tok_, o);
  Gate gate;
  struct Case {
    std::vector<std::int32_t> prompt;
    GenerateParams params;
  };
  std::vector<Case> cases(3);
  cases[0].prompt = bos_then(3);  // generates 30 tokens while the others prefill
  cases[0].params = greedy(30);
  cases[0].params.top_logprobs = 3;
  cases[1].prompt = bos_then(50);  // 51 tokens: 7 chunks
  cases[1].params = greedy(0);
  cases[1].params.top_logprobs = 5;
  cases[2].prompt = tok_->encode(
      "Once upon a time, there was a little girl named Lily. She loved to play outside in the park with her "
      "friends.",
      true, false);
  cases[2].params = greedy(0);
  ASSERT_GT(cases[2].prompt.size(), 2u * static_cast<std::size_t>(o.chunk));
  std::vector<RequestHandle> hs;
  for (std::size_t i = 0; i < cases.size(); ++i) {
    cases[i].params.prompt_logprobs = true;
    auto f = gate.future();
    // The first request's first token holds the scheduler until all three are submitted.
    hs.push_back(sched.submit(cases[i].prompt, cases[i].params, [f](const TokenEvent& e) {
      if (e.index == 0) f.wait();
      return true;
    }));
  }
  gate.open();
  model::ContextOptions co;
  co.n_ctx = 256;
  co.threads = 1;
  model::Context alone(*model_, co);
  for (std::size_t i = 0; i < cases.size(); ++i) {
    SCOPED_TRACE("request " + std::to_string(i));
    const GenerateResult r = hs[i].wait();
    const std::int32_t k = cases[i].params.top_logprobs;
    expect_prompt_scores(r, cases[i].prompt, plain_decode_scores(*model_, cases[i].prompt, k), k);
    // generate() alone gives the same values.
    const GenerateResult want = generate(alone, *tok_, cases[i].prompt, cases[i].params);
    ASSERT_EQ(want.prompt_logprobs.size(), r.prompt_logprobs.size());
    for (std::size_t j = 1; j < r.prompt_logprobs.size(); ++j)
      expect_same_logprob(r.prompt_logprobs[j], want.prompt_logprobs[j],
                          "vs generate(), prompt token " + std::to_string(j));
    EXPECT_EQ(r.tokens, want.tokens);
    EXPECT_EQ(r.top_logprobs.size(), r.tokens.size());
    if (ref_isa()) {
      EXPECT_EQ(r.logprobs, want.logprobs);
      EXPECT_EQ(r.prompt_logprobs.size(), want.prompt_logprobs.size());
      ASSERT_EQ(r.top_logprobs.size(), want.top_logprobs.size());
      for (std::size_t j = 0; j < r.top_logprobs.size(); ++j) {
        for (std::size_t a = 0; a < r.top_logprobs[j].size(); ++a) {
          EXPECT_EQ(r.top_logprobs[j][a].token, want.top_logprobs[j][a].token);
          EXPECT_EQ(r.top_logprobs[j][a].logprob, want.top_logprobs[j][a].logprob);
        }
      }
    }
  }
  const GenerateResult r0 = hs[0].wait();
  EXPECT_EQ(r0.tokens, slice(kGreedyIds, 3, 33));
  for (std::size_t j = 0; j < r0.tokens.size(); ++j) EXPECT_EQ(r0.top_logprobs[j].at(0).token, r0.tokens[j]);
  for (std::size_t i : {1, 2}) {  // echo scoring: the prompt's values, nothing generated
    const GenerateResult r = hs[i].wait();
    EXPECT_TRUE(r.tokens.empty());
    EXPECT_TRUE(r.logprobs.empty());
    EXPECT_EQ(r.stop_reason, StopReason::kMaxTokens);
    EXPECT_EQ(r.stats.n_generated, 0);
    EXPECT_EQ(r.stats.n_prompt_tokens, static_cast<std::int32_t>(cases[i].prompt.size()));
  }
  const SchedulerStats st = sched.stats();
  EXPECT_EQ(st.completed, 3u);
  EXPECT_EQ(st.generated_tokens, 30u);
  EXPECT_EQ(st.prompt_tokens, cases[0].prompt.size() + cases[1].prompt.size() + cases[2].prompt.size());
  EXPECT_EQ(st.active, 0);

  GenerateParams bad = greedy(1);
  bad.top_logprobs = kMaxTopLogprobs + 1;
  EXPECT_THROW(sched.submit(bos_then(0), bad), InvalidArgument);
}

// The same on arch-golden models: their input and greedy ids as prompts (56 tokens, chunk 16).
TEST(ArchGoldens, PromptLogprobsThroughChunksEqualOnePlainDecode) {
  std::ifstream in(kShared + "/arch-goldens/goldens.json");
  const nlohmann::json goldens = nlohmann::json::parse(in);
  for (const std::string name : {"qwen2-tiny", "gpt2-tiny"}) {
    SCOPED_TRACE(name);
    const nlohmann::json* g = nullptr;
    for (const auto& m : goldens["models"])
      if (m["name"] == name) g = &m;
    ASSERT_NE(g, nullptr);
    auto model = model::Model::load(kShared + "/arch-goldens/" + (*g)["file"].get<std::string>());
    auto tok = tokenizer::Tokenizer::from_gguf(*model->gguf());
    std::vector<std::int32_t> full = (*g)["input_ids"].get<std::vector<std::int32_t>>();
    const std::size_t n_input = full.size();
    const auto greedy_ids = (*g)["greedy_ids"].get<std::vector<std::int32_t>>();
    full.insert(full.end(), greedy_ids.begin(), greedy_ids.end());
    SchedulerOptions o;
    o.n_parallel = 4;
    o.n_ctx = static_cast<std::int32_t>(std::min<std::int64_t>(256, model->hparams().n_ctx_train));
    o.threads = 1;
    o.chunk = 16;
    Scheduler sched(*model, *tok, o);
    Gate gate;
    auto f = gate.future();
    // A one-token request whose callback holds the scheduler until the three below are queued.
    RequestHandle blocker = sched.submit(std::vector<std::int32_t>{full[0]}, greedy(1), [f](const TokenEvent&) {
      f.wait();
      return true;
    });
    struct Case {
      std::vector<std::int32_t> prompt;
      std::int32_t max_tokens, top;
    };
    const std::vector<Case> cases = {{full, 0, 5}, {slice(full, 0, 40), 4, 2}, {slice(full, 0, 30), 0, 0}};
    std::vector<RequestHandle> hs;
    std::vector<GenerateParams> params;
    for (const Case& c : cases) {
      GenerateParams p = greedy(c.max_tokens);
      p.ignore_eos = true;
      p.prompt_logprobs = true;
      p.top_logprobs = c.top;
      params.push_back(p);
      hs.push_back(sched.submit(c.prompt, p));
    }
    gate.open();
    model::ContextOptions co;
    co.n_ctx = o.n_ctx;
    co.threads = 1;
    model::Context alone(*model, co);
    for (std::size_t i = 0; i < cases.size(); ++i) {
      SCOPED_TRACE("request " + std::to_string(i));
      const GenerateResult r = hs[i].wait();
      const PromptScores want = plain_decode_scores(*model, cases[i].prompt, cases[i].top);
      expect_prompt_scores(r, cases[i].prompt, want, cases[i].top);
      expect_prompt_scores(generate(alone, *tok, cases[i].prompt, params[i]), cases[i].prompt, want, cases[i].top);
      EXPECT_EQ(r.tokens.size(), static_cast<std::size_t>(cases[i].max_tokens));
    }
    // The 40-token prompt continues with llama.cpp's greedy ids.
    EXPECT_EQ(hs[1].wait().tokens, slice(greedy_ids, 40 - n_input, 40 - n_input + 4));
    blocker.wait();
  }
}

}  // namespace
}  // namespace g2c::engine
