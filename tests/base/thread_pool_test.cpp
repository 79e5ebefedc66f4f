#include "ember/base/thread_pool.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <stdexcept>
#include <vector>

namespace ember {
namespace {

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

}  // namespace
}  // namespace ember
