// Prometheus series of wide-EP workers, from the EP figures in their load reports
// (runtime::WorkerLoad::ep): per-layer expert load imbalance and dispatch volume.
#pragma once

#include <string>

#include "engine/engine_core.h"
#include "frontend/metrics.h"

namespace wideserve::frontend {

// Sets the series of one worker (nothing when ep.ranks == 0):
//   wideserve_ep_ranks{worker,model}                          gauge
//   wideserve_ep_expert_load_imbalance{worker,model,layer}    gauge, max/mean over ranks (>= 1)
//   wideserve_ep_forwards_total{worker,model}                 counter
//   wideserve_ep_dispatched_tokens_total{worker,model}        counter (token copies, all ranks)
//   wideserve_ep_moved_bytes_total{worker,model}              counter (dispatch + combine)
//   wideserve_ep_rebalances_total{worker,model}               counter
void export_ep_metrics(MetricsRegistry& m, const std::string& worker, const std::string& model,
                       const engine::EpStats& ep);
// Drops a departed worker's series.
void remove_ep_metrics(MetricsRegistry& m, const std::string& worker);

}  // namespace wideserve::frontend
