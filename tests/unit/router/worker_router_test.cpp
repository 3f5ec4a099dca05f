#include "router/worker_router.h"

#include <gtest/gtest.h>

#include <vector>

#include "common/check.h"

namespace wideserve::router {
namespace {

std::vector<Candidate> three() {
  return {{"a", "tcp://a", {}}, {"b", "tcp://b", {}}, {"c", "tcp://c", {}}};
}

TEST(WorkerRouter, RoundRobinVisitsEachInTurn) {
  WorkerRouter r(RouterMode::kRoundRobin);
  auto c = three();
  std::vector<size_t> got;
  for (int i = 0; i < 6; ++i) got.push_back(r.pick(c));
  EXPECT_EQ(got, (std::vector<size_t>{0, 1, 2, 0, 1, 2}));
}

TEST(WorkerRouter, RandomReachesEveryWorkerAndStaysInRange) {
  WorkerRouter r(RouterMode::kRandom, 7);
  auto c = three();
  std::vector<int> hits(3, 0);
  for (int i = 0; i < 3000; ++i) ++hits.at(r.pick(c));
  for (int h : hits) EXPECT_GT(h, 800);
}

TEST(WorkerRouter, EmptyIsUnavailableAndModesParse) {
  WorkerRouter r(RouterMode::kRoundRobin);
  EXPECT_THROW(r.pick({}), Error);
  EXPECT_EQ(parse_router_mode("round-robin"), RouterMode::kRoundRobin);
  EXPECT_EQ(parse_router_mode("random"), RouterMode::kRandom);
  EXPECT_EQ(parse_router_mode("kv"), RouterMode::kKv);
  EXPECT_THROW(parse_router_mode("fastest"), Error);
}

}  // namespace
}  // namespace wideserve::router
