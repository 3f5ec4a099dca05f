#include "moe/expert_placement.h"

#include <nlohmann/json.hpp>

#include <fstream>

#include "common/check.h"

namespace wideserve::moe {

ExpertPlacement ExpertPlacement::from_phy2log(std::vector<std::vector<int32_t>> phy2log,
                                              int32_t num_logical, int32_t num_ranks,
                                              const std::string& what) {
  WS_CHECK_ARG(num_ranks >= 1 && num_logical >= 1, "{}: {} experts over {} ranks", what,
               num_logical, num_ranks);
  ExpertPlacement p;
  p.num_logical = num_logical;
  p.num_ranks = num_ranks;
  p.num_physical = phy2log.empty() ? num_logical : static_cast<int32_t>(phy2log[0].size());
  WS_CHECK_ARG(p.num_physical >= num_logical, "{}: {} physical experts for {} logical experts",
               what, p.num_physical, num_logical);
  WS_CHECK_ARG(p.num_physical % num_ranks == 0,
               "{}: {} physical experts (logical + --ep-num-redundant-experts) are not divisible "
               "by {} ranks",
               what, p.num_physical, num_ranks);
  p.log2phy.resize(phy2log.size());
  for (size_t l = 0; l < phy2log.size(); ++l) {
    WS_CHECK_ARG(static_cast<int32_t>(phy2log[l].size()) == p.num_physical,
                 "{}: layer {} has {} physical experts, layer 0 has {}", what, l, phy2log[l].size(),
                 p.num_physical);
    p.log2phy[l].resize(num_logical);
    for (int32_t s = 0; s < p.num_physical; ++s) {
      const int32_t e = phy2log[l][s];
      WS_CHECK_ARG(e >= 0 && e < num_logical, "{}: layer {} slot {}: expert {} outside [0, {})",
                   what, l, s, e, num_logical);
      p.log2phy[l][e].push_back(s);
    }
    for (int32_t e = 0; e < num_logical; ++e)
      WS_CHECK_ARG(!p.log2phy[l][e].empty(), "{}: layer {}: expert {} has no replica", what, l, e);
  }
  p.phy2log = std::move(phy2log);
  return p;
}

ExpertPlacement trivial_placement(int32_t layers, int32_t num_logical, int32_t num_physical,
                                  int32_t num_ranks) {
  std::vector<std::vector<int32_t>> m(layers, std::vector<int32_t>(num_physical));
  for (auto& row : m)
    for (int32_t s = 0; s < num_physical; ++s) row[s] = s % num_logical;
  return ExpertPlacement::from_phy2log(std::move(m), num_logical, num_ranks,
                                       "--init-expert-location trivial");
}

ExpertPlacement load_placement(const std::string& path, int32_t layers, int32_t num_logical,
                               int32_t num_physical, int32_t num_ranks) {
  const std::string what = "--init-expert-location " + path;
  std::ifstream f(path);
  WS_CHECK_CODE(kNotFound, f.good(), "{}: cannot read the file", what);
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(f);
  } catch (const std::exception& e) {
    WS_THROW(kInvalidArgument, "{}: not JSON: {}", what, e.what());
  }
  if (j.is_object()) {
    WS_CHECK_ARG(j.contains("phy2log"), "{}: no \"phy2log\" field", what);
    j = j["phy2log"];
  }
  std::vector<std::vector<int32_t>> m;
  try {
    m = j.get<std::vector<std::vector<int32_t>>>();
  } catch (const std::exception&) {
    WS_THROW(kInvalidArgument, "{}: phy2log must be [[int, ...] per MoE layer]", what);
  }
  WS_CHECK_ARG(static_cast<int32_t>(m.size()) == layers,
               "{}: {} layers, the model has {} MoE layers", what, m.size(), layers);
  for (const auto& row : m)
    WS_CHECK_ARG(static_cast<int32_t>(row.size()) == num_physical,
                 "{}: {} physical experts per layer, expected {} (experts + redundant)", what,
                 row.size(), num_physical);
  return ExpertPlacement::from_phy2log(std::move(m), num_logical, num_ranks, what);
}

ExpertPlacement eplb_placement(const std::vector<std::vector<double>>& loads, int32_t num_physical,
                               int32_t num_ranks, int32_t num_nodes, int32_t num_groups,
                               EplbAlgorithm algorithm) {
  WS_CHECK_ARG(!loads.empty(), "eplb: no layers");
  const int32_t E = static_cast<int32_t>(loads[0].size());
  // The hierarchical policy needs groups divisible by nodes; otherwise EPLB falls back itself
  // (kDeepseek), but the explicit hierarchical choice must satisfy it.
  if (num_groups < 1 || E % num_groups != 0) num_groups = 1;
  EplbResult r =
      rebalance_experts(loads, num_physical, num_groups, num_nodes, num_ranks, algorithm);
  std::vector<std::vector<int32_t>> m;
  for (const auto& row : r.phy2log) m.emplace_back(row.begin(), row.end());
  return ExpertPlacement::from_phy2log(std::move(m), E, num_ranks, "eplb");
}

DispatchAlgorithm parse_dispatch_algorithm(const std::string& s) {
  if (s.empty() || s == "static") return DispatchAlgorithm::kStatic;
  if (s == "dynamic") return DispatchAlgorithm::kDynamic;
  WS_THROW(kUnimplemented, "--ep-dispatch-algorithm {} is not supported (static, dynamic)", s);
}

namespace {
uint64_t mix(uint64_t x) {  // splitmix64 finaliser
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}
}  // namespace

int32_t choose_replica(const ExpertPlacement& p, int32_t layer, int32_t logical, int32_t rank,
                       uint64_t token_key, DispatchAlgorithm algorithm) {
  const auto& reps = p.log2phy[layer][logical];
  if (reps.size() == 1) return reps[0];
  if (algorithm == DispatchAlgorithm::kDynamic)
    return reps[mix(token_key ^ (static_cast<uint64_t>(rank) << 40)) % reps.size()];
  for (int32_t s : reps)
    if (p.rank_of(s) == rank) return s;
  return reps[static_cast<size_t>(rank) % reps.size()];
}

}  // namespace wideserve::moe
