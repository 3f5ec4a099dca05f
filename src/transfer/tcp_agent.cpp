// TCP agent lifecycle, progress loop and public calls; the writer and target sides of the
// connections live in tcp_writer.cpp and tcp_receiver.cpp.
#include "transfer/tcp_agent.h"

#include "common/check.h"
#include "common/logging.h"
#include "transfer/tcp_agent_impl.h"

#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <nlohmann/json.hpp>

#include <cerrno>

namespace wideserve::transfer {
namespace tcp {

TcpAgent::TcpAgent(const AgentOptions& opts) : AgentBase(opts) {
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
  start_progress();
}

TcpAgent::~TcpAgent() {
  stop_progress();
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
  while (!stopping()) {
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

RegionId TcpAgent::register_memory(void* base, size_t bytes, MemoryKind kind) {
  WS_CHECK_CODE(kUnimplemented, kind == MemoryKind::kHost || opts_.device_copy,
                "transfer agent: {} memory needs AgentOptions::device_copy",
                memory_kind_name(kind));
  WS_CHECK_ARG(base != nullptr && bytes > 0, "register_memory needs a non-empty region");
  std::lock_guard lk(regions_mu_);
  RegionId id = next_region_++;
  regions_.emplace(id, LocalRegion{static_cast<char*>(base), bytes, kind});
  return id;
}

bool TcpAgent::in_device_region(const void* p, size_t len) const {
  std::lock_guard lk(regions_mu_);
  for (const auto& [id, r] : regions_)
    if (r.kind == MemoryKind::kCuda && r.holds(reinterpret_cast<uint64_t>(p), len)) return true;
  return false;
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
  auto regions = parse_peer_metadata(peer_name, metadata, "tcp", /*with_rkey=*/false,
                                     [&](const nlohmann::json& j) {
                                       p->host = j.at("host").get<std::string>();
                                       p->port = j.at("port").get<int>();
                                     });
  directory_.add(peer_name, std::move(regions), [&](uint64_t gen) {
    p->gen = gen;
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
  });
}

void TcpAgent::remove_remote(const std::string& peer_name) {
  directory_.erase(peer_name);
  cmdq_.call([&] {
    auto it = peers_.find(peer_name);
    if (it == peers_.end()) return;
    fail_peer(it->second.get(), fmt::format("peer '{}' removed", peer_name));
    peers_.erase(it);
  });
}

TransferHandle TcpAgent::write(const std::string& peer, std::span<const WriteOp> ops,
                               std::string notify) {
  auto plan = directory_.plan(peer, ops, notify);
  auto t = std::make_unique<TcpTransfer>();
  t->ops = std::move(plan.ops);
  // Local bytes in GPU memory go out from a host copy made now (the caller keeps them unchanged
  // until the transfer is done, so an early copy is as good as a late one).
  size_t staged = 0;
  std::vector<bool> dev(t->ops.size());
  for (size_t i = 0; i < t->ops.size(); ++i) {
    dev[i] = in_device_region(t->ops[i].op.local, t->ops[i].op.length);
    if (dev[i]) staged += t->ops[i].op.length;
  }
  if (staged > 0) {
    t->staged.resize(staged);
    size_t off = 0;
    for (size_t i = 0; i < t->ops.size(); ++i) {
      if (!dev[i]) continue;
      WriteOp& op = t->ops[i].op;
      try {
        opts_.device_copy(t->staged.data() + off, op.local, op.length);
      } catch (const std::exception& e) {
        WS_THROW(kUnavailable, "transfer agent: copy out of GPU memory failed: {}", e.what());
      }
      op.local = t->staged.data() + off;
      off += op.length;
    }
  }
  t->id = book_.create();
  t->notify = std::move(notify);
  TransferHandle h{t->id};
  cmdq_.post([this, raw = t.release(), peer, gen = plan.gen] {
    std::unique_ptr<TcpTransfer> tt(raw);
    TcpPeer* p = admit_transfer(book_, peers_, peer, gen, tt->id);
    if (!p) return;
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

}  // namespace tcp

std::unique_ptr<TransferAgent> make_tcp_agent(const AgentOptions& opts) {
  return std::make_unique<tcp::TcpAgent>(opts);
}

}  // namespace wideserve::transfer
