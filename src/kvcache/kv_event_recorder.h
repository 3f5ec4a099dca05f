// Cache changes kept as data, for a rank whose cache lives in another process than the worker's
// KV event publisher: the rank records them, ships them with its step report, and node 0 replays
// them into the publisher's sink for that rank.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <span>
#include <vector>

#include "kvcache/kv_events.h"

namespace wideserve::kvcache {

// One change of a prefix cache (data only), as a KvEventSink received it.
struct KvCacheChange {
  enum class Kind : uint8_t { kStored = 0, kRemoved = 1, kCleared = 2 };
  Kind kind = Kind::kStored;
  std::optional<uint64_t> parent;   // kStored
  std::vector<KvBlockHash> blocks;  // kStored
  std::vector<uint64_t> removed;    // kRemoved
};

// A sink that keeps every change until taken.
class KvEventRecorder : public KvEventSink {
 public:
  void on_stored(std::optional<uint64_t> parent, std::span<const KvBlockHash> blocks) override;
  void on_removed(std::span<const uint64_t> hashes) override;
  void on_cleared() override;
  // The changes since the last take, oldest first.
  std::vector<KvCacheChange> take();

 private:
  std::mutex mu_;
  std::vector<KvCacheChange> changes_;
};

// Feeds `changes` to `sink` in order.
void replay(std::span<const KvCacheChange> changes, KvEventSink& sink);

}  // namespace wideserve::kvcache
