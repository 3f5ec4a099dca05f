// Chooses the worker for a request among the live workers serving its model (round-robin or
// random, as Dynamo's router modes; the KV-aware mode comes with the cluster runtime issue).
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <random>
#include <span>
#include <string>
#include <string_view>

#include "runtime/messages.h"

namespace wideserve::router {

// How a worker is chosen.
enum class RouterMode { kRoundRobin, kRandom };

// "round-robin" | "random" (also "round_robin"); anything else throws naming --router-mode.
RouterMode parse_router_mode(std::string_view s);

// One routable worker (data only).
struct Candidate {
  std::string instance_id;
  std::string endpoint;
  runtime::WorkerLoad load;
  runtime::WorkerRole role = runtime::WorkerRole::kAggregated;
  std::string bootstrap_host;  // prefill workers: where decode engines fetch the KV from
  int32_t bootstrap_port = 0;
};

// Thread-safe selector.
class WorkerRouter {
 public:
  explicit WorkerRouter(RouterMode mode, uint64_t seed = std::random_device{}());
  // Index of the chosen candidate; candidates must be non-empty and in a stable order (the
  // caller sorts them by instance id) so that round-robin visits each in turn.
  size_t pick(std::span<const Candidate> candidates);
  RouterMode mode() const { return mode_; }

 private:
  RouterMode mode_;
  std::atomic<uint64_t> next_{0};
  std::mutex mu_;
  std::mt19937_64 rng_;
};

}  // namespace wideserve::router
