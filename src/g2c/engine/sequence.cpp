#include "g2c/engine/sequence.hpp"

#include <algorithm>
#include <limits>
#include <mutex>
#include <string>
#include <utility>

#include "g2c/core/error.hpp"
#include "g2c/core/log.hpp"
#include "g2c/model/model.hpp"

namespace g2c::engine {

std::span<const std::int32_t> fit_prompt(const char* who, const tokenizer::Tokenizer& tok,
                                         std::span<const std::int32_t> prompt, const GenerateParams& params,
                                         std::int32_t n_ctx, std::vector<std::int32_t>& kept) {
  if (static_cast<std::int64_t>(prompt.size()) <= n_ctx) return prompt;
  if (!params.truncate_prompt) {
    throw model::ContextOverflow(std::string(who) + ": the prompt has " + std::to_string(prompt.size()) +
                                 " tokens but the context holds " + std::to_string(n_ctx) +
                                 " (drop the oldest tokens with truncate_prompt)");
  }
  const std::int32_t room = params.max_tokens > 0 ? std::min(params.max_tokens, n_ctx / 2) : n_ctx / 2;
  const std::int32_t budget = std::max<std::int32_t>(1, n_ctx - room);
  const bool keep_bos = tok.bos_id() >= 0 && prompt[0] == tok.bos_id() && budget > 1;
  kept.clear();
  if (keep_bos) kept.push_back(prompt[0]);
  const std::size_t tail = static_cast<std::size_t>(budget - (keep_bos ? 1 : 0));
  kept.insert(kept.end(), prompt.end() - static_cast<std::ptrdiff_t>(tail), prompt.end());
  log_warn("{}: prompt of {} tokens does not fit a context of {}: dropped the {} oldest{}", who, prompt.size(), n_ctx,
           prompt.size() - kept.size(), keep_bos ? " (BOS kept)" : "");
  return kept;
}

std::shared_ptr<const sampling::GrammarVocab> grammar_vocab(const tokenizer::Tokenizer& tok) {
  const auto n = static_cast<std::size_t>(tok.n_vocab());
  std::vector<std::string> bytes(n);
  std::vector<sampling::TokenRole> roles(n, sampling::TokenRole::kText);
  for (std::size_t i = 0; i < n; ++i) {
    const auto id = static_cast<std::int32_t>(i);
    const tokenizer::TokenType t = tok.token_type(id);
    if (tok.is_eog(id)) {
      roles[i] = sampling::TokenRole::kEog;
    } else if (t == tokenizer::TokenType::CONTROL || t == tokenizer::TokenType::UNKNOWN ||
               t == tokenizer::TokenType::UNUSED || t == tokenizer::TokenType::USER_DEFINED) {
      roles[i] = sampling::TokenRole::kNever;
    } else {
      bytes[i] = tok.piece(id);
    }
  }
  // A few vocabularies at most live in a process; an entry is reused only for the same bytes and roles
  // (a tokenizer freed and another allocated at its address must not see stale data).
  static std::mutex mu;
  static std::vector<std::shared_ptr<const sampling::GrammarVocab>> cache;
  const std::lock_guard<std::mutex> lock(mu);
  for (const auto& v : cache) {
    if (v->n_vocab() != n) continue;
    bool same = true;
    for (std::size_t i = 0; i < n && same; ++i) {
      const auto id = static_cast<std::int32_t>(i);
      same = v->role(id) == roles[i] && (roles[i] != sampling::TokenRole::kText || v->bytes(id) == bytes[i]);
    }
    if (same) return v;
  }
  auto v = std::make_shared<const sampling::GrammarVocab>(std::move(bytes), std::move(roles));
  if (cache.size() >= 4) cache.erase(cache.begin());
  cache.push_back(v);
  return v;
}

namespace {

const GenerateParams& checked(const GenerateParams& params) {
  if (params.top_logprobs < 0 || params.top_logprobs > kMaxTopLogprobs) {
    throw InvalidArgument("top_logprobs: expected 0.." + std::to_string(kMaxTopLogprobs) + ", got " +
                          std::to_string(params.top_logprobs));
  }
  return params;
}

}  // namespace

SequenceState::SequenceState(const tokenizer::Tokenizer& tok, std::span<const std::int32_t> prompt,
                             std::int32_t n_dropped, const GenerateParams& params)
    : tok_(tok), params_(checked(params)), sampler_(params.sampling), stops_(params.stop), detok_(tok) {
  const auto n_prompt = static_cast<std::int32_t>(prompt.size());
  if (params_.top_logprobs > 0) params_.logprobs = true;
  if (params_.prompt_logprobs) {
    prompt_.assign(prompt.begin(), prompt.end());
    // [0] stays NaN; every other entry is written by score_prompt() before the prompt's last row is sampled.
    res_.prompt_logprobs.assign(prompt.size(), std::numeric_limits<double>::quiet_NaN());
    if (params_.top_logprobs > 0) res_.prompt_top_logprobs.assign(prompt.size(), {});
  }
  res_.seed = sampler_.seed();
  res_.stats.n_prompt_tokens = n_prompt;
  res_.stats.n_prompt_dropped = n_dropped;
  for (std::int32_t t : prompt) sampler_.accept(t);
  pos_ = n_prompt;
  strip_space_ = n_prompt == 1 && prompt[0] == tok.bos_id() && tok.add_space_prefix();
  if (params_.grammar) {
    auto vocab = grammar_vocab(tok);
    vocab->check_coverage(*params_.grammar);
    grammar_ = std::make_unique<sampling::TokenGrammar>(params_.grammar, std::move(vocab));
  }
}

std::int32_t SequenceState::grammar_pick(std::span<const float> logits, bool& stuck) {
  stuck = false;
  // The first piece after a BOS-alone prompt loses its leading space (strip_space_): the grammar sees
  // the text as delivered, so that one step checks each token's stripped bytes.
  auto text_of = [&](std::int32_t id) -> std::string_view {
    std::string_view b = tok_.piece(id);
    if (strip_space_ && !b.empty() && b[0] == ' ') b.remove_prefix(1);
    return b;
  };
  const bool first_stripped = strip_space_;
  auto allows = [&](std::int32_t id) {
    return first_stripped ? grammar_->allows_text(id, text_of(id)) : grammar_->allows(id);
  };
  std::int32_t id = sampler_.sample(logits);
  if (allows(id)) return id;
  masked_.assign(logits.begin(), logits.end());
  std::size_t n_allowed = 0;
  if (!first_stripped) {
    n_allowed = grammar_->mask(masked_);
  } else {
    for (std::size_t i = 0; i < masked_.size(); ++i) {
      if (grammar_->allows_text(static_cast<std::int32_t>(i), text_of(static_cast<std::int32_t>(i)))) {
        ++n_allowed;
      } else {
        masked_[i] = -std::numeric_limits<float>::infinity();
      }
    }
  }
  if (n_allowed == 0) {
    stuck = true;
    return -1;
  }
  id = sampler_.sample(masked_);
  G2C_CHECK(allows(id));
  return id;
}

void SequenceState::score_prompt(std::int32_t i, std::span<const float> logits) {
  G2C_CHECK(params_.prompt_logprobs && i >= 1 && static_cast<std::size_t>(i) < prompt_.size());
  const auto at = static_cast<std::size_t>(i);
  res_.prompt_logprobs[at] = sampling::log_softmax_at(logits, prompt_[at]);
  if (params_.top_logprobs > 0) res_.prompt_top_logprobs[at] = sampling::top_logprobs(logits, params_.top_logprobs);
}

bool SequenceState::step(std::span<const float> logits, const OnToken& on_token, std::int32_t n_ctx) {
  if (params_.max_tokens >= 0 && res_.stats.n_generated >= params_.max_tokens) {
    res_.stop_reason = StopReason::kMaxTokens;
    return false;
  }
  std::int32_t id;
  if (grammar_) {
    if (!grammar_->can_continue()) {  // complete, and nothing may follow
      res_.stop_reason = StopReason::kEog;
      return false;
    }
    bool stuck = false;
    id = grammar_pick(logits, stuck);
    if (stuck) {  // no token continues the grammar here (the coverage check cannot see every case)
      log_warn("grammar: no token of the vocabulary can continue the text here (expected {})", grammar_->expected());
      res_.stop_reason = StopReason::kEog;
      return false;
    }
  } else {
    id = sampler_.sample(logits);
  }
  if (!params_.ignore_eos && tok_.is_eog(id)) {
    res_.stop_reason = StopReason::kEog;
    return false;
  }
  sampler_.accept(id);
  if (grammar_) {
    std::string_view b = tok_.piece(id);
    if (strip_space_ && !b.empty() && b[0] == ' ') b.remove_prefix(1);
    grammar_->accept_text(id, b);
  }
  res_.tokens.push_back(id);
  ++res_.stats.n_generated;
  TokenEvent ev;
  ev.token = id;
  ev.index = res_.stats.n_generated - 1;
  if (params_.logprobs) {
    ev.logprob = sampling::log_softmax_at(logits, id);
    res_.logprobs.push_back(ev.logprob);
  }
  if (params_.top_logprobs > 0) {
    res_.top_logprobs.push_back(sampling::top_logprobs(logits, params_.top_logprobs));
    ev.top = res_.top_logprobs.back();
  }
  std::string piece = detok_.push(id);
  if (strip_space_ && !piece.empty()) {
    // A completion straight after BOS: SPM's space prefix marks a word start, not text (llama2.c's
    // run.c drops it the same way, which is how the README's "Once upon a time" reads).
    if (piece[0] == ' ') piece.erase(0, 1);
    strip_space_ = false;
  }
  const std::string released = stops_.push(piece);
  res_.text += released;
  ev.text = released;
  if (on_token && !on_token(ev)) {
    cancel();
    return false;
  }
  if (stops_.stopped()) {
    res_.stop_reason = StopReason::kStopString;
    res_.stop_string = stops_.matched();
    deliver_tail_ = false;
    return false;
  }
  if (params_.max_tokens >= 0 && res_.stats.n_generated >= params_.max_tokens) {
    res_.stop_reason = StopReason::kMaxTokens;  // no forward pass for a token nobody will continue
    return false;
  }
  if (pos_ >= n_ctx) {
    res_.stop_reason = StopReason::kContextFull;
    return false;
  }
  next_token_ = id;
  next_pos_ = pos_++;
  ++res_.stats.n_decode_steps;
  return true;
}

void SequenceState::cancel() {
  res_.stop_reason = StopReason::kCanceled;
  deliver_tail_ = false;
}

GenerateResult SequenceState::finish(const OnToken& on_token) {
  res_.grammar_complete = grammar_ && grammar_->complete() && res_.stop_reason != StopReason::kStopString &&
                          res_.stop_reason != StopReason::kCanceled;
  if (deliver_tail_) {
    // Bytes of an unfinished character, then whatever a possible stop-string start was holding.
    std::string tail = stops_.push(detok_.flush());
    if (!stops_.stopped()) {
      tail += stops_.flush();
    } else {
      res_.stop_reason = StopReason::kStopString;
      res_.stop_string = stops_.matched();
    }
    if (!tail.empty()) {
      res_.text += tail;
      if (on_token) {
        TokenEvent ev;
        ev.token = -1;
        ev.text = tail;
        ev.index = res_.stats.n_generated;
        on_token(ev);
      }
    }
  }
  deliver_tail_ = false;
  return std::move(res_);
}

}  // namespace g2c::engine
