// Where the experts of every MoE layer live across EP ranks: physical slots (logical experts plus
// redundant replicas), rank r owning slots [r * P / ranks, (r + 1) * P / ranks), and which replica
// a token's expert is sent to (--ep-dispatch-algorithm static|dynamic).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "moe/eplb.h"

namespace wideserve::moe {

// Placement of all MoE layers (indexed by MoE layer ordinal, not decoder layer).
struct ExpertPlacement {
  int32_t num_logical = 0;
  int32_t num_physical = 0;
  int32_t num_ranks = 1;
  std::vector<std::vector<int32_t>> phy2log;               // [layer][physical] -> logical
  std::vector<std::vector<std::vector<int32_t>>> log2phy;  // [layer][logical] -> slots, ascending

  int32_t num_layers() const { return static_cast<int32_t>(phy2log.size()); }
  int32_t local_count() const { return num_physical / num_ranks; }
  int32_t rank_of(int32_t physical) const { return physical / local_count(); }
  int32_t first_local(int32_t rank) const { return rank * local_count(); }

  // Builds log2phy and checks: P divisible by ranks, every id in range, every logical expert has
  // at least one replica in every layer. Throws Error(kInvalidArgument) naming `what`.
  static ExpertPlacement from_phy2log(std::vector<std::vector<int32_t>> phy2log,
                                      int32_t num_logical, int32_t num_ranks,
                                      const std::string& what);
};

// SGLang's trivial placement: physical slot p holds logical expert p % num_logical.
ExpertPlacement trivial_placement(int32_t layers, int32_t num_logical, int32_t num_physical,
                                  int32_t num_ranks);
// --init-expert-location FILE: JSON with "phy2log" [[...] per layer] (what `wideserve eplb`
// prints), or a bare [[...]] array; shapes must match (layers, num_physical).
ExpertPlacement load_placement(const std::string& path, int32_t layers, int32_t num_logical,
                               int32_t num_physical, int32_t num_ranks);
// EPLB over recorded loads [layer][logical]: num_physical slots over num_ranks ranks on num_nodes
// nodes, n_group expert groups (hierarchical policy when it applies).
ExpertPlacement eplb_placement(const std::vector<std::vector<double>>& loads, int32_t num_physical,
                               int32_t num_ranks, int32_t num_nodes, int32_t num_groups,
                               EplbAlgorithm algorithm);

// How a token's logical expert picks one of its replicas.
enum class DispatchAlgorithm {
  kStatic,   // per (rank, expert): the replica on the rank itself, else a fixed one
  kDynamic,  // per token: spread over all replicas
};
// "static" | "dynamic" (empty = static); "fake" is rejected (SGLang's benchmark-only mode).
DispatchAlgorithm parse_dispatch_algorithm(const std::string& s);

// Physical slot for (layer, logical expert) of a token on `rank`; `token_key` varies per token
// and slot (dynamic only).
int32_t choose_replica(const ExpertPlacement& p, int32_t layer, int32_t logical, int32_t rank,
                       uint64_t token_key, DispatchAlgorithm algorithm);

}  // namespace wideserve::moe
