// One decode token's attention core (attention/mla_token.h) alone, H200: `layers` launches over
// distinct kv_b weights and distinct cache pages of a pool larger than L2, captured in one CUDA
// graph (us per launch, median of replays), then the per-CTA phase timeline of one traced replay
// (stamps of mla_token.cu, mean and max over CTAs and layers, us from the launch's first entry).
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <numeric>
#include <random>
#include <vector>

#include "backend/cuda/attention/mla_token.h"
#include "backend/cuda/common/cuda_check.h"
#include "backend/cuda/common/device_buffer.h"
#include "backend/cuda/ops/ops.h"

using namespace wideserve::cuda;

int main(int argc, char** argv) {
  CLI::App app{"MLA one-token attention core bench"};
  int64_t heads = 16, context = 1024, layers = 27, page = 64, reps = 50;
  int cluster = 0;
  app.add_option("--heads", heads);
  app.add_option("--context", context, "cached tokens before the new one");
  app.add_option("--layers", layers);
  app.add_option("--page-size", page);
  app.add_option("--reps", reps);
  app.add_option("--cluster", cluster, "CTAs per cluster: 8 or 16 (0 = default)");
  bool row_copies = false;
  app.add_flag("--row-copies", row_copies, "cache rows by one bulk copy per row, not boxes");
  CLI11_PARSE(app, argc, argv);
  constexpr int64_t kRow = 576;
  cudaStream_t st;
  WS_CUDA_CHECK(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
  const int64_t pos = context, len = context + 1, used = (len + page - 1) / page;
  const int64_t pages = layers * (used + 2), slots = pages * page;
  DeviceBuffer<__nv_bfloat16> cache(slots * kRow), w(layers * heads * 256 * 512),
      q(layers * heads * 192), kva(layers * kRow), norm(512), out(layers * heads * 128);
  DeviceBuffer<float> inv(32);
  launch_fill_random_bf16(cache.get(), cache.size(), 1, 1.f, st);
  launch_fill_random_bf16(w.get(), w.size(), 2, 0.05f, st);
  launch_fill_random_bf16(q.get(), q.size(), 3, 1.f, st);
  launch_fill_random_bf16(kva.get(), kva.size(), 4, 1.f, st);
  launch_fill_random_bf16(norm.get(), norm.size(), 5, 1.f, st);
  launch_fill_random_f32(inv.get(), 32, 6, 1e-4f, 1.f, st);
  // Each layer's pages: a shuffled draw from the whole pool.
  std::vector<int32_t> perm(pages);
  std::iota(perm.begin(), perm.end(), 0);
  std::shuffle(perm.begin(), perm.end(), std::mt19937_64(7));
  DeviceBuffer<int32_t> table(layers * used), meta(3);
  std::vector<int32_t> t(perm.begin(), perm.begin() + layers * used);
  table.upload(t);
  std::vector<int32_t> m{static_cast<int32_t>(pos), 0, static_cast<int32_t>(len)};
  std::vector<MlaTokenParams> ps(layers);
  std::vector<int32_t> slot_of(layers);
  DeviceBuffer<int32_t> dslots(layers);
  for (int64_t l = 0; l < layers; ++l)
    slot_of[l] =
        t[l * used + pos / page] * static_cast<int32_t>(page) + static_cast<int32_t>(pos % page);
  dslots.upload(slot_of);
  meta.upload(m);
  MlaTokenParams shape;
  shape.heads = heads;
  shape.cluster = cluster;
  const int grid = mla_token_grid(shape);
  DeviceBuffer<unsigned long long> stamps(layers * grid * kMlaTokenStamps);
  for (int64_t l = 0; l < layers; ++l) {
    MlaTokenParams& p = ps[l];
    p.q = q.get() + l * heads * 192;
    p.kv_a = kva.get() + l * kRow;
    p.kv_a_norm = norm.get();
    p.w_kv_b = w.get() + l * heads * 256 * 512;
    p.rope = RopeTable{inv.get(), 64, 1.f};
    p.position = meta.get();
    p.slot = dslots.get() + l;
    p.page_table = table.get() + l * used;
    p.seq_len = meta.get() + 2;
    p.kv_cache = cache.get();
    p.out = out.get() + l * heads * 128;
    p.heads = heads;
    p.q_stride = 192;
    p.nope = 128;
    p.v_dim = 128;
    p.page_size = page;
    p.slots = slots;
    p.softmax_scale = 0.07f;
    p.cluster = cluster;
    p.row_copies = row_copies;
  }
  auto capture = [&](bool traced) {
    cudaGraph_t g;
    cudaGraphExec_t e;
    WS_CUDA_CHECK(cudaStreamBeginCapture(st, cudaStreamCaptureModeThreadLocal));
    for (int64_t l = 0; l < layers; ++l) {
      MlaTokenParams p = ps[l];
      if (traced) p.stamps = stamps.get() + l * grid * kMlaTokenStamps;
      launch_mla_token(p, st);
    }
    WS_CUDA_CHECK(cudaStreamEndCapture(st, &g));
    WS_CUDA_CHECK(cudaGraphInstantiate(&e, g, 0));
    WS_CUDA_CHECK(cudaGraphDestroy(g));
    return e;
  };
  launch_mla_token(ps[0], st);  // shared-memory opt-in outside the capture
  WS_CUDA_CHECK(cudaStreamSynchronize(st));
  cudaGraphExec_t plain = capture(false), traced = capture(true);
  cudaEvent_t a, b;
  WS_CUDA_CHECK(cudaEventCreate(&a));
  WS_CUDA_CHECK(cudaEventCreate(&b));
  std::vector<float> ms;
  for (int64_t r = 0; r < reps + 3; ++r) {
    WS_CUDA_CHECK(cudaEventRecord(a, st));
    WS_CUDA_CHECK(cudaGraphLaunch(plain, st));
    WS_CUDA_CHECK(cudaEventRecord(b, st));
    WS_CUDA_CHECK(cudaEventSynchronize(b));
    float x = 0;
    WS_CUDA_CHECK(cudaEventElapsedTime(&x, a, b));
    if (r >= 3) ms.push_back(x);
  }
  std::sort(ms.begin(), ms.end());
  std::printf(
      "mla_token: heads %ld, context %ld, page %ld, cluster %d, %ld layers: %.2f us per launch\n",
      long(heads), long(context), long(page), grid / int(heads / 2), long(layers),
      ms[ms.size() / 2] * 1e3 / layers);
  WS_CUDA_CHECK(cudaGraphLaunch(traced, st));
  WS_CUDA_CHECK(cudaStreamSynchronize(st));
  // Layers 1 .. L-2: the first has no predecessor in the graph, the last no successor.
  const auto s = stamps.download();
  std::vector<unsigned long long> mid(s.begin() + grid * kMlaTokenStamps,
                                      s.end() - grid * kMlaTokenStamps);
  std::printf("%s", mla_token_stamp_report(mid, layers - 2, grid).c_str());
  return 0;
}
