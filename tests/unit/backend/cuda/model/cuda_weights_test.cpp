// fuse_qkv_a: the stacked [q_a | kv_a] linear gives both projections (FP8 with kv_a's ragged last
// scale block, and BF16), and layers that cannot be stacked stay as they are.
#include <cuda_bf16.h>
#include <cuda_fp8.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "../gpu_test_util.h"
#include "backend/cuda/common/cuda_check.h"
#include "backend/cuda/common/device_buffer.h"
#include "backend/cuda/gemm/gemm.h"
#include "backend/cuda/gemm/gemm_testing.h"
#include "backend/cuda/model/cuda_weights.h"

namespace wideserve::cuda {
namespace {

constexpr int64_t kRows = 64, kIn = 512;

DevLinear random_linear(int64_t out, bool fp8, uint64_t seed) {
  DevLinear l;
  l.out = out;
  l.in = kIn;
  l.fp8 = fp8;
  if (fp8) {
    l.q = DeviceBuffer<__nv_fp8_e4m3>(static_cast<size_t>(out * kIn));
    gemm_testing::fill_uniform_fp8(l.q.get(), l.q.size(), seed, 448.f, nullptr);
    l.scale = DeviceBuffer<float>(static_cast<size_t>((out + 127) / 128 * (kIn / 128)));
    gemm_testing::fill_uniform_f32(l.scale.get(), l.scale.size(), seed + 1, 2e-4f, 2e-3f, nullptr);
  } else {
    l.w = DeviceBuffer<__nv_bfloat16>(static_cast<size_t>(out * kIn));
    gemm_testing::fill_uniform_bf16(l.w.get(), l.w.size(), seed, -0.1f, 0.1f, nullptr);
  }
  return l;
}

// y [kRows, l.out] = x l^T, host copy.
std::vector<float> run_linear(BlasContext& ctx, const DevLinear& l, const __nv_bfloat16* x) {
  DeviceBuffer<__nv_bfloat16> y(static_cast<size_t>(kRows * l.out));
  if (l.fp8) {
    DeviceBuffer<__nv_fp8_e4m3> xq(static_cast<size_t>(kRows * kIn));
    DeviceBuffer<float> xs(static_cast<size_t>(kRows * kIn / 128));
    launch_quantize_fp8({x, kRows, kIn, 0, xq.get(), xs.get()}, nullptr);
    gemm_fp8_block(ctx, {xq.get(), xs.get(), l.q.get(), l.scale.get(), y.get(), kRows, l.out, kIn},
                   nullptr);
  } else {
    gemm_bf16(ctx, {x, l.w.get(), y.get(), kRows, l.out, kIn}, nullptr);
  }
  WS_CUDA_CHECK(cudaDeviceSynchronize());
  std::vector<float> out;
  for (const auto& v : y.download()) out.push_back(__bfloat162float(v));
  return out;
}

TEST(CudaWeights, FuseQkvAStacksBothProjections) {
  WS_REQUIRE_GPU();
  BlasContext ctx;
  DeviceBuffer<__nv_bfloat16> x(static_cast<size_t>(kRows * kIn));
  gemm_testing::fill_uniform_bf16(x.get(), x.size(), 3, -1.f, 1.f, nullptr);
  for (bool fp8 : {true, false}) {
    SCOPED_TRACE(fp8 ? "fp8" : "bf16");
    const int64_t qa = 256, kva = 80;  // kv_a: one ragged 128-row scale block
    DevWeights w;
    w.layers.resize(2);
    w.layers[0].q_a = random_linear(qa, fp8, 10);
    w.layers[0].kv_a = random_linear(kva, fp8, 20);
    // Layer 1 cannot be stacked: its input widths differ.
    w.layers[1].q_a = random_linear(qa, fp8, 30);
    w.layers[1].kv_a = random_linear(kva, fp8, 40);
    w.layers[1].kv_a.in = kIn / 2;
    const auto ya = run_linear(ctx, w.layers[0].q_a, x.get());
    const auto yb = run_linear(ctx, w.layers[0].kv_a, x.get());

    EXPECT_EQ(fuse_qkv_a(w), 1);
    const DevLayer& L = w.layers[0];
    EXPECT_EQ(L.q_a.out, 0);
    EXPECT_EQ(L.kv_a.out, 0);
    ASSERT_EQ(L.qkv_a.out, qa + kva);
    EXPECT_EQ(L.qkv_a.fp8, fp8);
    EXPECT_EQ(w.layers[1].qkv_a.out, 0);
    EXPECT_EQ(w.layers[1].q_a.out, qa);

    const auto yf = run_linear(ctx, L.qkv_a, x.get());
    const int64_t n = qa + kva;
    double worst = 0, peak = 0;
    for (int64_t r = 0; r < kRows; ++r)
      for (int64_t j = 0; j < n; ++j) {
        const float want = j < qa ? ya[r * qa + j] : yb[r * kva + (j - qa)];
        worst = std::max(worst, static_cast<double>(std::fabs(yf[r * n + j] - want)));
        peak = std::max(peak, static_cast<double>(std::fabs(want)));
      }
    // The same dot products; a different GEMM algorithm may round the bf16 output differently.
    ASSERT_GT(peak, 0.0);
    EXPECT_LT(worst / peak, 1e-2) << "max |fused - separate| " << worst << " of peak " << peak;
  }
}

}  // namespace
}  // namespace wideserve::cuda
