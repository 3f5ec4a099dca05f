// The request-plane codec as the multi-rank engine's RankWire: requests and outputs that travel
// between the nodes of one engine use the same msgpack frames as frontend <-> worker.
#pragma once

#include "engine/rank_channel.h"

namespace wideserve::runtime {

// NewRequest <-> GenerateRequest (request_id = engine id; hold_kv is not carried: PD is not
// combined with EP), RequestOutput <-> GenerateOutput.
engine::RankWire request_plane_rank_wire();

}  // namespace wideserve::runtime
