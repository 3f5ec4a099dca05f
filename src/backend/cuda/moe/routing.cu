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

// Warp-wide best (value, index) that also carries the candidate's score.
__device__ __forceinline__ void warp_best3(float& v, int& i, float& sv) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    const float ov = __shfl_xor_sync(kFull, v, o);
    const int oi = __shfl_xor_sync(kFull, i, o);
    const float os = __shfl_xor_sync(kFull, sv, o);
    if (beats(ov, oi, v, i)) {
      v = ov;
      i = oi;
      sv = os;
    }
  }
}

// kPer = experts per lane (lane owns experts lane + 32 i): scores and selection values live in
// registers and every global load is issued before its first use (the routing of a decode batch is
// one warp's latency). Shared memory holds the selection values only for the group scores.
template <int kPer>
__global__ void moe_routing_kernel(MoeRoutingParams p) {
  extern __shared__ float smem[];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int E = static_cast<int>(p.num_experts), K = static_cast<int>(p.top_k);
  const int64_t t = static_cast<int64_t>(blockIdx.x) * kWarps + warp;
  if (t >= p.num_tokens) return;
  const float* l = p.logits + t * E;
  const bool noaux = p.topk_method == 2;
  const bool use_bias = p.bias != nullptr && noaux;

  float sc[kPer], ch[kPer];
#pragma unroll
  for (int i = 0; i < kPer; ++i) {
    const int e = lane + 32 * i;
    sc[i] = e < E ? __ldg(l + e) : 0.f;
    ch[i] = (use_bias && e < E) ? __ldg(p.bias + e) : 0.f;
  }
  if (p.scoring == 1) {
#pragma unroll
    for (int i = 0; i < kPer; ++i) sc[i] = 1.0f / (1.0f + expf(-sc[i]));
  } else {
    float mx = -INFINITY;
#pragma unroll
    for (int i = 0; i < kPer; ++i)
      if (lane + 32 * i < E) mx = fmaxf(mx, sc[i]);
    mx = warp_max(mx);
    float sum = 0.f;
#pragma unroll
    for (int i = 0; i < kPer; ++i) {
      sc[i] = lane + 32 * i < E ? expf(sc[i] - mx) : 0.f;
      sum += sc[i];
    }
    sum = warp_sum(sum);
#pragma unroll
    for (int i = 0; i < kPer; ++i) sc[i] /= sum;
  }
#pragma unroll
  for (int i = 0; i < kPer; ++i) ch[i] = sc[i] + ch[i];  // bias is 0 unless noaux_tc

  const bool grouped = p.topk_method != 0 && p.n_group > 1;
  if (grouped) {
    float* choice = smem + warp * E;
#pragma unroll
    for (int i = 0; i < kPer; ++i)
      if (lane + 32 * i < E) choice[lane + 32 * i] = ch[i];
    __syncwarp();
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
#pragma unroll
    for (int i = 0; i < kPer; ++i) {
      const int e = lane + 32 * i;
      if (e < E && !((kept >> (e / per)) & 1u)) ch[i] = masked;
    }
  }

  // Top-k: `taken` marks this lane's chosen experts; lane j keeps the j-th choice and its score.
  unsigned taken = 0;
  int my_id = -1;
  float my_score = 0.f;
  for (int j = 0; j < K; ++j) {
    float v = -INFINITY, sv = 0.f;
    int best = -1;
#pragma unroll
    for (int i = 0; i < kPer; ++i) {
      const int e = lane + 32 * i;
      if (e < E && !((taken >> i) & 1u) && beats(ch[i], e, v, best)) {
        v = ch[i];
        best = e;
        sv = sc[i];
      }
    }
    warp_best3(v, best, sv);
    if (best >= 0 && best % 32 == lane) taken |= 1u << (best / 32);
    if (lane == j) {
      my_id = best;
      my_score = sv;
    }
  }
  // Weights in slot order, summed sequentially (as the CPU reference).
  const float w = lane < K ? my_score : 0.f;
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
  const size_t smem = grouped ? size_t(kWarps) * p.num_experts * sizeof(float) : 0;
  const int64_t blocks = (p.num_tokens + kWarps - 1) / kWarps;
  WS_CUDA_REQUIRE(blocks < (int64_t(1) << 31), "moe routing: too many tokens");
  const dim3 grid(static_cast<unsigned>(blocks));
  const int64_t per_lane = (p.num_experts + 31) / 32;
  if (per_lane <= 1) {
    moe_routing_kernel<1><<<grid, kWarps * 32, smem, stream>>>(p);
  } else if (per_lane <= 2) {
    moe_routing_kernel<2><<<grid, kWarps * 32, smem, stream>>>(p);
  } else if (per_lane <= 4) {
    moe_routing_kernel<4><<<grid, kWarps * 32, smem, stream>>>(p);
  } else if (per_lane <= 8) {
    moe_routing_kernel<8><<<grid, kWarps * 32, smem, stream>>>(p);
  } else if (per_lane <= 16) {
    moe_routing_kernel<16><<<grid, kWarps * 32, smem, stream>>>(p);
  } else {
    moe_routing_kernel<32><<<grid, kWarps * 32, smem, stream>>>(p);
  }
  WS_CUDA_CHECK_LAUNCH();
}

}  // namespace wideserve::cuda
