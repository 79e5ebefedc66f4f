#pragma once
// One persistent pool of worker threads for the whole process. Every module splits its work with
// parallel_for and none starts threads of its own, so a tokenizer and a model running together
// share one set of cores.
//
// A decoded token issues hundreds of small parallel_for calls, so the fixed cost of a call is
// what matters. A call publishes its job with a few atomic stores; chunks are claimed with one
// atomic add (no lock per chunk); the callable is passed by reference (no allocation); idle
// workers spin on a generation counter for a short while before they sleep, so back-to-back
// calls find them awake.
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

namespace ember {

// A borrowed reference to a callable taking (chunk_begin, chunk_end): two pointers, no
// allocation. It must not outlive the callable; parallel_for waits for every chunk, so a lambda
// written in its argument list lives long enough.
class RangeFn {
 public:
  template <typename Fn, typename = std::enable_if_t<!std::is_same_v<std::decay_t<Fn>, RangeFn>>>
  RangeFn(Fn&& fn)  // NOLINT(google-explicit-constructor): a lambda converts implicitly
      : object_(const_cast<void*>(static_cast<const void*>(std::addressof(fn)))),
        call_([](void* object, int64_t lo, int64_t hi) {
          (*static_cast<std::remove_reference_t<Fn>*>(object))(lo, hi);
        }) {}

  void operator()(int64_t lo, int64_t hi) const { call_(object_, lo, hi); }

 private:
  void* object_;
  void (*call_)(void*, int64_t, int64_t);
};

class ThreadPool {
 public:
  // More threads than any machine Ember runs on has cores; a larger request is a typo.
  static constexpr int kMaxThreads = 1024;

  // num_threads counts the calling thread, which always takes part: 1 means no workers.
  // Throws ember::Error for a count outside [1, kMaxThreads], or when the system refuses a
  // worker thread (a process, pids or memory limit); the workers already started are stopped
  // and joined first.
  explicit ThreadPool(int num_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int num_threads() const { return num_threads_.load(std::memory_order_relaxed); }

  // Replaces the workers with num_threads - 1 new ones. Waits until a parallel_for running on
  // another thread has finished, so work never sees the count change under it. Throws
  // ember::Error from inside a task (it would wait for itself), for a bad count, or when a
  // worker cannot be started; after that last failure the pool runs on the caller alone.
  void resize(int num_threads);

  // Runs fn(chunk_begin, chunk_end) over [begin, end) in chunks of at least `grain` items and
  // waits for all of them; the calling thread runs chunks too. Nested calls from inside a task
  // run serially on the caller. Calls from several outside threads take turns. The first
  // exception thrown by a chunk is rethrown here after all chunks finish.
  void parallel_for(int64_t begin, int64_t end, int64_t grain, RangeFn fn);

 private:
  // Where a thread sleeps once spinning has not paid off, and how others wake it.
  struct Parking {
    std::mutex mutex;
    std::condition_variable cv;
    std::atomic<int> sleepers{0};
  };
  template <typename Ready>
  static void wait_until(Parking& parking, Ready ready);
  static void wake_all(Parking& parking);

  void start_workers(int num_threads);
  void stop_workers();
  void worker_loop(uint32_t seen_generation);
  void run_chunks();

  std::mutex submit_mutex_;  // one job at a time; resize waits for it too
  std::vector<std::thread> workers_;
  std::atomic<int> num_threads_{1};

  // The job in flight. Written by the submitting thread before it publishes ticket_, read by a
  // thread only after it claimed one of the job's chunks.
  const RangeFn* job_fn_ = nullptr;
  int64_t job_begin_ = 0;
  int64_t job_end_ = 0;
  int64_t job_chunk_ = 1;
  std::exception_ptr error_;
  std::atomic<bool> error_claimed_{false};

  // High 32 bits: the job's chunk count; low 32 bits: the next chunk to hand out. One fetch_add
  // both claims a chunk and says whether it exists, so a worker that wakes late takes nothing
  // from a finished job and never needs the job's other fields to find out.
  alignas(64) std::atomic<uint64_t> ticket_{0};
  alignas(64) std::atomic<uint32_t> chunks_done_{0};
  alignas(64) std::atomic<uint32_t> generation_{0};  // bumped per job; idle workers watch it
  std::atomic<bool> stopping_{false};
  Parking work_parking_;  // workers waiting for a job
  Parking done_parking_;  // the submitter waiting for the workers' last chunks
};

// The process-wide pool, created on first use. Its size is EMBER_NUM_THREADS if set (an integer
// from 1 to ThreadPool::kMaxThreads; anything else is an ember::Error), else the hardware
// concurrency. Creation failures throw ember::Error, and the next call tries again.
ThreadPool& default_thread_pool();

// Resizes the process-wide pool (0: back to the default above). Safe while other threads run
// parallel_for: it waits for the job in flight.
void set_num_threads(int num_threads);

// Shorthand for default_thread_pool().parallel_for(...).
void parallel_for(int64_t begin, int64_t end, int64_t grain, RangeFn fn);

// Runs fn(item) for every item in [0, n), handing items out one at a time to whichever pool
// thread is free. For a few large or unequal items (tree features, tokenizer texts),
// parallel_for's chunks of several items could leave one thread up to a chunk behind the
// others; one item at a time balances them. Each item runs on one thread, so results do not
// depend on the thread count.
template <typename Fn>
void parallel_for_each(int64_t n, Fn&& fn) {
  if (n <= 0) return;
  std::atomic<int64_t> next{0};
  const int64_t slots = std::min<int64_t>(default_thread_pool().num_threads(), n);
  parallel_for(0, slots, 1, [&](int64_t, int64_t) {
    for (int64_t item = next++; item < n; item = next++) fn(item);
  });
}

}  // namespace ember
