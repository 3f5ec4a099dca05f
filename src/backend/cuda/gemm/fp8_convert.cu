#include <cuda_bf16.h>
#include <cuda_fp8.h>

#include <string>

#include "backend/cuda/common/cuda_check.h"
#include "backend/cuda/gemm/fp8_convert.h"

namespace wideserve::cuda {
namespace {

// Each thread converts kVec consecutive elements of one row (kVec divides k and 128, so they share
// one scale).
template <int kVec>
__global__ void dequant_fp8_kernel(DequantFp8Params p) {
  const int64_t per_row = p.k / kVec;
  const int64_t total = p.rows * per_row;
  for (int64_t t = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; t < total;
       t += int64_t{gridDim.x} * blockDim.x) {
    const int64_t r = t / per_row, c = (t % per_row) * kVec;
    const float s = p.weight_blocks ? p.scale[(r / 128) * p.scale_ld + c / 128]
                                    : p.scale[(c / 128) * p.scale_ld + r];
    const __nv_fp8_e4m3* src = p.q + r * p.k + c;
    __nv_bfloat16* dst = p.out + r * p.k + c;
    if constexpr (kVec == 8) {
      const uint2 raw = *reinterpret_cast<const uint2*>(src);
      const auto* b = reinterpret_cast<const __nv_fp8_e4m3*>(&raw);
      __align__(16) __nv_bfloat16 o[8];
#pragma unroll
      for (int i = 0; i < 8; ++i) o[i] = __float2bfloat16_rn(static_cast<float>(b[i]) * s);
      *reinterpret_cast<uint4*>(dst) = *reinterpret_cast<const uint4*>(o);
    } else {
      dst[0] = __float2bfloat16_rn(static_cast<float>(src[0]) * s);
    }
  }
}

}  // namespace

void launch_dequant_fp8(const DequantFp8Params& p, cudaStream_t stream) {
  WS_CUDA_REQUIRE(p.rows >= 0 && p.k > 0, "dequant_fp8: bad shape rows=" + std::to_string(p.rows) +
                                              " k=" + std::to_string(p.k));
  if (p.rows == 0) return;
  const bool vec = p.k % 8 == 0 && reinterpret_cast<uintptr_t>(p.q) % 8 == 0 &&
                   reinterpret_cast<uintptr_t>(p.out) % 16 == 0;
  const int64_t work = p.rows * (vec ? p.k / 8 : p.k);
  const int threads = 256;
  const int64_t blocks = std::min<int64_t>((work + threads - 1) / threads, int64_t{132} * 32);
  if (vec)
    dequant_fp8_kernel<8><<<static_cast<unsigned>(blocks), threads, 0, stream>>>(p);
  else
    dequant_fp8_kernel<1><<<static_cast<unsigned>(blocks), threads, 0, stream>>>(p);
  WS_CUDA_CHECK_LAUNCH();
}

}  // namespace wideserve::cuda
