#pragma once
// The HTTP worker threads. cpp-httplib's own pool wakes whichever idle thread the condition variable
// picks, in practice round-robin over all of them, so every one of a server's (parallel + queue + 16)
// workers soon has a warm stack and heap arena: resident memory climbs for the first thousand requests
// and hot caches are spread thin. This pool hands each connection to the worker that went idle last
// (LIFO), so a light load keeps running on a few warm threads and the rest stay untouched.
#include <httplib.h>

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace g2c::server {

class WorkerPool : public httplib::TaskQueue {
 public:
  explicit WorkerPool(std::size_t n_threads);
  ~WorkerPool() override;
  // A job runs at once on the most recently idle worker, else waits for the first one free.
  void enqueue(std::function<void()> fn) override;
  // Runs the jobs still waiting, then joins every worker. Idempotent.
  void shutdown() override;

 private:
  struct Worker {
    std::thread thread;
    std::condition_variable cv;
    std::function<void()> job;
  };
  void run(Worker* w);

  std::mutex mu_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::vector<Worker*> idle_;                  // the most recently idle last
  std::deque<std::function<void()>> backlog_;  // jobs that found no idle worker
  bool stopping_ = false;
};

}  // namespace g2c::server
