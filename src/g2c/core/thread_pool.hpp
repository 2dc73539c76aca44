#pragma once
// A persistent pool: the threads start once, so a forward pass pays no thread creation. Between parallel
// regions a worker spins for up to kSpinNs (a decode step launches ~100 regions a few microseconds
// apart, and a futex wake-up costs more than the region itself), then sleeps on a condition variable,
// so an idle server burns no CPU. The calling thread is worker 0 and does its share.
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

namespace g2c {

class ThreadPool {
 public:
  // `n_threads` workers in total, the caller included; <= 0 means physical cores.
  explicit ThreadPool(int n_threads = 0);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }
  // Calls fn(ith, nth) once on each of the nth = size() workers and returns when all are done.
  // One run at a time per pool (the forward pass of one Context).
  void run(const std::function<void(int ith, int nth)>& fn);
  // Splits [0, n) into size() contiguous chunks of near-equal length (a fixed split: the same n and
  // pool size give the same chunks, so results never depend on timing) and calls fn(begin, end) for
  // each non-empty chunk. Chunk boundaries fall on multiples of `grain` (the last chunk takes the
  // rest), so a kernel that works on blocks of grain rows sees whole blocks whatever the pool size.
  void parallel_for(std::int64_t n, const std::function<void(std::int64_t begin, std::int64_t end)>& fn,
                    std::int64_t grain = 1);
  // Worker ith's chunk [begin, end) of parallel_for's fixed split of [0, n) over nth workers, for code
  // already inside run() (several splits in one parallel region).
  static std::pair<std::int64_t, std::int64_t> chunk(std::int64_t n, int ith, int nth, std::int64_t grain = 1);
  // As parallel_for, but threads take chunks of `chunk_size` items from a shared counter until none are
  // left, so a thread slowed by the memory system does less of the work (decode streams weights
  // from DRAM, and a fixed half each measured 10-15% of the time waiting at the barrier). Which
  // thread runs a chunk varies; fn must give the same result for a chunk whichever thread runs it.
  void parallel_for_dynamic(std::int64_t n, std::int64_t chunk_size,
                            const std::function<void(std::int64_t begin, std::int64_t end)>& fn);

 private:
  void worker(int ith);

  int n_threads_ = 1;
  std::vector<std::thread> threads_;
  static constexpr std::int64_t kSpinNs = 200'000;
  std::mutex mu_;
  std::condition_variable start_cv_;
  const std::function<void(int, int)>* job_ = nullptr;  // written before generation_ is released
  std::atomic<std::uint64_t> generation_{0};
  std::atomic<int> pending_{0};
  std::atomic<bool> stop_{false};
  int sleepers_ = 0;  // guarded by mu_
};

}  // namespace g2c
