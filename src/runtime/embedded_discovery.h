// Embedded discovery: the frontend hosts the worker registry on a ROUTER socket; workers send
// full-info heartbeats to it over a DEALER. No external service; a restarted frontend relearns
// every worker from the next heartbeats.
#pragma once

#include <zmq.hpp>

#include <atomic>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "runtime/discovery.h"
#include "runtime/zmq_util.h"

namespace wideserve::runtime {

// Frontend side: the registry.
class EmbeddedRegistry : public WorkerWatcher {
 public:
  // Binds at once; throws Error(kUnavailable) when the address is taken.
  EmbeddedRegistry(const DiscoveryUrl& url, WatcherOptions opts, WatcherCallbacks cb);
  ~EmbeddedRegistry() override;

  std::vector<WorkerEntry> snapshot() const override;
  std::string url() const override { return url_.to_string(); }
  void stop() override;

 private:
  struct Added {
    WorkerInfo info;
  };
  struct Removed {
    WorkerInfo info;
    std::string reason;
  };
  struct Updated {
    WorkerEntry entry;
  };
  using Event = std::variant<Added, Removed, Updated>;

  void loop();
  void receive_ready();
  void on_heartbeat(const std::string& peer, Heartbeat hb);
  void on_unregister(const Unregister& u);
  void expire();
  void reply(const std::string& peer, const HeartbeatAck& ack);
  void emit(std::vector<Event>& events);
  void log_dropped(const std::string& why);

  DiscoveryUrl url_;
  WatcherOptions opts_;
  WatcherCallbacks cb_;
  zmq::context_t ctx_{1};
  zmq::socket_t sock_;
  Wakeup wake_;
  std::atomic<bool> stopping_{false};
  mutable std::mutex mu_;
  std::map<std::string, WorkerEntry> workers_;  // by instance_id; guarded by mu_
  LogLimiter drop_log_;
  std::thread thread_;
};

// Worker side: heartbeats to the registry on its own thread.
class EmbeddedRegistration : public WorkerRegistration {
 public:
  EmbeddedRegistration(const DiscoveryUrl& url, WorkerInfo info,
                       std::function<WorkerLoad()> load_fn, RegistrationOptions opts);
  ~EmbeddedRegistration() override;

  void set_draining(bool draining) override;
  RegistrationStatus status() const override;
  void stop() override;

 private:
  void loop();
  void send_heartbeat();
  void on_ack(const HeartbeatAck& ack);

  DiscoveryUrl url_;
  WorkerInfo info_;
  std::function<WorkerLoad()> load_fn_;
  RegistrationOptions opts_;
  zmq::context_t ctx_{1};
  zmq::socket_t sock_;
  Wakeup wake_;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> draining_{false};
  mutable std::mutex mu_;
  RegistrationStatus status_;  // guarded by mu_
  std::thread thread_;
};

}  // namespace wideserve::runtime
