// A fixed pool of worker threads with a blocking parallel_for, used for the CPU backend's
// elementwise kernels, attention heads and MoE experts.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace wideserve {

// Runs range tasks on N-1 worker threads plus the calling thread.
class ThreadPool {
 public:
  explicit ThreadPool(int num_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int num_threads() const { return static_cast<int>(workers_.size()) + 1; }

  // Calls fn(begin, end) over [0, n) split into chunks of at least min_chunk; returns when all are
  // done. Exceptions from fn are rethrown on the caller. Nested calls run inline.
  void parallel_for(size_t n, size_t min_chunk, const std::function<void(size_t, size_t)>& fn);

 private:
  void worker_loop();
  void run_chunks();

  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable cv_work_;
  std::condition_variable cv_done_;
  std::mutex submit_mu_;  // one parallel_for at a time
  const std::function<void(size_t, size_t)>* fn_ = nullptr;
  size_t n_ = 0, chunk_ = 1, next_ = 0, num_chunks_ = 0, done_chunks_ = 0;
  unsigned generation_ = 0;
  bool stop_ = false;
  std::exception_ptr error_;
};

// The process-wide pool (size from WIDESERVE_NUM_THREADS or the number of cores).
ThreadPool& global_thread_pool();

// Shorthand for global_thread_pool().parallel_for.
inline void parallel_for(size_t n, size_t min_chunk,
                         const std::function<void(size_t, size_t)>& fn) {
  global_thread_pool().parallel_for(n, min_chunk, fn);
}

}  // namespace wideserve
