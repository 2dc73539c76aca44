// ThreadPool: every index is visited exactly once, the static split falls on multiples of the grain
// whatever the pool size, the dynamic split hands out whole chunks, and a pool whose workers went to
// sleep between regions (longer than the spin window) wakes up for the next one.
#include "g2c/core/thread_pool.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

namespace g2c {
namespace {

TEST(ThreadPool, RunCallsEveryWorkerOnce) {
  for (int n : {1, 2, 3, 5}) {
    ThreadPool pool(n);
    std::vector<std::atomic<int>> seen(static_cast<std::size_t>(n));
    pool.run([&](int ith, int nth) {
      EXPECT_EQ(nth, n);
      seen[static_cast<std::size_t>(ith)].fetch_add(1);
    });
    for (auto& s : seen) EXPECT_EQ(s.load(), 1);
  }
}

TEST(ThreadPool, ParallelForCoversOnceOnGrainBoundaries) {
  for (int n_threads : {1, 2, 3, 4}) {
    ThreadPool pool(n_threads);
    for (std::int64_t n : {1, 15, 16, 17, 100, 768, 5632}) {
      for (std::int64_t grain : {1, 16}) {
        std::vector<std::atomic<int>> hits(static_cast<std::size_t>(n));
        std::mutex mu;
        std::vector<std::pair<std::int64_t, std::int64_t>> chunks;
        pool.parallel_for(
            n,
            [&](std::int64_t b, std::int64_t e) {
              for (std::int64_t i = b; i < e; ++i) hits[static_cast<std::size_t>(i)].fetch_add(1);
              std::lock_guard<std::mutex> lock(mu);
              chunks.emplace_back(b, e);
            },
            grain);
        for (std::int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[static_cast<std::size_t>(i)].load(), 1) << n << " " << i;
        for (auto [b, e] : chunks) {
          EXPECT_EQ(b % grain, 0) << "chunk start " << b << " not on the grain " << grain;
          EXPECT_TRUE(e == n || e % grain == 0) << "chunk end " << e;
        }
      }
    }
  }
}

TEST(ThreadPool, DynamicSplitHandsOutWholeChunksOnce) {
  for (int n_threads : {1, 2, 3}) {
    ThreadPool pool(n_threads);
    for (std::int64_t n : {1, 7, 64, 1000}) {
      for (std::int64_t chunk : {1, 16, 48}) {
        std::vector<std::atomic<int>> hits(static_cast<std::size_t>(n));
        std::atomic<bool> bad_chunk{false};
        pool.parallel_for_dynamic(n, chunk, [&](std::int64_t b, std::int64_t e) {
          if (n > chunk && (b % chunk != 0 || (e != n && e - b != chunk))) bad_chunk = true;
          for (std::int64_t i = b; i < e; ++i) hits[static_cast<std::size_t>(i)].fetch_add(1);
        });
        EXPECT_FALSE(bad_chunk.load()) << n << " " << chunk;
        for (std::int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[static_cast<std::size_t>(i)].load(), 1) << n << " " << i;
      }
    }
  }
}

TEST(ThreadPool, WakesUpAfterSleepingBetweenRegions) {
  ThreadPool pool(3);
  for (int round = 0; round < 3; ++round) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));  // past the 200 us spin window
    std::atomic<int> calls{0};
    pool.run([&](int, int) { calls.fetch_add(1); });
    EXPECT_EQ(calls.load(), 3);
  }
}

}  // namespace
}  // namespace g2c
