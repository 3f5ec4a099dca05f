// MoE kernel benchmark (one run): first the limits of this card (device copy bandwidth, cuBLASLt
// dense BF16 / FP8 per-tensor / FP8 block-scaled rates), then the grouped expert GEMMs at
// prefill-sized groups (DeepSeek-V3 FP8 dims for an EP8 slice of 32 experts; V2-Lite BF16 dims for
// 64 experts) and the routing / align / gather / silu / combine kernels at T = 4096.
// Prints a table; the ratio grouped FP8 / dense FP8 (per-tensor) is the issue's target (>= 60%).
// --paths: only the old (MoePath::kLarge) vs new (kSmall) routing and align kernels for V3 at
// T = 1 .. 4096, side by side, back-to-back on a stream and replayed from a CUDA graph, with the
// launch floor (empty kernel) measured the same way and a bit-identity check of the outputs.
// --small: only the fused small-batch MoE (moe_small.h) at V2-Lite BF16 and V3 FP8 dims, T = 1..8,
// against the bytes it must read (distinct experts touched + shared) at the copy rate.
// --decode: only the V3 FP8 grouped expert GEMMs at decode-sized groups (256 experts, top-8,
// T = 32..1024 tokens routed uniformly), the row-tiled kernel vs the swapped-operand one, against
// the card's read-only rate measured in the same run.
#include <cublasLt.h>
#include <cuda_bf16.h>
#include <cuda_fp8.h>
#include <cuda_runtime.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "backend/cuda/common/cuda_check.h"
#include "backend/cuda/common/device_buffer.h"
#include "backend/cuda/gemm/gemm.h"
#include "backend/cuda/moe/moe.h"
#include "backend/cuda/moe/moe_small.h"

using namespace wideserve::cuda;

namespace {

// Deterministic pseudo-random fill on the device (never zeros: zeros run faster than real data).
__device__ __forceinline__ float hash_uniform(uint64_t i, uint32_t seed) {
  uint64_t x = i * 0x9E3779B97F4A7C15ull + seed * 0xBF58476D1CE4E5B9ull;
  x ^= x >> 31;
  x *= 0x94D049BB133111EBull;
  x ^= x >> 29;
  return static_cast<float>(x & 0xFFFFFF) / 16777216.0f * 2.0f - 1.0f;  // [-1, 1)
}
template <typename T>
__global__ void fill_kernel(T* p, size_t n, uint32_t seed, float scale, float offset) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n;
       i += size_t(gridDim.x) * blockDim.x)
    p[i] = T(hash_uniform(i, seed) * scale + offset);
}
template <typename T>
void fill(DeviceBuffer<T>& b, uint32_t seed, float scale = 1.0f, float offset = 0.0f) {
  fill_kernel<T><<<1024, 256>>>(b.get(), b.size(), seed, scale, offset);
  WS_CUDA_CHECK_LAUNCH();
}

// Median time in ms of `fn` over trials of `reps` launches (events around each trial).
template <class F>
double time_ms(F&& fn, int reps = 20, int trials = 7) {
  for (int i = 0; i < 3; ++i) fn();
  cudaEvent_t a, b;
  WS_CUDA_CHECK(cudaEventCreate(&a));
  WS_CUDA_CHECK(cudaEventCreate(&b));
  std::vector<double> t;
  for (int tr = 0; tr < trials; ++tr) {
    WS_CUDA_CHECK(cudaEventRecord(a));
    for (int i = 0; i < reps; ++i) fn();
    WS_CUDA_CHECK(cudaEventRecord(b));
    WS_CUDA_CHECK(cudaEventSynchronize(b));
    float ms = 0;
    WS_CUDA_CHECK(cudaEventElapsedTime(&ms, a, b));
    t.push_back(ms / reps);
  }
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

// cuBLASLt FP8 e4m3 GEMM with per-tensor scales: y[M,N] = x[M,K] w[N,K]^T, bf16 out.
struct Fp8TensorGemm {
  cublasLtHandle_t h{};
  cublasLtMatmulDesc_t desc{};
  cublasLtMatrixLayout_t la{}, lb{}, lc{};
  cublasLtMatmulAlgo_t algo{};
  DeviceBuffer<char> ws{32u << 20};
  DeviceBuffer<float> scales{128};  // a at [0], b at [64]: cuBLASLt wants aligned scale pointers
  int64_t m, n, k;
  Fp8TensorGemm(int64_t m_, int64_t n_, int64_t k_) : m(m_), n(n_), k(k_) {
    WS_CUBLAS_CHECK(cublasLtCreate(&h));
    WS_CUBLAS_CHECK(cublasLtMatmulDescCreate(&desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
    WS_CUBLAS_CHECK(
        cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof(ta)));
    WS_CUBLAS_CHECK(
        cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof(tb)));
    std::vector<float> sc(128, 0.01f);
    scales.upload(sc);
    const float* sa = scales.get();
    const float* sb = scales.get() + 64;
    WS_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, &sa,
                                                   sizeof(sa)));
    WS_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, &sb,
                                                   sizeof(sb)));
    WS_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&la, CUDA_R_8F_E4M3, k, n, k));
    WS_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&lb, CUDA_R_8F_E4M3, k, m, k));
    WS_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&lc, CUDA_R_16BF, n, m, n));
    cublasLtMatmulPreference_t pref;
    WS_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
    size_t wsb = ws.bytes();
    WS_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(
        pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &wsb, sizeof(wsb)));
    cublasLtMatmulHeuristicResult_t res{};
    int found = 0;
    WS_CUBLAS_CHECK(cublasLtMatmulAlgoGetHeuristic(h, desc, la, lb, lc, lc, pref, 1, &res, &found));
    WS_CUDA_ASSERT(found == 1, "no cuBLASLt FP8 algorithm");
    algo = res.algo;
    cublasLtMatmulPreferenceDestroy(pref);
  }
  ~Fp8TensorGemm() {
    cublasLtMatrixLayoutDestroy(la);
    cublasLtMatrixLayoutDestroy(lb);
    cublasLtMatrixLayoutDestroy(lc);
    cublasLtMatmulDescDestroy(desc);
    cublasLtDestroy(h);
  }
  void run(const void* x, const void* w, void* y) {
    const float alpha = 1.f, beta = 0.f;
    WS_CUBLAS_CHECK(cublasLtMatmul(h, desc, &alpha, w, la, x, lb, &beta, y, lc, y, lc, &algo,
                                   ws.get(), ws.bytes(), nullptr));
  }
};

double tflops(double flop, double ms) {
  return flop / (ms * 1e-3) / 1e12;
}

struct DenseRates {
  double bf16, fp8_tensor, fp8_block;
};

DenseRates dense(BlasContext& ctx, int64_t m, int64_t n, int64_t k) {
  DeviceBuffer<__nv_bfloat16> x(m * k), w(n * k), y(m * n);
  fill(x, 1);
  fill(w, 2, 0.05f);
  DeviceBuffer<__nv_fp8_e4m3> xq(m * k), wq(n * k);
  fill(xq, 3, 400.f);
  fill(wq, 4, 400.f);
  DeviceBuffer<float> xs((k / 128) * m), wsc((n / 128) * (k / 128));
  fill(xs, 5, 0.001f, 0.002f);
  fill(wsc, 6, 0.001f, 0.002f);
  const double flop = 2.0 * m * n * k;
  DenseRates r{};
  r.bf16 = tflops(flop, time_ms([&] {
                    gemm_bf16(ctx, {x.get(), w.get(), y.get(), m, n, k}, nullptr);
                  }));
  Fp8TensorGemm g(m, n, k);
  r.fp8_tensor = tflops(flop, time_ms([&] { g.run(xq.get(), wq.get(), y.get()); }));
  GemmFp8BlockParams bp{xq.get(), xs.get(), wq.get(), wsc.get(), y.get(), m, n, k};
  r.fp8_block = tflops(flop, time_ms([&] { gemm_fp8_block(ctx, bp, nullptr); }));
  std::printf("dense M=%ld N=%ld K=%ld: bf16 %.0f, fp8 per-tensor %.0f, fp8 block %.0f TFLOP/s\n",
              long(m), long(n), long(k), r.bf16, r.fp8_tensor, r.fp8_block);
  return r;
}

// Offsets of E experts with `per` rows each (uniform) or a skewed split with the same total.
std::vector<int32_t> make_offsets(int64_t E, int64_t per, bool skew) {
  std::vector<int32_t> off(E + 1, 0);
  for (int64_t e = 0; e < E; ++e) {
    int64_t n = per;
    if (skew) n = (e % 4 == 0) ? per * 5 / 2 : per / 2;  // same mean: (2.5 + 3 * 0.5) / 4 = 1
    off[e + 1] = off[e] + static_cast<int32_t>(n);
  }
  return off;
}

double grouped(bool fp8, int64_t E, int64_t per, int64_t n, int64_t k, bool skew) {
  const auto off = make_offsets(E, per, skew);
  const int64_t R = off[E];
  DeviceBuffer<int32_t> d_off(E + 1);
  d_off.upload(off);
  DeviceBuffer<__nv_bfloat16> d(R * n);
  DeviceBuffer<char> ws(grouped_gemm_workspace_bytes(E));
  GroupedGemmParams p{};
  p.d = d.get();
  p.expert_offsets = d_off.get();
  p.num_experts = E;
  p.n = n;
  p.k = k;
  p.max_rows = R;
  p.workspace = ws.get();
  double ms;
  if (fp8) {
    DeviceBuffer<__nv_fp8_e4m3> a(R * k), b(E * n * k);
    DeviceBuffer<float> sa(R * (k / 128)), sb(E * (n / 128) * (k / 128));
    fill(a, 7, 400.f);
    fill(b, 8, 400.f);
    fill(sa, 9, 0.001f, 0.002f);
    fill(sb, 10, 0.001f, 0.002f);
    p.a = a.get();
    p.b = b.get();
    p.a_scales = sa.get();
    p.b_scales = sb.get();
    ms = time_ms([&] { launch_grouped_gemm_fp8(p, nullptr); }, 10);
  } else {
    DeviceBuffer<__nv_bfloat16> a(R * k), b(E * n * k);
    fill(a, 7);
    fill(b, 8, 0.05f);
    p.a = a.get();
    p.b = b.get();
    ms = time_ms([&] { launch_grouped_gemm_bf16(p, nullptr); }, 10);
  }
  const double rate = tflops(2.0 * R * n * k, ms);
  std::printf("grouped %s E=%ld rows/expert=%ld%s N=%ld K=%ld: %.3f ms, %.0f TFLOP/s\n",
              fp8 ? "fp8 " : "bf16", long(E), long(per), skew ? " (skewed)" : "", long(n), long(k),
              ms, rate);
  return rate;
}

struct Row {
  std::string what;
  double value;
  const char* unit;
};

// ---- --paths: old vs new routing / align ----

__global__ void empty_kernel() {}

using StreamFn = std::function<void(cudaStream_t)>;

// Median us per call of fn: `reps` calls back to back on s, or (graph) one graph of `reps`
// captured calls replayed; events on s around each trial.
double us_per_call(const StreamFn& fn, cudaStream_t s, bool graph, int reps = 20, int trials = 9) {
  cudaGraphExec_t exec = nullptr;
  if (graph) {
    cudaGraph_t g;
    WS_CUDA_CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
    for (int i = 0; i < reps; ++i) fn(s);
    WS_CUDA_CHECK(cudaStreamEndCapture(s, &g));
    WS_CUDA_CHECK(cudaGraphInstantiate(&exec, g, 0));
    WS_CUDA_CHECK(cudaGraphDestroy(g));
  }
  const auto once = [&] {
    if (graph) {
      WS_CUDA_CHECK(cudaGraphLaunch(exec, s));
    } else {
      for (int i = 0; i < reps; ++i) fn(s);
    }
  };
  for (int i = 0; i < 2; ++i) once();
  cudaEvent_t a, b;
  WS_CUDA_CHECK(cudaEventCreate(&a));
  WS_CUDA_CHECK(cudaEventCreate(&b));
  std::vector<double> t;
  for (int tr = 0; tr < trials; ++tr) {
    WS_CUDA_CHECK(cudaEventRecord(a, s));
    once();
    WS_CUDA_CHECK(cudaEventRecord(b, s));
    WS_CUDA_CHECK(cudaEventSynchronize(b));
    float ms = 0;
    WS_CUDA_CHECK(cudaEventElapsedTime(&ms, a, b));
    t.push_back(ms * 1e3 / reps);
  }
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  if (exec) cudaGraphExecDestroy(exec);
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

int run_paths() {
  cudaStream_t s;
  WS_CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  const StreamFn empty = [](cudaStream_t st) {
    empty_kernel<<<1, 32, 0, st>>>();
    WS_CUDA_CHECK_LAUNCH();
  };
  std::printf("launch floor (empty kernel): stream %.2f us, graph %.2f us per launch\n",
              us_per_call(empty, s, false), us_per_call(empty, s, true));
  std::printf(
      "\nV3 (E 256, top-8, 8 groups / 4, sigmoid + bias, noaux_tc), us per call, old = kLarge, "
      "new = kSmall;\nstream = 20 launches back to back, graph = one graph of 20 calls; align: "
      "all 256 experts local\n");
  std::printf("%6s | %-27s | %-27s | %-19s | %s\n", "", "routing", "align", "routing + align",
              "outputs");
  std::printf("%6s | %6s %6s %6s %6s | %6s %6s %6s %6s | %9s %9s |\n", "T", "old", "new", "old",
              "new", "old", "new", "old", "new", "old", "new");
  std::printf("%6s | %6s %6s %6s %6s | %6s %6s %6s %6s | %9s %9s |\n", "", "stream", "stream",
              "graph", "graph", "stream", "stream", "graph", "graph", "graph", "graph");
  const int64_t E = 256, K = 8;
  bool all_same = true;
  for (const int64_t T : {1, 32, 64, 128, 256, 4096}) {
    DeviceBuffer<float> logits(T * E), bias(E), w_old(T * K), w_new(T * K);
    DeviceBuffer<int32_t> ids_old(T * K), ids_new(T * K);
    fill(logits, 11 + static_cast<uint32_t>(T), 3.0f);
    fill(bias, 12, 0.1f);
    MoeRoutingParams rp{logits.get(), bias.get(),    T,          E, K, 8, 4, 1, 2, true,
                        2.5f,         ids_old.get(), w_old.get()};
    MoeRoutingParams rp_new = rp;
    rp_new.topk_ids = ids_new.get();
    rp_new.topk_weights = w_new.get();
    DeviceBuffer<int32_t> counts(E), offsets(E + 1), s2r(T * K), r2s(T * K);
    DeviceBuffer<int32_t> counts2(E), offsets2(E + 1), s2r2(T * K), r2s2(T * K);
    DeviceBuffer<char> aws(moe_align_workspace_bytes(T, K, E));
    const MoeAlignParams ap{ids_old.get(), T,         K,         E,        0, counts.get(),
                            offsets.get(), s2r.get(), r2s.get(), aws.get()};
    const MoeAlignParams ap_new{ids_old.get(),  T,          K,          E,        0, counts2.get(),
                                offsets2.get(), s2r2.get(), r2s2.get(), aws.get()};
    const bool align_small = T * K <= kMoeAlignSmallSlots;
    const StreamFn r_old = [&](cudaStream_t st) {
      launch_moe_routing_path(rp, MoePath::kLarge, st);
    };
    const StreamFn r_new = [&](cudaStream_t st) {
      launch_moe_routing_path(rp_new, MoePath::kSmall, st);
    };
    const StreamFn a_old = [&](cudaStream_t st) { launch_moe_align_path(ap, MoePath::kLarge, st); };
    const StreamFn a_new = [&](cudaStream_t st) {
      launch_moe_align_path(ap_new, MoePath::kSmall, st);
    };
    const StreamFn ra_old = [&](cudaStream_t st) {
      r_old(st);
      a_old(st);
    };
    const StreamFn ra_new = [&](cudaStream_t st) {
      launch_moe_routing_path(rp, MoePath::kSmall, st);
      launch_moe_align_path(ap, align_small ? MoePath::kSmall : MoePath::kLarge, st);
    };
    // Outputs first (bit identity), then timings.
    r_old(s);
    r_new(s);
    a_old(s);
    if (align_small) a_new(s);
    WS_CUDA_CHECK(cudaStreamSynchronize(s));
    bool same = ids_old.download() == ids_new.download();
    const auto wo = w_old.download(), wn = w_new.download();
    same = same && std::memcmp(wo.data(), wn.data(), wo.size() * sizeof(float)) == 0;
    if (align_small)
      same = same && counts.download() == counts2.download() &&
             offsets.download() == offsets2.download() && s2r.download() == s2r2.download() &&
             r2s.download() == r2s2.download();
    all_same = all_same && same;
    const double ro_s = us_per_call(r_old, s, false), rn_s = us_per_call(r_new, s, false);
    const double ro_g = us_per_call(r_old, s, true), rn_g = us_per_call(r_new, s, true);
    const double ao_s = us_per_call(a_old, s, false), ao_g = us_per_call(a_old, s, true);
    const double an_s = align_small ? us_per_call(a_new, s, false) : 0.0;
    const double an_g = align_small ? us_per_call(a_new, s, true) : 0.0;
    const double rao_g = us_per_call(ra_old, s, true), ran_g = us_per_call(ra_new, s, true);
    char an_s_txt[16] = "-", an_g_txt[16] = "-";
    if (align_small) {
      std::snprintf(an_s_txt, sizeof(an_s_txt), "%.2f", an_s);
      std::snprintf(an_g_txt, sizeof(an_g_txt), "%.2f", an_g);
    }
    std::printf("%6ld | %6.2f %6.2f %6.2f %6.2f | %6.2f %6s %6.2f %6s | %9.2f %9.2f | %s\n",
                long(T), ro_s, rn_s, ro_g, rn_g, ao_s, an_s_txt, ao_g, an_g_txt, rao_g, ran_g,
                same ? "identical" : "DIFFER");
  }
  std::printf(
      "(align new at T = 4096: T*k > %ld, the 3-launch path only; routing + align new "
      "there = new routing + old align)\n",
      long(kMoeAlignSmallSlots));
  cudaStreamDestroy(s);
  if (!all_same) std::printf("ERROR: old and new paths gave different outputs\n");
  return all_same ? 0 : 1;
}

}  // namespace

// ---- --small: the fused small-batch MoE against its bytes floor ----
int run_small() {
  const size_t cbytes = size_t(2) << 30;
  DeviceBuffer<char> ca(cbytes), cb(cbytes);
  WS_CUDA_CHECK(cudaMemset(ca.get(), 1, cbytes));
  const double cms = time_ms(
      [&] { WS_CUDA_CHECK(cudaMemcpyAsync(cb.get(), ca.get(), cbytes, cudaMemcpyDeviceToDevice)); },
      5);
  const double bw = 2.0 * cbytes / (cms * 1e-3) / 1e9;
  std::printf("limit: device copy %.0f GB/s (read+write); floor = weight bytes read / this\n", bw);
  struct Cfg {
    const char* name;
    bool fp8;
    int64_t E, k, ns, H, I;
  };
  std::printf("%-8s %2s | %7s | %9s | %8s | %6s | %8s\n", "model", "T", "experts", "weight MB",
              "floor us", "fused", "floor%");
  for (const Cfg& c :
       {Cfg{"V2-Lite", false, 64, 6, 2, 2048, 1408}, Cfg{"V3", true, 256, 8, 1, 7168, 2048}}) {
    const int64_t H = c.H, I = c.I, E = c.E, Is = c.ns * I, eb = c.fp8 ? 1 : 2;
    DeviceBuffer<__nv_bfloat16> gu16, dn16, sgu16, sdn16;
    DeviceBuffer<__nv_fp8_e4m3> gu8, dn8, sgu8, sdn8;
    DeviceBuffer<float> sgu_s, sdn_s, gu_s, dn_s;
    if (c.fp8) {
      gu8 = DeviceBuffer<__nv_fp8_e4m3>(E * 2 * I * H);
      dn8 = DeviceBuffer<__nv_fp8_e4m3>(E * H * I);
      sgu8 = DeviceBuffer<__nv_fp8_e4m3>(2 * Is * H);
      sdn8 = DeviceBuffer<__nv_fp8_e4m3>(H * Is);
      gu_s = DeviceBuffer<float>(E * (2 * I / 128) * (H / 128));
      dn_s = DeviceBuffer<float>(E * (H / 128) * (I / 128));
      sgu_s = DeviceBuffer<float>((2 * Is / 128) * (H / 128));
      sdn_s = DeviceBuffer<float>((H / 128) * (Is / 128));
      fill(gu8, 1, 100.f);
      fill(dn8, 2, 100.f);
      fill(sgu8, 3, 100.f);
      fill(sdn8, 4, 100.f);
      for (auto* b : {&gu_s, &dn_s, &sgu_s, &sdn_s}) fill(*b, 5, 1e-4f, 2e-4f);
    } else {
      gu16 = DeviceBuffer<__nv_bfloat16>(E * 2 * I * H);
      dn16 = DeviceBuffer<__nv_bfloat16>(E * H * I);
      sgu16 = DeviceBuffer<__nv_bfloat16>(2 * Is * H);
      sdn16 = DeviceBuffer<__nv_bfloat16>(H * Is);
      fill(gu16, 1, 0.05f);
      fill(dn16, 2, 0.05f);
      fill(sgu16, 3, 0.05f);
      fill(sdn16, 4, 0.05f);
    }
    constexpr int kSets = 16;  // id sets rotated so consecutive runs read other experts
    for (int64_t T : {1, 2, 4, 8}) {
      DeviceBuffer<__nv_bfloat16> x(T * H);
      DeviceBuffer<float> w(T * c.k), res(T * H), act(moe_small_act_floats(T, c.k, c.ns, I));
      fill(x, 6);
      fill(w, 7, 0.1f, 0.2f);
      fill(res, 8);
      std::vector<DeviceBuffer<int32_t>> ids;
      double distinct = 0;
      uint64_t st = 12345 + T;
      for (int r = 0; r < kSets; ++r) {
        std::vector<int32_t> h(T * c.k);
        std::vector<char> seen(E, 0);
        for (int64_t t = 0; t < T; ++t)
          for (int64_t j = 0; j < c.k; ++j) {
            int32_t e;
            bool dup;
            do {  // distinct within a token
              st = st * 6364136223846793005ull + 1442695040888963407ull;
              e = static_cast<int32_t>((st >> 33) % E);
              dup = false;
              for (int64_t q = 0; q < j; ++q) dup |= h[t * c.k + q] == e;
            } while (dup);
            h[t * c.k + j] = e;
            distinct += seen[e] ? 0 : 1;
            seen[e] = 1;
          }
        ids.emplace_back(h.size());
        ids.back().upload(h);
      }
      distinct /= kSets;
      MoeSmallParams p;
      p.x = x.get();
      p.topk_weights = w.get();
      p.num_tokens = T;
      p.top_k = c.k;
      p.hidden = H;
      p.inter = I;
      p.num_experts = E;
      p.fp8 = c.fp8;
      p.gate_up = c.fp8 ? static_cast<const void*>(gu8.get()) : gu16.get();
      p.down = c.fp8 ? static_cast<const void*>(dn8.get()) : dn16.get();
      p.gate_up_scale = gu_s.get();
      p.down_scale = dn_s.get();
      p.num_shared = c.ns;
      p.shared_gate_up = c.fp8 ? static_cast<const void*>(sgu8.get()) : sgu16.get();
      p.shared_down = c.fp8 ? static_cast<const void*>(sdn8.get()) : sdn16.get();
      p.shared_gate_up_scale = sgu_s.get();
      p.shared_down_scale = sdn_s.get();
      p.act = act.get();
      p.residual = res.get();
      int call = 0;
      const double ms = time_ms([&] {
        p.topk_ids = ids[call++ % kSets].get();
        launch_moe_small(p, nullptr);
      });
      const double mb = (distinct + c.ns) * 3.0 * H * I * eb / 1e6;
      const double floor_us = mb * 1e6 / (bw * 1e9) * 1e6;
      std::printf("%-8s %2ld | %7.1f | %9.1f | %8.1f | %6.1f | %7.0f%%\n", c.name, long(T),
                  distinct, mb, floor_us, ms * 1e3, 100.0 * floor_us / (ms * 1e3));
    }
  }
  return 0;
}

// The V3 dense FP8 GEMMs at decode-batch rows: cuBLASLt block-scaled vs the CUTLASS grouped
// kernel run as one group (does the grouped kernel's tiling serve dense decode GEMMs better?).
int run_dense() {
  BlasContext ctx;
  struct Shape {
    const char* name;
    int64_t n, k;
  };
  std::printf("%-14s %5s | %9s %9s | %9s %9s\n", "V3 GEMM", "m", "cublas us", "TFLOP/s",
              "cutlass us", "TFLOP/s");
  for (int64_t m : {64, 128, 256, 512}) {
    for (const Shape& s : {Shape{"q_b", 24576, 1536}, Shape{"o_proj", 7168, 16384},
                           Shape{"gate_up", 36864, 7168}, Shape{"down", 7168, 18432},
                           Shape{"shared gu", 4096, 7168}, Shape{"shared down", 7168, 2048}}) {
      DeviceBuffer<__nv_fp8_e4m3> xq(m * s.k), wq(s.n * s.k);
      fill(xq, 3, 400.f);
      fill(wq, 4, 400.f);
      DeviceBuffer<float> xs((s.k / 128) * m), wsc((s.n / 128) * (s.k / 128));
      fill(xs, 5, 0.001f, 0.002f);
      fill(wsc, 6, 0.001f, 0.002f);
      DeviceBuffer<__nv_bfloat16> y(m * s.n);
      GemmFp8BlockParams bp{xq.get(), xs.get(), wq.get(), wsc.get(), y.get(), m, s.n, s.k};
      const double a = time_ms([&] { gemm_fp8_block(ctx, bp, nullptr); }, 10);
      // The same GEMM through the grouped kernel: one expert of m rows (its own random operands).
      const double flop = 2.0 * m * s.n * s.k;
      const double b = flop / (grouped(true, 1, m, s.n, s.k, false) * 1e12) * 1e3;
      std::printf("%-14s %5ld | %9.1f %9.0f | %9.1f %9.0f\n", s.name, long(m), a * 1e3,
                  tflops(flop, a), b * 1e3, tflops(flop, b));
    }
  }
  return 0;
}

// ---- --decode: FP8 grouped expert GEMMs at decode-sized groups, row tiles vs swapped operands --

// Sums n 16-byte words (one partial per block): the card's read-only rate, the limit of a launch
// that streams weights.
__global__ void read_kernel(const uint4* p, size_t n, uint32_t* out) {
  uint32_t acc = 0;
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n;
       i += size_t(gridDim.x) * blockDim.x) {
    const uint4 v = __ldg(p + i);
    acc ^= v.x ^ v.y ^ v.z ^ v.w;
  }
  if (acc == 0x12345678u) out[blockIdx.x] = acc;  // keeps the loads; practically never stores
}

// Offsets of E experts after T tokens each pick k distinct experts uniformly (seeded).
std::vector<int32_t> routed_offsets(int64_t T, int64_t E, int64_t k, uint64_t seed) {
  std::vector<int32_t> count(E, 0);
  uint64_t x = seed;
  auto next = [&] {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return x;
  };
  for (int64_t t = 0; t < T; ++t) {
    std::vector<int64_t> picked;
    while (static_cast<int64_t>(picked.size()) < k) {
      const int64_t e = static_cast<int64_t>(next() % E);
      if (std::find(picked.begin(), picked.end(), e) == picked.end()) picked.push_back(e);
    }
    for (int64_t e : picked) ++count[e];
  }
  std::vector<int32_t> off(E + 1, 0);
  for (int64_t e = 0; e < E; ++e) off[e + 1] = off[e] + count[e];
  return off;
}

int run_decode() {
  const size_t bytes = size_t(2) << 30;
  double copy_gbs = 0, read_gbs = 0;
  {
    DeviceBuffer<char> a(bytes), b(bytes);
    WS_CUDA_CHECK(cudaMemset(a.get(), 1, bytes));
    const double ms = time_ms(
        [&] { WS_CUDA_CHECK(cudaMemcpyAsync(b.get(), a.get(), bytes, cudaMemcpyDeviceToDevice)); },
        5);
    copy_gbs = 2.0 * bytes / (ms * 1e-3) / 1e9;
    DeviceBuffer<uint32_t> sink(132 * 8);
    const double rms = time_ms(
        [&] {
          read_kernel<<<132 * 8, 512>>>(reinterpret_cast<const uint4*>(a.get()), bytes / 16,
                                        sink.get());
        },
        5);
    read_gbs = bytes / (rms * 1e-3) / 1e9;
  }
  std::printf("device copy (read+write) %.0f GB/s, read-only kernel %.0f GB/s\n", copy_gbs,
              read_gbs);
  const int64_t E = 256, topk = 8;
  struct G {
    const char* name;
    int64_t n, k;
  };
  const G gemms[] = {{"gate_up", 4096, 7168}, {"down", 7168, 2048}};
  DeviceBuffer<__nv_fp8_e4m3> w(E * 4096 * 7168);
  DeviceBuffer<float> ws_scale(E * (4096 / 128) * (7168 / 128));  // the larger of the two GEMMs
  fill(w, 8, 400.f);
  fill(ws_scale, 10, 0.001f, 0.002f);
  const int64_t maxR = 1024 * topk;
  DeviceBuffer<__nv_fp8_e4m3> a(maxR * 7168);
  DeviceBuffer<float> sa(maxR * (7168 / 128));
  fill(a, 7, 400.f);
  fill(sa, 9, 0.001f, 0.002f);
  DeviceBuffer<__nv_bfloat16> d(maxR * 7168);
  DeviceBuffer<char> gws(grouped_gemm_workspace_bytes(E));
  DeviceBuffer<int32_t> d_off(E + 1);
  std::printf(
      "\n| T | mean rows | GEMM | weights MB | rows us | swap us | swap GB/s | of read "
      "| rows/swap | rel L2 swap vs rows |\n|---|---|---|---|---|---|---|---|---|---|\n");
  for (int64_t T : {32, 128, 256, 512, 1024}) {
    const auto off = routed_offsets(T, E, topk, 0x9E3779B97F4A7C15ull + T);
    int64_t used = 0;
    for (int64_t e = 0; e < E; ++e) used += off[e + 1] > off[e];
    d_off.upload(off);
    for (const G& g : gemms) {
      GroupedGemmParams p{};
      p.a = a.get();
      p.a_scales = sa.get();
      p.b = w.get();
      p.b_scales = ws_scale.get();
      p.expert_offsets = d_off.get();
      p.num_experts = E;
      p.n = g.n;
      p.k = g.k;
      p.max_rows = maxR;
      p.workspace = gws.get();
      p.routed_rows = T * topk;
      const int64_t R = off[E];
      double us[2];
      std::vector<__nv_bfloat16> out[2];
      const GroupedFp8Kernel ks[2] = {GroupedFp8Kernel::kRowTiles, GroupedFp8Kernel::kSwapAB};
      for (int i = 0; i < 2; ++i) {
        p.fp8_kernel = ks[i];
        p.d = d.get();
        us[i] = time_ms([&] { launch_grouped_gemm_fp8(p, nullptr); }, 10) * 1e3;
        WS_CUDA_CHECK(cudaDeviceSynchronize());
        out[i].resize(R * g.n);
        WS_CUDA_CHECK(
            cudaMemcpy(out[i].data(), d.get(), out[i].size() * 2, cudaMemcpyDeviceToHost));
      }
      double num = 0, den = 0;
      for (size_t j = 0; j < out[0].size(); ++j) {
        const double x = __bfloat162float(out[1][j]), y = __bfloat162float(out[0][j]);
        num += (x - y) * (x - y);
        den += y * y;
      }
      const double mb = double(used) * g.n * g.k / 1e6;
      const double swap_gbs = mb * 1e3 / us[1];  // MB / us x 1e3 = GB/s
      std::printf("| %ld | %.1f | %s | %.0f | %.1f | %.1f | %.0f | %.0f%% | %.2fx | %.1e |\n",
                  long(T), double(T * topk) / E, g.name, mb, us[0], us[1], swap_gbs,
                  swap_gbs / read_gbs * 100, us[0] / us[1], std::sqrt(num / std::max(den, 1e-30)));
    }
  }
  return 0;
}

int main(int argc, char** argv) {
  CLI::App app{"MoE kernel benchmark"};
  int64_t T = 4096;
  app.add_option("--tokens", T, "tokens for routing/align/permute kernels");
  bool paths = false;
  app.add_flag("--paths", paths,
               "only old vs new routing / align for V3 at T = 1..4096 (stream and graph)");
  bool small = false;
  app.add_flag("--small", small, "only the fused small-batch MoE at T = 1..8 vs its bytes floor");
  bool decode = false;
  app.add_flag("--decode", decode,
               "only V3 FP8 grouped GEMMs at decode-sized groups: row tiles vs swapped operands");
  bool dense_only = false;
  app.add_flag("--dense", dense_only,
               "only V3 dense FP8 GEMMs at decode rows: cuBLASLt block vs CUTLASS as one group");
  CLI11_PARSE(app, argc, argv);
  cudaDeviceProp prop{};
  WS_CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
  std::printf("device: %s, %d SMs\n", prop.name, prop.multiProcessorCount);
  if (paths) return run_paths();
  if (small) return run_small();
  if (dense_only) return run_dense();
  if (decode) return run_decode();
  std::vector<Row> rows;

  // ---- Limits ----
  {
    const size_t bytes = size_t(2) << 30;
    DeviceBuffer<char> a(bytes), b(bytes);
    WS_CUDA_CHECK(cudaMemset(a.get(), 1, bytes));
    const double ms = time_ms(
        [&] { WS_CUDA_CHECK(cudaMemcpyAsync(b.get(), a.get(), bytes, cudaMemcpyDeviceToDevice)); },
        5);
    rows.push_back({"device copy (read+write)", 2.0 * bytes / (ms * 1e-3) / 1e9, "GB/s"});
  }
  BlasContext ctx;
  const DenseRates gu = dense(ctx, 4096, 4096, 7168);
  const DenseRates dn = dense(ctx, 4096, 7168, 2048);
  rows.push_back({"dense bf16 M4096 N4096 K7168", gu.bf16, "TFLOP/s"});
  rows.push_back({"dense fp8 tensor M4096 N4096 K7168", gu.fp8_tensor, "TFLOP/s"});
  rows.push_back({"dense fp8 block M4096 N4096 K7168", gu.fp8_block, "TFLOP/s"});
  rows.push_back({"dense bf16 M4096 N7168 K2048", dn.bf16, "TFLOP/s"});
  rows.push_back({"dense fp8 tensor M4096 N7168 K2048", dn.fp8_tensor, "TFLOP/s"});
  rows.push_back({"dense fp8 block M4096 N7168 K2048", dn.fp8_block, "TFLOP/s"});

  // ---- Grouped GEMMs: V3 FP8, EP8 slice of 32 experts ----
  std::printf("\n");
  for (int64_t per : {128, 256, 512}) {
    const std::string tag = "32x" + std::to_string(per);
    const double a = grouped(true, 32, per, 4096, 7168, false);
    const double b = grouped(true, 32, per, 7168, 2048, false);
    rows.push_back({"V3 fp8 gate_up " + tag, a, "TFLOP/s"});
    rows.push_back({"  vs dense fp8 per-tensor", a / gu.fp8_tensor * 100, "%"});
    rows.push_back({"  vs dense fp8 block-scaled", a / gu.fp8_block * 100, "%"});
    rows.push_back({"V3 fp8 down " + tag, b, "TFLOP/s"});
    rows.push_back({"  vs dense fp8 per-tensor", b / dn.fp8_tensor * 100, "%"});
    rows.push_back({"  vs dense fp8 block-scaled", b / dn.fp8_block * 100, "%"});
  }
  const double skew = grouped(true, 32, 256, 4096, 7168, true);
  rows.push_back({"V3 fp8 gate_up 32x256 skewed", skew, "TFLOP/s"});
  rows.push_back(
      {"V3 fp8 gate_up 32x16 (decode-sized)", grouped(true, 32, 16, 4096, 7168, false), "TFLOP/s"});
  // V2-Lite BF16: 64 experts, hidden 2048, moe_intermediate 1408.
  for (int64_t per : {128, 256, 512}) {
    const std::string tag = "64x" + std::to_string(per);
    rows.push_back(
        {"V2-Lite bf16 gate_up " + tag, grouped(false, 64, per, 2816, 2048, false), "TFLOP/s"});
    rows.push_back(
        {"V2-Lite bf16 down " + tag, grouped(false, 64, per, 2048, 1408, false), "TFLOP/s"});
  }
  const double v3bf = grouped(false, 32, 256, 4096, 7168, false);
  rows.push_back({"V3 dims bf16 gate_up 32x256", v3bf, "TFLOP/s"});
  rows.push_back({"  vs dense bf16", v3bf / gu.bf16 * 100, "%"});

  // ---- Routing / align / permute at T tokens ----
  std::printf("\n");
  struct RCfg {
    const char* name;
    int64_t E, k, ng, tg;
    int scoring, method;
    bool renorm;
    float scale;
  };
  for (const RCfg& c : {RCfg{"V3", 256, 8, 8, 4, 1, 2, true, 2.5f},
                        RCfg{"V2-Lite", 64, 6, 1, 1, 0, 0, false, 1.0f}}) {
    DeviceBuffer<float> logits(T * c.E), bias(c.E), w(T * c.k);
    DeviceBuffer<int32_t> ids(T * c.k);
    fill(logits, 11, 3.0f);
    fill(bias, 12, 0.1f);
    MoeRoutingParams rp{logits.get(),
                        c.method == 2 ? bias.get() : nullptr,
                        T,
                        c.E,
                        c.k,
                        c.ng,
                        c.tg,
                        c.scoring,
                        c.method,
                        c.renorm,
                        c.scale,
                        ids.get(),
                        w.get()};
    const double ms_route = time_ms([&] { launch_moe_routing(rp, nullptr); }, 50);
    MoeRoutingParams rp64 = rp;  // a decode batch: one warp's latency plus the launch
    rp64.num_tokens = std::min<int64_t>(T, 64);
    const double ms_route64 = time_ms([&] { launch_moe_routing(rp64, nullptr); }, 50);
    rows.push_back({std::string(c.name) + " routing T=64", ms_route64 * 1e3, "us"});
    DeviceBuffer<int32_t> counts(c.E), offsets(c.E + 1), s2r(T * c.k), r2s(T * c.k);
    DeviceBuffer<char> aws(moe_align_workspace_bytes(T, c.k, c.E));
    MoeAlignParams ap{ids.get(),     T,         c.k,       c.E,      0, counts.get(),
                      offsets.get(), s2r.get(), r2s.get(), aws.get()};
    const double ms_align = time_ms([&] { launch_moe_align(ap, nullptr); }, 50);
    std::printf("%s T=%ld: routing %.1f us, align %.1f us\n", c.name, long(T), ms_route * 1e3,
                ms_align * 1e3);
    rows.push_back({std::string(c.name) + " routing T=" + std::to_string(T), ms_route * 1e3, "us"});
    rows.push_back({std::string(c.name) + " align T=" + std::to_string(T), ms_align * 1e3, "us"});
    if (c.method != 2) continue;
    // Permute kernels at V3 dims, all T*k rows local (single GPU view), FP8 outputs.
    const int64_t H = 7168, I = 2048, R = T * c.k;
    DeviceBuffer<__nv_bfloat16> x(T * H), y(R * H), gu2(R * 2 * I), out(T * H);
    DeviceBuffer<__nv_fp8_e4m3> xq(R * H), aq(R * I);
    DeviceBuffer<float> xs(R * (H / 128)), as(R * (I / 128));
    fill(x, 13);
    fill(y, 14);
    fill(gu2, 15);
    MoeGatherParams gp{x.get(),  s2r.get(), offsets.get() + c.E, T, c.k, H, R, nullptr,
                       xq.get(), xs.get()};
    const double ms_g = time_ms([&] { launch_moe_gather(gp, nullptr); });
    SiluAndMulParams sp{gu2.get(), R, I, offsets.get() + c.E, nullptr, aq.get(), as.get()};
    const double ms_s = time_ms([&] { launch_silu_and_mul(sp, nullptr); });
    MoeCombineParams cp{y.get(), r2s.get(), w.get(), x.get(), T, c.k, H, out.get()};
    const double ms_c = time_ms([&] { launch_moe_combine(cp, nullptr); });
    // Bytes: gather reads R bf16 rows, writes R fp8 rows (+scales); silu reads 2I bf16, writes I
    // fp8; combine reads k bf16 rows + shared, writes one row per token.
    const double gb_g = (R * H * 2.0 + R * H * 1.0) / (ms_g * 1e-3) / 1e9;
    const double gb_s = (R * 2 * I * 2.0 + R * I * 1.0) / (ms_s * 1e-3) / 1e9;
    const double gb_c = (T * (c.k + 2) * H * 2.0) / (ms_c * 1e-3) / 1e9;
    std::printf(
        "V3 T=%ld rows=%ld: gather->fp8 %.1f us (%.0f GB/s), silu->fp8 %.1f us (%.0f GB/s), "
        "combine %.1f us (%.0f GB/s)\n",
        long(T), long(R), ms_g * 1e3, gb_g, ms_s * 1e3, gb_s, ms_c * 1e3, gb_c);
    rows.push_back({"V3 gather->fp8 GB/s", gb_g, "GB/s"});
    rows.push_back({"V3 silu_and_mul->fp8 GB/s", gb_s, "GB/s"});
    rows.push_back({"V3 combine GB/s", gb_c, "GB/s"});
  }

  std::printf("\n%-40s %12s\n", "measure", "value");
  for (const auto& r : rows) std::printf("%-40s %12.1f %s\n", r.what.c_str(), r.value, r.unit);
  return 0;
}
