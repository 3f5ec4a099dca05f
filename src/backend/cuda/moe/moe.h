// MoE kernels of the CUDA backend: routing (DeepSeek V2/V3 gates, same choices as
// src/moe/router.cpp), sorting (token, slot) pairs by expert, gather into the sorted layout
// (optionally FP8-quantized), SiLU-and-mul, grouped expert GEMMs (BF16 and FP8 128x128 block
// scaled, CUTLASS SM90) and the weighted combine back to token order. Everything runs on the
// device without host synchronisation (decode is captured in CUDA graphs): buffer sizes use the
// host-known bound max_rows = num_tokens * top_k; the true per-expert row counts live on the
// device.
//
// Pipeline (T tokens, k slots each, E local experts, hidden H, intermediate I):
//   logits [T,E] --routing--> topk_ids/weights [T,k] --align--> offsets [E+1], sorted_to_slot,
//   slot_to_sorted --gather--> xs [R,H] --grouped gemm (gate_up)--> [R,2I] --silu_and_mul--> [R,I]
//   --grouped gemm (down)--> ys [R,H] --combine--> out [T,H]
// Sorted row r (0 <= r < offsets[E]) holds slot s = sorted_to_slot[r] = t*k + j (token t, slot j);
// rows of expert e are offsets[e] .. offsets[e+1]-1, tokens ascending within an expert.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp8.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <string>

namespace wideserve::cuda {

// ---- Routing -----------------------------------------------------------------------------------

struct MoeRoutingParams {
  const float* logits;  // [T, E] fp32 router logits
  const float* bias;    // [E] e_score_correction_bias (selection only, noaux_tc), or null
  int64_t num_tokens, num_experts, top_k;
  int64_t n_group = 1, topk_group = 1;
  int scoring = 1;           // 0 softmax, 1 sigmoid
  int topk_method = 2;       // 0 greedy, 1 group_limited_greedy (V2), 2 noaux_tc (V3)
  bool renormalize = false;  // norm_topk_prob
  float routed_scaling_factor = 1.0f;
  int32_t* topk_ids;    // [T, k] out
  float* topk_weights;  // [T, k] out
};
// E <= 1024, top_k <= 32, n_group <= 32. Ties: lower index wins (as router.cpp). Runs
// kMoeDefaultPath.
void launch_moe_routing(const MoeRoutingParams& p, cudaStream_t stream);

// Kernel choice of launch_moe_routing / launch_moe_align (tests and benchmarks force one; every
// path gives bit-identical outputs).
enum class MoePath : int {
  kAuto = 0,   // small path when supported and the batch is small, else the large path
  kLarge = 1,  // routing: one warp per token, E-strided lanes; align: 3 launches
  kSmall = 2,  // routing: group-per-lane-segment layout + bitonic top-k; align: one block
  kRank = 3,   // routing: a CTA per token, a thread per expert, slots by rank; align: as kSmall
};
// What launch_moe_routing / launch_moe_align (the model's calls) run. On the H200 (2026-11-28,
// docs/cuda_moe.md) the small paths won at every measured T: routing + align 14.5 -> 6.0 us at
// T = 1, routing 25.0 -> 14.0 us at T = 4096.
constexpr MoePath kMoeDefaultPath = MoePath::kAuto;
constexpr int64_t kMoeRoutingSmallTokens = 16384;  // kAuto uses the small routing up to this T
constexpr int64_t kMoeRoutingRankTokens = 8;       // ... and the rank routing up to this T
constexpr int64_t kMoeAlignSmallSlots = 4096;      // the one-launch align handles T*k <= this
// The small routing kernel handles top_k <= 8 and <= 32 experts per lane (every E <= 512, and
// E <= 1024 when n_group is a power of two).
bool moe_routing_small_supported(const MoeRoutingParams& p);
// kSmall on an unsupported shape is an invalid argument.
void launch_moe_routing_path(const MoeRoutingParams& p, MoePath path, cudaStream_t stream);

// The router GEMV (bf16 x [T, H] times w [E, H]^T, fp32) and the rank routing in one launch: a
// cluster of CTAs per token makes the logits into one CTA's shared memory, which routes them as
// the rank path does (bit-identical ids and weights given the same logits; the logits are the
// fp32 dot products in another order than gemm_bf16's). p.logits is not read.
struct MoeRouterRouteInputs {
  const __nv_bfloat16* x;
  const __nv_bfloat16* w;
  int64_t hidden;
  float* logits;  // [T, E] out: the router logits as well (for the tests and the trace)
  // Optional: x made in the launch as RMSNorm of these fp32 rows [T, hidden] times norm_w, with
  // launch_rms_norm's arithmetic (bit for bit; hidden <= 2048), instead of read (x ignored).
  const float* norm_src = nullptr;
  const __nv_bfloat16* norm_w = nullptr;
  float norm_eps = 0.f;
};
// Why it cannot run ("" = it can): the rank path's limits, > 256 experts or > 8 tokens, hidden
// not a multiple of 8 or too wide for shared memory, null or unaligned pointers.
std::string moe_router_route_unsupported(const MoeRoutingParams& p, const MoeRouterRouteInputs& in);
void launch_moe_router_route(const MoeRoutingParams& p, const MoeRouterRouteInputs& in,
                             cudaStream_t stream);
// Where the model runs it: router weights up to 1 MiB. On the H200 (2026-11-29) it took V2-Lite's
// batch-1 / 2 decode step (64 x 2048 router) from 2.102-2.119 to 2.093-2.095 ms and 2.731-2.748
// to 2.724-2.730, and V3's (256 x 7168, eight CTAs reading 3.7 MB) from 1.339 to 1.369 ms.
inline bool moe_router_route_preferred(int64_t experts, int64_t hidden) {
  return experts * hidden * 2 <= (int64_t{1} << 20);
}

// ---- Sorting by expert
// ---------------------------------------------------------------------------

struct MoeAlignParams {
  const int32_t* topk_ids;  // [T, k] global expert ids
  int64_t num_tokens, top_k;
  int64_t num_experts;       // local experts E
  int64_t expert_begin = 0;  // global id of local expert 0 (EP); ids outside [begin, begin+E) skip
  int32_t* expert_counts;    // [E] out: rows per local expert
  int32_t* expert_offsets;   // [E+1] out: exclusive prefix sum; offsets[E] = valid rows R
  int32_t* sorted_to_slot;   // [T*k] out: row r -> slot t*k+j (rows >= R: -1)
  int32_t* slot_to_sorted;   // [T*k] out: slot -> row (-1 when the expert is not local)
  void* workspace;           // moe_align_workspace_bytes(T, k, E) bytes of device scratch
};
size_t moe_align_workspace_bytes(int64_t num_tokens, int64_t top_k, int64_t num_experts);
// Deterministic counting sort (stable: ascending slot within an expert). E <= 1024. Runs
// kMoeDefaultPath (kAuto: one launch when T*k <= kMoeAlignSmallSlots, else three).
void launch_moe_align(const MoeAlignParams& p, cudaStream_t stream);
// kSmall needs T*k <= kMoeAlignSmallSlots (and no workspace); kLarge is the 3-launch sort.
void launch_moe_align_path(const MoeAlignParams& p, MoePath path, cudaStream_t stream);

// ---- Gather / activation / combine
// ---------------------------------------------------------------

struct MoeGatherParams {
  const __nv_bfloat16* x;         // [T, H] token-order hidden states
  const int32_t* sorted_to_slot;  // [max_rows] from launch_moe_align
  const int32_t* num_rows;        // device count of valid rows (expert_offsets + E); rows >= skip
  int64_t num_tokens, top_k, hidden;
  int64_t max_rows;         // host bound (T*k); grid size
  __nv_bfloat16* out_bf16;  // [max_rows, H] or null
  __nv_fp8_e4m3* out_fp8;   // [max_rows, H] or null (needs hidden % 128 == 0)
  float* out_scales;        // [max_rows][H/128] per-row 1x128 scales (row-major) with out_fp8
};
// out[r] = x[sorted_to_slot[r] / k]; FP8: scale = max(amax, 1e-10)/448 per 128 columns.
void launch_moe_gather(const MoeGatherParams& p, cudaStream_t stream);

struct SiluAndMulParams {
  const __nv_bfloat16* x;             // [rows, 2I]: gate | up
  int64_t rows, inter;                // inter = I
  const int32_t* num_rows = nullptr;  // optional device count: rows >= *num_rows are skipped
  __nv_bfloat16* out_bf16;            // [rows, I] or null
  __nv_fp8_e4m3* out_fp8;             // [rows, I] or null (needs I % 128 == 0)
  float* out_scales;                  // [rows][I/128] row-major, with out_fp8
};
// out = silu(gate) * up, in fp32, rounded to bf16 (and/or quantized to FP8 1x128 from fp32).
void launch_silu_and_mul(const SiluAndMulParams& p, cudaStream_t stream);

struct MoeCombineParams {
  const __nv_bfloat16* y;         // [max_rows, H] sorted expert outputs
  const int32_t* slot_to_sorted;  // [T*k]; -1 = slot contributes nothing (remote expert)
  const float* topk_weights;      // [T, k]
  const __nv_bfloat16* shared;    // [T, H] shared-expert output to add, or null
  int64_t num_tokens, top_k, hidden;
  __nv_bfloat16* out;  // [T, H]
};
// out[t] = sum_{j=0..k-1} w[t,j] * y[row(t,j)] (+ shared[t]); fp32, fixed order j = 0..k-1.
void launch_moe_combine(const MoeCombineParams& p, cudaStream_t stream);

// ---- Grouped expert GEMM
// -------------------------------------------------------------------------

// Which FP8 grouped kernel runs: 128-row tiles over each expert's rows, or the weights as the
// 128-row operand and the rows as a 32-wide tile (decode: a few rows per expert).
enum class GroupedFp8Kernel { kAuto, kRowTiles, kSwapAB };
// kAuto takes the swapped kernel up to this many routed rows per expert on average.
inline constexpr int64_t kGroupedSwapMaxMeanRows = 16;

// D[rows of e] = A[rows of e] * B[e]^T for every local expert e, rows given by device offsets.
struct GroupedGemmParams {
  const void* a;          // [max_rows, K] sorted activations: bf16, or e4m3 for the FP8 path
  const float* a_scales;  // FP8: [max_rows][K/128] per-row 1x128 scales (row-major); else null
  const void* b;          // [E, N, K] expert weights (bf16 or e4m3), row-major per expert
  const float* b_scales;  // FP8: [E][N/128][K/128] (weight_scale_inv per expert); else null
  __nv_bfloat16* d;       // [max_rows, N] bf16 output
  const int32_t* expert_offsets;  // device [E+1]
  int64_t num_experts, n, k;
  int64_t max_rows;
  void* workspace;  // grouped_gemm_workspace_bytes(num_experts) bytes of device scratch
  // FP8 only: a host bound on the rows routed this call (e.g. tokens x top_k; 0 = unknown), which
  // picks the swapped-operand kernel when groups are decode-sized, and a way to force either.
  int64_t routed_rows = 0;
  GroupedFp8Kernel fp8_kernel = GroupedFp8Kernel::kAuto;
};
// Device scratch for per-expert argument arrays and CUTLASS's scheduler (same for bf16/fp8).
size_t grouped_gemm_workspace_bytes(int64_t num_experts);
// BF16 x BF16 -> BF16, fp32 accumulation. Needs N % 8 == 0, K % 8 == 0.
void launch_grouped_gemm_bf16(const GroupedGemmParams& p, cudaStream_t stream);
// FP8 e4m3 x e4m3 with 1x128 (A) and 128x128 (B) block scales, fp32 accumulation, bf16 out.
// Needs N % 128 == 0, K % 128 == 0.
void launch_grouped_gemm_fp8(const GroupedGemmParams& p, cudaStream_t stream);

}  // namespace wideserve::cuda
