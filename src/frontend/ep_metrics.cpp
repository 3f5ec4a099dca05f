#include "frontend/ep_metrics.h"

#include <array>

namespace wideserve::frontend {
namespace {

const std::vector<std::string> kNames = {"worker", "model"};
const std::vector<std::string> kLayerNames = {"worker", "model", "layer"};
constexpr const char* kImbalance = "wideserve_ep_expert_load_imbalance";
constexpr const char* kRanks = "wideserve_ep_ranks";
constexpr const char* kForwards = "wideserve_ep_forwards_total";
constexpr const char* kDispatched = "wideserve_ep_dispatched_tokens_total";
constexpr const char* kBytes = "wideserve_ep_moved_bytes_total";
constexpr const char* kRebalances = "wideserve_ep_rebalances_total";

}  // namespace

void export_ep_metrics(MetricsRegistry& m, const std::string& worker, const std::string& model,
                       const engine::EpStats& ep) {
  if (ep.ranks <= 0) return;
  const Labels l = {worker, model};
  m.gauge(kRanks, "Expert-parallel ranks of the worker", kNames, l).set(ep.ranks);
  for (size_t i = 0; i < ep.layer_imbalance.size() && i < ep.layers.size(); ++i)
    m.gauge(kImbalance,
            "Expert load imbalance of an MoE layer: max/mean over ranks of the token-slots each "
            "rank computed (1 = balanced), latest window",
            kLayerNames, {worker, model, std::to_string(ep.layers[i])})
        .set(ep.layer_imbalance[i]);
  m.counter(kForwards, "Forward rounds of the expert-parallel ranks (lockstep steps)", kNames, l)
      .advance_to(static_cast<double>(ep.forwards));
  m.counter(kDispatched, "Token copies dispatched to expert ranks, all ranks and MoE layers",
            kNames, l)
      .advance_to(static_cast<double>(ep.tokens_dispatched));
  m.counter(kBytes, "Bytes moved by EP dispatch and combine, all ranks", kNames, l)
      .advance_to(static_cast<double>(ep.bytes_moved));
  m.counter(kRebalances, "Online expert rebalances (EPLB)", kNames, l)
      .advance_to(static_cast<double>(ep.rebalances));
}

void remove_ep_metrics(MetricsRegistry& m, const std::string& worker) {
  for (const char* name : {kImbalance, kRanks, kForwards, kDispatched, kBytes, kRebalances})
    m.remove_series(name, {worker});
}

}  // namespace wideserve::frontend
