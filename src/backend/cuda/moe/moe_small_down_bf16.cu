// The fused small-batch MoE's down launch for BF16 weights on tensor cores (I % 128 == 0), as the
// FP8 down launch in moe_small.cu: activations staged as bf16 (the rounding the CUDA-core path
// applies), weight rows straight into MMA B fragments (mma_bf16_chunk64). ncu showed the
// CUDA-core version issue-bound at ~30 instructions per 16-byte chunk.

#include "backend/cuda/common/cuda_check.h"
#include "backend/cuda/common/kernel_trace.cuh"
#include "backend/cuda/common/mma_ptx.cuh"
#include "backend/cuda/common/pdl.cuh"
#include "backend/cuda/common/smem_opt_in.h"
#include "backend/cuda/moe/moe_small_common.cuh"

namespace wideserve::cuda {
namespace {

// 8-row groups per CTA of that path, and (row group, unit) items per warp at a time. At one
// token and H < 4096, one group with one item per warp (H / 8 CTAs, every warp busy); else two
// groups with two items per warp (half the CTAs, each staging the activations once for twice the
// rows). moe_bench --small, V2-Lite on the H200: T = 1 44.0 -> 42.6 us (one item per warp), T = 2
// 80.4 -> 71.7, T = 4 152.5 -> 135.0 (two groups).
__host__ __device__ inline int down_bf16_groups(const MoeSmallParams& p) {
  return p.hidden >= 4096 || p.num_tokens > 1 ? 2 : 1;
}
__host__ __device__ inline int down_bf16_items_per_warp(const MoeSmallParams& p) {
  return down_bf16_groups(p) == 1 ? 1 : 2;
}

// Rows r < nrows with bit r of `live` (len fp32 values each) rounded to bf16 into dst + r * len
// (the rounding the CUDA-core path applies when it stages them), 4 float4 loads per thread at once.
__device__ __forceinline__ void stage_bf16(const float* src, int nrows, int len, uint32_t live,
                                           __nv_bfloat16* dst, int tid) {
  constexpr int kBatch = 4;
  const int per = len / 4, total = nrows * per;
  for (int s0 = tid; s0 < total; s0 += kThreads * kBatch) {
    float4 f[kBatch];
#pragma unroll
    for (int b = 0; b < kBatch; ++b) {
      const int s = s0 + b * kThreads;
      if (s < total && ((live >> (s / per)) & 1u))
        f[b] = *reinterpret_cast<const float4*>(src + 4 * static_cast<int64_t>(s));
    }
#pragma unroll
    for (int b = 0; b < kBatch; ++b) {
      const int s = s0 + b * kThreads;
      if (s >= total || !((live >> (s / per)) & 1u)) continue;
      const __nv_bfloat162 lo = __floats2bfloat162_rn(f[b].x, f[b].y);
      const __nv_bfloat162 hi = __floats2bfloat162_rn(f[b].z, f[b].w);
      uint2 packed;
      packed.x = *reinterpret_cast<const uint32_t*>(&lo);
      packed.y = *reinterpret_cast<const uint32_t*>(&hi);
      *reinterpret_cast<uint2*>(dst + 4 * static_cast<int64_t>(s)) = packed;
    }
  }
}

// rows8_dots for bf16: NG groups of 8 weight rows against one bf16 vector each, kb 128-wide k
// blocks of four 64-byte chunks (mma_bf16_chunk64), no block scales, B blocks in flight. wv holds
// blocks 0 .. B - 1 on entry (load_blocks<NG, B, 4>(w, 0, kb, wv): the caller may issue them
// early). Lane (g, t): w[i] = its row g + t * 16, x[i] = the vector + t * 16 (read by g == 0 only).
// acc[i][e] (lanes g == 0): weight row 2t + e.
template <int NG, int B>
__device__ __forceinline__ void rows8_dots_bf16(const uint8_t* const (&w)[NG],
                                                const uint8_t* const (&x)[NG], int kb, bool a_row,
                                                float (&acc)[NG][2], uint4 (&wv)[B][NG][4]) {
  float c[NG][4];
#pragma unroll
  for (int i = 0; i < NG; ++i) c[i][0] = c[i][1] = c[i][2] = c[i][3] = 0.f;
  for (int b0 = 0; b0 < kb; b0 += B) {
    if (b0 > 0) load_blocks<NG, B, 4>(w, b0, kb, wv);
#pragma unroll
    for (int u = 0; u < B; ++u) {
      const int blk = b0 + u;
      if (blk >= kb) break;
#pragma unroll
      for (int i = 0; i < NG; ++i)
#pragma unroll
        for (int h = 0; h < 4; ++h) {
          const uint4 xv = a_row ? *reinterpret_cast<const uint4*>(x[i] + (blk * 4 + h) * 64)
                                 : make_uint4(0, 0, 0, 0);
          mma_bf16_chunk64(c[i], xv, wv[u][i][h]);
        }
    }
  }
#pragma unroll
  for (int i = 0; i < NG; ++i) {
    acc[i][0] = c[i][0];
    acc[i][1] = c[i][1];
  }
}

// Grid (ceil(H / (8 * groups)), T): stages the token's unit activations as bf16, one warp per
// (8-row group, unit) item (kIpw at a time) on tensor cores, then combines each row. ncu showed
// the CUDA-core launch issue-bound (~30 instructions per 16-byte chunk); two MMAs per load here.
// The routing (two launches back: routing, up, down) is complete when this grid starts, so each
// warp's first weight blocks are requested before pdl_wait, during the up launch's tail; only the
// activations wait for it. One item per warp (one token) keeps 4 blocks in flight, two items 2.
template <int kIpw>
__global__ void __launch_bounds__(kThreads, 2)
    moe_small_down_bf16_kernel(const MoeSmallParams p, int units, int groups) {
  KernelTrace kt_(TraceKernel::kMoeSmallDownBf16);
  constexpr int kB = kIpw == 1 ? 4 : 2;
  extern __shared__ __align__(16) uint8_t smem8[];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2, t4 = lane & 3;
  const int t = blockIdx.y;
  const int64_t I = p.inter, kb = I / 128;
  const int rows = 8 * groups;
  float* part = reinterpret_cast<float*>(smem8 + units * I * 2);  // [rows][units]
  uint32_t live = 0;
  for (int u = 0; u < units; ++u) {
    int64_t e = 0;
    if (unit_of(p, t, u, &e).valid) live |= 1u << u;
  }
  const int64_t n0 = static_cast<int64_t>(blockIdx.x) * rows;
  const int items = groups * units;
  const uint8_t* w[kIpw];
  const uint8_t* x[kIpw];
  bool ok[kIpw];
  bool any = false;
  // Weight rows and activation row of the warp's items i0 .. i0 + kIpw - 1.
  auto item_rows = [&](int i0) {
    any = false;
#pragma unroll
    for (int h = 0; h < kIpw; ++h) {
      const DownItem d = down_item(p, t, i0, h, items, units, n0, live, 2);
      ok[h] = d.ok;
      w[h] = d.rows.base + (d.row + g) * d.rows.row_bytes + t4 * 16;
      x[h] = smem8 + d.u * I * 2 + t4 * 16;
      any = any || ok[h];
    }
  };
  uint4 wv[kB][kIpw][4];
  const int first = warp * kIpw;
  if (first < items) {
    item_rows(first);
    if (any) load_blocks<kIpw, kB, 4>(w, 0, static_cast<int>(kb), wv);
  }
  const CombineEarly early = combine_early(p, t, n0, rows);
  kt_.wait();
  pdl_launch_dependents();
  stage_bf16(p.act + static_cast<int64_t>(t) * units * I, units, static_cast<int>(I), live,
             reinterpret_cast<__nv_bfloat16*>(smem8), threadIdx.x);
  __syncthreads();
  for (int i0 = first; i0 < items; i0 += kWarps * kIpw) {
    if (i0 != first) {
      item_rows(i0);
      if (any) load_blocks<kIpw, kB, 4>(w, 0, static_cast<int>(kb), wv);
    }
    if (!any) continue;  // warp-uniform
    float acc[kIpw][2];
    rows8_dots_bf16<kIpw, kB>(w, x, static_cast<int>(kb), g == 0, acc, wv);
    if (g == 0) store_item_dots<kIpw>(part, i0, items, units, t4, ok, acc);
  }
  __syncthreads();
  combine_rows(p, t, units, part, n0, rows, early);
}

}  // namespace

void launch_moe_small_down_bf16(const MoeSmallParams& p, int units, cudaStream_t stream) {
  static SmemOptIn smem_opt_in;
  smem_opt_in.raise({reinterpret_cast<const void*>(moe_small_down_bf16_kernel<1>),
                     reinterpret_cast<const void*>(moe_small_down_bf16_kernel<2>)},
                    static_cast<int>(kMaxSmem));
  const int groups = down_bf16_groups(p);
  const size_t smem = static_cast<size_t>(units * p.inter * 2 + 8 * groups * units * 4);
  launch_pdl(down_bf16_items_per_warp(p) == 1 ? moe_small_down_bf16_kernel<1>
                                              : moe_small_down_bf16_kernel<2>,
             dim3(static_cast<unsigned>(ceil_div(p.hidden, 8 * groups)),
                  static_cast<unsigned>(p.num_tokens)),
             dim3(kThreads), smem, stream, p, units, groups);
}

}  // namespace wideserve::cuda
