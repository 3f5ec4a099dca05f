// MLA attention bench (H200): device-to-device copy bandwidth (the physical limit, read + write),
// then decode over a paged bf16 latent cache at several batch x context sizes for H = 16 and 128,
// then prefill TFLOP/s. --kernel v3|v4|v5|both|v4v5 picks the decode kernel (v3 = mla_fwd_kernel,
// the default and the original output; both = v3 columns, then v4's, the speedup and the relative
// L2 difference of the two outputs, in one run; v4v5 the same for v4 and v5). Each timed unit is a
// CUDA graph of launches that rotate over disjoint page-table sets of a >= 512 MB pool, so L2 (60
// MB) never holds the KV; median of replays.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "backend/cuda/attention/mla.h"
#include "backend/cuda/attention/mla_decode_wgmma.h"
#include "backend/cuda/common/cuda_check.h"
#include "backend/cuda/common/device_buffer.h"

using namespace wideserve::cuda;

namespace {

__global__ void fill_random(__nv_bfloat16* x, int64_t n, uint64_t seed, float scale) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x) {
    uint64_t h = (i + 1) * 0x9E3779B97F4A7C15ull ^ seed;
    h ^= h >> 31;
    h *= 0xBF58476D1CE4E5B9ull;
    h ^= h >> 29;
    x[i] = __float2bfloat16(scale * ((h >> 40) * (1.0f / (1 << 24)) - 0.5f));
  }
}

// 16-byte grid-stride copy: the SM-driven counterpart of cudaMemcpyAsync (which may use copy
// engines).
__global__ void copy_kernel(const uint4* __restrict__ a, uint4* __restrict__ b, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x)
    b[i] = a[i];
}

void fill(DeviceBuffer<__nv_bfloat16>& b, uint64_t seed, float scale = 2.f) {
  fill_random<<<1024, 256>>>(b.get(), b.size(), seed, scale);
  WS_CUDA_CHECK_LAUNCH();
}

// Median ms of `reps` replays of a graph made by `body` on stream s.
template <typename F>
double time_graph(cudaStream_t s, int reps, F body) {
  cudaGraph_t g;
  cudaGraphExec_t e;
  WS_CUDA_CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
  body();
  WS_CUDA_CHECK(cudaStreamEndCapture(s, &g));
  WS_CUDA_CHECK(cudaGraphInstantiate(&e, g, 0));
  cudaEvent_t a, b;
  WS_CUDA_CHECK(cudaEventCreate(&a));
  WS_CUDA_CHECK(cudaEventCreate(&b));
  for (int i = 0; i < 3; ++i) WS_CUDA_CHECK(cudaGraphLaunch(e, s));  // warm-up
  std::vector<float> ms(reps);
  for (int i = 0; i < reps; ++i) {
    WS_CUDA_CHECK(cudaEventRecord(a, s));
    WS_CUDA_CHECK(cudaGraphLaunch(e, s));
    WS_CUDA_CHECK(cudaEventRecord(b, s));
    WS_CUDA_CHECK(cudaEventSynchronize(b));
    WS_CUDA_CHECK(cudaEventElapsedTime(&ms[i], a, b));
  }
  std::sort(ms.begin(), ms.end());
  WS_CUDA_CHECK(cudaGraphExecDestroy(e));
  WS_CUDA_CHECK(cudaGraphDestroy(g));
  WS_CUDA_CHECK(cudaEventDestroy(a));
  WS_CUDA_CHECK(cudaEventDestroy(b));
  return ms[reps / 2];
}

struct Result {
  double us, gbs, tflops;
};

constexpr int64_t kPage = 64;

// batch sequences, each with `ctx` cached rows and `qlen` query tokens at its end. Decode runs
// `kernel`; when `out_once` is given, one untimed launch on the first page set fills it first.
Result run_attention(DeviceBuffer<__nv_bfloat16>& pool, int64_t pool_pages, int64_t heads,
                     int64_t batch, int64_t ctx, int64_t qlen, cudaStream_t s,
                     MlaDecodeKernel kernel = MlaDecodeKernel::kV3,
                     std::vector<__nv_bfloat16>* out_once = nullptr) {
  const int64_t pps = (ctx + kPage - 1) / kPage, pages = batch * pps;
  // Decode rotates over disjoint sets; prefill is compute bound and uses one.
  const int64_t sets =
      qlen > 1 ? 1 : std::max<int64_t>(1, std::min<int64_t>(16, pool_pages / pages));
  std::vector<int32_t> perm(pool_pages);
  std::iota(perm.begin(), perm.end(), 0);
  std::shuffle(perm.begin(), perm.end(), std::mt19937_64(heads * 1000 + batch));
  std::vector<int32_t> table(sets * pages);
  for (int64_t i = 0; i < sets * pages; ++i) table[i] = perm[i];  // disjoint sets
  std::vector<int32_t> lens(batch, static_cast<int32_t>(ctx)), seq, pos;
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t i = ctx - qlen; i < ctx; ++i) {
      seq.push_back(static_cast<int32_t>(b));
      pos.push_back(static_cast<int32_t>(i));
    }
  const int64_t T = seq.size();
  DeviceBuffer<int32_t> dt(table.size()), dl(batch), ds(T), dp(T);
  dt.upload(table);
  dl.upload(lens);
  ds.upload(seq);
  dp.upload(pos);
  DeviceBuffer<__nv_bfloat16> q(T * heads * kMlaRowDim), out(T * heads * kMlaLatentDim);
  fill(q, 77, 0.5f);
  DeviceBuffer<float> lse(T * heads);
  const size_t wsb = mla_workspace_bytes(T, heads, ctx);
  DeviceBuffer<unsigned char> ws(std::max<size_t>(wsb, 1));
  MlaAttentionParams p{q.get(), pool.get(), dt.get(), dl.get(), ds.get(), dp.get(), out.get()};
  p.lse = lse.get();
  p.num_tokens = T;
  p.num_seqs = batch;
  p.num_heads = heads;
  p.max_pages_per_seq = pps;
  p.page_size = kPage;
  p.softmax_scale = 0.0721f;
  p.max_seq_len = ctx;
  p.workspace = ws.get();
  p.workspace_bytes = wsb;
  if (out_once != nullptr) {
    WS_CUDA_CHECK(cudaMemsetAsync(out.get(), 0xFF, out.bytes(), s));
    if (qlen == 1)
      launch_mla_decode(p, s, kernel);
    else
      launch_mla_prefill(p, s);
    WS_CUDA_CHECK(cudaStreamSynchronize(s));
    *out_once = out.download();
  }
  const int per_graph = static_cast<int>(std::max<int64_t>(sets, 4));
  double ms = time_graph(s, 15, [&] {
    for (int i = 0; i < per_graph; ++i) {
      MlaAttentionParams pi = p;
      pi.page_table = dt.get() + (i % sets) * pages;
      if (qlen == 1)
        launch_mla_decode(pi, s, kernel);
      else
        launch_mla_prefill(pi, s);
    }
  });
  const double sec = ms * 1e-3 / per_graph;
  const double bytes =
      batch * ctx * kMlaRowDim * 2.0 + T * heads * (kMlaRowDim + kMlaLatentDim) * 2.0;
  double visible = 0;  // causal: query at position i sees i + 1 rows
  for (int64_t i = ctx - qlen; i < ctx; ++i) visible += i + 1;
  const double flops = 2.0 * heads * (kMlaRowDim + kMlaLatentDim) * visible * batch;
  return {sec * 1e6, bytes / sec * 1e-9, flops / sec * 1e-12};
}

// ||a - b|| / ||b|| over bf16 outputs (NaN anywhere: +inf).
double rel_l2(const std::vector<__nv_bfloat16>& a, const std::vector<__nv_bfloat16>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    const double x = __bfloat162float(a[i]), y = __bfloat162float(b[i]);
    if (!std::isfinite(x) || !std::isfinite(y)) return INFINITY;
    num += (x - y) * (x - y);
    den += y * y;
  }
  return std::sqrt(num / (den > 0 ? den : 1.0));
}

// --trace: where a v5 CTA's time goes, from a -DWS_MLA_TRACE build's per-CTA timestamps of the
// last launch in the timed graph. Per wave (the CTA's rank among those that ran on its SM):
// mean microseconds from the CTA's entry to each point, and the loop's time per tile.
void print_trace(int64_t batch, int64_t ctx, double us) {
  std::vector<unsigned long long> tr;
  if (!mla_decode_wgmma_trace(&tr)) {
    std::printf(
        "trace: this build records none (compile mla_decode_wgmma.cu with -DWS_MLA_TRACE)\n");
    return;
  }
  const int64_t ctas = std::min<int64_t>(batch * 2, kMlaTraceCtas);  // 128 heads: 2 per token
  const int tiles = static_cast<int>((ctx + 31) / 32);
  unsigned long long t0 = ~0ull, t1 = 0;
  std::map<unsigned, std::vector<std::pair<unsigned long long, int64_t>>> per_sm;
  for (int64_t c = 0; c < ctas; ++c) {
    const auto* r = &tr[c * kMlaTracePoints];
    t0 = std::min(t0, r[kTraceEntry]);
    t1 = std::max(t1, r[kTraceStored]);
    per_sm[static_cast<unsigned>(r[kTraceSm])].push_back({r[kTraceEntry], c});
  }
  std::map<int, std::vector<double>> sums;  // wave -> sums of the columns below
  std::map<int, int> count;
  for (auto& [sm, v] : per_sm) {
    std::sort(v.begin(), v.end());
    for (size_t w = 0; w < v.size(); ++w) {
      const auto* r = &tr[v[w].second * kMlaTracePoints];
      const double e = static_cast<double>(r[kTraceEntry]);
      const double prev_end =
          w > 0 ? static_cast<double>(tr[v[w - 1].second * kMlaTracePoints + kTraceStored]) : e;
      const std::vector<double> cols = {
          (e - t0) * 1e-3,
          (e - prev_end) * 1e-3,
          (r[kTraceRingIssued] - e) * 1e-3,
          (r[kTraceQLanded] - e) * 1e-3,
          (r[kTraceTile0Landed] - e) * 1e-3,
          (r[kTraceLoopStart] - e) * 1e-3,
          (static_cast<double>(r[kTraceLoopEnd]) - r[kTraceLoopStart]) * 1e-3 / tiles,
          (static_cast<double>(r[kTraceStored]) - r[kTraceLoopEnd]) * 1e-3,
          (static_cast<double>(r[kTraceStored]) - e) * 1e-3,
          (r[kTraceTile3Landed] - e) * 1e-3,
          (static_cast<double>(r[kTraceWg1End]) - r[kTraceLoopEnd]) * 1e-3,
          (static_cast<double>(r[kTraceSynced]) - r[kTraceLoopEnd]) * 1e-3,
          (static_cast<double>(r[kTraceProducerDone]) - e) * 1e-3};
      auto& s = sums[static_cast<int>(w)];
      s.resize(cols.size());
      for (size_t i = 0; i < cols.size(); ++i) s[i] += cols[i];
      ++count[static_cast<int>(w)];
    }
  }
  std::printf(
      "\ntrace %ld x %ld (%d tiles per CTA): kernel %.1f us timed, %.1f us entry-to-last-store "
      "in the traced launch\n",
      static_cast<long>(batch), static_cast<long>(ctx), tiles, us, (t1 - t0) * 1e-3);
  std::printf("%4s %5s | %8s %8s %8s %8s %8s %8s %8s %8s %8s %8s %8s %8s %8s\n", "wave", "ctas",
              "start", "gap", "ring", "Q", "tile0", "loop0", "us/tile", "tail", "total", "tile3",
              "wg1_end", "synced", "prod_end");
  for (auto& [w, s] : sums) {
    std::printf("%4d %5d |", w, count[w]);
    for (double v : s) std::printf(" %8.2f", v / count[w]);
    std::printf("\n");
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"MLA attention bench"};
  std::vector<int64_t> heads_list = {16, 128};
  std::string kernel = "v3";
  app.add_option("--kernel", kernel,
                 "decode kernel: v3 (default), v4, v5, v6, or side by side: both (v3 | v4), v4v5 "
                 "(v4 | v5), v5v6 (v5 | v6)")
      ->check(CLI::IsMember({"v3", "v4", "v5", "v6", "both", "v4v5", "v5v6"}));
  app.add_option("--heads", heads_list, "Head counts of the decode cases")->delimiter(',');
  std::string bulk = "on";
  app.add_option("--v5-bulk-store", bulk,
                 "v5 output rows staged in shared memory and bulk-copied (on) or per-thread stores")
      ->check(CLI::IsMember({"on", "off"}));
  std::vector<int64_t> trace;
  app.add_option(
         "--trace", trace,
         "v5 per-CTA timeline at 128 heads for batch,context pairs (a -DWS_MLA_TRACE build)")
      ->delimiter(',');
  CLI11_PARSE(app, argc, argv);
  set_mla_v5_bulk_store(bulk == "on");
  // Kernel A (first columns) and, side by side, kernel B.
  const bool pair = kernel == "both" || kernel == "v4v5" || kernel == "v5v6";
  const MlaDecodeKernel ka = kernel == "v4" || kernel == "v4v5"   ? MlaDecodeKernel::kV4
                             : kernel == "v5" || kernel == "v5v6" ? MlaDecodeKernel::kV5
                             : kernel == "v6"                     ? MlaDecodeKernel::kV6
                                                                  : MlaDecodeKernel::kV3;
  const MlaDecodeKernel kb = kernel == "v4v5"   ? MlaDecodeKernel::kV5
                             : kernel == "v5v6" ? MlaDecodeKernel::kV6
                                                : MlaDecodeKernel::kV4;
  auto name = [](MlaDecodeKernel k) {
    return k == MlaDecodeKernel::kV3   ? "v3"
           : k == MlaDecodeKernel::kV4 ? "v4"
           : k == MlaDecodeKernel::kV5 ? "v5"
                                       : "v6";
  };
  const char* na = name(ka);
  const char* nb = name(kb);
  const bool run_v3 = ka == MlaDecodeKernel::kV3;
  cudaDeviceProp prop{};
  WS_CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
  std::printf("device %s, %d SMs, L2 %d MB\n", prop.name, prop.multiProcessorCount,
              prop.l2CacheSize >> 20);
  cudaStream_t s;
  WS_CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));

  // Physical limit: 1 GiB device-to-device copy, bytes read + written.
  double copy_gbs;
  {
    const size_t n = size_t{1} << 29;  // bf16 elements = 1 GiB
    DeviceBuffer<__nv_bfloat16> a(n), b(n);
    fill(a, 1);
    double ms = time_graph(s, 15, [&] {
      WS_CUDA_CHECK(cudaMemcpyAsync(b.get(), a.get(), a.bytes(), cudaMemcpyDeviceToDevice, s));
    });
    const double memcpy_gbs = 2.0 * a.bytes() / (ms * 1e-3) * 1e-9;
    double ms_k = time_graph(s, 15, [&] {
      copy_kernel<<<prop.multiProcessorCount * 8, 512, 0, s>>>(
          reinterpret_cast<const uint4*>(a.get()), reinterpret_cast<uint4*>(b.get()),
          static_cast<int64_t>(a.bytes() / 16));
    });
    const double kernel_gbs = 2.0 * a.bytes() / (ms_k * 1e-3) * 1e-9;
    copy_gbs = std::max(memcpy_gbs, kernel_gbs);
    std::printf(
        "d2d copy (read+write): cudaMemcpyAsync %.1f GB/s, 16-byte kernel %.1f GB/s; limit %.1f\n",
        memcpy_gbs, kernel_gbs, copy_gbs);
  }

  // KV pool: max(1.2 GB, what the largest case needs) of random rows.
  const int64_t pool_pages = (128 * 4096 * 2 + 64 * 8192) / kPage;  // ~1.8 GB
  DeviceBuffer<__nv_bfloat16> pool(pool_pages * kPage * kMlaRowDim);
  fill(pool, 2);
  WS_CUDA_CHECK(cudaDeviceSynchronize());
  if (!trace.empty()) {
    for (size_t i = 0; i + 1 < trace.size(); i += 2) {
      const Result r =
          run_attention(pool, pool_pages, 128, trace[i], trace[i + 1], 1, s, MlaDecodeKernel::kV5);
      print_trace(trace[i], trace[i + 1], r.us);
    }
    return 0;
  }

  std::printf("\n%-8s %5s %6s %6s %10s %9s %7s %9s", "mode", "heads", "batch", "ctx", "us", "GB/s",
              "of_copy", "TFLOP/s");
  if (pair)
    std::printf(" | %4s_us %4s_GB/s %7s %4s_TF/s %3s/%s %8s", nb, nb, "copy", nb, na, nb, "rel_l2");
  std::printf("\n");
  struct D {
    int64_t batch, ctx;
  };
  const D decode[] = {{64, 4096}, {1, 4096},  {32, 4096}, {128, 4096},
                      {64, 1024}, {64, 8192}, {256, 1024}};
  for (int64_t heads : heads_list)
    for (const D& d : decode) {
      std::vector<__nv_bfloat16> oa, ob;
      Result ra =
          run_attention(pool, pool_pages, heads, d.batch, d.ctx, 1, s, ka, pair ? &oa : nullptr);
      Result rb{};
      if (pair) rb = run_attention(pool, pool_pages, heads, d.batch, d.ctx, 1, s, kb, &ob);
      std::printf("%-8s %5ld %6ld %6ld %10.1f %9.1f %6.1f%% %9.1f",
                  (std::string("decode") + na).c_str(), heads, d.batch, d.ctx, ra.us, ra.gbs,
                  100.0 * ra.gbs / copy_gbs, ra.tflops);
      if (pair)
        std::printf(" | %10.1f %9.1f %6.1f%% %9.1f %5.2fx %8.1e", rb.us, rb.gbs,
                    100.0 * rb.gbs / copy_gbs, rb.tflops, ra.us / rb.us, rel_l2(ob, oa));
      std::printf("\n");
    }
  if (run_v3)  // prefill has one kernel (v3)
    for (int64_t heads : {16, 128})
      for (int64_t prompt : {2048, 8192}) {
        Result r = run_attention(pool, pool_pages, heads, 1, prompt, prompt, s);
        std::printf("%-8s %5ld %6d %6ld %10.1f %9s %7s %9.1f\n", "prefill", heads, 1, prompt, r.us,
                    "-", "-", r.tflops);
      }
  WS_CUDA_CHECK(cudaStreamDestroy(s));
  return 0;
}
