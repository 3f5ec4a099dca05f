#include "disagg/decode_coordinator.h"

#include <algorithm>

#include "common/check.h"
#include "common/logging.h"
#include "disagg/control.h"
#include "disagg/kv_agent.h"
#include "runtime/etcd_http.h"

namespace wideserve::disagg {
namespace {

using Clock = std::chrono::steady_clock;

Clock::duration seconds(double s) {
  return std::chrono::milliseconds(static_cast<int64_t>(s * 1e3));
}

// One GET to the prefill's bootstrap server; throws Error(kUnavailable) on failure.
std::string http_get(const std::string& host, int32_t port, const std::string& path,
                     double timeout_s) {
  const auto deadline = Clock::now() + seconds(timeout_s);
  runtime::HttpConnection c(host, static_cast<uint16_t>(port), deadline);
  const int status = c.get(path, deadline);
  std::string body = c.read_body(deadline);
  WS_CHECK_CODE(kUnavailable, status == 200, "bootstrap server {}:{}{} answered {}", host, port,
                path, status);
  return body;
}

// Is a prefill engine gone (its bootstrap port refuses connections: the process is dead), alive
// (it answers /health), or silent (stalled or unreachable: it may still write later)?
int probe_bootstrap(const std::string& host, int32_t port, double timeout_s) {
  try {
    http_get(host, port, "/health", timeout_s);
    return 0;
  } catch (const std::exception& e) {
    const std::string m = e.what();
    return m.find("refused") != std::string::npos ? 1 : 2;
  }
}

}  // namespace

DecodeCoordinator::DecodeCoordinator(const DisaggOptions& opts, const engine::KvBufferInfo& kv)
    : opts_(opts), local_(layout_of(kv)) {
  agent_ = make_kv_agent(opts_, kv);
  WS_LOG_INFO("decode disaggregation: transfer {} ({}), KV pool {:.1f} MiB of {} memory registered",
              opts_.transfer_backend, agent_->backend(), kv.bytes / 1048576.0,
              kv.device_copy ? "GPU" : "host");
}

DecodeCoordinator::~DecodeCoordinator() {
  for (auto& [k, s] : suspects_)
    if (s.probe.valid()) s.probe.wait();
  for (auto& [k, p] : peers_) {
    if (p->route.valid()) p->route.wait();
    if (p->heartbeat.valid()) p->heartbeat.wait();
  }
}

DecodeCoordinator::Peer& DecodeCoordinator::peer_for(const engine::DisaggInfo& d) {
  const std::string key = fmt::format("{}:{}", d.bootstrap_host, d.bootstrap_port);
  auto it = peers_.find(key);
  if (it != peers_.end() && it->second->state != PeerState::kFailed) return *it->second;
  // A failed peer is replaced; its background calls finish in the graveyard (their futures
  // would block on destruction).
  if (it != peers_.end()) graveyard_.push_back(std::move(it->second));
  auto p = std::make_unique<Peer>();
  p->key = key;
  p->host = d.bootstrap_host;
  p->port = d.bootstrap_port;
  p->route = std::async(std::launch::async, [host = p->host, port = p->port] {
    return nlohmann::json::parse(
        http_get(host, port, "/route?engine_rank=0&target_dp_group=0", 5.0));
  });
  Peer& ref = *p;
  peers_[key] = std::move(p);
  return ref;
}

uint64_t DecodeCoordinator::id_of_room(uint64_t room) const {
  for (const auto& [id, e] : entries_)
    if (e.r.disagg.bootstrap_room == room) return id;
  return 0;
}

bool DecodeCoordinator::intercept(engine::NewRequest& r, engine::EngineCore& core,
                                  std::vector<engine::RequestOutput>& out) {
  if (!r.disagg.present()) return false;  // aggregated: prefill and decode here
  WS_CHECK_ARG(!r.disagg.bootstrap_host.empty() && r.disagg.bootstrap_port > 0,
               "a disaggregated decode request needs bootstrap_host and bootstrap_port");
  core.validate_request(r);
  WS_CHECK_ARG(id_of_room(r.disagg.bootstrap_room) == 0, "bootstrap room {} is already in use",
               r.disagg.bootstrap_room);
  Entry e;
  e.peer = peer_for(r.disagg).key;
  e.deadline = Clock::now() + seconds(opts_.waiting_timeout_s);
  const uint64_t id = r.id;
  e.r = std::move(r);
  entries_[id] = std::move(e);
  prealloc_order_.push_back(id);
  return true;
}

void DecodeCoordinator::fail_entry(uint64_t id, const std::string& error, engine::FinishReason f,
                                   engine::EngineCore& core,
                                   std::vector<engine::RequestOutput>& out) {
  auto it = entries_.find(id);
  if (it == entries_.end()) return;
  Entry& e = it->second;
  if (!e.pages.empty()) {
    auto p = peers_.find(e.peer);
    const bool peer_alive = p != peers_.end() && p->second->state == PeerState::kReady;
    if (e.transferring) {
      // The prefill may be writing into these pages (or may resume writing, if it was only
      // stalled): keep them out of the pool until it confirms, or for a grace period.
      if (peer_alive) {
        try {
          send_json(*p->second->control, {{"type", "abort"}, {"room", e.r.disagg.bootstrap_room}});
        } catch (const zmq::error_t&) {
        }
      }
      quarantine_.push_back({e.r.disagg.bootstrap_room, std::move(e.pages),
                             Clock::now() + seconds(2 * opts_.transfer_timeout_s)});
    } else {
      core.free_reserved_pages(e.pages);
    }
  }
  engine::RequestOutput o;
  o.id = id;
  o.finish = f;
  o.error = error;
  o.prompt_tokens = static_cast<int64_t>(e.r.prompt.size());
  out.push_back(std::move(o));
  prealloc_order_.erase(std::remove(prealloc_order_.begin(), prealloc_order_.end(), id),
                        prealloc_order_.end());
  entries_.erase(it);
}

bool DecodeCoordinator::abort(uint64_t id, engine::EngineCore& core,
                              std::vector<engine::RequestOutput>& out) {
  if (!entries_.count(id)) return false;
  fail_entry(id, "", engine::FinishReason::kAbort, core, out);
  return true;
}

void DecodeCoordinator::fail_peer(Peer& p, const std::string& error, engine::EngineCore& core,
                                  std::vector<engine::RequestOutput>& out) {
  WS_LOG_ERROR("prefill engine at {} failed: {}", p.key, error);
  p.state = PeerState::kFailed;
  p.error = error;
  // fail_entry below must see the peer as failed (quarantine until it is resolved).
  std::vector<uint64_t> ids;
  for (const auto& [id, e] : entries_)
    if (e.peer == p.key) ids.push_back(id);
  for (uint64_t id : ids)
    fail_entry(id, "prefill engine " + p.key + " failed: " + error, engine::FinishReason::kError,
               core, out);
  // Nobody writes into quarantined pages of a dead peer any more.
  p.control.reset();
}

void DecodeCoordinator::handle_control(Peer& p, const nlohmann::json& msg, engine::EngineCore& core,
                                       std::vector<engine::RequestOutput>& out) {
  try {
    const std::string type = msg.at("type").get<std::string>();
    if (type == "hello_ack") {
      const std::string err = msg.at("error").get<std::string>();
      if (!err.empty()) return fail_peer(p, err, core, out);
      p.state = PeerState::kReady;
      WS_LOG_INFO("connected to prefill engine {}", p.key);
      return;
    }
    const uint64_t room = msg.at("room").get<uint64_t>();
    if (type == "failed" || type == "aborted") {
      for (auto it = quarantine_.begin(); it != quarantine_.end();)
        if (it->room == room) {
          core.free_reserved_pages(it->pages);
          it = quarantine_.erase(it);
        } else {
          ++it;
        }
      if (const uint64_t id = id_of_room(room); id != 0) {
        auto& e = entries_[id];
        e.transferring = false;  // the prefill will not write: the pages are free to go
        const std::string why = msg.value("error", std::string("prefill aborted"));
        fail_entry(id, "prefill failed: " + why, engine::FinishReason::kError, core, out);
      }
    }
  } catch (const std::exception& e) {
    WS_LOG_WARN("dropping malformed disaggregation control message: {}", e.what());
  }
}

void DecodeCoordinator::advance_peer(Peer& p, engine::EngineCore& core,
                                     std::vector<engine::RequestOutput>& out) {
  const auto now = Clock::now();
  if (p.state == PeerState::kResolving && p.route.valid() &&
      p.route.wait_for(std::chrono::seconds(0)) == std::future_status::ready) {
    try {
      auto route = p.route.get();
      p.control = std::make_unique<zmq::socket_t>(ctx_, zmq::socket_type::dealer);
      p.control->set(zmq::sockopt::linger, 0);
      p.control->connect(route.at("control_endpoint").get<std::string>());
      send_json(*p.control, {{"type", "hello"},
                             {"agent", opts_.agent_name},
                             {"metadata", agent_->metadata()},
                             {"layout", to_json(local_)}});
      p.state = PeerState::kHandshaking;
      p.handshake_deadline = now + seconds(std::max(5.0, opts_.heartbeat_interval_s));
      p.next_heartbeat = now + seconds(opts_.heartbeat_interval_s);
    } catch (const std::exception& e) {
      return fail_peer(p, std::string("bootstrap: ") + user_message(e), core, out);
    }
  }
  if (p.state == PeerState::kHandshaking && now > p.handshake_deadline)
    return fail_peer(p, "no answer to the handshake", core, out);
  if (p.control && (p.state == PeerState::kHandshaking || p.state == PeerState::kReady)) {
    while (p.control) {
      auto m = recv_json(*p.control, false);
      if (!m) break;
      handle_control(p, m->second, core, out);
    }
  }
  if (p.state != PeerState::kReady) return;
  // Heartbeats: the prefill's bootstrap server must answer /health.
  if (p.heartbeat.valid() &&
      p.heartbeat.wait_for(std::chrono::seconds(0)) == std::future_status::ready) {
    if (p.heartbeat.get()) {
      p.heartbeat_failures = 0;
    } else if (++p.heartbeat_failures >= opts_.heartbeat_max_failure) {
      return fail_peer(
          p,
          fmt::format("{} heartbeats failed (SGLANG_DISAGGREGATION_HEARTBEAT_MAX_FAILURE)",
                      p.heartbeat_failures),
          core, out);
    }
  }
  if (!p.heartbeat.valid() && now >= p.next_heartbeat) {
    p.next_heartbeat = now + seconds(opts_.heartbeat_interval_s);
    const double timeout = std::max(0.5, std::min(2.0, opts_.heartbeat_interval_s));
    p.heartbeat = std::async(std::launch::async, [host = p.host, port = p.port, timeout] {
      try {
        http_get(host, port, "/health", timeout);
        return true;
      } catch (const std::exception&) {
        return false;
      }
    });
  }
}

void DecodeCoordinator::probe_suspects(engine::EngineCore& core) {
  const auto now = Clock::now();
  for (auto it = suspects_.begin(); it != suspects_.end();) {
    Suspect& s = it->second;
    if (s.probe.valid() && s.probe.wait_for(std::chrono::seconds(0)) == std::future_status::ready) {
      const Probe r = s.probe.get();
      if (r != Probe::kSilent) {
        for (auto& q : quarantine_) {
          if (q.suspect != it->first) continue;
          q.suspect.clear();
          // Gone: nobody can write any more. Back: its write ends within the transfer timeout.
          q.release_at = r == Probe::kGone ? now : now + seconds(2 * opts_.transfer_timeout_s);
        }
        WS_LOG_INFO("failed prefill engine {} is {}: releasing its quarantined KV pages", it->first,
                    r == Probe::kGone ? "gone" : "back");
        it = suspects_.erase(it);
        continue;
      }
    }
    if (!s.probe.valid() && now >= s.next_probe) {
      s.next_probe = now + seconds(opts_.heartbeat_interval_s);
      const double timeout = std::max(0.5, std::min(2.0, opts_.heartbeat_interval_s));
      s.probe = std::async(std::launch::async, [host = s.host, port = s.port, timeout] {
        const int r = probe_bootstrap(host, port, timeout);
        return r == 0 ? Probe::kAlive : r == 1 ? Probe::kGone : Probe::kSilent;
      });
    }
    ++it;
  }
  (void)core;
}

void DecodeCoordinator::poll(engine::EngineCore& core, std::vector<engine::RequestOutput>& out) {
  const auto now = Clock::now();
  probe_suspects(core);
  for (auto& [key, p] : peers_) advance_peer(*p, core, out);
  // KV that landed: the request joins the running batch with its first token.
  for (auto& n : agent_->take_notifications()) {
    auto done = decode_room_done(n.message);
    if (!done) continue;
    for (auto q = quarantine_.begin(); q != quarantine_.end();)
      if (q->room == done->room) {  // an aborted room's write completed: the pages are free
        core.free_reserved_pages(q->pages);
        q = quarantine_.erase(q);
      } else {
        ++q;
      }
    const uint64_t id = id_of_room(done->room);
    if (id == 0) continue;
    Entry e = std::move(entries_[id]);
    entries_.erase(id);
    try {
      core.add_prefilled_request(e.r, e.pages, done->first);
    } catch (const Error& err) {
      core.free_reserved_pages(e.pages);
      engine::RequestOutput o;
      o.id = id;
      o.finish = engine::FinishReason::kError;
      o.error = user_message(err);
      out.push_back(std::move(o));
    }
  }
  // Prealloc queue, FCFS: reserve pages and send them while slots and memory last.
  int64_t transferring = 0;
  for (const auto& [id, e] : entries_) transferring += e.transferring;
  while (!prealloc_order_.empty()) {
    const uint64_t id = prealloc_order_.front();
    auto it = entries_.find(id);
    if (it == entries_.end()) {
      prealloc_order_.pop_front();
      continue;
    }
    Entry& e = it->second;
    auto p = peers_.find(e.peer);
    if (p == peers_.end() || p->second->state != PeerState::kReady) break;
    if (core.num_running() + transferring >= opts_.max_running_requests) break;
    auto pages = core.reserve_pages(static_cast<int64_t>(e.r.prompt.size()));
    if (!pages) break;  // memory is short: wait for running requests to finish
    e.pages = std::move(*pages);
    try {
      send_json(*p->second->control, {{"type", "pages"},
                                      {"room", e.r.disagg.bootstrap_room},
                                      {"agent", opts_.agent_name},
                                      {"pages", e.pages}});
    } catch (const zmq::error_t& err) {
      fail_entry(id, std::string("cannot reach the prefill engine: ") + err.what(),
                 engine::FinishReason::kError, core, out);
      continue;
    }
    e.transferring = true;
    ++transferring;
    prealloc_order_.pop_front();
  }
  // Waiting timeouts.
  std::vector<uint64_t> late;
  for (const auto& [id, e] : entries_)
    if (now >= e.deadline) late.push_back(id);
  for (uint64_t id : late)
    fail_entry(id,
               fmt::format("timed out after {:.0f} s waiting for the KV cache from the prefill "
                           "engine (SGLANG_DISAGGREGATION_WAITING_TIMEOUT)",
                           opts_.waiting_timeout_s),
               engine::FinishReason::kError, core, out);
  // Quarantined pages whose writer never confirmed.
  for (auto q = quarantine_.begin(); q != quarantine_.end();)
    if (now >= q->release_at) {
      core.free_reserved_pages(q->pages);
      q = quarantine_.erase(q);
    } else {
      ++q;
    }
  auto ready = [](auto& f) {
    return !f.valid() || f.wait_for(std::chrono::seconds(0)) == std::future_status::ready;
  };
  graveyard_.erase(std::remove_if(graveyard_.begin(), graveyard_.end(),
                                  [&](const std::unique_ptr<Peer>& p) {
                                    return ready(p->route) && ready(p->heartbeat);
                                  }),
                   graveyard_.end());
  // Forget failed peers with nothing left (a later request reconnects).
  for (auto it = peers_.begin(); it != peers_.end();) {
    Peer& p = *it->second;
    bool used = false;
    for (const auto& [id, e] : entries_) used |= e.peer == p.key;
    const bool idle_futures =
        (!p.route.valid() ||
         p.route.wait_for(std::chrono::seconds(0)) == std::future_status::ready) &&
        (!p.heartbeat.valid() ||
         p.heartbeat.wait_for(std::chrono::seconds(0)) == std::future_status::ready);
    if (p.state == PeerState::kFailed && !used && idle_futures)
      it = peers_.erase(it);
    else
      ++it;
  }
}

bool DecodeCoordinator::busy() const {
  if (!entries_.empty() || !quarantine_.empty() || !graveyard_.empty() || !suspects_.empty())
    return true;
  for (const auto& [k, p] : peers_)
    if (p->state == PeerState::kResolving || p->state == PeerState::kHandshaking) return true;
  return false;
}

}  // namespace wideserve::disagg
