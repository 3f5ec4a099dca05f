// etcd discovery (--discovery etcd://host:port[,host:port...]): each worker puts its WorkerInfo,
// load and draining flag as JSON at /services/wideserve/workers/{instance_id} under a lease that
// it keeps alive; the frontend ranges over the prefix and watches it. A dead worker's key goes
// when its lease expires; a lost lease is re-acquired; a broken watch is resynchronised with a
// fresh range. Layout and behaviour: docs/discovery.md.
#pragma once

#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "runtime/discovery.h"
#include "runtime/etcd_client.h"
#include "runtime/etcd_record.h"
#include "runtime/zmq_util.h"

namespace wideserve::runtime {

// The etcd endpoints of a parsed etcd:// URL.
std::vector<EtcdEndpoint> etcd_endpoints(const DiscoveryUrl& url);

// Frontend side: the watch over the workers' keys, on its own thread.
class EtcdWatcher : public WorkerWatcher {
 public:
  // Returns at once; the first range and every reconnection happen on the watcher's thread.
  EtcdWatcher(const DiscoveryUrl& url, WatcherOptions opts, WatcherCallbacks cb);
  ~EtcdWatcher() override;

  std::vector<WorkerEntry> snapshot() const override;
  std::string url() const override { return url_.to_string(); }
  void stop() override;

  // Times the watch was (re)established after a fresh range (tests).
  uint64_t syncs() const { return syncs_; }

 private:
  struct Known {
    WorkerEntry entry;
    int64_t create_revision = 0;
    // Set when a resync did not find the key (etcd lost its data, or the key went while the
    // watch was down): the worker stays routable until it re-registers, or for one lease TTL.
    std::optional<std::chrono::steady_clock::time_point> missing_since;
  };
  struct Event {
    enum class Type { kAdded, kRemoved, kUpdated } type;
    WorkerEntry entry;
    std::string reason;
  };

  void loop();
  int64_t resync(std::vector<Event>& events);
  void on_put(const EtcdKv& kv, std::vector<Event>& events);
  void on_delete(const std::string& key, const std::string& reason, std::vector<Event>& events);
  void emit(std::vector<Event>& events);
  bool sleep_for(std::chrono::milliseconds d);  // false when stopping
  void reap_loop();                             // removes workers missing for a lease TTL

  DiscoveryUrl url_;
  WatcherOptions opts_;
  WatcherCallbacks cb_;
  Wakeup wake_;  // signalled by stop(); aborts etcd calls in progress
  EtcdClient client_;
  std::atomic<bool> stopping_{false};
  std::atomic<uint64_t> syncs_{0};
  mutable std::mutex mu_;
  std::map<std::string, Known> workers_;    // by key; guarded by mu_
  std::map<std::string, int64_t> refused_;  // key -> create_revision admit refused (thread only)
  std::map<std::string, int64_t> bad_;      // key -> mod_revision that did not decode (thread only)
  LogLimiter fail_log_;                     // thread only
  // Held while events are applied and emitted (watch thread and reaper), so callbacks keep the
  // order of the changes they report; also guards refused_ and bad_.
  std::mutex apply_mu_;
  std::thread thread_;
  std::thread reaper_;
};

// Worker side: the lease, the key and its keepalives, on its own thread.
class EtcdRegistration : public WorkerRegistration {
 public:
  // Returns at once; registration (and every re-registration) happens on its thread.
  EtcdRegistration(const DiscoveryUrl& url, WorkerInfo info, std::function<WorkerLoad()> load_fn,
                   RegistrationOptions opts);
  ~EtcdRegistration() override;

  void set_draining(bool draining) override;
  RegistrationStatus status() const override;
  void stop() override;

  // The lease held now (0 = none) and how many leases were granted so far (tests).
  int64_t lease_id() const { return lease_id_; }
  uint64_t registrations() const { return registrations_; }

 private:
  void loop();
  bool register_once();
  std::string record();
  void note(bool ok, const std::string& error);
  void log_failure(const std::string& what);
  bool sleep_until(std::chrono::steady_clock::time_point t);  // false when stopping

  DiscoveryUrl url_;
  WorkerInfo info_;
  std::function<WorkerLoad()> load_fn_;
  RegistrationOptions opts_;
  std::string key_;
  Wakeup wake_;  // signalled by stop(); aborts etcd calls in progress
  EtcdClient client_;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> draining_{false};
  std::atomic<int64_t> lease_id_{0};
  std::atomic<uint64_t> registrations_{0};
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool poke_ = false;          // set_draining happened; guarded by mu_
  std::string last_value_;     // what the key holds (thread only)
  LogLimiter fail_log_;        // thread only
  RegistrationStatus status_;  // guarded by mu_
  std::thread thread_;
};

}  // namespace wideserve::runtime
