#include "runtime/embedded_discovery.h"

#include <fmt/format.h>

#include <algorithm>

#include "common/check.h"
#include "common/logging.h"
#include "runtime/codec.h"

namespace wideserve::runtime {
namespace {

using Clock = std::chrono::steady_clock;

double seconds(std::chrono::milliseconds d) {
  return static_cast<double>(d.count()) / 1000.0;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// EmbeddedRegistry

EmbeddedRegistry::EmbeddedRegistry(const DiscoveryUrl& url, WatcherOptions opts,
                                   WatcherCallbacks cb)
    : url_(url), opts_(opts), cb_(std::move(cb)), sock_(ctx_, zmq::socket_type::router) {
  WS_CHECK_ARG(opts_.ttl.count() > 0, "discovery ttl must be positive");
  set_common_socket_options(sock_);
  try {
    sock_.bind(url_.tcp_endpoint());
  } catch (const zmq::error_t& e) {
    WS_THROW(kUnavailable, "--discovery {}: cannot bind the worker registry at {}: {}",
             url_.to_string(), url_.tcp_endpoint(), e.what());
  }
  if (url_.port == 0) {
    std::string ep = sock_.get(zmq::sockopt::last_endpoint);
    url_.port = static_cast<uint16_t>(std::stoul(ep.substr(ep.rfind(':') + 1)));
  }
  WS_LOG_INFO("worker registry listening on {}", url_.to_string());
  thread_ = std::thread([this] { loop(); });
}

EmbeddedRegistry::~EmbeddedRegistry() {
  stop();
}

void EmbeddedRegistry::stop() {
  stopping_ = true;
  wake_.signal();
  if (thread_.joinable()) thread_.join();
  if (sock_.handle() != nullptr) sock_.close();
}

std::vector<WorkerEntry> EmbeddedRegistry::snapshot() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<WorkerEntry> out;
  out.reserve(workers_.size());
  for (const auto& [id, e] : workers_) out.push_back(e);
  return out;
}

void EmbeddedRegistry::loop() {
  // Expiry granularity: a fraction of the TTL, so removal happens within ~ttl * 1.25.
  auto tick =
      std::clamp(opts_.ttl / 4, std::chrono::milliseconds(10), std::chrono::milliseconds(250));
  zmq::pollitem_t items[2] = {{sock_.handle(), 0, ZMQ_POLLIN, 0},
                              {nullptr, wake_.fd(), ZMQ_POLLIN, 0}};
  while (!stopping_) {
    try {
      zmq::poll(items, 2, tick);
    } catch (const zmq::error_t& e) {
      if (e.num() == EINTR) continue;
      WS_LOG_ERROR("worker registry: poll failed: {}", e.what());
      return;
    }
    if (stopping_) return;
    if (items[1].revents & ZMQ_POLLIN) wake_.drain();
    try {
      if (items[0].revents & ZMQ_POLLIN) receive_ready();
    } catch (const std::exception& e) {
      // One bad exchange must not take the registry (and with it every route) down.
      WS_LOG_ERROR("worker registry: {}", e.what());
    }
    expire();
  }
}

void EmbeddedRegistry::receive_ready() {
  for (int i = 0; i < 1024 && !stopping_; ++i) {
    zmq::message_t id;
    if (!sock_.recv(id, zmq::recv_flags::dontwait)) return;
    std::string peer = id.to_string();
    bool more = id.more();
    while (more) {
      zmq::message_t part;
      if (!sock_.recv(part, zmq::recv_flags::dontwait)) break;
      more = part.more();
      std::vector<Message> msgs;
      try {
        msgs = decode_all(std::string_view(static_cast<const char*>(part.data()), part.size()));
      } catch (const std::exception& e) {
        log_dropped(e.what());
        continue;
      }
      for (Message& m : msgs) {
        if (auto* hb = std::get_if<Heartbeat>(&m))
          on_heartbeat(peer, std::move(*hb));
        else if (auto* u = std::get_if<Unregister>(&m))
          on_unregister(*u);
        else
          log_dropped(fmt::format("unexpected {}", message_type_name(message_type(m))));
      }
    }
  }
}

void EmbeddedRegistry::on_heartbeat(const std::string& peer, Heartbeat hb) {
  const std::string& id = hb.info.instance_id;
  if (id.empty() || hb.info.endpoint.empty()) {
    reply(peer, HeartbeatAck{false, "heartbeat without instance_id or endpoint"});
    return;
  }
  // Only this thread changes workers_, so `known` stays true until the update below.
  bool known;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = workers_.find(id);
    known = it != workers_.end() && it->second.info.endpoint == hb.info.endpoint;
  }
  if (!known && cb_.admit) {
    std::string err;
    try {
      err = cb_.admit(hb.info);
    } catch (const std::exception& e) {
      err = e.what();
    }
    if (!err.empty()) {
      reply(peer, HeartbeatAck{false, err});
      return;
    }
  }
  std::vector<Event> events;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto now = Clock::now();
    auto it = workers_.find(id);
    if (it != workers_.end() && it->second.info.endpoint != hb.info.endpoint) {
      events.push_back(
          Removed{it->second.info, fmt::format("worker {} re-registered at {} (was {})", id,
                                               hb.info.endpoint, it->second.info.endpoint)});
      workers_.erase(it);
      it = workers_.end();
    }
    if (it == workers_.end()) {
      // Another instance on the same endpoint means the old process is gone (its port is taken).
      for (auto o = workers_.begin(); o != workers_.end();) {
        if (o->second.info.endpoint == hb.info.endpoint) {
          events.push_back(Removed{o->second.info, fmt::format("worker {} at {} replaced by {}",
                                                               o->first, hb.info.endpoint, id)});
          o = workers_.erase(o);
        } else {
          ++o;
        }
      }
      it = workers_.emplace(id, WorkerEntry{hb.info, hb.load, hb.draining, now}).first;
      events.push_back(Added{hb.info});
    }
    WorkerEntry& e = it->second;
    e.info = std::move(hb.info);
    e.load = hb.load;
    e.draining = hb.draining;
    e.last_seen = now;
    if (cb_.on_updated) events.push_back(Updated{e});
  }
  reply(peer, HeartbeatAck{true, ""});
  emit(events);
}

void EmbeddedRegistry::on_unregister(const Unregister& u) {
  std::vector<Event> events;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = workers_.find(u.instance_id);
    if (it == workers_.end()) return;
    events.push_back(
        Removed{it->second.info, fmt::format("worker {} unregistered", u.instance_id)});
    workers_.erase(it);
  }
  emit(events);
}

void EmbeddedRegistry::expire() {
  std::vector<Event> events;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto now = Clock::now();
    for (auto it = workers_.begin(); it != workers_.end();) {
      if (now - it->second.last_seen > opts_.ttl) {
        events.push_back(Removed{
            it->second.info, fmt::format("worker {} at {} missed heartbeats for {:.1f} s",
                                         it->first, it->second.info.endpoint, seconds(opts_.ttl))});
        it = workers_.erase(it);
      } else {
        ++it;
      }
    }
  }
  emit(events);
}

void EmbeddedRegistry::reply(const std::string& peer, const HeartbeatAck& ack) {
  std::string payload = encode(ack);
  try {
    sock_.send(zmq::buffer(peer), zmq::send_flags::sndmore | zmq::send_flags::dontwait);
    sock_.send(zmq::buffer(payload), zmq::send_flags::dontwait);
  } catch (const zmq::error_t& e) {
    WS_LOG_WARN("worker registry: ack failed: {}", e.what());
  }
}

void EmbeddedRegistry::emit(std::vector<Event>& events) {
  for (Event& ev : events) {
    try {
      if (auto* a = std::get_if<Added>(&ev)) {
        WS_LOG_INFO("worker {} ({}) added at {}", a->info.instance_id, a->info.model_name,
                    a->info.endpoint);
        if (cb_.on_added) cb_.on_added(a->info);
      } else if (auto* r = std::get_if<Removed>(&ev)) {
        WS_LOG_INFO("worker removed: {}", r->reason);
        if (cb_.on_removed) cb_.on_removed(r->info, r->reason);
      } else if (auto* u = std::get_if<Updated>(&ev)) {
        if (cb_.on_updated) cb_.on_updated(u->entry);
      }
    } catch (const std::exception& e) {
      WS_LOG_ERROR("worker registry: callback threw: {}", e.what());
    }
  }
}

void EmbeddedRegistry::log_dropped(const std::string& why) {
  uint64_t suppressed = 0;
  if (drop_log_.allow(suppressed))
    WS_LOG_WARN("worker registry: dropped a frame: {} ({} similar suppressed)", why, suppressed);
}

// ---------------------------------------------------------------------------------------------
// EmbeddedRegistration

EmbeddedRegistration::EmbeddedRegistration(const DiscoveryUrl& url, WorkerInfo info,
                                           std::function<WorkerLoad()> load_fn,
                                           RegistrationOptions opts)
    : url_(url),
      info_(std::move(info)),
      load_fn_(std::move(load_fn)),
      opts_(opts),
      sock_(ctx_, zmq::socket_type::dealer) {
  WS_CHECK_ARG(url_.port != 0, "--discovery {}: workers need the registry's port, not 0",
               url_.to_string());
  WS_CHECK_ARG(!info_.instance_id.empty(), "worker registration without instance_id");
  WS_CHECK_ARG(opts_.interval.count() > 0, "heartbeat interval must be positive");
  sock_.set(zmq::sockopt::linger, 0);
  // Heartbeats are only useful fresh: drop them while no registry is connected instead of
  // queueing a backlog for a frontend that starts later.
  sock_.set(zmq::sockopt::immediate, 1);
  sock_.set(zmq::sockopt::sndhwm, 4);
  sock_.set(zmq::sockopt::rcvhwm, 0);
  sock_.set(zmq::sockopt::reconnect_ivl, 100);
  sock_.set(zmq::sockopt::reconnect_ivl_max, 1000);
  // ZMTP heartbeats notice a registry host that vanished without closing the connection.
  sock_.set(zmq::sockopt::heartbeat_ivl, 1000);
  sock_.set(zmq::sockopt::heartbeat_timeout, 3000);
  try {
    sock_.connect(url_.tcp_endpoint());
  } catch (const zmq::error_t& e) {
    WS_THROW(kInvalidArgument, "--discovery {}: cannot connect to {}: {}", url_.to_string(),
             url_.tcp_endpoint(), e.what());
  }
  thread_ = std::thread([this] { loop(); });
}

EmbeddedRegistration::~EmbeddedRegistration() {
  stop();
}

void EmbeddedRegistration::set_draining(bool draining) {
  draining_ = draining;
  wake_.signal();
}

RegistrationStatus EmbeddedRegistration::status() const {
  std::lock_guard<std::mutex> lock(mu_);
  return status_;
}

void EmbeddedRegistration::stop() {
  if (stopping_.exchange(true)) {
    if (thread_.joinable()) thread_.join();
    return;
  }
  wake_.signal();
  if (thread_.joinable()) thread_.join();
}

void EmbeddedRegistration::send_heartbeat() {
  Heartbeat hb;
  hb.info = info_;
  try {
    if (load_fn_) hb.load = load_fn_();
  } catch (const std::exception& e) {
    WS_LOG_WARN("worker load for heartbeat failed: {}", e.what());
  }
  hb.draining = draining_;
  std::string payload = encode(hb);
  // EAGAIN (no registry connected) just drops this beat.
  auto sent = sock_.send(zmq::buffer(payload), zmq::send_flags::dontwait);
  if (sent) {
    std::lock_guard<std::mutex> lock(mu_);
    ++status_.heartbeats_sent;
  }
}

void EmbeddedRegistration::on_ack(const HeartbeatAck& ack) {
  std::lock_guard<std::mutex> lock(mu_);
  bool first = status_.acks == 0;
  ++status_.acks;
  if (!ack.accepted) {
    // Once per distinct refusal: the worker keeps trying every interval.
    if (status_.accepted || first || ack.error != status_.error)
      WS_LOG_ERROR("frontend registry at {} refused worker {}: {}", url_.to_string(),
                   info_.instance_id, ack.error);
    status_.accepted = false;
    status_.error = ack.error;
    return;
  }
  if (!status_.accepted)
    WS_LOG_INFO("worker {} registered with the frontend registry at {}", info_.instance_id,
                url_.to_string());
  status_.accepted = true;
  status_.error.clear();
}

void EmbeddedRegistration::loop() {
  auto last_ack = Clock::now();
  bool warned = false;
  auto next_beat = Clock::now();
  zmq::pollitem_t items[2] = {{sock_.handle(), 0, ZMQ_POLLIN, 0},
                              {nullptr, wake_.fd(), ZMQ_POLLIN, 0}};
  try {
    while (!stopping_) {
      auto now = Clock::now();
      if (now >= next_beat) {
        send_heartbeat();
        next_beat = now + opts_.interval;
      }
      auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(next_beat - now);
      try {
        zmq::poll(items, 2, std::max(wait, std::chrono::milliseconds(1)));
      } catch (const zmq::error_t& e) {
        if (e.num() != EINTR) throw;
        continue;
      }
      if (items[1].revents & ZMQ_POLLIN) {
        wake_.drain();
        next_beat = Clock::now();  // set_draining or stop: tell the registry now
      }
      if (items[0].revents & ZMQ_POLLIN) {
        zmq::message_t msg;
        while (sock_.recv(msg, zmq::recv_flags::dontwait)) {
          try {
            Message m = decode(std::string_view(static_cast<const char*>(msg.data()), msg.size()));
            if (const auto* ack = std::get_if<HeartbeatAck>(&m)) {
              on_ack(*ack);
              last_ack = Clock::now();
              if (warned) {
                WS_LOG_INFO("frontend registry at {} answering again", url_.to_string());
                warned = false;
              }
            }
          } catch (const std::exception& e) {
            WS_LOG_WARN("registration: dropped a frame from the registry: {}", e.what());
          }
        }
      }
      if (!warned && Clock::now() - last_ack >= opts_.warn_no_ack) {
        bool ever = status().acks > 0;
        WS_LOG_WARN("{} {} for {:.0f} s; worker {} keeps sending heartbeats",
                    ever ? "no answer from the frontend registry at" : "no frontend registry at",
                    url_.to_string(), seconds(opts_.warn_no_ack), info_.instance_id);
        warned = true;
      }
    }
    // Best effort: a registry that is up forgets us now instead of after its TTL.
    std::string bye = encode(Unregister{info_.instance_id});
    sock_.set(zmq::sockopt::linger, 500);
    (void)sock_.send(zmq::buffer(bye), zmq::send_flags::dontwait);
  } catch (const std::exception& e) {
    WS_LOG_ERROR("worker registration thread failed: {}", e.what());
  }
  sock_.close();
}

}  // namespace wideserve::runtime
