// gemm_fp8_block with a residual: every path must leave residual + bf16(y) in the fp32 residual
// stream, bit for bit what the separate add_residual made (the GEMV in its epilogue, the others
// after writing y), including beta and the GEMV's k splits.
#include <cuda_bf16.h>
#include <cuda_fp8.h>
#include <gtest/gtest.h>

#include <string>
#include <tuple>
#include <vector>

#include "../gpu_test_util.h"
#include "backend/cuda/common/device_buffer.h"
#include "backend/cuda/gemm/gemm.h"
#include "backend/cuda/gemm/gemm_fp8_small_m.h"
#include "backend/cuda/gemm/gemm_gemv.h"
#include "backend/cuda/gemm/gemm_testing.h"
#include "fp8_test_operands.h"

namespace wideserve::cuda {
namespace {

using test::Fp8Acts;
using test::Fp8Weights;

TEST(GemmFp8Residual, EveryPathAddsTheRoundedResult) {
  WS_REQUIRE_GPU();
  BlasContext ctx;
  uint64_t seed = 41000;
  for (auto path :
       {Fp8GemmPath::kAuto, Fp8GemmPath::kGemv, Fp8GemmPath::kSmallM, Fp8GemmPath::kDequant}) {
    ctx.set_fp8_path(path);
    for (auto [m, n, k] :
         {std::tuple<int64_t, int64_t, int64_t>{1, 7168, 2048}, {3, 576, 7168}, {4, 1000, 384}}) {
      for (float beta : {0.f, 1.f}) {
        Fp8Acts a(m, k, seed++);
        Fp8Weights wt(n, k, seed++);
        DeviceBuffer<__nv_bfloat16> y0(static_cast<size_t>(m * n)), y(y0.size());
        gemm_testing::fill_uniform_bf16(y0.get(), y0.size(), seed++, -1.f, 1.f, nullptr);
        WS_CUDA_CHECK(cudaMemcpy(y.get(), y0.get(), y0.size() * 2, cudaMemcpyDeviceToDevice));
        DeviceBuffer<float> res(static_cast<size_t>(m * n));
        gemm_testing::fill_uniform_f32(res.get(), res.size(), seed++, -4.f, 4.f, nullptr);
        const auto res0 = res.download();
        // Reference: y = x w^T + beta y0 on the same path, then the residual add on the host.
        GemmFp8BlockParams p{a.x.get(), a.x_scale(), wt.w.get(), wt.w_scale(), y.get(), m, n, k};
        p.beta = beta;
        if ((path == Fp8GemmPath::kGemv && !fp8_gemv_unsupported(p).empty()) ||
            (path == Fp8GemmPath::kSmallM && !fp8_small_m_unsupported(p).empty()))
          continue;
        gemm_fp8_block(ctx, p, nullptr);
        const auto yref = y.download();
        WS_CUDA_CHECK(cudaMemcpy(y.get(), y0.get(), y0.size() * 2, cudaMemcpyDeviceToDevice));
        p.residual = res.get();
        gemm_fp8_block(ctx, p, nullptr);
        const auto got = res.download();
        int bad = 0;
        for (size_t i = 0; i < got.size(); ++i)
          bad += got[i] != res0[i] + __bfloat162float(yref[i]);
        EXPECT_EQ(bad, 0) << "path " << static_cast<int>(path) << " m=" << m << " n=" << n
                          << " k=" << k << " beta=" << beta;
      }
    }
  }
}

}  // namespace
}  // namespace wideserve::cuda
