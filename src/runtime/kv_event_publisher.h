// A worker rank's KV event publisher: the prefix cache's sink (kvcache::KvEventSink) that numbers
// its changes and publishes them on a ZMQ PUB socket, keeps the current block set, and answers
// state queries (resync after a subscriber saw a gap) on a ZMQ ROUTER socket.
#pragma once

#include <zmq.hpp>

#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_set>

#include "kvcache/kv_events.h"
#include "runtime/kv_events.h"
#include "runtime/zmq_util.h"

namespace wideserve::runtime {

class KvEventPublisher : public kvcache::KvEventSink {
 public:
  // Binds PUB and ROUTER on free ports of `bind_host`; endpoints are advertised with
  // `advertise_host` when bound to a wildcard.
  KvEventPublisher(const std::string& bind_host, const std::string& advertise_host,
                   int32_t dp_rank = 0);
  ~KvEventPublisher() override;
  KvEventPublisher(const KvEventPublisher&) = delete;
  KvEventPublisher& operator=(const KvEventPublisher&) = delete;

  // Stops answering queries and closes the sockets (idempotent; later events are dropped).
  void stop();

  std::string events_endpoint() const { return events_endpoint_; }
  std::string state_endpoint() const { return state_endpoint_; }
  // The current block set with the id of the last event it reflects.
  KvState state() const;

  void on_stored(std::optional<uint64_t> parent,
                 std::span<const kvcache::KvBlockHash> blocks) override;
  void on_removed(std::span<const uint64_t> hashes) override;
  void on_cleared() override;

 private:
  void publish(KvEvent e);  // under mu_
  void serve_queries();

  const int32_t dp_rank_;
  zmq::context_t ctx_{1};
  mutable std::mutex mu_;
  zmq::socket_t pub_;
  zmq::socket_t router_;
  std::string events_endpoint_, state_endpoint_;
  uint64_t last_event_id_ = 0;
  std::unordered_set<uint64_t> blocks_;
  bool stopped_ = false;
  Wakeup wake_;
  std::thread thread_;
};

}  // namespace wideserve::runtime
