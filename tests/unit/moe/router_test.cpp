#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "moe/router.h"

namespace wideserve::moe {
namespace {

TEST(Router, NoauxTcUsesBiasForSelectionOnlyAndRespectsGroups) {
  // 8 experts in 4 groups of 2, top-2 groups, top-2 experts.
  RouterParams p{ScoringFunc::kSigmoid, TopkMethod::kNoauxTc, 8, 2, 4, 2, true, 2.5f};
  float logits[8] = {3.0f, 2.9f, -1.0f, -1.0f, 0.0f, 0.1f, -2.0f, -2.0f};
  // The bias lifts expert 7's group above group 1 (no bias) but not group 0.
  float bias[8] = {0, 0, 0, 0, 0, 0, 5.0f, 0};
  int32_t ids[2];
  float w[2];
  route_tokens(p, logits, bias, 1, ids, w);
  std::set<int32_t> got(ids, ids + 2);
  EXPECT_EQ(got, (std::set<int32_t>{0, 6}));  // expert 6 chosen through its bias
  // Weights come from unbiased sigmoid scores, normalised, times the scaling factor.
  auto sig = [](float x) { return 1.0f / (1.0f + std::exp(-x)); };
  float s0 = sig(3.0f), s6 = sig(-2.0f);
  float w0 = ids[0] == 0 ? w[0] : w[1], w6 = ids[0] == 6 ? w[0] : w[1];
  EXPECT_NEAR(w0, s0 / (s0 + s6) * 2.5f, 1e-6);
  EXPECT_NEAR(w6, s6 / (s0 + s6) * 2.5f, 1e-6);
}

TEST(Router, SoftmaxGreedyWithoutNormalisation) {
  RouterParams p{ScoringFunc::kSoftmax, TopkMethod::kGreedy, 4, 2, 1, 1, false, 1.0f};
  float logits[4] = {1.0f, 2.0f, 3.0f, 0.0f};
  int32_t ids[2];
  float w[2];
  route_tokens(p, logits, nullptr, 1, ids, w);
  float z = std::exp(1.0f) + std::exp(2.0f) + std::exp(3.0f) + 1.0f;
  EXPECT_EQ(ids[0], 2);
  EXPECT_EQ(ids[1], 1);
  EXPECT_NEAR(w[0], std::exp(3.0f) / z, 1e-6);
  EXPECT_NEAR(w[1], std::exp(2.0f) / z, 1e-6);
}

TEST(Router, GroupLimitedGreedyUsesGroupMax) {
  RouterParams p{ScoringFunc::kSoftmax, TopkMethod::kGroupLimitedGreedy, 6, 2, 3, 1, false, 1.0f};
  // Group 1 has the single best expert; group 0 has two good ones. Only group 1 may be used.
  float logits[6] = {2.0f, 2.0f, 3.0f, -5.0f, 0.0f, 0.0f};
  int32_t ids[2];
  float w[2];
  route_tokens(p, logits, nullptr, 1, ids, w);
  EXPECT_EQ(std::set<int32_t>(ids, ids + 2), (std::set<int32_t>{2, 3}));
}

TEST(Router, ManyTokensAreIndependent) {
  RouterParams p{ScoringFunc::kSigmoid, TopkMethod::kNoauxTc, 16, 4, 4, 2, true, 1.0f};
  std::vector<float> logits(1000 * 16);
  for (size_t i = 0; i < logits.size(); ++i) logits[i] = std::sin(0.37f * i);
  std::vector<int32_t> ids(1000 * 4), one(4);
  std::vector<float> w(1000 * 4), w1(4);
  route_tokens(p, logits.data(), nullptr, 1000, ids.data(), w.data());
  for (int t : {0, 17, 999}) {
    route_tokens(p, logits.data() + t * 16, nullptr, 1, one.data(), w1.data());
    for (int k = 0; k < 4; ++k) EXPECT_EQ(one[k], ids[t * 4 + k]);
    float sum = 0;
    for (int k = 0; k < 4; ++k) sum += w[t * 4 + k];
    EXPECT_NEAR(sum, 1.0f, 1e-5);
  }
}

}  // namespace
}  // namespace wideserve::moe
