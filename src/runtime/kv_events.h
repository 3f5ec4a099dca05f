// KV events on the event plane (Dynamo's KvCacheEvent): what a worker's prefix cache stored,
// removed or cleared, numbered by increasing event ids so that a subscriber sees gaps; and the
// state query a subscriber sends to resynchronise (the worker's full block set at an event id).
//
// Wire (msgpack, each a single ZMQ frame):
//   event:       [kKvWireVersion, event_id, dp_rank, kind, parent_hash|nil, [[hash,
//   tokens_hash]...],
//                 [removed_hash...]]
//   state query: [kKvWireVersion, dp_rank]
//   state:       [kKvWireVersion, last_event_id, dp_rank, [block_hash...]]
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kvcache/kv_events.h"

namespace wideserve::runtime {

// Bumped on any incompatible change of the frames above.
inline constexpr uint32_t kKvWireVersion = 1;

enum class KvEventKind : uint8_t { kStored = 0, kRemoved = 1, kCleared = 2 };

// One change of one worker rank's cache (data only). Event ids start at 1 and increase by 1.
struct KvEvent {
  uint64_t event_id = 0;
  int32_t dp_rank = 0;
  KvEventKind kind = KvEventKind::kStored;
  std::optional<uint64_t> parent_hash;       // kStored: the block the new ones extend
  std::vector<kvcache::KvBlockHash> blocks;  // kStored
  std::vector<uint64_t> removed;             // kRemoved
};

// A rank's whole cache as of `last_event_id` (the answer to a state query).
struct KvState {
  uint64_t last_event_id = 0;
  int32_t dp_rank = 0;
  std::vector<uint64_t> blocks;
};

std::string encode_kv_event(const KvEvent& e);
// Throws Error(kDataLoss) on anything malformed or another wire version.
KvEvent decode_kv_event(std::string_view frame);
std::string encode_kv_state_query(int32_t dp_rank);
int32_t decode_kv_state_query(std::string_view frame);
std::string encode_kv_state(const KvState& s);
KvState decode_kv_state(std::string_view frame);

}  // namespace wideserve::runtime
