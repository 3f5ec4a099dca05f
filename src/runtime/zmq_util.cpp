#include "runtime/zmq_util.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/check.h"

namespace wideserve::runtime {

Wakeup::Wakeup() : fd_(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
  WS_CHECK_CODE(kResourceExhausted, fd_ >= 0, "eventfd: {}", std::strerror(errno));
}

Wakeup::~Wakeup() {
  if (fd_ >= 0) close(fd_);
}

void Wakeup::signal() {
  uint64_t one = 1;
  // Only EAGAIN (counter saturated, i.e. already signalled) can fail here.
  [[maybe_unused]] ssize_t n = write(fd_, &one, sizeof(one));
}

void Wakeup::drain() {
  uint64_t v;
  [[maybe_unused]] ssize_t n = read(fd_, &v, sizeof(v));
}

bool LogLimiter::allow(uint64_t& suppressed) {
  auto now = std::chrono::steady_clock::now();
  if (logged_ && now - last_ < period_) {
    ++suppressed_;
    return false;
  }
  logged_ = true;
  last_ = now;
  suppressed = suppressed_;
  suppressed_ = 0;
  return true;
}

void set_common_socket_options(zmq::socket_t& s) {
  s.set(zmq::sockopt::sndhwm, 0);
  s.set(zmq::sockopt::rcvhwm, 0);
  s.set(zmq::sockopt::linger, 0);
}

std::string endpoint_host(const std::string& endpoint) {
  std::string rest = endpoint;
  auto scheme = rest.find("://");
  if (scheme != std::string::npos) rest = rest.substr(scheme + 3);
  auto colon = rest.rfind(':');
  if (colon == std::string::npos) return rest;
  return rest.substr(0, colon);
}

std::string connectable_endpoint(zmq::socket_t& s, const std::string& advertise_host) {
  std::string last = s.get(zmq::sockopt::last_endpoint);
  auto scheme = last.find("://");
  WS_CHECK(scheme != std::string::npos, "odd ZeroMQ endpoint '{}'", last);
  auto colon = last.rfind(':');
  WS_CHECK(colon != std::string::npos && colon > scheme, "odd ZeroMQ endpoint '{}'", last);
  std::string host = last.substr(scheme + 3, colon - scheme - 3);
  if (host == "0.0.0.0" || host == "*" || host == "[::]" || host == "::") host = advertise_host;
  return last.substr(0, scheme + 3) + host + last.substr(colon);
}

}  // namespace wideserve::runtime
