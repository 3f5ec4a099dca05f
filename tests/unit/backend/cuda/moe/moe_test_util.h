// Helpers of the MoE GPU tests: host bf16/fp8 conversions, poisoned device buffers, host FP8
// quantization with the kernels' rule.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp8.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "backend/cuda/common/device_buffer.h"
#include "backend/cuda/moe/moe_ref.h"

namespace wideserve::test {

inline std::vector<__nv_bfloat16> to_bf16(const std::vector<float>& v) {
  std::vector<__nv_bfloat16> o(v.size());
  for (size_t i = 0; i < v.size(); ++i) o[i] = __float2bfloat16(v[i]);
  return o;
}
inline std::vector<float> from_bf16(const std::vector<__nv_bfloat16>& v) {
  std::vector<float> o(v.size());
  for (size_t i = 0; i < v.size(); ++i) o[i] = __bfloat162float(v[i]);
  return o;
}
// Values exactly representable in bf16 (so references see what the GPU sees).
inline std::vector<float> round_bf16(const std::vector<float>& v) {
  return from_bf16(to_bf16(v));
}

inline float fp8_to_float(__nv_fp8_e4m3 q) {
  return static_cast<float>(q);
}

// Device buffer filled with 0xFF bytes (NaN for bf16/f32, -1 for int32) or another byte.
template <typename T>
cuda::DeviceBuffer<T> poisoned(size_t n, int byte = 0xFF) {
  cuda::DeviceBuffer<T> b(n);
  if (n > 0) WS_CUDA_CHECK(cudaMemset(b.get(), byte, b.bytes()));
  return b;
}

template <typename T>
cuda::DeviceBuffer<T> upload(const std::vector<T>& v) {
  cuda::DeviceBuffer<T> b(v.size());
  b.upload(v);
  return b;
}

// Per-row 1x128 quantization of x [rows, cols] (cols % 128 == 0): q, scales [rows][cols/128].
struct Fp8Rows {
  std::vector<__nv_fp8_e4m3> q;
  std::vector<float> scale;
  std::vector<float> dequant;  // q * scale
};
inline Fp8Rows quantize_rows(const std::vector<float>& x, int64_t rows, int64_t cols) {
  Fp8Rows r;
  r.q.resize(rows * cols);
  r.scale.resize(rows * (cols / 128));
  r.dequant.resize(rows * cols);
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t g = 0; g < cols / 128; ++g) {
      const float* src = &x[i * cols + g * 128];
      const float s = cuda::ref::fp8_group_scale(src);
      r.scale[i * (cols / 128) + g] = s;
      for (int c = 0; c < 128; ++c) {
        const int64_t at = i * cols + g * 128 + c;
        r.q[at] = __nv_fp8_e4m3(src[c] / s);
        r.dequant[at] = fp8_to_float(r.q[at]) * s;
      }
    }
  return r;
}

// 128x128 block quantization of w [experts, n, k] (n, k % 128 == 0): scales [E][n/128][k/128].
inline Fp8Rows quantize_blocks(const std::vector<float>& w, int64_t experts, int64_t n, int64_t k) {
  Fp8Rows r;
  r.q.resize(w.size());
  r.dequant.resize(w.size());
  const int64_t nb = n / 128, kb = k / 128;
  r.scale.resize(experts * nb * kb);
  for (int64_t e = 0; e < experts; ++e)
    for (int64_t bn = 0; bn < nb; ++bn)
      for (int64_t bk = 0; bk < kb; ++bk) {
        float amax = 0.f;
        for (int64_t i = 0; i < 128; ++i)
          for (int64_t j = 0; j < 128; ++j)
            amax = std::max(amax, std::fabs(w[(e * n + bn * 128 + i) * k + bk * 128 + j]));
        const float s = std::max(amax, 1e-10f) / 448.0f;
        r.scale[(e * nb + bn) * kb + bk] = s;
        for (int64_t i = 0; i < 128; ++i)
          for (int64_t j = 0; j < 128; ++j) {
            const int64_t at = (e * n + bn * 128 + i) * k + bk * 128 + j;
            r.q[at] = __nv_fp8_e4m3(w[at] / s);
            r.dequant[at] = fp8_to_float(r.q[at]) * s;
          }
      }
  return r;
}

}  // namespace wideserve::test
