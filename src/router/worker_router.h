// Chooses the worker for a request among the live workers serving its model: round-robin, random
// or KV-aware (Dynamo's router modes; docs/kv_routing.md; on a multi-rank worker KV mode picks the
// DP rank too, each rank having its own cache), tracks the blocks of the requests it assigned
// (the load term of the KV cost and of the busy check), and says when every worker is busy
// (--busy-threshold).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>

#include "router/kv_index.h"
#include "runtime/messages.h"

namespace wideserve::router {

// How a worker is chosen.
enum class RouterMode { kRoundRobin, kRandom, kKv };

// "round-robin" | "random" | "kv" (also "round_robin"); anything else throws naming --router-mode.
RouterMode parse_router_mode(std::string_view s);
// The flag spelling of a mode.
const char* router_mode_name(RouterMode m);

// One routable worker (data only).
struct Candidate {
  std::string instance_id;
  std::string endpoint;
  runtime::WorkerLoad load;
  runtime::WorkerRole role = runtime::WorkerRole::kAggregated;
  std::string bootstrap_host;  // prefill workers: where decode engines fetch the KV from
  int32_t bootstrap_port = 0;
  int64_t page_size = 0;  // KV block size (KV routing); 0 = unknown
  int32_t dp_size = 1;    // data-parallel ranks, each with its own cache (KV routing picks one)
};

// Router settings (from the frontend's flags).
struct RouterOptions {
  RouterMode mode = RouterMode::kRoundRobin;
  double prefill_load_scale = 4.0;          // --router-prefill-load-scale
  double temperature = 0.0;                 // --router-temperature
  std::optional<double> busy_threshold;     // --busy-threshold: KV usage fraction
  std::optional<int64_t> busy_queue_limit;  // --busy-queue-limit: waiting requests
};

// Blocks and requests the router assigned to each worker (and DP rank) still in flight.
class LoadTracker {
 public:
  struct Load {
    int64_t blocks = 0;
    int64_t requests = 0;
  };
  // `w.dp_rank` < 0: the worker chooses the rank; counted for the worker only.
  void add(const WorkerRank& w, int64_t blocks);
  void remove(const WorkerRank& w, int64_t blocks);
  Load get(const std::string& worker) const;
  Load get(const WorkerRank& w) const;
  // Requests ever assigned to the worker / to one of its ranks (for metrics).
  int64_t total(const std::string& worker) const;
  int64_t total(const WorkerRank& w) const;

 private:
  template <typename K, typename H>
  struct Counts {
    std::unordered_map<K, Load, H> loads;
    std::unordered_map<K, int64_t, H> totals;
    void add(const K& k, int64_t blocks);
    void remove(const K& k, int64_t blocks);
  };
  mutable std::mutex mu_;
  Counts<std::string, std::hash<std::string>> workers_;
  Counts<WorkerRank, WorkerRankHash> ranks_;
};

// One request's claim on a worker: counted in the worker's load until released or destroyed.
class Assignment {
 public:
  Assignment() = default;
  Assignment(std::shared_ptr<LoadTracker> tracker, size_t index, WorkerRank target, int64_t blocks,
             int64_t overlap_blocks);
  ~Assignment() { release(); }
  Assignment(Assignment&& o) noexcept { *this = std::move(o); }
  Assignment& operator=(Assignment&& o) noexcept;
  Assignment(const Assignment&) = delete;
  Assignment& operator=(const Assignment&) = delete;

  size_t index() const { return index_; }  // into the candidates passed to route()
  const std::string& worker() const { return target_.instance_id; }
  // The DP rank chosen on a multi-rank worker (KV mode), else -1 (the worker chooses).
  int32_t dp_rank() const { return target_.dp_rank; }
  int64_t blocks() const { return blocks_; }
  int64_t overlap_blocks() const { return overlap_blocks_; }  // KV mode: cached there (index)
  // Stops counting this request in the worker's load (idempotent).
  void release();

 private:
  std::shared_ptr<LoadTracker> tracker_;
  size_t index_ = 0;
  WorkerRank target_;
  int64_t blocks_ = 0;
  int64_t overlap_blocks_ = 0;
};

// Thread-safe selector.
class WorkerRouter {
 public:
  explicit WorkerRouter(RouterMode mode, uint64_t seed = std::random_device{}());
  // `index` is the KV index the event subscriber fills (needed for RouterMode::kKv).
  WorkerRouter(RouterOptions opts, std::shared_ptr<const KvIndex> index,
               uint64_t seed = std::random_device{}());

  // Index of the chosen candidate, untracked (round-robin or random; kv mode: random).
  // Candidates must be non-empty and in a stable order (the caller sorts them by instance id)
  // so that round-robin visits each in turn.
  size_t pick(std::span<const Candidate> candidates);
  // Chooses a candidate for a prompt and counts the prompt's blocks in its load until the
  // returned assignment is released or destroyed.
  Assignment route(std::span<const Candidate> candidates, std::span<const int32_t> tokens);

  // --busy-threshold / --busy-queue-limit: the worker's KV usage (the larger of its reported
  // active pages and the blocks routed to it) over the threshold, or its queue over the limit.
  bool is_busy(const Candidate& c) const;
  // True only when limits are set and every candidate is busy (an empty list is not busy).
  bool all_busy(std::span<const Candidate> candidates) const;

  RouterMode mode() const { return opts_.mode; }
  const RouterOptions& options() const { return opts_; }
  LoadTracker::Load tracked(const std::string& worker) const { return tracker_->get(worker); }
  int64_t routed_total(const std::string& worker) const { return tracker_->total(worker); }
  int64_t routed_total(const WorkerRank& w) const { return tracker_->total(w); }

 private:
  // The cheapest (candidate, DP rank) by the KV cost; the rank is -1 for one-rank workers.
  WorkerRank pick_kv(std::span<const Candidate> candidates, std::span<const int32_t> tokens,
                     size_t* index_out, int64_t* overlap_out);

  RouterOptions opts_;
  std::shared_ptr<const KvIndex> index_;
  std::shared_ptr<LoadTracker> tracker_ = std::make_shared<LoadTracker>();
  std::atomic<uint64_t> next_{0};
  std::mutex mu_;
  std::mt19937_64 rng_;
};

}  // namespace wideserve::router
