// Writer side of the TCP agent: connects to peers, streams each transfer's data frames (gathered
// into one sendmsg per batch) followed by a commit or abort, and reads the targets' acks.
#include "common/logging.h"
#include "transfer/tcp_agent_impl.h"

#include <netdb.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace wideserve::transfer::tcp {

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

}  // namespace wideserve::transfer::tcp
