#pragma once
// The generation loop: prefill the prompt, then sample and decode one token at a time, streaming text
// through a callback that can cancel.
//
//   model::Context ctx(*model, {.n_ctx = 512});
//   engine::GenerateParams gp;  gp.max_tokens = 64;  gp.sampling.temperature = 0;
//   auto r = engine::generate(ctx, tok, tok.encode(prompt, /*add_bos*/ true), gp,
//                             [](const engine::TokenEvent& e) { fwrite(e.text.data(), 1, e.text.size(), stdout); return
//                             true; });
//   // r.text is only the completion; r.stats has counts and prefill/decode nanoseconds.
//
// Stops, in the order they are checked after each sampled token: an end-of-generation token (EOS/EOT;
// not appended, not shown, not counted), the callback returning false, a stop string (the text before it
// is kept, the string and anything after it are dropped), max_tokens, a full context. Text that could be
// the start of a stop string is held back until known not to be one (StopMatcher), and bytes of an
// incomplete UTF-8 character until the character completes (the tokenizer's StreamDecoder), so every
// TokenEvent::text is whole UTF-8 characters that will never be taken back.
//
// When the prompt is BOS alone and the vocabulary adds a space prefix (SPM), the leading space of the
// first generated word is dropped, as llama2.c does: the completion of nothing reads "Once upon", not
// " Once upon". After any real prompt the space is text and kept.
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "g2c/model/model.hpp"
#include "g2c/sampling/grammar.hpp"
#include "g2c/sampling/sampler.hpp"
#include "g2c/tokenizer/tokenizer.hpp"

namespace g2c::engine {

enum class StopReason {
  kEog,          // the model produced an end-of-generation token
  kMaxTokens,    // max_tokens reached
  kStopString,   // one of GenerateParams::stop appeared
  kCanceled,     // the callback returned false
  kContextFull,  // the sequence reached the context size
};
const char* stop_reason_name(StopReason r);  // "eog", "max_tokens", "stop", "canceled", "context_full"
// The reason as both HTTP APIs and the course API's done_reason say it: "stop" (an end token or a stop
// string), "length" (max tokens or a full context), "canceled".
const char* done_reason(StopReason r);

inline constexpr std::int32_t kMaxTopLogprobs = 20;  // OpenAI's limit for top_logprobs

struct GenerateParams {
  std::int32_t max_tokens = 128;  // generated tokens at most; < 0: until a stop or a full context
  sampling::SamplerParams sampling;
  std::vector<std::string> stop;  // stop strings
  bool ignore_eos = false;        // keep going past EOS/EOG (the token then counts as text)
  bool logprobs = false;          // fill TokenEvent::logprob and GenerateResult::logprobs
  bool naive = false;             // no KV cache: every step recomputes the sequence (O(T^2), for comparison)
  std::int32_t seq = 0;           // which of the context's sequences to use; it is cleared first
  // A prompt longer than the context is an error (model::ContextOverflow) unless this is set: then
  // the oldest tokens are dropped (a leading BOS is kept) so the prompt fills at most n_ctx minus
  // room for min(max_tokens, n_ctx / 2) new tokens, GenerateStats::n_prompt_dropped says how many,
  // and a warning is logged.
  bool truncate_prompt = false;
  // 0..kMaxTopLogprobs: also the most likely alternatives of each generated token (TokenEvent::top,
  // GenerateResult::top_logprobs); > 0 implies logprobs. Out of range: InvalidArgument at
  // submit()/generate().
  std::int32_t top_logprobs = 0;
  // The log-probability of each prompt token given the ones before it (GenerateResult::prompt_logprobs;
  // with top_logprobs > 0 also prompt_top_logprobs): echo scoring. Costs one vocabulary projection per
  // prompt token; generate() holds the whole prompt's logits at once ([n_prompt][n_vocab] floats), the
  // Scheduler one chunk's. Works with max_tokens = 0 (the prompt is scored, nothing is generated). On
  // SIMD kernel tables the last prompt row then comes from the batched vocabulary projection, so the
  // first sampled token's logits may round apart from a run without it (on ref they are identical).
  bool prompt_logprobs = false;
  // Constrained decoding (sampling/grammar.hpp): when set, every generated token continues a string of
  // this grammar's language. The sampled token is checked first; only when the grammar rejects it is the
  // whole vocabulary masked and the token drawn again. An end-of-generation token is allowed only where
  // the grammar accepts, control tokens never; a grammar that is complete and allows nothing more ends
  // the generation (StopReason::kEog). InvalidArgument at submit()/generate() when the vocabulary cannot
  // produce a character the grammar needs. Stop strings, max_tokens and a full context still end a
  // generation early: GenerateResult::grammar_complete then says whether the text is a whole sentence.
  std::shared_ptr<const sampling::Grammar> grammar;
};

// One generated token, delivered right after it is sampled.
struct TokenEvent {
  std::int32_t token = -1;  // -1 for the final event that releases text held back until the end
  std::string_view text;    // text released now; may be empty (held back, or half a UTF-8 character)
  double logprob = 0.0;     // log softmax(raw logits)[token]; 0 unless GenerateParams::logprobs
  std::int32_t index = 0;   // 0-based index among the generated tokens
  // The GenerateParams::top_logprobs most likely tokens at this step, most likely first (logprobs of the
  // raw logits, like `logprob`); empty unless asked, and on the final token -1 event. Valid during the
  // callback only.
  std::span<const sampling::TokenLogprob> top;
};
// Return false to stop generating (StopReason::kCanceled); the event's text counts as delivered.
using OnToken = std::function<bool(const TokenEvent&)>;

struct GenerateStats {
  std::int32_t n_prompt_tokens = 0;   // after truncation
  std::int32_t n_prompt_dropped = 0;  // oldest prompt tokens dropped (GenerateParams::truncate_prompt)
  std::int32_t n_prompt_cached = 0;   // leading prompt tokens found in the KV cache, not recomputed (Scheduler)
  std::int32_t n_generated = 0;       // tokens appended after the prompt; a stopping EOS is not one
  std::int64_t prefill_ns = 0;        // the prompt's forward pass
  std::int64_t decode_ns = 0;         // from the end of prefill to the end: sampling, forward passes, callback
  std::int32_t n_decode_steps = 0;    // single-token forward passes run (n_generated - 1 or n_generated)

  double prompt_tokens_per_second() const;
  double generation_tokens_per_second() const;
};

struct GenerateResult {
  std::string text;                  // the completion only, exactly the concatenation of the events' text
  std::vector<std::int32_t> tokens;  // generated ids, without a stopping EOS
  std::vector<double> logprobs;      // per generated token when asked, else empty
  StopReason stop_reason = StopReason::kMaxTokens;
  std::string stop_string;  // the stop string that matched, for kStopString
  std::uint64_t seed = 0;   // the RNG seed used (resolves sampling::kRandomSeed)
  GenerateStats stats;
  // [n_generated][top_logprobs] when top_logprobs > 0, else empty.
  std::vector<std::vector<sampling::TokenLogprob>> top_logprobs;
  // [n_prompt tokens as decoded] when prompt_logprobs, else empty: [i] = log p(prompt[i] | prompt[0..i)),
  // from the raw logits of prompt token i - 1. [0] is NaN: nothing predicts the first token.
  std::vector<double> prompt_logprobs;
  // [n_prompt][top_logprobs] when prompt_logprobs and top_logprobs > 0: the alternatives at each prompt
  // position, [0] empty.
  std::vector<std::vector<sampling::TokenLogprob>> prompt_top_logprobs;
  // With GenerateParams::grammar: whether the text is a whole string of the grammar's language (false when
  // max_tokens, a stop string, a cancel or a full context cut it short). Without a grammar: false.
  bool grammar_complete = false;
};

// Runs one generation on sequence params.seq of `ctx`. Throws InvalidArgument for an empty prompt or
// params out of range, model::ContextOverflow when the prompt does not fit the context (before
// computing anything).
GenerateResult generate(model::Context& ctx, const tokenizer::Tokenizer& tok, std::span<const std::int32_t> prompt,
                        const GenerateParams& params, const OnToken& on_token = {});

}  // namespace g2c::engine
