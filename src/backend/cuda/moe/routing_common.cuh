// Internal to the MoE routing kernels (routing.cu, routing_rank.cu): warp reductions, the
// (value, index) keys, the small and rank paths' layout, and the launches one file makes for the
// other. Device functions are inline: each file compiles its own copy.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "backend/cuda/moe/moe.h"

namespace wideserve::cuda::routing {

constexpr unsigned kFull = 0xffffffffu;

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

constexpr int kKb = 8;  // length of the top-k lists of the small path (top_k <= kKb)

// Where each lane's experts are: lanes 2^lg_lanes per group (G groups rounded up to a power of two
// share the 32 lanes), lane sub of group g owns experts g*per + sub*per_lane + [0, per_lane).
struct SmallLayout {
  int groups;    // G (1 when the method does not group)
  int per;       // experts per group
  int lg_lanes;  // log2 of the lanes per group
  int per_lane;  // experts per lane (<= the kernel's kMpl)
};

// 64-bit key ordered like beats(): larger value first, then lower index. -0 is folded into +0
// (they compare equal as floats); valid keys are never 0, the empty-slot sentinel.
__device__ __forceinline__ uint64_t make_key(float v, int e) {
  uint32_t u = __float_as_uint(v + 0.0f);
  u = (u & 0x80000000u) ? ~u : (u | 0x80000000u);
  return (static_cast<uint64_t>(u) << 32) | (0xFFFFFFFFu - static_cast<uint32_t>(e));
}
__device__ __forceinline__ int key_index(uint64_t k) {
  return static_cast<int>(0xFFFFFFFFu - static_cast<uint32_t>(k));
}

// The small path's layout of p, or false when it does not fit (top_k > kKb, > 32 experts per
// lane). Shapes are validated separately.
inline bool small_layout(const MoeRoutingParams& p, SmallLayout* lay) {
  if (p.top_k < 1 || p.top_k > kKb || p.num_experts < 1 || p.num_experts > 1024) return false;
  const bool grouped = p.topk_method != 0 && p.n_group > 1;
  SmallLayout l{1, static_cast<int>(p.num_experts), 5, 0};
  if (grouped) {
    if (p.n_group > 32 || p.num_experts % p.n_group != 0) return false;
    int pow2 = 1, lg = 0;
    while (pow2 < p.n_group) {
      pow2 <<= 1;
      ++lg;
    }
    l.groups = static_cast<int>(p.n_group);
    l.per = static_cast<int>(p.num_experts / p.n_group);
    l.lg_lanes = 5 - lg;
  }
  const int lanes = 1 << l.lg_lanes;
  l.per_lane = (l.per + lanes - 1) / lanes;
  if (l.per_lane > 32) return false;
  *lay = l;
  return true;
}

// The routing launchers' shape checks (kInvalidArgument naming the bad field).
void check_routing(const MoeRoutingParams& p);
// The rank path for p (routing_rank.cu).
void launch_rank(const MoeRoutingParams& p, const SmallLayout& lay, cudaStream_t stream);

}  // namespace wideserve::cuda::routing
