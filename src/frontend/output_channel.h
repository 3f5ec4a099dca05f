// Hands worker outputs (arriving on the request-plane thread) to the HTTP coroutine that serves
// the request (on its connection's strand), without blocking either side.
#pragma once

#include <utility>  // Boost 1.74 coroutine headers use std::exchange without it

#include <boost/asio.hpp>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <vector>

#include "engine/request.h"

namespace wideserve::frontend {

class OutputChannel : public std::enable_shared_from_this<OutputChannel> {
 public:
  explicit OutputChannel(boost::asio::any_io_executor ex) : timer_(ex) {}

  // Any thread: queue an output and wake the consumer.
  void push(engine::RequestOutput out) {
    {
      std::lock_guard<std::mutex> lk(mu_);
      queue_.push_back(std::move(out));
    }
    wake();
  }
  // Any thread: wake the consumer without data (client gone, shutdown).
  void wake() {
    if (wake_posted_.exchange(true)) return;
    boost::asio::post(timer_.get_executor(),
                      [self = shared_from_this()] { self->timer_.cancel(); });
  }
  // Consumer: everything queued so far.
  std::vector<engine::RequestOutput> take() {
    wake_posted_.store(false);
    std::lock_guard<std::mutex> lk(mu_);
    std::vector<engine::RequestOutput> out;
    out.swap(queue_);
    return out;
  }
  // Consumer: waits for a push or wake after the last take() (returns at once if one came), or
  // until the deadline.
  boost::asio::awaitable<void> wait(std::chrono::steady_clock::time_point deadline) {
    {
      std::lock_guard<std::mutex> lk(mu_);
      if (!queue_.empty()) co_return;
    }
    if (wake_posted_.load()) co_return;
    timer_.expires_at(deadline);
    boost::system::error_code ec;
    co_await timer_.async_wait(boost::asio::redirect_error(boost::asio::use_awaitable, ec));
  }

 private:
  boost::asio::steady_timer timer_;
  std::mutex mu_;
  std::vector<engine::RequestOutput> queue_;
  std::atomic<bool> wake_posted_{false};
};

}  // namespace wideserve::frontend
