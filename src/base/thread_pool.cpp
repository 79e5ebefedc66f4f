#include "ember/base/thread_pool.hpp"

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <string>

namespace ember {
namespace {
thread_local bool t_inside_pool_task = false;
}

ThreadPool::ThreadPool(int num_threads) {
  const int workers = std::max(1, num_threads) - 1;
  workers_.reserve(static_cast<size_t>(workers));
  for (int i = 0; i < workers; ++i) workers_.emplace_back([this] { worker_loop(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  work_ready_.notify_all();
  for (auto& t : workers_) t.join();
}

// Takes and runs one chunk of the current job; false when none is left.
bool ThreadPool::run_one_chunk() {
  int64_t lo;
  int64_t hi;
  const std::function<void(int64_t, int64_t)>* job;
  {
    std::lock_guard lock(mutex_);
    if (job_ == nullptr || next_ >= end_) return false;
    lo = next_;
    hi = std::min(end_, lo + chunk_);
    next_ = hi;
    job = job_;
  }
  t_inside_pool_task = true;
  try {
    (*job)(lo, hi);
  } catch (...) {
    std::lock_guard lock(mutex_);
    if (!error_) error_ = std::current_exception();
  }
  t_inside_pool_task = false;
  std::lock_guard lock(mutex_);
  if (--pending_chunks_ == 0) work_done_.notify_all();
  return true;
}

void ThreadPool::worker_loop() {
  uint64_t seen = 0;
  for (;;) {
    {
      std::unique_lock lock(mutex_);
      work_ready_.wait(lock, [&] { return stopping_ || (generation_ != seen && next_ < end_); });
      if (stopping_) return;
      seen = generation_;
    }
    while (run_one_chunk()) {
    }
  }
}

void ThreadPool::parallel_for(int64_t begin, int64_t end, int64_t grain,
                              const std::function<void(int64_t, int64_t)>& fn) {
  if (end <= begin) return;
  const int64_t n = end - begin;
  grain = std::max<int64_t>(1, grain);
  if (workers_.empty() || t_inside_pool_task || n <= grain) {
    fn(begin, end);
    return;
  }
  std::lock_guard submit(submit_mutex_);
  // About four chunks per thread balances load without much scheduling overhead.
  const int64_t target_chunks = static_cast<int64_t>(num_threads()) * 4;
  const int64_t chunk = std::max(grain, (n + target_chunks - 1) / target_chunks);
  {
    std::lock_guard lock(mutex_);
    job_ = &fn;
    next_ = begin;
    end_ = end;
    chunk_ = chunk;
    pending_chunks_ = (n + chunk - 1) / chunk;
    error_ = nullptr;
    ++generation_;
  }
  work_ready_.notify_all();
  while (run_one_chunk()) {
  }
  std::exception_ptr error;
  {
    std::unique_lock lock(mutex_);
    work_done_.wait(lock, [&] { return pending_chunks_ == 0; });
    job_ = nullptr;
    error = error_;
    error_ = nullptr;
  }
  if (error) std::rethrow_exception(error);
}

namespace {
int default_thread_count() {
  if (const char* env = std::getenv("EMBER_NUM_THREADS")) {
    const int n = std::atoi(env);
    if (n > 0) return n;
  }
  return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

std::unique_ptr<ThreadPool>& pool_slot() {
  static std::unique_ptr<ThreadPool> pool = std::make_unique<ThreadPool>(default_thread_count());
  return pool;
}
}  // namespace

ThreadPool& default_thread_pool() {
  return *pool_slot();
}

void set_num_threads(int num_threads) {
  pool_slot() = std::make_unique<ThreadPool>(std::max(1, num_threads));
}

void parallel_for(int64_t begin, int64_t end, int64_t grain,
                  const std::function<void(int64_t, int64_t)>& fn) {
  default_thread_pool().parallel_for(begin, end, grain, fn);
}

}  // namespace ember
