// The KV router's cost function, temperature sampling and tie-breaks.
#include "router/kv_cost.h"

#include <gtest/gtest.h>

#include <cmath>

#include "common/check.h"

namespace wideserve::router {
namespace {

TEST(KvCost, UncachedBlocksTimesScalePlusActive) {
  EXPECT_DOUBLE_EQ(kv_cost({10, 4, 7, 0}, 1.0), 13.0);  // (10 - 4) * 1 + 7
  EXPECT_DOUBLE_EQ(kv_cost({10, 4, 7, 0}, 2.5), 22.0);  // (10 - 4) * 2.5 + 7
  EXPECT_DOUBLE_EQ(kv_cost({10, 10, 0, 0}, 1.0), 0.0);
  EXPECT_DOUBLE_EQ(kv_cost({10, 12, 3, 0}, 1.0), 3.0);  // overlap beyond the prompt: no credit
  EXPECT_DOUBLE_EQ(kv_cost({10, 0, 0, 0}, 0.0), 0.0);   // scale 0: load only
}

TEST(KvCost, SoftmaxFollowsTheFormula) {
  const std::vector<double> c = {10, 20, 30};
  const double t = 0.5;
  const auto p = kv_softmax(c, t);
  // p_i ~ exp(-(c_i - c_min) / ((c_max - c_min) T))
  const double e0 = 1, e1 = std::exp(-10.0 / (20 * t)), e2 = std::exp(-20.0 / (20 * t));
  const double z = e0 + e1 + e2;
  EXPECT_NEAR(p[0], e0 / z, 1e-12);
  EXPECT_NEAR(p[1], e1 / z, 1e-12);
  EXPECT_NEAR(p[2], e2 / z, 1e-12);
  // Scale-free: multiplying every cost changes nothing; equal costs: uniform.
  const auto q = kv_softmax(std::vector<double>{100, 200, 300}, t);
  for (int i = 0; i < 3; ++i) EXPECT_NEAR(q[i], p[i], 1e-12);
  const auto u = kv_softmax(std::vector<double>{5, 5}, t);
  EXPECT_DOUBLE_EQ(u[0], 0.5);
  EXPECT_THROW(kv_softmax(c, 0.0), Error);
}

TEST(KvCost, TemperatureSamplingMatchesProbabilities) {
  const std::vector<double> c = {10, 20, 30};
  const std::vector<int64_t> loads = {0, 0, 0};
  std::mt19937_64 rng(42);
  const double t = 1.0;
  const auto p = kv_softmax(c, t);
  std::vector<int> n(3, 0);
  const int kDraws = 60000;
  for (int i = 0; i < kDraws; ++i) ++n[select_by_cost(c, loads, t, rng)];
  for (int i = 0; i < 3; ++i) {
    const double sd = std::sqrt(p[i] * (1 - p[i]) / kDraws);
    EXPECT_NEAR(static_cast<double>(n[i]) / kDraws, p[i], 5 * sd) << i;
  }
  // Low temperature concentrates on the cheapest; T = 0 is argmin.
  int cheapest = 0;
  for (int i = 0; i < 1000; ++i) cheapest += select_by_cost(c, loads, 0.05, rng) == 0;
  EXPECT_GT(cheapest, 990);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(select_by_cost(c, loads, 0.0, rng), 0u);
}

TEST(KvCost, TiesGoToTheLeastLoadedThenRandom) {
  std::mt19937_64 rng(7);
  const std::vector<double> c = {5, 5, 5, 9};
  // Equal cost: the smallest load wins.
  EXPECT_EQ(select_by_cost(c, std::vector<int64_t>{3, 1, 2, 0}, 0.0, rng), 1u);
  // Equal cost and load: random among them (both seen, never the others).
  std::vector<int> n(4, 0);
  for (int i = 0; i < 400; ++i) ++n[select_by_cost(c, std::vector<int64_t>{2, 1, 1, 0}, 0.0, rng)];
  EXPECT_EQ(n[0], 0);
  EXPECT_EQ(n[3], 0);
  EXPECT_GT(n[1], 120);
  EXPECT_GT(n[2], 120);
  // T > 0 with every cost equal: the same tie-break (the load decides).
  EXPECT_EQ(select_by_cost(std::vector<double>{1, 1}, std::vector<int64_t>{4, 2}, 1.0, rng), 1u);
  EXPECT_THROW(select_by_cost(c, std::vector<int64_t>{1}, 0.0, rng), Error);
}

}  // namespace
}  // namespace wideserve::router
