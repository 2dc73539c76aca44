// The cost of constrained decoding per generated token: each step's SequenceState::step() under the
// "any JSON object" grammar, against a shadow SequenceState without a grammar stepping on the same logits
// (its own choice discarded), so the difference is what the grammar adds (check the sampled token, mask
// the vocabulary when it is rejected, resample, advance). Not a test: timings are recorded in
// docs/benchmarks.md (constrained decoding section), never asserted.
//
//   build/release/tests/engine/grammar_bench MODEL [threads] [tokens] [runs]
//
// Temperature 1.0 with top-k 40 / top-p 0.95 / min-p 0.05 (the CLI's defaults, as llama-cli's), seeds
// 1..runs, prompt "Once upon a time"; max_tokens per run; the forward pass of each step is timed too.
#include <fmt/core.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <string>
#include <vector>

#include "g2c/engine/sequence.hpp"
#include "g2c/model/model.hpp"
#include "g2c/sampling/grammar.hpp"
#include "g2c/sampling/json_schema.hpp"
#include "g2c/tokenizer/tokenizer.hpp"

namespace {
double now_ms() {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
}  // namespace

int main(int argc, char** argv) {
  using namespace g2c;
  if (argc < 2) {
    fmt::print(stderr, "usage: grammar_bench MODEL [threads] [tokens] [runs]\n");
    return 2;
  }
  const std::string path = argv[1];
  const int threads = argc > 2 ? std::atoi(argv[2]) : 2;
  const int n_tokens = argc > 3 ? std::atoi(argv[3]) : 128;
  const int runs = argc > 4 ? std::atoi(argv[4]) : 5;
  try {
    auto model = model::Model::load(path);
    auto tok = tokenizer::Tokenizer::from_gguf(*model->gguf());
    model::ContextOptions co;
    co.n_ctx = 512;
    co.threads = threads;
    model::Context ctx(*model, co);
    const auto prompt = tok->encode("Once upon a time", true, false);
    const auto grammar = sampling::Grammar::parse(sampling::json_object_gbnf());
    double t_vocab = now_ms();
    engine::grammar_vocab(*tok);  // built once per vocabulary; later requests reuse it
    t_vocab = now_ms() - t_vocab;

    std::vector<double> added, with_g, without_g, forward;
    int n_complete = 0;
    for (int run = 1; run <= runs; ++run) {
      engine::GenerateParams gp;
      gp.max_tokens = n_tokens;
      gp.sampling.temperature = 1.0f;
      gp.sampling.seed = static_cast<std::uint64_t>(run);
      engine::GenerateParams plain = gp;
      gp.grammar = grammar;
      engine::SequenceState sg(*tok, prompt, 0, gp);
      engine::SequenceState sp(*tok, prompt, 0, plain);
      std::vector<model::BatchToken> batch;
      for (std::size_t i = 0; i < prompt.size(); ++i) {
        batch.push_back({prompt[i], 0, static_cast<std::int32_t>(i), i + 1 == prompt.size()});
      }
      ctx.clear(0);
      ctx.decode(batch);
      for (;;) {
        const auto logits = ctx.logits(0);
        const double t0 = now_ms();
        const bool go = sg.step(logits, {}, ctx.n_ctx());
        const double t1 = now_ms();
        sp.step(logits, {}, ctx.n_ctx());
        const double t2 = now_ms();
        with_g.push_back(t1 - t0);
        without_g.push_back(t2 - t1);
        added.push_back((t1 - t0) - (t2 - t1));
        if (!go) break;
        const double t3 = now_ms();
        ctx.decode({{sg.next_token(), 0, sg.next_pos(), true}});
        forward.push_back(now_ms() - t3);
      }
      const auto r = sg.finish({});
      n_complete += r.grammar_complete ? 1 : 0;
    }
    auto mean = [](const std::vector<double>& v) {
      double s = 0;
      for (double x : v) s += x;
      return v.empty() ? 0.0 : s / static_cast<double>(v.size());
    };
    const double step = mean(forward);
    fmt::print("model {} ({}), {} threads, {} runs x up to {} tokens, T=1.0, grammar: any JSON object\n", path,
               model->describe(), ctx.threads(), runs, n_tokens);
    fmt::print("vocabulary trie built once: {:.2f} ms\n", t_vocab);
    fmt::print("steps timed: {}; runs whose JSON completed: {}\n", with_g.size(), n_complete);
    fmt::print("forward pass (decode step), mean: {:.3f} ms\n", step);
    fmt::print("sampling step without grammar, mean: {:.4f} ms\n", mean(without_g));
    fmt::print("sampling step with grammar, mean: {:.4f} ms, worst: {:.3f} ms\n", mean(with_g),
               *std::max_element(with_g.begin(), with_g.end()));
    fmt::print("added by the grammar per token, mean: {:.4f} ms ({:.2f}% of the decode step), worst: {:.3f} ms\n",
               mean(added), 100.0 * mean(added) / step, *std::max_element(added.begin(), added.end()));
  } catch (const std::exception& e) {
    fmt::print(stderr, "grammar_bench: {}\n", e.what());
    return 1;
  }
  return 0;
}
