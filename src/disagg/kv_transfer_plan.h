// Which bytes of the prefill engine's KV pool go where in the decode engine's pool: per layer,
// the rows of positions [0, num_tokens) through both page tables, merged into contiguous runs.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/model_runner.h"
#include "transfer/transfer_agent.h"

namespace wideserve::disagg {

// A KV pool as a peer sees it (data only; sent by decode in its hello).
struct KvLayout {
  uint64_t base = 0;  // address of [layer 0][slot 0]
  int64_t num_layers = 0;
  int64_t slots = 0;
  int64_t row_dim = 0;
  int64_t elem_bytes = 0;
  int64_t page_size = 0;
  std::string dtype;
};

KvLayout layout_of(const engine::KvBufferInfo& kv);
nlohmann::json to_json(const KvLayout& l);
KvLayout kv_layout_from_json(const nlohmann::json& j);
// Throws Error(kInvalidArgument) when the two pools cannot exchange KV (model shape or dtype).
void check_compatible(const KvLayout& prefill, const KvLayout& decode);

// Write ops for positions [0, num_tokens): source rows through src_pages in `src`, destination
// rows through dst_pages in `dst`. Page sizes may differ.
std::vector<transfer::WriteOp> plan_kv_writes(const KvLayout& src,
                                              std::span<const int32_t> src_pages,
                                              const KvLayout& dst,
                                              std::span<const int32_t> dst_pages,
                                              int64_t num_tokens);

}  // namespace wideserve::disagg
