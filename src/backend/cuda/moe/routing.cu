// MoE routing kernels. Both compute scores (sigmoid / softmax), the selection scores
// (+ e_score_correction_bias for noaux_tc), group scores and the chosen groups, the top-k experts
// and their weights, mirroring src/moe/router.cpp step by step, including its tie rule (the lower
// index wins) and the masking values (-inf for noaux_tc, 0 for group_limited_greedy). Their outputs
// are bit-identical: same float expressions, the softmax sum in the same order, and the top-k is a
// function of the (value, index) total order alone.
//   large path: one warp per token, lane l owns experts l + 32 i (moe_routing_kernel).
//   small path: one warp per token, each lane owns a contiguous run of one group's experts, so
//   group
//     scores need log2(lanes per group) shuffles and group choice is one rank count; the top-k is a
//     bitonic merge of per-lane sorted top-8 lists of 64-bit (value, index) keys (5 levels) instead
//     of k rounds of warp arg-max (moe_routing_small_kernel). Decode batches are latency-bound.
//   rank path: one CTA per token, a thread per expert, each chosen expert's slot is its rank
//     among all keys (routing_rank.cu); kAuto runs it for the few tokens of a decode step.
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <string>

#include "backend/cuda/common/cuda_check.h"
#include "backend/cuda/common/kernel_trace.cuh"
#include "backend/cuda/common/pdl.cuh"
#include "backend/cuda/moe/moe.h"
#include "backend/cuda/moe/routing_common.cuh"

namespace wideserve::cuda {
namespace {

using namespace routing;

constexpr int kWarps = 4;

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
  KernelTrace kt_(TraceKernel::kRouting);
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

// ---- Small path
// ----------------------------------------------------------------------------------

__device__ __forceinline__ void cmp_swap(uint64_t& a, uint64_t& b, bool desc) {
  const uint64_t hi = a > b ? a : b, lo = a > b ? b : a;
  a = desc ? hi : lo;
  b = desc ? lo : hi;
}

// Sorting network: k descending.
__device__ __forceinline__ void sort_desc(uint64_t (&k)[kKb]) {
#pragma unroll
  for (int size = 2; size <= kKb; size <<= 1)
#pragma unroll
    for (int stride = size / 2; stride > 0; stride >>= 1)
#pragma unroll
      for (int i = 0; i < kKb; ++i)
        if ((i ^ stride) > i) cmp_swap(k[i], k[i ^ stride], (i & size) == 0);
}

// a, b descending -> a = the kKb largest of both, descending (bitonic merge).
__device__ __forceinline__ void merge_top(uint64_t (&a)[kKb], const uint64_t (&b)[kKb]) {
#pragma unroll
  for (int i = 0; i < kKb; ++i) a[i] = a[i] > b[kKb - 1 - i] ? a[i] : b[kKb - 1 - i];
#pragma unroll
  for (int stride = kKb / 2; stride > 0; stride >>= 1)
#pragma unroll
    for (int i = 0; i < kKb; ++i)
      if ((i ^ stride) > i) cmp_swap(a[i], a[i ^ stride], true);
}

__device__ __forceinline__ uint64_t shfl_xor_u64(uint64_t v, int o) {
  const uint32_t lo = __shfl_xor_sync(kFull, static_cast<uint32_t>(v), o);
  const uint32_t hi = __shfl_xor_sync(kFull, static_cast<uint32_t>(v >> 32), o);
  return (static_cast<uint64_t>(hi) << 32) | lo;
}

// One warp (one block) per token; kMpl >= lay.per_lane experts per lane in registers.
template <int kMpl>
__global__ void __launch_bounds__(32)
    moe_routing_small_kernel(MoeRoutingParams p, SmallLayout lay) {
  KernelTrace kt_(TraceKernel::kRouting);
  kt_.wait();
  pdl_launch_dependents();
  static_assert(kMpl % kKb == 0, "kMpl must be a multiple of kKb");
  __shared__ float s_score[1024];  // final scores by expert (weights) / softmax exp values
  const int lane = threadIdx.x;
  const int64_t t = blockIdx.x;
  const int E = static_cast<int>(p.num_experts), K = static_cast<int>(p.top_k);
  const bool noaux = p.topk_method == 2;
  const bool use_bias = p.bias != nullptr && noaux;
  const int g = lane >> lay.lg_lanes, sub = lane & ((1 << lay.lg_lanes) - 1);
  const int first = g * lay.per + sub * lay.per_lane;
  const int held = g < lay.groups ? min(max(lay.per - sub * lay.per_lane, 0), lay.per_lane) : 0;
  const float* l = p.logits + t * E;

  float sc[kMpl], ch[kMpl];
#pragma unroll
  for (int i = 0; i < kMpl; ++i) {
    sc[i] = i < held ? __ldg(l + first + i) : 0.f;
    ch[i] = (use_bias && i < held) ? __ldg(p.bias + first + i) : 0.f;
  }
  if (p.scoring == 1) {
#pragma unroll
    for (int i = 0; i < kMpl; ++i) sc[i] = 1.0f / (1.0f + expf(-sc[i]));
  } else {
    float mx = -INFINITY;
#pragma unroll
    for (int i = 0; i < kMpl; ++i)
      if (i < held) mx = fmaxf(mx, sc[i]);
    mx = warp_max(mx);
#pragma unroll
    for (int i = 0; i < kMpl; ++i) {
      sc[i] = i < held ? expf(sc[i] - mx) : 0.f;
      if (i < held) s_score[first + i] = sc[i];
    }
    __syncwarp();
    // The large path's order: lane l sums experts l, l + 32, ... then a butterfly.
    float sum = 0.f;
    for (int e = lane; e < E; e += 32) sum += s_score[e];
    sum = warp_sum(sum);
#pragma unroll
    for (int i = 0; i < kMpl; ++i) sc[i] /= sum;
    __syncwarp();  // every lane has read the exp values before they are overwritten
  }
#pragma unroll
  for (int i = 0; i < kMpl; ++i) {
    if (i < held) s_score[first + i] = sc[i];
    ch[i] = sc[i] + ch[i];  // bias is 0 unless noaux_tc
  }

  if (lay.groups > 1) {
    // Group score: top-2 (noaux_tc, summed) or max of the group, over its lanes.
    float a = -INFINITY, b = -INFINITY;
#pragma unroll
    for (int i = 0; i < kMpl; ++i)
      if (i < held) top2_insert(ch[i], a, b);
    for (int o = (1 << lay.lg_lanes) >> 1; o > 0; o >>= 1) {
      const float oa = __shfl_xor_sync(kFull, a, o), ob = __shfl_xor_sync(kFull, b, o);
      const float hi = fmaxf(a, oa), lo = fminf(a, oa);
      b = fmaxf(lo, fmaxf(b, ob));
      a = hi;
    }
    const float gs = noaux ? (lay.per >= 2 ? a + b : a) : a;
    // Group g is kept iff fewer than topk_group groups beat it (value, then lower index).
    int rank = 0;
#pragma unroll
    for (int h = 0; h < 32; ++h) {
      if (h >= lay.groups) break;
      const float v = __shfl_sync(kFull, gs, h << lay.lg_lanes);
      rank += (v > gs || (v == gs && h < g)) ? 1 : 0;
    }
    if (rank >= p.topk_group) {
      const float masked = noaux ? -INFINITY : 0.0f;
#pragma unroll
      for (int i = 0; i < kMpl; ++i) ch[i] = masked;  // only the first `held` matter
    }
  }

  // Per-lane top-kKb, then a 5-level butterfly of bitonic merges: every lane ends with the top-kKb.
  uint64_t best[kKb];
#pragma unroll
  for (int c = 0; c < kMpl / kKb; ++c) {
    uint64_t k[kKb];
#pragma unroll
    for (int i = 0; i < kKb; ++i) {
      const int at = c * kKb + i;
      k[i] = at < held ? make_key(ch[at], first + at) : 0ull;
    }
    sort_desc(k);
    if (c == 0) {
#pragma unroll
      for (int i = 0; i < kKb; ++i) best[i] = k[i];
    } else {
      merge_top(best, k);
    }
  }
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    uint64_t other[kKb];
#pragma unroll
    for (int i = 0; i < kKb; ++i) other[i] = shfl_xor_u64(best[i], o);
    merge_top(best, other);
  }
  uint64_t mine = 0;
#pragma unroll
  for (int i = 0; i < kKb; ++i)
    if (i == lane) mine = best[i];
  __syncwarp();  // s_score complete
  // Weights in slot order, summed sequentially (as the CPU reference and the large path).
  const float w = lane < K ? s_score[key_index(mine)] : 0.f;
  float sum = 0.f;
  for (int j = 0; j < K; ++j) sum += __shfl_sync(kFull, w, j);
  const float denom = p.renormalize ? sum + 1e-20f : 1.0f;
  if (lane < K) {
    p.topk_ids[t * K + lane] = key_index(mine);
    p.topk_weights[t * K + lane] = w / denom * p.routed_scaling_factor;
  }
}

void launch_large(const MoeRoutingParams& p, cudaStream_t stream) {
  const bool grouped = p.topk_method != 0 && p.n_group > 1;
  const size_t smem = grouped ? size_t(kWarps) * p.num_experts * sizeof(float) : 0;
  const dim3 grid(static_cast<unsigned>((p.num_tokens + kWarps - 1) / kWarps));
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

void launch_small(const MoeRoutingParams& p, const SmallLayout& lay, cudaStream_t stream) {
  const dim3 grid(static_cast<unsigned>(p.num_tokens));
  launch_pdl(lay.per_lane <= 8 ? moe_routing_small_kernel<8> : moe_routing_small_kernel<32>, grid,
             dim3(32), 0, stream, p, lay);
}

}  // namespace

void routing::check_routing(const MoeRoutingParams& p) {
  WS_CUDA_REQUIRE(p.num_tokens >= 0, "moe routing: num_tokens " + std::to_string(p.num_tokens));
  WS_CUDA_REQUIRE(
      p.num_experts > 0 && p.num_experts <= 1024,
      "moe routing: num_experts must be in [1, 1024], got " + std::to_string(p.num_experts));
  WS_CUDA_REQUIRE(p.top_k > 0 && p.top_k <= 32 && p.top_k <= p.num_experts,
                  "moe routing: top_k " + std::to_string(p.top_k));
  WS_CUDA_REQUIRE(p.scoring == 0 || p.scoring == 1, "moe routing: scoring must be 0 or 1");
  WS_CUDA_REQUIRE(p.topk_method >= 0 && p.topk_method <= 2, "moe routing: topk_method 0..2");
  if (p.topk_method != 0 && p.n_group > 1) {
    // Only experts of the kept groups can be chosen (noaux_tc masks the others to -inf).
    WS_CUDA_REQUIRE(p.n_group <= 32 && p.num_experts % p.n_group == 0 && p.topk_group >= 1 &&
                        p.topk_group <= p.n_group,
                    "moe routing: " + std::to_string(p.num_experts) + " experts, " +
                        std::to_string(p.n_group) + " groups, topk_group " +
                        std::to_string(p.topk_group));
  }
  WS_CUDA_REQUIRE(p.num_tokens < (int64_t(1) << 31), "moe routing: too many tokens");
}

bool moe_routing_small_supported(const MoeRoutingParams& p) {
  SmallLayout lay{};
  return small_layout(p, &lay);
}

void launch_moe_routing_path(const MoeRoutingParams& p, MoePath path, cudaStream_t stream) {
  check_routing(p);
  SmallLayout lay{};
  const bool small_ok = small_layout(p, &lay);
  WS_CUDA_REQUIRE((path != MoePath::kSmall && path != MoePath::kRank) || small_ok,
                  "moe routing: the small and rank paths need top_k <= 8 and <= 32 experts per "
                  "lane");
  if (p.num_tokens == 0) return;
  WS_CUDA_REQUIRE(p.logits && p.topk_ids && p.topk_weights, "moe routing: null pointer");
  const bool small = path == MoePath::kSmall ||
                     (path == MoePath::kAuto && small_ok && p.num_tokens <= kMoeRoutingSmallTokens);
  const bool rank = path == MoePath::kRank ||
                    (path == MoePath::kAuto && small_ok && p.num_tokens <= kMoeRoutingRankTokens);
  if (rank) {
    launch_rank(p, lay, stream);
  } else if (small) {
    launch_small(p, lay, stream);
  } else {
    launch_large(p, stream);
  }
}

void launch_moe_routing(const MoeRoutingParams& p, cudaStream_t stream) {
  launch_moe_routing_path(p, kMoeDefaultPath, stream);
}

}  // namespace wideserve::cuda
