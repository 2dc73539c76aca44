#pragma once
// One generation on a served model's scheduler, seen from an HTTP worker thread. The scheduler's
// callback (its own thread) only appends pieces to a channel and wakes the worker; the worker formats
// and writes them, so a slow client never slows the batch. When the client is gone the worker cancels,
// and the sequence is freed at the scheduler's next step.
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "g2c/engine/scheduler.hpp"
#include "g2c/server/metrics.hpp"
#include "g2c/server/model_pool.hpp"

namespace g2c::server {

struct Piece {
  std::string text;
  std::int32_t token = -1;  // -1: the final release of held-back text
  double logprob = 0.0;
  std::vector<sampling::TokenLogprob> top;
};

class Generation {
 public:
  // Submits `prompt` to m's scheduler. Throws ApiError: 503 when the queue is full, 400 when the prompt
  // does not fit the context or holds a token outside the vocabulary, 503 during shutdown.
  Generation(ServedModel& m, std::vector<std::int32_t> prompt, const engine::GenerateParams& params, Metrics& metrics);
  ~Generation();
  Generation(const Generation&) = delete;
  Generation& operator=(const Generation&) = delete;

  // Moves the pieces ready into `out`, waiting up to `poll` for one (or for the end). False once the
  // generation has ended and every piece was taken.
  bool next(std::vector<Piece>& out, std::chrono::milliseconds poll = std::chrono::milliseconds(1000));
  // The result (rethrows what failed the generation). Also records the token counts in the metrics.
  engine::GenerateResult wait();
  void cancel();
  const std::vector<std::int32_t>& prompt() const { return prompt_; }

 private:
  struct Channel;
  std::shared_ptr<Channel> ch_;
  std::vector<std::int32_t> prompt_;
  engine::RequestHandle handle_;
  Metrics& metrics_;
  bool counted_ = false;
};

}  // namespace g2c::server
