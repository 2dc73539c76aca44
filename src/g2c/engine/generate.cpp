#include "g2c/engine/generate.hpp"

#include <algorithm>
#include <string>
#include <utility>

#include "g2c/core/log.hpp"
#include "g2c/core/timer.hpp"
#include "g2c/engine/stop_matcher.hpp"

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
  std::int32_t n_dropped = 0;
  if (static_cast<std::int64_t>(prompt.size()) > ctx.n_ctx()) {
    if (!params.truncate_prompt) {
      throw model::ContextOverflow("generate: the prompt has " + std::to_string(prompt.size()) +
                                   " tokens but the context holds " + std::to_string(ctx.n_ctx()) +
                                   " (drop the oldest tokens with truncate_prompt)");
    }
    const std::int32_t room = params.max_tokens > 0 ? std::min(params.max_tokens, ctx.n_ctx() / 2) : ctx.n_ctx() / 2;
    const std::int32_t budget = std::max<std::int32_t>(1, ctx.n_ctx() - room);
    const bool keep_bos = tok.bos_id() >= 0 && prompt[0] == tok.bos_id() && budget > 1;
    if (keep_bos) kept.push_back(prompt[0]);
    const std::size_t tail = static_cast<std::size_t>(budget - (keep_bos ? 1 : 0));
    kept.insert(kept.end(), prompt.end() - static_cast<std::ptrdiff_t>(tail), prompt.end());
    n_dropped = static_cast<std::int32_t>(prompt.size() - kept.size());
    log_warn("generate: prompt of {} tokens does not fit a context of {}: dropped the {} oldest{}", prompt.size(),
             ctx.n_ctx(), n_dropped, keep_bos ? " (BOS kept)" : "");
    prompt = kept;
  }
  const auto n_prompt = static_cast<std::int32_t>(prompt.size());

  NaiveScope naive_scope(ctx, params.naive);
  sampling::Sampler sampler(params.sampling);
  StopMatcher stops(params.stop);
  tokenizer::StreamDecoder detok(tok);

  GenerateResult res;
  res.seed = sampler.seed();
  res.stats.n_prompt_tokens = n_prompt;
  res.stats.n_prompt_dropped = n_dropped;
  // The penalty window starts with the prompt, as in llama-cli and llama-server.
  for (std::int32_t t : prompt) sampler.accept(t);

  const std::int32_t seq = params.seq;
  ctx.clear(seq);
  std::vector<model::BatchToken> batch;
  batch.reserve(prompt.size());
  for (std::int32_t i = 0; i < n_prompt; ++i)
    batch.push_back({prompt[static_cast<std::size_t>(i)], seq, i, i == n_prompt - 1});
  const std::int64_t t_start = now_ns();
  ctx.decode(batch);
  const std::int64_t t_prefilled = now_ns();
  res.stats.prefill_ns = t_prefilled - t_start;

  std::int32_t pos = n_prompt;  // position of the next token to decode
  bool deliver_tail = true;
  bool strip_space = n_prompt == 1 && prompt[0] == tok.bos_id() &&
                     tok.add_space_prefix();  // release held-back text at the end (not after a stop or a cancel)
  for (;;) {
    if (params.max_tokens >= 0 && res.stats.n_generated >= params.max_tokens) {
      res.stop_reason = StopReason::kMaxTokens;
      break;
    }
    const std::span<const float> logits = ctx.logits(0);
    const std::int32_t id = sampler.sample(logits);
    if (!params.ignore_eos && tok.is_eog(id)) {
      res.stop_reason = StopReason::kEog;
      break;
    }
    sampler.accept(id);
    res.tokens.push_back(id);
    ++res.stats.n_generated;
    TokenEvent ev;
    ev.token = id;
    ev.index = res.stats.n_generated - 1;
    if (params.logprobs) {
      ev.logprob = sampling::log_softmax_at(logits, id);
      res.logprobs.push_back(ev.logprob);
    }
    std::string piece = detok.push(id);
    if (strip_space && !piece.empty()) {
      // A completion straight after BOS: SPM's space prefix marks a word start, not text (llama2.c's
      // run.c drops it the same way, which is how the README's "Once upon a time" reads).
      if (piece[0] == ' ') piece.erase(0, 1);
      strip_space = false;
    }
    const std::string released = stops.push(piece);
    res.text += released;
    ev.text = released;
    if (on_token && !on_token(ev)) {
      res.stop_reason = StopReason::kCanceled;
      deliver_tail = false;
      break;
    }
    if (stops.stopped()) {
      res.stop_reason = StopReason::kStopString;
      res.stop_string = stops.matched();
      deliver_tail = false;
      break;
    }
    if (params.max_tokens >= 0 && res.stats.n_generated >= params.max_tokens) {
      res.stop_reason = StopReason::kMaxTokens;  // no forward pass for a token nobody will continue
      break;
    }
    if (pos >= ctx.n_ctx()) {
      res.stop_reason = StopReason::kContextFull;
      break;
    }
    const model::BatchToken next{id, seq, pos, true};
    ctx.decode(std::span<const model::BatchToken>(&next, 1));
    ++pos;
    ++res.stats.n_decode_steps;
  }

  if (deliver_tail) {
    // Bytes of an unfinished character, then whatever a possible stop-string start was holding.
    std::string tail = stops.push(detok.flush());
    if (!stops.stopped()) {
      tail += stops.flush();
    } else {
      res.stop_reason = StopReason::kStopString;
      res.stop_string = stops.matched();
    }
    if (!tail.empty()) {
      res.text += tail;
      if (on_token) {
        TokenEvent ev;
        ev.token = -1;
        ev.text = tail;
        ev.index = res.stats.n_generated;
        on_token(ev);
      }
    }
  }
  res.stats.decode_ns = now_ns() - t_prefilled;
  return res;
}

}  // namespace g2c::engine
