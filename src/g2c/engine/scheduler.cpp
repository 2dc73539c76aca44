#include "g2c/engine/scheduler.hpp"

#include <algorithm>
#include <atomic>
#include <string>
#include <utility>

#include "g2c/core/log.hpp"
#include "g2c/core/timer.hpp"
#include "g2c/engine/sequence.hpp"

namespace g2c::engine {

struct RequestHandle::Request {
  std::uint64_t id = 0;
  Scheduler* owner = nullptr;        // alive while !done: shutdown() completes every request first
  std::vector<std::int32_t> prompt;  // as decoded (after fit_prompt)
  OnToken on_token;
  std::function<void()> on_done;
  std::atomic<bool> cancel{false};

  // The outcome, guarded by m.
  mutable std::mutex m;
  std::condition_variable cv;
  bool done = false;
  GenerateResult result;
  std::exception_ptr error;

  // Scheduler thread only.
  std::unique_ptr<SequenceState> state;
  std::int32_t seq = -1;      // the sequence it holds, -1 while queued
  std::int32_t n_fed = 0;     // prompt tokens decoded so far
  bool decoding = false;      // the prompt is in; state->next_token() waits to be decoded
  std::int64_t t_start = 0;   // start of the step that fed its first prompt chunk
  std::int64_t t_decode = 0;  // end of the step that finished its prompt
};

GenerateResult RequestHandle::wait() const {
  G2C_CHECK(r_);
  std::unique_lock lk(r_->m);
  r_->cv.wait(lk, [&] { return r_->done; });
  if (r_->error) std::rethrow_exception(r_->error);
  return r_->result;
}

bool RequestHandle::done() const {
  G2C_CHECK(r_);
  std::lock_guard lk(r_->m);
  return r_->done;
}

void RequestHandle::cancel() const {
  G2C_CHECK(r_);
  // Holding r_->m keeps the request from completing, so the owner (which completes every request
  // before its thread ends) is alive; taking its mutex to notify rules out a lost wake-up. Lock order:
  // a request's m, then the scheduler's mu_ (the scheduler never takes them the other way round).
  std::lock_guard lk(r_->m);
  if (r_->done) return;
  r_->cancel = true;
  std::lock_guard slk(r_->owner->mu_);
  r_->owner->cv_.notify_all();
}

std::uint64_t RequestHandle::id() const {
  G2C_CHECK(r_);
  return r_->id;
}

namespace {

model::ContextOptions context_options(const SchedulerOptions& o) {
  if (o.n_parallel < 1) throw InvalidArgument("scheduler: n_parallel " + std::to_string(o.n_parallel) + " < 1");
  if (o.chunk < 1) throw InvalidArgument("scheduler: chunk " + std::to_string(o.chunk) + " < 1");
  if (o.queue_max < 0) throw InvalidArgument("scheduler: queue_max " + std::to_string(o.queue_max) + " < 0");
  model::ContextOptions co;
  co.n_ctx = o.n_ctx;
  co.n_seq = o.n_parallel;
  co.n_batch = o.chunk + o.n_parallel;  // the largest step: every decode token plus one chunk, one pass
  co.threads = o.threads;
  co.kv_type = o.kv_type;
  return co;
}

}  // namespace

Scheduler::Scheduler(const model::Model& model, const tokenizer::Tokenizer& tok, const SchedulerOptions& opts)
    : tok_(tok),
      opts_(opts),
      ctx_(std::make_unique<model::Context>(model, context_options(opts))),
      slots_(static_cast<std::size_t>(opts.n_parallel)),
      held_(static_cast<std::size_t>(opts.n_parallel)) {
  opts_.n_ctx = ctx_->n_ctx();
  stats_.kv_capacity = static_cast<std::int64_t>(opts_.n_parallel) * opts_.n_ctx;
  thread_ = std::thread([this] { loop(); });
}

Scheduler::~Scheduler() { shutdown(ShutdownMode::kCancel); }

void Scheduler::shutdown(ShutdownMode mode) {
  {
    std::lock_guard lk(mu_);
    if (!closing_) {
      closing_ = true;
      shutdown_mode_ = mode;
    }
    cv_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
}

RequestHandle Scheduler::submit(std::span<const std::int32_t> prompt, const GenerateParams& params, OnToken on_token,
                                std::function<void()> on_done) {
  if (prompt.empty()) throw InvalidArgument("scheduler: the prompt has no tokens (expected at least one, e.g. BOS)");
  if (params.naive)
    throw InvalidArgument("scheduler: GenerateParams::naive applies to a whole context; use generate()");
  auto r = std::make_shared<Request>();
  r->owner = this;
  std::vector<std::int32_t> kept;
  const std::span<const std::int32_t> run = fit_prompt("scheduler", tok_, prompt, params, opts_.n_ctx, kept);
  r->prompt.assign(run.begin(), run.end());
  r->state =
      std::make_unique<SequenceState>(tok_, r->prompt, static_cast<std::int32_t>(prompt.size() - run.size()), params);
  r->on_token = std::move(on_token);
  r->on_done = std::move(on_done);

  std::lock_guard lk(mu_);
  if (closing_) throw SchedulerClosed("scheduler: shut down, not accepting requests");
  // queued + active counts every request not yet complete; n_parallel of them may run, queue_max wait.
  const std::int64_t in_flight = static_cast<std::int64_t>(queue_.size()) + stats_.active;
  if (in_flight >= static_cast<std::int64_t>(opts_.n_parallel) + opts_.queue_max) {
    ++stats_.rejected;
    throw QueueFull("scheduler: queue full (" + std::to_string(in_flight) +
                    " requests in flight: " + std::to_string(opts_.n_parallel) + " running + queue_max " +
                    std::to_string(opts_.queue_max) + " waiting)");
  }
  r->id = next_id_++;
  queue_.push_back(r);
  ++stats_.submitted;
  stats_.queued = static_cast<std::int32_t>(queue_.size());
  cv_.notify_all();
  return RequestHandle(std::move(r));
}

SchedulerStats Scheduler::stats() const {
  std::lock_guard lk(mu_);
  return stats_;
}

std::int64_t Scheduler::kv_cells() const {
  std::int64_t n = 0;
  for (std::size_t s = 0; s < slots_.size(); ++s)
    if (slots_[s]) n += ctx_->seq_len(static_cast<std::int32_t>(s));
  return n;
}

void Scheduler::complete(const std::shared_ptr<Request>& r, GenerateResult res, std::exception_ptr error) {
  if (r->seq >= 0) {
    // What the cache holds: the prompt, then the generated tokens fed back (not the last one sampled).
    auto& held = held_[static_cast<std::size_t>(r->seq)];
    held.clear();
    if (!error && opts_.prefix_reuse) {
      const auto n = static_cast<std::size_t>(ctx_->seq_len(r->seq));
      held.assign(r->prompt.begin(), r->prompt.begin() + static_cast<std::ptrdiff_t>(std::min(n, r->prompt.size())));
      for (std::size_t i = 0; held.size() < n && i < res.tokens.size(); ++i) held.push_back(res.tokens[i]);
    }
    ctx_->truncate(r->seq, static_cast<std::int32_t>(held.size()));
    slots_[static_cast<std::size_t>(r->seq)].reset();
    admitted_.erase(std::find(admitted_.begin(), admitted_.end(), r->seq));
  }
  {
    std::lock_guard lk(mu_);
    if (r->seq >= 0) --stats_.active;
    ++stats_.completed;
    stats_.generated_tokens += std::exchange(unpublished_tokens_, 0);  // all counted before wait() returns
    if (error) {
      ++stats_.failed;
    } else if (res.stop_reason == StopReason::kCanceled) {
      ++stats_.canceled;
    }
    stats_.kv_cells = kv_cells();
  }
  r->seq = -1;
  r->state.reset();
  r->on_token = nullptr;  // drop what the callback captured now, not when the last handle goes
  std::function<void()> on_done = std::move(r->on_done);
  {
    std::lock_guard lk(r->m);
    r->done = true;
    r->result = std::move(res);
    r->error = std::move(error);
    r->cv.notify_all();
  }
  if (on_done) on_done();
}

// Ends a request normally (a stop, a cancel): releases held-back text through its callback, which may
// still throw.
void Scheduler::finish(const std::shared_ptr<Request>& r) {
  GenerateResult res;
  std::exception_ptr error;
  try {
    res = r->state->finish(r->on_token);
    if (r->decoding) res.stats.decode_ns = now_ns() - r->t_decode;
  } catch (...) {
    error = std::current_exception();
  }
  complete(r, std::move(res), std::move(error));
}

bool Scheduler::admit() {
  std::vector<std::shared_ptr<Request>> canceled;  // queued requests to end, outside the lock
  std::vector<std::shared_ptr<Request>> stopping;  // running requests to end
  bool exit = false;
  {
    std::unique_lock lk(mu_);
    cv_.wait(lk, [&] { return closing_ || !queue_.empty() || stats_.active > 0; });
    if (closing_ && shutdown_mode_ == ShutdownMode::kCancel) {
      for (auto& r : queue_) r->cancel = true;
      for (auto& r : slots_)
        if (r) r->cancel = true;
    }
    for (auto it = queue_.begin(); it != queue_.end();) {
      if ((*it)->cancel) {
        canceled.push_back(std::move(*it));
        it = queue_.erase(it);
      } else {
        ++it;
      }
    }
    for (auto& r : slots_)
      if (r && r->cancel) stopping.push_back(r);
    // Admission happens after reaping, so a sequence freed by a cancel is reused in this same step.
    auto n_free = static_cast<std::size_t>(std::count(slots_.begin(), slots_.end(), nullptr)) + stopping.size();
    while (n_free > 0 && !queue_.empty()) {
      std::shared_ptr<Request> r = std::move(queue_.front());
      queue_.pop_front();
      --n_free;
      ++stats_.active;
      admitting_.push_back(std::move(r));
    }
    stats_.queued = static_cast<std::int32_t>(queue_.size());
    exit = closing_ && queue_.empty() && stats_.active == 0 && canceled.empty();
  }
  for (auto& r : canceled) {
    r->state->cancel();
    finish(r);
  }
  for (auto& r : stopping) {
    r->state->cancel();
    finish(r);
  }
  for (auto& r : admitting_) place(std::move(r));
  admitting_.clear();
  return !exit;
}

void Scheduler::place(std::shared_ptr<Request> r) {
  const bool reuse = opts_.prefix_reuse && !r->state->scores_prompt();
  std::int32_t best = -1;
  std::size_t best_len = 0;
  for (std::size_t s = 0; s < slots_.size(); ++s) {
    if (slots_[s]) continue;
    const auto& held = held_[s];
    std::size_t len = 0;
    if (reuse) {
      const std::size_t m = std::min(held.size(), r->prompt.size());
      while (len < m && held[len] == r->prompt[len]) ++len;
    }
    // the longest match; among equals, the sequence holding the fewest tokens (keep the others' caches)
    if (best < 0 || len > best_len || (len == best_len && held.size() < held_[static_cast<std::size_t>(best)].size())) {
      best = static_cast<std::int32_t>(s);
      best_len = len;
    }
  }
  G2C_CHECK(best >= 0);
  // At least the last prompt token is fed: its logits sample the first token.
  const auto n_cached = static_cast<std::int32_t>(std::min(best_len, r->prompt.size() - 1));
  ctx_->truncate(best, n_cached);
  held_[static_cast<std::size_t>(best)].clear();
  r->seq = best;
  r->n_fed = n_cached;
  r->state->result().stats.n_prompt_cached = n_cached;
  if (n_cached > 0) {
    std::lock_guard lk(mu_);
    stats_.prompt_tokens_cached += static_cast<std::uint64_t>(n_cached);
  }
  slots_[static_cast<std::size_t>(best)] = std::move(r);
  admitted_.push_back(best);
}

void Scheduler::step() {
  batch_.clear();
  out_rows_.clear();
  // One decode token per running sequence, then prompt tokens, oldest request first, `chunk` in all.
  for (std::int32_t seq : admitted_) {
    const Request& r = *slots_[static_cast<std::size_t>(seq)];
    if (!r.decoding) continue;
    batch_.push_back({r.state->next_token(), seq, r.state->next_pos(), true});
    out_rows_.push_back({seq, OutRow::kSample});
  }
  std::int32_t budget = opts_.chunk;
  std::uint64_t n_prompt = 0;
  const std::int64_t t0 = now_ns();
  for (std::int32_t seq : admitted_) {
    Request& r = *slots_[static_cast<std::size_t>(seq)];
    if (r.decoding || budget == 0) continue;
    const auto n_prompt_r = static_cast<std::int32_t>(r.prompt.size());
    const std::int32_t n = std::min(budget, n_prompt_r - r.n_fed);
    if (r.t_start == 0) r.t_start = t0;
    const bool score = r.state->scores_prompt();
    for (std::int32_t i = r.n_fed; i < r.n_fed + n; ++i) {
      const bool last = i == n_prompt_r - 1;
      batch_.push_back({r.prompt[static_cast<std::size_t>(i)], seq, i, last || score});
      if (last) {
        out_rows_.push_back({seq, OutRow::kSample});
      } else if (score) {
        out_rows_.push_back({seq, i + 1});
      }
    }
    r.n_fed += n;
    budget -= n;
    n_prompt += static_cast<std::uint64_t>(n);
  }
  if (batch_.empty()) return;

  try {
    ctx_->decode(batch_);
  } catch (...) {
    // Not expected (every position was checked on submit), but a failed pass fails its requests only.
    const std::exception_ptr error = std::current_exception();
    std::vector<std::shared_ptr<Request>> in_batch;
    for (const model::BatchToken& t : batch_) {
      auto& r = slots_[static_cast<std::size_t>(t.seq)];
      if (std::find(in_batch.begin(), in_batch.end(), r) == in_batch.end()) in_batch.push_back(r);
    }
    for (auto& r : in_batch) complete(r, {}, error);
    return;
  }
  const std::int64_t t1 = now_ns();
  {
    std::lock_guard lk(mu_);
    ++stats_.steps;
    stats_.prompt_tokens += n_prompt;
    stats_.kv_cells = kv_cells();
  }

  // A request's scoring rows come before its sampling row, so nothing completes it in between.
  for (std::size_t k = 0; k < out_rows_.size(); ++k) {
    const OutRow& row = out_rows_[k];
    std::shared_ptr<Request> r = slots_[static_cast<std::size_t>(row.seq)];
    const std::span<const float> logits = ctx_->logits(static_cast<std::int32_t>(k));
    if (row.scores != OutRow::kSample) {
      r->state->score_prompt(row.scores, logits);
      continue;
    }
    if (!r->decoding) {
      r->decoding = true;
      r->t_decode = t1;
      r->state->result().stats.prefill_ns = t1 - r->t_start;
    }
    const std::int32_t before = r->state->result().stats.n_generated;
    bool go = false;
    try {
      go = r->state->step(logits, r->on_token, opts_.n_ctx);
    } catch (...) {
      complete(r, {}, std::current_exception());  // the callback threw: this request only
      continue;
    }
    unpublished_tokens_ += static_cast<std::uint64_t>(r->state->result().stats.n_generated - before);
    if (!go) finish(r);
  }
  std::lock_guard lk(mu_);
  stats_.generated_tokens += std::exchange(unpublished_tokens_, 0);
}

void Scheduler::loop() {
  while (admit()) step();
}

}  // namespace g2c::engine
