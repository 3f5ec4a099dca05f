// `wideserve ep-bench`: DeepEP-style dispatch + combine of one MoE layer on CPU ranks (threads or
// Gloo over loopback TCP): bytes moved and time per layer versus the number of ranks, with memcpy
// bandwidth measured in the same run as the physical reference.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>
#include <thread>

#include "cli/command.h"
#include "common/check.h"
#include "dist/gloo_group.h"
#include "dist/tcp_store.h"
#include "dist/thread_group.h"
#include "moe/ep_dispatcher.h"

namespace wideserve::cli {
namespace {

struct BenchArgs {
  std::vector<int> ranks = {1, 2, 4, 8};
  int64_t hidden = 7168, tokens = 128, experts = 256, top_k = 8;
  int iters = 10;
  std::string backend = "threads";
  std::string mode = "normal";
};

double memcpy_gbps() {
  const size_t n = size_t{256} << 20;
  std::vector<char> a(n, 1), b(n);
  std::memcpy(b.data(), a.data(), n);
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 4; ++i) std::memcpy(b.data(), a.data(), n);
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return 4.0 * n / s / 1e9;
}

int run(const BenchArgs& a) {
  std::printf("memcpy bandwidth (one thread, 256 MiB): %.1f GB/s\n", memcpy_gbps());
  std::printf("hidden %lld, %lld tokens per rank, %lld experts, top-%lld, mode %s, backend %s\n",
              (long long)a.hidden, (long long)a.tokens, (long long)a.experts, (long long)a.top_k,
              a.mode.c_str(), a.backend.c_str());
  std::printf(
      "| ranks | token copies/rank | MB sent/rank/layer | dispatch ms | combine ms | GB/s/rank "
      "|\n");
  std::printf("|---|---|---|---|---|---|\n");
  const auto mode =
      a.mode == "low_latency" ? moe::DispatchMode::kLowLatency : moe::DispatchMode::kNormal;
  for (int n : a.ranks) {
    WS_CHECK_ARG(a.experts % n == 0, "{} experts over {} ranks", a.experts, n);
    std::vector<std::unique_ptr<dist::ProcessGroup>> groups;
    std::unique_ptr<dist::TcpStoreServer> server;
    if (a.backend == "gloo") {
      server = std::make_unique<dist::TcpStoreServer>("127.0.0.1", 0);
      groups.resize(n);
      std::vector<std::thread> ts;
      for (int r = 0; r < n; ++r)
        ts.emplace_back([&, r] {
          dist::GlooOptions o;
          o.store_port = server->port();
          o.prefix = "bench" + std::to_string(n);
          groups[r] = dist::make_gloo_group(r, n, o);
        });
      for (auto& t : ts) t.join();
    } else {
      groups = dist::make_thread_group(n);
    }
    std::vector<moe::DispatchCounters> counters(n);
    std::vector<std::thread> ts;
    for (int r = 0; r < n; ++r)
      ts.emplace_back([&, r] {
        const int64_t H = a.hidden, T = a.tokens, K = a.top_k;
        moe::EpDispatcher d(*groups[r], H, static_cast<int32_t>(K),
                            static_cast<int32_t>(a.experts / n), T);
        std::mt19937 rng(r);
        std::vector<float> x(T * H, 0.5f), w(T * K, 0.1f), out(T * H);
        std::vector<int32_t> phys(T * K);
        for (int64_t t = 0; t < T; ++t) {  // K distinct random experts per token
          std::vector<int32_t> all(a.experts);
          for (int32_t e = 0; e < a.experts; ++e) all[e] = e;
          std::shuffle(all.begin(), all.end(), rng);
          for (int64_t k = 0; k < K; ++k) phys[t * K + k] = all[k];
        }
        for (int it = 0; it < a.iters + 1; ++it) {
          if (it == 1) d.reset_counters();  // first round warms up
          d.dispatch(mode, x.data(), T, phys.data(), w.data());
          std::vector<float> y(d.num_received() * H, 1.0f);
          d.combine(y.data(), out.data());
        }
        counters[r] = d.counters();
      });
    for (auto& t : ts) t.join();
    double sent = 0, disp = 0, comb = 0, copies = 0;
    for (const auto& c : counters) {
      sent += c.bytes_sent;
      disp = std::max(disp, c.dispatch_seconds);
      comb = std::max(comb, c.combine_seconds);
      copies += c.tokens_sent;
    }
    const double layers = a.iters;
    std::printf("| %d | %.0f | %.2f | %.3f | %.3f | %.2f |\n", n, copies / n / layers,
                sent / n / layers / 1e6, disp / layers * 1e3, comb / layers * 1e3,
                sent / n / (disp + comb) / 1e9);
  }
  return 0;
}

WS_REGISTER_COMMAND("ep-bench", "Benchmark EP dispatch/combine volume and time on CPU ranks",
                    [](CLI::App& app) {
                      auto a = std::make_shared<BenchArgs>();
                      app.add_option("--ranks", a->ranks, "Rank counts to run");
                      app.add_option("--hidden", a->hidden, "Hidden size");
                      app.add_option("--tokens", a->tokens, "Tokens per rank");
                      app.add_option("--experts", a->experts, "Physical experts");
                      app.add_option("--top-k", a->top_k, "Experts per token");
                      app.add_option("--iters", a->iters, "Layers timed");
                      app.add_option("--backend", a->backend, "threads|gloo")
                          ->check(CLI::IsMember({"threads", "gloo"}));
                      app.add_option("--mode", a->mode, "normal|low_latency")
                          ->check(CLI::IsMember({"normal", "low_latency"}));
                      return [a] { return run(*a); };
                    });

}  // namespace
}  // namespace wideserve::cli
