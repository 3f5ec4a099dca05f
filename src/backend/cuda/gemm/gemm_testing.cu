#include <cuda_bf16.h>
#include <cuda_fp8.h>

#include <algorithm>

#include "backend/cuda/common/cuda_check.h"
#include "backend/cuda/common/device_buffer.h"
#include "backend/cuda/gemm/gemm_testing.h"

namespace wideserve::cuda::gemm_testing {
namespace {

__device__ inline float hash_uniform(uint64_t seed, int64_t i) {
  uint64_t z = seed * 0x9E3779B97F4A7C15ull + static_cast<uint64_t>(i) + 0x632BE59BD9B4E019ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return static_cast<float>(z >> 40) * (1.0f / 16777216.0f);  // [0, 1)
}

// kind 0: bf16, 1: f32, 2: fp8
template <int kKind>
__global__ void fill_kernel(void* p, int64_t n, uint64_t seed, float lo, float hi) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x) {
    const float v = lo + (hi - lo) * hash_uniform(seed, i);
    if constexpr (kKind == 0) static_cast<__nv_bfloat16*>(p)[i] = __float2bfloat16_rn(v);
    if constexpr (kKind == 1) static_cast<float*>(p)[i] = v;
    if constexpr (kKind == 2) static_cast<__nv_fp8_e4m3*>(p)[i] = __nv_fp8_e4m3(v);
  }
}

template <bool kBf16>
__global__ void nonfinite_kernel(const void* p, int64_t n, unsigned long long* count) {
  unsigned long long c = 0;
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x) {
    const float v = kBf16 ? __bfloat162float(static_cast<const __nv_bfloat16*>(p)[i])
                          : static_cast<const float*>(p)[i];
    c += isfinite(v) ? 0 : 1;
  }
  if (c != 0) atomicAdd(count, c);
}

unsigned grid_for(int64_t n) {
  return static_cast<unsigned>(std::clamp<int64_t>((n + 255) / 256, 1, 132 * 16));
}

template <bool kBf16>
int64_t count_nonfinite(const void* p, int64_t n, cudaStream_t stream) {
  if (n <= 0) return 0;
  DeviceBuffer<unsigned long long> count(1);
  WS_CUDA_CHECK(cudaMemsetAsync(count.get(), 0, sizeof(unsigned long long), stream));
  nonfinite_kernel<kBf16><<<grid_for(n), 256, 0, stream>>>(p, n, count.get());
  WS_CUDA_CHECK_LAUNCH();
  unsigned long long host = 0;
  WS_CUDA_CHECK(cudaMemcpyAsync(&host, count.get(), sizeof(host), cudaMemcpyDeviceToHost, stream));
  WS_CUDA_CHECK(cudaStreamSynchronize(stream));
  return static_cast<int64_t>(host);
}

}  // namespace

void fill_uniform_bf16(__nv_bfloat16* p, int64_t n, uint64_t seed, float lo, float hi,
                       cudaStream_t stream) {
  if (n <= 0) return;
  fill_kernel<0><<<grid_for(n), 256, 0, stream>>>(p, n, seed, lo, hi);
  WS_CUDA_CHECK_LAUNCH();
}

void fill_uniform_f32(float* p, int64_t n, uint64_t seed, float lo, float hi, cudaStream_t stream) {
  if (n <= 0) return;
  fill_kernel<1><<<grid_for(n), 256, 0, stream>>>(p, n, seed, lo, hi);
  WS_CUDA_CHECK_LAUNCH();
}

void fill_uniform_fp8(__nv_fp8_e4m3* p, int64_t n, uint64_t seed, float amax, cudaStream_t stream) {
  if (n <= 0) return;
  fill_kernel<2><<<grid_for(n), 256, 0, stream>>>(p, n, seed, -amax, amax);
  WS_CUDA_CHECK_LAUNCH();
}

int64_t count_nonfinite_bf16(const __nv_bfloat16* p, int64_t n, cudaStream_t stream) {
  return count_nonfinite<true>(p, n, stream);
}

int64_t count_nonfinite_f32(const float* p, int64_t n, cudaStream_t stream) {
  return count_nonfinite<false>(p, n, stream);
}

}  // namespace wideserve::cuda::gemm_testing
