#pragma once
// One generation's state between forward passes: its sampler, stop strings, streaming decoder and the
// result being built. generate() drives one over a sequence of its own context; the Scheduler drives
// one per sequence from the outputs of a shared batch. So both sample, stop, hold back and stream by
// the same rules (generate.hpp describes them).
//
//   std::vector<std::int32_t> kept;
//   auto run = fit_prompt("generate", tok, prompt, params, ctx.n_ctx(), kept);  // may throw ContextOverflow
//   SequenceState s(tok, run, prompt.size() - run.size(), params);
//   ...decode `run` on sequence seq, logits for its last token...
//   while (s.step(ctx.logits(0), on_token, ctx.n_ctx())) ctx.decode({{s.next_token(), seq, s.next_pos(), true}});
//   GenerateResult r = s.finish(on_token);
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "g2c/engine/generate.hpp"
#include "g2c/engine/stop_matcher.hpp"
#include "g2c/sampling/sampler.hpp"
#include "g2c/tokenizer/tokenizer.hpp"

namespace g2c::engine {

// The prompt to run in a context of n_ctx positions: `prompt` itself when it fits; else, with
// GenerateParams::truncate_prompt, its newest tokens (BOS kept) copied into `kept` and a warning
// logged; else ContextOverflow, whose message starts with `who`.
std::span<const std::int32_t> fit_prompt(const char* who, const tokenizer::Tokenizer& tok,
                                         std::span<const std::int32_t> prompt, const GenerateParams& params,
                                         std::int32_t n_ctx, std::vector<std::int32_t>& kept);

// The grammar view of a tokenizer's vocabulary (each token's bytes as the text shows them, which tokens
// end a generation, which are control tokens), built once per tokenizer and shared: later calls with the
// same vocabulary return the same object. Thread-safe.
std::shared_ptr<const sampling::GrammarVocab> grammar_vocab(const tokenizer::Tokenizer& tok);

class SequenceState {
 public:
  // `prompt` is the prompt as it will be decoded (after fit_prompt), n_dropped the tokens fit_prompt
  // dropped. The prompt fills the sampler's penalty window, as in llama-cli and llama-server. Throws
  // InvalidArgument for params out of range (sampler settings, top_logprobs).
  SequenceState(const tokenizer::Tokenizer& tok, std::span<const std::int32_t> prompt, std::int32_t n_dropped,
                const GenerateParams& params);
  SequenceState(const SequenceState&) = delete;
  SequenceState& operator=(const SequenceState&) = delete;

  // One iteration after a forward pass: `logits` [n_vocab] are the outputs of the sequence's last
  // decoded token. Samples the next token, streams it to `on_token` and checks the stops in
  // generate.hpp's order (n_ctx: the sequence's context size). Returns true when generation goes on:
  // next_token() must then be decoded at next_pos() before the next step; false when it stopped.
  bool step(std::span<const float> logits, const OnToken& on_token, std::int32_t n_ctx);
  std::int32_t next_token() const { return next_token_; }
  std::int32_t next_pos() const { return next_pos_; }

  // GenerateParams::prompt_logprobs: the prompt must then be decoded with logits for every token, and
  // each row but the last handed to score_prompt() before the last one goes to step().
  bool scores_prompt() const { return params_.prompt_logprobs; }
  // `logits` [n_vocab] are the outputs of prompt token i - 1: records prompt_logprobs[i] (and, with
  // top_logprobs, prompt_top_logprobs[i]). 1 <= i < the prompt's length.
  void score_prompt(std::int32_t i, std::span<const float> logits);

  // Stops from outside (a scheduler's cancel): StopReason::kCanceled, held-back text is dropped.
  void cancel();
  // Ends the generation: releases held-back text (not after a stop string or a cancel) through
  // `on_token` as a final event with token -1, and hands over the result. Call once.
  GenerateResult finish(const OnToken& on_token);

  // The result so far; callers add their timings to its stats.
  GenerateResult& result() { return res_; }

 private:
  const tokenizer::Tokenizer& tok_;
  GenerateParams params_;
  std::vector<std::int32_t> prompt_;  // the prompt as decoded, kept only for prompt_logprobs
  sampling::Sampler sampler_;
  StopMatcher stops_;
  tokenizer::StreamDecoder detok_;
  GenerateResult res_;
  std::int32_t pos_ = 0;  // position of the next token to decode
  std::int32_t next_token_ = -1;
  std::int32_t next_pos_ = -1;
  bool strip_space_ = false;  // drop the leading space of the first piece (BOS-alone prompt, SPM)
  bool deliver_tail_ = true;  // release held-back text at the end (not after a stop or a cancel)
  std::unique_ptr<sampling::TokenGrammar> grammar_;  // GenerateParams::grammar over this vocabulary
  std::vector<float> masked_;                        // [n_vocab] logits with the grammar's mask applied
  std::int32_t grammar_pick(std::span<const float> logits, bool& stuck);
};

}  // namespace g2c::engine
