#include "g2c/server/generation.hpp"

#include <condition_variable>
#include <deque>
#include <mutex>

#include <fmt/format.h>

#include "g2c/core/timer.hpp"
#include "g2c/server/api_error.hpp"

namespace g2c::server {

struct Generation::Channel {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<Piece> pieces;
  bool canceled = false;
  bool finished = false;  // the scheduler completed the request (every piece is in `pieces`)
  bool ended = false;     // finished and every piece taken
  std::int64_t t_start = 0;
  std::int64_t t_last = 0;  // the previous token's arrival, for inter-token latency
};

Generation::Generation(ServedModel& m, std::vector<std::int32_t> prompt, const engine::GenerateParams& params,
                       Metrics& metrics)
    : ch_(std::make_shared<Channel>()), prompt_(std::move(prompt)), metrics_(metrics) {
  const int n_vocab = m.tokenizer().n_vocab();
  for (std::int32_t id : prompt_)
    if (id < 0 || id >= n_vocab)
      throw bad_request(fmt::format("invalid request: token id {} is outside the vocabulary (0..{})", id, n_vocab - 1),
                        "prompt");
  // Checked here rather than left to the scheduler, so the message names what a client can change.
  if (static_cast<std::int64_t>(prompt_.size()) > m.n_ctx() && !params.truncate_prompt)
    throw bad_request(fmt::format("the input length exceeds the context length: the prompt has {} tokens, each "
                                  "sequence holds {} (g2c serve --ctx; on /api/generate and /api/chat "
                                  "\"truncate\": true drops the oldest tokens instead)",
                                  prompt_.size(), m.n_ctx()),
                      "prompt");
  ch_->t_start = now_ns();
  std::shared_ptr<Channel> ch = ch_;
  Metrics* mx = &metrics_;
  auto on_token = [ch, mx](const engine::TokenEvent& e) {
    const std::int64_t t = now_ns();
    std::lock_guard lk(ch->mu);
    if (e.token >= 0) {
      if (ch->t_last == 0) {
        mx->ttft(static_cast<double>(t - ch->t_start) / 1e9);
      } else {
        mx->inter_token(static_cast<double>(t - ch->t_last) / 1e9);
      }
      ch->t_last = t;
    }
    Piece p;
    p.text.assign(e.text);
    p.token = e.token;
    p.logprob = e.logprob;
    p.top.assign(e.top.begin(), e.top.end());
    ch->pieces.push_back(std::move(p));
    ch->cv.notify_all();
    return !ch->canceled;
  };
  try {
    auto on_done = [ch] {
      std::lock_guard lk(ch->mu);
      ch->finished = true;
      ch->cv.notify_all();
    };
    handle_ = m.scheduler().submit(prompt_, params, on_token, on_done);
  } catch (const engine::QueueFull&) {
    throw ApiError(503, "server busy, please try again.  maximum pending requests exceeded");
  } catch (const engine::SchedulerClosed&) {
    throw ApiError(503, "server is shutting down");
  } catch (const model::ContextOverflow& e) {
    throw bad_request(e.what(), "prompt");
  } catch (const InvalidArgument& e) {
    throw bad_request(e.what());
  }
}

Generation::~Generation() {
  if (handle_ && !handle_.done()) {
    handle_.cancel();
    try {
      wait();
    } catch (...) {
    }
  }
}

bool Generation::next(std::vector<Piece>& out, std::chrono::milliseconds poll) {
  std::unique_lock lk(ch_->mu);
  if (ch_->pieces.empty() && !ch_->ended) {
    ch_->cv.wait_for(lk, poll, [&] { return !ch_->pieces.empty() || ch_->finished; });
    if (ch_->pieces.empty() && ch_->finished) ch_->ended = true;
  }
  const bool any = !ch_->pieces.empty();
  while (!ch_->pieces.empty()) {
    out.push_back(std::move(ch_->pieces.front()));
    ch_->pieces.pop_front();
  }
  return any || !ch_->ended;
}

engine::GenerateResult Generation::wait() {
  engine::GenerateResult r = handle_.wait();
  if (!counted_) {
    counted_ = true;
    metrics_.tokens(static_cast<std::uint64_t>(r.stats.n_prompt_tokens),
                    static_cast<std::uint64_t>(r.stats.n_generated));
    metrics_.cached_tokens(static_cast<std::uint64_t>(r.stats.n_prompt_cached));
  }
  return r;
}

void Generation::cancel() {
  {
    std::lock_guard lk(ch_->mu);
    ch_->canceled = true;
  }
  if (handle_) handle_.cancel();
}

}  // namespace g2c::server
