// The decode-sized FP8 kernels against the float64 reference on the dequantized operands: the
// small-M kernel (Fp8GemmPath::kSmallM, gemm_fp8_small_m.h) at every DeepSeek-V3 decode shape for
// m in {1, 2, 3, 7, 16}, every work split (warps along n x cluster split-K), partial k blocks,
// beta, padded and offset scales, guard elements around y that must stay poisoned, determinism,
// graph capture and the rejections; the GEMV kernel (kGemv, gemm_gemv.h) at the same shapes
// for m in 1..8 and every k split; and kAuto's choice between them and cuBLASLt.
#include <cuda_bf16.h>
#include <cuda_fp8.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <tuple>
#include <vector>

#include "../gpu_test_util.h"
#include "backend/cuda/common/device_buffer.h"
#include "backend/cuda/gemm/gemm.h"
#include "backend/cuda/gemm/gemm_fp8_small_m.h"
#include "backend/cuda/gemm/gemm_gemv.h"
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

// bf16 output rounding alone gives ~1.5e-3; a lost or doubled k block is >= 1e-2 at these k.
constexpr double kTolRelL2 = 5e-3, kTolMaxRel = 4e-2;
constexpr int64_t kGuard = 64;  // poisoned bf16 elements before and after y

// y inside a larger buffer: guards stay 0xFFFF (NaN) unless the kernel writes outside [m, n].
struct GuardedY {
  int64_t count;
  DeviceBuffer<__nv_bfloat16> buf;
  explicit GuardedY(int64_t m, int64_t n)
      : count(m * n), buf(static_cast<size_t>(m * n + 2 * kGuard)) {
    WS_CUDA_CHECK(cudaMemset(buf.get(), 0xFF, buf.bytes()));
  }
  __nv_bfloat16* y() const { return buf.get() + kGuard; }
  int64_t guards_touched() const {
    auto h = buf.download();
    int64_t bad = 0;
    for (int64_t i = 0; i < kGuard; ++i) {
      uint16_t lo, hi;
      std::memcpy(&lo, &h[static_cast<size_t>(i)], 2);
      std::memcpy(&hi, &h[static_cast<size_t>(kGuard + count + i)], 2);
      bad += (lo != 0xFFFF) + (hi != 0xFFFF);
    }
    return bad;
  }
};

struct Result {
  test::ErrorStats err;
  int64_t nonfinite = 0, guards = 0;
};

// Runs the kernel (through gemm_fp8_block with the forced path when cfg is null, else directly
// with cfg) and checks all rows and up to 256 sampled columns against the float64 reference.
Result run_and_check(const Fp8Acts& a, const Fp8Weights& wt, float beta, uint64_t seed,
                     const Fp8SmallMConfig* cfg = nullptr, Fp8GemmPath path = Fp8GemmPath::kSmallM,
                     int gemv_warps_k = -1) {
  const int64_t m = a.m, n = wt.n, k = a.k;
  GuardedY gy(m, n);
  const auto rows = sample_indices(m, kFp8SmallMMaxM, seed);
  const auto cols = sample_indices(n, 256, seed + 1);
  std::vector<double> y0;
  if (beta != 0.f) {
    gemm_testing::fill_uniform_bf16(gy.y(), m * n, seed + 2, -50.f, 50.f, nullptr);
    y0 = test::pick_cols(download_rows(gy.y(), n, rows, n), n, cols);
  }
  GemmFp8BlockParams p{a.x.get(), a.x_scale(), wt.w.get(), wt.w_scale(), gy.y(), m, n, k, beta};
  if (wt.scale_ld != (k + 127) / 128) p.w_scale_ld = wt.scale_ld;
  if (gemv_warps_k >= 0) {
    launch_fp8_gemv(p, GemvConfig{gemv_warps_k}, nullptr);
  } else if (cfg == nullptr) {
    BlasContext ctx;
    ctx.set_fp8_path(path);
    gemm_fp8_block(ctx, p, nullptr);
    EXPECT_EQ(ctx.last_fp8_path(), path);
  } else {
    launch_fp8_small_m(p, *cfg, nullptr);
  }
  WS_CUDA_CHECK(cudaDeviceSynchronize());
  Result r;
  r.nonfinite = gemm_testing::count_nonfinite_bf16(gy.y(), m * n, nullptr);
  r.guards = gy.guards_touched();
  r.err = test::check_fp8_gemm(a, wt, gy.y(), rows, cols, beta, y0);
  return r;
}

void expect_ok(const Result& r, const std::string& what) {
  EXPECT_EQ(r.nonfinite, 0) << what;
  EXPECT_EQ(r.guards, 0) << what << ": wrote outside y";
  EXPECT_LT(r.err.rel_l2, kTolRelL2) << what;
  EXPECT_LT(r.err.max_rel, kTolMaxRel) << what;
}

std::string shape_str(int64_t m, int64_t n, int64_t k) {
  return "m=" + std::to_string(m) + " n=" + std::to_string(n) + " k=" + std::to_string(k);
}

struct NamedShape {
  const char* name;
  int64_t n, k;
};

TEST(GemmFp8SmallM, DecodeShapesEveryM) {
  WS_REQUIRE_GPU();
  const std::vector<NamedShape> shapes = {{"v3 q_b", 24576, 1536},    {"v3 kv_a", 576, 7168},
                                          {"v3 o_proj", 7168, 16384}, {"v3 gate+up", 36864, 7168},
                                          {"v3 down", 7168, 18432},   {"v3 q_a+kv_a", 2112, 7168},
                                          {"odd 136x384", 136, 384},  {"odd 8x128", 8, 128}};
  uint64_t seed = 20000;
  for (const auto& s : shapes) {
    Fp8Weights wt(s.n, s.k, seed++);
    for (int64_t m : {1, 2, 3, 7, 16}) {
      Fp8Acts a(m, s.k, seed++);
      const auto r = run_and_check(a, wt, 0.f, seed++);
      std::printf("[fp8 small-m] %-12s %-22s rel_l2=%.2e max_rel=%.2e\n", s.name,
                  shape_str(m, s.n, s.k).c_str(), r.err.rel_l2, r.err.max_rel);
      expect_ok(r, std::string(s.name) + " " + shape_str(m, s.n, s.k));
    }
  }
}

// Every (warps_n, cluster_k) split, including clusters wider than the k blocks (empty ranks) and
// CTAs wider than n.
TEST(GemmFp8SmallM, EveryWorkSplit) {
  WS_REQUIRE_GPU();
  uint64_t seed = 21000;
  for (auto [m, n, k] : {std::tuple<int64_t, int64_t, int64_t>{5, 576, 7168},
                         {16, 136, 384},
                         {1, 200, 1040},
                         {9, 48, 2064},
                         {16, 2112, 1024}}) {
    Fp8Acts a(m, k, seed++);
    Fp8Weights wt(n, k, seed++);
    for (int wn : {1, 2, 4, 8})
      for (int ck : {1, 2, 3, 4, 5, 7, 8}) {
        const Fp8SmallMConfig cfg{wn, ck};
        const auto r = run_and_check(a, wt, 0.f, seed++, &cfg);
        const std::string what = shape_str(m, n, k) + " warps_n=" + std::to_string(wn) +
                                 " cluster_k=" + std::to_string(ck);
        if (r.err.rel_l2 >= kTolRelL2)
          std::printf("[fp8 small-m split] %s rel_l2=%.2e\n", what.c_str(), r.err.rel_l2);
        expect_ok(r, what);
      }
  }
}

// k % 128 != 0: the last block is partial and zero-filled past k (both operands).
TEST(GemmFp8SmallM, PartialKBlocks) {
  WS_REQUIRE_GPU();
  uint64_t seed = 22000;
  for (int64_t k : {16, 48, 96, 144, 160, 400, 7184})
    for (int64_t m : {1, 11})
      for (int64_t n : {64, 300}) {
        Fp8Acts a(m, k, seed++);
        Fp8Weights wt(n, k, seed++);
        const auto r = run_and_check(a, wt, 0.f, seed++);
        std::printf("[fp8 small-m partial-k] %-22s rel_l2=%.2e\n", shape_str(m, n, k).c_str(),
                    r.err.rel_l2);
        expect_ok(r, shape_str(m, n, k));
      }
}

TEST(GemmFp8SmallM, BetaAccumulates) {
  WS_REQUIRE_GPU();
  uint64_t seed = 23000;
  for (auto [m, n, k, beta] : {std::tuple<int64_t, int64_t, int64_t, float>{1, 7168, 2048, 1.f},
                               {16, 576, 7168, 1.f},
                               {3, 2112, 7168, 1.f},
                               {7, 136, 384, 1.f},
                               {4, 7168, 16384, -0.5f}}) {
    Fp8Acts a(m, k, seed++);
    Fp8Weights wt(n, k, seed++);
    const auto r = run_and_check(a, wt, beta, seed++);
    std::printf("[fp8 small-m beta] %-22s beta=%.1f rel_l2=%.2e\n", shape_str(m, n, k).c_str(),
                beta, r.err.rel_l2);
    expect_ok(r, shape_str(m, n, k) + " beta=" + std::to_string(beta));
  }
}

// Padded w_scale rows (the padding holds 1e30: reading it shows) and scale tensors at 4-byte
// offsets.
TEST(GemmFp8SmallM, ScaleStridesAndOffsets) {
  WS_REQUIRE_GPU();
  uint64_t seed = 24000;
  for (auto [m, n, k, ld, off] :
       {std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t>{2, 2048, 1408, 12, 0},
        {5, 7168, 2048, 20, 0},
        {16, 2112, 7168, 0, 1},
        {3, 576, 512, 7, 3},
        {1, 256, 96, 3, 1}}) {
    Fp8Acts a(m, k, seed++, off);
    Fp8Weights wt(n, k, seed++, ld, off);
    const auto r = run_and_check(a, wt, 0.f, seed++);
    const std::string what =
        shape_str(m, n, k) + " ld=" + std::to_string(ld) + " off=" + std::to_string(off);
    std::printf("[fp8 small-m strides] %s rel_l2=%.2e\n", what.c_str(), r.err.rel_l2);
    expect_ok(r, what);
  }
}

// Split-K reduces in a fixed order: repeated runs (and a graph replay) are bitwise equal.
TEST(GemmFp8SmallM, DeterministicAndGraphCapturable) {
  WS_REQUIRE_GPU();
  BlasContext ctx;
  ctx.set_fp8_path(Fp8GemmPath::kSmallM);
  ctx.reserve_fp8_scratch(16, 2112, 7168);  // a no-op for this path; must not throw
  cudaStream_t stream;
  WS_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  Fp8Acts a1(16, 7168, 1), a2(3, 1536, 2);
  Fp8Weights w1(2112, 7168, 3), w2(24576, 1536, 4);  // cluster split-K / one CTA per 128 rows
  const int64_t c1 = 16 * 2112, c2 = 3 * 24576;
  DeviceBuffer<__nv_bfloat16> e1(c1), e2(c2), g1(c1), g2(c2), r1(c1);
  GemmFp8BlockParams p1{a1.x.get(), a1.x_scale(), w1.w.get(), w1.w_scale(),
                        e1.get(),   16,           2112,       7168};
  GemmFp8BlockParams p2{a2.x.get(), a2.x_scale(), w2.w.get(), w2.w_scale(), e2.get(),
                        3,          24576,        1536};
  WS_CUDA_CHECK(cudaDeviceSynchronize());  // operands were made on the legacy stream
  gemm_fp8_block(ctx, p1, stream);
  gemm_fp8_block(ctx, p2, stream);
  GemmFp8BlockParams p1r = p1;
  p1r.y = r1.get();
  gemm_fp8_block(ctx, p1r, stream);
  WS_CUDA_CHECK(cudaMemsetAsync(g1.get(), 0xFF, g1.bytes(), stream));
  WS_CUDA_CHECK(cudaMemsetAsync(g2.get(), 0xFF, g2.bytes(), stream));
  WS_CUDA_CHECK(cudaStreamSynchronize(stream));
  p1.y = g1.get();
  p2.y = g2.get();
  test::CapturedGraph graph(stream, [&] {
    gemm_fp8_block(ctx, p1, stream);
    gemm_fp8_block(ctx, p2, stream);
  });
  graph.launch();
  auto bits_differ = [](const DeviceBuffer<__nv_bfloat16>& a,
                        const DeviceBuffer<__nv_bfloat16>& b) {
    auto ha = a.download(), hb = b.download();
    return std::memcmp(ha.data(), hb.data(), ha.size() * sizeof(ha[0])) != 0;
  };
  EXPECT_FALSE(bits_differ(e1, r1)) << "two eager runs differ";
  EXPECT_FALSE(bits_differ(e1, g1)) << "graph replay differs (cluster split-K shape)";
  EXPECT_FALSE(bits_differ(e2, g2)) << "graph replay differs (q_b shape)";
  EXPECT_EQ(gemm_testing::count_nonfinite_bf16(g1.get(), c1, nullptr), 0);
  EXPECT_EQ(gemm_testing::count_nonfinite_bf16(g2.get(), c2, nullptr), 0);
  WS_CUDA_CHECK(cudaStreamDestroy(stream));
}

TEST(GemmFp8SmallM, RejectsWhatItCannotRun) {
  WS_REQUIRE_GPU();
  Fp8Acts a(17, 256, 1);
  Fp8Weights wt(128, 256, 2);
  DeviceBuffer<__nv_bfloat16> y(17 * 128);
  GemmFp8BlockParams p{a.x.get(), a.x_scale(), wt.w.get(), wt.w_scale(), y.get(), 16, 128, 256};
  EXPECT_TRUE(fp8_small_m_unsupported(p).empty());
  EXPECT_NO_THROW(launch_fp8_small_m(p, {}, nullptr));
  auto rejected = [](const GemmFp8BlockParams& q, const char* why) {
    EXPECT_FALSE(fp8_small_m_unsupported(q).empty()) << why;
    EXPECT_THROW(launch_fp8_small_m(q, {}, nullptr), std::exception) << why;
  };
  auto q = p;
  q.m = 17;
  rejected(q, "m > 16");
  q = p;
  q.k = 200;  // the buffers are large enough either way
  rejected(q, "k % 16 != 0");
  q = p;
  q.x = a.x.get() + 1;
  q.k = 240;
  rejected(q, "x not 16-byte aligned");
  q = p;
  q.w_scale_ld = 1;
  rejected(q, "w_scale_ld < ceil(k/128)");
  EXPECT_THROW(launch_fp8_small_m(p, Fp8SmallMConfig{3, 1}, nullptr), std::exception);
  EXPECT_THROW(launch_fp8_small_m(p, Fp8SmallMConfig{8, 16}, nullptr), std::exception);
  // Through the context the forced path throws too (no silent fallback), m == 0 stays a no-op.
  BlasContext ctx;
  ctx.set_fp8_path(Fp8GemmPath::kSmallM);
  q = p;
  q.m = 17;
  EXPECT_THROW(gemm_fp8_block(ctx, q, nullptr), std::exception);
  q.m = 0;
  EXPECT_NO_THROW(gemm_fp8_block(ctx, q, nullptr));
  WS_CUDA_CHECK(cudaDeviceSynchronize());
}

// kAuto runs the GEMV kernel at m <= 4, the small-M kernel where it won on the H200 (one row; up
// to 16 rows of n <= 4096), cuBLASLt elsewhere or when turned off; the planner's splits for the V3
// decode shapes on the H200's 132 SMs are the ones docs/cuda_gemm.md predicts for.
TEST(GemmFp8SmallM, AutoPathPicksSmallMWhereItWonAndPlannerSplits) {
  WS_REQUIRE_GPU();
  uint64_t seed = 900;
  for (int64_t m : {1, 4, 16, 17})
    for (auto [n, k] : {std::pair<int64_t, int64_t>{24576, 1536}, {576, 7168}, {7168, 2048}}) {
      EXPECT_EQ(select_fp8_block_path(m, n, k), Fp8GemmPath::kCublasLt);
      Fp8Acts a(m, k, seed++);
      Fp8Weights wt(n, k, seed++);
      DeviceBuffer<__nv_bfloat16> y(static_cast<size_t>(m * n));
      GemmFp8BlockParams p{a.x.get(), a.x_scale(), wt.w.get(), wt.w_scale(), y.get(), m, n, k};
      if (wt.scale_ld != (k + 127) / 128) p.w_scale_ld = wt.scale_ld;
      BlasContext ctx;
      gemm_fp8_block(ctx, p, nullptr);
      const bool small = m == 1 || (m <= 16 && n <= 4096), gemv = m <= 4;
      EXPECT_EQ(fp8_small_m_preferred(m, n), small) << m << "x" << n;
      EXPECT_EQ(fp8_gemv_preferred(m, n), gemv) << m << "x" << n;
      EXPECT_EQ(ctx.last_fp8_path(), gemv    ? Fp8GemmPath::kGemv
                                     : small ? Fp8GemmPath::kSmallM
                                             : Fp8GemmPath::kCublasLt)
          << m << "x" << n;
      ctx.set_fp8_gemv(false);
      gemm_fp8_block(ctx, p, nullptr);
      EXPECT_EQ(ctx.last_fp8_path(), small ? Fp8GemmPath::kSmallM : Fp8GemmPath::kCublasLt)
          << m << "x" << n;
      ctx.set_fp8_small_m(false);
      gemm_fp8_block(ctx, p, nullptr);
      EXPECT_EQ(ctx.last_fp8_path(), Fp8GemmPath::kCublasLt) << m << "x" << n;
      WS_CUDA_CHECK(cudaDeviceSynchronize());
    }
  struct Want {
    int64_t n, k;
    int warps_n, cluster_k;
  };
  for (const Want& w : {Want{24576, 1536, 8, 1}, Want{576, 7168, 2, 8}, Want{7168, 16384, 8, 4},
                        Want{36864, 7168, 8, 1}, Want{7168, 18432, 8, 4}, Want{2112, 7168, 8, 8},
                        Want{8, 128, 8, 1}}) {
    const auto c = plan_fp8_small_m(1, w.n, w.k, 132);
    EXPECT_EQ(c.warps_n, w.warps_n) << w.n << "x" << w.k;
    EXPECT_EQ(c.cluster_k, w.cluster_k) << w.n << "x" << w.k;
  }
}

// The GEMV kernel: every V3 decode shape (and odd ones: n not a multiple of 8, one k block) at
// m = 1..8 through gemm_fp8_block's forced path; every k split with beta, padded scale rows and an
// offset scale pointer; rejections name the reason.
TEST(GemmFp8Gemv, DecodeShapesEveryM) {
  WS_REQUIRE_GPU();
  const std::vector<NamedShape> shapes = {{"v3 q_b", 24576, 1536},    {"v3 kv_a", 576, 7168},
                                          {"v3 o_proj", 7168, 16384}, {"v3 gate+up", 36864, 7168},
                                          {"v3 down", 7168, 18432},   {"v3 q_a+kv_a", 2112, 7168},
                                          {"odd 200x384", 200, 384},  {"odd 3x128", 3, 128}};
  uint64_t seed = 30000;
  for (const auto& s : shapes) {
    Fp8Weights wt(s.n, s.k, seed++);
    for (int64_t m : {1, 2, 3, 5, 8}) {
      Fp8Acts a(m, s.k, seed++);
      const auto r = run_and_check(a, wt, 0.f, seed++, nullptr, Fp8GemmPath::kGemv);
      std::printf("[fp8 gemv] %-12s %-22s rel_l2=%.2e max_rel=%.2e\n", s.name,
                  shape_str(m, s.n, s.k).c_str(), r.err.rel_l2, r.err.max_rel);
      expect_ok(r, std::string(s.name) + " " + shape_str(m, s.n, s.k));
    }
  }
}

TEST(GemmFp8Gemv, EveryKSplitWithBetaAndPaddedScales) {
  WS_REQUIRE_GPU();
  uint64_t seed = 31000;
  for (auto [m, n, k] : {std::tuple<int64_t, int64_t, int64_t>{1, 576, 7168},
                         {4, 264, 2048},
                         {8, 136, 1152},
                         {3, 1000, 384}}) {
    Fp8Acts a(m, k, seed++, 1);                           // scale pointer off by one float
    Fp8Weights wt(n, k, seed++, (k + 127) / 128 + 3, 1);  // padded scale rows, offset pointer
    for (int wk : {0, 1, 2, 4, 8})
      for (float beta : {0.f, 1.f}) {
        const auto r = run_and_check(a, wt, beta, seed++, nullptr, Fp8GemmPath::kGemv, wk);
        expect_ok(r, shape_str(m, n, k) + " warps_k=" + std::to_string(wk) +
                         " beta=" + std::to_string(beta));
      }
  }
  Fp8Acts a(2, 256, seed++);
  Fp8Weights wt(64, 256, seed++);
  DeviceBuffer<__nv_bfloat16> y(2 * 64);
  GemmFp8BlockParams p{a.x.get(), a.x_scale(), wt.w.get(), wt.w_scale(), y.get(), 2, 64, 256};
  EXPECT_EQ("", fp8_gemv_unsupported(p));
  EXPECT_THROW(launch_fp8_gemv(p, GemvConfig{3}, nullptr), std::exception);
  GemmFp8BlockParams q = p;
  q.m = 9;
  EXPECT_NE("", fp8_gemv_unsupported(q));
  q = p;
  q.k = 192;
  EXPECT_NE("", fp8_gemv_unsupported(q));
  q = p;
  q.w_scale_ld = 1;
  EXPECT_NE("", fp8_gemv_unsupported(q));
  EXPECT_THROW(launch_fp8_gemv(q, GemvConfig{}, nullptr), std::exception);
  WS_CUDA_CHECK(cudaDeviceSynchronize());
  EXPECT_EQ(plan_gemv_warps_k(36864, 7168, 132), 1);
  EXPECT_EQ(plan_gemv_warps_k(7168, 18432, 132), 2);
  EXPECT_EQ(plan_gemv_warps_k(576, 7168, 132), 8);    // 72 row groups: 7 blocks per slice
  EXPECT_EQ(plan_gemv_warps_k(24576, 1536, 132), 1);  // 3072 row groups
  EXPECT_EQ(plan_gemv_warps_k(4096, 7168, 132), 4);
}

}  // namespace
}  // namespace wideserve::cuda
