#include "g2c/engine/generate.hpp"

#include <string>

#include "g2c/core/timer.hpp"
#include "g2c/engine/sequence.hpp"

namespace g2c::engine {

const char* stop_reason_name(StopReason r) {
  switch (r) {
    case StopReason::kEog: return "eog";
    case StopReason::kMaxTokens: return "max_tokens";
    case StopReason::kStopString: return "stop";
    case StopReason::kCanceled: return "canceled";
    case StopReason::kContextFull: return "context_full";
  }
  return "?";
}

const char* done_reason(StopReason r) {
  switch (r) {
    case StopReason::kEog:
    case StopReason::kStopString: return "stop";
    case StopReason::kMaxTokens:
    case StopReason::kContextFull: return "length";
    case StopReason::kCanceled: return "canceled";
  }
  return "stop";
}

double GenerateStats::prompt_tokens_per_second() const {
  return prefill_ns > 0 ? static_cast<double>(n_prompt_tokens) * 1e9 / static_cast<double>(prefill_ns) : 0.0;
}

double GenerateStats::generation_tokens_per_second() const {
  return decode_ns > 0 ? static_cast<double>(n_generated) * 1e9 / static_cast<double>(decode_ns) : 0.0;
}

namespace {

// Restores the context's cache mode when generate() leaves, also by an exception.
class NaiveScope {
 public:
  NaiveScope(model::Context& ctx, bool naive) : ctx_(ctx), saved_(ctx.naive()) { ctx_.set_naive(naive); }
  ~NaiveScope() { ctx_.set_naive(saved_); }
  NaiveScope(const NaiveScope&) = delete;
  NaiveScope& operator=(const NaiveScope&) = delete;

 private:
  model::Context& ctx_;
  bool saved_;
};

}  // namespace

GenerateResult generate(model::Context& ctx, const tokenizer::Tokenizer& tok, std::span<const std::int32_t> prompt,
                        const GenerateParams& params, const OnToken& on_token) {
  if (prompt.empty()) throw InvalidArgument("generate: the prompt has no tokens (expected at least one, e.g. BOS)");
  if (params.seq < 0 || params.seq >= ctx.n_seq()) {
    throw InvalidArgument("generate: sequence " + std::to_string(params.seq) + " out of range [0, " +
                          std::to_string(ctx.n_seq()) + ")");
  }
  std::vector<std::int32_t> kept;  // the truncated prompt, when truncation applies
  const std::span<const std::int32_t> run = fit_prompt("generate", tok, prompt, params, ctx.n_ctx(), kept);
  const auto n_prompt = static_cast<std::int32_t>(run.size());

  NaiveScope naive_scope(ctx, params.naive);
  SequenceState state(tok, run, static_cast<std::int32_t>(prompt.size()) - n_prompt, params);

  const std::int32_t seq = params.seq;
  ctx.clear(seq);
  std::vector<model::BatchToken> batch;
  batch.reserve(run.size());
  // Logits for the last prompt token, or for every one when the prompt is scored: output i is then
  // prompt token i's row, which predicts token i + 1.
  const bool score = state.scores_prompt();
  for (std::int32_t i = 0; i < n_prompt; ++i)
    batch.push_back({run[static_cast<std::size_t>(i)], seq, i, score || i == n_prompt - 1});
  const std::int64_t t_start = now_ns();
  ctx.decode(batch);
  if (score)
    for (std::int32_t i = 0; i + 1 < n_prompt; ++i) state.score_prompt(i + 1, ctx.logits(i));
  const std::int64_t t_prefilled = now_ns();
  state.result().stats.prefill_ns = t_prefilled - t_start;

  std::int32_t out = ctx.n_outputs() - 1;  // the last prompt token's row, then each decode step's only one
  while (state.step(ctx.logits(out), on_token, ctx.n_ctx())) {
    const model::BatchToken next{state.next_token(), seq, state.next_pos(), true};
    ctx.decode(std::span<const model::BatchToken>(&next, 1));
    out = 0;
  }
  GenerateResult res = state.finish(on_token);
  res.stats.decode_ns = now_ns() - t_prefilled;
  return res;
}

}  // namespace g2c::engine
