// Internal to the ops kernels: a 16-byte chunk of eight bf16 values read as two float4 (exact),
// for the vectorized residual, embedding and RMSNorm kernels.
#pragma once

#include <cuda_bf16.h>

namespace wideserve::cuda {

// The chunk's eight values as (a, b) = elements 0-3, 4-7.
__device__ __forceinline__ void bf16x8_to_float4x2(const uint4& raw, float4& a, float4& b) {
  const auto* e = reinterpret_cast<const __nv_bfloat16*>(&raw);
  a = make_float4(__bfloat162float(e[0]), __bfloat162float(e[1]), __bfloat162float(e[2]),
                  __bfloat162float(e[3]));
  b = make_float4(__bfloat162float(e[4]), __bfloat162float(e[5]), __bfloat162float(e[6]),
                  __bfloat162float(e[7]));
}

// (a, b) += the chunk's eight values, element by element in fp32.
__device__ __forceinline__ void add_bf16x8(const uint4& raw, float4& a, float4& b) {
  float4 x, y;
  bf16x8_to_float4x2(raw, x, y);
  a.x += x.x, a.y += x.y, a.z += x.z, a.w += x.w;
  b.x += y.x, b.y += y.y, b.z += y.z, b.w += y.w;
}

}  // namespace wideserve::cuda
