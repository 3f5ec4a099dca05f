// Absorbed MLA attention over the paged latent cache: one split-KV flash kernel serves decode and
// prefill, plus a combine kernel for the split partials. Tensor cores via mma.sync m16n8k16 (bf16
// in, fp32 accumulate), cp.async 16-byte row gathers, online softmax in fp32 (base-2 exponent).
//
// A CTA owns MROWS = 16*MB query rows (a row = one (token, head) pair), one KV split, 8 warps.
// Per 48-row KV tile (3-stage cp.async ring in shared memory, loaded once for all MROWS rows):
//   A: warp w < 6 computes S[:, 8w..8w+8) = Q·K^T over d = 576 (its 8 KV rows, all MB m-tiles);
//      masks, quad max -> red_max[w][row].
//   B: every warp forms the same new row max from red_max, rescales its O, writes P (bf16) to smem;
//      each lane keeps a partial row sum l (reduced across quads and warps only at the end).
//   C: warp w computes O[:, 64w..64w+64) += P·V (V = first 512 columns of the same KV rows).
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>

#include "backend/cuda/attention/mla.h"
#include "backend/cuda/attention/mla_combine.h"
#include "backend/cuda/attention/mla_plan.h"
#include "backend/cuda/common/cuda_check.h"
#include "backend/cuda/common/kernel_trace.cuh"
#include "backend/cuda/common/mma_ptx.cuh"
#include "backend/cuda/common/pdl.cuh"
#include "backend/cuda/common/smem_opt_in.h"

namespace wideserve::cuda {
namespace {

constexpr int kWarps = 8;
constexpr int kThreads = kWarps * 32;
constexpr int kBn = 48;            // KV rows per tile (3 stages fit shared memory with Q)
constexpr int kStages = 3;         // cp.async pipeline depth: two tiles in flight while computing
constexpr int kQkWarps = kBn / 8;  // warps with KV rows in the QK phase
constexpr int kRow = 576;          // elements per cache row / query head
constexpr int kLat = 512;          // value / output width
constexpr int kStride = kRow + 8;  // smem row stride (elements): 1168 B, ldmatrix conflict-free
constexpr int kChunks = kRow * 2 / 16;  // 16-byte chunks per row (72)
constexpr int kPStride = kBn + 8;       // P smem row stride (elements)
constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

struct KernelArgs {
  MlaAttentionParams p;
  int hpb;     // heads per block (row r -> head hb*hpb + r % hpb)
  int tpc;     // tokens per CTA (row r -> token g*tpc + r / hpb); tpc*hpb <= MROWS
  int splits;  // KV splits (gridDim.z)
  float scale_log2;
  int page_shift;  // log2(page_size) when a power of two, else -1
};

__device__ __forceinline__ void cp_async_commit() {
  asm volatile("cp.async.commit_group;\n" ::);
}
__device__ __forceinline__ void cp_async_wait_one() {
  asm volatile("cp.async.wait_group 1;\n" ::);
}
__device__ __forceinline__ void cp_async_wait_all() {
  asm volatile("cp.async.wait_group 0;\n" ::);
}

template <int MB>
struct Smem {
  static constexpr int kRows = 16 * MB;
  __nv_bfloat16 q[kRows * kStride];
  __nv_bfloat16 kv[kStages][kBn * kStride];
  __nv_bfloat16 pm[kRows * kPStride];
  float red[kWarps][kRows];
  int row_tok[kRows];
  int row_head[kRows];
  int row_lim[kRows];  // visible cache positions [0, lim); 0 = inactive row
};

template <int MB>
__global__ void __launch_bounds__(kThreads, 1) mla_fwd_kernel(const KernelArgs a) {
  KernelTrace kt_(TraceKernel::kMlaFwd);
  constexpr int kRows = 16 * MB;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  auto& sm = *reinterpret_cast<Smem<MB>*>(smem_raw);
  const MlaAttentionParams& p = a.p;
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  const int hb = blockIdx.x, g = blockIdx.y, z = blockIdx.z;
  const int64_t tok0 = static_cast<int64_t>(g) * a.tpc;
  const int ntok = static_cast<int>(std::min<int64_t>(a.tpc, p.num_tokens - tok0));
  const int H = static_cast<int>(p.num_heads);
  uint32_t done = 0;  // tokens of this CTA already handled (a CTA's tokens may span sequences)

  for (;;) {
    // Segment: the first unhandled token's sequence and every token of the CTA that shares it.
    int seg_seq = -1;
    for (int t = 0; t < ntok; ++t)
      if (!(done >> t & 1)) {
        seg_seq = p.token_seq[tok0 + t];
        break;
      }
    if (seg_seq < 0) break;
    int kv_end = 0;
    const int seq_len = p.seq_lens[seg_seq];
    for (int t = 0; t < ntok; ++t)
      if (!(done >> t & 1) && p.token_seq[tok0 + t] == seg_seq) {
        done |= 1u << t;
        kv_end = max(kv_end, min(p.token_pos[tok0 + t] + 1, seq_len));
      }
    __syncthreads();  // previous segment finished with smem
    if (tid < kRows) {
      int t = tid / a.hpb, h = hb * a.hpb + tid % a.hpb, lim = 0;
      bool act = t < ntok && h < H && p.token_seq[tok0 + t] == seg_seq;
      if (act) lim = min(p.token_pos[tok0 + t] + 1, seq_len);
      sm.row_tok[tid] = act ? static_cast<int>(tok0 + t) : -1;
      sm.row_head[tid] = h;
      sm.row_lim[tid] = lim;
    }
    // Split range of this segment: equal shares of its own length, whole tiles.
    int chunk = (kv_end + a.splits - 1) / a.splits;
    chunk = (chunk + kBn - 1) / kBn * kBn;
    const int lo = min(kv_end, z * chunk), hi = min(kv_end, lo + chunk);
    const int ntiles = (hi - lo + kBn - 1) / kBn;

    const int32_t* pages = p.page_table + static_cast<int64_t>(seg_seq) * p.max_pages_per_seq;
    const int page_size = static_cast<int>(p.page_size);
    // All page-table reads of a tile are issued before any copy (unrolled, independent), so the
    // issue costs one load latency rather than one per chunk; power-of-two pages use shifts.
    auto load_tile = [&](int tile, int buf) {
      constexpr int kPer = (kBn * kChunks + kThreads - 1) / kThreads;
      const int base = lo + tile * kBn;
      int32_t page[kPer];
#pragma unroll
      for (int i = 0; i < kPer; ++i) {
        const int c = tid + i * kThreads, pos = base + c / kChunks;
        const int idx = a.page_shift >= 0 ? pos >> a.page_shift : pos / page_size;
        page[i] = c < kBn * kChunks && pos < hi ? __ldg(&pages[idx]) : -1;
      }
#pragma unroll
      for (int i = 0; i < kPer; ++i) {
        const int c = tid + i * kThreads;
        if (c < kBn * kChunks) {
          const int r = c / kChunks, col = c % kChunks, pos = base + r;
          const int off = a.page_shift >= 0 ? pos & (page_size - 1) : pos % page_size;
          const bool valid = page[i] >= 0;
          const __nv_bfloat16* src =
              valid
                  ? p.kv_cache + (static_cast<int64_t>(page[i]) * page_size + off) * kRow + col * 8
                  : p.kv_cache;
          cp_async_16(smem_addr(&sm.kv[buf][r * kStride + col * 8]), src, valid ? 16u : 0u);
        }
      }
    };
    __syncthreads();  // row metadata visible
    for (int c = tid; c < kRows * kChunks; c += kThreads) {
      int r = c / kChunks, col = c % kChunks, t = sm.row_tok[r];
      const __nv_bfloat16* src = p.q;
      if (t >= 0) src = p.q + (static_cast<int64_t>(t) * H + sm.row_head[r]) * kRow + col * 8;
      cp_async_16(smem_addr(&sm.q[r * kStride + col * 8]), src, t >= 0 ? 16u : 0u);
    }
    if (ntiles > 0) load_tile(0, 0);
    cp_async_commit();
    if (ntiles > 1) load_tile(1, 1);
    cp_async_commit();

    // Per-lane state for rows (m*16 + lane/4 + 8*h): running max (log2 units) and partial sum.
    float acc[MB][8][4];
    float m_run[MB][2], l_run[MB][2];
    int lim[MB][2];
#pragma unroll
    for (int m = 0; m < MB; ++m) {
      lim[m][0] = min(sm.row_lim[m * 16 + lane / 4], hi);
      lim[m][1] = min(sm.row_lim[m * 16 + lane / 4 + 8], hi);
#pragma unroll
      for (int j = 0; j < 8; ++j)
#pragma unroll
        for (int e = 0; e < 4; ++e) acc[m][j][e] = 0.f;
      m_run[m][0] = m_run[m][1] = -INFINITY;
      l_run[m][0] = l_run[m][1] = 0.f;
    }

    for (int tile = 0; tile < ntiles; ++tile) {
      const int buf = tile % kStages;
      cp_async_wait_one();  // this tile's group; the next one may still fly
      __syncthreads();      // also: every warp is done with the buffer refilled below
      if (tile + 2 < ntiles) load_tile(tile + 2, (tile + 2) % kStages);
      cp_async_commit();
      const __nv_bfloat16* kvs = sm.kv[buf];

      // A: S = Q K^T for this warp's 8 KV rows; four accumulator chains per m-tile so the
      // tensor pipe is not serialised on one accumulator's latency.
      float s[MB][4], sc[MB][4][4];
#pragma unroll
      for (int m = 0; m < MB; ++m)
#pragma unroll
        for (int c = 0; c < 4; ++c) sc[m][c][0] = sc[m][c][1] = sc[m][c][2] = sc[m][c][3] = 0.f;
      if (warp < kQkWarps) {
        const uint32_t k_addr = smem_addr(&kvs[(warp * 8 + lane % 8) * kStride + (lane / 8) * 8]);
        const uint32_t q_addr = smem_addr(&sm.q[(lane % 16) * kStride + (lane / 16) * 8]);
#pragma unroll 1
        for (int k2 = 0; k2 < kRow / 32; k2 += 2) {
#pragma unroll
          for (int u = 0; u < 2; ++u) {
            uint32_t b[4];
            ldsm_x4(b, k_addr + (k2 + u) * 64);
#pragma unroll
            for (int m = 0; m < MB; ++m) {
              uint32_t qa[4], qb[4];
              ldsm_x4(qa, q_addr + (m * 16 * kStride + (k2 + u) * 32) * 2);
              ldsm_x4(qb, q_addr + (m * 16 * kStride + (k2 + u) * 32 + 16) * 2);
              mma16816(sc[m][2 * u], qa, b[0], b[1]);
              mma16816(sc[m][2 * u + 1], qb, b[2], b[3]);
            }
          }
        }
      }
#pragma unroll
      for (int m = 0; m < MB; ++m)
#pragma unroll
        for (int e = 0; e < 4; ++e)
          s[m][e] = (sc[m][0][e] + sc[m][1][e]) + (sc[m][2][e] + sc[m][3][e]);
      const int col0 = lo + tile * kBn + warp * 8 + (lane % 4) * 2;
#pragma unroll
      for (int m = 0; m < MB; ++m) {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          int pos = col0 + (e & 1);
          s[m][e] = warp < kQkWarps && pos < lim[m][e >> 1] ? s[m][e] * a.scale_log2 : -INFINITY;
        }
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          float mx = fmaxf(s[m][2 * h], s[m][2 * h + 1]);
          mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
          mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
          if (lane % 4 == 0) sm.red[warp][m * 16 + lane / 4 + 8 * h] = mx;
        }
      }
      __syncthreads();

      // B: new row max, rescale, P to smem.
#pragma unroll
      for (int m = 0; m < MB; ++m) {
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          const int r = m * 16 + lane / 4 + 8 * h;
          float mx = m_run[m][h];
#pragma unroll
          for (int w = 0; w < kWarps; ++w) mx = fmaxf(mx, sm.red[w][r]);
          const float mu = mx == -INFINITY ? 0.f : mx;
          const float alpha = exp2f(m_run[m][h] - mu);
          m_run[m][h] = mx;
          const float p0 = exp2f(s[m][2 * h] - mu), p1 = exp2f(s[m][2 * h + 1] - mu);
          l_run[m][h] = l_run[m][h] * alpha + p0 + p1;
#pragma unroll
          for (int j = 0; j < 8; ++j) {
            acc[m][j][2 * h] *= alpha;
            acc[m][j][2 * h + 1] *= alpha;
          }
          if (warp < kQkWarps)
            *reinterpret_cast<__nv_bfloat162*>(&sm.pm[r * kPStride + warp * 8 + (lane % 4) * 2]) =
                __floats2bfloat162_rn(p0, p1);
        }
      }
      __syncthreads();

      // C: O[:, 64w..64w+64) += P V.
      const uint32_t p_addr = smem_addr(&sm.pm[(lane % 16) * kPStride + (lane / 16) * 8]);
      const uint32_t v_addr = smem_addr(
          &kvs[(lane % 8 + ((lane / 8) & 1) * 8) * kStride + warp * 64 + (lane / 16) * 8]);
#pragma unroll
      for (int kk = 0; kk < kBn / 16; ++kk) {
        uint32_t pa[MB][4];
#pragma unroll
        for (int m = 0; m < MB; ++m) ldsm_x4(pa[m], p_addr + (m * 16 * kPStride + kk * 16) * 2);
#pragma unroll
        for (int j = 0; j < 8; j += 2) {
          uint32_t b[4];
          ldsm_x4_t(b, v_addr + (kk * 16 * kStride + j * 8) * 2);
#pragma unroll
          for (int m = 0; m < MB; ++m) {
            mma16816(acc[m][j], pa[m], b[0], b[1]);
            mma16816(acc[m][j + 1], pa[m], b[2], b[3]);
          }
        }
      }
    }

    // Epilogue: total row sums across quads and warps, then normalised output (+ lse).
    cp_async_wait_all();
    __syncthreads();
#pragma unroll
    for (int m = 0; m < MB; ++m)
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        float l = l_run[m][h];
        l += __shfl_xor_sync(0xffffffffu, l, 1);
        l += __shfl_xor_sync(0xffffffffu, l, 2);
        if (lane % 4 == 0) sm.red[warp][m * 16 + lane / 4 + 8 * h] = l;
      }
    __syncthreads();
    const bool split = a.splits > 1;
    float* o_part = static_cast<float*>(p.workspace);
    float* lse_part = o_part + static_cast<int64_t>(a.splits) * p.num_tokens * H * kLat;
    // Row scalars first, then straight-line stores (keeps acc in registers: no dynamic index).
    float inv[MB][2];
    int64_t th[MB][2];
    bool live[MB][2];
#pragma unroll
    for (int m = 0; m < MB; ++m)
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int r = m * 16 + lane / 4 + 8 * h, t = sm.row_tok[r];
        float l = 0.f;
#pragma unroll
        for (int w = 0; w < kWarps; ++w) l += sm.red[w][r];
        inv[m][h] = l > 0.f ? 1.f / l : 0.f;
        live[m][h] = t >= 0;
        th[m][h] = static_cast<int64_t>(max(t, 0)) * H + sm.row_head[r];
        const float lse = l > 0.f ? (m_run[m][h] + log2f(l)) * kLn2 : -INFINITY;
        if (live[m][h] && warp == 0 && lane % 4 == 0) {
          if (split)
            lse_part[static_cast<int64_t>(z) * p.num_tokens * H + th[m][h]] = lse;
          else if (p.lse != nullptr)
            p.lse[th[m][h]] = lse;
        }
      }
    const int c0 = warp * 64 + (lane % 4) * 2;
    if (split) {
      float* base = o_part + static_cast<int64_t>(z) * p.num_tokens * H * kLat + c0;
#pragma unroll
      for (int m = 0; m < MB; ++m)
#pragma unroll
        for (int h = 0; h < 2; ++h)
#pragma unroll
          for (int j = 0; j < 8; ++j)
            if (live[m][h])
              *reinterpret_cast<float2*>(base + th[m][h] * kLat + j * 8) =
                  make_float2(acc[m][j][2 * h] * inv[m][h], acc[m][j][2 * h + 1] * inv[m][h]);
    } else {
#pragma unroll
      for (int m = 0; m < MB; ++m)
#pragma unroll
        for (int h = 0; h < 2; ++h)
#pragma unroll
          for (int j = 0; j < 8; ++j)
            if (live[m][h])
              *reinterpret_cast<__nv_bfloat162*>(p.out + th[m][h] * kLat + c0 + j * 8) =
                  __floats2bfloat162_rn(acc[m][j][2 * h] * inv[m][h],
                                        acc[m][j][2 * h + 1] * inv[m][h]);
    }
  }
}

// One block per (token, head): weights exp(lse_s - lse) over the splits' normalised partials.
// Every split's lse is loaded at once into shared memory, and the partial rows kBatch splits at a
// time, so the block pays a few L2 round trips instead of one per split (V2-Lite batch 1 on the
// H200: 4.9 us per launch at 13 splits when the loads were made in order). The sums keep the
// split order, so the output is unchanged bit for bit.
__global__ void mla_combine_kernel(const float* o_part, const float* lse_part, __nv_bfloat16* out,
                                   float* lse_out, int64_t rows, int splits) {
  KernelTrace kt_(TraceKernel::kMlaCombine);
  kt_.wait();
  pdl_launch_dependents();
  constexpr int kBatch = 8;
  extern __shared__ float s_lse[];  // [splits]
  const int64_t th = blockIdx.x;
  for (int s = threadIdx.x; s < splits; s += blockDim.x) s_lse[s] = lse_part[s * rows + th];
  __syncthreads();
  float mx = -INFINITY;
  for (int s = 0; s < splits; ++s) mx = fmaxf(mx, s_lse[s]);
  float sum = 0.f;
  for (int s = 0; s < splits; ++s) sum += mx == -INFINITY ? 0.f : __expf(s_lse[s] - mx);
  const float lse = sum > 0.f ? mx + __logf(sum) : -INFINITY;
  float4 o = make_float4(0.f, 0.f, 0.f, 0.f);
  const int c = threadIdx.x * 4;
  for (int s0 = 0; s0 < splits; s0 += kBatch) {
    float4 v[kBatch];
#pragma unroll
    for (int j = 0; j < kBatch; ++j) {
      const int s = s0 + j;
      v[j] = s < splits && s_lse[s] != -INFINITY
                 ? *reinterpret_cast<const float4*>(o_part + (s * rows + th) * kLat + c)
                 : make_float4(0.f, 0.f, 0.f, 0.f);
    }
#pragma unroll
    for (int j = 0; j < kBatch; ++j) {
      const int s = s0 + j;
      if (s >= splits || s_lse[s] == -INFINITY) continue;  // an empty split adds nothing
      const float w = __expf(s_lse[s] - lse);
      o.x += w * v[j].x;
      o.y += w * v[j].y;
      o.z += w * v[j].z;
      o.w += w * v[j].w;
    }
  }
  __nv_bfloat162* dst = reinterpret_cast<__nv_bfloat162*>(out + th * kLat + c);
  dst[0] = __floats2bfloat162_rn(o.x, o.y);
  dst[1] = __floats2bfloat162_rn(o.z, o.w);
  if (lse_out != nullptr && threadIdx.x == 0) lse_out[th] = lse;
}

template <int MB>
void launch_fwd(const KernelArgs& a, dim3 grid, cudaStream_t s) {
  const int bytes = static_cast<int>(sizeof(Smem<MB>));
  static SmemOptIn smem_opt_in;
  smem_opt_in.raise({reinterpret_cast<const void*>(mla_fwd_kernel<MB>)}, bytes);
  mla_fwd_kernel<MB><<<grid, kThreads, bytes, s>>>(a);
  WS_CUDA_CHECK_LAUNCH();
}

void validate(const MlaAttentionParams& p) {
  WS_CUDA_REQUIRE(
      p.num_tokens >= 0 && p.num_seqs > 0 && p.num_heads > 0,
      "mla: need num_seqs > 0, num_heads > 0 (num_tokens " + std::to_string(p.num_tokens) + ")");
  WS_CUDA_REQUIRE(p.page_size > 0 && p.max_pages_per_seq > 0,
                  "mla: page_size and max_pages_per_seq must be positive");
  WS_CUDA_REQUIRE(
      p.q && p.kv_cache && p.page_table && p.seq_lens && p.token_seq && p.token_pos && p.out,
      "mla: null input/output pointer");
  WS_CUDA_REQUIRE(p.num_tokens < (int64_t{1} << 31) / 2 && p.num_heads <= 4096,
                  "mla: num_tokens/num_heads too large");
  WS_CUDA_REQUIRE(p.max_pages_per_seq * p.page_size < (int64_t{1} << 31),
                  "mla: sequence capacity exceeds int32 positions");
}

void run(const MlaAttentionParams& p, bool prefill, cudaStream_t s) {
  validate(p);
  if (p.num_tokens == 0) return;
  const MlaPlan plan = mla_plan(p.num_tokens, p.num_heads, p.max_seq_len, prefill, sm_count());
  int shift = -1;
  if ((p.page_size & (p.page_size - 1)) == 0)
    for (shift = 0; (int64_t{1} << shift) < p.page_size;) ++shift;
  KernelArgs a{p,    plan.hpb, plan.tpc, static_cast<int>(plan.splits), p.softmax_scale * kLog2e,
               shift};
  if (plan.splits > 1) {
    const size_t need = mla_workspace_bytes(p.num_tokens, p.num_heads, p.max_seq_len);
    WS_CUDA_REQUIRE(p.workspace != nullptr && p.workspace_bytes >= need,
                    "mla: workspace of " + std::to_string(p.workspace_bytes) + " bytes, need " +
                        std::to_string(need));
  }
  dim3 grid(static_cast<unsigned>(plan.head_blocks), static_cast<unsigned>(plan.groups),
            static_cast<unsigned>(plan.splits));
  WS_CUDA_REQUIRE(plan.groups < 65536, "mla: too many query groups for one launch (" +
                                           std::to_string(plan.groups) + ")");
  if (plan.mb == 1)
    launch_fwd<1>(a, grid, s);
  else
    launch_fwd<2>(a, grid, s);
  if (plan.splits > 1) {
    const float* o_part = static_cast<const float*>(p.workspace);
    const int64_t rows = p.num_tokens * p.num_heads;
    launch_mla_combine(o_part, rows, static_cast<int>(plan.splits), p.out, p.lse, s);
  }
}

}  // namespace

void launch_mla_combine(const float* o_part, int64_t rows, int splits, __nv_bfloat16* out,
                        float* lse, cudaStream_t s) {
  WS_CUDA_REQUIRE(splits >= 1 && splits <= 8192, "mla combine: splits " + std::to_string(splits));
  launch_pdl(mla_combine_kernel, dim3(static_cast<unsigned>(rows)), dim3(kLat / 4),
             static_cast<size_t>(splits) * sizeof(float), s, o_part, o_part + splits * rows * kLat,
             out, lse, rows, splits);
}

int sm_count() {
  static int count[64] = {};
  int dev = 0;
  WS_CUDA_CHECK(cudaGetDevice(&dev));
  if (dev < 64 && count[dev] > 0) return count[dev];
  int n = 0;
  WS_CUDA_CHECK(cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, dev));
  if (dev < 64) count[dev] = n;
  return n;
}

size_t mla_workspace_bytes(int64_t num_tokens, int64_t num_heads, int64_t max_seq_len) {
  if (num_tokens <= 0 || num_heads <= 0) return 0;
  const int sms = sm_count();
  int64_t splits = std::max(mla_plan(num_tokens, num_heads, max_seq_len, false, sms).splits,
                            mla_plan(num_tokens, num_heads, max_seq_len, true, sms).splits);
  if (num_heads >= 64 && num_heads % 64 == 0)  // the wgmma decode kernel's plan (v5)
    splits = std::max(splits, mla_wgmma_splits(num_tokens, num_heads, max_seq_len, sms));
  if (splits <= 1) return 0;
  return static_cast<size_t>(splits * num_tokens * num_heads * (kLat + 1)) * sizeof(float);
}

void launch_mla_decode(const MlaAttentionParams& p, cudaStream_t s) {
  run(p, false, s);
}
void launch_mla_prefill(const MlaAttentionParams& p, cudaStream_t s) {
  run(p, true, s);
}

}  // namespace wideserve::cuda
