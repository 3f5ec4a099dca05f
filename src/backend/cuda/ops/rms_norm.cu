// launch_rms_norm: one CTA per row. The vector kernel (dims a multiple of 8, aligned rows) gives
// each thread whole 8-element chunks: one 16- or 32-byte load of x and of the weight (issued
// before pdl_wait: weights are constant), one block reduction, one 16-byte store, and, when asked,
// the FP8 quantization of the output row in the same pass (16 lanes own a 128-column group, as in
// launch_quantize_fp8, with the same arithmetic). Other shapes take the scalar kernel.
#include <cuda_bf16.h>
#include <cuda_fp8.h>

#include <algorithm>
#include <string>

#include "backend/cuda/common/cuda_check.h"
#include "backend/cuda/common/kernel_trace.cuh"
#include "backend/cuda/common/pdl.cuh"
#include "backend/cuda/gemm/fp8_quant.cuh"
#include "backend/cuda/gemm/gemm.h"
#include "backend/cuda/ops/bf16_vec.cuh"
#include "backend/cuda/ops/block_sum.cuh"
#include "backend/cuda/ops/ops.h"

namespace wideserve::cuda {
namespace {

constexpr int kMaxChunks = 4;  // 8-element chunks per thread: dims up to 1024 * 8 * 4

__global__ void rms_norm_kernel(RmsNormParams p) {
  KernelTrace kt_(TraceKernel::kRmsNorm);
  kt_.wait();
  pdl_launch_dependents();
  const int64_t r = blockIdx.x;
  const int64_t src = p.row_index ? p.row_index[r] : r;
  const float* xf = p.x ? p.x + src * p.x_stride : nullptr;
  const __nv_bfloat16* xb = p.x_bf16 ? p.x_bf16 + src * p.x_stride : nullptr;
  const __nv_bfloat16* add = p.add ? p.add + src * p.dim : nullptr;
  float ss = 0.f;
#pragma unroll 4
  for (int64_t i = threadIdx.x; i < p.dim; i += blockDim.x) {
    float v = xf ? xf[i] : __bfloat162float(xb[i]);
    if (add != nullptr) {  // x is the writable residual stream when add is set
      v += __bfloat162float(add[i]);
      const_cast<float*>(xf)[i] = v;
    }
    ss += v * v;
  }
  const float inv = rsqrtf(block_sum(ss) / static_cast<float>(p.dim) + p.eps);
  __nv_bfloat16* out = p.out + r * p.out_stride;
#pragma unroll 4
  for (int64_t i = threadIdx.x; i < p.dim; i += blockDim.x) {
    float v = xf ? xf[i] : __bfloat162float(xb[i]);
    // HF: weight * (x * inv).to(bf16): round the normalised value first.
    float n = __bfloat162float(__float2bfloat16(v * inv));
    out[i] = __float2bfloat16(n * __bfloat162float(p.w[i]));
  }
}

template <bool kF32In>
__global__ void rms_norm_vec_kernel(RmsNormParams p) {
  KernelTrace kt_(TraceKernel::kRmsNorm);
  const int64_t r = blockIdx.x;
  const int nchunks = static_cast<int>(p.dim / 8);
  uint4 wv[kMaxChunks];
#pragma unroll
  for (int j = 0; j < kMaxChunks; ++j) {
    const int c = threadIdx.x + j * blockDim.x;
    wv[j] = c < nchunks ? __ldg(reinterpret_cast<const uint4*>(p.w) + c) : make_uint4(0, 0, 0, 0);
  }
  kt_.wait();
  pdl_launch_dependents();
  const int64_t src = p.row_index ? p.row_index[r] : r;
  float v[kMaxChunks][8];
  float ss = 0.f;
#pragma unroll
  for (int j = 0; j < kMaxChunks; ++j) {
    const int c = threadIdx.x + j * blockDim.x;
    if (c < nchunks) {
      if constexpr (kF32In) {
        const float4* x4 = reinterpret_cast<const float4*>(p.x + src * p.x_stride) + 2 * c;
        float4 a = x4[0], b = x4[1];
        if (p.add != nullptr) {  // residual update, written back (x is writable when add is set)
          add_bf16x8(reinterpret_cast<const uint4*>(p.add + src * p.dim)[c], a, b);
          float4* w4 = const_cast<float4*>(x4);
          w4[0] = a;
          w4[1] = b;
        }
        v[j][0] = a.x, v[j][1] = a.y, v[j][2] = a.z, v[j][3] = a.w;
        v[j][4] = b.x, v[j][5] = b.y, v[j][6] = b.z, v[j][7] = b.w;
      } else {
        const uint4 raw = reinterpret_cast<const uint4*>(p.x_bf16 + src * p.x_stride)[c];
        const auto* e = reinterpret_cast<const __nv_bfloat16*>(&raw);
#pragma unroll
        for (int i = 0; i < 8; ++i) v[j][i] = __bfloat162float(e[i]);
      }
    } else {
#pragma unroll
      for (int i = 0; i < 8; ++i) v[j][i] = 0.f;
    }
#pragma unroll
    for (int i = 0; i < 8; ++i) ss += v[j][i] * v[j][i];
  }
  const float inv = rsqrtf(block_sum(ss) / static_cast<float>(p.dim) + p.eps);
  const int64_t m = gridDim.x;
#pragma unroll
  for (int j = 0; j < kMaxChunks; ++j) {
    const int c = threadIdx.x + j * blockDim.x;
    if (j * static_cast<int>(blockDim.x) >= nchunks) break;  // uniform over the block
    const bool active = c < nchunks;
    const auto* w = reinterpret_cast<const __nv_bfloat16*>(&wv[j]);
    __align__(16) __nv_bfloat16 o[8];
    float amax = 0.f;
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      // HF: weight * (x * inv).to(bf16): round the normalised value first.
      const float n = __bfloat162float(__float2bfloat16(v[j][i] * inv));
      o[i] = __float2bfloat16(n * __bfloat162float(w[i]));
      amax = fmaxf(amax, fabsf(__bfloat162float(o[i])));
    }
    if (active)
      reinterpret_cast<uint4*>(p.out + r * p.out_stride)[c] = *reinterpret_cast<uint4*>(o);
    if (p.q == nullptr) continue;
      // dim % 128 == 0 here: a 128-column group is 16 whole lanes, all active or all not.
#pragma unroll
    for (int off = 8; off > 0; off /= 2)
      amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, off));
    if (!active) continue;
    const float scale = fp8_group_scale(amax);
    uint32_t q[8];
#pragma unroll
    for (int i = 0; i < 8; ++i) q[i] = fp8_e4m3_of(__bfloat162float(o[i]), scale);
    reinterpret_cast<uint2*>(reinterpret_cast<uint8_t*>(p.q) + r * p.dim)[c] = fp8_pack8(q);
    if ((c & 15) == 0) p.q_scale[(c / 16) * m + r] = scale;
  }
}

bool aligned16(const void* ptr) {
  return reinterpret_cast<uintptr_t>(ptr) % 16 == 0;
}

}  // namespace

void launch_rms_norm(const RmsNormParams& p, cudaStream_t stream) {
  if (p.rows == 0) return;
  WS_CUDA_REQUIRE((p.x != nullptr) != (p.x_bf16 != nullptr), "rms_norm: exactly one input");
  WS_CUDA_REQUIRE(p.w && p.out && p.dim > 0 && p.x_stride >= p.dim && p.out_stride >= p.dim,
                  "rms_norm: bad shape " + std::to_string(p.rows) + "x" + std::to_string(p.dim));
  WS_CUDA_REQUIRE((p.q == nullptr) == (p.q_scale == nullptr),
                  "rms_norm: FP8 output wants both q and q_scale");
  WS_CUDA_REQUIRE(p.add == nullptr || p.x != nullptr,
                  "rms_norm: a residual update needs the fp32 input");
  const int64_t nchunks = p.dim / 8;
  const int64_t per_thread = (nchunks + 1023) / 1024;
  const bool vec =
      p.dim % 8 == 0 && per_thread <= kMaxChunks && p.x_stride % 8 == 0 && p.out_stride % 8 == 0 &&
      aligned16(p.x ? static_cast<const void*>(p.x) : static_cast<const void*>(p.x_bf16)) &&
      aligned16(p.w) && aligned16(p.out) && (p.q == nullptr || p.dim % 128 == 0) &&
      (p.add == nullptr || aligned16(p.add));
  if (!vec) {
    // Enough threads for ~8 elements each (one row per block is latency-bound at small batch).
    const int64_t want = ((p.dim + 7) / 8 + 31) / 32 * 32;
    const unsigned threads =
        static_cast<unsigned>(std::min<int64_t>(1024, std::max<int64_t>(128, want)));
    launch_pdl(rms_norm_kernel, dim3(static_cast<unsigned>(p.rows)), dim3(threads), 0, stream, p);
    if (p.q != nullptr)
      launch_quantize_fp8(QuantizeFp8Params{p.out, p.rows, p.dim, p.out_stride, p.q, p.q_scale},
                          stream);
    return;
  }
  const int64_t threads =
      std::max<int64_t>(32, ((nchunks + per_thread - 1) / per_thread + 31) / 32 * 32);
  if (p.x != nullptr)
    launch_pdl(rms_norm_vec_kernel<true>, dim3(static_cast<unsigned>(p.rows)),
               dim3(static_cast<unsigned>(threads)), 0, stream, p);
  else
    launch_pdl(rms_norm_vec_kernel<false>, dim3(static_cast<unsigned>(p.rows)),
               dim3(static_cast<unsigned>(threads)), 0, stream, p);
}

}  // namespace wideserve::cuda
