// A minimal synchronous HTTP/1.1 client on plain sockets, enough for etcd's v3 JSON gateway:
// one POST per connection (Connection: close), Content-Length or chunked response bodies, and
// bodies read piece by piece so that a watch can stream. Every wait has a deadline and can be
// cut short by an eventfd (a stopping thread).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace wideserve::runtime {

// One HTTP exchange on its own TCP connection.
class HttpConnection {
 public:
  using Clock = std::chrono::steady_clock;

  // Connects to host:port before `deadline`; `wake_fd` (an eventfd, or -1) readable aborts any
  // wait of this connection. Throws Error(kUnavailable) on failure or timeout.
  HttpConnection(const std::string& host, uint16_t port, Clock::time_point deadline,
                 int wake_fd = -1);
  ~HttpConnection();
  HttpConnection(const HttpConnection&) = delete;
  HttpConnection& operator=(const HttpConnection&) = delete;

  // Sends `POST path` with a JSON body and reads the response head. Returns the status code.
  int post(const std::string& path, const std::string& body, Clock::time_point deadline);
  // Sends `GET path` and reads the response head (the PD bootstrap server's /route, /health).
  int get(const std::string& path, Clock::time_point deadline);

  // Appends the next piece of the (de-chunked) body to `out`. Returns false once the body has
  // ended (nothing appended). Throws Error(kUnavailable) on a broken connection, a timeout or
  // a wake-up, Error(kDataLoss) on malformed framing.
  bool read_some(std::string& out, Clock::time_point deadline);

  // The whole remaining body.
  std::string read_body(Clock::time_point deadline);

  // "host:port", for messages.
  const std::string& peer() const { return peer_; }

 private:
  int request(const char* method, const std::string& path, const std::string& body,
              Clock::time_point deadline);
  void wait(short events, Clock::time_point deadline);
  size_t fill(Clock::time_point deadline);  // reads more into buf_; 0 at EOF
  std::string read_line(Clock::time_point deadline);

  int fd_ = -1;
  int wake_fd_ = -1;
  std::string peer_;
  std::string buf_;         // received, not yet consumed
  bool chunked_ = false;    // Transfer-Encoding: chunked
  int64_t remaining_ = -1;  // Content-Length left, or bytes left in the current chunk; -1 = none
  bool done_ = false;       // body fully read
};

}  // namespace wideserve::runtime
