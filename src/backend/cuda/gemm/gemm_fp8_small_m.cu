// Small-M FP8 block-scaled GEMM (gemm_fp8_small_m.h). At m <= 16 the product is bound by the
// weight read, so the kernel is a streaming copy of w into shared memory with a few tensor-core
// instructions per 16-byte chunk:
// - Each lane of a warp owns 16 bytes of one weight row per 64-byte k chunk and reads them back
//   itself, so the MMA B fragment needs no shuffles: the sum over k is order-free, and A (x) uses
//   the same k permutation (lane t's 16 bytes at t*16 feed logical k t*4.. and 16+t*4.. of the
//   first m16n8k32 step with its words 0/1 and of the second step with its words 2/3).
// - x rows of the step's k blocks are staged per CTA (swizzled by row parity: conflict-free).
// - Partial k blocks (k % 128 != 0, k % 16 == 0) and rows past n are zero-filled by cp.async
//   (src-size 0); both operands must be zero there, garbage e4m3 could be NaN.
#include <cooperative_groups.h>
#include <cuda_bf16.h>
#include <cuda_fp8.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <string>

#include "backend/cuda/common/cuda_check.h"
#include "backend/cuda/common/mma_ptx.cuh"
#include "backend/cuda/common/smem_opt_in.h"
#include "backend/cuda/gemm/gemm_fp8_small_m.h"

namespace wideserve::cuda {
namespace {

namespace cg = cooperative_groups;

constexpr int kWarps = 8;
constexpr int kThreads = kWarps * 32;
constexpr int kRowsPerWarp = 16;  // two n8 MMA tiles
constexpr int kBlockK = 128;      // DeepSeek's scale block along k
constexpr int kStages = 4;
constexpr int kMaxClusterK =
    8;  // portable cluster size        // ring depth: 3 stages (48 KiB of w per CTA) in flight
constexpr int kWStageBytes = kWarps * kRowsPerWarp * kBlockK;         // 16 KiB
constexpr int kMaxStageBytes = kWStageBytes + kWarps * 16 * kBlockK;  // + x: 16 KiB
constexpr int kMaxSmemBytes = kStages * kMaxStageBytes;               // 128 KiB
static_assert(kWarps * 16 * kRowsPerWarp * 4 <= kStages * kWStageBytes, "partials fit the ring");

struct SmallMArgs {
  const uint8_t* x;
  const float* x_scale;
  const uint8_t* w;
  const float* w_scale;
  __nv_bfloat16* y;
  int m, n, k, kb, w_ld;
  float beta;
  int warps_n, warps_k, cluster_k;
};

__device__ __forceinline__ void cp_async_commit() {
  asm volatile("cp.async.commit_group;\n" ::: "memory");
}
__device__ __forceinline__ void cp_async_wait_ring() {  // the oldest pending stage has landed
  asm volatile("cp.async.wait_group %0;\n" ::"n"(kStages - 2) : "memory");
}
__device__ __forceinline__ void cp_async_wait_all() {
  asm volatile("cp.async.wait_group 0;\n" ::: "memory");
}

// c += a (16x32 e4m3, row) * b (32x8 e4m3, col), fp32 accumulators.
__device__ __forceinline__ void mma_e4m3(float (&c)[4], uint32_t a0, uint32_t a1, uint32_t a2,
                                         uint32_t a3, uint32_t b0, uint32_t b1) {
  asm("mma.sync.aligned.m16n8k32.row.col.f32.e4m3.e4m3.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
      "{%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

// Byte offset of 16-byte chunk q (0..7) of staged x row r: the chunk index is XORed with
// (r & 1) * 4 so the 8 lanes of one shared-memory phase (rows g, g+1; t = 0..3) hit 8 distinct
// bank quads.
__device__ __forceinline__ int x_chunk_offset(int r, int q) {
  return r * kBlockK + ((q ^ ((r & 1) << 2)) << 4);
}

// Grid (ceil(n / (16 warps_n)), cluster_k); cluster (1, cluster_k, 1) when cluster_k > 1.
// Shared memory: kStages x [w: warp][tile][chunk][lane] 16 B | x: [warps_k][m][128 B]], reused for
// the fp32 partials [warps_k][16][16 warps_n] after the main loop.
__global__ void __launch_bounds__(kThreads) fp8_small_m_kernel(const SmallMArgs a) {
  extern __shared__ __align__(128) uint8_t smem[];
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int g = lane >> 2, t = lane & 3;
  const int wk = a.warps_k, wkid = warp % wk, wn_i = warp / wk;
  const int rows_cta = kRowsPerWarp * a.warps_n;
  const int cta_row0 = blockIdx.x * rows_cta;
  const int warp_row0 = cta_row0 + wn_i * kRowsPerWarp;
  const int ck = a.cluster_k;
  const int rank = ck > 1 ? static_cast<int>(cg::this_cluster().block_rank()) : 0;
  const int blk_begin = static_cast<int>(static_cast<int64_t>(a.kb) * rank / ck);
  const int blk_end = static_cast<int>(static_cast<int64_t>(a.kb) * (rank + 1) / ck);
  const int nsteps = (blk_end - blk_begin + wk - 1) / wk;
  const int m = a.m, n = a.n, k = a.k;
  const int stage_bytes = kWStageBytes + wk * m * kBlockK;
  const uint32_t smem_base = smem_addr(smem);

  // Step s: warp (wn_i, wkid) multiplies k block blk_begin + s * wk + wkid.
  auto load_stage = [&](int step, int slot) {
    const uint32_t base = smem_base + slot * stage_bytes;
    const int blk = blk_begin + step * wk + wkid;
    if (blk < blk_end) {
#pragma unroll
      for (int j = 0; j < 2; ++j) {
        const int row = warp_row0 + j * 8 + g;
#pragma unroll
        for (int c = 0; c < 2; ++c) {
          const int kofs = blk * kBlockK + c * 64 + t * 16;
          const bool ok = row < n && kofs < k;
          const uint8_t* src = ok ? a.w + static_cast<int64_t>(row) * k + kofs : a.w;
          cp_async_16(base + (((warp * 2 + j) * 2 + c) * 32 + lane) * 16, src, ok ? 16 : 0);
        }
      }
    }
    const uint32_t xbase = base + kWStageBytes;
    const int xchunks = wk * m * 8;
    for (int i = tid; i < xchunks; i += kThreads) {
      const int kk = i / (m * 8), r = (i >> 3) % m, q = i & 7;
      const int xblk = blk_begin + step * wk + kk;
      if (xblk >= blk_end) continue;
      const int kofs = xblk * kBlockK + q * 16;
      const bool ok = kofs < k;
      const uint8_t* src = ok ? a.x + static_cast<int64_t>(r) * k + kofs : a.x;
      cp_async_16(xbase + kk * m * kBlockK + x_chunk_offset(r, q), src, ok ? 16 : 0);
    }
  };

  float acc[2][4] = {};
#pragma unroll
  for (int s = 0; s < kStages - 1; ++s) {
    if (s < nsteps) load_stage(s, s);
    cp_async_commit();
  }
  for (int s = 0; s < nsteps; ++s) {
    cp_async_wait_ring();
    __syncthreads();  // stage s visible to all; slot (s - 1) % kStages free again
    const int next = s + kStages - 1;
    if (next < nsteps) load_stage(next, next % kStages);
    cp_async_commit();

    const int blk = blk_begin + s * wk + wkid;
    if (blk >= blk_end || warp_row0 >= n) continue;  // warp-uniform
    const uint8_t* base = smem + (s % kStages) * stage_bytes;
    const uint8_t* xs = base + kWStageBytes + wkid * m * kBlockK;
    uint4 xlo[2], xhi[2];  // x rows g and g + 8 (zero past m), chunks 0/1
#pragma unroll
    for (int c = 0; c < 2; ++c) {
      const uint4 zero = make_uint4(0, 0, 0, 0);
      xlo[c] = g < m ? *reinterpret_cast<const uint4*>(xs + x_chunk_offset(g, c * 4 + t)) : zero;
      xhi[c] =
          g + 8 < m ? *reinterpret_cast<const uint4*>(xs + x_chunk_offset(g + 8, c * 4 + t)) : zero;
    }
    const float sw = __ldg(a.w_scale + static_cast<int64_t>(warp_row0 / kBlockK) * a.w_ld + blk);
    const float* xsc = a.x_scale + static_cast<int64_t>(blk) * m;
    const float s_lo = g < m ? __ldg(xsc + g) * sw : 0.f;
    const float s_hi = g + 8 < m ? __ldg(xsc + g + 8) * sw : 0.f;
#pragma unroll
    for (int j = 0; j < 2; ++j) {
      float cb[4] = {0.f, 0.f, 0.f, 0.f};  // this k block only (DeepSeek: promote per block)
#pragma unroll
      for (int c = 0; c < 2; ++c) {
        const uint4 b =
            *reinterpret_cast<const uint4*>(base + (((warp * 2 + j) * 2 + c) * 32 + lane) * 16);
        mma_e4m3(cb, xlo[c].x, xhi[c].x, xlo[c].y, xhi[c].y, b.x, b.y);
        mma_e4m3(cb, xlo[c].z, xhi[c].z, xlo[c].w, xhi[c].w, b.z, b.w);
      }
      acc[j][0] += cb[0] * s_lo;
      acc[j][1] += cb[1] * s_lo;
      acc[j][2] += cb[2] * s_hi;
      acc[j][3] += cb[3] * s_hi;
    }
  }
  cp_async_wait_all();
  __syncthreads();  // the ring is free: reuse it for the partials

  // C fragment: acc[j][e] is token g (e < 2) or g + 8, weight row j*8 + t*2 + (e & 1) of the warp.
  float* part = reinterpret_cast<float*>(smem);  // [wk][16 tokens][rows_cta]
#pragma unroll
  for (int j = 0; j < 2; ++j)
#pragma unroll
    for (int e = 0; e < 2; ++e) {
      const int col = wn_i * kRowsPerWarp + j * 8 + t * 2 + e;
      part[(wkid * 16 + g) * rows_cta + col] = acc[j][e];
      part[(wkid * 16 + g + 8) * rows_cta + col] = acc[j][2 + e];
    }
  if (ck > 1)
    cg::this_cluster().sync();
  else
    __syncthreads();

  // Rank r of the cluster finishes rows [r, r + 1) * rows_cta / ck of the CTA's slab (any ck),
  // summing the partials in a fixed (rank, warp_k) order.
  const int lr0 = rank * rows_cta / ck, slice = (rank + 1) * rows_cta / ck - lr0;
  for (int i = tid; i < m * slice; i += kThreads) {
    const int token = i / slice, lr = lr0 + i % slice, grow = cta_row0 + lr;
    if (grow >= n) continue;
    float sum = 0.f;
    for (int q = 0; q < ck; ++q) {
      const float* p = ck > 1 ? cg::this_cluster().map_shared_rank(part, q) : part;
      for (int kk = 0; kk < wk; ++kk) sum += p[(kk * 16 + token) * rows_cta + lr];
    }
    __nv_bfloat16* out = a.y + static_cast<int64_t>(token) * n + grow;
    if (a.beta != 0.f) sum += a.beta * __bfloat162float(*out);
    *out = __float2bfloat16(sum);
  }
  if (ck > 1) cg::this_cluster().sync();  // peers may still read this CTA's partials
}

bool valid_warps_n(int v) {
  return v == 1 || v == 2 || v == 4 || v == 8;
}

int64_t ceil_div(int64_t a, int64_t b) {
  return (a + b - 1) / b;
}

// Raises the kernel's dynamic shared-memory limit once per device.
void allow_smem() {
  static SmemOptIn smem_opt_in;
  smem_opt_in.raise({reinterpret_cast<const void*>(fp8_small_m_kernel)}, kMaxSmemBytes);
}

}  // namespace

Fp8SmallMConfig plan_fp8_small_m(int64_t m, int64_t n, int64_t k, int sm_count) {
  (void)m;
  const int64_t kb = ceil_div(k, kBlockK);
  Fp8SmallMConfig c{8, 1};
  auto ctas = [&] { return ceil_div(n, int64_t{kRowsPerWarp} * c.warps_n) * c.cluster_k; };
  // Cluster split-K keeps wide CTAs (x staged once for 128 rows) while each CTA keeps >= 4 blocks.
  // (A split chosen for the most even CTAs per SM, with clusters of 3-7, measured slower on the
  // H200: docs/cuda_gemm.md, 2026-11-28 sweep.)
  while (ctas() < sm_count && c.cluster_k < 8 && kb >= int64_t{8} * c.cluster_k) c.cluster_k *= 2;
  // Then narrower CTAs (more warps along k) while every warp still gets a k block.
  while (ctas() < sm_count && c.warps_n > 1 && kb / c.cluster_k >= 2 * (kWarps / c.warps_n))
    c.warps_n /= 2;
  return c;
}

std::string fp8_small_m_unsupported(const GemmFp8BlockParams& p) {
  if (p.m < 1 || p.m > kFp8SmallMMaxM)
    return "m=" + std::to_string(p.m) + " outside 1.." + std::to_string(kFp8SmallMMaxM);
  if (p.n < 1 || p.k < 1 || p.n > (int64_t{1} << 30) || p.k > (int64_t{1} << 24))
    return "bad shape n=" + std::to_string(p.n) + " k=" + std::to_string(p.k);
  if (p.k % 16 != 0)
    return "k=" + std::to_string(p.k) + " is not a multiple of 16 (16-byte rows needed)";
  if (p.x == nullptr || p.x_scale == nullptr || p.w == nullptr || p.w_scale == nullptr ||
      p.y == nullptr)
    return "null pointer";
  if (reinterpret_cast<uintptr_t>(p.x) % 16 != 0 || reinterpret_cast<uintptr_t>(p.w) % 16 != 0)
    return "x and w must be 16-byte aligned";
  const int64_t kb = ceil_div(p.k, kBlockK);
  if (p.w_scale_ld != 0 && p.w_scale_ld < kb)
    return "w_scale_ld " + std::to_string(p.w_scale_ld) + " < ceil(k/128)";
  return {};
}

void launch_fp8_small_m(const GemmFp8BlockParams& p, const Fp8SmallMConfig& cfg,
                        cudaStream_t stream) {
  const std::string why = fp8_small_m_unsupported(p);
  WS_CUDA_REQUIRE(why.empty(), "gemm_fp8_block small-M path: " + why);
  WS_CUDA_REQUIRE((cfg.warps_n == 0 || valid_warps_n(cfg.warps_n)) && cfg.cluster_k >= 0 &&
                      cfg.cluster_k <= kMaxClusterK,
                  "gemm_fp8_block small-M path: warps_n=" + std::to_string(cfg.warps_n) +
                      " (want 0, 1, 2, 4 or 8) cluster_k=" + std::to_string(cfg.cluster_k) +
                      " (want 0..8)");
  int device = 0, sms = 0;
  WS_CUDA_CHECK(cudaGetDevice(&device));
  WS_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  const Fp8SmallMConfig plan = plan_fp8_small_m(p.m, p.n, p.k, sms);
  SmallMArgs a{};
  a.x = reinterpret_cast<const uint8_t*>(p.x);
  a.x_scale = p.x_scale;
  a.w = reinterpret_cast<const uint8_t*>(p.w);
  a.w_scale = p.w_scale;
  a.y = p.y;
  a.m = static_cast<int>(p.m);
  a.n = static_cast<int>(p.n);
  a.k = static_cast<int>(p.k);
  a.kb = static_cast<int>(ceil_div(p.k, kBlockK));
  a.w_ld = static_cast<int>(p.w_scale_ld != 0 ? p.w_scale_ld : a.kb);
  a.beta = p.beta;
  a.warps_n = cfg.warps_n != 0 ? cfg.warps_n : plan.warps_n;
  a.warps_k = kWarps / a.warps_n;
  a.cluster_k = cfg.cluster_k != 0 ? cfg.cluster_k : plan.cluster_k;
  const int64_t grid_x = ceil_div(p.n, int64_t{kRowsPerWarp} * a.warps_n);
  WS_CUDA_REQUIRE(grid_x < (int64_t{1} << 31), "gemm_fp8_block small-M path: n too large");

  allow_smem();
  cudaLaunchConfig_t lc{};
  lc.gridDim = dim3(static_cast<unsigned>(grid_x), static_cast<unsigned>(a.cluster_k), 1);
  lc.blockDim = dim3(kThreads, 1, 1);
  lc.dynamicSmemBytes = static_cast<size_t>(kStages) * (kWStageBytes + a.warps_k * a.m * kBlockK);
  lc.stream = stream;
  cudaLaunchAttribute attr[1];
  attr[0].id = cudaLaunchAttributeClusterDimension;
  attr[0].val.clusterDim.x = 1;
  attr[0].val.clusterDim.y = static_cast<unsigned>(a.cluster_k);
  attr[0].val.clusterDim.z = 1;
  lc.attrs = attr;
  lc.numAttrs = a.cluster_k > 1 ? 1 : 0;
  WS_CUDA_CHECK(cudaLaunchKernelEx(&lc, fp8_small_m_kernel, a));
}

}  // namespace wideserve::cuda
