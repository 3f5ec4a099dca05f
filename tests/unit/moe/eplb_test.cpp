// EPLB against DeepSeek's reference: the README's published example (expected output written from
// the README), 55 fixture cases generated with the torch reference (tests/fixtures/eplb/README.md),
// the torch tie/summation orders it depends on, and input validation.
#include "moe/eplb.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <random>

#include "common/check.h"

namespace wideserve::moe {
namespace {

using Rows = std::vector<std::vector<int64_t>>;

const std::vector<std::vector<float>> kReadmeWeight = {
    {90, 132, 40, 61, 104, 165, 39, 4, 73, 56, 183, 86},
    {20, 107, 104, 64, 19, 197, 187, 157, 172, 86, 16, 27}};

TEST(Eplb, ReadmeExample) {
  // deepseek-ai/EPLB README: 2 layers x 12 experts, 16 replicas, 4 groups, 2 nodes, 8 GPUs.
  auto r = rebalance_experts(kReadmeWeight, 16, 4, 2, 8);
  const Rows want = {{5, 6, 5, 7, 8, 4, 3, 4, 10, 9, 10, 2, 0, 1, 11, 1},
                     {7, 10, 6, 8, 6, 11, 8, 9, 2, 4, 5, 1, 5, 0, 3, 1}};
  EXPECT_EQ(r.phy2log, want);
  EXPECT_TRUE(r.hierarchical);
  // logcnt counts each expert's slots in phy2log; log2phy lists them with -1 padding.
  ASSERT_EQ(r.logcnt.size(), 2u);
  for (size_t l = 0; l < 2; ++l) {
    ASSERT_EQ(r.log2phy[l].size(), 12u);
    for (int64_t e = 0; e < 12; ++e) {
      EXPECT_EQ(r.logcnt[l][e], std::count(want[l].begin(), want[l].end(), e));
      ASSERT_EQ(r.log2phy[l][e].size(), 2u);  // the largest replica count
      for (int64_t k = 0; k < 2; ++k) {
        const int64_t p = r.log2phy[l][e][k];
        if (k < r.logcnt[l][e]) {
          EXPECT_EQ(want[l][p], e);
        } else {
          EXPECT_EQ(p, -1);
        }
      }
    }
  }
  EXPECT_EQ(r.log2phy[0][1], (std::vector<int64_t>{15, 13}));  // rank order, not slot order
  EXPECT_EQ(r.log2phy[0][0], (std::vector<int64_t>{12, -1}));
}

TEST(Eplb, DoubleOverloadAndAutoMatch) {
  std::vector<std::vector<double>> wd;
  for (const auto& row : kReadmeWeight) wd.emplace_back(row.begin(), row.end());
  auto a = rebalance_experts(wd, 16, 4, 2, 8, EplbAlgorithm::kAuto);
  auto b = rebalance_experts(kReadmeWeight, 16, 4, 2, 8, EplbAlgorithm::kDeepseek);
  EXPECT_EQ(a.phy2log, b.phy2log);
  EXPECT_EQ(a.log2phy, b.log2phy);
}

std::vector<std::vector<float>> json_weight(const nlohmann::json& j) {
  std::vector<std::vector<float>> w;
  for (const auto& row : j) {
    std::vector<float> r;
    for (const auto& v : row) {
      r.push_back(v.is_number_integer() ? static_cast<float>(v.get<int64_t>())
                                        : static_cast<float>(v.get<double>()));
    }
    w.push_back(std::move(r));
  }
  return w;
}

TEST(Eplb, ReferenceFixtures) {
  std::ifstream f(std::string(WS_TEST_FIXTURES) + "/eplb/cases.json");
  ASSERT_TRUE(f.good());
  const auto j = nlohmann::json::parse(f);
  const auto& cases = j.at("cases");
  ASSERT_GE(cases.size(), 50u);
  int global = 0;
  for (const auto& c : cases) {
    SCOPED_TRACE(c.at("name").get<std::string>());
    auto r = rebalance_experts(json_weight(c.at("weight")), c.at("num_replicas"),
                               c.at("num_groups"), c.at("num_nodes"), c.at("num_gpus"),
                               parse_eplb_algorithm(c.at("algorithm").get<std::string>()));
    EXPECT_EQ(r.hierarchical, c.at("hierarchical").get<bool>());
    EXPECT_EQ(r.phy2log, c.at("phy2log").get<Rows>());
    EXPECT_EQ(r.logcnt, c.at("logcnt").get<Rows>());
    EXPECT_EQ(r.log2phy, c.at("log2phy").get<std::vector<Rows>>());
    global += r.hierarchical ? 0 : 1;
  }
  EXPECT_GE(global, 5);  // both policies are covered
}

// torch.sort(descending=True) on CPU is std::sort: stable up to 16 elements, not beyond. These
// index orders were printed by torch 2.15 for x[i] = (i % 3 == 0).
TEST(Eplb, SortTieOrderMatchesTorch) {
  std::vector<float> x(17, 0.0f);
  for (size_t i = 0; i < x.size(); i += 3) x[i] = 1.0f;
  auto idx = detail::torch_sort_desc_indices(x.data(), 17);
  const std::vector<int64_t> zeros_head = {8, 16, 14, 13, 11};
  std::vector<int64_t> zeros;
  for (int64_t i : idx) {
    if (x[i] == 0.0f) zeros.push_back(i);
  }
  EXPECT_EQ(std::vector<int64_t>(zeros.begin(), zeros.begin() + 5), zeros_head);
  x.resize(16);
  idx = detail::torch_sort_desc_indices(x.data(), 16);
  EXPECT_EQ(idx, (std::vector<int64_t>{0, 3, 6, 9, 12, 15, 1, 2, 4, 5, 7, 8, 10, 11, 13, 14}));
}

#if defined(__GLIBCXX__)
// Our introsort replica equals libstdc++'s std::sort permutation (the one torch uses).
TEST(Eplb, SortReplicaEqualsLibstdcxx) {
  std::mt19937 rng(3);
  for (int t = 0; t < 400; ++t) {
    const int n = 1 + static_cast<int>(rng() % 700);
    const int distinct = 1 + static_cast<int>(rng() % 6);
    std::vector<float> x(n);
    for (auto& v : x) v = static_cast<float>(rng() % distinct);
    std::vector<std::pair<float, int64_t>> ref(n);
    for (int i = 0; i < n; ++i) ref[i] = {x[i], i};
    std::sort(ref.begin(), ref.end(),
              [](const auto& a, const auto& b) { return a.first > b.first; });
    auto got = detail::torch_sort_desc_indices(x.data(), n);
    for (int i = 0; i < n; ++i) ASSERT_EQ(got[i], ref[i].second) << "n=" << n << " i=" << i;
  }
}
#endif

TEST(Eplb, FloatSumOrder) {
  // Exact sums are order-free; inexact ones follow torch's kernel, not a running sum.
  std::vector<float> ints(40);
  for (int i = 0; i < 40; ++i) ints[i] = static_cast<float>(i);
  EXPECT_EQ(detail::torch_float_sum(ints.data(), 40), 780.0f);
  // Inexact sums: torch gives 0 for both (checked with torch 2.15); a running sum gives 1e-8 and
  // 3e-8. Five elements take the 4-way ILP path (x0 + x4 first), twelve the 8-lane vector path.
  const std::vector<float> five = {1.0f, -1.0f, 0.0f, 0.0f, 1e-8f};
  EXPECT_EQ(detail::torch_float_sum(five.data(), 5), 0.0f);
  std::vector<float> twelve(12, 0.0f);
  twelve[0] = 1.0f, twelve[8] = -1.0f, twelve[9] = twelve[10] = twelve[11] = 1e-8f;
  EXPECT_EQ(detail::torch_float_sum(twelve.data(), 12), 0.0f);
  float running = 0.0f;
  for (float v : twelve) running += v;
  EXPECT_GT(running, 0.0f);
}

void expect_error(const std::function<void()>& f, const std::string& needle) {
  try {
    f();
    ADD_FAILURE() << "no error; expected one naming " << needle;
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(Eplb, Validation) {
  const auto& w = kReadmeWeight;
  expect_error([&] { rebalance_experts(w, 18, 4, 2, 8); }, "--num-replicas (18)");
  expect_error([&] { rebalance_experts(w, 8, 4, 2, 8); }, "--num-replicas (8) must be >=");
  expect_error([&] { rebalance_experts(w, 16, 8, 2, 8); }, "--num-groups (8)");
  expect_error([&] { rebalance_experts(w, 16, 4, 4, 6); }, "--num-gpus (6)");
  expect_error([&] { rebalance_experts(w, 16, 4, 3, 8, EplbAlgorithm::kDeepseekHierarchical); },
               "--num-nodes (3)");
  expect_error([&] { rebalance_experts(w, 16, 4, 2, 0); }, "--num-gpus");
  expect_error([&] { rebalance_experts(std::vector<std::vector<float>>{}, 16, 4, 2, 8); },
               "--weight");
  expect_error(
      [&] {
        rebalance_experts(std::vector<std::vector<float>>{{1, 2}, {1}}, 4, 1, 1, 2);
      },
      "--weight: layer 1");
  expect_error(
      [&] {
        rebalance_experts(std::vector<std::vector<double>>{{1, 1e300}}, 4, 1, 1, 2);
      },
      "--weight");
  expect_error([] { parse_eplb_algorithm("greedy"); }, "--eplb-algorithm");
  // The global policy ignores groups, like the reference: 5 groups do not need to divide 12.
  auto r = rebalance_experts(w, 16, 5, 2, 8);
  EXPECT_FALSE(r.hierarchical);
}

TEST(Eplb, GlobalPolicyIsHierarchicalWithOneGroupOneNode) {
  auto g = rebalance_experts(kReadmeWeight, 16, 4, 3, 8);  // 4 % 3 != 0: global
  auto h = rebalance_experts(kReadmeWeight, 16, 1, 1, 8, EplbAlgorithm::kDeepseekHierarchical);
  EXPECT_FALSE(g.hierarchical);
  EXPECT_EQ(g.phy2log, h.phy2log);
  EXPECT_EQ(g.log2phy, h.log2phy);
}

}  // namespace
}  // namespace wideserve::moe
