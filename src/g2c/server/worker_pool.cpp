#include "g2c/server/worker_pool.hpp"

#include <algorithm>

namespace g2c::server {

WorkerPool::WorkerPool(std::size_t n_threads) {
  for (std::size_t i = 0; i < std::max<std::size_t>(1, n_threads); ++i) {
    workers_.push_back(std::make_unique<Worker>());
    Worker* w = workers_.back().get();
    w->thread = std::thread([this, w] { run(w); });
  }
}

WorkerPool::~WorkerPool() { shutdown(); }

void WorkerPool::enqueue(std::function<void()> fn) {
  std::lock_guard lk(mu_);
  if (idle_.empty()) {
    backlog_.push_back(std::move(fn));
    return;
  }
  Worker* w = idle_.back();
  idle_.pop_back();
  w->job = std::move(fn);
  w->cv.notify_one();
}

void WorkerPool::run(Worker* w) {
  std::unique_lock lk(mu_);
  for (;;) {
    std::function<void()> job;
    if (!backlog_.empty()) {
      job = std::move(backlog_.front());
      backlog_.pop_front();
    } else if (stopping_) {
      return;
    } else {
      idle_.push_back(w);
      w->cv.wait(lk, [&] { return w->job != nullptr || stopping_; });
      if (!w->job) {  // stopping, and no job was handed over
        idle_.erase(std::find(idle_.begin(), idle_.end(), w));
        continue;
      }
      job = std::move(w->job);
      w->job = nullptr;
    }
    lk.unlock();
    job();
    lk.lock();
  }
}

void WorkerPool::shutdown() {
  {
    std::lock_guard lk(mu_);
    if (stopping_ && workers_.empty()) return;
    stopping_ = true;
    for (auto& w : workers_) w->cv.notify_one();
  }
  for (auto& w : workers_)
    if (w->thread.joinable()) w->thread.join();
  std::lock_guard lk(mu_);
  workers_.clear();
}

}  // namespace g2c::server
