// Service discovery between frontends and workers, behind interfaces: the embedded registry
// (runtime/embedded_discovery.h) or etcd (runtime/etcd_discovery.h), chosen by the --discovery
// URL's scheme. The frontend watches workers; each worker keeps a registration alive.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "runtime/messages.h"

namespace wideserve::runtime {

// The --discovery default: the frontend hosts the registry on this address.
inline constexpr const char* kDefaultDiscoveryUrl = "embedded://127.0.0.1:29400";
inline constexpr uint16_t kDefaultDiscoveryPort = 29400;
// etcd://HOST without a port means etcd's client port.
inline constexpr uint16_t kDefaultEtcdPort = 2379;
// Lease TTL of a worker's etcd registration unless the URL says ?lease_ttl_s=N.
inline constexpr int64_t kDefaultLeaseTtlS = 10;

// One host:port of a --discovery URL.
struct DiscoveryEndpoint {
  std::string host;  // without IPv6 brackets
  uint16_t port = 0;
};

// A parsed --discovery value.
struct DiscoveryUrl {
  enum class Kind { kEmbedded, kEtcd };
  Kind kind = Kind::kEmbedded;
  std::string host;  // without IPv6 brackets (etcd: the first endpoint)
  uint16_t port = kDefaultDiscoveryPort;
  std::vector<DiscoveryEndpoint> endpoints;  // etcd: every endpoint, in failover order
  int64_t lease_ttl_s = kDefaultLeaseTtlS;   // etcd: ?lease_ttl_s=N

  // "tcp://host:port" (brackets restored for IPv6).
  std::string tcp_endpoint() const;
  // "embedded://host:port", or "etcd://h1:p1,h2:p2" (with "?lease_ttl_s=N" when not default).
  std::string to_string() const;
};

// Parses `embedded://host[:port]`, a bare `host:port`, or
// `etcd://host[:port][,host[:port]...][?lease_ttl_s=N]` (port 2379 by default). Throws
// Error(kInvalidArgument) naming --discovery for anything else.
DiscoveryUrl parse_discovery_url(const std::string& url);

// What the frontend knows about one live worker.
struct WorkerEntry {
  WorkerInfo info;
  WorkerLoad load;
  bool draining = false;
  std::chrono::steady_clock::time_point last_seen;
};

// Knobs of a watcher.
struct WatcherOptions {
  std::chrono::milliseconds ttl{3000};  // embedded: a worker silent this long is removed
};

// Watcher events, called on the watcher's thread, one at a time; must not block.
struct WatcherCallbacks {
  std::function<void(const WorkerInfo&)> on_added;
  std::function<void(const WorkerInfo& info, const std::string& reason)> on_removed;
  std::function<void(const WorkerEntry&)> on_updated;  // optional: every heartbeat
  // Optional admission check for a new worker: a non-empty string refuses it with that error
  // (embedded: sent back in HeartbeatAck, the worker logs it and keeps trying; etcd: logged by
  // the frontend, the key ignored until the worker registers anew).
  std::function<std::string(const WorkerInfo&)> admit;
};

// Frontend side: tracks which workers are alive.
class WorkerWatcher {
 public:
  virtual ~WorkerWatcher() = default;
  // Workers alive now.
  virtual std::vector<WorkerEntry> snapshot() const = 0;
  // The URL workers should use to reach this registry (port 0 resolved).
  virtual std::string url() const = 0;
  // Stops watching; no callback runs after it returns (idempotent; the destructor calls it).
  virtual void stop() = 0;
};

// Creates the watcher for a --discovery URL (embedded: binds the registry at host:port; etcd:
// watches the workers' keys, reconnecting on its own).
std::unique_ptr<WorkerWatcher> make_worker_watcher(const std::string& url, WatcherOptions opts,
                                                   WatcherCallbacks cb);

// Knobs of a registration.
struct RegistrationOptions {
  std::chrono::milliseconds interval{1000};      // heartbeat period (etcd: load updates, >= 1 s)
  std::chrono::milliseconds warn_no_ack{10000};  // warn once when no ack came for this long
};

// What a worker knows about its registration.
struct RegistrationStatus {
  uint64_t heartbeats_sent = 0;  // etcd: requests sent (grant, put, keepalive)
  uint64_t acks = 0;             // acks received (etcd: successful answers)
  bool accepted =
      false;          // the latest ack accepted the worker (etcd: registered under a live lease)
  std::string error;  // the latest refusal's reason
};

// Worker side: keeps the worker registered while it lives.
class WorkerRegistration {
 public:
  virtual ~WorkerRegistration() = default;
  // Draining workers stay registered but get no new requests; sent with the next heartbeat,
  // which goes out at once.
  virtual void set_draining(bool draining) = 0;
  virtual RegistrationStatus status() const = 0;
  // Unregisters (best effort) and stops heartbeats (idempotent; the destructor calls it).
  virtual void stop() = 0;
};

// Creates the registration for a --discovery URL; load_fn is called on the registration's
// thread before each heartbeat.
std::unique_ptr<WorkerRegistration> make_worker_registration(const std::string& url,
                                                             WorkerInfo info,
                                                             std::function<WorkerLoad()> load_fn,
                                                             RegistrationOptions opts = {});

}  // namespace wideserve::runtime
