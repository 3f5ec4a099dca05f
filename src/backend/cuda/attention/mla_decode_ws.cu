// MLA decode "v4": warp-specialised variant of the absorbed MLA decode (one query token per CTA
// row group), selected by launch_mla_decode(p, s, MlaDecodeKernel::kV4). Same params, split plan,
// workspace layout and combine kernel as v3 (mla_attention.cu); design notes in docs/cuda_mla.md.
//
// A CTA owns one token, 16*MB heads (MB = 1 for H <= 16, else 2) and one KV split:
//   producer warp (the last): per 32-row KV tile, one lane per cache row looks up the page and
//     issues a 1152-byte cp.async.bulk into a ring stage, completing on the stage's `full`
//     mbarrier (expect-tx); it refills a stage after its `empty` mbarrier saw every consumer warp.
//   consumer warps (4 per group of 16 heads): warp j of a group holds Q[16 heads, d-slice j]
//     (d = 576 = 4 slices of 144) as mma A fragments in registers for the whole kernel, computes
//     the partial S[16, 32] over its slice (mma.sync m16n8k16), exchanges partials with the other
//     three warps through shared memory (one 128-thread named barrier per tile, double-buffered),
//     so every warp holds the same full S and runs the same online softmax (no cross-warp max or
//     sum); P stays in registers as the A operand of P·V, and warp j owns output columns
//     128j..128j+127 (V = first 512 columns of the same stage, ldmatrix.trans).
// No __syncthreads after the barrier init; MB = 1 fits two CTAs per SM (~89 KB shared memory).
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <string>

#include "backend/cuda/attention/mla.h"
#include "backend/cuda/attention/mla_combine.h"
#include "backend/cuda/attention/mla_decode_check.h"
#include "backend/cuda/attention/mla_decode_common.cuh"
#include "backend/cuda/attention/mla_decode_tma.h"
#include "backend/cuda/attention/mla_decode_wgmma.h"
#include "backend/cuda/attention/mla_plan.h"
#include "backend/cuda/common/cuda_check.h"
#include "backend/cuda/common/kernel_trace.cuh"
#include "backend/cuda/common/mbarrier_ptx.cuh"
#include "backend/cuda/common/mma_ptx.cuh"
#include "backend/cuda/common/pdl.cuh"
#include "backend/cuda/common/smem_opt_in.h"
#include "backend/cuda/common/tma_ptx.cuh"

namespace wideserve::cuda {
namespace {

constexpr int kBn = 32;                 // KV rows per tile: one producer lane per row
constexpr int kRow = 576;               // elements per cache row / query head
constexpr int kRowBytes = kRow * 2;     // 1152: one bulk copy
constexpr int kLat = 512;               // value / output width
constexpr int kStride = kRow + 8;       // smem row stride (1168 B): ldmatrix conflict-free
constexpr int kKSteps = kRow / 16 / 4;  // k16 steps of one warp's d-slice (9)
constexpr int kNTiles = kBn / 8;        // n8 tiles of S per KV tile (4)
constexpr int kOTiles = kLat / 4 / 8;   // n8 tiles of a warp's output columns (16)
constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

__host__ __device__ constexpr int ws_stages(int mb) {
  return mb == 1 ? 2 : 4;  // MB=1: two CTAs per SM; MB=2: one CTA, deeper ring
}
__host__ __device__ constexpr int ws_threads(int mb) {
  return 32 * (4 * mb + 1);
}

template <int MB>
struct WsSmem {
  static constexpr int kStages = ws_stages(MB);
  __nv_bfloat16 kv[kStages][kBn * kStride];
  float4 red[2][MB][4][kNTiles][32];  // [tile parity][group][warp][n8 tile][lane] partial S
  unsigned long long full[kStages];
  unsigned long long empty[kStages];
};

struct WsArgs {
  MlaAttentionParams p;
  int splits;
  float scale_log2;
  int page_shift;  // log2(page_size) when a power of two, else -1
};

// One cache row (global, 16-byte aligned) into shared memory; completes tx bytes on `bar`.
__device__ __forceinline__ void bulk_row(uint32_t dst, const void* src, uint32_t bar) {
  bulk_load(dst, src, kRowBytes, bar);
}

template <int MB>
__global__ void __launch_bounds__(ws_threads(MB), MB == 1 ? 2 : 1)
    mla_decode_ws_kernel(const WsArgs a) {
  KernelTrace kt_(TraceKernel::kMlaDecodeWs);
  kt_.wait();
  pdl_launch_dependents();
  using Sm = WsSmem<MB>;
  constexpr int kStages = Sm::kStages;
  constexpr int kConsumers = 4 * MB;
  constexpr uint32_t kStageBytes = kBn * kStride * 2;
  extern __shared__ __align__(128) unsigned char smem_raw[];
  Sm& sm = *reinterpret_cast<Sm*>(smem_raw);
  const MlaAttentionParams& p = a.p;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int hb = blockIdx.x, t = blockIdx.y, z = blockIdx.z;
  const int H = static_cast<int>(p.num_heads);

  // This CTA's KV range: split z's equal share (whole tiles) of the token's visible length.
  const MlaSplitRange range = mla_split_range<kBn>(p, t, z, a.splits);
  const int seq = range.seq, lo = range.lo, hi = range.hi, ntiles = range.ntiles;

  if (threadIdx.x == 0) {
#pragma unroll
    for (int s = 0; s < kStages; ++s) {
      mbar_init(smem_addr(&sm.full[s]), 1);
      mbar_init(smem_addr(&sm.empty[s]), kConsumers);
    }
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  }
  __syncthreads();  // the only block-wide barrier: barriers initialised

  if (warp == kConsumers) {
    // Producer. Rows past `hi` re-read row hi-1 (finite data; their scores are masked, P = 0).
    if (ntiles == 0) return;
    const int32_t* pages = p.page_table + static_cast<int64_t>(seq) * p.max_pages_per_seq;
    const int ps = static_cast<int>(p.page_size);
    auto slot_of = [&](int tile) {
      const int pos = min(lo + tile * kBn + lane, hi - 1);
      const int idx = a.page_shift >= 0 ? pos >> a.page_shift : pos / ps;
      const int off = a.page_shift >= 0 ? pos & (ps - 1) : pos % ps;
      return static_cast<int64_t>(__ldg(&pages[idx])) * ps + off;
    };
    int64_t slot = slot_of(0);
#pragma unroll 1
    for (int tile = 0; tile < ntiles; ++tile) {
      const int s = tile % kStages;
      if (tile >= kStages) mbar_wait(smem_addr(&sm.empty[s]), ((tile / kStages) & 1) ^ 1);
      if (lane == 0) mbar_expect_tx(smem_addr(&sm.full[s]), kBn * kRowBytes);
      __syncwarp();
      bulk_row(smem_addr(&sm.kv[s][lane * kStride]), p.kv_cache + slot * kRow,
               smem_addr(&sm.full[s]));
      // Next tile's page lookup flies while this warp waits for the next free stage.
      if (tile + 1 < ntiles) slot = slot_of(tile + 1);
    }
    return;
  }

  // Consumers. Fragment coordinates: g = row within the m16 tile (and g+8), c = column pair.
  const int grp = warp / 4, j = warp % 4, g = lane / 4, c = lane % 4;
  const int head0 = hb * 16 * MB + grp * 16;
  // Q[16 heads, d-slice j] as A fragments, straight from global memory (once per CTA).
  uint32_t qf[kKSteps][4];
  {
    const int h0 = head0 + g, h1 = head0 + g + 8;
    const uint32_t* q0 = reinterpret_cast<const uint32_t*>(
        p.q + (static_cast<int64_t>(t) * H + min(h0, H - 1)) * kRow);
    const uint32_t* q1 = reinterpret_cast<const uint32_t*>(
        p.q + (static_cast<int64_t>(t) * H + min(h1, H - 1)) * kRow);
#pragma unroll
    for (int ks = 0; ks < kKSteps; ++ks) {
      const int w = ((j * kKSteps + ks) * 16 + 2 * c) / 2;  // 32-bit word of column pair
      qf[ks][0] = h0 < H ? __ldg(q0 + w) : 0u;
      qf[ks][1] = h1 < H ? __ldg(q1 + w) : 0u;
      qf[ks][2] = h0 < H ? __ldg(q0 + w + 4) : 0u;
      qf[ks][3] = h1 < H ? __ldg(q1 + w + 4) : 0u;
    }
  }

  float acc[kOTiles][4];
#pragma unroll
  for (int n = 0; n < kOTiles; ++n) acc[n][0] = acc[n][1] = acc[n][2] = acc[n][3] = 0.f;
  float m_run[2] = {-INFINITY, -INFINITY}, l_run[2] = {0.f, 0.f};  // rows g, g+8 (log2 units)

  const uint32_t kv0 = smem_addr(&sm.kv[0][0]);
  // ldmatrix x4 of K: two n8 tiles (rows +0..7, +8..15) x k16 (cols +0..7, +8..15).
  const uint32_t k_lane =
      kv0 + ((lane % 8 + (lane / 16) * 8) * kStride + ((lane / 8) & 1) * 8 + j * kKSteps * 16) * 2;
  // ldmatrix x4.trans of V: k16 rows x two n8 tiles of this warp's 128 output columns.
  const uint32_t v_lane =
      kv0 + ((lane % 8 + ((lane / 8) & 1) * 8) * kStride + j * 128 + (lane / 16) * 8) * 2;

#pragma unroll 1
  for (int tile = 0; tile < ntiles; ++tile) {
    const int s = tile % kStages;
    mbar_wait(smem_addr(&sm.full[s]), (tile / kStages) & 1);
    const uint32_t k_addr = k_lane + s * kStageBytes, v_addr = v_lane + s * kStageBytes;

    // Partial S over this warp's d-slice: four independent accumulator chains (n8 tiles).
    float sp[kNTiles][4];
#pragma unroll
    for (int n = 0; n < kNTiles; ++n) sp[n][0] = sp[n][1] = sp[n][2] = sp[n][3] = 0.f;
#pragma unroll
    for (int ks = 0; ks < kKSteps; ++ks)
#pragma unroll
      for (int np = 0; np < kNTiles / 2; ++np) {
        uint32_t b[4];
        ldsm_x4(b, k_addr + (np * 16 * kStride + ks * 16) * 2);
        mma16816(sp[2 * np], qf[ks], b[0], b[1]);
        mma16816(sp[2 * np + 1], qf[ks], b[2], b[3]);
      }

    // Exchange partials within the group; every warp sums them in the same order (identical S).
    float4(&red)[4][kNTiles][32] = sm.red[tile & 1][grp];
#pragma unroll
    for (int n = 0; n < kNTiles; ++n)
      red[j][n][lane] = make_float4(sp[n][0], sp[n][1], sp[n][2], sp[n][3]);
    if (MB == 1 || grp == 0)  // group-wide (4 warps) barrier; id 0 is __syncthreads'
      named_sync<1, 128>();
    else
      named_sync<2, 128>();
    float sv[kNTiles][4];
#pragma unroll
    for (int n = 0; n < kNTiles; ++n) {
      const float4 r0 = red[0][n][lane], r1 = red[1][n][lane], r2 = red[2][n][lane],
                   r3 = red[3][n][lane];
      sv[n][0] = (r0.x + r1.x) + (r2.x + r3.x);
      sv[n][1] = (r0.y + r1.y) + (r2.y + r3.y);
      sv[n][2] = (r0.z + r1.z) + (r2.z + r3.z);
      sv[n][3] = (r0.w + r1.w) + (r2.w + r3.w);
    }

    // Online softmax (base 2). Positions >= hi (tail of the last tile) get P = 0.
    const int col0 = lo + tile * kBn + 2 * c;
    float mx[2] = {-INFINITY, -INFINITY};
#pragma unroll
    for (int n = 0; n < kNTiles; ++n)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int pos = col0 + n * 8 + (e & 1);
        sv[n][e] = pos < hi ? sv[n][e] * a.scale_log2 : -INFINITY;
        mx[e >> 1] = fmaxf(mx[e >> 1], sv[n][e]);
      }
    float mu[2];
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const float alpha = mla_online_max(mx[h], m_run[h], l_run[h], mu[h]);
#pragma unroll
      for (int n = 0; n < kOTiles; ++n) {
        acc[n][2 * h] *= alpha;
        acc[n][2 * h + 1] *= alpha;
      }
    }
#pragma unroll
    for (int n = 0; n < kNTiles; ++n)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        sv[n][e] = exp2f(sv[n][e] - mu[e >> 1]);
        l_run[e >> 1] += sv[n][e];
      }

      // O[:, 128j..128j+128) += P V; the S accumulator layout of n8 tiles (2kk, 2kk+1) is the A
      // fragment of k16 step kk.
#pragma unroll
    for (int kk = 0; kk < kBn / 16; ++kk) {
      const uint32_t pa[4] = {pack_bf16(sv[2 * kk][0], sv[2 * kk][1]),
                              pack_bf16(sv[2 * kk][2], sv[2 * kk][3]),
                              pack_bf16(sv[2 * kk + 1][0], sv[2 * kk + 1][1]),
                              pack_bf16(sv[2 * kk + 1][2], sv[2 * kk + 1][3])};
#pragma unroll
      for (int n = 0; n < kOTiles; n += 2) {
        uint32_t b[4];
        ldsm_x4_t(b, v_addr + (kk * 16 * kStride + n * 8) * 2);
        mma16816(acc[n], pa, b[0], b[1]);
        mma16816(acc[n + 1], pa, b[2], b[3]);
      }
    }
    __syncwarp();
    if (lane == 0) mbar_arrive(smem_addr(&sm.empty[s]));  // stage s free for the producer
  }

  // Epilogue: full row sums (quad), normalised output (+ lse). Each warp has the whole row's
  // softmax state, so no cross-warp reduction.
  const int64_t rows = p.num_tokens * H;
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    float l = l_run[h];
    l += __shfl_xor_sync(0xffffffffu, l, 1);
    l += __shfl_xor_sync(0xffffffffu, l, 2);
    const int head = head0 + g + 8 * h;
    if (head >= H) continue;
    const float inv = l > 0.f ? 1.f / l : 0.f;
    const int64_t th = static_cast<int64_t>(t) * H + head;
    const float lse = l > 0.f ? (m_run[h] + log2f(l)) * kLn2 : -INFINITY;
    if (j == 0 && c == 0) mla_store_lse(p, a.splits, z, rows, th, lse);
    mla_store_row<kOTiles>(p, a.splits, z, rows, th, j * 128 + 2 * c, &acc[0][0], h, inv);
  }
}

template <int MB>
void launch_ws(const WsArgs& a, dim3 grid, cudaStream_t s) {
  const int bytes = static_cast<int>(sizeof(WsSmem<MB>));
  static SmemOptIn smem_opt_in;
  smem_opt_in.once([&] {
    WS_CUDA_CHECK(cudaFuncSetAttribute(mla_decode_ws_kernel<MB>,
                                       cudaFuncAttributeMaxDynamicSharedMemorySize, bytes));
    // All of the unified L1/shared array as shared memory: MB=1 needs 2 x ~90 KB per SM.
    WS_CUDA_CHECK(cudaFuncSetAttribute(mla_decode_ws_kernel<MB>,
                                       cudaFuncAttributePreferredSharedMemoryCarveout,
                                       cudaSharedmemCarveoutMaxShared));
  });
  launch_pdl(mla_decode_ws_kernel<MB>, grid, dim3(ws_threads(MB)), static_cast<size_t>(bytes), s,
             a);
}

void run_v4(const MlaAttentionParams& p, cudaStream_t s) {
  if (!mla_decode_check(p, "v4")) return;
  const int sms = sm_count();
  MlaPlan plan = mla_plan(p.num_tokens, p.num_heads, p.max_seq_len, false, sms);
  const size_t ws_need = mla_workspace_bytes(p.num_tokens, p.num_heads, p.max_seq_len);
  if (plan.mb == 1) {
    // Two CTAs per SM: plan the waves over 2 * SMs, within the workspace v3's contract provides.
    const size_t per_split =
        static_cast<size_t>(p.num_tokens * p.num_heads * (kLat + 1)) * sizeof(float);
    const MlaPlan two = mla_plan(p.num_tokens, p.num_heads, p.max_seq_len, false, 2 * sms);
    if (two.splits == 1 || static_cast<size_t>(two.splits) * per_split <= ws_need) plan = two;
  }
  if (plan.splits > 1)
    WS_CUDA_REQUIRE(p.workspace != nullptr && p.workspace_bytes >= ws_need,
                    "mla v4: workspace of " + std::to_string(p.workspace_bytes) + " bytes, need " +
                        std::to_string(ws_need));
  int shift = -1;
  if ((p.page_size & (p.page_size - 1)) == 0)
    for (shift = 0; (int64_t{1} << shift) < p.page_size;) ++shift;
  const WsArgs a{p, static_cast<int>(plan.splits), p.softmax_scale * kLog2e, shift};
  const dim3 grid(static_cast<unsigned>(plan.head_blocks), static_cast<unsigned>(p.num_tokens),
                  static_cast<unsigned>(plan.splits));
  if (plan.mb == 1)
    launch_ws<1>(a, grid, s);
  else
    launch_ws<2>(a, grid, s);
  if (plan.splits > 1)
    launch_mla_combine(static_cast<const float*>(p.workspace), p.num_tokens * p.num_heads,
                       static_cast<int>(plan.splits), p.out, p.lse, s);
}

}  // namespace

void launch_mla_decode(const MlaAttentionParams& p, cudaStream_t s, MlaDecodeKernel kernel) {
  const bool wide = kernel == MlaDecodeKernel::kV5 || kernel == MlaDecodeKernel::kV6;
  if (kernel == MlaDecodeKernel::kV6 && mla_decode_wgmma_preferred(p) &&
      mla_decode_tma_supported(p))
    launch_mla_decode_tma(p, s);
  else if (wide && mla_decode_wgmma_preferred(p))
    launch_mla_decode_wgmma(p, s);
  else if (kernel == MlaDecodeKernel::kV4 || wide)
    run_v4(p, s);
  else
    launch_mla_decode(p, s);
}

}  // namespace wideserve::cuda
