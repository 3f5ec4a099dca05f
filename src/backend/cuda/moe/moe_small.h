// Fused MoE for a few tokens (decode at small batch): two launches instead of align, gather, two
// grouped GEMMs with their argument builders, SiLU-and-mul, combine, the shared experts' three
// and the residual add. At a handful of tokens every expert sees one row, so the layer is a
// weight read: each launch is a set of warp dot products streaming weight rows at full width.
//   up:   act[t, u, j] = silu(x[t] . Wg_u[j]) * (x[t] . Wu_u[j])   for every unit u of token t
//   down: residual[t, n] += bf16(sum_{u<k} w[t,u] * bf16(act[t,u] . Wd_u[n]) + bf16(shared))
// A token's units are its k routed experts, then the shared MLP cut into num_shared slices of
// width I (unit k + v uses columns/rows v*I .. (v+1)*I of the shared matrices). Intermediate
// roundings follow the grouped pipeline (bf16 GEMM outputs; FP8: activations quantized in 1x128
// groups, 128x128 weight block scales), so both paths agree up to summation order.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <string>

#include "backend/cuda/moe/moe.h"

namespace wideserve::cuda {

// The fused path serves steps of up to this many tokens (kMoeSmallMaxTokens * units CTAs).
constexpr int64_t kMoeSmallMaxTokens = 8;
// The model runs it up to this many tokens: it re-reads an expert once per token that picked it
// (and the shared experts once per token), so on the H200 the grouped pipeline won from 4 tokens
// on (docs/cuda_moe.md, 2026-11-28).
constexpr int64_t kMoeSmallModelTokens = 2;

struct MoeSmallParams {
  // [T, H] normalised hidden states. Final when the up launch starts (written two or more
  // launches back on the stream, as the model's norm is): its shared units read it unwaited.
  const __nv_bfloat16* x;
  // Optional (BF16, H <= 2048): the up launch makes x itself as RMSNorm of these fp32 rows [T, H]
  // times x_norm_w, with launch_rms_norm's arithmetic (bit for bit); x is then not read. The rows
  // must be final when the up launch starts, as x otherwise.
  const float* x_norm_src = nullptr;
  const __nv_bfloat16* x_norm_w = nullptr;
  float x_norm_eps = 0.f;
  const int32_t* topk_ids;    // [T, k] global expert ids (outside the local range: skipped)
  const float* topk_weights;  // [T, k]
  int64_t num_tokens = 0, top_k = 0, hidden = 0, inter = 0;
  int64_t num_experts = 0;   // local experts E
  int64_t expert_begin = 0;  // global id of local expert 0
  bool fp8 = false;          // every weight e4m3 with 128x128 block scales, else bf16
  // Routed experts: gate_up [E, 2I, H], down [E, H, I]; FP8 scales [E][2I/128][H/128],
  // [E][H/128][I/128].
  const void* gate_up = nullptr;
  const float* gate_up_scale = nullptr;
  const void* down = nullptr;
  const float* down_scale = nullptr;
  // Shared experts as one MLP of width Is = num_shared * I: gate_up [2Is, H] (gate | up), down
  // [H, Is]; FP8 scales [2Is/128][H/128], [H/128][Is/128]. num_shared = 0: none.
  int64_t num_shared = 0;
  const void* shared_gate_up = nullptr;
  const float* shared_gate_up_scale = nullptr;
  const void* shared_down = nullptr;
  const float* shared_down_scale = nullptr;
  // The shared MLP's output computed elsewhere (bf16 [T, H], num_shared = 0), added in its place
  // (a graph branch computes it while the router and routing run); null: none or the units above.
  const __nv_bfloat16* shared_out = nullptr;
  float* act = nullptr;  // scratch: moe_small_act_floats(T, k, num_shared, I) floats
  // [T, H] fp32 residual stream, added into. The down launch reads it before its wait: it must
  // be final when that launch starts (written two or more launches back on the stream, as the
  // model's o_proj and norm are).
  float* residual = nullptr;
};

size_t moe_small_act_floats(int64_t tokens, int64_t top_k, int64_t num_shared, int64_t inter);
// Empty when the fused path can run these shapes, else why not (T > kMoeSmallMaxTokens, H or I
// not a multiple of 8 (bf16) / 128 (FP8), too many units, unaligned or null pointers, ...).
std::string moe_small_unsupported(const MoeSmallParams& p);
// Both launches; an unsupported shape is an invalid argument.
void launch_moe_small(const MoeSmallParams& p, cudaStream_t stream);
// The up launch alone, then the down launch alone (whatever shared_out needs can join between).
void launch_moe_small_up(const MoeSmallParams& p, cudaStream_t stream);
void launch_moe_small_down(const MoeSmallParams& p, cudaStream_t stream);

}  // namespace wideserve::cuda
