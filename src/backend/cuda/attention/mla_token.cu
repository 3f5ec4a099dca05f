// launch_mla_token (mla_token.h). Cluster c holds heads 2c and 2c + 1; CTA r of its C (8, or 16
// non-portable) owns 1/C of the absorbed query's columns, of the sequence's rows and of W_UV's
// rows. docs/cuda_mla.md, "One token in one launch", has the design and the measurements.
// - Before pdl_wait, only what no kernel of the step writes: W_UK's columns by cp.async, the
//   page-table entries of its first chunk of rows, the norm weight and inv_freq (raw loads: a
//   value used here would stall the thread before its wait).
// - After it: the first chunk's cache rows, by tensor-map boxes of 16 rows into a ring swizzled
//   by 128 bytes where page_size % 16 == 0 (row slices then start at multiples of 16), else by
//   one bulk copy per row into a padded ring; q_nope, the roped q_pe; its absorbed-query
//   columns, sent to every CTA of the cluster through
//   distributed shared memory; a split cluster barrier, with the token's latent row made in
//   between by the CTA holding the position (cluster 0's also stores it into the cache) and W_UV
//   copied into W_UK's place; the next kernel released; per chunk of up to 144 cached rows, the
//   scores S^T = K Q^T and O^T = V^T P^T on mma.sync (16 rows or 64 latent columns per warp) with
//   an online softmax, the token's own row as one extra score; its partial output and (max, sum)
//   to shared memory; a cluster barrier; each CTA combines its 1/C of the columns from every
//   CTA's partials and sends the bf16 result to the whole cluster; a cluster barrier; W_UV rows.
// - Launched with all of an SM's shared memory, so no other kernel's CTA shares its SMs.
// Where a separate kernel rounds to bf16 (roped q_pe, absorbed query, latent row, attention
// output, W_UV output), this one does too, and P is bf16 for the MMA as in the decode kernels;
// the latent row is the rope prep kernel's bit for bit.
#include "backend/cuda/attention/mla_token.h"

#include <cooperative_groups.h>
#include <cuda_bf16.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "backend/cuda/common/cuda_check.h"
#include "backend/cuda/common/kernel_trace.cuh"
#include "backend/cuda/common/mbarrier_ptx.cuh"
#include "backend/cuda/common/mma_ptx.cuh"
#include "backend/cuda/common/pdl.cuh"
#include "backend/cuda/common/smem_opt_in.h"
#include "backend/cuda/common/tensor_map.h"
#include "backend/cuda/common/tma_ptx.cuh"
#include "backend/cuda/ops/block_sum.cuh"

namespace wideserve::cuda {
namespace {

namespace cg = cooperative_groups;
using bf16 = __nv_bfloat16;

constexpr int kHg = 2;  // heads per cluster
constexpr int kThreads = 256;
constexpr int kChunk = 144;  // cache rows in shared memory at once (a split of 1024 + 1 fits)
constexpr int kNope = 128, kV = 128, kLat = 512, kRope = 64, kRow = kLat + kRope;
constexpr int kRowChunks = kRow / 8;  // 16-byte chunks of a cache row
constexpr int kRowPad = kRow + 8;     // ring row stride: 1168 bytes, ldmatrix without conflicts
constexpr int kGroups = kRow / 64;    // 128-byte column groups of a row (the TMA ring's layout)
constexpr int kBox = 16;              // cache rows per TMA box
constexpr float kLog2e = 1.4426950408889634f;
static_assert(kThreads == kHg * kNope && kThreads * 2 == kLat && kChunk % 16 == 0 && kHg == 2);

// kTma: the ring holds [column group][row][128 bytes] with the 128-byte swizzle, filled by
// tensor-map boxes of kBox rows; else [row][kRowPad], one bulk copy per row.
template <int kCs, bool kTma>
struct Smem {
  static constexpr int kRingBytes = kTma ? kGroups * kChunk * 128 : kChunk * kRowPad * 2;
  alignas(1024) uint8_t ring[kRingBytes];      // first: the base is 1024-byte aligned
  static constexpr int kAbsCols = kLat / kCs;  // absorbed-query columns per CTA
  static constexpr int kUvRows = kV / kCs;     // W_UV rows per CTA and head
  static_assert(kNope * kAbsCols == kUvRows * kLat);
  // W_UK's columns [h][row][col] until the absorbed query is made, then W_UV's rows [h][v][lat].
  alignas(16) bf16 w[kHg][kNope * kAbsCols];
  __device__ bf16* uk(int h, int row) { return w[h] + row * kAbsCols; }
  __device__ bf16* uv(int h, int v) { return w[h] + v * kLat; }
  alignas(16) bf16 qb[kHg][kRow];  // absorbed query | roped q_pe
  alignas(16) bf16 cur[kRow];      // the token's own latent row
  alignas(16) bf16 ob[kHg][kLat];
  alignas(16) float qn[kHg][kNope];
  alignas(16) float part[kHg][kLat];  // unnormalised P.V over this CTA's rows (read by the cluster)
  alignas(16) float ml[kHg][2];       // running max (log2 units) and sum (read by the cluster)
  alignas(16) float pr[kChunk][kHg];  // scores
  alignas(16) bf16 pb[kHg][kChunk];   // probabilities (the P.V MMA's B operand)
  alignas(16) float corr[kHg];
  alignas(16) float pcur[kHg];  // probability of the token's own row (0 where it is not here)
  alignas(16) int64_t slot[kChunk];
  alignas(8) uint64_t bar[2];  // weights landed; the chunk's rows landed (one phase per chunk)
};

// Shared address of element c (a multiple of 8) of ring row r.
template <bool kTma>
__device__ __forceinline__ uint32_t ring_at(uint32_t ring, int r, int c) {
  if constexpr (kTma)
    return ring + (c / 64) * (kChunk * 128) + r * 128 + ((((c % 64) / 8) ^ (r & 7)) << 4);
  else
    return ring + (r * kRowPad + c) * 2;
}

__device__ __forceinline__ float bf(bf16 x) {
  return __bfloat162float(x);
}

__device__ __forceinline__ void dot8(const uint4& a, const uint4& b, float& acc) {
  const auto* x = reinterpret_cast<const __nv_bfloat162*>(&a);
  const auto* y = reinterpret_cast<const __nv_bfloat162*>(&b);
#pragma unroll
  for (int k = 0; k < 4; ++k) {
    const float2 u = __bfloat1622float2(x[k]), v = __bfloat1622float2(y[k]);
    acc = fmaf(u.x, v.x, acc);
    acc = fmaf(u.y, v.y, acc);
  }
}

__device__ __forceinline__ void stamp(const MlaTokenParams& p, int point) {
  if (p.stamps != nullptr && threadIdx.x == 0) {
    unsigned long long t;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
    p.stamps[blockIdx.x * kMlaTokenStamps + point] = t;
    if (point == 0 || point == 11)  // SM cycles too: the clock the CTA ran at
      p.stamps[blockIdx.x * kMlaTokenStamps + kMlaTokenStamps - 2 + (point != 0)] = clock64();
  }
}

// A stamp taken once `dep` (a loaded value) has arrived: the asm reads it.
__device__ __forceinline__ void stamp_after(const MlaTokenParams& p, int point, uint32_t dep) {
  if (p.stamps != nullptr && threadIdx.x == 0) {
    unsigned long long t;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t) : "r"(dep));
    p.stamps[blockIdx.x * kMlaTokenStamps + point] = t;
  }
}

template <int kCs, bool kTma>
__global__ void __launch_bounds__(kThreads, 1)
    mla_token_kernel(const MlaTokenParams p, const __grid_constant__ CUtensorMap kv_map) {
  using S = Smem<kCs, kTma>;
  constexpr int kAbsCols = S::kAbsCols, kUvRows = S::kUvRows;
  KernelTrace kt_(TraceKernel::kMlaToken);
  extern __shared__ __align__(16) uint8_t smem_raw[];
  // 1024-byte aligned (the swizzle's atoms); every CTA of the cluster has the same offset.
  S& s = *reinterpret_cast<S*>(smem_raw + ((1024 - (smem_addr(smem_raw) & 1023)) & 1023));
  const uint32_t ring = smem_addr(s.ring);
  stamp(p, 0);
  cg::cluster_group cluster = cg::this_cluster();
  const int rank = static_cast<int>(cluster.block_rank());
  const int cid = static_cast<int>(blockIdx.x) / kCs;
  const int64_t h0 = static_cast<int64_t>(cid) * kHg;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int64_t pos = p.position[0], ps = p.page_size;
  const int64_t len = min(pos + 1, static_cast<int64_t>(p.seq_len[0]));
  // Row slices; the TMA ring's start at multiples of kBox, so that boxes stay inside pages.
  auto cut = [&](int r) {
    const int64_t b = len * r / kCs;
    return kTma && r < kCs ? b / kBox * kBox : b;
  };
  const int64_t r0 = cut(rank), r1 = cut(rank + 1);
  const int64_t cached_end = min(r1, pos);  // rows below it come from the cache
  const bool has_pos = pos >= r0 && pos < r1;
  // The CTA that makes the token's latent row: the one whose rows hold it, or the last when the
  // token does not see itself (seq_len <= position); cluster 0's stores it into the cache.
  const bool makes_row = has_pos || (rank == kCs - 1 && pos >= len);
  // Chunks of cached rows; the token's own row (the last of the position's CTA) joins the last
  // chunk from s.cur as one extra score, so 1024 + 1 rows split 8 ways take 8 MMA tiles each.
  const int64_t n_cached = max(int64_t{0}, cached_end - r0);
  const int chunks = max(static_cast<int>((n_cached + kChunk - 1) / kChunk), has_pos ? 1 : 0);

  // ---- Before the wait: W_UK columns by cp.async (many 16-byte pieces, quick to issue), then raw
  // loads of what the first steps after it need (page-table entries of the first chunk, the norm
  // weight, inv_freq).
  const uint32_t bar_w = smem_addr(&s.bar[0]), bar_c = smem_addr(&s.bar[1]);
  if (tid == 0) {
    mbar_init(bar_w, 1);
    mbar_init(bar_c, 1);
    asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
  }
  __syncthreads();
  stamp(p, 1);
  const int64_t head_stride = static_cast<int64_t>(kNope + kV) * kLat;
  for (int i = tid; i < kHg * kNope * (kAbsCols / 8); i += kThreads) {
    const int h = i / (kNope * (kAbsCols / 8)), rem = i % (kNope * (kAbsCols / 8));
    const int row = rem / (kAbsCols / 8), c = rem % (kAbsCols / 8);
    cp_async_16(smem_addr(s.uk(h, row) + c * 8), p.w_kv_b + (h0 + h) * head_stride +
                                                     static_cast<int64_t>(row) * kLat +
                                                     rank * kAbsCols + c * 8);
  }
  asm volatile("cp.async.commit_group;" ::: "memory");
  // Chunk k's slots (a thread per row) and its cached rows, one bulk copy per row; chunk 0 issues
  // straight from the registers, later chunks go through s.slot (the caller syncs in between).
  auto row_slot = [&](int k) {
    const int64_t at = r0 + static_cast<int64_t>(k) * kChunk + tid;
    return at < cached_end ? static_cast<int64_t>(p.page_table[at / ps]) * ps + at % ps : -1;
  };
  auto chunk_rows = [&](int k) {
    const int64_t t0 = r0 + static_cast<int64_t>(k) * kChunk;
    return static_cast<int>(max(int64_t{0}, min(int64_t{kChunk}, cached_end - t0)));
  };
  auto chunk_slots = [&](int k) {
    if (tid < kChunk) s.slot[tid] = row_slot(k);
  };
  // The TMA ring: box b of chunk k (rows 16 b ..) into every column group, thread i issuing
  // group i % kGroups of box i / kGroups from its page id.
  auto chunk_boxes = [&](int k) { return (chunk_rows(k) + kBox - 1) / kBox; };
  auto box_at = [&](int k, int b) { return r0 + static_cast<int64_t>(k) * kChunk + kBox * b; };
  // This thread's page id (threads below the chunk's boxes x kGroups) and its copy from it.
  auto box_page = [&](int k) {
    return tid < chunk_boxes(k) * kGroups ? p.page_table[box_at(k, tid / kGroups) / ps] : 0;
  };
  auto load_boxes = [&](int k, int32_t page) {
    const int boxes = chunk_boxes(k);
    if (tid == 0) mbar_expect_tx(bar_c, static_cast<uint32_t>(boxes * kBox * kRow * 2));
    if (tid < boxes * kGroups) {
      const int b = tid / kGroups, g = tid % kGroups;
      tma_load_2d(ring + g * (kChunk * 128) + b * kBox * 128, &kv_map, g * 64,
                  static_cast<int>(static_cast<int64_t>(page) * ps + box_at(k, b) % ps), bar_c);
    }
  };
  auto load_chunk = [&](int k) {
    if constexpr (kTma) {
      load_boxes(k, box_page(k));
    } else {
      const int rows = chunk_rows(k);
      if (tid == 0) mbar_expect_tx(bar_c, static_cast<uint32_t>(rows * kRow * 2));
      if (tid < rows)
        bulk_load(ring_at<kTma>(ring, tid, 0), p.kv_cache + s.slot[tid] * kRow, kRow * 2, bar_c);
    }
  };
  // Chunk 0's slots are read now; the copies go out after the wait, once the query's loads are
  // in flight too (a thread waiting on its page read here would hold the whole CTA back).
  const int rows0 = chunk_rows(0);
  // Raw loads only: anything computed from them here would stall the thread before its wait.
  const int64_t at0 = r0 + tid;
  const int32_t page0 = kTma ? box_page(0) : (tid < rows0 ? p.page_table[at0 / ps] : 0);
  if (kTma && tid == 0) tma_prefetch_map(&kv_map);
  const bf16 nw0_raw = p.kv_a_norm[tid], nw1_raw = p.kv_a_norm[tid + kThreads];
  const float inv_freq = tid < kHg * kRope / 2 ? p.rope.inv_freq[tid % (kRope / 2)] : 0.f;
  stamp(p, 2);

  kt_.wait();
  stamp(p, 3);
  // Whether the loads issued before the wait are in (each stamp waits for its value).
  stamp_after(p, 21, static_cast<uint32_t>(__bfloat16_as_ushort(nw0_raw)));
  stamp_after(p, 20, __float_as_uint(inv_freq));
  stamp_after(p, 18, static_cast<uint32_t>(page0));
  // Rope angles of the position (threads 0 .. 63: head tid / 32, pair tid % 32), as the rope
  // prep kernel makes them; after the wait so that no thread stalls on inv_freq before it.
  float rc = 0.f, rs = 0.f;
  if (tid < kHg * kRope / 2) {
    sincosf(inv_freq * static_cast<float>(pos), &rs, &rc);
    rc *= p.rope.attention_factor;
    rs *= p.rope.attention_factor;
  }

  // ---- q_nope, the roped q_pe, and (the CTA holding the position) the token's latent row: every
  // load of a thread issued at once (one round trip), the norm weight read before the wait.
  float x0 = 0.f, x1 = 0.f, xa = 0.f, xb = 0.f;  // the token's kv_a row (makes_row)
  {
    const int h = tid / kNope, i = tid % kNope;
    const bf16* x = p.kv_a;
    const float qv = bf(p.q[(h0 + h) * p.q_stride + i]);
    float qa = 0.f, qb2 = 0.f;
    if (tid < kHg * kRope / 2) {
      const bf16* qp = p.q + (h0 + tid / (kRope / 2)) * p.q_stride + kNope;
      qa = bf(qp[2 * (tid % (kRope / 2))]);
      qb2 = bf(qp[2 * (tid % (kRope / 2)) + 1]);
    }
    if (makes_row) {
      x0 = bf(x[tid]);
      x1 = bf(x[tid + kThreads]);
      if (tid < kRope / 2) {
        xa = bf(x[kLat + 2 * tid]);
        xb = bf(x[kLat + 2 * tid + 1]);
      }
    }
    stamp_after(p, 19, __float_as_uint(qv));
    if constexpr (kTma) {
      load_boxes(0, page0);
    } else {
      if (tid == 0) mbar_expect_tx(bar_c, static_cast<uint32_t>(rows0 * kRow * 2));
      if (tid < rows0)
        bulk_load(ring_at<kTma>(ring, tid, 0),
                  p.kv_cache + (static_cast<int64_t>(page0) * ps + at0 % ps) * kRow, kRow * 2,
                  bar_c);
    }
    stamp(p, 14);
    s.qn[h][i] = qv;
    if (tid < kHg * kRope / 2) {
      const int hh = tid / (kRope / 2), j = tid % (kRope / 2);
      s.qb[hh][kLat + j] = __float2bfloat16(qa * rc - qb2 * rs);
      s.qb[hh][kLat + kRope / 2 + j] = __float2bfloat16(qb2 * rc + qa * rs);
    }
  }
  stamp(p, 15);
  asm volatile("cp.async.wait_group 0;" ::: "memory");  // W_UK (the bulk copies may not be)
  stamp(p, 16);
  __syncthreads();
  stamp(p, 4);

  // ---- Absorbed query: column pairs, kThreads / units threads each, sent to the whole cluster.
  {
    constexpr int kUnits = kHg * kAbsCols / 2, kPer = kThreads / kUnits, kSpan = kNope / kPer;
    const int u = tid / kPer, sub = tid % kPer, h = u / (kAbsCols / 2), c2 = u % (kAbsCols / 2);
    float a0 = 0.f, a1 = 0.f;
#pragma unroll 8
    for (int i = sub * kSpan; i < (sub + 1) * kSpan; ++i) {
      const float2 w = __bfloat1622float2(reinterpret_cast<const __nv_bfloat162*>(s.uk(h, i))[c2]);
      const float q = s.qn[h][i];
      a0 = fmaf(q, w.x, a0);
      a1 = fmaf(q, w.y, a1);
    }
#pragma unroll
    for (int o = 1; o < kPer; o <<= 1) {
      a0 += __shfl_xor_sync(0xffffffffu, a0, o);
      a1 += __shfl_xor_sync(0xffffffffu, a1, o);
    }
    if (sub == 0) {
      const __nv_bfloat162 v = __floats2bfloat162_rn(a0, a1);
#pragma unroll
      for (int k = 0; k < kCs; ++k)
        reinterpret_cast<__nv_bfloat162*>(cluster.map_shared_rank(&s, k)->qb[h] +
                                          rank * kAbsCols)[c2] = v;
    }
  }
  // The cluster barrier is split: arrive once the columns are sent, make the latent row (only the
  // position's CTA needs it, for its own rows) meanwhile, wait after.
  asm volatile("barrier.cluster.arrive.release.aligned;" ::: "memory");
  if (makes_row) {
    // store_latent_norm's and the rope prep's expressions (256 threads, the same sum order).
    float ss = 0.f;
    ss += x0 * x0;
    ss += x1 * x1;
    const float inv = rsqrtf(block_sum(ss) / static_cast<float>(kLat) + p.eps);
    s.cur[tid] = __float2bfloat16(bf(__float2bfloat16(x0 * inv)) * bf(nw0_raw));
    s.cur[tid + kThreads] = __float2bfloat16(bf(__float2bfloat16(x1 * inv)) * bf(nw1_raw));
    if (tid < kRope / 2) {
      s.cur[kLat + tid] = __float2bfloat16(xa * rc - xb * rs);
      s.cur[kLat + kRope / 2 + tid] = __float2bfloat16(xb * rc + xa * rs);
    }
  }
  stamp(p, 17);
  __syncthreads();  // every read of W_UK done: W_UV takes its place, landing during the attention
  if (tid == 0) {
    asm volatile("fence.proxy.async.shared::cta;" ::: "memory");
    mbar_expect_tx(bar_w, kHg * kUvRows * kLat * 2);
  }
  if (tid < kHg)
    bulk_load(
        smem_addr(s.uv(tid, 0)),
        p.w_kv_b + (h0 + tid) * head_stride + static_cast<int64_t>(kNope + rank * kUvRows) * kLat,
        kUvRows * kLat * 2, bar_w);
  if (makes_row && cid == 0 && tid < kRowChunks)
    reinterpret_cast<uint4*>(p.kv_cache + static_cast<int64_t>(p.slot[0]) * kRow)[tid] =
        reinterpret_cast<const uint4*>(s.cur)[tid];
  asm volatile("barrier.cluster.wait.acquire.aligned;" ::: "memory");
  stamp(p, 5);
  // The next kernel (o_proj's GEMV) streams its weights from here on; earlier, its 8 MB would
  // share HBM with this kernel's own weight and cache reads on the critical path (V2-Lite batch
  // 1 on an H200: 1.862 ms against 1.889-1.907 released right after the wait).
  pdl_launch_dependents();

  // ---- Attention over this CTA's rows, kChunk at a time, on the tensor cores: S^T = K Q^T with
  // 16 rows per warp (Q^T's 8 columns hold the 2 heads, the rest zero), then O^T = V^T P^T with
  // 64 latent columns per warp. P is rounded to bf16 for the MMA, as the other decode kernels do.
  const float sl2 = p.softmax_scale * kLog2e;
  float m_run = -INFINITY, l_run = 0.f;  // warps 0 .. kHg - 1: head `warp`
  float o[4][4];                         // [m-tile][fragment]: lanes with lane % 4 == 0 hold heads
#pragma unroll
  for (int m = 0; m < 4; ++m)
#pragma unroll
    for (int e = 0; e < 4; ++e) o[m][e] = 0.f;
  const int qn_row = lane >> 2, qk_col = (lane & 3) * 2;
  // The scores' B fragments (the query, the same for every tile and chunk) in registers: V2-Lite
  // batch 1 on an H200, 1.843-1.858 ms per step against 1.857-1.867 read from shared memory.
  uint32_t qf[kRow / 16][2];
#pragma unroll
  for (int kk = 0; kk < kRow / 16; ++kk) {
    const uint32_t* q = reinterpret_cast<const uint32_t*>(&s.qb[qn_row < kHg ? qn_row : 0][0]);
    qf[kk][0] = qn_row < kHg ? q[(16 * kk + qk_col) / 2] : 0u;
    qf[kk][1] = qn_row < kHg ? q[(16 * kk + 8 + qk_col) / 2] : 0u;
  }
  for (int k = 0; k < chunks; ++k) {
    const int rows = chunk_rows(k);  // cached rows of this chunk
    const int rows16 = (rows + 15) & ~15;
    const bool extra = has_pos && k == chunks - 1;  // the token's own row joins this chunk
    if (k > 0) {
      if (!kTma) chunk_slots(k);
      __syncthreads();
      asm volatile("fence.proxy.async.shared::cta;" ::: "memory");  // the ring's generic writes
      load_chunk(k);
    }
    mbar_wait(bar_c, k & 1);
    // Rows past the chunk's cached ones (a box's tail, or 16-row padding) read as zero.
    if constexpr (kTma) {
      for (int i = tid; i < (rows16 - rows) * kGroups * 8; i += kThreads) {
        const int r = rows + i / (kGroups * 8), g = (i / 8) % kGroups;
        reinterpret_cast<uint4*>(s.ring + g * (kChunk * 128) + r * 128)[i % 8] =
            make_uint4(0, 0, 0, 0);
      }
    } else {
      for (int i = rows * kRowChunks + tid; i < rows16 * kRowChunks; i += kThreads)
        reinterpret_cast<uint4*>(s.ring + (i / kRowChunks) * kRowPad * 2)[i % kRowChunks] =
            make_uint4(0, 0, 0, 0);
    }
    __syncthreads();
    if (k == 0) stamp(p, 6);
    // Scores of rows [16 tile, 16 tile + 16), tiles warp, warp + 8, ...
    for (int base = 16 * warp; base < rows16; base += 16 * (kThreads / 32)) {
      float c[4] = {0.f, 0.f, 0.f, 0.f}, c2[4] = {0.f, 0.f, 0.f, 0.f};
      const int a_row = base + (lane & 15), a_col = (lane >> 4) * 8;
#pragma unroll
      for (int kk = 0; kk < kRow / 16; kk += 4) {  // 4 fragments in flight, two chains
        uint32_t a[4][4];
#pragma unroll
        for (int j = 0; j < 4; ++j)
          ldsm_x4(a[j], ring_at<kTma>(ring, a_row, a_col + 16 * (kk + j)));
        mma16816(c, a[0], qf[kk][0], qf[kk][1]);
        mma16816(c2, a[1], qf[kk + 1][0], qf[kk + 1][1]);
        mma16816(c, a[2], qf[kk + 2][0], qf[kk + 2][1]);
        mma16816(c2, a[3], qf[kk + 3][0], qf[kk + 3][1]);
      }
      if ((lane & 3) == 0) {
        const int r = base + (lane >> 2);
        s.pr[r][0] = r < rows ? (c[0] + c2[0]) * sl2 : -INFINITY;
        s.pr[r][1] = r < rows ? (c[1] + c2[1]) * sl2 : -INFINITY;
        s.pr[r + 8][0] = r + 8 < rows ? (c[2] + c2[2]) * sl2 : -INFINITY;
        s.pr[r + 8][1] = r + 8 < rows ? (c[3] + c2[3]) * sl2 : -INFINITY;
      }
    }
    __syncthreads();
    if (k == 0) stamp(p, 12);
    if (warp < kHg) {
      constexpr int kPer = (kChunk + 31) / 32;
      float v[kPer], mt = -INFINITY;
#pragma unroll
      for (int j = 0; j < kPer; ++j) {
        v[j] = lane + 32 * j < rows16 ? s.pr[lane + 32 * j][warp] : -INFINITY;
        mt = fmaxf(mt, v[j]);
      }
      float sc = -INFINITY;  // the token's own row
      if (extra) {
        const __nv_bfloat162* q = reinterpret_cast<const __nv_bfloat162*>(s.qb[warp]);
        const __nv_bfloat162* x = reinterpret_cast<const __nv_bfloat162*>(s.cur);
        float d = 0.f;
#pragma unroll
        for (int j = 0; j < kRow / 64; ++j) {
          const float2 a = __bfloat1622float2(q[lane + 32 * j]),
                       b = __bfloat1622float2(x[lane + 32 * j]);
          d = fmaf(a.x, b.x, d);
          d = fmaf(a.y, b.y, d);
        }
        for (int off = 16; off > 0; off >>= 1) d += __shfl_xor_sync(0xffffffffu, d, off);
        sc = d * sl2;
        mt = fmaxf(mt, sc);
      }
      for (int off = 16; off > 0; off >>= 1) mt = fmaxf(mt, __shfl_xor_sync(0xffffffffu, mt, off));
      const float mn = fmaxf(m_run, mt), c = exp2f(m_run - mn);
      float sum = 0.f;
#pragma unroll
      for (int j = 0; j < kPer; ++j) {
        const bf16 pv = __float2bfloat16(exp2f(v[j] - mn));
        sum += bf(pv);
        if (lane + 32 * j < rows16) s.pb[warp][lane + 32 * j] = pv;
      }
      for (int off = 16; off > 0; off >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, off);
      const float pcur = bf(__float2bfloat16(exp2f(sc - mn)));  // 0 without the row
      sum += pcur;
      l_run = l_run * c + sum;
      m_run = mn;
      if (lane == 0) {
        s.corr[warp] = c;
        s.pcur[warp] = pcur;
      }
    }
    __syncthreads();
    if (k == 0) stamp(p, 13);
    {  // O^T columns [64 warp, 64 warp + 64), rescaled by the chunk's correction first.
      const float c0 = s.corr[0], c1 = s.corr[1];
#pragma unroll
      for (int m = 0; m < 4; ++m) {
        o[m][0] *= c0;
        o[m][1] *= c1;
        o[m][2] *= c0;
        o[m][3] *= c1;
      }
      const int krow = (lane & 7) + ((lane >> 4) << 3), kcol = ((lane >> 3) & 1) * 8;
      for (int kk = 0; kk < rows16 / 16; ++kk) {
        uint32_t b0 = 0, b1 = 0, a[4][4];
        if (qn_row < kHg) {
          b0 = *reinterpret_cast<const uint32_t*>(&s.pb[qn_row][16 * kk + qk_col]);
          b1 = *reinterpret_cast<const uint32_t*>(&s.pb[qn_row][16 * kk + 8 + qk_col]);
        }
#pragma unroll
        for (int m = 0; m < 4; ++m)
          ldsm_x4_t(a[m], ring_at<kTma>(ring, 16 * kk + krow, 64 * warp + 16 * m + kcol));
#pragma unroll
        for (int m = 0; m < 4; ++m) mma16816(o[m], a[m], b0, b1);
      }
      if (extra && (lane & 3) == 0) {
        const float p0 = s.pcur[0], p1 = s.pcur[1];
#pragma unroll
        for (int m = 0; m < 4; ++m) {
          const int col = 64 * warp + 16 * m + (lane >> 2);
          const float v0 = bf(s.cur[col]), v8 = bf(s.cur[col + 8]);
          o[m][0] = fmaf(p0, v0, o[m][0]);
          o[m][1] = fmaf(p1, v0, o[m][1]);
          o[m][2] = fmaf(p0, v8, o[m][2]);
          o[m][3] = fmaf(p1, v8, o[m][3]);
        }
      }
    }
    __syncthreads();  // the ring, s.pr, s.pb and s.slot are free again
  }
  stamp(p, 7);
  if ((lane & 3) == 0) {
#pragma unroll
    for (int m = 0; m < 4; ++m) {
      const int col = 64 * warp + 16 * m + (lane >> 2);
      s.part[0][col] = o[m][0];
      s.part[1][col] = o[m][1];
      s.part[0][col + 8] = o[m][2];
      s.part[1][col + 8] = o[m][3];
    }
  }
  if (warp < kHg && lane == 0) {
    s.ml[warp][0] = m_run;
    s.ml[warp][1] = l_run;
  }
  cluster.sync();
  stamp(p, 8);

  // ---- CTA r combines its slice of columns from every CTA's partials and sends the bf16 result
  // to every CTA of the cluster.
  {
    constexpr int kSlice = kLat / kCs, kPairs = kHg * kSlice / 2;
    if (tid < kPairs) {
      const int h = tid / (kSlice / 2), col = rank * kSlice + 2 * (tid % (kSlice / 2));
      float2 ml[kCs], v[kCs];
#pragma unroll
      for (int k = 0; k < kCs; ++k) {
        const S* peer = cluster.map_shared_rank(&s, k);
        ml[k] = *reinterpret_cast<const float2*>(peer->ml[h]);
        v[k] = *reinterpret_cast<const float2*>(&peer->part[h][col]);
      }
      float mx = -INFINITY;
#pragma unroll
      for (int k = 0; k < kCs; ++k) mx = fmaxf(mx, ml[k].x);
      float l = 0.f, ox = 0.f, oy = 0.f;
#pragma unroll
      for (int k = 0; k < kCs; ++k) {
        const float w = ml[k].x == -INFINITY ? 0.f : exp2f(ml[k].x - mx);
        l = fmaf(w, ml[k].y, l);
        ox = fmaf(w, v[k].x, ox);
        oy = fmaf(w, v[k].y, oy);
      }
      const float inv = l > 0.f ? 1.f / l : 0.f;
      const __nv_bfloat162 out = __floats2bfloat162_rn(ox * inv, oy * inv);
#pragma unroll
      for (int k = 0; k < kCs; ++k)
        *reinterpret_cast<__nv_bfloat162*>(&cluster.map_shared_rank(&s, k)->ob[h][col]) = out;
    }
  }
  cluster.sync();       // every slice in every CTA; no shared-memory access crosses CTAs after this
  mbar_wait(bar_w, 0);  // W_UV
  stamp(p, 9);

  // ---- W_UV rows of both heads: kThreads / (kHg kUvRows) threads per row.
  {
    constexpr int kOut = kHg * kUvRows, kPer = kThreads / kOut, kSteps = (kLat / 8) / kPer;
    const int o = tid / kPer, part = tid % kPer, h = o / kUvRows, v = o % kUvRows;
    const uint4* w = reinterpret_cast<const uint4*>(s.uv(h, v));
    const uint4* x = reinterpret_cast<const uint4*>(s.ob[h]);
    float a = 0.f;
#pragma unroll
    for (int m = 0; m < kSteps; ++m) dot8(w[part + kPer * m], x[part + kPer * m], a);
#pragma unroll
    for (int off = 1; off < kPer; off <<= 1) a += __shfl_xor_sync(0xffffffffu, a, off);
    if (part == 0) p.out[(h0 + h) * kV + rank * kUvRows + v] = __float2bfloat16(a);
  }
  stamp(p, 10);
  stamp(p, 11);
}

bool aligned16(const void* ptr) {
  return (reinterpret_cast<uintptr_t>(ptr) & 15u) == 0;
}

// Dynamic shared memory of a launch: all an SM can give one CTA, more than Smem needs, so that
// no CTA of another kernel shares the SM (o_proj's GEMV CTAs, released early, would otherwise
// stream their weights through the L1 of some of these SMs and slow their shared-memory reads:
// V2-Lite batch 1 on an H200, 1.862 ms against 1.911-1.926).
template <int kCs, bool kTma>
size_t exclusive_smem() {
  int device = 0, optin = 0;
  WS_CUDA_CHECK(cudaGetDevice(&device));
  WS_CUDA_CHECK(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
  cudaFuncAttributes fa{};
  WS_CUDA_CHECK(cudaFuncGetAttributes(&fa, mla_token_kernel<kCs, kTma>));
  const size_t all = static_cast<size_t>(optin) - fa.sharedSizeBytes;
  WS_CUDA_REQUIRE(all >= sizeof(Smem<kCs, kTma>) + 1024,
                  "mla_token: the device's shared memory per block (" + std::to_string(optin) +
                      " bytes) is too small");
  return all;
}

template <int kCs, bool kTma>
void launch(const MlaTokenParams& p, cudaStream_t stream) {
  static SmemOptIn opt_in;
  static size_t smem = 0;
  opt_in.once([] {
    smem = exclusive_smem<kCs, kTma>();
    const void* k = reinterpret_cast<const void*>(mla_token_kernel<kCs, kTma>);
    WS_CUDA_CHECK(cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                       static_cast<int>(smem)));
    if (kCs > 8)
      WS_CUDA_CHECK(cudaFuncSetAttribute(k, cudaFuncAttributeNonPortableClusterSizeAllowed, 1));
  });
  // The cache as [slots][576] in boxes of 64 columns x kBox rows (unused by the row copies).
  CUtensorMap map{};
  if (kTma)
    map = make_tensor_map_bf16_sw128(p.kv_cache, kRow, static_cast<uint64_t>(p.slots), kRow * 2, 64,
                                     kBox);
  launch_pdl_clusters(mla_token_kernel<kCs, kTma>, dim3(static_cast<unsigned>(p.heads / kHg * kCs)),
                      dim3(kThreads), kCs, smem, stream, p, map);
}

// Whether p's cache rows go by tensor-map boxes: pages of whole boxes, slot ids in int32.
bool use_tma(const MlaTokenParams& p) {
  return !p.row_copies && p.page_size % kBox == 0 && p.slots < (int64_t{1} << 31);
}

}  // namespace

std::string mla_token_unsupported(const MlaTokenParams& p) {
  if (!p.q || !p.kv_a || !p.kv_a_norm || !p.w_kv_b || !p.rope.inv_freq || !p.position || !p.slot ||
      !p.page_table || !p.seq_len || !p.kv_cache || !p.out)
    return "a null pointer";
  if (p.nope != kNope || p.v_dim != kV || p.rope.rope_dim != kRope)
    return "needs nope 128, v 128 and rope 64, got nope " + std::to_string(p.nope) + ", v " +
           std::to_string(p.v_dim) + ", rope " + std::to_string(p.rope.rope_dim);
  if (p.heads <= 0 || p.heads % kHg != 0)
    return "needs an even head count, got " + std::to_string(p.heads);
  if (p.q_stride < kNope + kRope) return "q_stride " + std::to_string(p.q_stride) + " < 192";
  if (p.page_size <= 0 || p.slots <= 0) return "needs pages and slots";
  if (!aligned16(p.kv_cache) || !aligned16(p.w_kv_b))
    return "kv_cache and w_kv_b must be 16-byte aligned";
  if (p.cluster != 0 && p.cluster != 8 && p.cluster != 16)
    return "cluster must be 0 (default), 8 or 16, got " + std::to_string(p.cluster);
  return {};
}

bool mla_token_preferred(int64_t heads, int64_t max_seq_len) {
  return heads <= 32 && max_seq_len <= 2048;
}

int mla_token_grid(const MlaTokenParams& p) {
  const int cs = (p.cluster == 0 ? kMlaTokenDefaultCluster : p.cluster) == 16 ? 16 : 8;
  return static_cast<int>(p.heads / kHg) * cs;
}

std::string mla_token_stamp_report(const std::vector<unsigned long long>& st, int64_t launches,
                                   int grid) {
  static const char* const kNames[kMlaTokenStamps - 2] = {
      "entry", "page reads issued", "preloads issued", "wait returned", "q, W_UK", "absorb + sync",
      "chunk 0 landed", "attention done", "partials sync", "combine + sync", "W_UV done", "exit",
      "chunk 0 scores", "chunk 0 softmax",
      // thread 0 alone
      "0: row copies issued", "0: q stored", "0: own W_UK landed", "0: absorbed, latent row made",
      "0: page id arrived", "0: q arrived", "0: inv_freq arrived", "0: norm weight arrived"};
  constexpr int kTimes = kMlaTokenStamps - 2;
  std::vector<double> mean(kTimes, 0), mx(kTimes, 0);
  double cycles = 0, ns = 0;
  int64_t n = 0;
  for (int64_t l = 0; l < launches; ++l) {
    const unsigned long long* L = st.data() + l * grid * kMlaTokenStamps;
    unsigned long long base = ~0ull;
    for (int c = 0; c < grid; ++c) base = std::min(base, L[c * kMlaTokenStamps]);
    if (base == 0) continue;  // a launch that did not run (or a layer without it)
    for (int c = 0; c < grid; ++c) {
      const unsigned long long* C = L + c * kMlaTokenStamps;
      cycles += static_cast<double>(C[kTimes + 1] - C[kTimes]);
      ns += static_cast<double>(C[11] - C[0]);
      for (int k = 0; k < kTimes; ++k) {
        const double us = (static_cast<double>(C[k]) - static_cast<double>(base)) / 1e3;
        mean[k] += us;
        mx[k] = std::max(mx[k], us);
      }
    }
    n += grid;
  }
  if (n == 0) return "no stamps\n";
  std::string out = "| stamp | mean us | max us |\n|---|---|---|\n";
  char line[128];
  for (int k = 0; k < kTimes; ++k) {
    std::snprintf(line, sizeof line, "| %s | %.2f | %.2f |\n", kNames[k], mean[k] / n, mx[k]);
    out += line;
  }
  std::snprintf(line, sizeof line, "SM clock over the CTAs' lives: %.0f MHz\n", cycles / ns * 1e3);
  return out + line;
}

void launch_mla_token(const MlaTokenParams& p, cudaStream_t stream) {
  const std::string why = mla_token_unsupported(p);
  WS_CUDA_REQUIRE(why.empty(), "mla_token: " + why);
  const bool c16 = (p.cluster == 0 ? kMlaTokenDefaultCluster : p.cluster) == 16;
  if (use_tma(p))
    c16 ? launch<16, true>(p, stream) : launch<8, true>(p, stream);
  else
    c16 ? launch<16, false>(p, stream) : launch<8, false>(p, stream);
}

}  // namespace wideserve::cuda
