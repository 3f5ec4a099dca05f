// MoE routing kernel: one warp per token computes scores (sigmoid / softmax), the selection
// scores (+ e_score_correction_bias for noaux_tc), group scores and the chosen groups, the top-k
// experts and their weights. Mirrors src/moe/router.cpp step by step, including its tie rule (the
// lower index wins) and the masking values (-inf for noaux_tc, 0 for group_limited_greedy).
#include <cuda_runtime.h>

#include <cmath>
#include <string>

#include "backend/cuda/common/cuda_check.h"
#include "backend/cuda/moe/moe.h"

namespace wideserve::cuda {
namespace {

constexpr int kWarps = 4;
constexpr unsigned kFull = 0xffffffffu;

// (v, i) beats (w, j): larger value, then lower index; an invalid candidate never wins.
__device__ __forceinline__ bool beats(float v, int i, float w, int j) {
  if (i < 0) return false;
  if (j < 0) return true;
  return v > w || (v == w && i < j);
}

// Warp-wide best (value, index); every lane gets the result.
__device__ __forceinline__ void warp_best(float& v, int& i) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    const float ov = __shfl_xor_sync(kFull, v, o);
    const int oi = __shfl_xor_sync(kFull, i, o);
    if (beats(ov, oi, v, i)) {
      v = ov;
      i = oi;
    }
  }
}

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(kFull, v, o));
  return v;
}

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(kFull, v, o);
  return v;
}

// Multiset top-2 (a >= b) merge.
__device__ __forceinline__ void top2_insert(float c, float& a, float& b) {
  if (c > a) {
    b = a;
    a = c;
  } else if (c > b) {
    b = c;
  }
}

__global__ void moe_routing_kernel(MoeRoutingParams p) {
  extern __shared__ float smem[];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int E = static_cast<int>(p.num_experts), K = static_cast<int>(p.top_k);
  float* scores = smem + warp * 2 * E;
  float* choice = scores + E;
  const int64_t t = static_cast<int64_t>(blockIdx.x) * kWarps + warp;
  if (t >= p.num_tokens) return;
  const float* l = p.logits + t * E;

  if (p.scoring == 1) {
    for (int e = lane; e < E; e += 32) scores[e] = 1.0f / (1.0f + expf(-l[e]));
  } else {
    float mx = -INFINITY;
    for (int e = lane; e < E; e += 32) mx = fmaxf(mx, l[e]);
    mx = warp_max(mx);
    float sum = 0.f;
    for (int e = lane; e < E; e += 32) sum += (scores[e] = expf(l[e] - mx));
    sum = warp_sum(sum);
    for (int e = lane; e < E; e += 32) scores[e] /= sum;
  }
  const bool noaux = p.topk_method == 2;
  const bool use_bias = p.bias != nullptr && noaux;
  for (int e = lane; e < E; e += 32) choice[e] = scores[e] + (use_bias ? p.bias[e] : 0.f);
  __syncwarp();

  const bool grouped = p.topk_method != 0 && p.n_group > 1;
  if (grouped) {
    const int G = static_cast<int>(p.n_group), per = E / G;
    float my_gscore = -INFINITY;  // lane g keeps group g's score
    for (int g = 0; g < G; ++g) {
      float a = -INFINITY, b = -INFINITY;
      for (int i = lane; i < per; i += 32) top2_insert(choice[g * per + i], a, b);
#pragma unroll
      for (int o = 16; o > 0; o >>= 1) {
        const float oa = __shfl_xor_sync(kFull, a, o), ob = __shfl_xor_sync(kFull, b, o);
        // Top-2 of the union {a, b, oa, ob}.
        const float hi = fmaxf(a, oa), lo = fminf(a, oa);
        b = fmaxf(lo, fmaxf(b, ob));
        a = hi;
      }
      const float gs = noaux ? (per >= 2 ? a + b : a) : a;
      if (lane == g) my_gscore = gs;
    }
    // Choose topk_group groups: repeated warp argmax, lower group index on ties.
    bool keep = false;
    for (int r = 0; r < p.topk_group; ++r) {
      float v = my_gscore;
      int i = (lane < G && !keep) ? lane : -1;
      warp_best(v, i);
      if (lane == i) keep = true;
    }
    const unsigned kept = __ballot_sync(kFull, keep);
    const float masked = noaux ? -INFINITY : 0.0f;
    for (int e = lane; e < E; e += 32)
      if (!((kept >> (e / per)) & 1u)) choice[e] = masked;
    __syncwarp();
  }

  // Top-k: each lane owns experts lane, lane+32, ...; `taken` marks its chosen ones.
  unsigned taken = 0;
  int my_id = -1;  // lane j < K keeps the j-th choice
  for (int j = 0; j < K; ++j) {
    float v = -INFINITY;
    int best = -1;
    for (int e = lane, s = 0; e < E; e += 32, ++s) {
      if ((taken >> s) & 1u) continue;
      if (beats(choice[e], e, v, best)) {
        v = choice[e];
        best = e;
      }
    }
    warp_best(v, best);
    if (best >= 0 && best % 32 == lane) taken |= 1u << (best / 32);
    if (lane == j) my_id = best;
  }
  // Weights in slot order, summed sequentially (as the CPU reference).
  float w = (lane < K && my_id >= 0) ? scores[my_id] : 0.f;
  float sum = 0.f;
  for (int j = 0; j < K; ++j) sum += __shfl_sync(kFull, w, j);
  const float denom = p.renormalize ? sum + 1e-20f : 1.0f;
  if (lane < K) {
    p.topk_ids[t * K + lane] = my_id;
    p.topk_weights[t * K + lane] = w / denom * p.routed_scaling_factor;
  }
}

}  // namespace

void launch_moe_routing(const MoeRoutingParams& p, cudaStream_t stream) {
  WS_CUDA_REQUIRE(p.num_tokens >= 0, "moe routing: num_tokens " + std::to_string(p.num_tokens));
  WS_CUDA_REQUIRE(
      p.num_experts > 0 && p.num_experts <= 1024,
      "moe routing: num_experts must be in [1, 1024], got " + std::to_string(p.num_experts));
  WS_CUDA_REQUIRE(p.top_k > 0 && p.top_k <= 32 && p.top_k <= p.num_experts,
                  "moe routing: top_k " + std::to_string(p.top_k));
  WS_CUDA_REQUIRE(p.scoring == 0 || p.scoring == 1, "moe routing: scoring must be 0 or 1");
  WS_CUDA_REQUIRE(p.topk_method >= 0 && p.topk_method <= 2, "moe routing: topk_method 0..2");
  const bool grouped = p.topk_method != 0 && p.n_group > 1;
  if (grouped) {
    WS_CUDA_REQUIRE(p.n_group <= 32 && p.num_experts % p.n_group == 0 && p.topk_group >= 1 &&
                        p.topk_group <= p.n_group,
                    "moe routing: " + std::to_string(p.num_experts) + " experts, " +
                        std::to_string(p.n_group) + " groups, topk_group " +
                        std::to_string(p.topk_group));
    // Only experts of the kept groups can be chosen (noaux_tc masks the others to -inf).
  }
  if (p.num_tokens == 0) return;
  WS_CUDA_REQUIRE(p.logits && p.topk_ids && p.topk_weights, "moe routing: null pointer");
  const size_t smem = size_t(kWarps) * 2 * p.num_experts * sizeof(float);
  const int64_t blocks = (p.num_tokens + kWarps - 1) / kWarps;
  WS_CUDA_REQUIRE(blocks < (int64_t(1) << 31), "moe routing: too many tokens");
  moe_routing_kernel<<<static_cast<unsigned>(blocks), kWarps * 32, smem, stream>>>(p);
  WS_CUDA_CHECK_LAUNCH();
}

}  // namespace wideserve::cuda
