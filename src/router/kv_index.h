// The KV-aware router's view of every worker rank's prefix cache, fed by KV events
// (runtime/kv_events.h). Block hashes are chained (kvcache/block_hash.h), so one hash names a
// whole prefix: a rank's set of block hashes is its radix tree with every node keyed by its path,
// and a request's cached prefix on a rank is the run of its leading block hashes in that set.
// Events must arrive in event-id order per rank; anything else (a gap, a Stored block whose parent
// is unknown, an event for a rank never synchronised) asks the caller to resync the rank from the
// worker's full state (reset()).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <shared_mutex>
#include <span>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "runtime/kv_events.h"

namespace wideserve::router {

// One data-parallel rank of one worker process.
struct WorkerRank {
  std::string instance_id;
  int32_t dp_rank = 0;
  bool operator==(const WorkerRank&) const = default;
};

struct WorkerRankHash {
  size_t operator()(const WorkerRank& w) const noexcept {
    return std::hash<std::string>{}(w.instance_id) ^ (static_cast<size_t>(w.dp_rank) * 0x9e3779b9);
  }
};

// What apply() did with an event.
enum class ApplyResult {
  kApplied,
  kStale,  // id at or below the last applied one: ignored
  kGap,    // not applied: the rank needs a resync (reset()) first
};

// Thread-safe.
class KvIndex {
 public:
  ApplyResult apply(const WorkerRank& w, const runtime::KvEvent& e);
  // Replaces the rank's blocks with a worker's full state (resync, or first sight).
  void reset(const WorkerRank& w, const runtime::KvState& s);
  // Forgets every rank of a worker process.
  void remove_worker(const std::string& instance_id);

  // Per known rank: how many leading `hashes` it holds.
  std::unordered_map<WorkerRank, int64_t, WorkerRankHash> overlap(
      std::span<const uint64_t> hashes) const;
  // Leading `hashes` held by one rank (0 when unknown).
  int64_t overlap(const WorkerRank& w, std::span<const uint64_t> hashes) const;

  bool known(const WorkerRank& w) const;
  int64_t num_blocks(const WorkerRank& w) const;  // 0 when unknown
  std::optional<uint64_t> last_event_id(const WorkerRank& w) const;
  std::vector<WorkerRank> ranks() const;

 private:
  struct Rank {
    uint64_t last_event_id = 0;
    std::unordered_set<uint64_t> blocks;
  };
  static int64_t leading(const Rank& r, std::span<const uint64_t> hashes);

  mutable std::shared_mutex mu_;
  std::unordered_map<WorkerRank, Rank, WorkerRankHash> ranks_;
};

}  // namespace wideserve::router
