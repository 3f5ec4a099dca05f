#include "runtime/etcd_http.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>

#include "common/check.h"

namespace wideserve::runtime {
namespace {

constexpr size_t kMaxLine = 64 * 1024;

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

std::string trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return "";
  size_t e = s.find_last_not_of(" \t");
  return s.substr(b, e - b + 1);
}

int connect_one(const addrinfo* ai, HttpConnection::Clock::time_point deadline, int wake_fd,
                std::string& err) {
  int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
  if (fd < 0) {
    err = std::strerror(errno);
    return -1;
  }
  if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0 && errno != EINPROGRESS) {
    err = std::strerror(errno);
    close(fd);
    return -1;
  }
  pollfd p[2] = {{fd, POLLOUT, 0}, {wake_fd, POLLIN, 0}};
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline -
                                                                      HttpConnection::Clock::now());
    if (left.count() <= 0) {
      err = "connect timed out";
      close(fd);
      return -1;
    }
    int n = poll(p, wake_fd >= 0 ? 2 : 1, static_cast<int>(left.count()));
    if (n < 0 && errno == EINTR) continue;
    if (n > 0 && wake_fd >= 0 && (p[1].revents & POLLIN)) {
      err = "interrupted";
      close(fd);
      return -1;
    }
    if (n > 0) break;
  }
  int so_error = 0;
  socklen_t len = sizeof(so_error);
  getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_error, &len);
  if (so_error != 0) {
    err = std::strerror(so_error);
    close(fd);
    return -1;
  }
  return fd;
}

}  // namespace

HttpConnection::HttpConnection(const std::string& host, uint16_t port, Clock::time_point deadline,
                               int wake_fd)
    : wake_fd_(wake_fd) {
  bool v6 = host.find(':') != std::string::npos;
  peer_ = v6 ? "[" + host + "]:" + std::to_string(port) : host + ":" + std::to_string(port);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* res = nullptr;
  int rc = getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res);
  WS_CHECK_CODE(kUnavailable, rc == 0 && res != nullptr, "etcd {}: cannot resolve '{}': {}", peer_,
                host, gai_strerror(rc));
  std::string err;
  for (addrinfo* ai = res; ai != nullptr && fd_ < 0; ai = ai->ai_next)
    fd_ = connect_one(ai, deadline, wake_fd_, err);
  freeaddrinfo(res);
  WS_CHECK_CODE(kUnavailable, fd_ >= 0, "etcd {}: cannot connect: {}", peer_, err);
  int one = 1;
  setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  // A watch may be silent for hours: TCP keepalives notice a peer host that vanished.
  int idle = 5, intvl = 2, cnt = 3;
  setsockopt(fd_, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
  setsockopt(fd_, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
  setsockopt(fd_, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
  setsockopt(fd_, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
}

HttpConnection::~HttpConnection() {
  if (fd_ >= 0) close(fd_);
}

void HttpConnection::wait(short events, Clock::time_point deadline) {
  pollfd p[2] = {{fd_, events, 0}, {wake_fd_, POLLIN, 0}};
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    WS_CHECK_CODE(kUnavailable, left.count() > 0, "etcd {}: timed out", peer_);
    // Capped so that a far deadline (a watch) does not overflow poll's int.
    int n =
        poll(p, wake_fd_ >= 0 ? 2 : 1, static_cast<int>(std::min<int64_t>(left.count(), 60000)));
    if (n < 0) {
      WS_CHECK_CODE(kUnavailable, errno == EINTR, "etcd {}: poll: {}", peer_, std::strerror(errno));
      continue;
    }
    if (n == 0) continue;  // re-checks the deadline
    WS_CHECK_CODE(kUnavailable, !(wake_fd_ >= 0 && (p[1].revents & POLLIN)), "etcd {}: interrupted",
                  peer_);
    return;  // readable, writable, or an error that the next call reports
  }
}

size_t HttpConnection::fill(Clock::time_point deadline) {
  char tmp[16384];
  for (;;) {
    ssize_t n = recv(fd_, tmp, sizeof(tmp), 0);
    if (n > 0) {
      buf_.append(tmp, static_cast<size_t>(n));
      return static_cast<size_t>(n);
    }
    if (n == 0) return 0;
    if (errno == EINTR) continue;
    WS_CHECK_CODE(kUnavailable, errno == EAGAIN || errno == EWOULDBLOCK, "etcd {}: recv: {}", peer_,
                  std::strerror(errno));
    wait(POLLIN, deadline);
  }
}

std::string HttpConnection::read_line(Clock::time_point deadline) {
  size_t pos;
  while ((pos = buf_.find("\r\n")) == std::string::npos) {
    WS_CHECK_CODE(kDataLoss, buf_.size() <= kMaxLine, "etcd {}: HTTP line too long", peer_);
    WS_CHECK_CODE(kUnavailable, fill(deadline) > 0, "etcd {}: connection closed", peer_);
  }
  std::string line = buf_.substr(0, pos);
  buf_.erase(0, pos + 2);
  return line;
}

int HttpConnection::get(const std::string& path, Clock::time_point deadline) {
  return request("GET", path, "", deadline);
}

int HttpConnection::post(const std::string& path, const std::string& body,
                         Clock::time_point deadline) {
  return request("POST", path, body, deadline);
}

int HttpConnection::request(const char* method, const std::string& path, const std::string& body,
                            Clock::time_point deadline) {
  std::string req =
      std::string(method) + " " + path + " HTTP/1.1\r\nHost: " + peer_ +
      "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
      "\r\nConnection: close\r\n\r\n" + body;
  size_t off = 0;
  while (off < req.size()) {
    ssize_t n = send(fd_, req.data() + off, req.size() - off, MSG_NOSIGNAL);
    if (n > 0) {
      off += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    WS_CHECK_CODE(kUnavailable, n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK),
                  "etcd {}: send: {}", peer_, std::strerror(errno));
    wait(POLLOUT, deadline);
  }
  std::string status = read_line(deadline);
  // "HTTP/1.1 200 OK"
  auto sp = status.find(' ');
  WS_CHECK_CODE(kDataLoss, status.rfind("HTTP/1.", 0) == 0 && sp != std::string::npos,
                "etcd {}: bad HTTP status line '{}'", peer_, status);
  int code = std::atoi(status.c_str() + sp + 1);
  WS_CHECK_CODE(kDataLoss, code >= 100 && code <= 599, "etcd {}: bad HTTP status line '{}'", peer_,
                status);
  remaining_ = -1;
  chunked_ = false;
  for (;;) {
    std::string line = read_line(deadline);
    if (line.empty()) break;
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string name = lower(trim(line.substr(0, colon)));
    std::string value = trim(line.substr(colon + 1));
    if (name == "content-length") {
      remaining_ = std::strtoll(value.c_str(), nullptr, 10);
      WS_CHECK_CODE(kDataLoss, remaining_ >= 0, "etcd {}: bad Content-Length", peer_);
    } else if (name == "transfer-encoding" && lower(value).find("chunked") != std::string::npos) {
      chunked_ = true;
    }
  }
  if (chunked_) remaining_ = -1;
  done_ = !chunked_ && remaining_ == 0;
  return code;
}

bool HttpConnection::read_some(std::string& out, Clock::time_point deadline) {
  if (done_) return false;
  if (chunked_) {
    if (remaining_ == 0) {  // the CRLF after a chunk's data
      WS_CHECK_CODE(kDataLoss, read_line(deadline).empty(), "etcd {}: bad chunk end", peer_);
      remaining_ = -1;
    }
    if (remaining_ < 0) {
      std::string line = read_line(deadline);
      char* end = nullptr;
      long long size = std::strtoll(line.c_str(), &end, 16);
      WS_CHECK_CODE(kDataLoss, end != line.c_str() && size >= 0, "etcd {}: bad chunk size '{}'",
                    peer_, line);
      if (size == 0) {
        while (!read_line(deadline).empty()) {
        }  // trailers
        done_ = true;
        return false;
      }
      remaining_ = size;
    }
    if (buf_.empty())
      WS_CHECK_CODE(kUnavailable, fill(deadline) > 0, "etcd {}: connection closed mid-body", peer_);
    size_t n = std::min<size_t>(buf_.size(), static_cast<size_t>(remaining_));
    out.append(buf_, 0, n);
    buf_.erase(0, n);
    remaining_ -= static_cast<int64_t>(n);
    return true;
  }
  if (buf_.empty() && fill(deadline) == 0) {
    WS_CHECK_CODE(kUnavailable, remaining_ < 0, "etcd {}: connection closed mid-body", peer_);
    done_ = true;
    return false;
  }
  size_t n = remaining_ < 0 ? buf_.size() : std::min<size_t>(buf_.size(), remaining_);
  out.append(buf_, 0, n);
  buf_.erase(0, n);
  if (remaining_ >= 0) {
    remaining_ -= static_cast<int64_t>(n);
    if (remaining_ == 0) done_ = true;
  }
  return true;
}

std::string HttpConnection::read_body(Clock::time_point deadline) {
  std::string out;
  while (read_some(out, deadline)) {
    WS_CHECK_CODE(kDataLoss, out.size() <= (64u << 20), "etcd {}: response too large", peer_);
  }
  return out;
}

}  // namespace wideserve::runtime
