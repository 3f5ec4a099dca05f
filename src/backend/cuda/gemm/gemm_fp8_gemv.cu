// FP8 block-scaled GEMV (gemm_fp8_gemv.h).
// - Warp = 8 weight rows x one k slice. Lane (g, t) = (lane / 4, lane % 4) loads 16 bytes of row
//   g at byte c*64 + t*16 of every 64-byte k chunk c and the same 16 bytes of x row g (token g)
//   from shared memory; mma_e4m3_chunk64 (mma_ptx.cuh) turns them into the exact 64-byte dot
//   products with k permuted alike in A and B. Rows g + 8 of A are zero.
// - Two chunks make one 128-wide k block: its fp32 partial takes x_scale * w_scale (DeepSeek's
//   per-block promotion). kBatch blocks (2 * kBatch loads per lane) are issued before any MMA.
// - k slices of a CTA's warps are summed through shared memory in a fixed order (deterministic).
#include "backend/cuda/gemm/gemm_fp8_gemv.h"

#include <cuda_bf16.h>
#include <cuda_fp8.h>

#include <atomic>
#include <string>

#include "backend/cuda/common/cuda_check.h"
#include "backend/cuda/common/mma_ptx.cuh"

namespace wideserve::cuda {
namespace {

constexpr int kWarps = 8;
constexpr int kThreads = kWarps * 32;
constexpr int kBatch = 8;  // k blocks in flight per warp
constexpr int kXPad = 64;  // x row stride k + 64 bytes: the 8 token rows hit distinct banks
constexpr size_t kMaxSmem = 200 * 1024;

struct GemvArgs {
  const uint8_t* x;
  const float* x_scale;
  const uint8_t* w;
  const float* w_scale;
  __nv_bfloat16* y;
  int m, n, k, kb, w_ld, warps_k;
  float beta;
};

__global__ void __launch_bounds__(kThreads, 2) fp8_gemv_kernel(const GemvArgs a) {
  extern __shared__ __align__(16) uint8_t smem[];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2, t = lane & 3;
  const int m = a.m, k = a.k, xstride = k + kXPad;
  // Stage x [m][k] (16-byte copies); the partials reuse nothing of it.
  for (int i = threadIdx.x; i < m * (k / 16); i += kThreads) {
    const int r = i / (k / 16), c = i % (k / 16);
    *reinterpret_cast<uint4*>(smem + r * xstride + c * 16) =
        __ldg(reinterpret_cast<const uint4*>(a.x + static_cast<int64_t>(r) * k) + c);
  }
  float* part = reinterpret_cast<float*>(smem + m * xstride);  // [warps][8 tokens][8 rows]
  __syncthreads();

  const int wk = a.warps_k, rg_per_cta = kWarps / wk;
  const int rg = blockIdx.x * rg_per_cta + warp / wk, ks = warp % wk;
  const int row0 = rg * 8;
  float acc[2] = {0.f, 0.f};
  if (row0 < a.n) {  // warp-uniform
    const int row = min(row0 + g, a.n - 1);
    const uint8_t* wrow = a.w + static_cast<int64_t>(row) * k + t * 16;
    const uint8_t* xrow = smem + g * xstride + t * 16;
    const float* wsc = a.w_scale + static_cast<int64_t>(row0 / 128) * a.w_ld;
    const int kb0 = a.kb * ks / wk, kb1 = a.kb * (ks + 1) / wk;
    for (int b0 = kb0; b0 < kb1; b0 += kBatch) {
      uint4 wv[kBatch][2];
#pragma unroll
      for (int u = 0; u < kBatch; ++u)
#pragma unroll
        for (int h = 0; h < 2; ++h)
          wv[u][h] = b0 + u < kb1 ? __ldg(reinterpret_cast<const uint4*>(
                                        wrow + static_cast<int64_t>((b0 + u) * 2 + h) * 64))
                                  : make_uint4(0, 0, 0, 0);
#pragma unroll
      for (int u = 0; u < kBatch; ++u) {
        const int blk = b0 + u;
        if (blk >= kb1) break;
        float cb[4] = {0.f, 0.f, 0.f, 0.f};
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          const uint4 xv = g < m ? *reinterpret_cast<const uint4*>(xrow + (blk * 2 + h) * 64)
                                 : make_uint4(0, 0, 0, 0);
          mma_e4m3_chunk64(cb, xv, wv[u][h]);
        }
        const float s = g < m ? __ldg(wsc + blk) * __ldg(a.x_scale + blk * m + g) : 0.f;
        acc[0] = fmaf(cb[0], s, acc[0]);
        acc[1] = fmaf(cb[1], s, acc[1]);
      }
    }
  }
  // C fragment: acc[e] is token g, weight row row0 + 2t + e.
  if (g < m) {
    part[(warp * 8 + g) * 8 + 2 * t] = acc[0];
    part[(warp * 8 + g) * 8 + 2 * t + 1] = acc[1];
  }
  __syncthreads();
  // Finish: one thread per (row group of the CTA, token, row), k slices summed in order.
  for (int i = threadIdx.x; i < rg_per_cta * m * 8; i += kThreads) {
    const int lrg = i / (m * 8), token = (i / 8) % m, r = i % 8;
    const int grow = (blockIdx.x * rg_per_cta + lrg) * 8 + r;
    if (grow >= a.n) continue;
    float sum = 0.f;
    for (int s = 0; s < wk; ++s) sum += part[((lrg * wk + s) * 8 + token) * 8 + r];
    __nv_bfloat16* out = a.y + static_cast<int64_t>(token) * a.n + grow;
    if (a.beta != 0.f) sum += a.beta * __bfloat162float(*out);
    *out = __float2bfloat16(sum);
  }
}

int64_t ceil_div(int64_t a, int64_t b) {
  return (a + b - 1) / b;
}

size_t smem_bytes(int64_t m, int64_t k) {
  return static_cast<size_t>(m * (k + kXPad)) + kWarps * 64 * sizeof(float);
}

void allow_smem(int device) {
  static std::atomic<uint64_t> done{0};
  const uint64_t bit = uint64_t{1} << (device & 63);
  if ((done.load(std::memory_order_acquire) & bit) != 0) return;
  WS_CUDA_CHECK(cudaFuncSetAttribute(fp8_gemv_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                     static_cast<int>(kMaxSmem)));
  done.fetch_or(bit, std::memory_order_acq_rel);
}

}  // namespace

int plan_fp8_gemv_warps_k(int64_t n, int64_t k, int sm_count) {
  const int64_t groups = ceil_div(n, 8), kb = k / 128, want = int64_t{12} * sm_count;
  int wk = 1;
  while (wk < kWarps && groups * wk < want && kb / (2 * wk) >= 4) wk *= 2;
  return wk;
}

std::string fp8_gemv_unsupported(const GemmFp8BlockParams& p) {
  if (p.m < 1 || p.m > kFp8GemvMaxM)
    return "m=" + std::to_string(p.m) + " outside 1.." + std::to_string(kFp8GemvMaxM);
  if (p.n < 1 || p.k < 128 || p.k % 128 != 0 || p.n > (int64_t{1} << 30) ||
      p.k > (int64_t{1} << 24))
    return "shape n=" + std::to_string(p.n) + " k=" + std::to_string(p.k) +
           " (want k a positive multiple of 128)";
  if (p.x == nullptr || p.x_scale == nullptr || p.w == nullptr || p.w_scale == nullptr ||
      p.y == nullptr)
    return "null pointer";
  if (reinterpret_cast<uintptr_t>(p.x) % 16 != 0 || reinterpret_cast<uintptr_t>(p.w) % 16 != 0)
    return "x and w must be 16-byte aligned";
  if (p.w_scale_ld != 0 && p.w_scale_ld < p.k / 128)
    return "w_scale_ld " + std::to_string(p.w_scale_ld) + " < k/128";
  if (smem_bytes(p.m, p.k) > kMaxSmem)
    return "x rows of " + std::to_string(p.m) + " x " + std::to_string(p.k) +
           " bytes exceed shared memory";
  return {};
}

void launch_fp8_gemv(const GemmFp8BlockParams& p, const Fp8GemvConfig& cfg, cudaStream_t stream) {
  const std::string why = fp8_gemv_unsupported(p);
  WS_CUDA_REQUIRE(why.empty(), "gemm_fp8_block GEMV path: " + why);
  WS_CUDA_REQUIRE(cfg.warps_k == 0 || cfg.warps_k == 1 || cfg.warps_k == 2 || cfg.warps_k == 4 ||
                      cfg.warps_k == 8,
                  "gemm_fp8_block GEMV path: warps_k=" + std::to_string(cfg.warps_k) +
                      " (want 0, 1, 2, 4 or 8)");
  int device = 0, sms = 0;
  WS_CUDA_CHECK(cudaGetDevice(&device));
  WS_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  GemvArgs a{};
  a.x = reinterpret_cast<const uint8_t*>(p.x);
  a.x_scale = p.x_scale;
  a.w = reinterpret_cast<const uint8_t*>(p.w);
  a.w_scale = p.w_scale;
  a.y = p.y;
  a.m = static_cast<int>(p.m);
  a.n = static_cast<int>(p.n);
  a.k = static_cast<int>(p.k);
  a.kb = static_cast<int>(p.k / 128);
  a.w_ld = static_cast<int>(p.w_scale_ld != 0 ? p.w_scale_ld : p.k / 128);
  a.beta = p.beta;
  a.warps_k = cfg.warps_k != 0 ? cfg.warps_k : plan_fp8_gemv_warps_k(p.n, p.k, sms);
  const int64_t rows_per_cta = int64_t{8} * (kWarps / a.warps_k);
  const int64_t grid = ceil_div(p.n, rows_per_cta);
  allow_smem(device);
  fp8_gemv_kernel<<<static_cast<unsigned>(grid), kThreads, smem_bytes(p.m, p.k), stream>>>(a);
  WS_CUDA_CHECK_LAUNCH();
}

}  // namespace wideserve::cuda
