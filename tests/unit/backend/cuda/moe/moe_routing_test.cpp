// GPU routing, all kernels (MoePath::kLarge: E-strided warp per token; kSmall: the decode-latency
// kernel; kRank: a CTA per token, slots by rank) and the automatic choice, on DeepSeek V3 / V2 /
// V2-Lite and tiny / wide / odd-group configurations, T = 1 .. 4096:
//   - small and rank vs large: bit-identical ids and weights (the kernels share every float
//   expression);
//   - each vs the CPU router (src/moe/router.cpp): identical ids (random logits may differ on
//   tokens
//     whose choices are within an ulp of exp(); coarse logits with exact ties may not), weights
//     within 1e-6 relative (2e-6 for softmax: the GPU sums E exponentials in another order);
//   - shapes the small kernel does not take (top_k > 8, > 32 experts per lane) fall back.
// Plus routing + align captured in a CUDA graph on each path.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "../gpu_test_util.h"
#include "backend/cuda/moe/moe.h"
#include "backend/cuda/moe/moe_ref.h"
#include "backend/cuda/ops/ops.h"
#include "moe/router.h"
#include "moe_test_util.h"

namespace wideserve::test {
namespace {

struct RouteCfg {
  const char* name;
  int64_t experts, top_k, n_group, topk_group;
  int scoring, method;
  bool renorm, bias;
  float scale;
  bool small_ok;  // expected moe_routing_small_supported()
};

const RouteCfg kConfigs[] = {
    {"v3", 256, 8, 8, 4, 1, 2, true, true, 2.5f, true},
    {"v2", 160, 6, 8, 3, 0, 1, false, false, 16.0f, true},
    {"v2_lite", 64, 6, 1, 1, 0, 0, false, false, 1.0f, true},
    {"v2_lite_glg_one_group", 64, 6, 1, 1, 0, 1, true, false, 1.0f, true},
    {"e12_g4_k3_noaux", 12, 3, 4, 2, 1, 2, true, true, 1.5f, true},
    {"e12_g4_k3_glg_softmax", 12, 3, 4, 2, 0, 1, true, false, 1.0f, true},
    {"e8_g2_k2_noaux", 8, 2, 2, 1, 1, 2, false, true, 1.0f, true},
    {"e16_g4_k4_noaux", 16, 4, 4, 2, 1, 2, true, true, 1.5f, true},
    {"groups_of_one", 8, 2, 8, 3, 1, 2, false, true, 1.0f, true},
    {"e33_greedy_sigmoid", 33, 3, 1, 1, 1, 0, true, false, 1.0f, true},
    {"e96_g3_noaux", 96, 8, 3, 1, 1, 2, true, true, 1.0f, true},  // 3 groups on 4 lane sets
    {"e512_greedy_softmax", 512, 8, 1, 1, 0, 0, true, false, 1.0f, true},  // 16 per lane
    {"e1024_g32_noaux", 1024, 8, 32, 4, 1, 2, true, true, 2.5f, true},     // 32 per lane
    {"e8_k8_all", 8, 8, 2, 1, 1, 2, true, true, 1.0f, true},               // picks masked experts
    {"v3_k16_fallback", 256, 16, 8, 4, 1, 2, true, true, 2.5f, false},     // top_k > 8
    {"e960_g3_fallback", 960, 8, 3, 2, 1, 2, true, true, 1.0f, false},     // 40 per lane
};

void PrintTo(const RouteCfg& c, std::ostream* os) {
  *os << c.name;
}

// 16384 = kMoeRoutingSmallTokens, the largest T kAuto gives the small routing.
const int64_t kTokens[] = {1, 2, 31, 64, 256, 257, 4096, 16384};

moe::RouterParams cpu_params(const RouteCfg& c) {
  moe::RouterParams p;
  p.scoring = c.scoring == 1 ? moe::ScoringFunc::kSigmoid : moe::ScoringFunc::kSoftmax;
  p.method = c.method == 0   ? moe::TopkMethod::kGreedy
             : c.method == 1 ? moe::TopkMethod::kGroupLimitedGreedy
                             : moe::TopkMethod::kNoauxTc;
  p.num_experts = static_cast<int32_t>(c.experts);
  p.top_k = static_cast<int32_t>(c.top_k);
  p.n_group = static_cast<int32_t>(c.n_group);
  p.topk_group = static_cast<int32_t>(c.topk_group);
  p.norm_topk_prob = c.renorm;
  p.routed_scaling_factor = c.scale;
  return p;
}

cuda::MoeRoutingParams gpu_params(const RouteCfg& c, int64_t T, const float* logits,
                                  const float* bias, int32_t* ids, float* w) {
  cuda::MoeRoutingParams p;
  p.logits = logits;
  p.bias = c.bias ? bias : nullptr;
  p.num_tokens = T;
  p.num_experts = c.experts;
  p.top_k = c.top_k;
  p.n_group = c.n_group;
  p.topk_group = c.topk_group;
  p.scoring = c.scoring;
  p.topk_method = c.method;
  p.renormalize = c.renorm;
  p.routed_scaling_factor = c.scale;
  p.topk_ids = ids;
  p.topk_weights = w;
  return p;
}

struct Routed {
  std::vector<int32_t> ids;
  std::vector<float> w;
};

Routed run_gpu(const RouteCfg& c, int64_t T, const cuda::DeviceBuffer<float>& logits,
               const cuda::DeviceBuffer<float>& bias, cuda::MoePath path) {
  auto d_ids = poisoned<int32_t>(T * c.top_k, 0x7F);
  auto d_w = poisoned<float>(T * c.top_k);
  cuda::launch_moe_routing_path(gpu_params(c, T, logits.get(), bias.get(), d_ids.get(), d_w.get()),
                                path, nullptr);
  WS_CUDA_CHECK(cudaDeviceSynchronize());
  return {d_ids.download(), d_w.download()};
}

// Tokens whose ids differ from the CPU router; checks every output was written and the weights
// of the agreeing tokens.
int64_t compare_cpu(const RouteCfg& c, int64_t T, const Routed& cpu, const Routed& gpu,
                    const std::string& at) {
  const int64_t K = c.top_k;
  const float rel = c.scoring == 0 ? 2e-6f : 1e-6f;
  int64_t mismatched = 0, bad_w = 0;
  for (int64_t t = 0; t < T; ++t) {
    bool same = true;
    for (int64_t j = 0; j < K; ++j) {
      const int32_t id = gpu.ids[t * K + j];
      EXPECT_TRUE(id >= 0 && id < c.experts) << at << " t=" << t << " id " << id;
      same = same && id == cpu.ids[t * K + j];
    }
    if (!same) {
      ++mismatched;
      continue;
    }
    for (int64_t j = 0; j < K; ++j) {
      const float a = gpu.w[t * K + j], b = cpu.w[t * K + j];
      if (!(std::fabs(a - b) <= rel * std::fabs(b)) && bad_w++ < 5)
        ADD_FAILURE() << at << " t=" << t << " j=" << j << " weight " << a << " vs cpu " << b;
    }
  }
  EXPECT_EQ(bad_w, 0) << at;
  return mismatched;
}

class CudaMoeRoutingConfigs : public ::testing::TestWithParam<RouteCfg> {};

// Random logits (bias ~0.1) and coarse logits with per-group biases (exact ties between experts
// and between groups).
// One test per configuration: every T, both inputs, every path.
TEST_P(CudaMoeRoutingConfigs, PathsBitIdenticalAndMatchCpuRouter) {
  WS_REQUIRE_GPU();
  const RouteCfg& c = GetParam();
  const int64_t E = c.experts;
  {
    cuda::MoeRoutingParams q = gpu_params(c, 1, nullptr, nullptr, nullptr, nullptr);
    ASSERT_EQ(cuda::moe_routing_small_supported(q), c.small_ok) << c.name;
  }
  std::mt19937_64 gen(static_cast<uint64_t>(E * 131 + c.top_k));
  std::uniform_int_distribution<int> coarse(-3, 3), nonneg(0, 3);
  for (const bool ties : {false, true}) {
    for (const int64_t T : kTokens) {
      const std::string at =
          std::string(c.name) + (ties ? " ties" : " random") + " T=" + std::to_string(T);
      std::vector<float> logits, bias;
      if (ties) {
        logits.resize(T * E);
        bias.resize(E);
        // Sigmoid logits >= 0: sigmoid(x) + sigmoid(-x) = 1 would make group sums equal in exact
        // arithmetic but not after each side's exp() rounding.
        for (auto& v : logits) v = 0.5f * (c.scoring == 1 ? nonneg(gen) : coarse(gen));
        // One bias per group: with a bias per expert, (s1 + b1) + (s2 + b2) and (s1 + b2) +
        // (s2 + b1) are group sums equal in exact arithmetic that each side rounds its own way
        // (the CPU's exp and CUDA's differ by an ulp), a tie no reference can pin down. Per-group
        // biases keep every tie exact on both sides.
        const int64_t group = E / std::max<int64_t>(c.n_group, 1);
        std::vector<float> group_bias(static_cast<size_t>(std::max<int64_t>(c.n_group, 1)));
        for (auto& v : group_bias) v = 0.25f * coarse(gen);
        for (int64_t e = 0; e < E; ++e)
          bias[e] = group_bias[std::min<int64_t>(e / group, group_bias.size() - 1)];
      } else {
        logits = randn(T * E, gen(), 2.0f);
        bias = randn(E, gen(), 0.1f);
      }
      Routed cpu{std::vector<int32_t>(T * c.top_k), std::vector<float>(T * c.top_k)};
      moe::route_tokens(cpu_params(c), logits.data(), c.bias ? bias.data() : nullptr, T,
                        cpu.ids.data(), cpu.w.data());
      const auto d_logits = upload(logits);
      const auto d_bias = upload(bias);

      const Routed large = run_gpu(c, T, d_logits, d_bias, cuda::MoePath::kLarge);
      const int64_t mism = compare_cpu(c, T, cpu, large, at + " large");
      if (ties) {
        EXPECT_EQ(mism, 0) << at;
      } else {
        // Distinct scores that differ by an ulp of exp() may swap; a real bug breaks far more.
        EXPECT_LE(mism, T / 1000 + 1) << at;
        if (mism > 0) std::printf("[routing] %s: %ld near-tie tokens\n", at.c_str(), long(mism));
      }

      const Routed automatic = run_gpu(c, T, d_logits, d_bias, cuda::MoePath::kAuto);
      const auto same = [&](const Routed& a, const char* what) {
        EXPECT_EQ(a.ids, large.ids) << at << " " << what << " ids differ from the large path";
        EXPECT_EQ(0, std::memcmp(a.w.data(), large.w.data(), a.w.size() * sizeof(float)))
            << at << " " << what << " weights are not bit-identical to the large path";
      };
      same(automatic, "auto");
      if (c.small_ok) {
        same(run_gpu(c, T, d_logits, d_bias, cuda::MoePath::kSmall), "small");
        same(run_gpu(c, T, d_logits, d_bias, cuda::MoePath::kRank), "rank");
      } else {
        EXPECT_ANY_THROW(run_gpu(c, T, d_logits, d_bias, cuda::MoePath::kSmall)) << at;
        EXPECT_ANY_THROW(run_gpu(c, T, d_logits, d_bias, cuda::MoePath::kRank)) << at;
      }
    }
  }
}

// The router GEMV and the routing in one launch (launch_moe_router_route), T = 1, 2, 8: its
// logits are the fp32 dot products of the bf16 rows (within fp32 summation error of a float64
// reference), and its ids and weights are the rank path's on those logits, bit for bit.
// Configurations past its limits (> 256 experts, the rank path's) are named, not run.
TEST_P(CudaMoeRoutingConfigs, RouterAndRoutingInOneLaunch) {
  WS_REQUIRE_GPU();
  const RouteCfg& c = GetParam();
  const int64_t E = c.experts, K = c.top_k;
  std::mt19937_64 gen(static_cast<uint64_t>(E * 977 + K));
  for (const int64_t H : {int64_t{2048}, int64_t{7168}, int64_t{264}}) {
    for (const int64_t T : {int64_t{1}, int64_t{2}, int64_t{8}}) {
      const std::string at =
          std::string(c.name) + " H=" + std::to_string(H) + " T=" + std::to_string(T);
      const std::vector<float> x = round_bf16(randn(T * H, gen(), 1.0f));
      const std::vector<float> w = round_bf16(randn(E * H, gen(), 0.05f));
      const std::vector<float> bias = randn(E, gen(), 0.1f);
      const auto d_x = upload(to_bf16(x));
      const auto d_w = upload(to_bf16(w));
      const auto d_bias = upload(bias);
      auto d_logits = poisoned<float>(T * E);
      auto d_ids = poisoned<int32_t>(T * K, 0x7F);
      auto d_wt = poisoned<float>(T * K);
      const cuda::MoeRoutingParams p =
          gpu_params(c, T, d_logits.get(), d_bias.get(), d_ids.get(), d_wt.get());
      const cuda::MoeRouterRouteInputs in{d_x.get(), d_w.get(), H, d_logits.get()};
      const std::string why = cuda::moe_router_route_unsupported(p, in);
      if (!c.small_ok || E > 256) {
        EXPECT_NE("", why) << at;
        continue;
      }
      ASSERT_EQ("", why) << at;
      cuda::launch_moe_router_route(p, in, nullptr);
      WS_CUDA_CHECK(cudaDeviceSynchronize());
      const std::vector<float> logits = d_logits.download();
      int64_t bad = 0;
      for (int64_t t = 0; t < T; ++t)
        for (int64_t e = 0; e < E; ++e) {
          double ref = 0, mag = 0;
          for (int64_t i = 0; i < H; ++i) {
            ref += double(x[t * H + i]) * w[e * H + i];
            mag += std::fabs(double(x[t * H + i]) * w[e * H + i]);
          }
          if (std::fabs(logits[t * E + e] - ref) > 1e-5 * mag + 1e-6 && bad++ < 5)
            ADD_FAILURE() << at << " t=" << t << " e=" << e << " logit " << logits[t * E + e]
                          << " vs " << ref;
        }
      EXPECT_EQ(bad, 0) << at;
      const Routed rank = run_gpu(c, T, d_logits, d_bias, cuda::MoePath::kRank);
      EXPECT_EQ(d_ids.download(), rank.ids) << at;
      const std::vector<float> got = d_wt.download();
      EXPECT_EQ(0, std::memcmp(got.data(), rank.w.data(), got.size() * sizeof(float))) << at;
      if (H > 2048) continue;
      // x made in the launch from fp32 rows (MoeRouterRouteInputs::norm_src): the bits of a norm
      // launch followed by the launch on its output.
      const auto d_h = upload(randn(T * H, gen(), 2.0f));
      const auto d_nw = upload(to_bf16(round_bf16(randn(H, gen(), 0.3f))));
      auto d_xn = poisoned<__nv_bfloat16>(T * H);
      const float eps = 1e-6f;
      cuda::launch_rms_norm({nullptr, d_h.get(), nullptr, d_nw.get(), d_xn.get(), T, H, H, H, eps},
                            nullptr);
      cuda::launch_moe_router_route(p, {d_xn.get(), d_w.get(), H, d_logits.get()}, nullptr);
      WS_CUDA_CHECK(cudaDeviceSynchronize());
      const auto lg0 = d_logits.download();
      const auto ids0 = d_ids.download();
      const auto wt0 = d_wt.download();
      cuda::MoeRouterRouteInputs nin{nullptr, d_w.get(), H, d_logits.get()};
      nin.norm_src = d_h.get();
      nin.norm_w = d_nw.get();
      nin.norm_eps = eps;
      ASSERT_EQ("", cuda::moe_router_route_unsupported(p, nin)) << at;
      WS_CUDA_CHECK(cudaMemset(d_logits.get(), 0xff, d_logits.bytes()));
      cuda::launch_moe_router_route(p, nin, nullptr);
      WS_CUDA_CHECK(cudaDeviceSynchronize());
      const auto lg1 = d_logits.download();
      const auto wt1 = d_wt.download();
      EXPECT_EQ(0, std::memcmp(lg0.data(), lg1.data(), lg0.size() * sizeof(float))) << at;
      EXPECT_EQ(ids0, d_ids.download()) << at;
      EXPECT_EQ(0, std::memcmp(wt0.data(), wt1.data(), wt0.size() * sizeof(float))) << at;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Configs, CudaMoeRoutingConfigs, ::testing::ValuesIn(kConfigs),
                         [](const auto& info) { return std::string(info.param.name); });

// What the router + routing launch refuses is named (host checks only: no GPU needed).
TEST(CudaMoeRouting, RouterRouteNamesWhatItCannotRun) {
  alignas(16) static float buf[64];
  cuda::MoeRoutingParams p =
      gpu_params(kConfigs[2], 1, buf, nullptr, reinterpret_cast<int32_t*>(buf),
                 buf);  // V2-Lite's routing
  const auto* bf = reinterpret_cast<const __nv_bfloat16*>(buf);
  cuda::MoeRouterRouteInputs in{bf, bf, 2048, buf};
  EXPECT_EQ("", cuda::moe_router_route_unsupported(p, in));
  auto why = [&](auto edit) {
    cuda::MoeRoutingParams q = p;
    cuda::MoeRouterRouteInputs j = in;
    edit(q, j);
    return cuda::moe_router_route_unsupported(q, j);
  };
  EXPECT_NE("", why([](auto& q, auto&) { q.num_experts = 512; }));
  EXPECT_NE("", why([](auto& q, auto&) { q.num_tokens = 9; }));
  EXPECT_NE("", why([](auto& q, auto&) { q.top_k = 9; }));
  EXPECT_NE("", why([](auto&, auto& j) { j.hidden = 2044; }));
  EXPECT_NE("", why([](auto&, auto& j) { j.hidden = 1 << 16; }));  // x exceeds shared memory
  EXPECT_NE("", why([](auto&, auto& j) { j.w = nullptr; }));
  EXPECT_NE("", why([](auto&, auto& j) { j.logits = nullptr; }));
  EXPECT_NE("", why([&](auto&, auto& j) { j.x = bf + 1; }));
  EXPECT_TRUE(cuda::moe_router_route_preferred(64, 2048));    // V2-Lite's router: 256 KB
  EXPECT_FALSE(cuda::moe_router_route_preferred(256, 7168));  // V3's: 3.7 MB
}

TEST(CudaMoeRouting, RejectsBadShapes) {
  WS_REQUIRE_GPU();
  cuda::MoeRoutingParams p{};
  p.num_tokens = 1;
  p.num_experts = 2048;
  p.top_k = 2;
  EXPECT_ANY_THROW(cuda::launch_moe_routing(p, nullptr));
  EXPECT_FALSE(cuda::moe_routing_small_supported(p));
  p.num_experts = 10;
  p.n_group = 3;
  p.topk_group = 1;
  p.topk_method = 2;
  EXPECT_ANY_THROW(cuda::launch_moe_routing(p, nullptr));  // 10 % 3 != 0
  EXPECT_ANY_THROW(cuda::launch_moe_routing_path(p, cuda::MoePath::kSmall, nullptr));
  EXPECT_FALSE(cuda::moe_routing_small_supported(p));
}

// V3 routing + align (EP slice) for a decode batch, captured in a CUDA graph on each path: replays
// equal the eager run bit for bit, and the sort equals the CPU sort of the routed ids.
class CudaMoeRoutingAlignGraph : public ::testing::TestWithParam<cuda::MoePath> {};

TEST_P(CudaMoeRoutingAlignGraph, CapturedReplaysMatchEager) {
  WS_REQUIRE_GPU();
  const cuda::MoePath path = GetParam();
  const RouteCfg& c = kConfigs[0];  // v3
  const int64_t T = 64, K = c.top_k, E = 64, begin = 128;
  const auto d_logits = upload(randn(T * c.experts, 77, 2.0f));
  const auto d_bias = upload(randn(c.experts, 78, 0.1f));
  cuda::DeviceBuffer<int32_t> ids(T * K), counts(E), offsets(E + 1), s2r(T * K), r2s(T * K);
  cuda::DeviceBuffer<float> w(T * K);
  cuda::DeviceBuffer<char> ws(cuda::moe_align_workspace_bytes(T, K, E));
  const auto rp = gpu_params(c, T, d_logits.get(), d_bias.get(), ids.get(), w.get());
  const cuda::MoeAlignParams ap{ids.get(),     T,         K,         E,       begin, counts.get(),
                                offsets.get(), s2r.get(), r2s.get(), ws.get()};
  cudaStream_t s;
  WS_CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  const auto poison = [&] {
    for (auto* b : {&ids, &counts, &offsets, &s2r, &r2s})
      WS_CUDA_CHECK(cudaMemsetAsync(b->get(), 0x7F, b->bytes(), s));
    WS_CUDA_CHECK(cudaMemsetAsync(w.get(), 0xFF, w.bytes(), s));
  };
  const auto run = [&] {
    cuda::launch_moe_routing_path(rp, path, s);
    cuda::launch_moe_align_path(ap, path, s);
  };
  const auto snapshot = [&] {
    WS_CUDA_CHECK(cudaStreamSynchronize(s));
    return std::vector<std::vector<int32_t>>{ids.download(), counts.download(), offsets.download(),
                                             s2r.download(), r2s.download()};
  };
  poison();
  run();
  const auto eager = snapshot();
  const auto eager_w = w.download();
  const auto ref = cuda::ref::moe_align(eager[0], E, begin);
  EXPECT_EQ(eager[1], ref.counts);
  EXPECT_EQ(eager[2], ref.offsets);
  EXPECT_EQ(eager[3], ref.sorted_to_slot);
  EXPECT_EQ(eager[4], ref.slot_to_sorted);
  EXPECT_GT(ref.offsets[E], 0);  // the slice holds some rows

  {
    test::CapturedGraph graph(s, run);
    for (int rep = 0; rep < 2; ++rep) {
      poison();
      graph.launch();
      EXPECT_EQ(snapshot(), eager) << "replay " << rep;
      const auto replay_w = w.download();
      EXPECT_EQ(0, std::memcmp(replay_w.data(), eager_w.data(), eager_w.size() * sizeof(float)));
    }
  }
  cudaStreamDestroy(s);
}

INSTANTIATE_TEST_SUITE_P(Paths, CudaMoeRoutingAlignGraph,
                         ::testing::Values(cuda::MoePath::kLarge, cuda::MoePath::kSmall,
                                           cuda::MoePath::kRank),
                         [](const auto& info) {
                           return std::string(info.param == cuda::MoePath::kSmall  ? "small"
                                              : info.param == cuda::MoePath::kRank ? "rank"
                                                                                   : "large");
                         });

}  // namespace
}  // namespace wideserve::test
