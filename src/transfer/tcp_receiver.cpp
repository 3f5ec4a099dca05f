// Target side of the TCP agent: accepts writers' connections, parses their frames, bounds-checks
// each data frame against the registered regions and receives its payload straight into place,
// and answers each commit with an ack (delivering its notification) or the reason it was refused.
#include "common/logging.h"
#include "transfer/tcp_agent_impl.h"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace wideserve::transfer::tcp {

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

std::string TcpAgent::check_bounds(uint64_t addr, uint64_t len, bool* device) {
  std::lock_guard lk(regions_mu_);
  for (const auto& [id, r] : regions_) {
    if (r.holds(addr, len)) {
      *device = r.kind == MemoryKind::kCuda;
      return {};
    }
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
      if (f.dest && f.device) {
        try {
          opts_.device_copy(f.dest + (f.h.c - f.remaining), data, n);
        } catch (const std::exception& e) {
          // The transfer fails at its commit with the reason; the connection stays usable.
          const std::string why = fmt::format("copy into GPU memory failed: {}", e.what());
          WS_LOG_ERROR("transfer: a write from '{}': {}", c->peer, why);
          c->rejected.emplace(f.h.a, why);
          f.dest = nullptr;
        }
      } else if (f.dest) {
        std::memcpy(f.dest + (f.h.c - f.remaining), data, n);
      }
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
  f.device = false;
  if (f.h.type == kData) {
    std::string why = check_bounds(f.h.b, f.h.c, &f.device);
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
  while (!c->broken) {
    // Staged bytes are parsed even once the budget is spent: poll() only reports bytes still in
    // the socket, so a commit left here would wait for the writer's timeout.
    while (c->pos < c->end && !c->broken)
      c->pos += consume(c, c->stage.data() + c->pos, c->end - c->pos);
    if (c->broken || budget == 0) break;
    ssize_t r;
    if (f.in_body && f.h.type == kData && f.dest && !f.device && f.remaining >= kStageBytes) {
      // Large payloads go straight into registered host memory (GPU memory: through the stage).
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

}  // namespace wideserve::transfer::tcp
