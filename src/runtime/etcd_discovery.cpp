#include "runtime/etcd_discovery.h"

#include <fmt/format.h>
#include <poll.h>

#include <algorithm>
#include <optional>
#include <set>

#include "common/check.h"
#include "common/logging.h"

namespace wideserve::runtime {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr int kGrpcNotFound = 5;

std::chrono::milliseconds lease_ttl(const DiscoveryUrl& u) {
  return std::chrono::seconds(u.lease_ttl_s);
}

// One etcd call must end well within a lease's life, or a slow endpoint costs the lease.
std::chrono::milliseconds call_timeout(const DiscoveryUrl& u) {
  return std::clamp<std::chrono::milliseconds>(lease_ttl(u) / 3, 1000ms, 3000ms);
}

}  // namespace

std::vector<EtcdEndpoint> etcd_endpoints(const DiscoveryUrl& url) {
  WS_CHECK_ARG(url.kind == DiscoveryUrl::Kind::kEtcd && !url.endpoints.empty(),
               "--discovery {}: not an etcd:// URL", url.to_string());
  std::vector<EtcdEndpoint> out;
  for (const auto& e : url.endpoints) out.push_back({e.host, e.port});
  return out;
}

// ---------------------------------------------------------------------------------------------
// EtcdWatcher

EtcdWatcher::EtcdWatcher(const DiscoveryUrl& url, WatcherOptions opts, WatcherCallbacks cb)
    : url_(url),
      opts_(opts),
      cb_(std::move(cb)),
      client_(etcd_endpoints(url), call_timeout(url), wake_.fd()) {
  WS_LOG_INFO("etcd discovery: watching {}* at {}", kEtcdWorkerPrefix, url_.to_string());
  thread_ = std::thread([this] { loop(); });
  reaper_ = std::thread([this] { reap_loop(); });
}

EtcdWatcher::~EtcdWatcher() {
  stop();
}

void EtcdWatcher::stop() {
  stopping_ = true;
  wake_.signal();
  if (thread_.joinable()) thread_.join();
  if (reaper_.joinable()) reaper_.join();
}

void EtcdWatcher::reap_loop() {
  const auto ttl = lease_ttl(url_);
  const auto every = std::clamp<std::chrono::milliseconds>(ttl / 10, 100ms, 500ms);
  std::vector<Event> events;
  while (sleep_for(every)) {
    std::lock_guard<std::mutex> apply(apply_mu_);
    std::vector<std::string> expired;
    {
      std::lock_guard<std::mutex> lock(mu_);
      const auto now = Clock::now();
      for (const auto& [key, k] : workers_)
        if (k.missing_since && now - *k.missing_since >= ttl) expired.push_back(key);
    }
    for (const std::string& key : expired)
      on_delete(key,
                fmt::format("its key has been missing from etcd for the lease TTL ({} s) and it "
                            "did not re-register",
                            url_.lease_ttl_s),
                events);
    emit(events);
  }
}

std::vector<WorkerEntry> EtcdWatcher::snapshot() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<WorkerEntry> out;
  out.reserve(workers_.size());
  for (const auto& [key, k] : workers_) out.push_back(k.entry);
  return out;
}

bool EtcdWatcher::sleep_for(std::chrono::milliseconds d) {
  pollfd p{wake_.fd(), POLLIN, 0};
  poll(&p, 1, static_cast<int>(d.count()));
  return !stopping_;
}

void EtcdWatcher::loop() {
  auto backoff = 100ms;
  std::optional<Clock::time_point> down_since;
  bool warned_stale = false;
  bool ever = false;
  std::vector<Event> events;
  while (!stopping_) {
    try {
      int64_t rev = 0;
      {
        std::lock_guard<std::mutex> apply(apply_mu_);
        rev = resync(events);
        emit(events);
      }
      EtcdWatch watch(client_, kEtcdWorkerPrefix, rev + 1, wake_.fd());
      ++syncs_;
      if (!ever || down_since) {
        size_t n = snapshot().size();
        WS_LOG_INFO("etcd discovery: {}watching at {} from revision {} ({} worker(s))",
                    ever ? "again " : "", watch.peer(), rev + 1, n);
      }
      ever = true;
      down_since.reset();
      warned_stale = false;
      backoff = 100ms;
      for (;;) {
        std::vector<EtcdWatch::Event> batch = watch.next();
        std::lock_guard<std::mutex> apply(apply_mu_);
        for (EtcdWatch::Event& e : batch) {
          if (e.deleted)
            on_delete(e.kv.key, "its key was deleted (unregistered, or its lease expired)", events);
          else
            on_put(e.kv, events);
        }
        emit(events);
      }
    } catch (const std::exception& e) {
      {
        std::lock_guard<std::mutex> apply(apply_mu_);
        emit(events);
      }
      if (stopping_) break;
      const auto now = Clock::now();
      if (!down_since) down_since = now;
      uint64_t suppressed = 0;
      if (fail_log_.allow(suppressed))
        WS_LOG_WARN("etcd discovery: {}; reconnecting ({} similar suppressed)", e.what(),
                    suppressed);
      if (!warned_stale && now - *down_since > lease_ttl(url_)) {
        WS_LOG_WARN(
            "etcd discovery: no watch for more than the lease TTL ({} s): workers that died "
            "meanwhile are still routed to until etcd answers",
            url_.lease_ttl_s);
        warned_stale = true;
      }
      if (!sleep_for(backoff)) break;
      backoff = std::min<std::chrono::milliseconds>(backoff * 2, 1000ms);
    }
  }
}

int64_t EtcdWatcher::resync(std::vector<Event>& events) {
  EtcdRange r = client_.range_prefix(kEtcdWorkerPrefix);
  // Newest first: when two keys claim one endpoint, the newer registration wins.
  std::sort(r.kvs.begin(), r.kvs.end(),
            [](const EtcdKv& a, const EtcdKv& b) { return a.create_revision > b.create_revision; });
  std::set<std::string> present;
  for (const EtcdKv& kv : r.kvs) present.insert(kv.key);
  {
    // A key that vanished while the watch was down is not proof of death: a wiped or replaced
    // etcd loses every key at once while the workers live on and re-register within TTL/3. Keep
    // routing to them; the reaper removes any that stay missing for a lease TTL.
    std::lock_guard<std::mutex> lock(mu_);
    const auto now = Clock::now();
    for (auto& [key, k] : workers_)
      if (!present.count(key) && !k.missing_since) {
        k.missing_since = now;
        WS_LOG_WARN(
            "etcd discovery: worker {}'s key vanished while the watch was down; still routing to "
            "it for up to {} s unless it re-registers",
            k.entry.info.instance_id, url_.lease_ttl_s);
      }
  }
  std::erase_if(refused_, [&](const auto& kv) { return !present.count(kv.first); });
  std::erase_if(bad_, [&](const auto& kv) { return !present.count(kv.first); });
  for (const EtcdKv& kv : r.kvs) on_put(kv, events);
  return r.revision;
}

void EtcdWatcher::on_put(const EtcdKv& kv, std::vector<Event>& events) {
  if (auto rf = refused_.find(kv.key); rf != refused_.end()) {
    if (rf->second == kv.create_revision) return;  // the same registration: still refused
    refused_.erase(rf);
  }
  WorkerRecord rec;
  try {
    rec = decode_worker_record(kv.value);
    bad_.erase(kv.key);
  } catch (const std::exception& e) {
    auto [it, fresh] = bad_.try_emplace(kv.key, kv.mod_revision);
    if (fresh || it->second != kv.mod_revision)
      WS_LOG_WARN("etcd discovery: ignoring {} (revision {}): {}", kv.key, kv.mod_revision,
                  e.what());
    it->second = kv.mod_revision;
    return;
  }
  const auto now = Clock::now();
  std::string moved_from;
  std::vector<std::string> replaced;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = workers_.find(kv.key);
    if (it != workers_.end() && it->second.entry.info.endpoint == rec.info.endpoint) {
      // Load, draining, or a re-registration of the same process under a new lease.
      Known& k = it->second;
      if (k.missing_since)
        WS_LOG_INFO("etcd discovery: worker {} is back in etcd", rec.info.instance_id);
      k.missing_since.reset();
      k.entry.info = std::move(rec.info);
      k.entry.load = rec.load;
      k.entry.draining = rec.draining;
      k.entry.last_seen = now;
      k.create_revision = kv.create_revision;
      if (cb_.on_updated) events.push_back({Event::Type::kUpdated, k.entry, ""});
      return;
    }
    if (it != workers_.end()) moved_from = it->second.entry.info.endpoint;
    for (const auto& [key, k] : workers_) {
      if (key == kv.key || k.entry.info.endpoint != rec.info.endpoint) continue;
      if (k.create_revision > kv.create_revision) {
        WS_LOG_DEBUG("etcd discovery: {} ignored: {} holds {} with a newer registration", kv.key,
                     key, rec.info.endpoint);
        return;
      }
      replaced.push_back(key);
    }
  }
  if (!moved_from.empty())
    on_delete(kv.key, fmt::format("it re-registered at {} (was {})", rec.info.endpoint, moved_from),
              events);
  for (const std::string& key : replaced)
    on_delete(key, fmt::format("{} now holds its endpoint", rec.info.instance_id), events);
  // Removals first: admit may register the same instance_id again (moved endpoint).
  emit(events);
  if (cb_.admit) {
    std::string err;
    try {
      err = cb_.admit(rec.info);
    } catch (const std::exception& e) {
      err = e.what();
    }
    if (!err.empty()) {
      WS_LOG_ERROR(
          "etcd discovery: refused worker {} ({} at {}): {}; ignoring {} until it "
          "registers again",
          rec.info.instance_id, rec.info.model_name, rec.info.endpoint, err, kv.key);
      refused_[kv.key] = kv.create_revision;
      return;
    }
  }
  WorkerEntry entry{rec.info, rec.load, rec.draining, now};
  {
    std::lock_guard<std::mutex> lock(mu_);
    workers_[kv.key] = Known{entry, kv.create_revision};
  }
  events.push_back({Event::Type::kAdded, entry, ""});
  if (cb_.on_updated) events.push_back({Event::Type::kUpdated, entry, ""});
}

void EtcdWatcher::on_delete(const std::string& key, const std::string& why,
                            std::vector<Event>& events) {
  refused_.erase(key);
  bad_.erase(key);
  std::lock_guard<std::mutex> lock(mu_);
  auto it = workers_.find(key);
  if (it == workers_.end()) return;
  const WorkerInfo& w = it->second.entry.info;
  events.push_back({Event::Type::kRemoved, it->second.entry,
                    fmt::format("worker {} at {}: {}", w.instance_id, w.endpoint, why)});
  workers_.erase(it);
}

void EtcdWatcher::emit(std::vector<Event>& events) {
  for (Event& ev : events) {
    try {
      switch (ev.type) {
        case Event::Type::kAdded:
          WS_LOG_INFO("worker {} ({}) added at {}", ev.entry.info.instance_id,
                      ev.entry.info.model_name, ev.entry.info.endpoint);
          if (cb_.on_added) cb_.on_added(ev.entry.info);
          break;
        case Event::Type::kRemoved:
          WS_LOG_INFO("worker removed: {}", ev.reason);
          if (cb_.on_removed) cb_.on_removed(ev.entry.info, ev.reason);
          break;
        case Event::Type::kUpdated:
          if (cb_.on_updated) cb_.on_updated(ev.entry);
          break;
      }
    } catch (const std::exception& e) {
      WS_LOG_ERROR("etcd discovery: callback threw: {}", e.what());
    }
  }
  events.clear();
}

// ---------------------------------------------------------------------------------------------
// EtcdRegistration

EtcdRegistration::EtcdRegistration(const DiscoveryUrl& url, WorkerInfo info,
                                   std::function<WorkerLoad()> load_fn, RegistrationOptions opts)
    : url_(url),
      info_(std::move(info)),
      load_fn_(std::move(load_fn)),
      opts_(opts),
      key_(etcd_worker_key(info_.instance_id)),
      client_(etcd_endpoints(url), call_timeout(url), wake_.fd()) {
  WS_CHECK_ARG(!info_.instance_id.empty(), "worker registration without instance_id");
  WS_CHECK_ARG(url_.lease_ttl_s >= 1, "lease TTL must be >= 1 s (got {})", url_.lease_ttl_s);
  WS_CHECK_ARG(opts_.interval.count() > 0, "heartbeat interval must be positive");
  thread_ = std::thread([this] { loop(); });
}

EtcdRegistration::~EtcdRegistration() {
  stop();
}

void EtcdRegistration::set_draining(bool draining) {
  draining_ = draining;
  std::lock_guard<std::mutex> lock(mu_);
  poke_ = true;
  cv_.notify_all();
}

RegistrationStatus EtcdRegistration::status() const {
  std::lock_guard<std::mutex> lock(mu_);
  return status_;
}

void EtcdRegistration::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    cv_.notify_all();
  }
  wake_.signal();
  if (thread_.joinable()) thread_.join();
  const int64_t id = lease_id_.exchange(0);
  if (id == 0) return;
  // Unregister now rather than after the TTL; a fresh client, as ours is interrupted.
  try {
    EtcdClient c(etcd_endpoints(url_), 1000ms);
    c.lease_revoke(id);
    WS_LOG_INFO("worker {} unregistered from etcd (lease {:x} revoked)", info_.instance_id, id);
  } catch (const std::exception& e) {
    WS_LOG_WARN(
        "worker {}: could not revoke etcd lease {:x} ({}); its key goes when the lease "
        "expires within {} s",
        info_.instance_id, id, e.what(), url_.lease_ttl_s);
  }
}

bool EtcdRegistration::sleep_until(Clock::time_point t) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_until(lock, t, [this] { return poke_ || stopping_.load(); });
  return !stopping_;
}

std::string EtcdRegistration::record() {
  WorkerRecord r;
  r.info = info_;
  try {
    if (load_fn_) r.load = load_fn_();
  } catch (const std::exception& e) {
    WS_LOG_WARN("worker load for etcd failed: {}", e.what());
  }
  r.draining = draining_;
  return encode_worker_record(r);
}

void EtcdRegistration::note(bool ok, const std::string& error) {
  std::lock_guard<std::mutex> lock(mu_);
  ++status_.heartbeats_sent;
  if (ok) {
    ++status_.acks;
    status_.error.clear();
  } else {
    status_.error = error;
  }
  status_.accepted = ok && lease_id_ != 0;
}

void EtcdRegistration::log_failure(const std::string& what) {
  uint64_t suppressed = 0;
  if (fail_log_.allow(suppressed))
    WS_LOG_WARN("worker {}: {}; retrying ({} similar suppressed)", info_.instance_id, what,
                suppressed);
}

bool EtcdRegistration::register_once() {
  try {
    const int64_t id = client_.lease_grant(url_.lease_ttl_s);
    std::string value = record();
    client_.put(key_, value, id);  // on failure the fresh lease just expires
    lease_id_ = id;
    last_value_ = std::move(value);
    note(true, "");
    if (++registrations_ == 1)
      WS_LOG_INFO("worker {} registered in etcd at {} as {} (lease {:x}, TTL {} s)",
                  info_.instance_id, client_.current_endpoint(), key_, id, url_.lease_ttl_s);
    else
      WS_LOG_WARN("worker {} re-registered in etcd at {} (new lease {:x})", info_.instance_id,
                  client_.current_endpoint(), id);
    return true;
  } catch (const std::exception& e) {
    note(false, e.what());
    log_failure(fmt::format("cannot register in etcd: {}", e.what()));
    return false;
  }
}

void EtcdRegistration::loop() {
  const auto keepalive_every = std::max<std::chrono::milliseconds>(lease_ttl(url_) / 3, 100ms);
  // Load goes to etcd at most once a second: every put is a revision every watcher receives.
  const auto load_every = std::max<std::chrono::milliseconds>(opts_.interval, 1000ms);
  const auto retry = std::min<std::chrono::milliseconds>(500ms, keepalive_every);
  Clock::time_point next_keepalive{}, next_load{};
  bool put_pending = false;
  while (!stopping_) {
    auto now = Clock::now();
    if (lease_id_ == 0) {
      if (register_once()) {
        next_keepalive = now + keepalive_every;
        next_load = now + load_every;
        put_pending = false;
      } else if (!sleep_until(now + retry)) {
        break;
      }
      continue;
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (poke_) put_pending = true;
      poke_ = false;
    }
    try {
      if (now >= next_keepalive) {
        next_keepalive = now + retry;  // unless it succeeds
        const int64_t ttl = client_.lease_keepalive(lease_id_);
        if (ttl <= 0) {
          note(false, "lease lost");
          WS_LOG_WARN(
              "worker {}: etcd no longer knows lease {:x} (expired or revoked); "
              "re-registering",
              info_.instance_id, lease_id_.load());
          lease_id_ = 0;
          continue;
        }
        note(true, "");
        next_keepalive = now + keepalive_every;
      }
      if (put_pending || now >= next_load) {
        next_load = now + retry;  // unless it succeeds
        std::string value = record();
        if (put_pending || value != last_value_) {
          put_pending = true;
          client_.put(key_, value, lease_id_);
          note(true, "");
          last_value_ = std::move(value);
          put_pending = false;
        }
        next_load = now + load_every;
      }
    } catch (const EtcdError& e) {
      note(false, e.what());
      if (e.grpc_code() == kGrpcNotFound) {
        WS_LOG_WARN("worker {}: etcd lost lease {:x} ({}); re-registering", info_.instance_id,
                    lease_id_.load(), e.what());
        lease_id_ = 0;
        continue;
      }
      log_failure(e.what());
    } catch (const std::exception& e) {
      note(false, e.what());
      if (stopping_) break;
      log_failure(fmt::format("etcd unreachable: {}", e.what()));
    }
    if (!sleep_until(std::min(next_keepalive, next_load))) break;
  }
}

}  // namespace wideserve::runtime
