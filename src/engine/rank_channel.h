// The control messages of a multi-rank engine whose ranks live in several processes ("nodes"):
// before every lockstep round, global rank 0 broadcasts a Plan (the command, and the new requests
// and aborts of every rank outside node 0); after a step, every rank of another node sends a
// Report (its outputs, whether it still has work, its stats, its prefix-cache changes) to rank 0.
// Requests and outputs are serialized by a RankWire (the worker passes the request-plane codec,
// runtime/rank_wire.h).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/engine_core.h"
#include "kvcache/kv_event_recorder.h"

namespace wideserve::engine {

// Serializers for requests and outputs that cross processes.
struct RankWire {
  std::function<std::string(const NewRequest&)> encode_request;
  std::function<NewRequest(std::string_view)> decode_request;
  std::function<std::string(const RequestOutput&)> encode_output;
  std::function<RequestOutput(std::string_view)> decode_output;
  bool complete() const {
    return encode_request && decode_request && encode_output && decode_output;
  }
};

// Lockstep commands.
enum class RankCommand : int32_t { kStep = 1, kMetrics = 2, kStop = 3, kIdle = 4 };

// Rank 0 -> all ranks, once per round.
struct RankPlan {
  RankCommand command = RankCommand::kStep;
  struct Work {
    int32_t rank = 0;  // global rank
    std::vector<NewRequest> adds;
    std::vector<uint64_t> aborts;
  };
  std::vector<Work> work;  // only ranks with something to do
};

// A rank of another node -> rank 0, after each step.
struct RankReport {
  bool has_work = false;
  EngineStats stats;  // without ep
  struct Output {
    RequestOutput output;
    bool done = false;  // the request has no sample left on that rank
  };
  std::vector<Output> outputs;
  // The rank's prefix-cache changes this step, for node 0's KV event publisher.
  std::vector<kvcache::KvCacheChange> kv_changes;
};

std::string encode_plan(const RankPlan& p, const RankWire& w);
// Throws Error(kDataLoss) on a malformed message.
RankPlan decode_plan(std::string_view data, const RankWire& w);
std::string encode_report(const RankReport& r, const RankWire& w);
RankReport decode_report(std::string_view data, const RankWire& w);

// Sums the counters of `s` into `into` (ep is left alone).
void add_stats(EngineStats& into, const EngineStats& s);

}  // namespace wideserve::engine
