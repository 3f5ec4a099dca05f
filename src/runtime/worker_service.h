// A worker process's serving loop: an engine behind the request plane, registered with discovery,
// publishing its load, with a step watchdog and a graceful drain on SIGTERM/SIGINT.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "engine/engine.h"
#include "runtime/discovery.h"
#include "runtime/messages.h"
#include "runtime/request_server.h"

namespace wideserve::runtime {

// How the service runs (built from config::WorkerConfig by the CLI).
struct WorkerServiceOptions {
  std::string bind_endpoint = "tcp://0.0.0.0:0";
  std::string advertise_host = "127.0.0.1";
  std::string discovery = kDefaultDiscoveryUrl;
  int64_t heartbeat_interval_ms = 1000;
  double watchdog_timeout_s = 300.0;  // a step running longer than this kills the process
  double drain_timeout_s = 30.0;      // SIGTERM: in-flight requests get this long
};

class WorkerService {
 public:
  // `info` carries the model facts; endpoint and instance_id are filled in here.
  WorkerService(std::unique_ptr<engine::AsyncEngine> engine, WorkerInfo info,
                WorkerServiceOptions opts);
  ~WorkerService();
  // Serves until SIGINT/SIGTERM (which the caller must have blocked in every thread), then
  // drains and unregisters. Returns the exit code.
  int run();
  const WorkerInfo& info() const { return info_; }
  size_t inflight() const;

 private:
  struct Call {
    PeerRequest key;
    int32_t open = 0;
  };
  void on_generate(const PeerRequest& key, GenerateRequest req);
  void on_abort(const PeerRequest& key);
  WorkerLoad load() const;

  std::unique_ptr<engine::AsyncEngine> engine_;
  WorkerInfo info_;
  WorkerServiceOptions opts_;
  mutable std::mutex mu_;
  std::unordered_map<uint64_t, Call> calls_;          // engine id -> caller
  std::unordered_map<PeerRequest, uint64_t> by_key_;  // caller -> engine id
  std::atomic<uint64_t> next_id_{1};
  std::unique_ptr<RequestServer> server_;
  std::unique_ptr<WorkerRegistration> registration_;
};

// A process-unique worker id: host:pid:random.
std::string make_instance_id();

}  // namespace wideserve::runtime
