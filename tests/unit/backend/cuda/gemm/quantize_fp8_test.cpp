// launch_quantize_fp8 against quantize_fp8_ref: bit-exact e4m3 bytes and fp32 scales, both scale
// layouts, partial last groups, strided input, all-zero groups and saturation.
#include <cuda_bf16.h>
#include <cuda_fp8.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <vector>

#include "../gpu_test_util.h"
#include "backend/cuda/common/device_buffer.h"
#include "backend/cuda/gemm/gemm.h"
#include "backend/cuda/gemm/gemm_ref.h"

namespace wideserve::cuda {
namespace {

void check_quantize(int64_t m, int64_t k, int64_t ldx, bool row_major, uint64_t seed) {
  SCOPED_TRACE("m=" + std::to_string(m) + " k=" + std::to_string(k) +
               " ldx=" + std::to_string(ldx) + " row_major=" + std::to_string(row_major));
  const int64_t ld = ldx ? ldx : k, nkb = (k + 127) / 128;
  // Mixed magnitudes per row (activations have outlier channels), rounded to bf16 on the host.
  auto raw = test::randn(static_cast<size_t>(m * ld), seed);
  std::vector<__nv_bfloat16> hx(raw.size());
  std::vector<float> x(static_cast<size_t>(m * k));
  for (int64_t i = 0; i < m; ++i)
    for (int64_t c = 0; c < ld; ++c) {
      float v = raw[i * ld + c] * (1.f + static_cast<float>(i % 7) * 10.f);
      if (c % 97 == 5) v *= 50.f;
      if (i == 1 && c < 128) v = 0.f;  // an all-zero group: scale = 1e-10 / 448
      hx[i * ld + c] = __float2bfloat16_rn(v);
      if (c < k) x[i * k + c] = __bfloat162float(hx[i * ld + c]);
    }
  DeviceBuffer<__nv_bfloat16> dx(hx.size());
  dx.upload(hx);
  DeviceBuffer<__nv_fp8_e4m3> q(static_cast<size_t>(m * k));
  DeviceBuffer<float> scale(static_cast<size_t>(m * nkb));
  WS_CUDA_CHECK(cudaMemset(q.get(), 0xFF, q.bytes()));
  WS_CUDA_CHECK(cudaMemset(scale.get(), 0xFF, scale.bytes()));
  QuantizeFp8Params p{dx.get(), m, k, ldx, q.get(), scale.get(), row_major};
  launch_quantize_fp8(p, nullptr);
  WS_CUDA_CHECK(cudaDeviceSynchronize());

  const auto ref = quantize_fp8_ref(x, m, k);
  auto hq = q.download();
  auto hs = scale.download();
  int64_t bad_q = 0, bad_s = 0;
  for (size_t i = 0; i < hq.size(); ++i) bad_q += hq[i].__x != ref.q[i];
  for (int64_t i = 0; i < m; ++i)
    for (int64_t b = 0; b < nkb; ++b) {
      const float got = row_major ? hs[i * nkb + b] : hs[b * m + i];
      bad_s += std::memcmp(&got, &ref.scale[b * m + i], sizeof(float)) != 0;
    }
  EXPECT_EQ(bad_q, 0);
  EXPECT_EQ(bad_s, 0);
  // The round trip is within e4m3's half-ulp (2^-4 relative) of the input per group max.
  double num = 0, den = 0;
  for (int64_t i = 0; i < m; ++i)
    for (int64_t c = 0; c < k; ++c) {
      const double s = ref.scale[(c / 128) * m + i];
      const double d = e4m3_to_double(hq[i * k + c].__x) * s - x[i * k + c];
      num += d * d;
      den += double(x[i * k + c]) * x[i * k + c];
    }
  EXPECT_LT(std::sqrt(num / den), 0.05);
}

TEST(QuantizeFp8, MatchesReferenceBitExact) {
  WS_REQUIRE_GPU();
  uint64_t seed = 1;
  for (bool rm : {false, true}) {
    check_quantize(1, 128, 0, rm, seed++);
    check_quantize(3, 7168, 0, rm, seed++);
    check_quantize(5, 96, 0, rm, seed++);   // one partial group
    check_quantize(7, 200, 0, rm, seed++);  // full + partial group
    check_quantize(9, 100, 0, rm, seed++);  // k % 8 != 0: scalar path
    check_quantize(2, 1, 0, rm, seed++);
    check_quantize(33, 2048, 0, rm, seed++);
    check_quantize(6, 512, 2112, rm, seed++);  // strided slice
    check_quantize(4, 64, 70, rm, seed++);     // ldx % 8 != 0: scalar path
    check_quantize(4096, 7168, 0, rm, seed++);
  }
}

TEST(QuantizeFp8, ZeroRowsIsNoOpAndBadArgsThrow) {
  WS_REQUIRE_GPU();
  QuantizeFp8Params p{nullptr, 0, 128, 0, nullptr, nullptr};
  EXPECT_NO_THROW(launch_quantize_fp8(p, nullptr));
  p.m = 4;
  p.ldx = 64;
  EXPECT_THROW(launch_quantize_fp8(p, nullptr), std::exception);
}

}  // namespace
}  // namespace wideserve::cuda
