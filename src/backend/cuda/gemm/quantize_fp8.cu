// launch_quantize_fp8: bf16 -> e4m3 with one fp32 scale per token and 128 columns. Sixteen lanes
// own one 128-column group (8 elements each, one 16-byte load), reduce amax with shuffles, and
// write q = x / scale with saturation; the group's lane 0 writes the scale.
#include <cuda_bf16.h>
#include <cuda_fp8.h>

#include <string>

#include "backend/cuda/common/cuda_check.h"
#include "backend/cuda/common/pdl.cuh"
#include "backend/cuda/gemm/fp8_quant.cuh"
#include "backend/cuda/gemm/gemm.h"

namespace wideserve::cuda {
namespace {

constexpr int kLanesPerGroup = 16;
constexpr int kThreads = 256;

template <bool kVec>
__global__ void quantize_fp8_kernel(QuantizeFp8Params p, int64_t ldx, int64_t nkb) {
  pdl_wait();
  pdl_launch_dependents();
  const int64_t groups = p.m * nkb;
  const int64_t g = (blockIdx.x * int64_t{kThreads} + threadIdx.x) / kLanesPerGroup;
  const int lane = threadIdx.x % kLanesPerGroup;
  const bool active = g < groups;  // inactive lanes still join the shuffles
  const int64_t row = active ? g / nkb : 0, kb = active ? g % nkb : 0;
  const int64_t c0 = kb * 128;
  float v[8];
  if constexpr (kVec) {
    const int64_t c = c0 + lane * 8;
    if (active && c < p.k) {
      const uint4 raw = *reinterpret_cast<const uint4*>(p.x + row * ldx + c);
      const auto* b = reinterpret_cast<const __nv_bfloat16*>(&raw);
#pragma unroll
      for (int i = 0; i < 8; ++i) v[i] = __bfloat162float(b[i]);
    } else {
#pragma unroll
      for (int i = 0; i < 8; ++i) v[i] = 0.f;
    }
  } else {
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      const int64_t c = c0 + lane + kLanesPerGroup * i;
      v[i] = (active && c < p.k) ? __bfloat162float(p.x[row * ldx + c]) : 0.f;
    }
  }
  float amax = 0.f;
#pragma unroll
  for (int i = 0; i < 8; ++i) amax = fmaxf(amax, fabsf(v[i]));
#pragma unroll
  for (int off = kLanesPerGroup / 2; off > 0; off /= 2)
    amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, off));
  if (!active) return;
  const float scale = fp8_group_scale(amax);
  uint8_t q[8];
#pragma unroll
  for (int i = 0; i < 8; ++i) q[i] = fp8_e4m3_of(v[i], scale);
  if constexpr (kVec) {
    const int64_t c = c0 + lane * 8;
    if (c < p.k) {
      *reinterpret_cast<uint2*>(p.q + row * p.k + c) = fp8_pack8(q);
    }
  } else {
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      const int64_t c = c0 + lane + kLanesPerGroup * i;
      if (c < p.k) reinterpret_cast<uint8_t*>(p.q)[row * p.k + c] = q[i];
    }
  }
  if (lane == 0) {
    if (p.scale_row_major)
      p.scale[row * nkb + kb] = scale;
    else
      p.scale[kb * p.m + row] = scale;
  }
}

}  // namespace

void launch_quantize_fp8(const QuantizeFp8Params& p, cudaStream_t stream) {
  WS_CUDA_REQUIRE(p.m >= 0 && p.k > 0,
                  "quantize_fp8: bad shape m=" + std::to_string(p.m) + " k=" + std::to_string(p.k));
  const int64_t ldx = p.ldx == 0 ? p.k : p.ldx;
  WS_CUDA_REQUIRE(ldx >= p.k,
                  "quantize_fp8: ldx " + std::to_string(ldx) + " < k " + std::to_string(p.k));
  if (p.m == 0) return;
  WS_CUDA_REQUIRE(p.x != nullptr && p.q != nullptr && p.scale != nullptr,
                  "quantize_fp8: null pointer");
  const int64_t nkb = (p.k + 127) / 128;
  const bool vec = p.k % 8 == 0 && ldx % 8 == 0 && reinterpret_cast<uintptr_t>(p.x) % 16 == 0 &&
                   reinterpret_cast<uintptr_t>(p.q) % 8 == 0;
  const int64_t threads_total = p.m * nkb * kLanesPerGroup;
  const int64_t blocks = (threads_total + kThreads - 1) / kThreads;
  WS_CUDA_REQUIRE(blocks < (int64_t{1} << 31), "quantize_fp8: too many rows");
  launch_pdl(vec ? quantize_fp8_kernel<true> : quantize_fp8_kernel<false>,
             dim3(static_cast<unsigned>(blocks)), dim3(kThreads), 0, stream, p, ldx, nkb);
}

}  // namespace wideserve::cuda
