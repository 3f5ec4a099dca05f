#include "common/thread_pool.h"

#include <algorithm>
#include <cstdlib>
#include <string>

namespace wideserve {
namespace {
thread_local bool t_in_pool_task = false;
}

ThreadPool::ThreadPool(int num_threads) {
  for (int i = 1; i < std::max(1, num_threads); ++i)
    workers_.emplace_back([this] { worker_loop(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
  }
  cv_work_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::run_chunks() {
  for (;;) {
    size_t c;
    {
      std::lock_guard<std::mutex> lk(mu_);
      if (next_ >= num_chunks_) return;
      c = next_++;
    }
    size_t b = c * chunk_, e = std::min(n_, b + chunk_);
    try {
      t_in_pool_task = true;
      (*fn_)(b, e);
      t_in_pool_task = false;
    } catch (...) {
      t_in_pool_task = false;
      std::lock_guard<std::mutex> lk(mu_);
      if (!error_) error_ = std::current_exception();
    }
    std::lock_guard<std::mutex> lk(mu_);
    if (++done_chunks_ == num_chunks_) cv_done_.notify_all();
  }
}

void ThreadPool::worker_loop() {
  unsigned seen = 0;
  for (;;) {
    {
      std::unique_lock<std::mutex> lk(mu_);
      cv_work_.wait(lk, [&] { return stop_ || (generation_ != seen && next_ < num_chunks_); });
      if (stop_) return;
      seen = generation_;
    }
    run_chunks();
  }
}

void ThreadPool::parallel_for(size_t n, size_t min_chunk,
                              const std::function<void(size_t, size_t)>& fn) {
  if (n == 0) return;
  min_chunk = std::max<size_t>(1, min_chunk);
  // Small ranges, nested calls and single-thread pools run inline: no handoff cost.
  if (workers_.empty() || t_in_pool_task || n <= min_chunk) {
    fn(0, n);
    return;
  }
  std::lock_guard<std::mutex> submit(submit_mu_);
  size_t threads = workers_.size() + 1;
  size_t chunk = std::max(min_chunk, (n + threads * 4 - 1) / (threads * 4));
  {
    std::lock_guard<std::mutex> lk(mu_);
    fn_ = &fn;
    n_ = n;
    chunk_ = chunk;
    next_ = 0;
    num_chunks_ = (n + chunk - 1) / chunk;
    done_chunks_ = 0;
    error_ = nullptr;
    ++generation_;
  }
  cv_work_.notify_all();
  run_chunks();
  std::exception_ptr err;
  {
    std::unique_lock<std::mutex> lk(mu_);
    cv_done_.wait(lk, [&] { return done_chunks_ == num_chunks_; });
    fn_ = nullptr;
    err = error_;
  }
  if (err) std::rethrow_exception(err);
}

ThreadPool& global_thread_pool() {
  static ThreadPool pool([] {
    if (const char* env = std::getenv("WIDESERVE_NUM_THREADS")) {
      int v = std::atoi(env);
      if (v > 0) return v;
    }
    return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  }());
  return pool;
}

}  // namespace wideserve
