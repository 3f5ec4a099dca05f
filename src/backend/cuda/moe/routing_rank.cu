// MoE routing, rank path (moe.h MoePath::kRank), and the router GEMV + rank routing in one
// clustered launch (launch_moe_router_route). docs/cuda_moe.md, "Routing, rank path" and "Router
// GEMV and routing in one launch".
#include <cooperative_groups.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <string>

#include "backend/cuda/common/cuda_check.h"
#include "backend/cuda/common/kernel_trace.cuh"
#include "backend/cuda/common/pdl.cuh"
#include "backend/cuda/moe/moe.h"
#include "backend/cuda/moe/routing_common.cuh"
#include "backend/cuda/ops/rms_row.cuh"

namespace wideserve::cuda {
namespace {

using namespace routing;

// The rank routing of token t, thread e = expert e of the whole CTA (every thread calls it):
// logit = that expert's router logit (any value past E), bias its correction bias (0 unless
// noaux_tc). s_key: [E] keys then [E] floats of shared memory.
__device__ __forceinline__ void rank_route_token(const MoeRoutingParams& p, const SmallLayout& lay,
                                                 int64_t t, float logit, float bias,
                                                 uint64_t* s_key) {
  __shared__ float s_red[32], s_group[32], s_sel_w[kKb];
  const int e = threadIdx.x, lane = e & 31, warp = e >> 5;
  const int E = static_cast<int>(p.num_experts), K = static_cast<int>(p.top_k);
  float* s_score = reinterpret_cast<float*>(s_key + E);
  const bool noaux = p.topk_method == 2;
  const bool valid = e < E;
  float sc = valid ? logit : 0.f;
  if (p.scoring == 1) {
    sc = 1.0f / (1.0f + expf(-sc));
  } else {
    const float m = warp_max(valid ? sc : -INFINITY);
    if (lane == 0) s_red[warp] = m;
    __syncthreads();
    float mx = -INFINITY;
    for (int w = 0; w < static_cast<int>(blockDim.x >> 5); ++w) mx = fmaxf(mx, s_red[w]);
    sc = valid ? expf(sc - mx) : 0.f;
    if (valid) s_score[e] = sc;
    __syncthreads();
    // The small path's order: lane l sums experts l, l + 32, ... then a butterfly.
    if (warp == 0) {
      float sum = 0.f;
      for (int i = lane; i < E; i += 32) sum += s_score[i];
      sum = warp_sum(sum);
      if (lane == 0) s_red[0] = sum;
    }
    __syncthreads();
    sc /= s_red[0];
  }
  float ch = sc + bias;  // bias is 0 unless noaux_tc
  if (valid) s_score[e] = ch;
  __syncthreads();
  if (lay.groups > 1) {
    // Group score: top-2 (noaux_tc, summed) or max of the group; group g is kept iff fewer than
    // topk_group groups beat it (value, then lower index).
    if (e < lay.groups) {
      float a = -INFINITY, b = -INFINITY;
      for (int i = 0; i < lay.per; ++i) top2_insert(s_score[e * lay.per + i], a, b);
      s_group[e] = noaux ? (lay.per >= 2 ? a + b : a) : a;
    }
    __syncthreads();
    const int g = valid ? e / lay.per : 0;
    const float gs = s_group[g];
    int rank = 0;
    for (int h = 0; h < lay.groups; ++h) {
      const float v = s_group[h];
      rank += (v > gs || (v == gs && h < g)) ? 1 : 0;
    }
    if (rank >= p.topk_group) ch = noaux ? -INFINITY : 0.0f;
  }
  const uint64_t key = make_key(ch, e);
  __syncthreads();  // every group score is read before s_score holds the weights
  if (valid) {
    s_key[e] = key;
    s_score[e] = sc;
  }
  __syncthreads();
  int rank = K;  // past the block's experts: never chosen
  if (valid) {
    rank = 0;
    for (int i = 0; i < E; ++i) rank += s_key[i] > key ? 1 : 0;
  }
  if (rank < K) s_sel_w[rank] = sc;  // K distinct ranks: each slot written once
  __syncthreads();
  if (rank >= K) return;
  // Weights in slot order, summed sequentially (as the CPU reference and the other paths).
  float sum = 0.f;
  for (int j = 0; j < K; ++j) sum += s_sel_w[j];
  const float denom = p.renormalize ? sum + 1e-20f : 1.0f;
  p.topk_ids[t * K + rank] = e;
  p.topk_weights[t * K + rank] = sc / denom * p.routed_scaling_factor;
}

// Rank path: one CTA per token, thread e owns expert e (blockDim = E rounded up to 32). Each
// chosen expert's slot is its rank, the number of (value, index) keys that beat its own, counted
// over every expert's key in shared memory: a few block barriers and E shared-memory reads instead
// of one warp's chain of bitonic merges (the small path's 4.7 us per launch at V2-Lite batch 1 on
// the H200, kernel trace). Softmax sums, group scores and weights use the small path's
// expressions in its order, so the outputs are bit-identical.
__global__ void moe_routing_rank_kernel(MoeRoutingParams p, SmallLayout lay) {
  KernelTrace kt_(TraceKernel::kRouting);
  extern __shared__ uint64_t s_key[];  // [E] keys, then [E] floats: scores by expert
  const int e = threadIdx.x;
  const bool valid = e < p.num_experts;
  // The bias is constant: loaded before waiting for the router.
  const float bias = (p.bias != nullptr && p.topk_method == 2 && valid) ? __ldg(p.bias + e) : 0.f;
  kt_.wait();
  pdl_launch_dependents();
  const int64_t t = blockIdx.x;
  const float logit = valid ? __ldg(p.logits + t * p.num_experts + e) : 0.f;
  rank_route_token(p, lay, t, logit, bias, s_key);
}

// ---- Router GEMV + rank routing in one launch
// ------------------------------------------------

constexpr int kRrCluster = 8;    // CTAs of one token's cluster
constexpr int kRrThreads = 256;  // >= E (<= 256 experts)
constexpr int kRrBatch = 8;      // 16-byte weight loads per lane in flight

struct RouterRouteArgs {
  MoeRoutingParams p;
  SmallLayout lay;
  const __nv_bfloat16* x;  // [T, H]
  const __nv_bfloat16* w;  // [E, H]
  float* logits;           // [T, E] out
  int hidden;
  // MoeRouterRouteInputs::norm_src / norm_w / norm_eps: x made from these rows.
  const float* norm_src;
  const __nv_bfloat16* norm_w;
  float norm_eps;
};

// Dot of 8 bf16 weights with 8 bf16 inputs, in fp32, into acc (in element order).
__device__ __forceinline__ float dot8(const uint4 w, const uint4 x, float acc) {
  const uint32_t wa[4] = {w.x, w.y, w.z, w.w}, xa[4] = {x.x, x.y, x.z, x.w};
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    acc = fmaf(__uint_as_float(wa[i] << 16), __uint_as_float(xa[i] << 16), acc);
    acc = fmaf(__uint_as_float(wa[i] & 0xffff0000u), __uint_as_float(xa[i] & 0xffff0000u), acc);
  }
  return acc;
}

// Grid (kRrCluster, T), clusters of kRrCluster CTAs along x: CTA r of token t's cluster makes the
// router logits of experts r, r + kRrCluster, ... (a warp per expert, weights loaded before
// pdl_wait) into CTA 0's shared memory, and CTA 0 then routes the token as the rank path does.
// One launch and no round trip of the logits through global memory between the two.
__global__ void __launch_bounds__(kRrThreads) moe_router_route_kernel(const RouterRouteArgs a) {
  KernelTrace kt_(TraceKernel::kRouting);
  namespace cg = cooperative_groups;
  cg::cluster_group cluster = cg::this_cluster();
  extern __shared__ uint64_t s_key[];  // [E] keys, [E] scores, [E] logits, then x [H] bf16
  const MoeRoutingParams& p = a.p;
  const int E = static_cast<int>(p.num_experts), H = a.hidden;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int crank = static_cast<int>(cluster.block_rank());
  const int64_t t = blockIdx.y;
  float* s_logit = reinterpret_cast<float*>(s_key + E) + E;
  uint4* s_x = reinterpret_cast<uint4*>(s_key + 2 * E);  // 16 bytes per expert before it
  const int nch = H / 8;                                 // 16-byte chunks of a row
  // Expert of this warp's first row; its first chunks go out before waiting (weights are
  // constant).
  const int stride = kRrCluster * (kRrThreads / 32);
  int e = crank + kRrCluster * warp;
  uint4 wv[kRrBatch];
  auto load = [&](int ex, int c0) {
    const uint4* row = reinterpret_cast<const uint4*>(a.w + static_cast<int64_t>(ex) * H);
#pragma unroll
    for (int i = 0; i < kRrBatch; ++i) {
      const int c = c0 + 32 * i;
      wv[i] = c < nch ? __ldg(row + c) : make_uint4(0, 0, 0, 0);
    }
  };
  if (e < E) load(e, lane);
  const float bias = (p.bias != nullptr && p.topk_method == 2 && crank == 0 && threadIdx.x < E)
                         ? __ldg(p.bias + threadIdx.x)
                         : 0.f;
  const uint4 nw =
      a.norm_src != nullptr ? rms_weight_chunk(a.norm_w, threadIdx.x, nch) : make_uint4(0, 0, 0, 0);
  kt_.wait();
  pdl_launch_dependents();
  if (a.norm_src != nullptr) {  // x = RMSNorm(row t) * w, thread c chunk c (nch <= kRrThreads)
    float v[8];
    rms_load_chunk(a.norm_src + t * H, threadIdx.x, nch, v);
    const uint4 o = rms_norm_chunk(v, nw, H, a.norm_eps);
    if (static_cast<int>(threadIdx.x) < nch) s_x[threadIdx.x] = o;
  } else {
    for (int c = threadIdx.x; c < nch; c += kRrThreads)
      s_x[c] = *reinterpret_cast<const uint4*>(a.x + t * H + 8 * static_cast<int64_t>(c));
  }
  __syncthreads();
  float* leader_logit = cluster.map_shared_rank(s_logit, 0);
  for (; e < E; e += stride) {
    float acc = 0.f;
    for (int c0 = lane; c0 < nch; c0 += 32 * kRrBatch) {
      if (c0 != lane) load(e, c0);
#pragma unroll
      for (int i = 0; i < kRrBatch; ++i) {
        const int c = c0 + 32 * i;
        if (c < nch) acc = dot8(wv[i], s_x[c], acc);
      }
    }
    acc = warp_sum(acc);
    if (lane == 0) {
      leader_logit[e] = acc;
      a.logits[t * E + e] = acc;
    }
    if (e + stride < E) load(e + stride, lane);
  }
  cluster.sync();  // every logit is in CTA 0's shared memory
  if (crank != 0) return;
  const float logit = threadIdx.x < E ? s_logit[threadIdx.x] : 0.f;
  rank_route_token(p, a.lay, t, logit, bias, s_key);
}

size_t router_route_smem(int64_t E, int64_t H) {
  return static_cast<size_t>(E) * 16 + static_cast<size_t>(H) * 2;  // key, score, logit; x
}

}  // namespace

void routing::launch_rank(const MoeRoutingParams& p, const SmallLayout& lay, cudaStream_t stream) {
  const unsigned threads = static_cast<unsigned>((p.num_experts + 31) / 32 * 32);
  launch_pdl(moe_routing_rank_kernel, dim3(static_cast<unsigned>(p.num_tokens)), dim3(threads),
             static_cast<size_t>(p.num_experts) * (sizeof(uint64_t) + sizeof(float)), stream, p,
             lay);
}

std::string moe_router_route_unsupported(const MoeRoutingParams& p,
                                         const MoeRouterRouteInputs& in) {
  SmallLayout lay{};
  if (!small_layout(p, &lay)) return "top_k > 8 or too many experts per lane";
  if (p.num_experts > kRrThreads)
    return "num_experts " + std::to_string(p.num_experts) + " > " + std::to_string(kRrThreads);
  if (p.num_tokens > kMoeRoutingRankTokens)
    return "num_tokens " + std::to_string(p.num_tokens) + " > " +
           std::to_string(kMoeRoutingRankTokens);
  if (in.norm_src != nullptr) {
    const std::string why = rms_row_unsupported(in.norm_src, in.norm_w, in.hidden, kRrThreads);
    if (!why.empty()) return "x by RMSNorm: " + why;
  }
  if ((in.x == nullptr && in.norm_src == nullptr) || in.w == nullptr || in.logits == nullptr ||
      p.topk_ids == nullptr || p.topk_weights == nullptr)
    return "null pointer";
  if (in.hidden < 8 || in.hidden % 8 != 0 ||
      router_route_smem(p.num_experts, in.hidden) > 48 * 1024)
    return "hidden " + std::to_string(in.hidden) +
           " (want a multiple of 8 whose row fits 48 KB of shared memory)";
  if (reinterpret_cast<uintptr_t>(in.x) % 16 != 0 || reinterpret_cast<uintptr_t>(in.w) % 16 != 0)
    return "x and w must be 16-byte aligned";
  return {};
}

void launch_moe_router_route(const MoeRoutingParams& p, const MoeRouterRouteInputs& in,
                             cudaStream_t stream) {
  check_routing(p);
  const std::string why = moe_router_route_unsupported(p, in);
  WS_CUDA_REQUIRE(why.empty(), "moe router + routing: " + why);
  if (p.num_tokens == 0) return;
  RouterRouteArgs a{p,           {},        in.x,
                    in.w,        in.logits, static_cast<int>(in.hidden),
                    in.norm_src, in.norm_w, in.norm_eps};
  small_layout(p, &a.lay);
  launch_pdl_clusters(moe_router_route_kernel,
                      dim3(kRrCluster, static_cast<unsigned>(p.num_tokens)), dim3(kRrThreads),
                      kRrCluster, router_route_smem(p.num_experts, in.hidden), stream, a);
}

}  // namespace wideserve::cuda
