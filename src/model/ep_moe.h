// Expert-parallel MoE for one rank (SGLang DP attention + DeepEP): this rank keeps only its
// physical experts; every MoE layer routes on the owning rank, dispatches tokens to the experts'
// ranks, runs the local expert GEMMs and combines the weighted results back. Every method marked
// "collective" must be called by all ranks of the group in the same order (ranks without tokens
// pass rows = 0). The single-rank moe_forward stays the reference.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "dist/process_group.h"
#include "model/model_config.h"
#include "model/weights.h"
#include "moe/ep_dispatcher.h"
#include "moe/eplb.h"
#include "moe/expert_placement.h"

namespace wideserve::model {

// EP settings (SGLang flag names).
struct EpOptions {
  moe::DeepepMode deepep_mode = moe::DeepepMode::kAuto;               // --deepep-mode
  moe::DispatchAlgorithm dispatch = moe::DispatchAlgorithm::kStatic;  // --ep-dispatch-algorithm
  int64_t max_dispatch_tokens_per_rank = 128;    // SGLANG_DEEPEP_NUM_MAX_DISPATCH_TOKENS_PER_RANK
  int32_t num_redundant_experts = 0;             // --ep-num-redundant-experts
  std::string init_expert_location = "trivial";  // --init-expert-location
  moe::EplbAlgorithm eplb_algorithm = moe::EplbAlgorithm::kDeepseek;  // --eplb-algorithm
  int32_t num_nodes = 1;                                              // --nnodes (EPLB hierarchy)
  int64_t rebalance_every = 0;  // --enable-eplb: rebalance every N forwards (0 = never)
  // Without --enable-dp-lm-head: the LM head split by vocabulary over the group
  // (model/vocab_parallel_head.h); with it, each rank applies the whole head to its own rows.
  bool vocab_parallel_head = false;
};

// Per-layer load figures since the last reset (data only; identical on every rank).
struct EpMetrics {
  std::vector<double> layer_imbalance;  // [moe layer] max/mean over ranks of routed token-slots
  std::vector<int64_t> layer_tokens;    // [moe layer] routed token-slots, all ranks
  int64_t forwards = 0;                 // forward passes
  int64_t tokens_dispatched = 0;        // token copies moved by dispatch, all ranks and layers
  int64_t bytes_sent = 0;               // dispatch + combine bytes, all ranks
  double dispatch_seconds = 0, combine_seconds = 0;  // this rank
  int64_t rebalances = 0;
};

class EpMoe {
 public:
  // Takes this rank's physical experts out of `full` (the checkpoint's routed experts).
  EpMoe(const ModelConfig& cfg, const ModelWeights& full, dist::ProcessGroup& pg,
        const EpOptions& opts);

  // Collective, once per forward: exchanges row counts and whether the step is decode-only
  // (every sequence one token), which picks the dispatch mode for --deepep-mode auto. A rank
  // that has finished its own work passes active = false (see ep_drain); returns whether any
  // rank is still active, i.e. whether this round runs a forward. With rebalance_every = N, every
  // Nth round rebalances first (all ranks count the same rounds).
  bool begin_forward(int64_t rows, bool decode_only, bool active = true);
  // Collective: out [rows, H] = routed experts (weighted) + shared experts of decoder `layer`.
  void run(int64_t layer, const MoeWeights& w, const float* x, float* out, int64_t rows);
  // Collective: EPLB over the loads recorded since the last rebalance, then expert weights move
  // between ranks to the new placement. Call between forwards.
  void rebalance();
  // Collective: load imbalance and dispatch volume since the last reset_metrics().
  EpMetrics metrics();
  void reset_metrics();

  const moe::ExpertPlacement& placement() const { return placement_; }
  dist::ProcessGroup& group() { return pg_; }
  const EpOptions& options() const { return opts_; }
  moe::DispatchMode last_mode() const { return mode_; }

 private:
  int32_t moe_index(int64_t layer) const;

  ModelConfig cfg_;
  dist::ProcessGroup& pg_;
  EpOptions opts_;
  moe::ExpertPlacement placement_;
  std::vector<int32_t> moe_index_;  // decoder layer -> MoE ordinal (-1 = dense)
  // [moe layer][local slot] weights: gate_up [2I, H], down [H, I].
  std::vector<std::vector<std::vector<float>>> gate_up_, down_;
  std::unique_ptr<moe::EpDispatcher> dispatcher_;
  moe::DispatchMode mode_ = moe::DispatchMode::kNormal;
  int64_t forwards_ = 0;
  std::vector<std::vector<double>> loads_;  // [moe layer][logical] since the last rebalance
  std::vector<int64_t> slot_tokens_;        // [moe layer] token-slots computed here (metrics)
  int64_t metric_forwards_ = 0, rebalances_ = 0;
};

}  // namespace wideserve::model
