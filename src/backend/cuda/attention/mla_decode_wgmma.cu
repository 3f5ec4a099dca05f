// MLA decode "v5": the absorbed decode on wgmma for head counts that are a multiple of 64
// (DeepSeek-V3/R1's 128 heads per rank), where v4's mma.sync kernel is compute-bound at ~185
// TFLOP/s. Same params, workspace contract and combine kernel as v3/v4 (docs/cuda_mla.md, "v5").
//
// A CTA owns one token, 64 heads and one KV split; three warpgroups:
//   WG2 (producer): thread (r, q) copies row r of each 32-row KV tile with 16-byte cp.async
//     (rows past the split's end zero-filled) into a 4-stage ring laid out for wgmma (9 column
//     groups of 32 x 128-byte swizzled rows); the copies arrive on the stage's `full` barrier
//     by themselves, and its row's page is looked up one tile ahead.
//   WG0: S[64 heads x 32 rows] = Q K^T on wgmma (Q in shared memory, loaded once by the
//     consumers with cp.async while the producer fetches the first tiles; 36 k16 steps of
//     m64n32). It issues the next tile's Q K^T together with this tile's P V and runs the next
//     online softmax while P V is on the tensor pipe (FlashAttention-3's order); P (bf16, the
//     m16n8k16 A-fragment layout) and the row rescale go to WG1 through shared memory, then
//     O[:, 0:256] += P V (m64n256k16, A from registers, V = the same stage read MN-major).
//   WG1: O[:, 256:512] += P V with WG0's P.
// O (64 x 256 fp32 per warpgroup) lives in registers: consumers raise their register limit
// (setmaxnreg) while the producer lowers its own.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <atomic>
#include <cmath>
#include <cstdint>
#include <string>

#include "backend/cuda/attention/mla.h"
#include "backend/cuda/attention/mla_combine.h"
#include "backend/cuda/attention/mla_decode_check.h"
#include "backend/cuda/attention/mla_decode_common.cuh"
#include "backend/cuda/attention/mla_decode_wgmma.h"
#include "backend/cuda/attention/mla_plan.h"
#include "backend/cuda/common/cuda_check.h"
#include "backend/cuda/common/kernel_trace.cuh"
#include "backend/cuda/common/mbarrier_ptx.cuh"
#include "backend/cuda/common/mma_ptx.cuh"
#include "backend/cuda/common/pdl.cuh"
#include "backend/cuda/common/smem_opt_in.h"
#include "backend/cuda/common/wgmma_ptx.cuh"

namespace wideserve::cuda {
namespace {

constexpr int kHeads = 64;          // query rows of a CTA (m64)
constexpr int kBn = 32;             // KV rows per tile
constexpr int kRow = 576;           // elements per cache row / query head
constexpr int kGroups = kRow / 64;  // 128-byte column groups of a row (9)
constexpr int kChunks = kRow / 8;   // 16-byte chunks of a row (72)
constexpr int kStages = 4;
constexpr int kThreads = 384;
constexpr uint32_t kQBytes = kGroups * kHeads * 128;   // 73,728
constexpr uint32_t kStageBytes = kGroups * kBn * 128;  // 36,864
constexpr uint32_t kGroupStride = kBn * 128;           // bytes between column groups (4,096)
constexpr int kKSteps = kBn / 16;                      // k16 steps of P V per tile (2)
constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

// Shared memory after the 1024-byte aligned base (swizzle atoms must be aligned).
constexpr uint32_t kOffQ = 0;
constexpr uint32_t kOffKv = kOffQ + kQBytes;
constexpr uint32_t kOffP = kOffKv + kStages * kStageBytes;  // [k16][4 regs][128 threads] u32
constexpr uint32_t kOffAlpha = kOffP + 4 * 4 * 128 * 4;     // [2 rows][128 threads] f32 (the
                                                            // epilogue reuses P's 4 x 128 words)
constexpr uint32_t kOffBar = kOffAlpha + 2 * 128 * 4;       // full[], empty[], p_full, p_empty
constexpr uint32_t kSmemBytes = kOffBar + (2 * kStages + 2) * 8 + 1024;  // + alignment slack
static_assert(kSmemBytes <= 227 * 1024, "over the sm_90 dynamic shared memory limit");

// Debug builds with -DWS_MLA_TRACE record per-CTA timestamps (%globaltimer, ns) of the last
// launch at fixed points (MlaTracePoint), read by mla_bench --trace; otherwise the macro is empty.
#ifdef WS_MLA_TRACE
__device__ unsigned long long g_mla_trace[kMlaTraceCtas][kMlaTracePoints];
__device__ __forceinline__ unsigned long long globaltimer() {
  unsigned long long t;
  asm volatile("mov.u64 %0, %globaltimer;" : "=l"(t));
  return t;
}
__device__ __forceinline__ unsigned smid() {
  unsigned r;
  asm volatile("mov.u32 %0, %smid;" : "=r"(r));
  return r;
}
__device__ __forceinline__ unsigned trace_cta() {
  return blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
}
#define MLA_TRACE(point)                                                              \
  do {                                                                                \
    if (trace_cta() < kMlaTraceCtas) g_mla_trace[trace_cta()][point] = globaltimer(); \
  } while (0)
#else
#define MLA_TRACE(point) \
  do {                   \
  } while (0)
#endif

struct WgArgs {
  MlaAttentionParams p;
  int splits;
  float scale_log2;
  bool bulk_store;  // output rows 16-byte aligned: staged in shared memory, bulk-copied out
};

// The epilogue's staging of the CTA's 64 output rows in the (then free) KV ring: row pitch padded
// so the accumulator-layout writes (rows g, columns 2c of a warp) hit 32 distinct banks.
static_assert(kHeads * kMlaStagePitchF32 <= kStages * kStageBytes, "O staging must fit the ring");

// Byte offset of 16-byte chunk c (0..71) of row r in a [groups][rows][128 B] swizzled block.
__device__ __forceinline__ uint32_t swz_off(int r, int c, uint32_t group_stride) {
  return (c >> 3) * group_stride + r * 128 + (((c & 7) ^ (r & 7)) << 4);
}

__global__ void __launch_bounds__(kThreads, 1) mla_decode_wgmma_kernel(const WgArgs a) {
  KernelTrace kt_(TraceKernel::kMlaDecodeWgmma);
  kt_.wait();
  pdl_launch_dependents();
#ifdef WS_MLA_TRACE
  if (threadIdx.x == 0) {
    MLA_TRACE(kTraceEntry);
    if (trace_cta() < kMlaTraceCtas) g_mla_trace[trace_cta()][kTraceSm] = smid();
  }
#endif
  extern __shared__ __align__(1024) unsigned char smem_raw[];
  const uint32_t base = (smem_addr(smem_raw) + 1023u) & ~1023u;
  unsigned char* gbase = smem_raw + (base - smem_addr(smem_raw));
  const MlaAttentionParams& p = a.p;
  const int tid = threadIdx.x, wg = tid / 128, wtid = tid % 128;
  const int hb = blockIdx.x, t = blockIdx.y, z = blockIdx.z;
  const int H = static_cast<int>(p.num_heads);

  // This CTA's KV range: split z's equal share (whole tiles) of the token's visible length.
  const MlaSplitRange range = mla_split_range<kBn>(p, t, z, a.splits);
  const int seq = range.seq, lo = range.lo, hi = range.hi, ntiles = range.ntiles;

  const uint32_t bar_full = base + kOffBar, bar_empty = bar_full + 8 * kStages,
                 bar_pfull = bar_empty + 8 * kStages, bar_pempty = bar_pfull + 8;
  if (tid == 0) {
    for (int s = 0; s < kStages; ++s) {
      mbar_init(bar_full + 8 * s, 128);   // every producer thread, when its copies landed
      mbar_init(bar_empty + 8 * s, 256);  // every consumer thread
    }
    mbar_init(bar_pfull, 128);
    mbar_init(bar_pempty, 128);
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  }
  __syncthreads();  // barriers initialised; the producer starts on the first tiles right away

  if (wg == 2) {
    // Producer.
    setmaxnreg_dec<40>();
    if (ntiles == 0) return;
    const int32_t* pages = p.page_table + static_cast<int64_t>(seq) * p.max_pages_per_seq;
    const int ps = static_cast<int>(p.page_size);
    const char* cache = reinterpret_cast<const char*>(p.kv_cache);
    // Thread (r, q) copies row r of every tile: chunks q, q+4, ..., q+68 (each 4-thread group
    // reads 64 contiguous bytes per copy). Its row's slot is looked up one tile ahead.
    const int r = wtid >> 2, q = wtid & 3;
    auto lookup = [&](int tile) -> int64_t {
      const int pos = lo + tile * kBn + r;
      return tile < ntiles && pos < hi
                 ? static_cast<int64_t>(__ldg(&pages[pos / ps])) * ps + pos % ps
                 : -1;
    };
    int64_t next = lookup(0);
    // Each thread's copies of a tile arrive on the stage's `full` barrier when they land
    // (cp.async.mbarrier.arrive.noinc: the producer never waits for its own copies); a stage is
    // refilled with tile t + kStages once both consumer warpgroups released tile t.
#pragma unroll 1
    for (int tile = 0; tile < ntiles; ++tile) {
      const int s = tile % kStages;
      if (tile >= kStages) mbar_wait(bar_empty + 8 * s, ((tile / kStages) - 1) & 1);
      const int64_t slot = next;
      next = lookup(tile + 1);
      // Rows past the split's end are zero-filled (src-size 0 reads nothing).
      const char* src = slot >= 0 ? cache + slot * (kRow * 2) + q * 16 : cache;
      const int step = slot >= 0 ? 64 : 0;
      const uint32_t nbytes = slot >= 0 ? 16u : 0u;
      const uint32_t dst = base + kOffKv + s * kStageBytes + r * 128;
#pragma unroll
      for (int j = 0; j < kChunks / 4; ++j)  // chunk c = q + 4j: group c / 8, slot c % 8
        cp_async_16(dst + (j >> 1) * kGroupStride + (((q + 4 * (j & 1)) ^ (r & 7)) << 4),
                    src + j * step, nbytes);
      asm volatile("cp.async.mbarrier.arrive.noinc.shared::cta.b64 [%0];\n" ::"r"(bar_full + 8 * s)
                   : "memory");
      if (wtid == 0 && tile == (ntiles < kStages ? ntiles : kStages) - 1)
        MLA_TRACE(kTraceRingIssued);
    }
    if (wtid == 0) MLA_TRACE(kTraceProducerDone);
    return;
  }

  setmaxnreg_inc<232>();
  // Q[64 heads, 576] of this token into the swizzled K-major layout, by the consumers with
  // cp.async (all 18 copies per thread in flight at once) while the producer loads tiles.
  {
    const char* q = reinterpret_cast<const char*>(
        p.q + (static_cast<int64_t>(t) * H + static_cast<int64_t>(hb) * kHeads) * kRow);
    for (int i = tid; i < kHeads * kChunks; i += 256)
      cp_async_16(base + kOffQ + swz_off(i / kChunks, i % kChunks, kHeads * 128), q + i * 16, 16);
    asm volatile("cp.async.wait_all;\n" ::: "memory");
    fence_proxy_async_smem();
    named_sync<2, 256>();
    if (tid == 0) MLA_TRACE(kTraceQLanded);
  }
  const int warp = wtid / 32, lane = wtid % 32, g = lane / 4, c = lane % 4;
  uint32_t* pbuf = reinterpret_cast<uint32_t*>(gbase + kOffP);
  float* abuf = reinterpret_cast<float*>(gbase + kOffAlpha);
  float o[128];
#pragma unroll
  for (int i = 0; i < 128; ++i) o[i] = 0.f;
  float m_run[2] = {-INFINITY, -INFINITY}, l_run[2] = {0.f, 0.f};  // rows g, g+8 (log2 units)
  const uint32_t col0 = wg == 0 ? 0u : 4u * kGroupStride;  // this warpgroup's 256 value columns
  // WG0: S = Q K^T of `tile` into sc (issued and committed, not waited for). The caller has
  // waited for the tile's stage.
  // Descriptors are built once per operand base; a k16 step adds its byte offset / 16 to the
  // start-address field (offsets stay inside the 256 KB the 14-bit field spans).
  const uint64_t q_desc = wgmma_desc_sw128(base + kOffQ, 16, 1024);
  auto issue_qk = [&](float(&sc)[16], int tile) {
    const uint64_t k_desc =
        wgmma_desc_sw128(base + kOffKv + (tile % kStages) * kStageBytes, 16, 1024);
    // Opaque per call: otherwise the compiler hoists the 36 Q descriptors out of the loop and
    // spills them (one add per wgmma is cheaper than a local-memory reload).
    uint64_t q_desc_l = q_desc;
    asm volatile("" : "+l"(q_desc_l));
#pragma unroll
    for (int k = 0; k < kRow / 16; ++k) {
      const uint32_t qoff = (k >> 2) * (kHeads * 128) + (k & 3) * 32;
      const uint32_t koff = (k >> 2) * kGroupStride + (k & 3) * 32;
      wgmma_m64n32k16_ss(sc, wgmma_desc_add(q_desc_l, qoff), wgmma_desc_add(k_desc, koff), k > 0);
    }
    wgmma_commit();
  };
  // O = alpha * O. A warp skips it when none of its rows' maxima moved (alpha is exactly 1).
  auto rescale_o = [&](const float(&alpha)[2]) {
    if (__any_sync(0xffffffffu, alpha[0] != 1.f || alpha[1] != 1.f)) {
#pragma unroll
      for (int j = 0; j < 32; ++j) {
        o[4 * j + 0] *= alpha[0];
        o[4 * j + 1] *= alpha[0];
        o[4 * j + 2] *= alpha[1];
        o[4 * j + 3] *= alpha[1];
      }
    }
  };
  // O += P V of `tile` over this warpgroup's 256 columns (issued, committed; the caller fenced).
  auto issue_pv = [&](const uint32_t(&pa)[kKSteps][4], int tile) {
    const uint32_t stage = base + kOffKv + (tile % kStages) * kStageBytes;
#pragma unroll
    for (int kk = 0; kk < kKSteps; ++kk)
      wgmma_m64n256k16_rs_mn(o, pa[kk],
                             wgmma_desc_sw128(stage + col0 + kk * 16 * 128, kGroupStride, 1024), 1);
    wgmma_commit();
  };
  // The producer's cp.async writes are generic-proxy writes: after observing them through the
  // barrier, each consumer thread fences them into the async proxy its wgmma reads through.
  auto wait_full = [&](int tile) {
    mbar_wait(bar_full + 8 * (tile % kStages), (tile / kStages) & 1);
    fence_proxy_async_smem();
  };

  if (wg == 0 && ntiles > 0) {
    // Order per tile (as FlashAttention-3's consumer): issue Q K^T(tile + 1) and P V(tile), run
    // the softmax of tile + 1 on the CUDA cores while P V(tile) (and WG1's half) is on the
    // tensor pipe, then hand P(tile + 1) over. Nothing is in flight across iterations, and no
    // branch sits between a wgmma's issue and its wait (ptxas would serialize them): the last
    // tile repeats its own Q K^T and masks the result out.
    float sc[16];
    uint32_t pa[kKSteps][4];
    float alpha[2];
    // Online softmax of `tile` (base 2) from sc into pa / alpha; P = 0 at positions >= hi and
    // everywhere when !valid (the state then stays as it was).
    auto softmax = [&](int tile, bool valid) {
      mla_tile_softmax<kBn / 8>(sc, lo + tile * kBn + 2 * c, hi, valid, a.scale_log2, m_run, l_run,
                                alpha);
    };
    // P (the S accumulator of n8 tiles (2kk, 2kk+1) is the A fragment of k16 step kk) and the
    // rescale to WG1, once it has taken the previous tile's.
    auto hand_over = [&](int tile) {
#pragma unroll
      for (int kk = 0; kk < kKSteps; ++kk) {
        pa[kk][0] = pack_bf16(sc[8 * kk + 0], sc[8 * kk + 1]);
        pa[kk][1] = pack_bf16(sc[8 * kk + 2], sc[8 * kk + 3]);
        pa[kk][2] = pack_bf16(sc[8 * kk + 4], sc[8 * kk + 5]);
        pa[kk][3] = pack_bf16(sc[8 * kk + 6], sc[8 * kk + 7]);
      }
      if (tile >= 1) mbar_wait(bar_pempty, (tile - 1) & 1);
#pragma unroll
      for (int kk = 0; kk < kKSteps; ++kk)
#pragma unroll
        for (int r = 0; r < 4; ++r) pbuf[(kk * 4 + r) * 128 + wtid] = pa[kk][r];
      abuf[wtid] = alpha[0];
      abuf[128 + wtid] = alpha[1];
      mbar_arrive(bar_pfull);
    };
    wait_full(0);
    if (wtid == 0) MLA_TRACE(kTraceTile0Landed);
    wgmma_fence();
    issue_qk(sc, 0);
    wgmma_wait<0>();
    wgmma_fence_regs(sc);
    softmax(0, true);
    hand_over(0);
    if (wtid == 0) MLA_TRACE(kTraceLoopStart);
#pragma unroll 1
    for (int tile = 0; tile < ntiles; ++tile) {
      const bool has_next = tile + 1 < ntiles;
      const int nt = has_next ? tile + 1 : tile;
      wait_full(nt);
#ifdef WS_MLA_TRACE
      if (wtid == 0 && nt == (ntiles < kStages ? ntiles : kStages) - 1)
        MLA_TRACE(kTraceTile3Landed);
#endif
      rescale_o(alpha);
      wgmma_fence();
      issue_qk(sc, nt);
      issue_pv(pa, tile);
      wgmma_wait<1>();
      wgmma_fence_regs(sc);
      softmax(nt, has_next);
      wgmma_wait<0>();
      wgmma_fence_regs(o);
      mbar_arrive(bar_empty + 8 * (tile % kStages));
      if (has_next) hand_over(nt);
    }
    if (wtid == 0) MLA_TRACE(kTraceLoopEnd);
  } else if (wg == 1) {
#pragma unroll 1
    for (int tile = 0; tile < ntiles; ++tile) {
      uint32_t pa[kKSteps][4];
      float alpha[2];
      mbar_wait(bar_pfull, tile & 1);
#pragma unroll
      for (int kk = 0; kk < kKSteps; ++kk)
#pragma unroll
        for (int r = 0; r < 4; ++r) pa[kk][r] = pbuf[(kk * 4 + r) * 128 + wtid];
      alpha[0] = abuf[wtid];
      alpha[1] = abuf[128 + wtid];
      mbar_arrive(bar_pempty);
      wait_full(tile);  // complete already: orders this warpgroup's reads of the stage
      rescale_o(alpha);
      wgmma_fence();
      issue_pv(pa, tile);
      wgmma_wait<0>();
      wgmma_fence_regs(o);
      mbar_arrive(bar_empty + 8 * (tile % kStages));
    }
    if (wtid == 0) MLA_TRACE(kTraceWg1End);
  }

  // Epilogue: WG0 owns the softmax state; WG1 gets the row sums and maxima through shared memory
  // (the P buffer, once WG1 has taken the last P).
  float* lm = reinterpret_cast<float*>(gbase + kOffP);
  if (wg == 0) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      l_run[h] += __shfl_xor_sync(0xffffffffu, l_run[h], 1);
      l_run[h] += __shfl_xor_sync(0xffffffffu, l_run[h], 2);
    }
    if (ntiles >= 1) mbar_wait(bar_pempty, (ntiles - 1) & 1);
    lm[wtid] = l_run[0];
    lm[128 + wtid] = l_run[1];
    lm[256 + wtid] = m_run[0];
    lm[384 + wtid] = m_run[1];
  }
  named_sync<1, 256>();
  if (tid == 0) MLA_TRACE(kTraceSynced);
  if (wg == 1) {
    l_run[0] = lm[wtid];
    l_run[1] = lm[128 + wtid];
    m_run[0] = lm[256 + wtid];
    m_run[1] = lm[384 + wtid];
  }
  const int64_t rows = p.num_tokens * H;
  const bool f32 = a.splits > 1;
  const uint32_t pitch = f32 ? kMlaStagePitchF32 : kMlaStagePitchBf16;
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const float l = l_run[h];
    const int head = hb * kHeads + warp * 16 + g + 8 * h;
    const float inv = l > 0.f ? 1.f / l : 0.f;
    const int64_t th = static_cast<int64_t>(t) * H + head;
    if (wg == 0 && c == 0)
      mla_store_lse(p, a.splits, z, rows, th, l > 0.f ? (m_run[h] + log2f(l)) * kLn2 : -INFINITY);
    if (!a.bulk_store) {
      mla_store_row<32>(p, a.splits, z, rows, th, wg * 256 + 2 * c, o, h, inv);
      continue;
    }
    // The same values mla_store_row writes, into the staging rows.
    unsigned char* row = gbase + kOffKv + (warp * 16 + g + 8 * h) * pitch;
    const int col = wg * 256 + 2 * c;
    mla_stage_pairs<32>(row, f32, col, o, h, inv);
  }
  if (a.bulk_store) {
    // The stores leave through the TMA engine: the CTA waits only until the copies have read
    // shared memory, so the next CTA on this SM starts while the rows are still being written
    // (one warp-store per 16-byte-sector-pair of the accumulator layout took ~5 us per CTA).
    fence_proxy_async_smem();
    named_sync<1, 256>();
    if (wg == 0 && warp == 0)
      mla_bulk_store_rows(p, a.splits, z, rows, static_cast<int64_t>(t) * H + hb * kHeads, kHeads,
                          base + kOffKv, lane);
  }
  if (tid == 0) MLA_TRACE(kTraceStored);
}

std::atomic<bool> g_bulk_store{true};

}  // namespace

void set_mla_v5_bulk_store(bool on) {
  g_bulk_store.store(on, std::memory_order_relaxed);
}
bool mla_v5_bulk_store() {
  return g_bulk_store.load(std::memory_order_relaxed);
}

bool mla_decode_wgmma_trace(std::vector<unsigned long long>* out) {
#ifdef WS_MLA_TRACE
  out->resize(static_cast<size_t>(kMlaTraceCtas) * kMlaTracePoints);
  WS_CUDA_CHECK(cudaMemcpyFromSymbol(out->data(), g_mla_trace, out->size() * sizeof(out->front())));
  return true;
#else
  (void)out;
  return false;
#endif
}

bool mla_decode_wgmma_supported(const MlaAttentionParams& p) {
  return p.num_heads >= kHeads && p.num_heads % kHeads == 0;
}

bool mla_decode_wgmma_preferred(const MlaAttentionParams& p) {
  return mla_wgmma_preferred(p.num_tokens, p.num_heads);
}

void launch_mla_decode_wgmma(const MlaAttentionParams& p, cudaStream_t s) {
  WS_CUDA_REQUIRE(
      mla_decode_wgmma_supported(p) && p.num_heads <= 4096,
      "mla v5: num_heads must be a multiple of 64 up to 4096, got " + std::to_string(p.num_heads));
  if (!mla_decode_check(p, "v5")) return;
  const int64_t head_blocks = p.num_heads / kHeads;
  // mla_workspace_bytes counts this plan for every head count this kernel supports.
  const int64_t splits = mla_wgmma_checked_splits(p, "v5", sm_count());
  static SmemOptIn smem_opt_in;
  smem_opt_in.raise({reinterpret_cast<const void*>(mla_decode_wgmma_kernel)},
                    static_cast<int>(kSmemBytes));
  const bool aligned = splits > 1 ? reinterpret_cast<uintptr_t>(p.workspace) % 16 == 0
                                  : reinterpret_cast<uintptr_t>(p.out) % 16 == 0;
  const WgArgs a{p, static_cast<int>(splits), p.softmax_scale * kLog2e,
                 aligned && mla_v5_bulk_store()};
  const dim3 grid(static_cast<unsigned>(head_blocks), static_cast<unsigned>(p.num_tokens),
                  static_cast<unsigned>(splits));
  launch_pdl(mla_decode_wgmma_kernel, grid, dim3(kThreads), kSmemBytes, s, a);
  if (splits > 1)
    launch_mla_combine(static_cast<const float*>(p.workspace), p.num_tokens * p.num_heads,
                       static_cast<int>(splits), p.out, p.lse, s);
}

}  // namespace wideserve::cuda
