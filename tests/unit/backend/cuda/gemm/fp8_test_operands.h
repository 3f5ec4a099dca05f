// Block-scaled FP8 operands for the GEMM GPU tests (gemm_fp8_block and the small-M kernel): x
// quantized from random bf16 by launch_quantize_fp8, random e4m3 weights with random positive
// 128x128 block scales. Optional padded scale rows and 4-byte scale-pointer offsets.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp8.h>

#include <cstdint>
#include <vector>

#include "backend/cuda/common/device_buffer.h"
#include "backend/cuda/gemm/gemm.h"
#include "backend/cuda/gemm/gemm_ref.h"
#include "backend/cuda/gemm/gemm_testing.h"
#include "gemm_test_util.h"

namespace wideserve::test {

using cuda::DeviceBuffer;
namespace gemm_testing = cuda::gemm_testing;

// Block-scaled operands: x quantized from bf16 by launch_quantize_fp8, random e4m3 weights with
// random positive block scales. scale_ld > ceil(k/128) leaves padding columns (filled with a
// huge value that must never be used); scale_off shifts the scale pointer (misaligned tensors).
struct Fp8Weights {
  int64_t n, k, scale_ld, scale_off;
  DeviceBuffer<__nv_fp8_e4m3> w;
  DeviceBuffer<float> w_scale_buf;
  Fp8Weights(int64_t n_, int64_t k_, uint64_t seed, int64_t ld = 0, int64_t off = 0)
      : n(n_),
        k(k_),
        scale_ld(ld != 0 ? ld : (k_ + 127) / 128),
        scale_off(off),
        w(static_cast<size_t>(n * k)),
        w_scale_buf(static_cast<size_t>(((n + 127) / 128) * scale_ld + off)) {
    gemm_testing::fill_uniform_fp8(w.get(), w.size(), seed, 448.f, nullptr);
    gemm_testing::fill_uniform_f32(w_scale_buf.get(), w_scale_buf.size(), seed + 1, 1e30f, 2e30f,
                                   nullptr);
    const int64_t kb = (k + 127) / 128, nb = (n + 127) / 128;
    for (int64_t b = 0; b < nb; ++b)
      gemm_testing::fill_uniform_f32(w_scale() + b * scale_ld, kb, seed + 2 + b, 2e-4f, 2e-3f,
                                     nullptr);
  }
  float* w_scale() const { return w_scale_buf.get() + scale_off; }
  std::vector<float> scales_host() const {
    auto all = w_scale_buf.download();
    return {all.begin() + scale_off, all.end()};
  }
};

struct Fp8Acts {
  int64_t m, k, scale_off;
  DeviceBuffer<__nv_fp8_e4m3> x;
  DeviceBuffer<float> x_scale_buf;
  Fp8Acts(int64_t m_, int64_t k_, uint64_t seed, int64_t off = 0)
      : m(m_),
        k(k_),
        scale_off(off),
        x(static_cast<size_t>(m * k)),
        x_scale_buf(static_cast<size_t>(m * ((k + 127) / 128) + off)) {
    DeviceBuffer<__nv_bfloat16> xb(static_cast<size_t>(m * k));
    gemm_testing::fill_uniform_bf16(xb.get(), xb.size(), seed, -3.f, 3.f, nullptr);
    cuda::launch_quantize_fp8({xb.get(), m, k, 0, x.get(), x_scale()}, nullptr);
  }
  float* x_scale() const { return x_scale_buf.get() + scale_off; }
  std::vector<float> scales_host() const {
    auto all = x_scale_buf.download();
    return {all.begin() + scale_off, all.end()};
  }
};

// The device's bf16 y [m, n] on the sampled rows x cols against the float64 reference
// x w^T (+ beta y0, y0 = y before the call on the same sample) from the operands' e4m3 values and
// scales.
inline ErrorStats check_fp8_gemm(const Fp8Acts& a, const Fp8Weights& wt, const __nv_bfloat16* y,
                                 const std::vector<int64_t>& rows, const std::vector<int64_t>& cols,
                                 float beta, const std::vector<double>& y0) {
  const int64_t m = a.m, n = wt.n, k = a.k;
  std::vector<uint8_t> xq, wq;
  for (auto v : download_rows(a.x.get(), k, rows, k)) xq.push_back(v.__x);
  for (auto v : download_rows(wt.w.get(), k, cols, k)) wq.push_back(v.__x);
  const auto xd = cuda::dequant_act_rows_ref(xq, rows, a.scales_host(), m, k);
  const auto wd = cuda::dequant_weight_rows_ref(wq, cols, wt.scales_host(), k, wt.scale_ld);
  const auto ref = cuda::gemm_nt_ref(xd, wd, static_cast<int64_t>(rows.size()),
                                     static_cast<int64_t>(cols.size()), k, beta, y0);
  return compare(pick_cols(download_rows(y, n, rows, n), n, cols), ref);
}

}  // namespace wideserve::test
