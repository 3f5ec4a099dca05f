// GPU routing vs the CPU router (src/moe/router.cpp) on DeepSeek V2-Lite / V2 / V3 and tiny
// configurations, T = 1 .. 8192; exact ties (coarse logits) must give identical ids.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "../gpu_test_util.h"
#include "backend/cuda/moe/moe.h"
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
};

const RouteCfg kConfigs[] = {
    {"v2_lite", 64, 6, 1, 1, 0, 0, false, false, 1.0f},
    {"v2", 160, 6, 8, 3, 0, 1, false, false, 16.0f},
    {"v3", 256, 8, 8, 4, 1, 2, true, true, 2.5f},
    {"tiny_noaux", 16, 4, 4, 2, 1, 2, true, true, 1.5f},
    {"tiny_groups_of_1", 8, 2, 8, 3, 1, 2, false, true, 1.0f},
    {"tiny_greedy_sigmoid", 33, 3, 1, 1, 1, 0, true, false, 1.0f},
    {"tiny_glg_softmax", 12, 2, 4, 2, 0, 1, true, false, 1.0f},
};

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

// Runs both routers; returns the number of tokens whose ids differ and checks the weights of the
// others.
int64_t compare(const RouteCfg& c, int64_t T, const std::vector<float>& logits,
                const std::vector<float>& bias) {
  const int64_t E = c.experts, K = c.top_k;
  std::vector<int32_t> ids(T * K);
  std::vector<float> w(T * K);
  moe::route_tokens(cpu_params(c), logits.data(), c.bias ? bias.data() : nullptr, T, ids.data(),
                    w.data());
  auto d_logits = upload(logits);
  auto d_bias = upload(bias);
  auto d_ids = poisoned<int32_t>(T * K, 0x7F);
  auto d_w = poisoned<float>(T * K);
  cuda::MoeRoutingParams p;
  p.logits = d_logits.get();
  p.bias = c.bias ? d_bias.get() : nullptr;
  p.num_tokens = T;
  p.num_experts = E;
  p.top_k = K;
  p.n_group = c.n_group;
  p.topk_group = c.topk_group;
  p.scoring = c.scoring;
  p.topk_method = c.method;
  p.renormalize = c.renorm;
  p.routed_scaling_factor = c.scale;
  p.topk_ids = d_ids.get();
  p.topk_weights = d_w.get();
  cuda::launch_moe_routing(p, nullptr);
  WS_CUDA_CHECK(cudaDeviceSynchronize());
  const auto g_ids = d_ids.download();
  const auto g_w = d_w.download();
  int64_t mismatched = 0;
  for (int64_t t = 0; t < T; ++t) {
    bool same = true;
    for (int64_t j = 0; j < K; ++j) same = same && g_ids[t * K + j] == ids[t * K + j];
    if (!same) {
      ++mismatched;
      continue;
    }
    for (int64_t j = 0; j < K; ++j) {
      const float a = g_w[t * K + j], b = w[t * K + j];
      EXPECT_TRUE(std::isfinite(a)) << c.name << " t=" << t;
      EXPECT_NEAR(a, b, 2e-6f * std::fabs(b) + 1e-7f) << c.name << " t=" << t << " j=" << j;
    }
  }
  return mismatched;
}

TEST(CudaMoeRouting, MatchesCpuRouterOnRandomLogits) {
  WS_REQUIRE_GPU();
  uint64_t seed = 100;
  for (const auto& c : kConfigs) {
    for (int64_t T : {1, 7, 129, 4096, 8192}) {
      const auto logits = randn(T * c.experts, ++seed, 2.0f);
      const auto bias = randn(c.experts, ++seed, 0.1f);
      const int64_t mism = compare(c, T, logits, bias);
      // Distinct scores that differ by an ulp of exp() may swap; a real bug breaks far more.
      EXPECT_LE(mism, T / 1000 + 1) << c.name << " T=" << T;
      if (mism > 0)
        std::printf("[routing] %s T=%ld: %ld near-tie tokens\n", c.name, long(T), long(mism));
    }
  }
}

TEST(CudaMoeRouting, ExactTiesPickLowerIndexLikeCpu) {
  WS_REQUIRE_GPU();
  std::mt19937_64 g(7);
  std::uniform_int_distribution<int> coarse(-3, 3);
  for (const auto& c : kConfigs) {
    for (int64_t T : {1, 33, 2048}) {
      std::vector<float> logits(T * c.experts), bias(c.experts);
      for (auto& v : logits) v = 0.5f * coarse(g);
      for (auto& v : bias) v = 0.25f * coarse(g);
      EXPECT_EQ(compare(c, T, logits, bias), 0) << c.name << " T=" << T;
    }
  }
}

TEST(CudaMoeRouting, RejectsBadShapes) {
  WS_REQUIRE_GPU();
  cuda::MoeRoutingParams p{};
  p.num_tokens = 1;
  p.num_experts = 2048;
  p.top_k = 2;
  EXPECT_ANY_THROW(cuda::launch_moe_routing(p, nullptr));
  p.num_experts = 10;
  p.n_group = 3;
  p.topk_group = 1;
  p.topk_method = 2;
  EXPECT_ANY_THROW(cuda::launch_moe_routing(p, nullptr));  // 10 % 3 != 0
}

}  // namespace
}  // namespace wideserve::test
