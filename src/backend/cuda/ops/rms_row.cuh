// One row of launch_rms_norm's vector kernel (rms_norm.cu) inside another kernel, for the
// kernels that normalise the fp32 residual rows they read instead of waiting for a norm launch.
// At dim <= 8 * blockDim.x that kernel gives thread c the 8 values of chunk c alone; these
// functions do the same, so the per-thread sums, the block sum and every rounding match it bit
// for bit.
#pragma once

#include <cuda_bf16.h>

#include <cstdint>
#include <string>

#include "backend/cuda/ops/block_sum.cuh"

namespace wideserve::cuda {

// Why a kernel of `threads` threads cannot normalise rows of `dim` fp32 values from src with w
// this way ("" = it can): null or unaligned pointers, dim not a multiple of 8, or more chunks than
// threads (each thread takes one chunk, as launch_rms_norm's vector kernel does).
inline std::string rms_row_unsupported(const float* src, const __nv_bfloat16* w, int64_t dim,
                                       int threads) {
  if (src == nullptr || w == nullptr) return "null pointer";
  if (reinterpret_cast<uintptr_t>(src) % 16 != 0 || reinterpret_cast<uintptr_t>(w) % 16 != 0)
    return "norm rows and weights must be 16-byte aligned";
  if (dim % 8 != 0 || dim / 8 > threads)
    return "width " + std::to_string(dim) + " (the norm takes <= " + std::to_string(8 * threads) +
           ", a multiple of 8)";
  return {};
}

// Thread c's chunk c of an fp32 row (zeros past nch chunks). kCg: through L2 only.
template <bool kCg = false>
__device__ __forceinline__ void rms_load_chunk(const float* row, int c, int nch, float (&v)[8]) {
  if (c < nch) {
    const float4* x4 = reinterpret_cast<const float4*>(row) + 2 * c;
    const float4 x0 = kCg ? __ldcg(x4) : x4[0], x1 = kCg ? __ldcg(x4 + 1) : x4[1];
    v[0] = x0.x, v[1] = x0.y, v[2] = x0.z, v[3] = x0.w;
    v[4] = x1.x, v[5] = x1.y, v[6] = x1.z, v[7] = x1.w;
  } else {
#pragma unroll
    for (int i = 0; i < 8; ++i) v[i] = 0.f;
  }
}

// The chunk's 8 outputs bf16(bf16(v * rsqrt(mean(row^2) + eps)) * w) as one uint4; every thread
// of the block calls it (block_sum), wv = the chunk's 8 bf16 weights.
__device__ __forceinline__ uint4 rms_norm_chunk(const float (&v)[8], const uint4& wv, int dim,
                                                float eps) {
  float ss = 0.f;
#pragma unroll
  for (int i = 0; i < 8; ++i) ss += v[i] * v[i];
  const float inv = rsqrtf(block_sum(ss) / static_cast<float>(dim) + eps);
  const auto* w = reinterpret_cast<const __nv_bfloat16*>(&wv);
  __align__(16) __nv_bfloat16 o[8];
#pragma unroll
  for (int i = 0; i < 8; ++i) {
    // HF: weight * (x * inv).to(bf16): round the normalised value first.
    const float n = __bfloat162float(__float2bfloat16(v[i] * inv));
    o[i] = __float2bfloat16(n * __bfloat162float(w[i]));
  }
  return *reinterpret_cast<uint4*>(o);
}

// Thread c's 8 norm weights (zeros past nch chunks); constant, so loadable before a PDL wait.
__device__ __forceinline__ uint4 rms_weight_chunk(const __nv_bfloat16* w, int c, int nch) {
  return c < nch ? __ldg(reinterpret_cast<const uint4*>(w) + c) : make_uint4(0, 0, 0, 0);
}

}  // namespace wideserve::cuda
