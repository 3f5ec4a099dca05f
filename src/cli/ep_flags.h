// Expert-parallel flags shared by `wideserve logits` and `generate` (SGLang names), and running a
// computation on this process's EP ranks.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <string>

#include "config/worker_config.h"
#include "model/deepseek_model.h"
#include "model/ep_moe.h"

namespace wideserve::cli {

// The parallel/MoE part of a worker's flags.
struct EpArgs {
  config::ParallelConfig parallel;
  config::MoeConfig moe;
  bool print_metrics = false;  // --ep-metrics: per-layer imbalance and dispatch volume (stderr)
};

// Registers --tp-size, --dp-size, --ep-size, --enable-dp-attention, --nnodes, --node-rank,
// --dist-init-addr, --moe-a2a-backend, --deepep-mode, --ep-num-redundant-experts,
// --ep-dispatch-algorithm, --eplb-algorithm, --init-expert-location, --enable-eplb,
// --eplb-rebalance-num-iterations, --ep-metrics.
void add_ep_flags(CLI::App& app, EpArgs& a);

// Number of EP ranks the flags ask for (1 = the single-rank path); throws on combinations we do
// not run (attention TP inside a DP group, --ep-size other than 1 or the rank count, backends
// other than none/deepep).
int ep_world_size(const config::ParallelConfig& p, const config::MoeConfig& m);

// EpOptions from the flags (SGLANG_DEEPEP_NUM_MAX_DISPATCH_TOKENS_PER_RANK from `max_tokens`).
model::EpOptions ep_options(const config::ParallelConfig& p, const config::MoeConfig& m,
                            int64_t max_tokens);

// Runs fn(global_rank, ep) on a thread per local rank of this process (after building each
// rank's EpMoe from `model`), then frees the model's full routed experts is NOT done: the caller
// owns `model`. Rethrows the first failure.
void run_ep_ranks(const model::DeepseekModel& model, const EpArgs& a,
                  const std::function<void(int, model::EpMoe&)>& fn);

}  // namespace wideserve::cli
