// A worker's KV event publisher: one prefix-cache sink (kvcache::KvEventSink) per engine rank of
// the process, each numbering its changes; all are published on one ZMQ PUB socket (events carry
// their dp_rank). It keeps every rank's current block set and answers state queries (resync
// after a subscriber saw a gap) on a ZMQ ROUTER socket.
#pragma once

#include <zmq.hpp>

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include "kvcache/kv_events.h"
#include "runtime/kv_events.h"
#include "runtime/zmq_util.h"

namespace wideserve::runtime {

class KvEventPublisher {
 public:
  // Binds PUB and ROUTER on free ports of `bind_host`; endpoints are advertised with
  // `advertise_host` when bound to a wildcard. `dp_ranks`: the ranks whose caches report here
  // (one per engine rank of this process); each has its own event ids.
  KvEventPublisher(const std::string& bind_host, const std::string& advertise_host,
                   std::vector<int32_t> dp_ranks = {0});
  ~KvEventPublisher();
  KvEventPublisher(const KvEventPublisher&) = delete;
  KvEventPublisher& operator=(const KvEventPublisher&) = delete;

  // Stops answering queries and closes the sockets (idempotent; later events are dropped).
  void stop();

  std::string events_endpoint() const { return events_endpoint_; }
  std::string state_endpoint() const { return state_endpoint_; }
  // The prefix-cache sink of one of `dp_ranks` (the publisher must outlive its users).
  std::shared_ptr<kvcache::KvEventSink> sink(int32_t dp_rank);
  // A rank's current block set with the id of the last event it reflects; a rank not published
  // here is empty at id 0 (its cache lives in another process).
  KvState state(int32_t dp_rank = 0) const;

 private:
  class RankSink;
  struct Rank {
    uint64_t last_event_id = 0;
    std::unordered_set<uint64_t> blocks;
  };
  void publish(int32_t dp_rank, KvEvent e);  // under mu_
  Rank& rank(int32_t dp_rank);               // under mu_; throws for a rank not published here
  void serve_queries();

  zmq::context_t ctx_{1};
  mutable std::mutex mu_;
  zmq::socket_t pub_;
  zmq::socket_t router_;
  std::string events_endpoint_, state_endpoint_;
  std::map<int32_t, Rank> ranks_;
  bool stopped_ = false;
  Wakeup wake_;
  std::thread thread_;
};

}  // namespace wideserve::runtime
