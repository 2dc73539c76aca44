#pragma once
// Continuous batching: many generations share one model::Context, one forward pass per step.
//
// One thread owns a Context of n_parallel sequences (KV caches). Each step it admits queued requests
// into free sequences, builds ONE batch (the pending decode token of every running sequence, then
// prompt tokens of sequences still in prefill, at most `chunk` prompt tokens in all, oldest request
// first), runs one Context::decode, and gives every sequence whose last token had logits its next
// token through its own SequenceState: its own sampler, stop strings, held-back text and callback,
// exactly as engine::generate() would (generate.hpp). A long prompt therefore never holds running
// streams back for more than one chunk of prompt tokens per step. A request with prompt_logprobs asks
// for logits on every prompt token it feeds; each of those rows scores the prompt token after it, and
// the last prompt token's row samples as usual.
//
// Prompt-prefix reuse: a finished request leaves its tokens in its sequence's KV cache. A new request
// takes the free sequence whose cached tokens share the longest prefix with its prompt and computes
// only the rest (at least its last token, whose logits it samples); GenerateStats::n_prompt_cached
// says how many it reused (n_prompt_tokens still counts them). The cached rows are what the same
// tokens at the same positions compute again, so a reused request's output does not change (bit for
// bit under G2C_ISA=ref). Requests with prompt_logprobs recompute everything (they need the logits of
// every prompt token).
//
//   engine::Scheduler sched(*model, *tok, {.n_parallel = 4, .n_ctx = 512});
//   engine::RequestHandle h = sched.submit(tok->encode(text, true, false), params,
//       [](const engine::TokenEvent& e) { send(e.text); return true; });   // runs on the scheduler thread
//   engine::GenerateResult r = h.wait();                                   // or h.cancel()
//
// submit() throws QueueFull when queue_max requests already wait for a sequence, ContextOverflow when
// the prompt does not fit a sequence (unless truncate_prompt), InvalidArgument for an empty prompt.
// Callbacks run on the scheduler thread between steps: a slow callback slows every stream, and one
// may call submit(), cancel() and stats(), but must not wait() for a request of the same scheduler.
// A callback that throws fails its own request only (wait() rethrows).
//
// Under G2C_ISA=ref each request's tokens, text and logprobs are bit-identical to generate() run alone
// (the ref kernels give batched == separate); other tables agree to float rounding.
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <span>
#include <thread>
#include <vector>

#include "g2c/core/error.hpp"
#include "g2c/engine/generate.hpp"
#include "g2c/model/model.hpp"
#include "g2c/tokenizer/tokenizer.hpp"

namespace g2c::engine {

// submit() found the queue full (a server answers 503).
class QueueFull : public Error {
 public:
  using Error::Error;
};
// submit() after shutdown().
class SchedulerClosed : public Error {
 public:
  using Error::Error;
};

struct SchedulerOptions {
  std::int32_t n_parallel = 4;  // sequences decoded together (the Context's n_seq)
  std::int32_t n_ctx = 0;       // positions per sequence; 0: n_ctx_train capped at 4096
  std::int32_t threads = 0;     // forward-pass threads; 0: physical cores
  std::int32_t queue_max = 64;  // requests that may wait beyond the n_parallel running; more: QueueFull
  std::int32_t chunk = 256;     // prompt tokens per step, all prefilling sequences together
  model::KvType kv_type = model::KvType::kF32;
  bool prefix_reuse = true;  // false: every request's prompt is computed in full
};

struct SchedulerStats {
  std::int32_t queued = 0;                 // waiting for a sequence
  std::int32_t active = 0;                 // holding a sequence (prefilling or decoding)
  std::int64_t kv_cells = 0;               // KV positions filled, over all sequences
  std::int64_t kv_capacity = 0;            // n_parallel * n_ctx
  std::uint64_t steps = 0;                 // forward passes run (Context::decode calls)
  std::uint64_t submitted = 0;             // accepted by submit()
  std::uint64_t rejected = 0;              // QueueFull
  std::uint64_t completed = 0;             // finished, for any reason (cancels and failures included)
  std::uint64_t canceled = 0;              // of those, ended by cancel() or a callback returning false
  std::uint64_t failed = 0;                // of those, ended by an exception
  std::uint64_t prompt_tokens = 0;         // prompt tokens decoded
  std::uint64_t prompt_tokens_cached = 0;  // prompt tokens reused from a sequence's KV cache instead
  std::uint64_t generated_tokens = 0;      // tokens generated
};

class Scheduler;

// A submitted request. Copies share it; the Scheduler keeps its own reference until it completes,
// so dropping every handle does not cancel.
class RequestHandle {
 public:
  RequestHandle() = default;
  // Blocks until the request ends; returns its result (StopReason::kCanceled after a cancel) or
  // rethrows what failed it.
  GenerateResult wait() const;
  bool done() const;
  // Asks the request to stop: queued, it ends with no tokens at the scheduler's next turn; running, its
  // sequence is freed at the start of the next step (no further token is delivered). No effect once done.
  void cancel() const;
  std::uint64_t id() const;
  explicit operator bool() const { return r_ != nullptr; }

 private:
  friend class Scheduler;
  struct Request;
  explicit RequestHandle(std::shared_ptr<Request> r) : r_(std::move(r)) {}
  std::shared_ptr<Request> r_;
};

class Scheduler {
 public:
  // Allocates the Context (n_parallel KV caches of n_ctx positions) and starts the scheduler thread.
  // `model` and `tok` must outlive the Scheduler.
  Scheduler(const model::Model& model, const tokenizer::Tokenizer& tok, const SchedulerOptions& opts = {});
  // shutdown(ShutdownMode::kCancel).
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Queues a generation of `prompt`. params.seq is ignored (the scheduler picks a free sequence) and
  // params.naive is refused (it is a property of the whole context). `on_done`, when given, runs once on
  // the scheduler thread right after the request completes (wait() no longer blocks), for a caller that
  // waits on its own condition variable (a server's stream writer). `on_token` runs on the scheduler
  // thread; returning false cancels the request (StopReason::kCanceled), as in generate().
  RequestHandle submit(std::span<const std::int32_t> prompt, const GenerateParams& params, OnToken on_token = {},
                       std::function<void()> on_done = {});

  enum class ShutdownMode {
    kCancel,  // queued and running requests end now with StopReason::kCanceled
    kDrain,   // queued and running requests run to their end
  };
  // Refuses new submissions (SchedulerClosed), ends the in-flight ones as `mode` says and joins the
  // scheduler thread. Idempotent; must not be called from a callback.
  void shutdown(ShutdownMode mode = ShutdownMode::kCancel);

  SchedulerStats stats() const;
  const SchedulerOptions& options() const { return opts_; }
  std::int32_t n_ctx() const { return ctx_->n_ctx(); }

 private:
  friend class RequestHandle;  // cancel() wakes the thread
  using Request = RequestHandle::Request;
  void loop();
  // Waits for work; ends canceled requests, moves queued ones into free sequences. False: exit.
  bool admit();
  // Builds and runs one batch, then samples every sequence that got logits.
  void step();
  void finish(const std::shared_ptr<Request>& r);
  void complete(const std::shared_ptr<Request>& r, GenerateResult res, std::exception_ptr error);
  // Puts an admitted request into a free sequence, the one whose cached tokens share the longest prefix
  // with its prompt, and skips that prefix.
  void place(std::shared_ptr<Request> r);
  std::int64_t kv_cells() const;

  const tokenizer::Tokenizer& tok_;
  SchedulerOptions opts_;
  std::unique_ptr<model::Context> ctx_;  // touched only by the scheduler thread after construction

  mutable std::mutex mu_;
  std::condition_variable cv_;  // wakes the scheduler thread: a submission, a cancel, shutdown
  std::deque<std::shared_ptr<Request>> queue_;
  bool closing_ = false;
  ShutdownMode shutdown_mode_ = ShutdownMode::kCancel;
  std::uint64_t next_id_ = 1;
  SchedulerStats stats_;

  // Scheduler thread only.
  std::vector<std::shared_ptr<Request>> slots_;  // [n_parallel]: the request holding each sequence
  // [n_parallel]: the tokens in a free sequence's KV cache (positions 0..size-1), left by the request
  // that held it; empty while a request holds it.
  std::vector<std::vector<std::int32_t>> held_;
  std::vector<std::int32_t> admitted_;  // occupied sequences, oldest admission first
  std::vector<std::shared_ptr<Request>> admitting_;
  // What one output row of batch_ is for: sampling the next token of its sequence, or (prompt_logprobs)
  // scoring prompt token `scores`, which the row of prompt token scores - 1 predicts.
  struct OutRow {
    static constexpr std::int32_t kSample = -1;
    std::int32_t seq = -1;
    std::int32_t scores = kSample;
  };
  std::vector<model::BatchToken> batch_;  // [<= n_parallel + chunk]
  std::vector<OutRow> out_rows_;          // [outputs of batch_], in batch order
  std::uint64_t unpublished_tokens_ = 0;  // generated this step, not yet in stats_

  std::thread thread_;
};

}  // namespace g2c::engine
