// Frontend side of the KV event plane: one thread subscribed (ZMQ SUB) to every KV-publishing
// worker, applying their events to a KvIndex in id order, per DP rank. A rank seen for the first
// time, or whose events show a gap, is resynchronised: a state query to the worker (ZMQ DEALER to
// its state endpoint) returns its full block set at some event id; events that arrive meanwhile are
// buffered and those newer than the state are applied on top.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "router/kv_index.h"
#include "runtime/zmq_util.h"

namespace wideserve::router {

// Counters of one worker's event stream (data only).
struct KvSubscriberStats {
  uint64_t events = 0;   // applied
  uint64_t resyncs = 0;  // state answers installed (the first sync included)
  uint64_t gaps = 0;     // gaps detected
};

class KvEventSubscriber {
 public:
  explicit KvEventSubscriber(std::shared_ptr<KvIndex> index);
  ~KvEventSubscriber();
  KvEventSubscriber(const KvEventSubscriber&) = delete;
  KvEventSubscriber& operator=(const KvEventSubscriber&) = delete;

  // Starts following a worker's DP ranks 0..dp_size-1 (no-op without endpoints); a known
  // instance id is re-followed.
  void add_worker(const std::string& instance_id, const std::string& events_endpoint,
                  const std::string& state_endpoint, int32_t dp_size = 1);
  // Stops following it and drops its index entries (on the subscriber thread, soon after).
  void remove_worker(const std::string& instance_id);
  KvSubscriberStats stats(const std::string& instance_id) const;
  // Stops the thread (idempotent; the destructor calls it).
  void stop();

 private:
  struct Worker;
  struct Command {
    bool add = false;
    std::string id, events, state;
    int32_t dp_size = 1;
  };
  void loop();
  void handle_event(Worker& w, const std::string& frame);
  void handle_state(Worker& w, const std::string& frame);
  void request_state(Worker& w, int32_t dp_rank);

  std::shared_ptr<KvIndex> index_;
  zmq::context_t ctx_{1};
  mutable std::mutex mu_;
  std::vector<Command> commands_;
  std::unordered_map<std::string, KvSubscriberStats> stats_;
  bool stopping_ = false;
  runtime::Wakeup wake_;
  std::thread thread_;
};

}  // namespace wideserve::router
