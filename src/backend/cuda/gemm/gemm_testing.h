// Device-side helpers for the GEMM tests and benchmark: deterministic pseudo-random fills (so
// multi-GB operands need no host generation or upload) and a count of non-finite outputs (the
// poison check: outputs start as 0xFF bytes = NaN and every element must be overwritten).
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp8.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace wideserve::cuda::gemm_testing {

// Uniform in [lo, hi) from a hash of (seed, index).
void fill_uniform_bf16(__nv_bfloat16* p, int64_t n, uint64_t seed, float lo, float hi,
                       cudaStream_t stream);
void fill_uniform_f32(float* p, int64_t n, uint64_t seed, float lo, float hi, cudaStream_t stream);
// e4m3 of a uniform value in [-amax, amax) (saturating).
void fill_uniform_fp8(__nv_fp8_e4m3* p, int64_t n, uint64_t seed, float amax, cudaStream_t stream);
// Number of NaN/Inf values (synchronizes the stream).
int64_t count_nonfinite_bf16(const __nv_bfloat16* p, int64_t n, cudaStream_t stream);
int64_t count_nonfinite_f32(const float* p, int64_t n, cudaStream_t stream);

}  // namespace wideserve::cuda::gemm_testing
