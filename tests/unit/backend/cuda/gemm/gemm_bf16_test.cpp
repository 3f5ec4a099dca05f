// gemm_bf16 against the float64 reference: odd and model shapes, fp32 output, beta (fused
// residual), strided and misaligned operands, m = 0.
#include <cuda_bf16.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "../gpu_test_util.h"
#include "backend/cuda/common/device_buffer.h"
#include "backend/cuda/gemm/gemm.h"
#include "backend/cuda/gemm/gemm_gemv.h"
#include "backend/cuda/gemm/gemm_ref.h"
#include "backend/cuda/gemm/gemm_testing.h"
#include "backend/cuda/ops/ops.h"
#include "gemm_test_util.h"

namespace wideserve::cuda {
namespace {

using test::compare;
using test::download_rows;
using test::sample_indices;

struct Bf16Case {
  int64_t m, n, k;
  int64_t ldx = 0, ldw = 0, ldy = 0;
  bool y_f32 = false;
  float beta = 0.f;
  int64_t x_offset = 0;  // elements: operands that start mid-buffer (slices)
};

std::string describe(const Bf16Case& c) {
  char buf[200];
  std::snprintf(buf, sizeof(buf), "m=%ld n=%ld k=%ld ld=(%ld,%ld,%ld) f32=%d beta=%g off=%ld",
                long(c.m), long(c.n), long(c.k), long(c.ldx), long(c.ldw), long(c.ldy),
                int(c.y_f32), c.beta, long(c.x_offset));
  return buf;
}

// expect_gemv: 1/0 asserts which path ran (GEMV or cuBLASLt), -1 does not care.
template <typename Y>
void check_case(BlasContext& ctx, const Bf16Case& c, uint64_t seed, int expect_gemv) {
  SCOPED_TRACE(describe(c));
  const int64_t ldx = c.ldx ? c.ldx : c.k, ldw = c.ldw ? c.ldw : c.k, ldy = c.ldy ? c.ldy : c.n;
  DeviceBuffer<__nv_bfloat16> xb(static_cast<size_t>(c.m * ldx + c.x_offset));
  DeviceBuffer<__nv_bfloat16> w(static_cast<size_t>(c.n * ldw));
  DeviceBuffer<Y> y(static_cast<size_t>(c.m * ldy));
  gemm_testing::fill_uniform_bf16(xb.get(), xb.size(), seed, -1.f, 1.f, nullptr);
  gemm_testing::fill_uniform_bf16(w.get(), w.size(), seed + 1, -1.f, 1.f, nullptr);
  const auto rows = sample_indices(c.m, 12, seed), cols = sample_indices(c.n, 384, seed + 2);
  std::vector<double> y0;
  if (c.beta != 0.f) {
    if constexpr (sizeof(Y) == 4)
      gemm_testing::fill_uniform_f32(reinterpret_cast<float*>(y.get()), y.size(), seed + 3, -4.f,
                                     4.f, nullptr);
    else
      gemm_testing::fill_uniform_bf16(reinterpret_cast<__nv_bfloat16*>(y.get()), y.size(), seed + 3,
                                      -4.f, 4.f, nullptr);
    y0 = test::pick_cols(download_rows(y.get(), ldy, rows, c.n), c.n, cols);
  } else {
    WS_CUDA_CHECK(cudaMemset(y.get(), 0xFF, y.bytes()));  // NaN poison
  }
  const __nv_bfloat16* x = xb.get() + c.x_offset;
  GemmBf16Params p{x, w.get(), y.get(), c.m, c.n, c.k, c.ldx, c.ldw, c.ldy, c.y_f32, c.beta};
  gemm_bf16(ctx, p, nullptr);
  WS_CUDA_CHECK(cudaDeviceSynchronize());
  if (expect_gemv >= 0) EXPECT_EQ(ctx.last_bf16_gemv(), expect_gemv == 1);

  // Every output element written, padding columns untouched (still the 0xFF poison).
  auto full = y.download();
  int64_t unwritten = 0, clobbered = 0;
  for (int64_t i = 0; i < c.m; ++i)
    for (int64_t j = 0; j < ldy; ++j) {
      const double v = test::to_double(full[i * ldy + j]);
      if (j < c.n) {
        unwritten += std::isfinite(v) ? 0 : 1;
      } else if (c.beta == 0.f) {
        clobbered += std::isnan(v) ? 0 : 1;
      }
    }
  EXPECT_EQ(unwritten, 0);
  EXPECT_EQ(clobbered, 0);

  std::vector<double> xr, wr;
  for (auto v : download_rows(x, ldx, rows, c.k)) xr.push_back(test::to_double(v));
  for (auto v : download_rows(w.get(), ldw, cols, c.k)) wr.push_back(test::to_double(v));
  const auto ref = gemm_nt_ref(xr, wr, static_cast<int64_t>(rows.size()),
                               static_cast<int64_t>(cols.size()), c.k, c.beta, y0);
  const auto out = test::pick_cols(download_rows(y.get(), ldy, rows, c.n), c.n, cols);
  const auto st = compare(out, ref);
  // bf16 output rounding alone is ~1e-3 relative; fp32 output should be far tighter.
  EXPECT_LT(st.rel_l2, sizeof(Y) == 4 ? 1e-4 : 8e-3);
  EXPECT_LT(st.max_rel, sizeof(Y) == 4 ? 1e-3 : 5e-2);
  std::printf("[bf16] %-60s rel_l2=%.2e max_rel=%.2e\n", describe(c).c_str(), st.rel_l2,
              st.max_rel);
}

void check(BlasContext& ctx, const Bf16Case& c, uint64_t seed, int expect_gemv = -1) {
  if (c.y_f32)
    check_case<float>(ctx, c, seed, expect_gemv);
  else
    check_case<__nv_bfloat16>(ctx, c, seed, expect_gemv);
}

TEST(GemmBf16, OddShapes) {
  WS_REQUIRE_GPU();
  BlasContext ctx;
  uint64_t seed = 100;
  for (Bf16Case c : {Bf16Case{1, 1, 1}, Bf16Case{3, 5, 7}, Bf16Case{17, 33, 65},
                     Bf16Case{1, 80, 96}, Bf16Case{130, 257, 129}, Bf16Case{64, 192, 96},
                     Bf16Case{5, 1000, 36}, Bf16Case{257, 129, 1031}}) {
    check(ctx, c, seed++);
    c.y_f32 = true;
    check(ctx, c, seed++);
  }
}

TEST(GemmBf16, BetaFusedResidual) {
  WS_REQUIRE_GPU();
  BlasContext ctx;
  uint64_t seed = 200;
  for (Bf16Case c : {Bf16Case{1, 256, 128}, Bf16Case{33, 7168, 512}, Bf16Case{300, 2048, 2048},
                     Bf16Case{7, 80, 96}}) {
    c.beta = 1.f;
    check(ctx, c, seed++);
    c.y_f32 = true;
    c.beta = 0.5f;
    check(ctx, c, seed++);
  }
}

TEST(GemmBf16, StridedAndOffsetOperands) {
  WS_REQUIRE_GPU();
  BlasContext ctx;
  uint64_t seed = 300;
  // Slices of fused projections: x = columns [1536, 2048) of a [m, 2112] buffer, etc.
  check(ctx, Bf16Case{9, 512, 512, 2112, 0, 0, false, 0.f, 1536}, seed++);
  check(ctx, Bf16Case{64, 256, 128, 192, 160, 300}, seed++);
  check(ctx, Bf16Case{5, 96, 64, 80, 70, 100, false, 0.f, 1}, seed++);  // 2-byte aligned x
  check(ctx, Bf16Case{130, 64, 64, 200, 0, 72, true, 0.f, 3}, seed++);
  check(ctx, Bf16Case{4, 48, 40, 64, 48, 50, false, 1.f, 8}, seed++);
}

TEST(GemmBf16, ModelShapes) {
  WS_REQUIRE_GPU();
  BlasContext ctx;
  uint64_t seed = 400;
  struct Shape {
    int64_t n, k;
    bool f32;
    std::vector<int64_t> ms;
  };
  const std::vector<Shape> shapes = {
      {129280, 7168, true, {1, 64, 257}},  // V3 lm_head (fp32 logits)
      {256, 7168, true, {1, 4096}},        // V3 router
      {102400, 2048, true, {1, 300}},      // V2-Lite lm_head
      {64, 2048, true, {1, 4096}},         // V2-Lite router
      {3072, 2048, false, {1, 512}},       // V2-Lite q_proj (bf16 model)
      {576, 2048, false, {1, 64, 4096}},   // V2-Lite kv_a
      {4096, 512, false, {1, 512}},        // V2-Lite kv_b
      {2048, 2048, false, {1, 4096}},      // V2-Lite o_proj
      {21888, 2048, false, {1, 512}},      // V2-Lite dense gate+up
      {2048, 10944, false, {1, 512}},      // V2-Lite dense down
      {1024, 256, true, {1, 33}},          // tiny lm_head
      {176, 256, false, {1, 64, 300}},     // tiny q_a + kv_a
      {192, 96, false, {1, 64}},           // tiny q_b
      {256, 64, false, {1, 64}},           // tiny kv_b
      {256, 128, false, {1, 64}},          // tiny o_proj
      {1024, 256, false, {1, 64}},         // tiny dense gate+up
      {256, 512, false, {3, 64}},          // tiny dense down
      {240, 128, false, {5}},              // tiny-fp8-dslayout kv_b
      {256, 144, false, {5}},              // tiny-fp8-dslayout o_proj
  };
  for (const auto& s : shapes)
    for (int64_t m : s.ms) check(ctx, Bf16Case{m, s.n, s.k, 0, 0, 0, s.f32}, seed++);
}

// The GEMV kernel (gemm_gemv.h) at m <= 4 and n <= 2048: model shapes, fp32 out, beta, strided
// rows (multiples of 8 elements) and a padded y; kAuto takes it there and cuBLASLt when it is off
// or the shape does not fit (k % 128, unaligned rows, m = 5, n > 2048).
TEST(GemmBf16, GemvAtFewRows) {
  WS_REQUIRE_GPU();
  BlasContext ctx;
  uint64_t seed = 500;
  for (int64_t m : {1, 2, 3, 4})
    for (Bf16Case c :
         {Bf16Case{m, 2048, 2048}, Bf16Case{m, 576, 2048}, Bf16Case{m, 64, 2048},
          Bf16Case{m, 256, 7168}, Bf16Case{m, 200, 384}, Bf16Case{m, 100, 256, 264, 272, 120}}) {
      check(ctx, c, seed++, 1);
      c.y_f32 = true;
      c.beta = 1.f;
      check(ctx, c, seed++, 1);
    }
  check(ctx, Bf16Case{5, 576, 2048}, seed++, 0);
  check(ctx, Bf16Case{1, 3072, 2048}, seed++, 0);      // wide n: cuBLASLt won on the H200
  check(ctx, Bf16Case{1, 576, 2048 + 16}, seed++, 0);  // k % 32 != 0: cuBLASLt
  check(ctx, Bf16Case{1, 576, 2000}, seed++, 0);
  check(ctx, Bf16Case{2, 96, 256, 0, 0, 0, false, 0.f, 1}, seed++, 0);  // 2-byte aligned x
  check(ctx, Bf16Case{1, 129280, 2048, 0, 0, 0, true}, seed++, 0);      // LM head: cuBLASLt
  ctx.set_bf16_gemv(false);
  check(ctx, Bf16Case{1, 576, 2048}, seed++, 0);
  for (int wk : {1, 2, 4, 8}) {
    DeviceBuffer<__nv_bfloat16> x(2 * 512), w(72 * 512), y(2 * 72);
    gemm_testing::fill_uniform_bf16(x.get(), x.size(), seed++, -1.f, 1.f, nullptr);
    gemm_testing::fill_uniform_bf16(w.get(), w.size(), seed++, -1.f, 1.f, nullptr);
    GemmBf16Params p{x.get(), w.get(), y.get(), 2, 72, 512};
    launch_bf16_gemv(p, GemvConfig{wk}, nullptr);
    DeviceBuffer<__nv_bfloat16> yc(2 * 72);
    GemmBf16Params q = p;
    q.y = yc.get();
    gemm_bf16(ctx, q, nullptr);
    const auto a = y.download(), b = yc.download();
    double num = 0, den = 0;
    for (size_t i = 0; i < a.size(); ++i) {
      const double d = __bfloat162float(a[i]) - __bfloat162float(b[i]);
      num += d * d;
      den += double(__bfloat162float(b[i])) * __bfloat162float(b[i]);
    }
    EXPECT_LT(std::sqrt(num / den), 8e-3) << "warps_k=" << wk;
  }
  // y's old value read before the wait (GemvConfig::y_early): the bits of the plain GEMV.
  for (int64_t m : {1, 4}) {
    DeviceBuffer<__nv_bfloat16> x(m * 2048), w(2048 * 2048);
    DeviceBuffer<float> y0(m * 2048), y1(m * 2048);
    gemm_testing::fill_uniform_bf16(x.get(), x.size(), seed++, -1.f, 1.f, nullptr);
    gemm_testing::fill_uniform_bf16(w.get(), w.size(), seed++, -1.f, 1.f, nullptr);
    std::vector<float> h(m * 2048);
    for (size_t i = 0; i < h.size(); ++i) h[i] = 0.01f * static_cast<float>(i % 977) - 3.f;
    y0.upload(h);
    y1.upload(h);
    GemmBf16Params p{x.get(), w.get(), y0.get(), m, 2048, 2048};
    p.y_f32 = true;
    p.beta = 1.f;
    launch_bf16_gemv(p, GemvConfig{}, nullptr);
    GemvConfig early;
    early.y_early = true;
    p.y = y1.get();
    launch_bf16_gemv(p, early, nullptr);
    const auto a = y0.download(), b = y1.download();
    EXPECT_EQ(0, std::memcmp(a.data(), b.data(), a.size() * sizeof(float))) << "m=" << m;
    p.beta = 0.f;  // nothing to read early
    EXPECT_THROW(launch_bf16_gemv(p, early, nullptr), std::exception);
  }
  GemmBf16Params bad{nullptr, nullptr, nullptr, 5, 64, 128};
  EXPECT_NE("", bf16_gemv_unsupported(bad));
  WS_CUDA_CHECK(cudaDeviceSynchronize());
}

// k % 128 != 0 (V2-Lite's dense down projection, k = 10944): the GEMV's last k block is partial
// and its missing chunks count as zeros; k % 32 is what it needs.
TEST(GemmBf16, GemvPartialLastKBlock) {
  WS_REQUIRE_GPU();
  BlasContext ctx;
  uint64_t seed = 560;
  for (int64_t m : {1, 2, 4})
    for (Bf16Case c : {Bf16Case{m, 2048, 10944}, Bf16Case{m, 200, 160}, Bf16Case{m, 72, 4064},
                       Bf16Case{m, 64, 224, 256, 232}}) {
      check(ctx, c, seed++, 1);
      c.y_f32 = true;
      c.beta = 1.f;
      check(ctx, c, seed++, 1);
    }
  WS_CUDA_CHECK(cudaDeviceSynchronize());
}

// Outputs wider than gemm_bf16 gives the GEMV (the LM head, a dense gate_up), launched directly:
// within rounding of cuBLASLt's. (Measured in the model and not used there: V2-Lite batch 1
// equal, V3's LM head slower; docs/perf.md, session 20.)
TEST(GemmBf16, GemvWideOutputs) {
  WS_REQUIRE_GPU();
  BlasContext ctx;
  ctx.set_bf16_gemv(false);
  uint64_t seed = 580;
  for (auto [m, n, k, f32] : {std::tuple<int64_t, int64_t, int64_t, bool>{1, 129280, 2048, true},
                              {2, 21888, 2048, false},
                              {1, 4104, 384, true}}) {
    DeviceBuffer<__nv_bfloat16> x(m * k), w(n * k);
    DeviceBuffer<float> y(m * n), yc(m * n);
    gemm_testing::fill_uniform_bf16(x.get(), x.size(), seed++, -1.f, 1.f, nullptr);
    gemm_testing::fill_uniform_bf16(w.get(), w.size(), seed++, -1.f, 1.f, nullptr);
    GemmBf16Params p{x.get(), w.get(), y.get(), m, n, k};
    p.y_f32 = f32;
    ASSERT_EQ("", bf16_gemv_unsupported(p));
    launch_bf16_gemv(p, GemvConfig{}, nullptr);
    GemmBf16Params q = p;
    q.y = yc.get();
    gemm_bf16(ctx, q, nullptr);
    auto values = [&](DeviceBuffer<float>& b) {
      std::vector<double> v;
      if (f32) {
        for (float f : b.download()) v.push_back(f);
      } else {
        std::vector<__nv_bfloat16> h(m * n);
        WS_CUDA_CHECK(cudaMemcpy(h.data(), b.get(), h.size() * 2, cudaMemcpyDeviceToHost));
        for (auto e : h) v.push_back(__bfloat162float(e));
      }
      return v;
    };
    const auto a = values(y), r = values(yc);
    double num = 0, den = 0;
    for (size_t i = 0; i < a.size(); ++i) {
      num += (a[i] - r[i]) * (a[i] - r[i]);
      den += r[i] * r[i];
    }
    EXPECT_LT(std::sqrt(num / den), f32 ? 1e-4 : 8e-3) << "m=" << m << " n=" << n << " k=" << k;
  }
  WS_CUDA_CHECK(cudaDeviceSynchronize());
}

// Two GEMVs of one x in one launch (V2-Lite's q and kv_a): with the same k split, each output
// equals its matrix's GEMV alone bit for bit; gemm_bf16_pair falls back to two calls past m = 4.
TEST(GemmBf16, GemvPairEqualsTwoGemvs) {
  WS_REQUIRE_GPU();
  BlasContext ctx;
  uint64_t seed = 700;
  for (auto [n1, n2, k] : {std::tuple<int64_t, int64_t, int64_t>{3072, 576, 2048}, {200, 136, 384}})
    for (int64_t m : {1, 2, 4}) {
      DeviceBuffer<__nv_bfloat16> x(m * k), w1(n1 * k), w2(n2 * k), y1(m * n1), y2(m * n2),
          r1(m * n1), r2(m * n2);
      gemm_testing::fill_uniform_bf16(x.get(), x.size(), seed++, -1.f, 1.f, nullptr);
      gemm_testing::fill_uniform_bf16(w1.get(), w1.size(), seed++, -1.f, 1.f, nullptr);
      gemm_testing::fill_uniform_bf16(w2.get(), w2.size(), seed++, -1.f, 1.f, nullptr);
      const GemmBf16Params a{x.get(), w1.get(), y1.get(), m, n1, k};
      const GemmBf16Params b{x.get(), w2.get(), y2.get(), m, n2, k};
      ASSERT_EQ("", bf16_gemv_pair_unsupported(a, b));
      for (int wk : {1, 2, 4, 8}) {
        launch_bf16_gemv_pair(a, b, GemvConfig{wk}, nullptr);
        GemmBf16Params ra = a, rb = b;
        ra.y = r1.get();
        rb.y = r2.get();
        launch_bf16_gemv(ra, GemvConfig{wk}, nullptr);
        launch_bf16_gemv(rb, GemvConfig{wk}, nullptr);
        const auto g1 = y1.download(), g2 = y2.download(), e1 = r1.download(), e2 = r2.download();
        EXPECT_EQ(0, std::memcmp(g1.data(), e1.data(), g1.size() * 2)) << n1 << " wk=" << wk;
        EXPECT_EQ(0, std::memcmp(g2.data(), e2.data(), g2.size() * 2)) << n2 << " wk=" << wk;
      }
      gemm_bf16_pair(ctx, a, b, nullptr);  // the planned split, through the GEMV
      EXPECT_TRUE(ctx.last_bf16_gemv());
    }
  // Past m = 4 the pair is two gemm_bf16 calls; a first n off a multiple of 8 is rejected.
  DeviceBuffer<__nv_bfloat16> x(5 * 256), w(64 * 256), y1(5 * 64), y2(5 * 64);
  gemm_testing::fill_uniform_bf16(x.get(), x.size(), seed++, -1.f, 1.f, nullptr);
  gemm_testing::fill_uniform_bf16(w.get(), w.size(), seed++, -1.f, 1.f, nullptr);
  GemmBf16Params a{x.get(), w.get(), y1.get(), 5, 64, 256},
      b{x.get(), w.get(), y2.get(), 5, 64, 256};
  gemm_bf16_pair(ctx, a, b, nullptr);
  EXPECT_FALSE(ctx.last_bf16_gemv());
  const auto g1 = y1.download(), g2 = y2.download();
  EXPECT_EQ(0, std::memcmp(g1.data(), g2.data(), g1.size() * 2));
  a.m = b.m = 1;
  a.n = 60;
  EXPECT_NE("", bf16_gemv_pair_unsupported(a, b));
  b.x = w.get();
  a.n = 64;
  EXPECT_NE("", bf16_gemv_pair_unsupported(a, b));
  WS_CUDA_CHECK(cudaDeviceSynchronize());
}

// The pair with the input RMSNorm made while staging (V2-Lite's input norm, q and kv_a): the
// same bits as launch_rms_norm then the pair, up to k = 2048 (launch_rms_norm's vector kernel
// gives each thread one 8-wide chunk there, as the staging does); wider rows are refused.
TEST(GemmBf16, GemvPairWithRmsNormEqualsNormThenPair) {
  WS_REQUIRE_GPU();
  uint64_t seed = 900;
  for (auto [n1, n2, k] :
       {std::tuple<int64_t, int64_t, int64_t>{3072, 576, 2048}, {200, 136, 384}, {64, 64, 1024}})
    for (int64_t m : {1, 2, 4}) {
      DeviceBuffer<float> h(m * k);
      DeviceBuffer<__nv_bfloat16> nw(k), xn(m * k), w1(n1 * k), w2(n2 * k), y1(m * n1), y2(m * n2),
          r1(m * n1), r2(m * n2);
      gemm_testing::fill_uniform_bf16(nw.get(), nw.size(), seed++, 0.5f, 1.5f, nullptr);
      gemm_testing::fill_uniform_bf16(w1.get(), w1.size(), seed++, -1.f, 1.f, nullptr);
      gemm_testing::fill_uniform_bf16(w2.get(), w2.size(), seed++, -1.f, 1.f, nullptr);
      std::vector<float> hv = test::randn(m * k, seed++, 3.f);
      h.upload(hv);
      const float eps = 1e-6f;
      launch_rms_norm({nullptr, h.get(), nullptr, nw.get(), xn.get(), m, k, k, k, eps}, nullptr);
      const GemmBf16Params a{xn.get(), w1.get(), r1.get(), m, n1, k};
      const GemmBf16Params b{xn.get(), w2.get(), r2.get(), m, n2, k};
      launch_bf16_gemv_pair(a, b, GemvConfig{}, nullptr);
      GemmBf16Params fa = a, fb = b;
      fa.x = fb.x = nullptr;  // ignored: the norm's rows are the input
      fa.y = y1.get();
      fb.y = y2.get();
      const GemvRmsNorm norm{h.get(), nw.get(), eps};
      ASSERT_EQ("", gemv_rms_norm_unsupported(norm, k));
      launch_bf16_gemv_pair_normed(fa, fb, norm, GemvConfig{}, nullptr);
      const auto g1 = y1.download(), g2 = y2.download(), e1 = r1.download(), e2 = r2.download();
      EXPECT_EQ(0, std::memcmp(g1.data(), e1.data(), g1.size() * 2)) << "m=" << m << " k=" << k;
      EXPECT_EQ(0, std::memcmp(g2.data(), e2.data(), g2.size() * 2)) << "m=" << m << " k=" << k;
    }
  DeviceBuffer<float> h(4096);
  DeviceBuffer<__nv_bfloat16> nw(4096);
  EXPECT_NE("", gemv_rms_norm_unsupported({h.get(), nw.get(), 1e-6f}, 4096));
  EXPECT_NE("", gemv_rms_norm_unsupported({nullptr, nw.get(), 1e-6f}, 2048));
  WS_CUDA_CHECK(cudaDeviceSynchronize());
}

// Per-head GEMVs (MLA's W_UV in kv_b's layout): each head's outputs equal that head's GEMV alone
// with the same k split, bit for bit; shapes it cannot take are named.
TEST(GemmBf16, GemvHeadsEqualsOneGemvPerHead) {
  WS_REQUIRE_GPU();
  uint64_t seed = 800;
  for (auto [heads, m] : {std::pair<int64_t, int64_t>{16, 1}, {16, 4}, {128, 1}, {128, 2}}) {
    const int64_t rows = 128, k = 512, nope = 128, stride = (nope + rows) * k;
    DeviceBuffer<__nv_bfloat16> x(m * heads * k), kvb(heads * stride), y(m * heads * rows),
        r(m * heads * rows);
    gemm_testing::fill_uniform_bf16(x.get(), x.size(), seed++, -1.f, 1.f, nullptr);
    gemm_testing::fill_uniform_bf16(kvb.get(), kvb.size(), seed++, -1.f, 1.f, nullptr);
    const GemvHeadsParams p{
        x.get(), kvb.get() + nope * k, y.get(), m, heads, rows, k, heads * k, k, k,
        stride,  heads * rows};
    ASSERT_EQ("", bf16_gemv_heads_unsupported(p));
    for (int wk : {1, 2, 4, 8}) {
      launch_bf16_gemv_heads(p, GemvConfig{wk}, nullptr);
      for (int64_t h = 0; h < heads; ++h) {
        GemmBf16Params q{
            x.get() + h * k, kvb.get() + h * stride + nope * k, r.get() + h * rows, m, rows, k};
        q.ldx = heads * k;
        q.ldy = heads * rows;
        launch_bf16_gemv(q, GemvConfig{wk}, nullptr);
      }
      const auto a = y.download(), b = r.download();
      EXPECT_EQ(0, std::memcmp(a.data(), b.data(), a.size() * 2))
          << heads << " heads, m=" << m << ", warps_k=" << wk;
    }
  }
  DeviceBuffer<__nv_bfloat16> x(4 * 512), w(2 * 96 * 512), y(4 * 192);
  GemvHeadsParams bad{x.get(), w.get(), y.get(), 1, 2, 96, 512, 1024, 512, 512, 96 * 512, 192};
  EXPECT_NE("", bf16_gemv_heads_unsupported(bad));  // 96 rows per head
  bad.rows = 64;
  bad.m = 5;
  EXPECT_NE("", bf16_gemv_heads_unsupported(bad));
  bad.m = 1;
  bad.x_head_stride = 100;
  EXPECT_NE("", bf16_gemv_heads_unsupported(bad));
  WS_CUDA_CHECK(cudaDeviceSynchronize());
}

TEST(GemmBf16, ZeroRowsIsNoOp) {
  WS_REQUIRE_GPU();
  BlasContext ctx;
  GemmBf16Params p{nullptr, nullptr, nullptr, 0, 64, 64};
  EXPECT_NO_THROW(gemm_bf16(ctx, p, nullptr));
  EXPECT_EQ(ctx.plan_count(), 0u);
  p.k = 0;
  EXPECT_THROW(gemm_bf16(ctx, p, nullptr), std::exception);
}

TEST(GemmBf16, PlansAreCachedPerShape) {
  WS_REQUIRE_GPU();
  BlasContext ctx;
  DeviceBuffer<__nv_bfloat16> x(64 * 128), w(256 * 128), y(64 * 256);
  gemm_testing::fill_uniform_bf16(x.get(), x.size(), 1, -1, 1, nullptr);
  gemm_testing::fill_uniform_bf16(w.get(), w.size(), 2, -1, 1, nullptr);
  GemmBf16Params p{x.get(), w.get(), y.get(), 64, 256, 128};
  gemm_bf16(ctx, p, nullptr);
  gemm_bf16(ctx, p, nullptr);
  EXPECT_EQ(ctx.plan_count(), 1u);
  p.m = 32;
  gemm_bf16(ctx, p, nullptr);
  EXPECT_EQ(ctx.plan_count(), 2u);
  WS_CUDA_CHECK(cudaDeviceSynchronize());
}

// Autotuned plans: the timed candidates write scratch, so a beta != 0 call still adds exactly
// once, and every chosen algorithm matches the reference.
TEST(GemmBf16, AutotunedPlansStayCorrect) {
  WS_REQUIRE_GPU();
  BlasContext ctx;
  ctx.set_gemm_autotune(8);
  uint64_t seed = 700;
  for (Bf16Case c :
       {Bf16Case{256, 7168, 2048}, Bf16Case{300, 2048, 2048}, Bf16Case{64, 4096, 512}}) {
    check(ctx, c, seed++, 0);
    c.beta = 1.f;
    check(ctx, c, seed++, 0);
    c.y_f32 = true;
    check(ctx, c, seed++, 0);
  }
  ASSERT_FALSE(ctx.tune_records().empty());
  for (const auto& r : ctx.tune_records()) {
    EXPECT_FALSE(r.fp8);
    EXPECT_GT(r.candidates, 1);
    EXPECT_GE(r.chosen, 0);
    EXPECT_LT(r.chosen, r.candidates);
    EXPECT_GT(r.best_us, 0.f);
    EXPECT_LE(r.best_us, r.heuristic_us);
  }
}

}  // namespace
}  // namespace wideserve::cuda
