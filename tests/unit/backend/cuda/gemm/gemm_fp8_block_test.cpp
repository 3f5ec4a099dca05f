// gemm_fp8_block against the float64 reference on quantized operands: a sweep that checks the
// shape rule only routes shapes to cuBLASLt where it is correct (and logs where it is not), every
// DeepSeek-V3 / V2-Lite / tiny-model linear shape with m from 1 to 4096, beta, and graph capture.
#include <cuda_bf16.h>
#include <cuda_fp8.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <string>
#include <vector>

#include "../gpu_test_util.h"
#include "backend/cuda/common/device_buffer.h"
#include "backend/cuda/gemm/gemm.h"
#include "backend/cuda/gemm/gemm_ref.h"
#include "backend/cuda/gemm/gemm_testing.h"
#include "fp8_test_operands.h"
#include "gemm_test_util.h"

namespace wideserve::cuda {
namespace {

using test::download_rows;
using test::Fp8Acts;
using test::Fp8Weights;
using test::sample_indices;

struct Fp8Result {
  test::ErrorStats err;
  Fp8GemmPath path;
  int64_t nonfinite;
};

Fp8Result run_and_check(BlasContext& ctx, const Fp8Acts& a, const Fp8Weights& wt, float beta,
                        uint64_t seed) {
  const int64_t m = a.m, n = wt.n, k = a.k;
  DeviceBuffer<__nv_bfloat16> y(static_cast<size_t>(m * n));
  const auto rows = sample_indices(m, 10, seed), cols = sample_indices(n, 256, seed + 1);
  std::vector<double> y0;
  if (beta != 0.f) {
    gemm_testing::fill_uniform_bf16(y.get(), y.size(), seed + 2, -50.f, 50.f, nullptr);
    y0 = test::pick_cols(download_rows(y.get(), n, rows, n), n, cols);
  } else {
    WS_CUDA_CHECK(cudaMemset(y.get(), 0xFF, y.bytes()));
  }
  GemmFp8BlockParams p{a.x.get(), a.x_scale(), wt.w.get(), wt.w_scale(), y.get(), m, n, k, beta};
  if (wt.scale_ld != (k + 127) / 128) p.w_scale_ld = wt.scale_ld;
  gemm_fp8_block(ctx, p, nullptr);
  WS_CUDA_CHECK(cudaDeviceSynchronize());
  Fp8Result r;
  r.path = ctx.last_fp8_path();
  r.nonfinite = gemm_testing::count_nonfinite_bf16(y.get(), y.size(), nullptr);
  r.err = test::check_fp8_gemm(a, wt, y.get(), rows, cols, beta, y0);
  return r;
}

const char* path_name(Fp8GemmPath p) {
  return p == Fp8GemmPath::kCublasLt ? "cublaslt" : p == Fp8GemmPath::kDequant ? "dequant" : "auto";
}

// cuBLASLt-correct results are ~2e-3 (bf16 output rounding dominates); wrong ones are O(0.1-1).
constexpr double kTolRelL2 = 1e-2, kTolMaxRel = 8e-2;

bool ok(const Fp8Result& r) {
  return r.nonfinite == 0 && r.err.rel_l2 < kTolRelL2 && r.err.max_rel < kTolMaxRel;
}

// Forces each path on a grid of (n, k): the fallback must always be right, and every shape the
// rule sends to cuBLASLt must be right there; the log shows where cuBLASLt is wrong.
TEST(GemmFp8Block, ShapeRuleOnlyPicksCorrectCublasLtShapes) {
  WS_REQUIRE_GPU();
  BlasContext ctx;
  uint64_t seed = 1000;
  const std::vector<int64_t> ks = {128,  256,  384,  512,  640,  768,  896,  1024,
                                   1152, 1408, 1536, 2048, 2816, 7168, 10240};
  const std::vector<int64_t> ns = {128, 256, 576, 2112, 7168};
  for (int64_t k : ks) {
    for (int64_t m : {1, 3, 64, 130, 300}) {
      Fp8Acts a(m, k, seed++);
      for (int64_t n : ns) {
        Fp8Weights wt(n, k, seed++);
        ctx.set_fp8_path(Fp8GemmPath::kCublasLt);
        const auto c = run_and_check(ctx, a, wt, 0.f, seed++);
        ctx.set_fp8_path(Fp8GemmPath::kDequant);
        const auto d = run_and_check(ctx, a, wt, 0.f, seed++);
        const bool rule_cublas = select_fp8_block_path(m, n, k) == Fp8GemmPath::kCublasLt;
        std::printf(
            "[fp8 sweep] m=%-4ld n=%-5ld k=%-5ld rule=%-8s cublaslt(%s) rel_l2=%.2e "
            "max_rel=%.2e nonfinite=%ld %s | dequant rel_l2=%.2e\n",
            long(m), long(n), long(k), rule_cublas ? "cublaslt" : "dequant", path_name(c.path),
            c.err.rel_l2, c.err.max_rel, long(c.nonfinite), ok(c) ? "OK" : "WRONG", d.err.rel_l2);
        EXPECT_TRUE(ok(d)) << "dequant m=" << m << " n=" << n << " k=" << k;
        if (rule_cublas) {
          EXPECT_EQ(c.path, Fp8GemmPath::kCublasLt);
          EXPECT_TRUE(ok(c)) << "cublaslt m=" << m << " n=" << n << " k=" << k
                             << " rel_l2=" << c.err.rel_l2;
        }
      }
    }
  }
}

struct NamedShape {
  const char* name;
  int64_t n, k;
};

TEST(GemmFp8Block, ModelShapes) {
  WS_REQUIRE_GPU();
  BlasContext ctx;
  const std::vector<NamedShape> shapes = {
      {"v3 q_a", 1536, 7168},
      {"v3 kv_a", 576, 7168},
      {"v3 q_a+kv_a", 2112, 7168},
      {"v3 q_b", 24576, 1536},
      {"v3 kv_b", 32768, 512},
      {"v3 o_proj", 7168, 16384},
      {"v3 gate|up", 18432, 7168},
      {"v3 gate+up", 36864, 7168},
      {"v3 down", 7168, 18432},
      {"v3 expert gate+up", 4096, 7168},
      {"v3 expert gate|up", 2048, 7168},
      {"v3 expert down", 7168, 2048},
      {"v2l q_proj", 3072, 2048},
      {"v2l kv_a", 576, 2048},
      {"v2l kv_b", 4096, 512},
      {"v2l o_proj", 2048, 2048},
      {"v2l gate+up", 21888, 2048},
      {"v2l gate|up", 10944, 2048},
      {"v2l down", 2048, 10944},
      {"v2l expert gate|up", 1408, 2048},
      {"v2l expert down", 2048, 1408},
      {"v2l shared gate+up", 5632, 2048},
      {"v2l shared down", 2048, 2816},
      {"tiny q_a", 96, 256},
      {"tiny kv_a", 80, 256},
      {"tiny q_b", 192, 96},
      {"tiny kv_b", 256, 64},
      {"tiny o_proj", 256, 128},
      {"tiny gate+up", 1024, 256},
      {"tiny down", 256, 512},
      {"tiny expert gate+up", 256, 256},
      {"tiny expert down", 256, 128},
      {"dsl q_a", 160, 256},
      {"dsl kv_a", 160, 256},
      {"dsl q_b", 192, 160},
      {"dsl kv_b", 240, 128},
      {"dsl o_proj", 256, 144},
      {"dsl down", 256, 384},
      {"dsl gate+up", 768, 256},
  };
  uint64_t seed = 5000;
  for (const auto& s : shapes) {
    Fp8Weights wt(s.n, s.k, seed++);
    for (int64_t m : {1, 3, 64, 129, 512, 4096}) {
      Fp8Acts a(m, s.k, seed++);
      const auto r = run_and_check(ctx, a, wt, 0.f, seed++);
      std::printf("[fp8 model] %-20s m=%-4ld n=%-5ld k=%-5ld path=%-8s rel_l2=%.2e max_rel=%.2e\n",
                  s.name, long(m), long(s.n), long(s.k), path_name(r.path), r.err.rel_l2,
                  r.err.max_rel);
      EXPECT_EQ(r.nonfinite, 0) << s.name << " m=" << m;
      EXPECT_TRUE(ok(r)) << s.name << " m=" << m << " rel_l2=" << r.err.rel_l2;
    }
  }
}

TEST(GemmFp8Block, BetaAddsIntoOutputOnBothPaths) {
  WS_REQUIRE_GPU();
  BlasContext ctx;
  uint64_t seed = 9000;
  for (auto path : {Fp8GemmPath::kAuto, Fp8GemmPath::kDequant}) {
    ctx.set_fp8_path(path);
    for (auto [m, n, k] : {std::tuple<int64_t, int64_t, int64_t>{1, 7168, 2048},
                           {77, 7168, 16384},
                           {300, 2048, 1408},
                           {5, 256, 144}}) {
      Fp8Acts a(m, k, seed++);
      Fp8Weights wt(n, k, seed++);
      const auto r = run_and_check(ctx, a, wt, 1.f, seed++);
      std::printf("[fp8 beta] m=%ld n=%ld k=%ld path=%s rel_l2=%.2e\n", long(m), long(n), long(k),
                  path_name(r.path), r.err.rel_l2);
      EXPECT_TRUE(ok(r)) << "m=" << m << " n=" << n << " k=" << k;
    }
  }
}

// Autotuned cuBLASLt plans (beta 0 and 1, m padded to 4 or not) against the reference.
TEST(GemmFp8Block, AutotunedPlansStayCorrect) {
  WS_REQUIRE_GPU();
  BlasContext ctx;
  ctx.set_gemm_autotune(8);
  ctx.set_fp8_path(Fp8GemmPath::kCublasLt);
  uint64_t seed = 9500;
  for (auto [m, n, k] : {std::tuple<int64_t, int64_t, int64_t>{256, 2112, 7168},
                         {130, 7168, 2048},
                         {256, 24576, 1536}}) {
    for (float beta : {0.f, 1.f}) {
      Fp8Acts a(m, k, seed++);
      Fp8Weights wt(n, k, seed++);
      const auto r = run_and_check(ctx, a, wt, beta, seed++);
      EXPECT_EQ(r.path, Fp8GemmPath::kCublasLt);
      EXPECT_TRUE(ok(r)) << "m=" << m << " n=" << n << " k=" << k << " beta=" << beta;
    }
  }
  // cuBLASLt 13.1's heuristic offered one algorithm per block-scaled shape on the H200 (nothing to
  // time, so no record); whatever was tuned must be consistent.
  for (const auto& r : ctx.tune_records()) {
    EXPECT_TRUE(r.fp8);
    EXPECT_LE(r.best_us, r.heuristic_us);
  }
}

// The model runner captures decode steps in CUDA graphs: both paths must replay correctly once the
// fallback scratch is reserved.
TEST(GemmFp8Block, GraphCaptureAfterReserve) {
  WS_REQUIRE_GPU();
  BlasContext ctx;
  cudaStream_t stream;
  WS_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  Fp8Acts a1(8, 7168, 1), a2(7, 256, 2);  // a2: m % 4 and k blocks % 4 staged
  Fp8Weights w1(2048, 7168, 3), w2(96, 256, 4);
  DeviceBuffer<__nv_bfloat16> y1(8 * 2048), y2(7 * 96), r1(8 * 2048), r2(7 * 96);
  GemmFp8BlockParams p1{a1.x.get(), a1.x_scale(), w1.w.get(), w1.w_scale(), r1.get(),
                        8,          2048,         7168};
  GemmFp8BlockParams p2{a2.x.get(), a2.x_scale(), w2.w.get(), w2.w_scale(), r2.get(), 7, 96, 256};
  WS_CUDA_CHECK(cudaDeviceSynchronize());  // operands were made on the legacy stream
  gemm_fp8_block(ctx, p1, stream);         // eager reference results (also builds the plans)
  gemm_fp8_block(ctx, p2, stream);
  WS_CUDA_CHECK(cudaStreamSynchronize(stream));
  ctx.reserve_fp8_scratch(7, 96, 256);
  WS_CUDA_CHECK(cudaMemset(y1.get(), 0xFF, y1.bytes()));
  WS_CUDA_CHECK(cudaMemset(y2.get(), 0xFF, y2.bytes()));
  WS_CUDA_CHECK(cudaDeviceSynchronize());
  p1.y = y1.get();
  p2.y = y2.get();
  test::CapturedGraph graph(stream, [&] {
    gemm_fp8_block(ctx, p1, stream);
    gemm_fp8_block(ctx, p2, stream);
  });
  graph.launch();
  auto h1 = y1.download(), g1 = r1.download(), h2 = y2.download(), g2 = r2.download();
  int64_t diff = 0;
  for (size_t i = 0; i < h1.size(); ++i) diff += __bfloat162float(h1[i]) != __bfloat162float(g1[i]);
  for (size_t i = 0; i < h2.size(); ++i) diff += __bfloat162float(h2[i]) != __bfloat162float(g2[i]);
  EXPECT_EQ(diff, 0);
  // Growing the scratch inside a capture is refused with a clear error, not a broken graph.
  Fp8Acts a3(64, 10944, 5);
  Fp8Weights w3(2048, 10944, 6);
  DeviceBuffer<__nv_bfloat16> y3(64 * 2048);
  WS_CUDA_CHECK(cudaDeviceSynchronize());
  GemmFp8BlockParams p3{a3.x.get(), a3.x_scale(), w3.w.get(), w3.w_scale(),
                        y3.get(),   64,           2048,       10944};
  WS_CUDA_CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
  EXPECT_THROW(gemm_fp8_block(ctx, p3, stream), std::exception);
  cudaGraph_t g3;
  cudaStreamEndCapture(stream, &g3);
  if (g3 != nullptr) cudaGraphDestroy(g3);
  cudaGetLastError();
  WS_CUDA_CHECK(cudaStreamDestroy(stream));
}

// Padded w_scale rows (w_scale_ld) and scale tensors at 4-byte offsets (slices of larger
// allocations) on both paths, including shapes that need m and k-block staging.
TEST(GemmFp8Block, ScaleStridesAndMisalignedScales) {
  WS_REQUIRE_GPU();
  BlasContext ctx;
  uint64_t seed = 12000;
  for (auto path : {Fp8GemmPath::kAuto, Fp8GemmPath::kDequant}) {
    ctx.set_fp8_path(path);
    for (auto [m, n, k, ld, off] :
         {std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t>{64, 2048, 1408, 12, 0},
          {5, 7168, 2048, 20, 0},
          {64, 2112, 7168, 0, 1},
          {3, 576, 512, 0, 3},
          {130, 1024, 384, 5, 1},
          {1, 256, 96, 3, 1}}) {
      Fp8Acts a(m, k, seed++, off);
      Fp8Weights wt(n, k, seed++, ld, off);
      const auto r = run_and_check(ctx, a, wt, 0.f, seed++);
      std::printf("[fp8 strides] m=%ld n=%ld k=%ld ld=%ld off=%ld path=%s rel_l2=%.2e\n", long(m),
                  long(n), long(k), long(ld), long(off), path_name(r.path), r.err.rel_l2);
      EXPECT_TRUE(ok(r)) << "m=" << m << " n=" << n << " k=" << k << " ld=" << ld << " off=" << off
                         << " rel_l2=" << r.err.rel_l2;
    }
  }
}

TEST(GemmFp8Block, ZeroRowsIsNoOp) {
  WS_REQUIRE_GPU();
  BlasContext ctx;
  GemmFp8BlockParams p{nullptr, nullptr, nullptr, nullptr, nullptr, 0, 128, 128};
  EXPECT_NO_THROW(gemm_fp8_block(ctx, p, nullptr));
  p.m = 1;
  EXPECT_THROW(gemm_fp8_block(ctx, p, nullptr), std::exception);
}

}  // namespace
}  // namespace wideserve::cuda
