#include "ember/base/thread_pool.hpp"

#include <chrono>
#include <cstdlib>
#include <string>
#include <string_view>
#include <system_error>

#include "ember/base/error.hpp"
#include "ember/base/pool_stay_awake.hpp"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace ember {
namespace {

// Workers are always inside a task; a submitting thread is while it runs chunks. Either way a
// nested parallel_for runs serially instead of waiting for the pool it is part of.
thread_local bool t_inside_pool_task = false;

// About four chunks per thread balance uneven chunks without much claiming traffic.
constexpr int64_t kChunksPerThread = 4;

// How long a thread spins before it sleeps. Calls of one decoded token follow each other within
// microseconds, so a worker that spins this long is awake for the next one; a sleeping worker
// costs a futex wake-up (tens of microseconds) per call.
constexpr auto kSpinTime = std::chrono::microseconds(50);

// Live PoolStayAwake scopes: while there is one, a wait that has spun for kSpinTime goes on
// spinning, yielding the CPU once per clock check, instead of sleeping.
std::atomic<int> g_stay_awake{0};

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

void check_thread_count(int num_threads, const char* what) {
  if (num_threads < 1 || num_threads > ThreadPool::kMaxThreads) {
    throw Error(std::string(what) + ": thread count must be from 1 to " +
                std::to_string(ThreadPool::kMaxThreads) + ", got " + std::to_string(num_threads));
  }
}

}  // namespace

template <typename Ready>
void ThreadPool::wait_until(Parking& parking, Ready ready) {
  using Clock = std::chrono::steady_clock;
  Clock::time_point deadline;  // read the clock only once a wait is not over at once
  for (int spins = 1;; ++spins) {
    if (ready()) return;
    cpu_relax();
    if (spins % 64 == 0) {
      const auto now = Clock::now();
      if (spins == 64) {
        deadline = now + kSpinTime;
      } else if (now >= deadline) {
        if (g_stay_awake.load(std::memory_order_relaxed) == 0) break;
        std::this_thread::yield();
      }
    }
  }
  std::unique_lock lock(parking.mutex);
  parking.sleepers.fetch_add(1, std::memory_order_relaxed);
  // Pairs with the fence in wake_all: either this thread sees the waker's update in ready(), or
  // the waker sees this sleeper and notifies, after this thread has started waiting (it holds
  // the mutex until then).
  std::atomic_thread_fence(std::memory_order_seq_cst);
  parking.cv.wait(lock, ready);
  parking.sleepers.fetch_sub(1, std::memory_order_relaxed);
}

PoolStayAwake::PoolStayAwake() {
  g_stay_awake.fetch_add(1, std::memory_order_relaxed);
}

PoolStayAwake::~PoolStayAwake() {
  g_stay_awake.fetch_sub(1, std::memory_order_relaxed);
}

void ThreadPool::wake_all(Parking& parking) {
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (parking.sleepers.load(std::memory_order_relaxed) == 0) return;
  { std::lock_guard lock(parking.mutex); }
  parking.cv.notify_all();
}

ThreadPool::ThreadPool(int num_threads) {
  check_thread_count(num_threads, "thread pool");
  start_workers(num_threads);
}

ThreadPool::~ThreadPool() {
  stop_workers();
}

void ThreadPool::start_workers(int num_threads) {
  workers_.reserve(static_cast<size_t>(num_threads - 1));
  const uint32_t generation = generation_.load(std::memory_order_relaxed);
  for (int i = 1; i < num_threads; ++i) {
    try {
      workers_.emplace_back([this, generation] { worker_loop(generation); });
    } catch (const std::system_error& e) {
      stop_workers();
      throw Error("thread pool: cannot start worker thread " + std::to_string(i) + " of " +
                  std::to_string(num_threads - 1) + " (" + e.what() +
                  "); lower EMBER_NUM_THREADS or raise the process's thread limit");
    }
  }
  num_threads_.store(num_threads, std::memory_order_relaxed);
}

void ThreadPool::stop_workers() {
  stopping_.store(true, std::memory_order_relaxed);
  generation_.fetch_add(1, std::memory_order_release);
  wake_all(work_parking_);
  for (auto& t : workers_) t.join();
  workers_.clear();
  stopping_.store(false, std::memory_order_relaxed);
  num_threads_.store(1, std::memory_order_relaxed);
}

void ThreadPool::resize(int num_threads) {
  if (t_inside_pool_task) throw Error("thread pool: cannot resize from inside a parallel task");
  check_thread_count(num_threads, "thread pool");
  std::lock_guard submit(submit_mutex_);
  if (num_threads == this->num_threads()) return;
  stop_workers();
  start_workers(num_threads);
}

void ThreadPool::worker_loop(uint32_t seen_generation) {
  t_inside_pool_task = true;
  for (;;) {
    wait_until(work_parking_,
               [&] { return generation_.load(std::memory_order_acquire) != seen_generation; });
    seen_generation = generation_.load(std::memory_order_acquire);
    if (stopping_.load(std::memory_order_relaxed)) return;
    run_chunks();
  }
}

// Claims and runs chunks of the current job until none is left, then reports them done in one
// atomic add: the counter is shared by every thread, so one add per thread and job instead of
// one per chunk.
void ThreadPool::run_chunks() {
  uint32_t finished = 0;
  uint32_t count = 0;
  for (;;) {
    const uint64_t ticket = ticket_.fetch_add(1, std::memory_order_acq_rel);
    const auto index = static_cast<uint32_t>(ticket);
    count = static_cast<uint32_t>(ticket >> 32);
    if (index >= count) break;
    const int64_t lo = job_begin_ + static_cast<int64_t>(index) * job_chunk_;
    const int64_t hi = std::min(job_end_, lo + job_chunk_);
    try {
      (*job_fn_)(lo, hi);
    } catch (...) {
      if (!error_claimed_.exchange(true, std::memory_order_relaxed)) {
        error_ = std::current_exception();
      }
    }
    ++finished;
  }
  if (finished == 0) return;
  // The job cannot end before this add, so the failed claim above read its chunk count. After
  // the add the job may be gone: only pool members are touched below.
  if (chunks_done_.fetch_add(finished, std::memory_order_acq_rel) + finished == count) {
    wake_all(done_parking_);
  }
}

void ThreadPool::parallel_for(int64_t begin, int64_t end, int64_t grain, RangeFn fn) {
  if (end <= begin) return;
  const int64_t n = end - begin;
  grain = std::max<int64_t>(1, grain);
  if (t_inside_pool_task || n <= grain || num_threads() == 1) {
    fn(begin, end);
    return;
  }
  std::unique_lock submit(submit_mutex_);
  const int64_t target_chunks = static_cast<int64_t>(num_threads()) * kChunksPerThread;
  const int64_t chunk = std::max(grain, (n + target_chunks - 1) / target_chunks);
  const int64_t chunks = (n + chunk - 1) / chunk;  // at least 2, at most 4 * kMaxThreads
  job_fn_ = &fn;
  job_begin_ = begin;
  job_end_ = end;
  job_chunk_ = chunk;
  error_ = nullptr;
  error_claimed_.store(false, std::memory_order_relaxed);
  chunks_done_.store(0, std::memory_order_relaxed);
  ticket_.store(static_cast<uint64_t>(chunks) << 32, std::memory_order_release);
  generation_.fetch_add(1, std::memory_order_release);
  wake_all(work_parking_);

  t_inside_pool_task = true;
  run_chunks();
  t_inside_pool_task = false;
  const auto all_chunks = static_cast<uint32_t>(chunks);
  wait_until(done_parking_,
             [&] { return chunks_done_.load(std::memory_order_acquire) == all_chunks; });
  job_fn_ = nullptr;
  std::exception_ptr error = std::move(error_);
  error_ = nullptr;
  submit.unlock();
  if (error) std::rethrow_exception(error);
}

namespace {

int default_thread_count() {
  const char* env = std::getenv("EMBER_NUM_THREADS");
  if (env == nullptr || *env == '\0') {
    return static_cast<int>(
        std::clamp(std::thread::hardware_concurrency(), 1u, unsigned{ThreadPool::kMaxThreads}));
  }
  const std::string_view text(env);
  int value = 0;
  bool ok = text.size() <= 4;
  for (char c : text) {
    ok = ok && c >= '0' && c <= '9';
    if (ok) value = value * 10 + (c - '0');
  }
  if (!ok || value < 1 || value > ThreadPool::kMaxThreads) {
    std::string shown;  // printable and short, so the message stays one line
    for (char c : text.substr(0, 40)) shown += c >= ' ' && c <= '~' ? c : '?';
    throw Error("EMBER_NUM_THREADS: expected an integer from 1 to " +
                std::to_string(ThreadPool::kMaxThreads) + ", got '" + shown + "'");
  }
  return value;
}

// The process-wide pool; initial_threads (0: the default count) sizes it if this call creates
// it. If the constructor throws, the next call constructs again.
ThreadPool& process_pool(int initial_threads) {
  static ThreadPool pool(initial_threads > 0 ? initial_threads : default_thread_count());
  return pool;
}

}  // namespace

ThreadPool& default_thread_pool() {
  return process_pool(0);
}

void set_num_threads(int num_threads) {
  if (num_threads < 0 || num_threads > ThreadPool::kMaxThreads) {
    throw Error("set_num_threads: expected 0 (the default) or a count from 1 to " +
                std::to_string(ThreadPool::kMaxThreads) + ", got " + std::to_string(num_threads));
  }
  process_pool(num_threads).resize(num_threads > 0 ? num_threads : default_thread_count());
}

void parallel_for(int64_t begin, int64_t end, int64_t grain, RangeFn fn) {
  default_thread_pool().parallel_for(begin, end, grain, fn);
}

}  // namespace ember
