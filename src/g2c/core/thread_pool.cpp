#include "g2c/core/thread_pool.hpp"

#include <algorithm>

#include "g2c/core/cpu.hpp"
#include "g2c/core/timer.hpp"

namespace g2c {

ThreadPool::ThreadPool(int n_threads) {
  if (n_threads <= 0) n_threads = std::max(1, cpu_features().physical_cores);
  n_threads_ = n_threads;
  threads_.reserve(static_cast<std::size_t>(n_threads_ - 1));
  for (int i = 1; i < n_threads_; ++i) threads_.emplace_back([this, i] { worker(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_.store(true);
  }
  start_cv_.notify_all();
  for (auto& t : threads_) t.join();
}

namespace {
inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}
}  // namespace

void ThreadPool::worker(int ith) {
  std::uint64_t seen = 0;
  for (;;) {
    // Spin briefly, then sleep until the next region (or shutdown).
    const std::int64_t t0 = now_ns();
    int spins = 0;
    while (generation_.load(std::memory_order_acquire) == seen && !stop_.load(std::memory_order_relaxed)) {
      cpu_relax();
      if (++spins % 64 == 0 && now_ns() - t0 > kSpinNs) {
        std::unique_lock<std::mutex> lock(mu_);
        ++sleepers_;
        start_cv_.wait(lock, [&] { return stop_.load() || generation_.load(std::memory_order_acquire) != seen; });
        --sleepers_;
      }
    }
    if (stop_.load()) return;
    seen = generation_.load(std::memory_order_acquire);
    (*job_)(ith, n_threads_);
    pending_.fetch_sub(1, std::memory_order_acq_rel);
  }
}

void ThreadPool::run(const std::function<void(int, int)>& fn) {
  if (n_threads_ == 1) {
    fn(0, 1);
    return;
  }
  job_ = &fn;
  pending_.store(n_threads_ - 1, std::memory_order_relaxed);
  generation_.fetch_add(1, std::memory_order_acq_rel);
  {
    // A worker that decided to sleep checks the generation under the mutex, so no wake-up is lost.
    std::lock_guard<std::mutex> lock(mu_);
    if (sleepers_ > 0) start_cv_.notify_all();
  }
  fn(0, n_threads_);
  while (pending_.load(std::memory_order_acquire) != 0) cpu_relax();
}

std::pair<std::int64_t, std::int64_t> ThreadPool::chunk(std::int64_t n, int ith, int nth, std::int64_t grain) {
  grain = std::max<std::int64_t>(1, grain);
  const std::int64_t n_blocks = (n + grain - 1) / grain;
  return {std::min(n, n_blocks * ith / nth * grain), std::min(n, n_blocks * (ith + 1) / nth * grain)};
}

void ThreadPool::parallel_for(std::int64_t n, const std::function<void(std::int64_t, std::int64_t)>& fn,
                              std::int64_t grain) {
  if (n <= 0) return;
  grain = std::max<std::int64_t>(1, grain);
  const std::int64_t n_blocks = (n + grain - 1) / grain;
  const int nth = static_cast<int>(std::min<std::int64_t>(n_threads_, n_blocks));
  if (nth == 1) {
    fn(0, n);
    return;
  }
  run([&](int ith, int) {
    if (ith >= nth) return;
    const auto [b, e] = chunk(n, ith, nth, grain);
    if (b < e) fn(b, e);
  });
}

void ThreadPool::parallel_for_dynamic(std::int64_t n, std::int64_t chunk_size,
                                      const std::function<void(std::int64_t, std::int64_t)>& fn) {
  if (n <= 0) return;
  chunk_size = std::max<std::int64_t>(1, chunk_size);
  if (n_threads_ == 1 || n <= chunk_size) {
    fn(0, n);
    return;
  }
  std::atomic<std::int64_t> next{0};
  run([&](int, int) {
    for (;;) {
      const std::int64_t b = next.fetch_add(chunk_size, std::memory_order_relaxed);
      if (b >= n) return;
      fn(b, std::min(n, b + chunk_size));
    }
  });
}

}  // namespace g2c
