#pragma once
// One persistent pool of worker threads for the whole process. Kernels split work with
// parallel_for; no op creates threads of its own.
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace ember {

class ThreadPool {
 public:
  // num_threads counts the calling thread, which always takes part: 1 means no workers.
  explicit ThreadPool(int num_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int num_threads() const { return static_cast<int>(workers_.size()) + 1; }

  // Runs fn(chunk_begin, chunk_end) over [begin, end) in chunks of at least `grain` items and
  // waits for all of them. Nested calls from inside a task run serially on the caller.
  // The first exception thrown by a chunk is rethrown here after all chunks finish.
  void parallel_for(int64_t begin, int64_t end, int64_t grain,
                    const std::function<void(int64_t, int64_t)>& fn);

 private:
  void worker_loop();
  bool run_one_chunk();

  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable work_ready_;
  std::condition_variable work_done_;
  std::mutex submit_mutex_;  // one parallel_for at a time; others wait
  // The job in flight.
  const std::function<void(int64_t, int64_t)>* job_ = nullptr;
  int64_t next_ = 0;
  int64_t end_ = 0;
  int64_t chunk_ = 1;
  int64_t pending_chunks_ = 0;
  uint64_t generation_ = 0;
  std::exception_ptr error_;
  bool stopping_ = false;
};

// The process-wide pool. Its size is EMBER_NUM_THREADS if set, else the hardware concurrency;
// set_num_threads() replaces it (call when no parallel work is running).
ThreadPool& default_thread_pool();
void set_num_threads(int num_threads);

// Shorthand for default_thread_pool().parallel_for(...).
void parallel_for(int64_t begin, int64_t end, int64_t grain,
                  const std::function<void(int64_t, int64_t)>& fn);

}  // namespace ember
