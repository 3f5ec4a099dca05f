// The activation quantization rule of the FP8 linears (1x128 groups, e4m3), as device helpers:
// launch_quantize_fp8 and the RMSNorm kernel's fused FP8 copy use all three, so their bytes and
// scales stay identical; the MoE gather and fused small-batch MoE share the group scale.
// Device-only; include from .cu files.
#pragma once

#include <cuda_fp8.h>

#include <cstdint>

namespace wideserve::cuda {

// A group's scale for its absolute maximum (never 0: an all-zero group quantizes to zeros).
__device__ __forceinline__ float fp8_group_scale(float amax) {
  return fmaxf(amax, 1e-10f) / 448.f;
}

// v / scale as e4m3, round to nearest, saturated to the finite range.
__device__ __forceinline__ uint8_t fp8_e4m3_of(float v, float scale) {
  return static_cast<uint8_t>(
      __nv_cvt_float_to_fp8(__fdiv_rn(v, scale), __NV_SATFINITE, __NV_E4M3));
}

// Eight e4m3 bytes in order (each in a uint8_t or the low byte of a uint32_t), as one 8-byte
// store.
template <typename T>
__device__ __forceinline__ uint2 fp8_pack8(const T (&q)[8]) {
  uint2 packed;
  packed.x = q[0] | (q[1] << 8) | (q[2] << 16) | (static_cast<uint32_t>(q[3]) << 24);
  packed.y = q[4] | (q[5] << 8) | (q[6] << 16) | (static_cast<uint32_t>(q[7]) << 24);
  return packed;
}

}  // namespace wideserve::cuda
