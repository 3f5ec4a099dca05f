// What a prefix cache reports as its content changes, for KV-aware routing (Dynamo's KV events):
// blocks stored under a parent, blocks removed, everything cleared. Hashes as in block_hash.h.
#pragma once

#include <cstdint>
#include <optional>
#include <span>

namespace wideserve::kvcache {

// One stored block: its chained hash and its local (tokens-only) hash.
struct KvBlockHash {
  uint64_t hash = 0;
  uint64_t tokens_hash = 0;
};

// Receives a cache's changes, on the thread that changes the cache; must not block for long.
class KvEventSink {
 public:
  virtual ~KvEventSink() = default;
  // `blocks` extend the prefix ending at block `parent` (none: they start at the first block).
  virtual void on_stored(std::optional<uint64_t> parent, std::span<const KvBlockHash> blocks) = 0;
  // These blocks left the cache (leaves first, so no stored block is left without its parent).
  virtual void on_removed(std::span<const uint64_t> hashes) = 0;
  // Every block left the cache.
  virtual void on_cleared() = 0;
};

}  // namespace wideserve::kvcache
