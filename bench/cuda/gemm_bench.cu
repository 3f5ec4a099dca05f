// Dense GEMM benchmark (docs/perf.md "CUDA dense GEMM (H200)"). One run measures the physical
// limits first (device copy bandwidth counting read + write, cuBLASLt BF16 and per-tensor FP8 dense
// rates at 8192^3), then the block-scaled FP8 GEMM at DeepSeek-V3 shapes against per-tensor FP8 at
// the same shape, the FP8 fallback path, M = 1 latency and the quantizer's bandwidth.
// Timing: CUDA events around batches of calls after warm-up, median over batches; operands rotate
// over enough copies that the 60 MB L2 cannot hold them.
// --small-m: only the decode comparison (docs/cuda_gemm.md "Small-M kernel"): the weight-read
// floor (w bytes / copy bandwidth measured in the same run), the cuBLASLt path and the small-M
// kernel side by side at m in {1, 4, 16}; --warps-n / --cluster-k force the kernel's split.
#include <cublasLt.h>
#include <cuda_bf16.h>
#include <cuda_fp8.h>
#include <cuda_runtime.h>
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include "backend/cuda/common/cuda_check.h"
#include "backend/cuda/common/device_buffer.h"
#include "backend/cuda/gemm/gemm.h"
#include "backend/cuda/gemm/gemm_fp8_small_m.h"
#include "backend/cuda/gemm/gemm_gemv.h"
#include "backend/cuda/gemm/gemm_testing.h"

using namespace wideserve::cuda;

namespace {

constexpr size_t kRotateBytes = size_t{256} << 20;  // > 4x the 60 MB L2

// Median milliseconds per call of fn(i) (i = call index, for rotation).
double time_ms(const std::function<void(int)>& fn, int batch = 10, int batches = 9) {
  for (int i = 0; i < 3; ++i) fn(i);
  cudaEvent_t a, b;
  WS_CUDA_CHECK(cudaEventCreate(&a));
  WS_CUDA_CHECK(cudaEventCreate(&b));
  std::vector<double> ms;
  int call = 0;
  for (int r = 0; r < batches; ++r) {
    WS_CUDA_CHECK(cudaEventRecord(a));
    for (int i = 0; i < batch; ++i) fn(call++);
    WS_CUDA_CHECK(cudaEventRecord(b));
    WS_CUDA_CHECK(cudaEventSynchronize(b));
    float t = 0;
    WS_CUDA_CHECK(cudaEventElapsedTime(&t, a, b));
    ms.push_back(t / batch);
  }
  WS_CUDA_CHECK(cudaEventDestroy(a));
  WS_CUDA_CHECK(cudaEventDestroy(b));
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

int copies_for(size_t bytes_per_set) {
  return static_cast<int>(
      std::clamp<size_t>(kRotateBytes / std::max<size_t>(bytes_per_set, 1) + 1, 2, 16));
}

// cuBLASLt FP8 e4m3 GEMM with one fp32 scale per tensor (the dense rate block scaling is held to).
class PerTensorFp8 {
 public:
  PerTensorFp8() {
    WS_CUBLAS_CHECK(cublasLtCreate(&handle_));
    ws_ = DeviceBuffer<char>(size_t{32} << 20);
    scales_ = DeviceBuffer<float>(128);  // a at [0], b at [64]: both 256-byte aligned
    gemm_testing::fill_uniform_f32(scales_.get(), 128, 7, 0.01f, 0.02f, nullptr);
  }
  ~PerTensorFp8() {
    release();
    cublasLtDestroy(handle_);
  }
  void prepare(int64_t m, int64_t n, int64_t k) {
    release();
    WS_CUBLAS_CHECK(cublasLtMatmulDescCreate(&desc_, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
    const float* sa = scales_.get();
    const float* sb = scales_.get() + 64;
    WS_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(desc_, CUBLASLT_MATMUL_DESC_TRANSA, &ta, 4));
    WS_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(desc_, CUBLASLT_MATMUL_DESC_TRANSB, &tb, 4));
    WS_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(desc_, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, &sa,
                                                   sizeof(sa)));
    WS_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(desc_, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, &sb,
                                                   sizeof(sb)));
    WS_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&a_, CUDA_R_8F_E4M3, k, n, k));
    WS_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&b_, CUDA_R_8F_E4M3, k, m, k));
    WS_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&c_, CUDA_R_16BF, n, m, n));
    cublasLtMatmulPreference_t pref;
    WS_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
    size_t wsb = ws_.bytes();
    WS_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(
        pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &wsb, sizeof(wsb)));
    cublasLtMatmulHeuristicResult_t res{};
    int found = 0;
    WS_CUBLAS_CHECK(
        cublasLtMatmulAlgoGetHeuristic(handle_, desc_, a_, b_, c_, c_, pref, 1, &res, &found));
    cublasLtMatmulPreferenceDestroy(pref);
    WS_CUDA_ASSERT(found > 0, "no per-tensor FP8 algorithm");
    algo_ = res.algo;
  }
  void run(const void* x, const void* w, void* y) {
    const float alpha = 1.f, beta = 0.f;
    WS_CUBLAS_CHECK(cublasLtMatmul(handle_, desc_, &alpha, w, a_, x, b_, &beta, y, c_, y, c_,
                                   &algo_, ws_.get(), ws_.bytes(), nullptr));
  }

 private:
  void release() {
    if (a_) cublasLtMatrixLayoutDestroy(a_);
    if (b_) cublasLtMatrixLayoutDestroy(b_);
    if (c_) cublasLtMatrixLayoutDestroy(c_);
    if (desc_) cublasLtMatmulDescDestroy(desc_);
    a_ = b_ = c_ = nullptr;
    desc_ = nullptr;
  }
  cublasLtHandle_t handle_ = nullptr;
  cublasLtMatmulDesc_t desc_ = nullptr;
  cublasLtMatrixLayout_t a_ = nullptr, b_ = nullptr, c_ = nullptr;
  cublasLtMatmulAlgo_t algo_{};
  DeviceBuffer<char> ws_;
  DeviceBuffer<float> scales_;
};

// Rotating sets of block-scaled FP8 operands for one (m, n, k).
struct Fp8Sets {
  int64_t m, n, k;
  int copies;
  std::vector<DeviceBuffer<__nv_fp8_e4m3>> x, w;
  std::vector<DeviceBuffer<float>> xs, ws;
  DeviceBuffer<__nv_bfloat16> y;
  Fp8Sets(int64_t m_, int64_t n_, int64_t k_) : m(m_), n(n_), k(k_) {
    const int64_t kb = (k + 127) / 128, nb = (n + 127) / 128;
    copies = copies_for(static_cast<size_t>(m * k + n * k));
    uint64_t seed = 11;
    for (int c = 0; c < copies; ++c) {
      x.emplace_back(static_cast<size_t>(m * k));
      w.emplace_back(static_cast<size_t>(n * k));
      xs.emplace_back(static_cast<size_t>(m * kb));
      ws.emplace_back(static_cast<size_t>(nb * kb));
      gemm_testing::fill_uniform_fp8(x.back().get(), m * k, seed++, 448.f, nullptr);
      gemm_testing::fill_uniform_fp8(w.back().get(), n * k, seed++, 448.f, nullptr);
      gemm_testing::fill_uniform_f32(xs.back().get(), m * kb, seed++, 1e-3f, 4e-3f, nullptr);
      gemm_testing::fill_uniform_f32(ws.back().get(), nb * kb, seed++, 1e-4f, 1e-3f, nullptr);
    }
    y = DeviceBuffer<__nv_bfloat16>(static_cast<size_t>(m * n));
  }
  GemmFp8BlockParams params(int i) const {
    const int c = i % copies;
    return {x[c].get(), xs[c].get(), w[c].get(), ws[c].get(), y.get(), m, n, k};
  }
};

// BF16 operands in enough copies that consecutive calls miss L2 where they are large enough.
struct Bf16Sets {
  int64_t m, n, k;
  int copies;
  std::vector<DeviceBuffer<__nv_bfloat16>> x, w;
  DeviceBuffer<float> y;
  Bf16Sets(int64_t m_, int64_t n_, int64_t k_) : m(m_), n(n_), k(k_) {
    copies = copies_for(static_cast<size_t>(2 * (m * k + n * k)));
    uint64_t seed = 31;
    for (int c = 0; c < copies; ++c) {
      x.emplace_back(static_cast<size_t>(m * k));
      w.emplace_back(static_cast<size_t>(n * k));
      gemm_testing::fill_uniform_bf16(x.back().get(), m * k, seed++, -1.f, 1.f, nullptr);
      gemm_testing::fill_uniform_bf16(w.back().get(), n * k, seed++, -1.f, 1.f, nullptr);
    }
    y = DeviceBuffer<float>(static_cast<size_t>(m * n));
  }
  GemmBf16Params params(int i, bool f32) const {
    const int c = i % copies;
    GemmBf16Params p{x[c].get(), w[c].get(), y.get(), m, n, k};
    p.y_f32 = f32;
    return p;
  }
};

double tflops(int64_t m, int64_t n, int64_t k, double ms) {
  return 2.0 * m * n * k / (ms * 1e-3) / 1e12;
}

const char* path_name(Fp8GemmPath p) {
  return p == Fp8GemmPath::kCublasLt ? "cublaslt"
         : p == Fp8GemmPath::kSmallM ? "small-m"
                                     : "dequant";
}

// Device-to-device copy rate counting read + write (the memory-bound limit), GB/s.
double copy_gbs() {
  const size_t bytes = size_t{2} << 30;
  DeviceBuffer<char> a(bytes), b(bytes);
  WS_CUDA_CHECK(cudaMemset(a.get(), 1, bytes));
  const double ms = time_ms(
      [&](int i) {
        WS_CUDA_CHECK(cudaMemcpyAsync(i % 2 ? a.get() : b.get(), i % 2 ? b.get() : a.get(), bytes,
                                      cudaMemcpyDeviceToDevice, nullptr));
      },
      4, 7);
  return 2.0 * bytes / (ms * 1e-3) / 1e9;
}

double rel_l2_bf16(const DeviceBuffer<__nv_bfloat16>& a, const DeviceBuffer<__nv_bfloat16>& b) {
  auto ha = a.download(), hb = b.download();
  double num = 0, den = 0;
  for (size_t i = 0; i < ha.size(); ++i) {
    const double x = __bfloat162float(ha[i]), y = __bfloat162float(hb[i]);
    num += (x - y) * (x - y);
    den += y * y;
  }
  return std::sqrt(num / (den > 0 ? den : 1.0));
}

// Decode-sized FP8 GEMMs: floor vs cuBLASLt path vs the small-M kernel, plus the relative L2
// difference of the two outputs (a sanity check; the unit tests hold the float64 reference).
void small_m_table(const Fp8SmallMConfig& cfg, int sms) {
  const double bw = copy_gbs();
  std::printf("limit: device copy %.0f GB/s (read+write, 2 GiB); floor = w bytes / this\n", bw);
  BlasContext ctx;
  struct Shape {
    const char* name;
    int64_t n, k;
  };
  const std::vector<Shape> shapes = {{"q_b", 24576, 1536},     {"kv_a", 576, 7168},
                                     {"q_a+kv_a", 2112, 7168}, {"o_proj", 7168, 16384},
                                     {"gate+up", 36864, 7168}, {"down", 7168, 18432}};
  std::printf("\n%-9s %6s %6s %3s | %8s | %9s | %8s %7s %6s | %7s | %5s | %8s\n", "small-m", "N",
              "K", "M", "floor us", "cublas us", "small us", "GB/s", "floor%", "speedup", "split",
              "rel diff");
  for (const auto& s : shapes)
    for (int64_t m : {1, 4, 16}) try {
        Fp8Sets f(m, s.n, s.k);
        const double floor_us = double(s.n) * s.k / (bw * 1e9) * 1e6;
        ctx.set_fp8_path(Fp8GemmPath::kCublasLt);
        const double msc = time_ms([&](int i) { gemm_fp8_block(ctx, f.params(i), nullptr); }, 20);
        const bool cublas_ran = ctx.last_fp8_path() == Fp8GemmPath::kCublasLt;
        ctx.set_fp8_path(Fp8GemmPath::kSmallM);
        auto run_small = [&](const GemmFp8BlockParams& p) {
          if (cfg.warps_n == 0 && cfg.cluster_k == 0)
            gemm_fp8_block(ctx, p, nullptr);  // the path as callers reach it
          else
            launch_fp8_small_m(p, cfg, nullptr);
        };
        const double mss = time_ms([&](int i) { run_small(f.params(i)); }, 20);
        DeviceBuffer<__nv_bfloat16> yc(static_cast<size_t>(m * s.n)), ys(yc.size());
        auto p = f.params(0);
        p.y = ys.get();
        run_small(p);
        ctx.set_fp8_path(Fp8GemmPath::kCublasLt);
        p.y = yc.get();
        gemm_fp8_block(ctx, p, nullptr);
        WS_CUDA_CHECK(cudaDeviceSynchronize());
        const auto plan = plan_fp8_small_m(m, s.n, s.k, sms);
        const int wn = cfg.warps_n != 0 ? cfg.warps_n : plan.warps_n;
        const int ck = cfg.cluster_k != 0 ? cfg.cluster_k : plan.cluster_k;
        std::printf(
            "%-9s %6ld %6ld %3ld | %8.1f | %8.1f%s | %8.1f %7.0f %5.0f%% | %6.2fx | %dx%d | %.1e\n",
            s.name, long(s.n), long(s.k), long(m), floor_us, msc * 1e3, cublas_ran ? " " : "*",
            mss * 1e3, double(s.n) * s.k / (mss * 1e-3) / 1e9, 100.0 * floor_us / (mss * 1e3),
            msc / mss, wn, ck, rel_l2_bf16(ys, yc));
      } catch (const std::exception& e) {
        std::printf("%-9s %6ld %6ld %3ld | failed: %s\n", s.name, long(s.n), long(s.k), long(m),
                    e.what());
      }
  ctx.set_fp8_path(Fp8GemmPath::kAuto);
  std::printf(
      "(* cuBLASLt offered no algorithm: that column is the dequant fallback; split = "
      "warps_n x cluster_k; floor%% = floor / small-M time)\n");
}

// The V3 decode shapes at m = 1, 4 and 8: cuBLASLt, the small-M kernel (planned split and the
// fastest of all 32) and the GEMV kernel (planned k split and the fastest), each against the bytes
// floor measured in the same run.
void sweep_splits(int sms) {
  const double bw = copy_gbs();
  std::printf("limit: device copy %.0f GB/s (read+write, 2 GiB); floor = w bytes / this\n", bw);
  struct Shape {
    const char* name;
    int64_t n, k;
  };
  const std::vector<Shape> shapes = {{"q_b", 24576, 1536},     {"kv_a", 576, 7168},
                                     {"q_a+kv_a", 2112, 7168}, {"o_proj", 7168, 16384},
                                     {"gate+up", 36864, 7168}, {"down", 7168, 18432},
                                     {"sh_gu", 4096, 7168},    {"sh_down", 7168, 2048}};
  std::printf("\n%-9s %6s %6s %2s | %6s | %12s | %-17s | %-17s | %-15s | %-15s\n", "sweep", "N",
              "K", "M", "floor", "cublasLt", "small-M planned", "small-M best", "gemv planned",
              "gemv best");
  BlasContext ctx;
  ctx.set_fp8_path(Fp8GemmPath::kCublasLt);
  for (const auto& s : shapes)
    for (int64_t m : {1, 4, 8}) {
      Fp8Sets f(m, s.n, s.k);
      const double floor_us = double(s.n) * s.k / (bw * 1e9) * 1e6;
      auto us = [&](const std::function<void(const GemmFp8BlockParams&)>& fn) {
        return 1e3 * time_ms([&](int i) { fn(f.params(i)); }, 20);
      };
      auto pct = [&](double t) { return 100.0 * floor_us / t; };
      const double cl = us([&](const GemmFp8BlockParams& p) { gemm_fp8_block(ctx, p, nullptr); });
      const auto plan = plan_fp8_small_m(m, s.n, s.k, sms);
      const double sp =
          us([&](const GemmFp8BlockParams& p) { launch_fp8_small_m(p, plan, nullptr); });
      double sb = 1e30;
      Fp8SmallMConfig sc{};
      for (int wn : {8, 4, 2, 1})
        for (int ck = 1; ck <= 8; ++ck) {
          const Fp8SmallMConfig c{wn, ck};
          const double t =
              us([&](const GemmFp8BlockParams& p) { launch_fp8_small_m(p, c, nullptr); });
          if (t < sb) sb = t, sc = c;
        }
      const int gwk = plan_gemv_warps_k(s.n, s.k, sms);
      const double gp =
          us([&](const GemmFp8BlockParams& p) { launch_fp8_gemv(p, {gwk}, nullptr); });
      double gb = 1e30;
      int gbk = 0;
      for (int wk : {1, 2, 4, 8}) {
        const double t =
            us([&](const GemmFp8BlockParams& p) { launch_fp8_gemv(p, {wk}, nullptr); });
        if (t < gb) gb = t, gbk = wk;
      }
      std::printf(
          "%-9s %6ld %6ld %2ld | %6.1f | %5.1f %4.0f%% | %5.1f %4.0f%% %dx%d | %5.1f %4.0f%% %dx%d "
          "| "
          "%5.1f %4.0f%% k%d | %5.1f %4.0f%% k%d\n",
          s.name, long(s.n), long(s.k), long(m), floor_us, cl, pct(cl), sp, pct(sp), plan.warps_n,
          plan.cluster_k, sb, pct(sb), sc.warps_n, sc.cluster_k, gp, pct(gp), gwk, gb, pct(gb),
          gbk);
    }
  // BF16 (V2-Lite decode shapes and the LM head): cuBLASLt vs the GEMV.
  std::printf("\n%-9s %6s %6s %2s | %6s | %12s | %-15s | %-15s\n", "bf16", "N", "K", "M", "floor",
              "cublasLt", "gemv planned", "gemv best");
  const std::vector<Shape> bshapes = {
      {"q", 3072, 2048},      {"kv_a", 576, 2048},       {"o_proj", 2048, 2048},
      {"router", 64, 2048},   {"gate+up", 21888, 2048},  {"down", 2048, 10944},
      {"q+kv_a", 3648, 2048}, {"lm_head", 129280, 2048}, {"v3 router", 256, 7168}};
  BlasContext bctx;
  bctx.set_bf16_gemv(false);
  for (const auto& s : bshapes)
    for (int64_t m : {1, 4}) {
      Bf16Sets f(m, s.n, s.k);
      const bool f32 = std::string(s.name).find("router") != std::string::npos ||
                       std::string(s.name) == "lm_head";
      const double floor_us = 2.0 * s.n * s.k / (bw * 1e9) * 1e6;
      auto us = [&](const std::function<void(const GemmBf16Params&)>& fn) {
        return 1e3 * time_ms([&](int i) { fn(f.params(i, f32)); }, 20);
      };
      auto pct = [&](double t) { return 100.0 * floor_us / t; };
      const double cl = us([&](const GemmBf16Params& p) { gemm_bf16(bctx, p, nullptr); });
      if (!bf16_gemv_unsupported(f.params(0, f32)).empty()) {
        std::printf("%-9s %6ld %6ld %2ld | %6.1f | %5.1f %4.0f%% | GEMV cannot run this shape\n",
                    s.name, long(s.n), long(s.k), long(m), floor_us, cl, pct(cl));
        continue;
      }
      const int gwk = plan_gemv_warps_k(s.n, s.k, sms);
      const double gp = us([&](const GemmBf16Params& p) { launch_bf16_gemv(p, {gwk}, nullptr); });
      double gb = 1e30;
      int gbk = 0;
      for (int wk : {1, 2, 4, 8}) {
        const double t = us([&](const GemmBf16Params& p) { launch_bf16_gemv(p, {wk}, nullptr); });
        if (t < gb) gb = t, gbk = wk;
      }
      std::printf(
          "%-9s %6ld %6ld %2ld | %6.1f | %5.1f %4.0f%% | %5.1f %4.0f%% k%d | %5.1f %4.0f%% k%d%s\n",
          s.name, long(s.n), long(s.k), long(m), floor_us, cl, pct(cl), gp, pct(gp), gwk, gb,
          pct(gb), gbk, bf16_gemv_preferred(m, s.n, s.k) ? "  (kAuto: gemv)" : "");
    }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"dense GEMM bench"};
  bool small_m = false;
  Fp8SmallMConfig cfg{};
  app.add_flag("--small-m", small_m, "only the decode table: floor vs cuBLASLt vs small-M kernel");
  bool sweep = false;
  app.add_flag(
      "--sweep-splits", sweep,
      "only: cuBLASLt vs small-M (planned, best split) vs GEMV (planned, best) at m 1/4/8");
  app.add_option("--warps-n", cfg.warps_n, "small-M split: warps along n (1,2,4,8; 0 = auto)");
  app.add_option("--cluster-k", cfg.cluster_k, "small-M split: cluster split-K (1..8; 0 = auto)");
  CLI11_PARSE(app, argc, argv);
  setvbuf(stdout, nullptr, _IONBF, 0);  // keep partial output if a later step fails
  cudaDeviceProp prop{};
  WS_CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
  int drv = 0, rt = 0;
  cudaDriverGetVersion(&drv);
  cudaRuntimeGetVersion(&rt);
  std::printf("device: %s, %d SMs, %.0f GiB, driver %d, runtime %d, cublasLt %zu\n", prop.name,
              prop.multiProcessorCount, prop.totalGlobalMem / 1073741824.0, drv, rt,
              cublasLtGetVersion());
  if (sweep) {
    sweep_splits(prop.multiProcessorCount);
    WS_CUDA_CHECK(cudaDeviceSynchronize());
    return 0;
  }
  if (small_m) {
    small_m_table(cfg, prop.multiProcessorCount);
    WS_CUDA_CHECK(cudaDeviceSynchronize());
    return 0;
  }

  // 1. Physical limits.
  std::printf("limit: device copy %.0f GB/s (read+write, 2 GiB)\n", copy_gbs());
  BlasContext ctx;
  PerTensorFp8 pt;
  try {
    {
      const int64_t s = 8192;
      std::vector<DeviceBuffer<__nv_bfloat16>> x, w;
      for (int c = 0; c < 2; ++c) {
        x.emplace_back(s * s);
        w.emplace_back(s * s);
        gemm_testing::fill_uniform_bf16(x.back().get(), s * s, 20 + c, -1, 1, nullptr);
        gemm_testing::fill_uniform_bf16(w.back().get(), s * s, 30 + c, -1, 1, nullptr);
      }
      DeviceBuffer<__nv_bfloat16> y(s * s);
      const double ms = time_ms([&](int i) {
        gemm_bf16(ctx, {x[i % 2].get(), w[i % 2].get(), y.get(), s, s, s}, nullptr);
      });
      std::printf("limit: cuBLASLt bf16 8192^3 random: %.0f TFLOP/s\n", tflops(s, s, s, ms));
      Fp8Sets f(s, s, s);
      pt.prepare(s, s, s);
      const double ms8 = time_ms([&](int i) {
        auto p = f.params(i);
        pt.run(p.x, p.w, p.y);
      });
      std::printf("limit: cuBLASLt fp8 per-tensor 8192^3 random: %.0f TFLOP/s\n",
                  tflops(s, s, s, ms8));
      const double msb = time_ms([&](int i) { gemm_fp8_block(ctx, f.params(i), nullptr); });
      std::printf("block-scaled fp8 8192^3: %.0f TFLOP/s (%s)\n", tflops(s, s, s, msb),
                  path_name(ctx.last_fp8_path()));
    }
  } catch (const std::exception& e) {
    std::printf("8192^3 failed: %s\n", e.what());
  }

  // 2. Block-scaled FP8 at DeepSeek-V3 shapes vs per-tensor FP8 at the same shape.
  struct Shape {
    const char* name;
    int64_t n, k;
  };
  const std::vector<Shape> shapes = {
      {"q_b", 24576, 1536},           {"expert/shared down", 7168, 2048},
      {"shared gate+up", 4096, 7168}, {"q_a+kv_a", 2112, 7168},
      {"o_proj", 7168, 16384},        {"dense gate+up", 36864, 7168}};
  std::printf("\n%-20s %6s %6s %6s | %9s %8s | %9s | %6s\n", "shape", "N", "K", "M", "block TF/s",
              "path", "pt TF/s", "ratio");
  for (const auto& s : shapes) {
    for (int64_t m : {64, 128, 512, 4096, 8192}) try {
        Fp8Sets f(m, s.n, s.k);
        const double msb = time_ms([&](int i) { gemm_fp8_block(ctx, f.params(i), nullptr); });
        const auto path = ctx.last_fp8_path();
        pt.prepare(m, s.n, s.k);
        const double msp = time_ms([&](int i) {
          auto p = f.params(i);
          pt.run(p.x, p.w, p.y);
        });
        const double tb = tflops(m, s.n, s.k, msb), tp = tflops(m, s.n, s.k, msp);
        std::printf("%-20s %6ld %6ld %6ld | %9.0f %8s | %9.0f | %5.0f%%\n", s.name, long(s.n),
                    long(s.k), long(m), tb, path_name(path), tp, 100.0 * tb / tp);
      } catch (const std::exception& e) {
        std::printf("%-20s %6ld %6ld %6ld | failed: %s\n", s.name, long(s.n), long(s.k), long(m),
                    e.what());
      }
  }

  // 3. M = 1 (decode) latency: weight-bandwidth bound.
  try {
    std::printf("\n%-20s %6s %6s | %8s %10s\n", "decode M=1", "N", "K", "us", "weight GB/s");
    for (const auto& s : shapes) {
      Fp8Sets f(1, s.n, s.k);
      const double ms = time_ms([&](int i) { gemm_fp8_block(ctx, f.params(i), nullptr); }, 20, 9);
      std::printf("%-20s %6ld %6ld | %8.1f %10.0f\n", s.name, long(s.n), long(s.k), ms * 1e3,
                  double(s.n) * s.k / (ms * 1e-3) / 1e9);
    }
  } catch (const std::exception& e) {
    std::printf("decode failed: %s\n", e.what());
  }

  // 4. The fallback path (shapes cuBLASLt does not take) and the same shape on cuBLASLt.
  try {
    std::printf("\n%-24s %6s %6s %6s | %9s %9s\n", "fallback", "N", "K", "M", "dequant",
                "cublaslt");
    for (auto [n, k] : {std::pair<int64_t, int64_t>{2048, 10944}, {7168, 2048}}) {
      for (int64_t m : {1, 64, 4096}) {
        Fp8Sets f(m, n, k);
        ctx.set_fp8_path(Fp8GemmPath::kDequant);
        const double msd = time_ms([&](int i) { gemm_fp8_block(ctx, f.params(i), nullptr); });
        double msc = -1;
        if (k % 128 == 0) {
          ctx.set_fp8_path(Fp8GemmPath::kCublasLt);
          msc = time_ms([&](int i) { gemm_fp8_block(ctx, f.params(i), nullptr); });
        }
        ctx.set_fp8_path(Fp8GemmPath::kAuto);
        std::printf("%-24s %6ld %6ld %6ld | %6.1f us %6.1f us\n", "", long(n), long(k), long(m),
                    msd * 1e3, msc * 1e3);
      }
    }
  } catch (const std::exception& e) {
    std::printf("fallback failed: %s\n", e.what());
  }

  // 5. Quantizer bandwidth (bf16 read + e4m3 write + scales).
  try {
    std::printf("\n%-10s %6s %6s | %8s %8s\n", "quantize", "M", "K", "us", "GB/s");
    for (auto [m, k] : {std::pair<int64_t, int64_t>{1, 7168},
                        {64, 7168},
                        {4096, 7168},
                        {8192, 7168},
                        {4096, 18432},
                        {4096, 2048}}) {
      const int copies = copies_for(static_cast<size_t>(m * k * 3));
      std::vector<DeviceBuffer<__nv_bfloat16>> x;
      for (int c = 0; c < copies; ++c) {
        x.emplace_back(static_cast<size_t>(m * k));
        gemm_testing::fill_uniform_bf16(x.back().get(), m * k, 40 + c, -3, 3, nullptr);
      }
      DeviceBuffer<__nv_fp8_e4m3> q(static_cast<size_t>(m * k));
      DeviceBuffer<float> sc(static_cast<size_t>(m * ((k + 127) / 128)));
      const double ms = time_ms(
          [&](int i) {
            launch_quantize_fp8({x[i % copies].get(), m, k, 0, q.get(), sc.get()}, nullptr);
          },
          20, 9);
      const double bytes = double(m) * k * 3 + double(sc.bytes());
      std::printf("%-10s %6ld %6ld | %8.1f %8.0f\n", "", long(m), long(k), ms * 1e3,
                  bytes / (ms * 1e-3) / 1e9);
    }
  } catch (const std::exception& e) {
    std::printf("quantize failed: %s\n", e.what());
  }
  WS_CUDA_CHECK(cudaDeviceSynchronize());
  return 0;
}
