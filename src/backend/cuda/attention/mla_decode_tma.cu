// MLA decode "v6": the absorbed decode on wgmma for 64-head blocks (one token x 64 heads x one
// KV split per CTA, as v5), with Q K^T over 64 cache rows per wgmma instead of 32 (half the
// HGMMA issues: v5's 36 m64n32k16 per 32-row tile were a quarter of its consumer's stall
// samples). Holding 64 rows per stage next to a 72 KB Q leaves room for two stages only (v5
// measured that slower), so v6 makes the room:
//   - Q's first 384 columns live in WG0's registers (A fragments of register-A wgmmas), only
//     the last 192 in shared memory;
//   - the KV ring is five 32-row stages laid out column group by column group across stages, so
//     two stages in a row are one 64-row K-major operand (Q K^T of a pair of tiles with N = 64;
//     a pair that wraps from the last stage to the first takes two 32-row halves), while each
//     stage is refilled as soon as its own P V is done;
//   - tiles come in through the TMA engine (9 boxes of 64 columns x 32 rows, one page:
//     page_size % 32 == 0), issued by one thread, so there is no producer warpgroup.
// Warpgroups:
//   WG0: S[64 heads x 64 rows] = Q K^T of a pair (24 register-A + 12 shared-memory wgmmas),
//     online softmax, P (bf16 A fragments) and the row rescale to WG1 and WG2 through a
//     double-buffered exchange. It holds no O.
//   WG1, WG2: O[:, 0:256] and O[:, 256:512] += P V per 32-row tile (m64n256k16, A from
//     registers, V = the stage's latent columns read MN-major). WG1's thread 0 refills a stage
//     with the tile kStages ahead once both have released it.
// Registers: 168 a thread (384 threads): WG0 holds 96 of Q and 32 of S, WG1 / WG2 128 of O.
// Same params, split plan (mla_wgmma_splits), workspace and combine as v5. On the H200 it is
// 3-7% faster than v5 at 128 heads; ncu (four stages) put a third of WG0's stall samples on
// waiting for the next pair's tiles (the ring held the pair in P V and the pair in Q K^T and
// nothing ahead), and most of WG1 / WG2's on P and on their own P V (docs/cuda_mla.md, "v6").
#include <cuda.h>
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
#include "backend/cuda/common/tensor_map.h"
#include "backend/cuda/common/tma_ptx.cuh"
#include "backend/cuda/common/wgmma_ptx.cuh"

namespace wideserve::cuda {
namespace {

constexpr int kHeads = 64;           // query rows of a CTA (m64)
constexpr int kBn = 32;              // KV rows per tile (stage, TMA box, split granularity)
constexpr int kPair = 2 * kBn;       // cache rows per Q K^T
constexpr int kRow = 576;            // elements per cache row / query head
constexpr int kGroups = kRow / 64;   // 128-byte column groups of a row (9)
constexpr int kQkSteps = kRow / 16;  // k16 steps of Q K^T (36)
// The first kRegSteps take Q from WG0's registers, the rest from shared memory: the CTA has 168
// registers a thread (384 threads); setmaxnreg could move some to WG0 only by taking them from
// the P V warpgroups, whose code spills below 168. WG0 also holds S (32), the softmax, addresses.
constexpr int kRegSteps = 24;
constexpr int kQsGroups = (kQkSteps - kRegSteps) / 4;  // Q column groups in shared memory
static_assert(kRegSteps % 4 == 0, "Q's shared part starts at a 64-column group");
constexpr int kStages = 5;  // a pair of tiles starting at the last stage wraps around
constexpr int kThreads = 384;
constexpr uint32_t kTileBytes = kBn * 128;               // one column group of a tile
constexpr uint32_t kGroupStride = kStages * kTileBytes;  // between column groups (20 KB)
constexpr uint32_t kRingBytes = kGroups * kGroupStride;  // 184,320
constexpr uint32_t kStageBytes = kGroups * kTileBytes;   // a tile's bytes (36,864)
constexpr int kPvSteps = kBn / 16;                       // k16 steps of P V per tile (2)
constexpr int kPSteps = kPair / 16;                      // k16 steps of a pair's P (4)
constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

// Shared memory after the 1024-byte aligned base.
constexpr uint32_t kOffKv = 0;                                 // [group][stage][32 rows][128 B]
constexpr uint32_t kOffQs = kOffKv + kRingBytes;               // Q's last columns [group][64][128]
constexpr uint32_t kOffP = kOffQs + kQsGroups * kHeads * 128;  // [2][k16][4 regs][128] u32
constexpr uint32_t kPBufWords = kPSteps * 4 * 128;
constexpr uint32_t kOffAlpha = kOffP + 2 * kPBufWords * 4;  // [2][2 rows][128] f32
constexpr uint32_t kOffLm = kOffAlpha + 2 * 2 * 128 * 4;    // [4][128] f32: l, m
constexpr uint32_t kOffBar = kOffLm + 4 * 128 * 4;  // full[], empty[], p_full[2], p_empty[2]
constexpr uint32_t kSmemBytes = kOffBar + (2 * kStages + 4) * 8 + 1024;  // + alignment slack
static_assert(kSmemBytes <= 227 * 1024, "over the sm_90 dynamic shared memory limit");
static_assert(kOffQs % 1024 == 0, "swizzle atoms must stay aligned");

struct TmaArgs {
  MlaAttentionParams p;
  int splits;
  float scale_log2;
  bool bulk_store;  // output rows 16-byte aligned: staged in shared memory, bulk-copied out
};

static_assert(kHeads * kMlaStagePitchF32 <= kRingBytes, "O staging must fit the ring");

__device__ __forceinline__ uint32_t ldg_u32(const __nv_bfloat16* p) {
  return __ldg(reinterpret_cast<const unsigned int*>(p));
}

__global__ void __launch_bounds__(kThreads, 1)
    mla_decode_tma_kernel(const __grid_constant__ CUtensorMap kv_map, const TmaArgs a) {
  KernelTrace kt_(TraceKernel::kMlaDecodeTma);
  kt_.wait();
  pdl_launch_dependents();
  extern __shared__ __align__(1024) unsigned char smem_raw[];
  const uint32_t base = (smem_addr(smem_raw) + 1023u) & ~1023u;
  unsigned char* gbase = smem_raw + (base - smem_addr(smem_raw));
  const MlaAttentionParams& p = a.p;
  const int tid = threadIdx.x, wg = tid / 128, wtid = tid % 128;
  const int hb = blockIdx.x, t = blockIdx.y, z = blockIdx.z;
  const int H = static_cast<int>(p.num_heads);
  const MlaSplitRange range = mla_split_range<kBn>(p, t, z, a.splits);
  const int seq = range.seq, lo = range.lo, hi = range.hi, ntiles = range.ntiles;
  const int npairs = (ntiles + 1) / 2;

  const uint32_t bar_full = base + kOffBar, bar_empty = bar_full + 8 * kStages,
                 bar_pfull = bar_empty + 8 * kStages, bar_pempty = bar_pfull + 16;
  const int32_t* pages = p.page_table + static_cast<int64_t>(seq) * p.max_pages_per_seq;
  const int ps = static_cast<int>(p.page_size);
  // Tile `tile` into its stage: one page holds all its rows (page_size % 32 == 0, lo % 32 == 0).
  // Rows past the split's end are whatever the page holds: P is exactly 0 there, and the P V
  // warpgroups zero those rows of the last tile before reading them.
  auto issue_tile = [&](int tile) {
    const int s = tile % kStages, pos = lo + tile * kBn;
    const int row0 = __ldg(&pages[pos / ps]) * ps + pos % ps;
    mbar_expect_tx(bar_full + 8 * s, kStageBytes);
#pragma unroll
    for (int cg = 0; cg < kGroups; ++cg)
      tma_load_2d(base + kOffKv + cg * kGroupStride + s * kTileBytes, &kv_map, cg * 64, row0,
                  bar_full + 8 * s);
  };
  if (tid == 0) {
    for (int s = 0; s < kStages; ++s) {
      mbar_init(bar_full + 8 * s, 1);     // the refilling thread's expect_tx, then the bytes
      mbar_init(bar_empty + 8 * s, 256);  // every P V thread
    }
    for (int b = 0; b < 2; ++b) {
      mbar_init(bar_pfull + 8 * b, 128);   // every WG0 thread
      mbar_init(bar_pempty + 8 * b, 256);  // every P V thread
    }
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  }
  __syncthreads();
  if (tid == 128) {
    tma_prefetch_map(&kv_map);
    for (int tile = 0; tile < kStages && tile < ntiles; ++tile) issue_tile(tile);
  }

  const int warp = wtid / 32, lane = wtid % 32, g = lane / 4, c = lane % 4;
  uint32_t* pbuf = reinterpret_cast<uint32_t*>(gbase + kOffP);
  float* abuf = reinterpret_cast<float*>(gbase + kOffAlpha);
  float* lm = reinterpret_cast<float*>(gbase + kOffLm);
  float m_run[2] = {-INFINITY, -INFINITY}, l_run[2] = {0.f, 0.f};  // rows g, g+8 (log2 units)

  if (wg == 0) {
    const __nv_bfloat16* q =
        p.q + (static_cast<int64_t>(t) * H + static_cast<int64_t>(hb) * kHeads) * kRow;
    // Q's last columns into the swizzled K-major layout (128-byte column groups of 64 rows).
    for (int i = wtid; i < kQsGroups * kHeads * 8; i += 128) {
      const int gq = i / (kHeads * 8), r = (i / 8) % kHeads, ch = i % 8;
      cp_async_16(base + kOffQs + gq * (kHeads * 128) + r * 128 + ((ch ^ (r & 7)) << 4),
                  q + r * kRow + kRegSteps * 16 + gq * 64 + ch * 8);
    }
    // Q's first columns as A fragments: k16 step k, rows g / g + 8 of this warp's 16, columns
    // 2c and 2c + 8 (m16n8k16 A layout).
    uint32_t qa[kRegSteps][4];
    {
      const __nv_bfloat16* r0 = q + (warp * 16 + g) * kRow + 2 * c;
      const __nv_bfloat16* r1 = r0 + 8 * kRow;
#pragma unroll
      for (int k = 0; k < kRegSteps; ++k) {
        qa[k][0] = ldg_u32(r0 + 16 * k);
        qa[k][1] = ldg_u32(r1 + 16 * k);
        qa[k][2] = ldg_u32(r0 + 16 * k + 8);
        qa[k][3] = ldg_u32(r1 + 16 * k + 8);
      }
    }
    asm volatile("cp.async.wait_all;\n" ::: "memory");
    fence_proxy_async_smem();
    named_sync<2, 128>();
    const uint64_t qs_desc = wgmma_desc_sw128(base + kOffQs, 16, 1024);
    float sc[32];
#pragma unroll 1
    for (int pair = 0; pair < npairs; ++pair) {
      // Both tiles of the pair (the second may not exist: its columns are masked, never read
      // as V). Stages s0 and s0 + 1 are one 64-row operand unless the pair wraps around.
      const int t0 = 2 * pair, s0 = t0 % kStages, s1 = (t0 + 1) % kStages;
      mbar_wait(bar_full + 8 * s0, (t0 / kStages) & 1);
      if (t0 + 1 < ntiles) mbar_wait(bar_full + 8 * s1, ((t0 + 1) / kStages) & 1);
      const uint64_t k_desc = wgmma_desc_sw128(base + kOffKv + s0 * kTileBytes, 16, 1024);
      wgmma_fence();
      if (s1 == s0 + 1) {  // one 64-row operand
#pragma unroll
        for (int k = 0; k < kRegSteps; ++k)
          wgmma_m64n64k16_rs(sc, qa[k],
                             wgmma_desc_add(k_desc, (k >> 2) * kGroupStride + (k & 3) * 32), k > 0);
#pragma unroll
        for (int k = kRegSteps; k < kQkSteps; ++k)
          wgmma_m64n64k16_ss(
              sc, wgmma_desc_add(qs_desc, ((k - kRegSteps) >> 2) * (kHeads * 128) + (k & 3) * 32),
              wgmma_desc_add(k_desc, (k >> 2) * kGroupStride + (k & 3) * 32), 1);
        wgmma_commit();
        wgmma_wait<0>();
      } else {  // the pair wraps: S's two 32-column halves (n8 tiles 0-3, 4-7) one by one
        float lo_half[16], hi_half[16];
        const uint64_t k1_desc = wgmma_desc_sw128(base + kOffKv + s1 * kTileBytes, 16, 1024);
        auto half_qk = [&](float(&d)[16], uint64_t kd) {
#pragma unroll
          for (int k = 0; k < kRegSteps; ++k)
            wgmma_m64n32k16_rs(d, qa[k], wgmma_desc_add(kd, (k >> 2) * kGroupStride + (k & 3) * 32),
                               k > 0);
#pragma unroll
          for (int k = kRegSteps; k < kQkSteps; ++k)
            wgmma_m64n32k16_ss(
                d, wgmma_desc_add(qs_desc, ((k - kRegSteps) >> 2) * (kHeads * 128) + (k & 3) * 32),
                wgmma_desc_add(kd, (k >> 2) * kGroupStride + (k & 3) * 32), 1);
        };
        half_qk(lo_half, k_desc);
        half_qk(hi_half, k1_desc);
        wgmma_commit();
        wgmma_wait<0>();
        wgmma_fence_regs(lo_half);
        wgmma_fence_regs(hi_half);
#pragma unroll
        for (int i = 0; i < 16; ++i) {
          sc[i] = lo_half[i];
          sc[16 + i] = hi_half[i];
        }
      }
      wgmma_fence_regs(sc);
      // Online softmax (base 2); P = 0 at positions >= hi (a select: the missing tile's columns
      // may hold anything).
      const int pos0 = lo + pair * kPair + 2 * c;
      float alpha[2];
      mla_tile_softmax<kPair / 8>(sc, pos0, hi, true, a.scale_log2, m_run, l_run, alpha);
      // Hand P and the rescale over once both P V warpgroups took the buffer's previous pair.
      const int b = pair & 1;
      if (pair >= 2) mbar_wait(bar_pempty + 8 * b, ((pair >> 1) - 1) & 1);
      uint32_t* pb = pbuf + b * kPBufWords;
#pragma unroll
      for (int kk = 0; kk < kPSteps; ++kk) {
        pb[(kk * 4 + 0) * 128 + wtid] = pack_bf16(sc[8 * kk + 0], sc[8 * kk + 1]);
        pb[(kk * 4 + 1) * 128 + wtid] = pack_bf16(sc[8 * kk + 2], sc[8 * kk + 3]);
        pb[(kk * 4 + 2) * 128 + wtid] = pack_bf16(sc[8 * kk + 4], sc[8 * kk + 5]);
        pb[(kk * 4 + 3) * 128 + wtid] = pack_bf16(sc[8 * kk + 6], sc[8 * kk + 7]);
      }
      abuf[b * 256 + wtid] = alpha[0];
      abuf[b * 256 + 128 + wtid] = alpha[1];
      mbar_arrive(bar_pfull + 8 * b);
    }
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      l_run[h] += __shfl_xor_sync(0xffffffffu, l_run[h], 1);
      l_run[h] += __shfl_xor_sync(0xffffffffu, l_run[h], 2);
    }
    lm[wtid] = l_run[0];
    lm[128 + wtid] = l_run[1];
    const int64_t rows = p.num_tokens * H;
    if (c == 0)
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const float l = l_run[h];
        const int64_t th = static_cast<int64_t>(t) * H + hb * kHeads + warp * 16 + g + 8 * h;
        mla_store_lse(p, a.splits, z, rows, th, l > 0.f ? (m_run[h] + log2f(l)) * kLn2 : -INFINITY);
      }
    named_sync<1, kThreads>();  // l published
    if (a.bulk_store) {
      fence_proxy_async_smem();
      named_sync<3, kThreads>();  // staged rows written (WG0 has none)
    }
    return;
  }

  // WG1 / WG2: P V over 256 value columns each, one 32-row tile at a time.
  const int half = wg - 1;
  const uint32_t col0 = half * 4u * kGroupStride;
  float o[128];
#pragma unroll
  for (int i = 0; i < 128; ++i) o[i] = 0.f;
#pragma unroll 1
  for (int pair = 0; pair < npairs; ++pair) {
    const int b = pair & 1;
    mbar_wait(bar_pfull + 8 * b, (pair >> 1) & 1);
    const uint32_t* pb = pbuf + b * kPBufWords;
    {
      const float alpha0 = abuf[b * 256 + wtid], alpha1 = abuf[b * 256 + 128 + wtid];
      if (__any_sync(0xffffffffu, alpha0 != 1.f || alpha1 != 1.f)) {
#pragma unroll
        for (int j = 0; j < 32; ++j) {
          o[4 * j + 0] *= alpha0;
          o[4 * j + 1] *= alpha0;
          o[4 * j + 2] *= alpha1;
          o[4 * j + 3] *= alpha1;
        }
      }
    }
#pragma unroll 1
    for (int h = 0; h < 2; ++h) {
      const int tile = 2 * pair + h, s = tile % kStages;
      if (tile >= ntiles) break;
      uint32_t pa[kPvSteps][4];
#pragma unroll
      for (int kk = 0; kk < kPvSteps; ++kk)
#pragma unroll
        for (int r = 0; r < 4; ++r) pa[kk][r] = pb[((h * kPvSteps + kk) * 4 + r) * 128 + wtid];
      mbar_wait(bar_full + 8 * s, (tile / kStages) & 1);  // complete: orders this stage's reads
      const int valid = hi - (lo + tile * kBn);
      if (valid < kBn) {
        // Last tile: rows past the end hold other tokens' (or never written) rows; P is 0
        // there, but 0 * NaN is not, so this warpgroup zeroes its value columns of those rows.
        unsigned char* st = gbase + kOffKv + col0 + s * kTileBytes;
        for (int i = wtid; i < (kBn - valid) * 4 * 8; i += 128) {
          const int r = valid + i / 32, grp = (i / 8) % 4, ch = i % 8;
          *reinterpret_cast<uint4*>(st + grp * kGroupStride + r * 128 + ch * 16) =
              make_uint4(0, 0, 0, 0);
        }
        fence_proxy_async_smem();
        if (half == 0)
          named_sync<4, 128>();
        else
          named_sync<5, 128>();
      }
      wgmma_fence();
      const uint32_t stage = base + kOffKv + col0 + s * kTileBytes;
#pragma unroll
      for (int kk = 0; kk < kPvSteps; ++kk)
        wgmma_m64n256k16_rs_mn(o, pa[kk],
                               wgmma_desc_sw128(stage + kk * 16 * 128, kGroupStride, 1024), 1);
      wgmma_commit();
      wgmma_wait<0>();
      wgmma_fence_regs(o);
      mbar_arrive(bar_empty + 8 * s);
      if (wg == 1 && wtid == 0 && tile + kStages < ntiles) {
        mbar_wait(bar_empty + 8 * s, (tile / kStages) & 1);
        issue_tile(tile + kStages);
      }
    }
    mbar_arrive(bar_pempty + 8 * b);
  }

  named_sync<1, kThreads>();  // WG0's l
  l_run[0] = lm[wtid];
  l_run[1] = lm[128 + wtid];
  const int64_t rows = p.num_tokens * H;
  const bool f32 = a.splits > 1;
  const uint32_t pitch = f32 ? kMlaStagePitchF32 : kMlaStagePitchBf16;
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const float l = l_run[h];
    const int64_t th = static_cast<int64_t>(t) * H + hb * kHeads + warp * 16 + g + 8 * h;
    const float inv = l > 0.f ? 1.f / l : 0.f;
    const int col = half * 256 + 2 * c;
    if (!a.bulk_store) {
      mla_store_row<32>(p, a.splits, z, rows, th, col, o, h, inv);
      continue;
    }
    unsigned char* row = gbase + kOffKv + (warp * 16 + g + 8 * h) * pitch;
    mla_stage_pairs<32>(row, f32, col, o, h, inv);
  }
  if (a.bulk_store) {
    fence_proxy_async_smem();
    named_sync<3, kThreads>();
    if (wg == 1 && warp == 0)
      mla_bulk_store_rows(p, a.splits, z, rows, static_cast<int64_t>(t) * H + hb * kHeads, kHeads,
                          base + kOffKv, lane);
  }
}

}  // namespace

bool mla_decode_tma_supported(const MlaAttentionParams& p) {
  return mla_decode_wgmma_supported(p) && p.page_size >= kBn && p.page_size % kBn == 0 &&
         reinterpret_cast<uintptr_t>(p.kv_cache) % 16 == 0;
}

void launch_mla_decode_tma(const MlaAttentionParams& p, cudaStream_t s) {
  WS_CUDA_REQUIRE(mla_decode_tma_supported(p) && p.num_heads <= 4096,
                  "mla v6: num_heads must be a multiple of 64 up to 4096 and page_size a multiple "
                  "of 32, got " +
                      std::to_string(p.num_heads) + " heads, page size " +
                      std::to_string(p.page_size));
  if (!mla_decode_check(p, "v6")) return;
  const int64_t splits = mla_wgmma_checked_splits(p, "v6", sm_count());
  static SmemOptIn smem_opt_in;
  smem_opt_in.raise({reinterpret_cast<const void*>(mla_decode_tma_kernel)},
                    static_cast<int>(kSmemBytes));
  // Rows as far as a page id can reach: the kernel only reads rows of the sequences' pages.
  const uint64_t max_rows = (uint64_t{1} << 31) - 1;
  const CUtensorMap map = make_tensor_map_bf16_sw128(p.kv_cache, kRow, max_rows, kRow * 2, 64, kBn);
  const bool aligned = splits > 1 ? reinterpret_cast<uintptr_t>(p.workspace) % 16 == 0
                                  : reinterpret_cast<uintptr_t>(p.out) % 16 == 0;
  const TmaArgs a{p, static_cast<int>(splits), p.softmax_scale * kLog2e,
                  aligned && mla_v5_bulk_store()};
  const dim3 grid(static_cast<unsigned>(p.num_heads / kHeads), static_cast<unsigned>(p.num_tokens),
                  static_cast<unsigned>(splits));
  launch_pdl(mla_decode_tma_kernel, grid, dim3(kThreads), kSmemBytes, s, map, a);
  if (splits > 1)
    launch_mla_combine(static_cast<const float*>(p.workspace), p.num_tokens * p.num_heads,
                       static_cast<int>(splits), p.out, p.lse, s);
}

}  // namespace wideserve::cuda
