// What one forward step computes: new tokens of several sequences over the paged latent KV cache.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace wideserve::model {

class EpMoe;  // model/ep_moe.h

// One sequence's part of a step.
struct SequenceInput {
  std::span<const int32_t> tokens;  // new tokens (a prefill chunk, or one decode token)
  int64_t start_pos = 0;            // tokens of this sequence already in the KV cache
  std::span<const int32_t> pages;   // page table covering start_pos + tokens.size() tokens
  bool all_logits = false;          // logits for every new token, else only for the last
};

// How attention reads the latent cache.
enum class AttentionMode {
  kAuto,      // absorbed for single-token (decode) rows, expanded for prefill chunks
  kExpanded,  // up-project cached latents to per-head keys/values (HF's formulation)
  kAbsorbed,  // fold kv_b into the query and output: attention over the 576-wide latent rows
};

// Per-step options.
struct ForwardOptions {
  AttentionMode attention = AttentionMode::kAuto;
  EpMoe* ep = nullptr;  // expert parallelism: MoE layers through this rank's EpMoe (collective)
  bool ep_begun = false;  // EpMoe::begin_forward already ran for this forward (ep_drain)
};

}  // namespace wideserve::model
