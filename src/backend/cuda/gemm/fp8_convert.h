// Internal kernels of the FP8 GEMM fallback: dequantize block-scaled e4m3 to bf16.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp8.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace wideserve::cuda {

struct DequantFp8Params {
  const __nv_fp8_e4m3* q;     // [rows, k] packed
  const float* scale;         // weight: [ceil(rows/128)][scale_ld]; act: [ceil(k/128)][scale_ld]
  int64_t rows, k, scale_ld;  // scale_ld: weight >= ceil(k/128), act >= rows
  bool weight_blocks;         // true: 128x128 weight blocks; false: 1x128 activation groups
  __nv_bfloat16* out;         // [rows, k] packed
};
// out = bf16(q * scale of its block).
void launch_dequant_fp8(const DequantFp8Params& p, cudaStream_t stream);

}  // namespace wideserve::cuda
