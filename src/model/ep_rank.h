// Running a rank's share of an expert-parallel computation outside the engine (CLI, tests): a
// rank does its own forwards, then keeps joining idle forwards until every rank is done, so that
// the MoE exchanges of busy ranks always have all peers.
#pragma once

#include <functional>

#include "kvcache/mla_kv_storage.h"
#include "model/deepseek_model.h"
#include "model/ep_moe.h"

namespace wideserve::model {

// Joins empty forwards (rows = 0) while any other rank is still active. Collective.
void ep_drain(const DeepseekModel& model, EpMoe& ep, kvcache::MlaKvStorage& kv);

// Runs `work` (which calls model.forward with ForwardOptions::ep = &ep any number of times;
// may be empty), then ep_drain. Collective.
void ep_run_rank(const DeepseekModel& model, EpMoe& ep, kvcache::MlaKvStorage& kv,
                 const std::function<void()>& work);

}  // namespace wideserve::model
