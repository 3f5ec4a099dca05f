#include "transfer/tcp_agent.h"

#include "common/check.h"
#include "common/logging.h"
#include "transfer/agent_core.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <deque>
#include <list>
#include <map>
#include <set>

namespace wideserve::transfer {
namespace {

using Clock = std::chrono::steady_clock;

// Every frame starts with this header (host byte order; the magic catches a mismatch).
struct WireHeader {
  uint32_t magic;
  uint32_t type;
  uint64_t a, b, c;
};
static_assert(sizeof(WireHeader) == 32);
constexpr uint32_t kMagic = 0x4b565357;  // "WSVK"
enum FrameType : uint32_t {
  kHello = 1,   // c = name length; then the writer's agent name
  kData = 2,    // a = transfer id, b = remote address, c = length; then the bytes
  kCommit = 3,  // a = transfer id, c = notification length; then the notification
  kAbort = 4,   // a = transfer id: the writer gave up; forget it
  kAck = 5,     // target -> writer: a = transfer id, b = 1 ok / 0 rejected, c = error length
};
constexpr uint64_t kMaxSmallBody = kMaxNotificationBytes + 4096;
constexpr size_t kRecvSliceBytes = 8 << 20;  // fairness between connections per loop turn
constexpr size_t kStageBytes = 256 << 10;    // read-ahead buffer; larger payloads skip it
constexpr int kMaxBatchOps = 64;             // data frames gathered into one sendmsg

std::string errno_text(int e) {
  return std::strerror(e);
}

std::string frame(uint32_t type, uint64_t a, uint64_t b, std::string_view body) {
  WireHeader h{kMagic, type, a, b, body.size()};
  std::string out(reinterpret_cast<const char*>(&h), sizeof(h));
  out.append(body);
  return out;
}

void set_nonblocking(int fd) {
  int fl = ::fcntl(fd, F_GETFL, 0);
  ::fcntl(fd, F_SETFL, fl | O_NONBLOCK);
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

// Bytes still to write: a small frame buffer, then (for data) the payload.
struct OutBuffer {
  std::string bytes;
  size_t off = 0;
  bool empty() const { return off >= bytes.size(); }
  void add(std::string s) {
    if (empty()) {
      bytes = std::move(s);
      off = 0;
    } else {
      bytes += s;
    }
  }
};

// Incremental reader of one frame header + small body.
struct InFrame {
  WireHeader h{};
  size_t got = 0;  // header bytes read
  std::string body;
  uint64_t remaining = 0;  // body/payload bytes still to read
  char* dest = nullptr;    // payload destination (data frame), or null to discard/collect
  bool in_body = false;
};

struct TcpTransfer {
  uint64_t id = 0;
  std::vector<PlannedOp> ops;
  std::string notify;
  size_t op = 0;    // op being sent
  size_t sent = 0;  // bytes of (header + payload) of that op already sent
  bool cancelled = false;
  bool started = false;  // some frame of it went out
};

struct TcpPeer {
  std::string name;
  uint64_t gen = 0;
  std::string host;
  int port = 0;
  std::vector<RemoteRegion> regions;
  int fd = -1;
  bool connecting = true;
  bool failed = false;
  std::string error;
  OutBuffer out;
  std::deque<std::unique_ptr<TcpTransfer>> queue;  // front is being sent
  std::map<uint64_t, std::unique_ptr<TcpTransfer>> awaiting_ack;
  InFrame in;
  Clock::time_point last_progress;
  bool busy() const { return !queue.empty() || !awaiting_ack.empty() || !out.empty(); }
};

struct InConn {
  int fd = -1;
  std::string peer;  // from the hello frame
  InFrame in;
  OutBuffer out;
  std::map<uint64_t, std::string> rejected;  // transfer id -> why its data was refused
  std::vector<char> stage;                   // bytes read ahead of the frame parser
  size_t pos = 0, end = 0;
  bool broken = false;  // malformed input: close
};

struct LocalRegion {
  char* base;
  size_t length;
  MemoryKind kind;
};

struct PeerMeta {
  uint64_t gen = 0;
  std::vector<RemoteRegion> regions;
};

class TcpAgent final : public TransferAgent {
 public:
  explicit TcpAgent(const AgentOptions& opts);
  ~TcpAgent() override;

  const std::string& name() const override { return opts_.name; }
  const char* backend() const override { return "tcp"; }
  RegionId register_memory(void* base, size_t bytes, MemoryKind kind) override;
  void deregister_memory(RegionId region) override;
  std::string metadata() const override;
  void add_remote(const std::string& peer_name, const std::string& metadata) override;
  void remove_remote(const std::string& peer_name) override;
  TransferHandle write(const std::string& peer, std::span<const WriteOp> ops,
                       std::string notify) override;
  TransferStatus poll(TransferHandle h) override { return book_.poll(h.id); }
  TransferStatus wait(TransferHandle h, std::chrono::milliseconds t) override {
    return book_.wait(h.id, t);
  }
  void cancel(TransferHandle h) override;
  void release(TransferHandle h) override;
  std::vector<Notification> take_notifications() override { return inbox_.take(); }
  std::vector<Notification> wait_notifications(std::chrono::milliseconds t) override {
    return inbox_.wait(t);
  }

 private:
  void run();
  void accept_all();
  void connect_peer(TcpPeer* p);
  void drive_peer_out(TcpPeer* p);
  void drive_peer_in(TcpPeer* p);
  bool drive_conn_in(InConn* c);  // false: connection closed
  size_t consume(InConn* c, const char* data, size_t avail);
  void start_frame(InConn* c);
  void drive_conn_out(InConn* c);
  void handle_frame(InConn* c);
  void fail_peer(TcpPeer* p, const std::string& reason);
  void stop_transfer(uint64_t id);
  std::string check_bounds(uint64_t addr, uint64_t len);

  AgentOptions opts_;
  int listen_fd_ = -1;
  std::string host_;
  int port_ = 0;

  TransferBook book_;
  NotificationInbox inbox_;
  CommandQueue cmdq_;
  std::thread thread_;
  std::atomic<bool> stop_{false};

  mutable std::mutex regions_mu_;  // API threads register, the progress thread bounds-checks
  std::map<RegionId, LocalRegion> regions_;
  RegionId next_region_ = 1;

  std::mutex meta_mu_;
  std::map<std::string, PeerMeta> peer_meta_;
  uint64_t next_gen_ = 1;

  // Progress-thread state.
  std::map<std::string, std::unique_ptr<TcpPeer>> peers_;
  std::list<std::unique_ptr<InConn>> conns_;
};

std::string primary_ipv4() {
  char hostname[256] = {};
  if (::gethostname(hostname, sizeof(hostname) - 1) == 0) {
    addrinfo hints{};
    hints.ai_family = AF_INET;
    addrinfo* res = nullptr;
    if (::getaddrinfo(hostname, nullptr, &hints, &res) == 0 && res) {
      char buf[INET_ADDRSTRLEN];
      ::inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(res->ai_addr)->sin_addr, buf,
                  sizeof(buf));
      ::freeaddrinfo(res);
      return buf;
    }
  }
  return "127.0.0.1";
}

TcpAgent::TcpAgent(const AgentOptions& opts) : opts_(opts) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* res = nullptr;
  std::string port = std::to_string(opts_.listen_port);
  int rc = ::getaddrinfo(opts_.listen_host.c_str(), port.c_str(), &hints, &res);
  WS_CHECK_ARG(rc == 0 && res, "transfer agent: bad listen host '{}': {}", opts_.listen_host,
               ::gai_strerror(rc));
  listen_fd_ = ::socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  rc = ::bind(listen_fd_, res->ai_addr, res->ai_addrlen);
  int err = errno;
  ::freeaddrinfo(res);
  if (rc != 0 || ::listen(listen_fd_, 64) != 0) {
    ::close(listen_fd_);
    WS_THROW(kUnavailable, "transfer agent: cannot listen on {}:{}: {}", opts_.listen_host,
             opts_.listen_port, errno_text(err));
  }
  sockaddr_storage ss{};
  socklen_t sl = sizeof(ss);
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&ss), &sl);
  port_ = ntohs(ss.ss_family == AF_INET ? reinterpret_cast<sockaddr_in*>(&ss)->sin_port
                                        : reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
  set_nonblocking(listen_fd_);
  bool wildcard =
      opts_.listen_host == "0.0.0.0" || opts_.listen_host == "::" || opts_.listen_host.empty();
  host_ = !opts_.advertise_host.empty() ? opts_.advertise_host
          : wildcard                    ? primary_ipv4()
                                        : opts_.listen_host;
  thread_ = std::thread([this] { run(); });
}

TcpAgent::~TcpAgent() {
  stop_ = true;
  cmdq_.wake();
  thread_.join();
  cmdq_.set_owner(std::this_thread::get_id());
  cmdq_.drain();
  for (auto& [name, p] : peers_)
    fail_peer(p.get(), "transfer agent '" + opts_.name + "' shut down");
  for (auto& c : conns_) ::close(c->fd);
  ::close(listen_fd_);
}

void TcpAgent::run() {
  cmdq_.set_owner(std::this_thread::get_id());
  std::vector<pollfd> fds;
  std::vector<TcpPeer*> fd_peers;
  std::vector<InConn*> fd_conns;
  while (!stop_) {
    cmdq_.drain();
    fds.clear();
    fd_peers.clear();
    fd_conns.clear();
    fds.push_back({cmdq_.wake_fd(), POLLIN, 0});
    fds.push_back({listen_fd_, POLLIN, 0});
    bool active = false;
    for (auto& [name, p] : peers_) {
      if (p->fd < 0) continue;
      bool want_out = p->connecting || !p->out.empty() || !p->queue.empty();
      fds.push_back({p->fd, short(POLLIN | (want_out ? POLLOUT : 0)), 0});
      fd_peers.push_back(p.get());
      active |= p->busy();
    }
    for (auto& c : conns_) {
      fds.push_back({c->fd, short(POLLIN | (c->out.empty() ? 0 : POLLOUT)), 0});
      fd_conns.push_back(c.get());
    }
    int n = ::poll(fds.data(), fds.size(), active ? 20 : 100);
    if (n < 0 && errno != EINTR) WS_LOG_ERROR("transfer: poll: {}", errno_text(errno));
    if (n > 0) {
      if (fds[1].revents & POLLIN) accept_all();
      for (size_t i = 0; i < fd_peers.size(); ++i) {
        TcpPeer* p = fd_peers[i];
        short ev = fds[2 + i].revents;
        if (p->failed || !ev) continue;
        if (p->connecting && (ev & (POLLOUT | POLLERR | POLLHUP))) {
          int err = 0;
          socklen_t len = sizeof(err);
          ::getsockopt(p->fd, SOL_SOCKET, SO_ERROR, &err, &len);
          if (err != 0) {
            fail_peer(p, fmt::format("cannot connect to peer '{}' at {}:{}: {}", p->name, p->host,
                                     p->port, errno_text(err)));
            continue;
          }
          p->connecting = false;
        }
        if (ev & (POLLIN | POLLERR | POLLHUP)) drive_peer_in(p);
        if (!p->failed && !p->connecting && (ev & POLLOUT)) drive_peer_out(p);
      }
      for (size_t i = 0; i < fd_conns.size(); ++i) {
        InConn* c = fd_conns[i];
        short ev = fds[2 + fd_peers.size() + i].revents;
        bool open = true;
        if (ev & (POLLIN | POLLERR | POLLHUP)) open = drive_conn_in(c);
        if (open && (ev & POLLOUT)) drive_conn_out(c);
        if (!open) {
          ::close(c->fd);
          c->fd = -1;
        }
      }
      conns_.remove_if([](const auto& c) { return c->fd < 0; });
    }
    // Peers that got work since the poll set was built start sending without waiting a turn.
    for (auto& [name, p] : peers_) {
      if (!p->failed && !p->connecting && p->fd >= 0 && (!p->out.empty() || !p->queue.empty())) {
        drive_peer_out(p.get());
      }
    }
    auto now = Clock::now();
    for (auto& [name, p] : peers_) {
      if (!p->failed && p->busy() && now - p->last_progress > opts_.timeout) {
        fail_peer(p.get(), fmt::format("no progress writing to peer '{}' at {}:{} for {} ms (peer "
                                       "dead or unreachable?)",
                                       name, p->host, p->port, opts_.timeout.count()));
      }
    }
  }
}

void TcpAgent::accept_all() {
  while (true) {
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) return;
    set_nonblocking(fd);
    auto c = std::make_unique<InConn>();
    c->fd = fd;
    conns_.push_back(std::move(c));
  }
}

void TcpAgent::connect_peer(TcpPeer* p) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  std::string port = std::to_string(p->port);
  int rc = ::getaddrinfo(p->host.c_str(), port.c_str(), &hints, &res);
  if (rc != 0 || !res) {
    fail_peer(p, fmt::format("cannot resolve peer '{}' host '{}': {}", p->name, p->host,
                             ::gai_strerror(rc)));
    return;
  }
  p->fd = ::socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  set_nonblocking(p->fd);
  rc = ::connect(p->fd, res->ai_addr, res->ai_addrlen);
  int err = errno;
  ::freeaddrinfo(res);
  if (rc != 0 && err != EINPROGRESS) {
    fail_peer(p, fmt::format("cannot connect to peer '{}' at {}:{}: {}", p->name, p->host, p->port,
                             errno_text(err)));
    return;
  }
  p->connecting = rc != 0;
  p->out.add(frame(kHello, 0, 0, opts_.name));
  p->last_progress = Clock::now();
}

void TcpAgent::fail_peer(TcpPeer* p, const std::string& reason) {
  if (p->failed) return;
  p->failed = true;
  p->error = reason;
  size_t n = 0;
  for (auto& t : p->queue) n += book_.finish(t->id, TransferState::kFailed, reason);
  for (auto& [id, t] : p->awaiting_ack) n += book_.finish(id, TransferState::kFailed, reason);
  if (n) WS_LOG_WARN("transfer: {} ({} transfers failed)", reason, n);
  p->queue.clear();
  p->awaiting_ack.clear();
  if (p->fd >= 0) ::close(p->fd);
  p->fd = -1;
}

void TcpAgent::drive_peer_out(TcpPeer* p) {
  while (!p->failed) {
    ssize_t w;
    if (!p->out.empty()) {
      w = ::send(p->fd, p->out.bytes.data() + p->out.off, p->out.bytes.size() - p->out.off,
                 MSG_NOSIGNAL);
      if (w > 0) {
        p->out.off += size_t(w);
        p->last_progress = Clock::now();
        continue;
      }
    } else if (!p->queue.empty()) {
      TcpTransfer* t = p->queue.front().get();
      if (t->sent == 0 && (t->cancelled || t->op == t->ops.size())) {
        // Op boundary: either abort (cancelled) or commit (all data sent).
        std::unique_ptr<TcpTransfer> owned = std::move(p->queue.front());
        p->queue.pop_front();
        if (t->cancelled) {
          if (t->started) p->out.add(frame(kAbort, t->id, 0, {}));
        } else {
          p->out.add(frame(kCommit, t->id, 0, t->notify));
          p->awaiting_ack.emplace(t->id, std::move(owned));
        }
        continue;
      }
      // Gather the current op's remainder and the following whole ops into one sendmsg.
      WireHeader hdrs[kMaxBatchOps];
      iovec iov[2 * kMaxBatchOps];
      int niov = 0;
      size_t batch_bytes = 0;
      for (size_t i = t->op; i < t->ops.size() && i - t->op < kMaxBatchOps; ++i) {
        const WriteOp& op = t->ops[i].op;
        WireHeader& h = hdrs[i - t->op];
        h = WireHeader{kMagic, kData, t->id, op.remote, op.length};
        size_t skip = i == t->op ? t->sent : 0;
        if (skip < sizeof(h)) {
          iov[niov++] = {reinterpret_cast<char*>(&h) + skip, sizeof(h) - skip};
          skip = 0;
        } else {
          skip -= sizeof(h);
        }
        iov[niov++] = {const_cast<char*>(static_cast<const char*>(op.local)) + skip,
                       op.length - skip};
        batch_bytes += op.length;
        if (batch_bytes >= (4u << 20) || t->cancelled) break;
      }
      msghdr msg{};
      msg.msg_iov = iov;
      msg.msg_iovlen = niov;
      w = ::sendmsg(p->fd, &msg, MSG_NOSIGNAL);
      if (w > 0) {
        t->started = true;
        p->last_progress = Clock::now();
        size_t left = size_t(w);
        while (left > 0) {
          size_t op_total = sizeof(WireHeader) + t->ops[t->op].op.length;
          size_t n = std::min(left, op_total - t->sent);
          t->sent += n;
          left -= n;
          if (t->sent == op_total) {
            t->sent = 0;
            ++t->op;
          }
        }
        continue;
      }
    } else {
      return;
    }
    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (w < 0 && errno == EINTR) continue;
    fail_peer(p, fmt::format("connection to peer '{}' at {}:{} lost while sending: {}", p->name,
                             p->host, p->port, w == 0 ? "closed" : errno_text(errno)));
  }
}

// The writer side only receives acks.
void TcpAgent::drive_peer_in(TcpPeer* p) {
  InFrame& f = p->in;
  while (!p->failed) {
    ssize_t r;
    if (!f.in_body) {
      r = ::recv(p->fd, reinterpret_cast<char*>(&f.h) + f.got, sizeof(f.h) - f.got, 0);
      if (r > 0) {
        f.got += size_t(r);
        p->last_progress = Clock::now();
        if (f.got < sizeof(f.h)) continue;
        if (f.h.magic != kMagic || f.h.type != kAck || f.h.c > kMaxSmallBody) {
          fail_peer(p, fmt::format("peer '{}' sent a malformed frame", p->name));
          return;
        }
        f.in_body = true;
        f.remaining = f.h.c;
        f.body.clear();
      }
    } else if (f.remaining > 0) {
      size_t old = f.body.size();
      f.body.resize(old + f.remaining);
      r = ::recv(p->fd, f.body.data() + old, f.remaining, 0);
      f.body.resize(old + std::max<ssize_t>(r, 0));
      if (r > 0) f.remaining -= uint64_t(r);
    } else {
      r = 1;
    }
    if (f.in_body && f.remaining == 0) {
      auto it = p->awaiting_ack.find(f.h.a);
      if (it != p->awaiting_ack.end()) {
        if (f.h.b == 1) {
          book_.finish(f.h.a, TransferState::kDone);
        } else {
          book_.finish(f.h.a, TransferState::kFailed,
                       fmt::format("peer '{}' rejected the write: {}", p->name, f.body));
        }
        p->awaiting_ack.erase(it);
      }
      f = InFrame{};
      continue;
    }
    if (r > 0) continue;
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (r < 0 && errno == EINTR) continue;
    fail_peer(p, fmt::format("connection to peer '{}' at {}:{} lost: {}", p->name, p->host, p->port,
                             r == 0 ? "closed by peer" : errno_text(errno)));
  }
}

std::string TcpAgent::check_bounds(uint64_t addr, uint64_t len) {
  std::lock_guard lk(regions_mu_);
  for (const auto& [id, r] : regions_) {
    uint64_t base = reinterpret_cast<uint64_t>(r.base);
    if (addr >= base && len <= r.length && addr - base <= r.length - len) return {};
  }
  return fmt::format("[0x{:x}, +{}) is outside every registered region of agent '{}'", addr, len,
                     opts_.name);
}

// Consumes staged bytes into the current frame; returns how many were used.
size_t TcpAgent::consume(InConn* c, const char* data, size_t avail) {
  InFrame& f = c->in;
  size_t used = 0;
  if (!f.in_body) {
    size_t n = std::min(sizeof(f.h) - f.got, avail);
    std::memcpy(reinterpret_cast<char*>(&f.h) + f.got, data, n);
    f.got += n;
    used = n;
    if (f.got == sizeof(f.h)) start_frame(c);
  } else {
    size_t n = std::min<uint64_t>(f.remaining, avail);
    if (f.h.type == kData) {
      if (f.dest) std::memcpy(f.dest + (f.h.c - f.remaining), data, n);
    } else {
      f.body.append(data, n);
    }
    f.remaining -= n;
    used = n;
  }
  if (f.in_body && f.remaining == 0 && !c->broken) {
    handle_frame(c);
    f = InFrame{};
  }
  return used;
}

void TcpAgent::start_frame(InConn* c) {
  InFrame& f = c->in;
  if (f.h.magic != kMagic || f.h.type < kHello || f.h.type > kAbort ||
      (f.h.type != kData && f.h.c > kMaxSmallBody)) {
    WS_LOG_ERROR("transfer: malformed frame from '{}'; closing the connection", c->peer);
    c->broken = true;
    return;
  }
  f.in_body = true;
  f.remaining = f.h.c;
  f.body.clear();
  f.dest = nullptr;
  if (f.h.type == kData) {
    std::string why = check_bounds(f.h.b, f.h.c);
    if (why.empty()) {
      f.dest = reinterpret_cast<char*>(f.h.b);
    } else if (!c->rejected.count(f.h.a)) {
      WS_LOG_WARN("transfer: rejected a write from '{}': {}", c->peer, why);
      c->rejected.emplace(f.h.a, why);
    }
  }
}

bool TcpAgent::drive_conn_in(InConn* c) {
  InFrame& f = c->in;
  size_t budget = kRecvSliceBytes;
  if (c->stage.empty()) c->stage.resize(kStageBytes);
  while (budget > 0 && !c->broken) {
    while (c->pos < c->end && !c->broken)
      c->pos += consume(c, c->stage.data() + c->pos, c->end - c->pos);
    if (c->broken) return false;
    ssize_t r;
    if (f.in_body && f.h.type == kData && f.dest && f.remaining >= kStageBytes) {
      // Large payloads go straight into the registered memory.
      r = ::recv(c->fd, f.dest + (f.h.c - f.remaining), std::min<uint64_t>(f.remaining, budget), 0);
      if (r > 0) {
        f.remaining -= uint64_t(r);
        if (f.remaining == 0) {
          handle_frame(c);
          f = InFrame{};
        }
      }
    } else {
      r = ::recv(c->fd, c->stage.data(), c->stage.size(), 0);
      if (r > 0) {
        c->pos = 0;
        c->end = size_t(r);
      }
    }
    if (r > 0) {
      budget -= std::min<size_t>(budget, size_t(r));
      continue;
    }
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
    if (r < 0 && errno == EINTR) continue;
    return false;  // closed by the writer, or reset
  }
  return !c->broken;
}

void TcpAgent::handle_frame(InConn* c) {
  const WireHeader& h = c->in.h;
  switch (h.type) {
    case kHello:
      c->peer = c->in.body;
      break;
    case kData:
      break;
    case kCommit: {
      auto it = c->rejected.find(h.a);
      if (it != c->rejected.end()) {
        c->out.add(frame(kAck, h.a, 0, it->second));
        c->rejected.erase(it);
      } else {
        // Every byte of this transfer was received into place by this thread before the commit.
        if (!c->in.body.empty()) inbox_.push({c->peer, std::move(c->in.body)});
        c->out.add(frame(kAck, h.a, 1, {}));
      }
      drive_conn_out(c);
      break;
    }
    case kAbort:
      c->rejected.erase(h.a);
      break;
  }
}

void TcpAgent::drive_conn_out(InConn* c) {
  while (!c->out.empty()) {
    ssize_t w = ::send(c->fd, c->out.bytes.data() + c->out.off, c->out.bytes.size() - c->out.off,
                       MSG_NOSIGNAL);
    if (w > 0) {
      c->out.off += size_t(w);
    } else {
      return;  // EAGAIN waits for POLLOUT; errors show up as POLLERR/POLLHUP on the read side
    }
  }
}

RegionId TcpAgent::register_memory(void* base, size_t bytes, MemoryKind kind) {
  WS_CHECK_CODE(kUnimplemented, kind == MemoryKind::kHost,
                "transfer agent: {} memory is not supported yet", memory_kind_name(kind));
  WS_CHECK_ARG(base != nullptr && bytes > 0, "register_memory needs a non-empty region");
  std::lock_guard lk(regions_mu_);
  RegionId id = next_region_++;
  regions_.emplace(id, LocalRegion{static_cast<char*>(base), bytes, kind});
  return id;
}

void TcpAgent::deregister_memory(RegionId region) {
  std::lock_guard lk(regions_mu_);
  WS_CHECK_ARG(regions_.erase(region) == 1, "unknown memory region {}", region);
}

std::string TcpAgent::metadata() const {
  nlohmann::json j;
  j["backend"] = "tcp";
  j["name"] = opts_.name;
  j["host"] = host_;
  j["port"] = port_;
  auto regions = nlohmann::json::array();
  {
    std::lock_guard lk(regions_mu_);
    for (const auto& [id, r] : regions_) {
      regions.push_back({{"base", reinterpret_cast<uint64_t>(r.base)},
                         {"length", r.length},
                         {"kind", memory_kind_name(r.kind)}});
    }
  }
  j["regions"] = std::move(regions);
  return j.dump();
}

void TcpAgent::add_remote(const std::string& peer_name, const std::string& metadata) {
  auto p = std::make_unique<TcpPeer>();
  p->name = peer_name;
  try {
    auto j = nlohmann::json::parse(metadata);
    std::string backend = j.at("backend").get<std::string>();
    WS_CHECK_ARG(backend == "tcp", "metadata of peer '{}' is for the {} backend, this agent is tcp",
                 peer_name, backend);
    p->host = j.at("host").get<std::string>();
    p->port = j.at("port").get<int>();
    for (const auto& r : j.at("regions")) {
      p->regions.push_back({r.at("base").get<uint64_t>(), r.at("length").get<uint64_t>(), {}});
    }
  } catch (const nlohmann::json::exception& e) {
    WS_THROW(kInvalidArgument, "bad transfer metadata for peer '{}': {}", peer_name, e.what());
  }
  std::lock_guard lk(meta_mu_);  // keeps generations in order with the progress thread's view
  p->gen = next_gen_++;
  peer_meta_[peer_name] = PeerMeta{p->gen, p->regions};
  cmdq_.post([this, raw = p.release()] {
    std::unique_ptr<TcpPeer> np(raw);
    auto it = peers_.find(np->name);
    if (it != peers_.end()) {
      fail_peer(it->second.get(), fmt::format("peer '{}' was replaced", np->name));
      peers_.erase(it);
    }
    TcpPeer* pp = np.get();
    peers_.emplace(np->name, std::move(np));
    connect_peer(pp);
  });
}

void TcpAgent::remove_remote(const std::string& peer_name) {
  {
    std::lock_guard lk(meta_mu_);
    peer_meta_.erase(peer_name);
  }
  cmdq_.call([&] {
    auto it = peers_.find(peer_name);
    if (it == peers_.end()) return;
    fail_peer(it->second.get(), fmt::format("peer '{}' removed", peer_name));
    peers_.erase(it);
  });
}

TransferHandle TcpAgent::write(const std::string& peer, std::span<const WriteOp> ops,
                               std::string notify) {
  WS_CHECK_ARG(notify.size() <= kMaxNotificationBytes, "notification of {} bytes exceeds {}",
               notify.size(), kMaxNotificationBytes);
  auto t = std::make_unique<TcpTransfer>();
  uint64_t gen;
  {
    std::lock_guard lk(meta_mu_);
    auto it = peer_meta_.find(peer);
    WS_CHECK_ARG(it != peer_meta_.end(), "unknown transfer peer '{}' (add_remote first)", peer);
    gen = it->second.gen;
    t->ops = plan_ops(peer, it->second.regions, ops);
  }
  t->id = book_.create();
  t->notify = std::move(notify);
  TransferHandle h{t->id};
  cmdq_.post([this, raw = t.release(), peer, gen] {
    std::unique_ptr<TcpTransfer> tt(raw);
    auto it = peers_.find(peer);
    if (it == peers_.end() || it->second->gen != gen) {
      book_.finish(tt->id, TransferState::kFailed,
                   fmt::format("peer '{}' was removed or replaced", peer));
      return;
    }
    TcpPeer* p = it->second.get();
    if (p->failed) {
      book_.finish(tt->id, TransferState::kFailed, p->error);
      return;
    }
    if (!book_.pending(tt->id)) return;  // cancelled before it started
    if (!p->busy()) p->last_progress = Clock::now();
    p->queue.push_back(std::move(tt));
  });
  return h;
}

void TcpAgent::stop_transfer(uint64_t id) {
  for (auto& [name, p] : peers_) {
    for (auto it = p->queue.begin(); it != p->queue.end(); ++it) {
      TcpTransfer* t = it->get();
      if (t->id != id) continue;
      if (!t->started) {
        p->queue.erase(it);
      } else {
        t->cancelled = true;  // finishes its current frame, then sends an abort
      }
      return;
    }
    if (p->awaiting_ack.erase(id)) return;  // the commit already went out
  }
}

void TcpAgent::cancel(TransferHandle h) {
  if (!book_.finish(h.id, TransferState::kFailed, "cancelled")) return;
  cmdq_.post([this, id = h.id] { stop_transfer(id); });
}

void TcpAgent::release(TransferHandle h) {
  if (!book_.release(h.id)) return;
  cmdq_.post([this, id = h.id] { stop_transfer(id); });
}

}  // namespace

std::unique_ptr<TransferAgent> make_tcp_agent(const AgentOptions& opts) {
  return std::make_unique<TcpAgent>(opts);
}

}  // namespace wideserve::transfer
