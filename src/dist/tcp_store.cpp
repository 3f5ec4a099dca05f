#include "dist/tcp_store.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstring>
#include <map>
#include <mutex>
#include <thread>

#include "common/check.h"

namespace wideserve::dist {
namespace {

// Wire: request = op (1 byte: 'S' set, 'G' get) + u32 key length + key [+ u32 value length +
// value for set]; a get is answered with u32 length + value once the key exists (u32 max = timed
// out on the server), a set with one byte.
constexpr uint32_t kTimedOut = 0xffffffffu;

bool read_all(int fd, void* p, size_t n) {
  char* c = static_cast<char*>(p);
  while (n) {
    ssize_t k = ::recv(fd, c, n, 0);
    if (k <= 0) {
      if (k < 0 && errno == EINTR) continue;
      return false;
    }
    c += k;
    n -= k;
  }
  return true;
}

bool write_all(int fd, const void* p, size_t n) {
  const char* c = static_cast<const char*>(p);
  while (n) {
    ssize_t k = ::send(fd, c, n, MSG_NOSIGNAL);
    if (k <= 0) {
      if (k < 0 && errno == EINTR) continue;
      return false;
    }
    c += k;
    n -= k;
  }
  return true;
}

sockaddr_in resolve(const std::string& host, int port) {
  addrinfo hints{}, *res = nullptr;
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  const std::string h = host == "localhost" || host.empty() ? "127.0.0.1" : host;
  int rc = ::getaddrinfo(h.c_str(), nullptr, &hints, &res);
  WS_CHECK_CODE(kInvalidArgument, rc == 0 && res, "--dist-init-addr: cannot resolve host '{}'",
                host);
  sockaddr_in a = *reinterpret_cast<sockaddr_in*>(res->ai_addr);
  ::freeaddrinfo(res);
  a.sin_port = htons(static_cast<uint16_t>(port));
  return a;
}

}  // namespace

struct TcpStoreServer::Impl {
  int listen_fd = -1;
  int port = 0;
  std::atomic<bool> stop{false};
  std::mutex mu;
  std::condition_variable cv;
  std::map<std::string, std::vector<char>> kv;
  std::thread acceptor;
  std::vector<std::thread> conns;
  std::vector<int> conn_fds;

  void serve(int fd) {
    for (;;) {
      char op;
      uint32_t klen;
      if (!read_all(fd, &op, 1) || !read_all(fd, &klen, 4)) break;
      std::string key(klen, '\0');
      if (!read_all(fd, key.data(), klen)) break;
      if (op == 'S') {
        uint32_t vlen;
        if (!read_all(fd, &vlen, 4)) break;
        std::vector<char> v(vlen);
        if (!read_all(fd, v.data(), vlen)) break;
        {
          std::lock_guard<std::mutex> lk(mu);
          kv[key] = std::move(v);
        }
        cv.notify_all();
        char ok = 1;
        if (!write_all(fd, &ok, 1)) break;
      } else if (op == 'G') {
        uint32_t timeout_ms;
        if (!read_all(fd, &timeout_ms, 4)) break;
        std::vector<char> v;
        bool found;
        {
          std::unique_lock<std::mutex> lk(mu);
          found = cv.wait_for(lk, std::chrono::milliseconds(timeout_ms), [&] {
            return stop.load() || kv.count(key) > 0;
          }) && kv.count(key) > 0;
          if (found) v = kv[key];
        }
        uint32_t len = found ? static_cast<uint32_t>(v.size()) : kTimedOut;
        if (!write_all(fd, &len, 4) || (found && !write_all(fd, v.data(), v.size()))) break;
      } else {
        break;
      }
    }
    ::close(fd);
  }
};

TcpStoreServer::TcpStoreServer(const std::string& host, int port) : impl_(new Impl) {
  sockaddr_in a = resolve(host, port);
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  WS_CHECK_CODE(kUnavailable, fd >= 0, "socket: {}", std::strerror(errno));
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 || ::listen(fd, 256) != 0) {
    const int e = errno;
    ::close(fd);
    WS_THROW(kUnavailable, "--dist-init-addr {}:{}: cannot listen: {}", host, port,
             std::strerror(e));
  }
  socklen_t len = sizeof(a);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  impl_->listen_fd = fd;
  impl_->port = ntohs(a.sin_port);
  impl_->acceptor = std::thread([this] {
    Impl& s = *impl_;
    while (!s.stop) {
      pollfd p{s.listen_fd, POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      int c = ::accept(s.listen_fd, nullptr, nullptr);
      if (c < 0) continue;
      int one = 1;
      ::setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
      std::lock_guard<std::mutex> lk(s.mu);
      s.conn_fds.push_back(c);
      s.conns.emplace_back([&s, c] { s.serve(c); });
    }
  });
}

TcpStoreServer::~TcpStoreServer() {
  impl_->stop = true;
  impl_->cv.notify_all();
  if (impl_->acceptor.joinable()) impl_->acceptor.join();
  {
    std::lock_guard<std::mutex> lk(impl_->mu);
    for (int fd : impl_->conn_fds) ::shutdown(fd, SHUT_RDWR);
  }
  for (auto& t : impl_->conns) t.join();
  ::close(impl_->listen_fd);
}

int TcpStoreServer::port() const {
  return impl_->port;
}

TcpStore::TcpStore(const std::string& host, int port, std::chrono::milliseconds timeout)
    : timeout_(timeout) {
  sockaddr_in a = resolve(host, port);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    WS_CHECK_CODE(kUnavailable, fd_ >= 0, "socket: {}", std::strerror(errno));
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0) break;
    ::close(fd_);
    fd_ = -1;
    WS_CHECK_CODE(kUnavailable, std::chrono::steady_clock::now() < deadline,
                  "--dist-init-addr {}:{}: no rendezvous server within {} ms", host, port,
                  timeout.count());
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  int one = 1;
  ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

TcpStore::~TcpStore() {
  if (fd_ >= 0) ::close(fd_);
}

void TcpStore::set(const std::string& key, const std::vector<char>& data) {
  const uint32_t klen = static_cast<uint32_t>(key.size()),
                 vlen = static_cast<uint32_t>(data.size());
  char ok = 0;
  bool good = write_all(fd_, "S", 1) && write_all(fd_, &klen, 4) &&
              write_all(fd_, key.data(), klen) && write_all(fd_, &vlen, 4) &&
              write_all(fd_, data.data(), vlen) && read_all(fd_, &ok, 1);
  WS_CHECK_CODE(kUnavailable, good && ok == 1, "rendezvous store: set '{}' failed", key);
}

std::vector<char> TcpStore::get(const std::string& key) {
  const uint32_t klen = static_cast<uint32_t>(key.size());
  const uint32_t t = static_cast<uint32_t>(timeout_.count());
  uint32_t len = 0;
  bool good = write_all(fd_, "G", 1) && write_all(fd_, &klen, 4) &&
              write_all(fd_, key.data(), klen) && write_all(fd_, &t, 4) && read_all(fd_, &len, 4);
  WS_CHECK_CODE(kUnavailable, good, "rendezvous store: get '{}' failed", key);
  WS_CHECK_CODE(kUnavailable, len != kTimedOut,
                "rendezvous store: key '{}' did not appear within {} ms (missing ranks?)", key,
                timeout_.count());
  std::vector<char> v(len);
  WS_CHECK_CODE(kUnavailable, read_all(fd_, v.data(), len), "rendezvous store: get '{}' failed",
                key);
  return v;
}

void TcpStore::wait(const std::vector<std::string>& keys) {
  for (const auto& k : keys) get(k);
}

void TcpStore::wait(const std::vector<std::string>& keys, const std::chrono::milliseconds&) {
  wait(keys);
}

}  // namespace wideserve::dist
