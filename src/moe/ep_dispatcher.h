// DeepEP-style token dispatch/combine over a process group (CPU): each token's hidden state goes
// once to every rank that owns one of its chosen (physical) experts, with the local expert ids and
// routing weights; the owners send back one weighted partial sum per token, which the origin adds
// up in rank order.
//   normal:      counts are exchanged first, then exactly that many tokens move (prefill);
//   low_latency: fixed buffers of max_tokens_per_rank tokens per rank, no count exchange (decode);
//                a rank with more tokens makes every rank throw the same error.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "dist/process_group.h"

namespace wideserve::moe {

enum class DispatchMode { kNormal, kLowLatency };
// "normal" | "low_latency" | "auto" (auto: low_latency for decode-only steps).
enum class DeepepMode { kNormal, kLowLatency, kAuto };
DeepepMode parse_deepep_mode(const std::string& s);

// Cumulative volume and time (data only).
struct DispatchCounters {
  int64_t calls = 0;
  int64_t tokens_sent = 0;     // token copies sent to other ranks or kept locally
  int64_t bytes_sent = 0;      // dispatch + combine payload bytes leaving this rank (all ranks)
  int64_t bytes_received = 0;  // dispatch + combine payload bytes arriving
  double dispatch_seconds = 0, combine_seconds = 0;
};

class EpDispatcher {
 public:
  // hidden: H; top_k: K; local_experts: physical experts per rank (slot s lives on rank
  // s / local_experts); max_tokens_per_rank: the low_latency buffer size.
  EpDispatcher(dist::ProcessGroup& pg, int64_t hidden, int32_t top_k, int32_t local_experts,
               int64_t max_tokens_per_rank);

  // x [rows, H]; phys [rows, K] physical slots; w [rows, K] routing weights. Collective.
  void dispatch(DispatchMode mode, const float* x, int64_t rows, const int32_t* phys,
                const float* w);
  // Tokens this rank received in the last dispatch (all sources, rank order).
  int64_t num_received() const { return recv_n_; }
  const float* received_x() const { return recv_x_.data(); }         // [n, H]
  const int32_t* received_expert() const { return recv_e_.data(); }  // [n, K] local id or -1
  const float* received_weight() const { return recv_w_.data(); }    // [n, K]

  // y [num_received, H]: per received token, the weighted sum of its local experts' outputs.
  // out [rows, H] (rows of the last dispatch) = sum over owner ranks in rank order. Collective.
  void combine(const float* y, float* out);

  const DispatchCounters& counters() const { return counters_; }
  void reset_counters() { counters_ = {}; }

 private:
  dist::ProcessGroup& pg_;
  int64_t H_;
  int32_t K_, local_;
  int64_t max_tokens_;
  DispatchMode mode_ = DispatchMode::kNormal;
  int64_t rows_ = 0;
  std::vector<std::vector<int64_t>> sent_rows_;  // [dest] origin rows in send order
  std::vector<int64_t> recv_counts_;             // [src] tokens received
  int64_t recv_n_ = 0;
  std::vector<float> recv_x_, recv_w_;
  std::vector<int32_t> recv_e_;
  DispatchCounters counters_;
};

}  // namespace wideserve::moe
