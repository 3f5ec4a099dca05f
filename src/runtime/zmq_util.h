// Small helpers shared by the runtime's ZeroMQ threads (internal to src/runtime).
#pragma once

#include <zmq.hpp>

#include <chrono>
#include <cstdint>
#include <string>

namespace wideserve::runtime {

// An eventfd that other threads signal to wake a thread blocked in zmq_poll.
class Wakeup {
 public:
  Wakeup();
  ~Wakeup();
  Wakeup(const Wakeup&) = delete;
  Wakeup& operator=(const Wakeup&) = delete;

  int fd() const { return fd_; }
  // Thread-safe; cheap when already signalled.
  void signal();
  // Clears the signal (the polling thread, before draining its queue).
  void drain();

 private:
  int fd_ = -1;
};

// Lets a log line through at most once per `period`; counts what it suppressed.
class LogLimiter {
 public:
  explicit LogLimiter(std::chrono::milliseconds period = std::chrono::seconds(5))
      : period_(period) {}
  // True when this event may be logged; `suppressed` then holds how many were dropped before.
  bool allow(uint64_t& suppressed);

 private:
  std::chrono::milliseconds period_;
  std::chrono::steady_clock::time_point last_{};
  bool logged_ = false;
  uint64_t suppressed_ = 0;
};

// Options every runtime socket gets: unbounded queues (never block a caller), no linger.
void set_common_socket_options(zmq::socket_t& s);

// The socket's bound address made connectable: a wildcard host (0.0.0.0, *, [::]) becomes
// `advertise_host`; the port is the one actually bound.
std::string connectable_endpoint(zmq::socket_t& s, const std::string& advertise_host);

// Host part of a "tcp://host:port" endpoint ("" when it has none).
std::string endpoint_host(const std::string& endpoint);

}  // namespace wideserve::runtime
