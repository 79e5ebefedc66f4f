#include "ember/base/thread_pool.hpp"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <functional>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "../test_env.hpp"
#include "ember/base/error.hpp"
#include "ember/base/pool_stay_awake.hpp"
#include "refuse_threads.hpp"

namespace ember {
namespace {

// Sum of i over [begin, end), computed by the pool: any lost, repeated or torn chunk changes it.
int64_t pool_sum(ThreadPool& pool, int64_t begin, int64_t end, int64_t grain) {
  std::atomic<int64_t> sum{0};
  pool.parallel_for(begin, end, grain, [&](int64_t lo, int64_t hi) {
    int64_t s = 0;
    for (int64_t i = lo; i < hi; ++i) s += i;
    sum += s;
  });
  return sum.load();
}

int64_t exact_sum(int64_t begin, int64_t end) {
  int64_t s = 0;
  for (int64_t i = begin; i < end; ++i) s += i;
  return s;
}

TEST(ThreadPool, CoversEveryIndexExactlyOnce) {
  ThreadPool pool(4);
  for (int rep = 0; rep < 50; ++rep) {
    std::vector<std::atomic<int>> hits(1000);
    pool.parallel_for(0, 1000, 7, [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i) hits[static_cast<size_t>(i)]++;
    });
    for (auto& h : hits) ASSERT_EQ(h.load(), 1);
  }
}

TEST(ThreadPool, ChunksAreAtLeastTheGrainWhateverTheThreadCount) {
  for (int threads = 1; threads <= 5; ++threads) {
    ThreadPool pool(threads);
    for (int64_t grain : {1, 3, 64}) {
      for (int64_t n : {1, 2, 5, 63, 64, 65, 1000, 4097}) {
        const int64_t begin = -17;  // ranges need not start at zero
        std::mutex mutex;
        std::vector<std::pair<int64_t, int64_t>> chunks;
        pool.parallel_for(begin, begin + n, grain, [&](int64_t lo, int64_t hi) {
          std::lock_guard lock(mutex);
          chunks.emplace_back(lo, hi);
        });
        std::sort(chunks.begin(), chunks.end());
        int64_t expect = begin;
        for (const auto& [lo, hi] : chunks) {
          ASSERT_EQ(lo, expect) << threads << " threads, n " << n << ", grain " << grain;
          ASSERT_GT(hi, lo);
          // Only the chunk that ends the range may be shorter than the grain.
          if (hi != begin + n) {
            ASSERT_GE(hi - lo, grain);
          }
          expect = hi;
        }
        ASSERT_EQ(expect, begin + n);
        ASSERT_EQ(pool_sum(pool, begin, begin + n, grain), exact_sum(begin, begin + n));
      }
    }
  }
}

TEST(ThreadPool, NestedCallsRunInlineAndExceptionsPropagate) {
  ThreadPool pool(3);
  std::atomic<int64_t> sum{0};
  pool.parallel_for(0, 10, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) {
      pool.parallel_for(0, 10, 1, [&](int64_t a, int64_t b) { sum += b - a; });
    }
  });
  EXPECT_EQ(sum.load(), 100);
  EXPECT_THROW(pool.parallel_for(0, 100, 1,
                                 [](int64_t lo, int64_t) {
                                   if (lo >= 50) throw std::runtime_error("boom");
                                 }),
               std::runtime_error);
  // The pool is still usable after an exception.
  std::atomic<int> count{0};
  pool.parallel_for(0, 64, 1, [&](int64_t lo, int64_t hi) { count += static_cast<int>(hi - lo); });
  EXPECT_EQ(count.load(), 64);
}

TEST(ThreadPool, EveryChunkRunsBeforeTheFirstExceptionIsRethrown) {
  ThreadPool pool(3);
  for (int rep = 0; rep < 20; ++rep) {
    std::atomic<int64_t> covered{0};
    try {
      pool.parallel_for(0, 999, 1, [&](int64_t lo, int64_t hi) {
        covered += hi - lo;
        if (lo % 2 == 0) throw std::runtime_error("chunk " + std::to_string(lo));
      });
      FAIL() << "no exception";
    } catch (const std::runtime_error& e) {
      EXPECT_EQ(std::strncmp(e.what(), "chunk ", 6), 0);
    }
    EXPECT_EQ(covered.load(), 999);
  }
}

TEST(ThreadPool, TakesAnyCallableByReference) {
  ThreadPool pool(2);
  std::atomic<int64_t> sum{0};
  const std::function<void(int64_t, int64_t)> named = [&](int64_t lo, int64_t hi) {
    sum += hi - lo;
  };
  pool.parallel_for(0, 100, 1, named);
  const auto const_lambda = [&](int64_t lo, int64_t hi) { sum += hi - lo; };
  pool.parallel_for(0, 100, 1, const_lambda);
  EXPECT_EQ(sum.load(), 200);
}

TEST(ThreadPool, ParallelForEachVisitsEveryItemOnce) {
  const int saved = default_thread_pool().num_threads();
  for (int threads : {1, 3}) {
    set_num_threads(threads);
    std::vector<std::atomic<int>> hits(257);
    parallel_for_each(257, [&](int64_t item) { hits[static_cast<size_t>(item)]++; });
    for (auto& h : hits) ASSERT_EQ(h.load(), 1);
  }
  parallel_for_each(0, [](int64_t) { FAIL() << "no items"; });
  set_num_threads(saved);
}

// Several outside threads submit work while another keeps resizing the same pool: every job
// must still see each index once, and nothing may race (run under ASan; TSan-clean by design).
// Inside a PoolStayAwake scope idle threads spin past the usual spin time instead of sleeping:
// calls separated by pauses longer than that spin still run every chunk once, and a resize and
// the pool's destruction stop the spinning workers (a hang fails the test by its timeout).
TEST(ThreadPool, StayAwakeScopeKeepsWorkCorrectAndWorkersStoppable) {
  ThreadPool pool(3);
  {
    const PoolStayAwake awake;
    for (int i = 0; i < 20; ++i) {
      EXPECT_EQ(pool_sum(pool, 0, 10000, 100), exact_sum(0, 10000));
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    pool.resize(2);
    EXPECT_EQ(pool_sum(pool, 0, 10000, 100), exact_sum(0, 10000));
  }
  // After the scope the workers fall asleep again and are woken by the next call.
  std::this_thread::sleep_for(std::chrono::milliseconds(2));
  EXPECT_EQ(pool_sum(pool, 5, 7777, 10), exact_sum(5, 7777));
}

TEST(ThreadPool, ResizingWhileOtherThreadsSubmitNeverLosesWork) {
  ThreadPool pool(2);
  std::atomic<int> resizes{0};
  std::atomic<int> bad{0};
  std::atomic<int> running{3};
  std::vector<std::thread> submitters;
  submitters.reserve(3);
  for (int t = 0; t < 3; ++t) {
    submitters.emplace_back([&, t] {
      // Until the resizer has changed the size many times, so the two really interleave.
      for (int rep = 0; rep < 300 || resizes.load() < 100; ++rep) {
        const int64_t n = 1 + (rep * 37 + t * 11) % 500;
        if (pool_sum(pool, 0, n, 1 + rep % 7) != exact_sum(0, n)) bad++;
      }
      running--;
    });
  }
  for (int i = 0; running.load() > 0; ++i) {
    pool.resize(1 + i % 4);
    resizes++;
  }
  for (auto& s : submitters) s.join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_GE(resizes.load(), 100);
}

TEST(ThreadPool, SetNumThreadsWhileTheDefaultPoolRunsWork) {
  const int saved = default_thread_pool().num_threads();
  std::atomic<int> resizes{0};
  std::atomic<bool> stop{false};
  std::atomic<int> bad{0};
  std::thread submitter([&] {
    for (int rep = 0; rep < 500 || resizes.load() < 100; ++rep) {
      std::atomic<int64_t> sum{0};
      parallel_for(0, 300, 1, [&](int64_t lo, int64_t hi) {
        for (int64_t i = lo; i < hi; ++i) sum += i;
      });
      if (sum.load() != exact_sum(0, 300)) bad++;
    }
    stop = true;
  });
  for (int i = 0; !stop.load(); ++i) {
    set_num_threads(1 + i % 3);
    resizes++;
  }
  submitter.join();
  EXPECT_EQ(bad.load(), 0);
  set_num_threads(saved);
}

TEST(ThreadPool, ResizeFromInsideATaskIsRefused) {
  ThreadPool pool(2);
  std::atomic<int> refused{0};
  pool.parallel_for(0, 8, 1, [&](int64_t, int64_t) {
    try {
      pool.resize(3);
    } catch (const Error&) {
      refused++;
    }
  });
  EXPECT_EQ(refused.load(), 8);
  EXPECT_EQ(pool.num_threads(), 2);
}

TEST(ThreadPool, ThreadCountsOutsideTheRangeAreErrors) {
  EXPECT_THROW(ThreadPool(0), Error);
  EXPECT_THROW(ThreadPool(-3), Error);
  EXPECT_THROW(ThreadPool(ThreadPool::kMaxThreads + 1), Error);
  ThreadPool pool(2);
  EXPECT_THROW(pool.resize(0), Error);
  EXPECT_EQ(pool.num_threads(), 2);
  EXPECT_THROW(set_num_threads(-1), Error);
  EXPECT_THROW(set_num_threads(ThreadPool::kMaxThreads + 1), Error);
}

// Runs body in a forked child and returns its exit code, or 128 + the signal that ended it; the
// alarm turns a hang into a failure. Body returns 77 when it cannot refuse threads.
int in_child(const std::function<int()>& body) {
  const pid_t pid = fork();
  if (pid == 0) {
    alarm(30);
    _exit(body());
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

constexpr int kNoFilter = 77;

TEST(ThreadPool, RefusedWorkerThreadIsAnErrorNotAHang) {
  const int code = in_child([] {
    if (!testing::refuse_new_threads()) return kNoFilter;
    try {
      ThreadPool pool(8);
      return 1;  // constructed without its workers
    } catch (const Error& e) {
      const std::string what = e.what();
      return what.find("cannot start worker thread 1 of 7") != std::string::npos &&
                     what.find("EMBER_NUM_THREADS") != std::string::npos
                 ? 0
                 : 2;
    }
  });
  EMBER_REQUIRE_OR_SKIP(code != kNoFilter, "seccomp filters are not available here");
  EXPECT_EQ(code, 0);
}

TEST(ThreadPool, RefusedResizeJoinsTheOldWorkersAndLeavesAWorkingPool) {
  const int code = in_child([] {
    ThreadPool pool(3);  // two workers, started before threads are refused
    if (pool_sum(pool, 0, 1000, 1) != exact_sum(0, 1000)) return 1;
    if (!testing::refuse_new_threads()) return kNoFilter;
    try {
      pool.resize(6);
      return 2;
    } catch (const Error&) {
    }
    if (pool.num_threads() != 1) return 3;
    return pool_sum(pool, 0, 1000, 1) == exact_sum(0, 1000) ? 0 : 4;
  });
  EMBER_REQUIRE_OR_SKIP(code != kNoFilter, "seccomp filters are not available here");
  EXPECT_EQ(code, 0);
}

}  // namespace
}  // namespace ember
