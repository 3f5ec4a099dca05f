// The KV transfer agent of a disaggregated engine, made for its KV pool: the backend asked for,
// except that a GPU pool always goes through the tcp agent, which stages it through host memory
// (the ucx agent registers host memory only), and the pool registered as a peer may write it.
#pragma once

#include <memory>

#include "disagg/disagg_options.h"
#include "engine/model_runner.h"
#include "transfer/transfer_agent.h"

namespace wideserve::disagg {

// An agent named opts.agent_name with `kv`'s pool registered (kCuda when kv.device_copy is set).
std::unique_ptr<transfer::TransferAgent> make_kv_agent(const DisaggOptions& opts,
                                                       const engine::KvBufferInfo& kv);

}  // namespace wideserve::disagg
