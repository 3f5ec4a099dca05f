// GPU model step times against the bytes-moved floor and the matrix rate: decode steps at several
// batch sizes over a cached context, and prefill of long prompts, on DeepSeek-V2-Lite or V3
// dimensions with random weights drawn on the device (--load-format dummy). The floor uses the
// device-to-device copy bandwidth measured in the same run.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <utility>
#include <vector>

#include "backend/cuda/attention/mla_token.h"
#include "backend/cuda/common/cuda_check.h"
#include "backend/cuda/common/device_buffer.h"
#include "backend/cuda/common/kernel_trace.h"
#include "backend/cuda/model/cuda_model.h"
#include "backend/cuda/ops/ops.h"
#include "model/make_model.h"

using namespace wideserve;

namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Device-to-device copy GB/s counting bytes read plus written.
double copy_bandwidth() {
  const size_t n = size_t(2) << 30;
  cuda::DeviceBuffer<uint8_t> a(n), b(n);
  cudaMemset(a.get(), 1, n);
  cudaEvent_t e0, e1;
  cudaEventCreate(&e0);
  cudaEventCreate(&e1);
  std::vector<double> t;
  for (int i = 0; i < 8; ++i) {
    cudaEventRecord(e0);
    cudaMemcpy(b.get(), a.get(), n, cudaMemcpyDeviceToDevice);
    cudaEventRecord(e1);
    cudaEventSynchronize(e1);
    float ms = 0;
    cudaEventElapsedTime(&ms, e0, e1);
    if (i >= 2) t.push_back(ms);
  }
  return 2.0 * n / (median(t) * 1e-3) / 1e9;
}

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// One traced step (kernel_trace.h): every launch to `path` as CSV, then the MoE layers' launches
// averaged by position (layers split at the launch key that follows the embedding; the first
// and last layers are left out), in us from the layer's first launch.
void report_trace(const std::vector<cuda::KernelTraceRecord>& recs, const std::string& path) {
  const auto launches = cuda::kernel_trace_launches(recs);
  if (launches.empty()) return;
  const uint64_t t0 = launches.front().start;
  std::ofstream f(path);
  f << "kernel,grid_x,grid_y,ctas,start_us,wait_first_us,wait_last_us,end_us\n";
  auto us = [](uint64_t t, uint64_t base) {
    return t == 0 ? -1.0 : (double(t) - double(base)) / 1e3;
  };
  for (const auto& l : launches)
    f << cuda::kernel_trace_name(l.kernel) << ',' << (l.grid & 0xffff) << ',' << (l.grid >> 16)
      << ',' << l.ctas << ',' << us(l.start, t0) << ',' << us(l.wait_first, t0) << ','
      << us(l.wait_last, t0) << ',' << us(l.end, t0) << '\n';
  // Layer starts: launches with the key of the one after the embedding.
  size_t first = 0;
  while (first < launches.size() &&
         launches[first].kernel == static_cast<uint32_t>(cuda::TraceKernel::kEmbedding))
    ++first;
  if (first >= launches.size()) return;
  const auto key = std::make_pair(launches[first].kernel, launches[first].grid);
  std::vector<size_t> starts;
  for (size_t i = first; i < launches.size(); ++i)
    if (std::make_pair(launches[i].kernel, launches[i].grid) == key) starts.push_back(i);
  if (starts.size() < 4) return;
  // Per position: sums over layers 1 .. n-2 with the same launch count as layer 1.
  const size_t len = starts[2] - starts[1];
  struct Acc {
    uint32_t kernel = 0, grid = 0, ctas = 0;
    double s = 0, w0 = 0, w1 = 0, e = 0;
  };
  std::vector<Acc> acc(len);
  int n = 0;
  double span = 0;
  for (size_t li = 1; li + 2 < starts.size(); ++li) {
    if (starts[li + 1] - starts[li] != len) continue;
    const uint64_t base = launches[starts[li]].start;
    for (size_t j = 0; j < len; ++j) {
      const auto& l = launches[starts[li] + j];
      acc[j].kernel = l.kernel;
      acc[j].grid = l.grid;
      acc[j].ctas = l.ctas;
      acc[j].s += us(l.start, base);
      acc[j].w0 += l.wait_first ? us(l.wait_first, base) : 0;
      acc[j].w1 += l.wait_last ? us(l.wait_last, base) : 0;
      acc[j].e += us(l.end, base);
    }
    span += us(launches[starts[li + 1]].start, base);
    ++n;
  }
  if (n == 0) return;
  std::printf("\ntrace: %d layers of %zu launches, layer start to next layer start %.1f us\n", n,
              len, span / n);
  std::printf(
      "| # | kernel | grid | CTAs | start | first wait | last wait | end "
      "|\n|---|---|---|---|---|---|---|---|\n");
  for (size_t j = 0; j < len; ++j)
    std::printf("| %zu | %s | %ux%u | %u | %.1f | %.1f | %.1f | %.1f |\n", j,
                cuda::kernel_trace_name(acc[j].kernel), acc[j].grid & 0xffff, acc[j].grid >> 16,
                acc[j].ctas, acc[j].s / n, acc[j].w0 / n, acc[j].w1 / n, acc[j].e / n);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"GPU model step benchmark"};
  std::string preset = "v2-lite", batches = "1,32,128,256", prefills = "2048,8192";
  int64_t layers = 0, context = 1024, reps = 10, graph_bs = 256;
  bool fp8 = false;
  std::string mla = "default", moe_path = "default", grouped = "default";
  std::string small_m = "default", moe_small = "default", gemv = "default", bgemv = "default";
  std::string fuse = "default", pdl = "default", fuse_qkv = "default", branch = "default",
              norm_gemv = "default", router_route = "default", mla_token = "default";
  int autotune = -1;
  std::string trace;
  bool token_stamps = false, token_row_copies = false, step_events = false;
  std::string o_early = "default", norm_inside = "default";
  app.add_option("--preset", preset, "v2-lite | v3");
  app.add_option("--layers", layers, "Decoder layers (0 = preset's)");
  app.add_flag("--fp8", fp8, "FP8 block-scaled weights where shapes allow");
  app.add_option("--batches", batches, "Decode batch sizes");
  app.add_option("--context", context, "Cached tokens per sequence for decode steps");
  app.add_option("--prefills", prefills, "Prompt lengths for prefill");
  app.add_option("--reps", reps, "Timed repetitions");
  app.add_option("--cuda-graph-max-bs", graph_bs, "Decode steps up to this batch use CUDA graphs");
  app.add_option("--mla-decode", mla, "MLA decode kernel: default | v3 | v4 | v5 | v6")
      ->check(CLI::IsMember({"default", "v3", "v4", "v5", "v6"}));
  app.add_option("--moe-grouped", grouped, "FP8 grouped expert GEMM: default | rows | swap")
      ->check(CLI::IsMember({"default", "rows", "swap"}));
  app.add_option("--moe-path", moe_path,
                 "MoE routing/align kernels: default | auto | large | small | rank")
      ->check(CLI::IsMember({"default", "auto", "large", "small", "rank"}));
  app.add_option("--fp8-small-m", small_m, "Small-M FP8 kernel where it wins: default | on | off")
      ->check(CLI::IsMember({"default", "on", "off"}));
  app.add_option("--fp8-gemv", gemv, "FP8 GEMV kernel at m <= 4: default | on | off")
      ->check(CLI::IsMember({"default", "on", "off"}));
  app.add_option("--bf16-gemv", bgemv, "BF16 GEMV kernel at m <= 4: default | on | off")
      ->check(CLI::IsMember({"default", "on", "off"}));
  app.add_option("--moe-small", moe_small, "Fused MoE for steps of <= 8 tokens: default | on | off")
      ->check(CLI::IsMember({"default", "on", "off"}));
  app.add_option(
         "--fuse-ops", fuse,
         "Norm + FP8 quantization, latent + query rope, GEMV + residual: default | on | off")
      ->check(CLI::IsMember({"default", "on", "off"}));
  app.add_option("--pdl", pdl, "Programmatic dependent launch of our kernels: default | on | off")
      ->check(CLI::IsMember({"default", "on", "off"}));
  app.add_option("--fuse-qkv-a", fuse_qkv, "q_a and kv_a as one GEMM: default | on | off")
      ->check(CLI::IsMember({"default", "on", "off"}));
  app.add_option("--shared-branch", branch,
                 "Small MoE: shared experts on a second stream: default | on | off")
      ->check(CLI::IsMember({"default", "on", "off"}));
  app.add_option("--router-route", router_route,
                 "A few tokens: router GEMV + routing in one launch: default | on | off")
      ->check(CLI::IsMember({"default", "on", "off"}));
  app.add_option("--norm-in-gemv", norm_gemv,
                 "No q LoRA: input RMSNorm made by the q + kv_a GEMV pair: default | on | off")
      ->check(CLI::IsMember({"default", "on", "off"}));
  app.add_option(
         "--mla-token", mla_token,
         "One-token steps: the attention core in one clustered launch: default | on | off | 8 | 16 "
         "(on with that cluster size)")
      ->check(CLI::IsMember({"default", "on", "off", "8", "16"}));
  app.add_option("--moe-norm-inside", norm_inside,
                 "One token: the post-attention norm made by the router and up launches (shared "
                 "experts as units): default | on | off")
      ->check(CLI::IsMember({"default", "on", "off"}));
  app.add_option("--o-early", o_early,
                 "With the one launch: o_proj's GEMV reads h before its wait: default | on | off")
      ->check(CLI::IsMember({"default", "on", "off"}));
  app.add_flag("--mla-token-row-copies", token_row_copies,
               "The one launch: cache rows by one bulk copy per row, not tensor-map boxes");
  app.add_flag(
      "--mla-token-stamps", token_stamps,
      "Batch 1: print the clustered attention core's phase stamps (mla_token.h) of one step");
  app.add_flag("--step-events", step_events,
               "Also print the device's span of each step (events around its staging and work, "
               "not the ids' copy back): the rest of the step time is the host's");
  app.add_option("--gemm-autotune", autotune,
                 "cuBLASLt candidates timed per plan (-1 = default, <= 1 = heuristic's first)");
  app.add_option("--trace", trace,
                 "Trace one decode step per batch (kernel_trace.h): CSV to <trace>.b<batch>.csv");
  CLI11_PARSE(app, argc, argv);
  auto list = [](const std::string& s) {
    std::vector<int64_t> v;
    size_t p = 0;
    while (p < s.size()) {
      size_t q = s.find(',', p);
      v.push_back(std::stoll(s.substr(p, q - p)));
      p = q == std::string::npos ? s.size() : q + 1;
    }
    return v;
  };
  const auto bs = list(batches), ps = list(prefills);
  const int64_t max_b = *std::max_element(bs.begin(), bs.end());
  const int64_t max_p = *std::max_element(ps.begin(), ps.end());

  const double bw = copy_bandwidth();
  std::printf("device copy bandwidth (read+write): %.0f GB/s\n", bw);
  {
    int dev = 0, l2 = 0;
    cudaGetDevice(&dev);
    cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, dev);
    std::printf("L2 cache: %.1f MiB\n", l2 / 1048576.0);
  }

  std::string dir = "/tmp/ws_step_bench_" + preset + std::to_string(layers) + (fp8 ? "_fp8" : "");
  model::MakeModelOptions mo;
  mo.preset = preset;
  mo.out_dir = dir;
  mo.fp8 = fp8;
  mo.layers = layers;
  mo.config_only = true;
  model::make_model(mo);

  const int64_t page = 64;
  const int64_t pages_per_seq = (context + 1 + page - 1) / page;
  cuda::CudaModelOptions o;
  o.page_size = page;
  o.max_seqs = std::max<int64_t>(max_b, 1);
  o.max_step_tokens = std::max(max_b, max_p);
  o.num_pages = std::max(max_b * pages_per_seq, (max_p + page - 1) / page) + 8;
  o.load_format = "dummy";
  o.dummy_fp8 = fp8;
  o.cuda_graph_max_bs = graph_bs;
  if (mla != "default")
    o.mla_decode = mla == "v6"   ? cuda::MlaDecodeKernel::kV6
                   : mla == "v5" ? cuda::MlaDecodeKernel::kV5
                   : mla == "v4" ? cuda::MlaDecodeKernel::kV4
                                 : cuda::MlaDecodeKernel::kV3;
  if (moe_path != "default")
    o.moe_path = moe_path == "auto"    ? cuda::MoePath::kAuto
                 : moe_path == "small" ? cuda::MoePath::kSmall
                 : moe_path == "rank"  ? cuda::MoePath::kRank
                                       : cuda::MoePath::kLarge;
  if (grouped != "default")
    o.moe_grouped_fp8 =
        grouped == "rows" ? cuda::GroupedFp8Kernel::kRowTiles : cuda::GroupedFp8Kernel::kSwapAB;
  if (small_m != "default") o.fp8_small_m = small_m == "on";
  if (moe_small != "default") o.moe_small = moe_small == "on";
  if (gemv != "default") o.fp8_gemv = gemv == "on";
  if (bgemv != "default") o.bf16_gemv = bgemv == "on";
  if (fuse != "default") o.fuse_ops = fuse == "on";
  if (pdl != "default") o.pdl = pdl == "on";
  if (autotune >= 0) o.gemm_autotune = autotune;
  if (fuse_qkv != "default") o.fuse_qkv_a = fuse_qkv == "on";
  if (branch != "default") o.moe_shared_branch = branch == "on";
  if (norm_gemv != "default") o.norm_in_gemv = norm_gemv == "on";
  if (router_route != "default") o.moe_router_route = router_route == "on";
  if (mla_token != "default") o.mla_token = mla_token != "off";
  if (mla_token == "8" || mla_token == "16") o.mla_token_cluster = std::stoi(mla_token);
  o.mla_token_row_copies = token_row_copies;
  if (o_early != "default") o.o_proj_early_residual = o_early == "on";
  if (norm_inside != "default") o.moe_norm_inside = norm_inside == "on";
  std::printf(
      "gemm autotune: %d candidates, fused q_a + kv_a: %s, shared-expert branch: %s, norm in "
      "GEMV: %s, router + routing in one launch: %s, mla token: %s\n",
      o.gemm_autotune, o.fuse_qkv_a ? "on" : "off", o.moe_shared_branch ? "on" : "off",
      o.norm_in_gemv ? "on" : "off", o.moe_router_route ? "on" : "off", o.mla_token ? "on" : "off");
  std::printf(
      "kernels: mla decode %s, moe path %d, fp8 small-M %s, fp8 gemv %s, bf16 gemv %s, fused "
      "small MoE %s, fused ops %s, pdl %s\n",
      o.mla_decode == cuda::MlaDecodeKernel::kV6   ? "v6"
      : o.mla_decode == cuda::MlaDecodeKernel::kV5 ? "v5"
      : o.mla_decode == cuda::MlaDecodeKernel::kV4 ? "v4"
                                                   : "v3",
      static_cast<int>(o.moe_path), o.fp8_small_m ? "on" : "off", o.fp8_gemv ? "on" : "off",
      o.bf16_gemv ? "on" : "off", o.moe_small ? "on" : "off", o.fuse_ops ? "on" : "off",
      o.pdl ? "on" : "off");
  // Room for 128 layers of 256 CTAs (more than any preset).
  cuda::DeviceBuffer<unsigned long long> stamps(token_stamps ? 128 * 256 * cuda::kMlaTokenStamps
                                                             : 0);
  if (token_stamps) {
    WS_CUDA_CHECK(cudaMemset(stamps.get(), 0, stamps.size() * sizeof(unsigned long long)));
    o.mla_token_stamps = stamps.get();
  }
  auto m = cuda::CudaModel::load(dir, o);
  if (step_events) m->set_step_timing(true);
  const auto& c = m->config();
  // Random latent cache: the decode steps read real-looking values.
  cuda::launch_fill_random_bf16(static_cast<__nv_bfloat16*>(m->kv_data()),
                                static_cast<int64_t>(m->kv_bytes() / 2), 7, 1.0f, nullptr);
  cudaDeviceSynchronize();

  // Bytes a decode step must read: every non-expert weight, the experts its tokens touch (expected
  // number under uniform routing), and each sequence's cached rows in every layer.
  const double wbytes = static_cast<double>(m->weight_bytes());
  const int64_t moe_layers = [&] {
    int64_t n = 0;
    for (int64_t l = 0; l < c.num_hidden_layers; ++l) n += c.is_moe_layer(l);
    return n;
  }();
  const double E = static_cast<double>(c.n_routed_experts), K = c.num_experts_per_tok;
  const bool expert_fp8 = fp8 && c.moe_intermediate_size % 128 == 0 && c.hidden_size % 128 == 0;
  const double expert_bytes = 3.0 * c.moe_intermediate_size * c.hidden_size * (expert_fp8 ? 1 : 2);
  const double all_experts = moe_layers * E * expert_bytes;
  const double embed_bytes = static_cast<double>(c.vocab_size) * c.hidden_size * 2;
  std::printf("model: %s, %lld layers, %s, weights %.2f GiB (experts %.2f GiB)\n", preset.c_str(),
              static_cast<long long>(c.num_hidden_layers), fp8 ? "FP8" : "BF16",
              wbytes / 1073741824.0, all_experts / 1073741824.0);

  std::printf("\nCUDA graphs for batch <= %lld\n", static_cast<long long>(graph_bs));
  std::printf("\n| batch | context | step ms (median) | floor ms | step/floor | tok/s |\n");
  std::printf("|---|---|---|---|---|---|\n");
  for (int64_t B : bs) {
    std::vector<std::vector<int32_t>> pg(B), tok(B);
    std::vector<model::SequenceInput> in(B);
    for (int64_t b = 0; b < B; ++b) {
      for (int64_t j = 0; j < pages_per_seq; ++j)
        pg[b].push_back(static_cast<int32_t>(b * pages_per_seq + j));
      tok[b] = {static_cast<int32_t>((b * 7919) % 100000)};
      in[b] = {tok[b], context, pg[b], false};
    }
    std::vector<int32_t> ids;
    for (int i = 0; i < 3; ++i) m->forward_greedy(in, &ids);
    std::vector<double> t, dev;
    for (int64_t i = 0; i < reps; ++i) {
      const double t0 = now();
      m->forward_greedy(in, &ids);
      t.push_back(now() - t0);
      if (step_events) dev.push_back(m->last_step_device_ms());
    }
    if (step_events)
      std::printf("batch %lld: device span %.3f ms (median), step %.3f ms\n",
                  static_cast<long long>(B), median(dev), median(t) * 1e3);
    if (token_stamps && B == 1) {  // the last step's stamps, every layer but the first and last
      WS_CUDA_CHECK(cudaDeviceSynchronize());
      cuda::MlaTokenParams shape;
      shape.heads = c.num_attention_heads;
      shape.cluster = o.mla_token_cluster;
      const int grid = cuda::mla_token_grid(shape);
      const auto all = stamps.download();
      const int64_t L = c.num_hidden_layers;
      std::vector<unsigned long long> mid(all.begin() + grid * cuda::kMlaTokenStamps,
                                          all.begin() + (L - 1) * grid * cuda::kMlaTokenStamps);
      std::printf("\nmla_token phases in the step (layers 1 .. %lld):\n%s\n",
                  static_cast<long long>(L - 2),
                  cuda::mla_token_stamp_report(mid, L - 2, grid).c_str());
    }
    if (!trace.empty()) {
      cuda::kernel_trace_start();
      m->forward_greedy(in, &ids);
      cudaDeviceSynchronize();
      int64_t dropped = 0;
      const auto recs = cuda::kernel_trace_stop(&dropped);
      std::printf("\nbatch %lld: %zu trace records (%lld dropped)\n", static_cast<long long>(B),
                  recs.size(), static_cast<long long>(dropped));
      report_trace(recs, trace + ".b" + std::to_string(B) + ".csv");
    }
    const double touched = E > 0 ? E * (1.0 - std::pow(1.0 - K / E, static_cast<double>(B))) : 0;
    const double bytes =
        (wbytes - all_experts - embed_bytes) + moe_layers * touched * expert_bytes +
        static_cast<double>(B) * (context + 1) * c.kv_cache_dim() * 2 * c.num_hidden_layers;
    const double floor_s = bytes / (bw * 1e9);  // reads at the copy's read+write rate
    const double step = median(t);
    std::printf("| %lld | %lld | %.3f | %.3f | %.2f | %.0f |\n", static_cast<long long>(B),
                static_cast<long long>(context), step * 1e3, floor_s * 1e3, step / floor_s,
                B / step);
  }

  if (!m->gemm_tune_records().empty()) {
    std::printf("\n| cuBLASLt plan | m | n | k | candidates | chosen | heuristic us | best us |\n");
    std::printf("|---|---|---|---|---|---|---|---|\n");
    for (const auto& r : m->gemm_tune_records())
      std::printf("| %s | %lld | %lld | %lld | %d | %d | %.1f | %.1f |\n", r.fp8 ? "fp8" : "bf16",
                  static_cast<long long>(r.m), static_cast<long long>(r.n),
                  static_cast<long long>(r.k), r.candidates, r.chosen, r.heuristic_us, r.best_us);
  }

  // Prefill: FLOPs of the linears per token (2 x active parameters) plus absorbed attention.
  const double H = c.hidden_size, nh = c.num_attention_heads, row = c.kv_cache_dim(),
               lat = c.kv_lora_rank, qk = c.qk_head_dim(), vd = c.v_head_dim;
  double attn_params =
      (c.q_lora_rank > 0 ? H * c.q_lora_rank + c.q_lora_rank * nh * qk : H * nh * qk) + H * row +
      nh * c.qk_nope_head_dim * lat + nh * lat * vd + nh * vd * H;
  double mlp_params = 0;
  for (int64_t l = 0; l < c.num_hidden_layers; ++l)
    mlp_params += c.is_moe_layer(l)
                      ? 3.0 * H * c.moe_intermediate_size * (K + c.n_shared_experts) + H * E
                      : 3.0 * H * c.intermediate_size;
  const double linear_flops_per_tok = 2.0 * (attn_params * c.num_hidden_layers + mlp_params);
  std::printf("\n| prompt | prefill ms | tok/s | TFLOP/s (linears + attention) |\n");
  std::printf("|---|---|---|---|\n");
  for (int64_t P : ps) {
    std::vector<int32_t> prompt(P), pages;
    for (int64_t i = 0; i < P; ++i) prompt[i] = static_cast<int32_t>((i * 104729) % 100000);
    for (int64_t j = 0; j < (P + page - 1) / page; ++j) pages.push_back(static_cast<int32_t>(j));
    model::SequenceInput s{prompt, 0, pages, false};
    std::vector<int32_t> ids;
    m->forward_greedy({&s, 1}, &ids);
    std::vector<double> t;
    for (int64_t i = 0; i < std::max<int64_t>(3, reps / 3); ++i) {
      const double t0 = now();
      m->forward_greedy({&s, 1}, &ids);
      t.push_back(now() - t0);
    }
    const double attn_flops = nh * (row + lat) * 2.0 * (P * (P + 1) / 2.0) * c.num_hidden_layers;
    const double flops = linear_flops_per_tok * P + attn_flops;
    const double step = median(t);
    std::printf("| %lld | %.2f | %.0f | %.1f |\n", static_cast<long long>(P), step * 1e3, P / step,
                flops / step / 1e12);
  }
  std::filesystem::remove_all(dir);
  return 0;
}
