#include <gtest/gtest.h>

#include <fstream>
#include <set>
#include <thread>

#include "common/check.h"
#include "dist/thread_group.h"
#include "moe/ep_dispatcher.h"
#include "moe/expert_placement.h"

namespace wideserve::moe {
namespace {

TEST(ExpertPlacement, TrivialWithRedundancy) {
  auto p = trivial_placement(2, 6, 8, 4);
  EXPECT_EQ(p.local_count(), 2);
  EXPECT_EQ(p.phy2log[0], (std::vector<int32_t>{0, 1, 2, 3, 4, 5, 0, 1}));
  EXPECT_EQ(p.log2phy[1][0], (std::vector<int32_t>{0, 6}));
  EXPECT_EQ(p.rank_of(6), 3);
  // Static: the replica on the rank itself when there is one, else a fixed one.
  EXPECT_EQ(choose_replica(p, 0, 0, 3, 123, DispatchAlgorithm::kStatic), 6);
  EXPECT_EQ(choose_replica(p, 0, 0, 0, 123, DispatchAlgorithm::kStatic), 0);
  EXPECT_EQ(choose_replica(p, 0, 2, 3, 123, DispatchAlgorithm::kStatic), 2);
  // Dynamic: spreads over both replicas.
  std::set<int32_t> seen;
  for (uint64_t k = 0; k < 64; ++k)
    seen.insert(choose_replica(p, 0, 1, 2, k, DispatchAlgorithm::kDynamic));
  EXPECT_EQ(seen, (std::set<int32_t>{1, 7}));
}

TEST(ExpertPlacement, Errors) {
  EXPECT_THROW(trivial_placement(1, 6, 8, 3), Error);                             // 8 % 3
  EXPECT_THROW(ExpertPlacement::from_phy2log({{0, 1, 1, 1}}, 3, 2, "x"), Error);  // 2 has none
  EXPECT_THROW(ExpertPlacement::from_phy2log({{0, 1, 2, 5}}, 3, 2, "x"), Error);  // 5 >= 3
  EXPECT_THROW(parse_dispatch_algorithm("fake"), Error);
  EXPECT_THROW(load_placement("/nonexistent.json", 1, 3, 4, 2), Error);
}

TEST(ExpertPlacement, LoadsEplbOutput) {
  const std::string path = ::testing::TempDir() + "/placement.json";
  std::ofstream(path) << R"({"phy2log":[[2,0,1,2],[0,1,2,0]],"logcnt":[]})";
  auto p = load_placement(path, 2, 3, 4, 2);
  EXPECT_EQ(p.log2phy[0][2], (std::vector<int32_t>{0, 3}));
  EXPECT_THROW(load_placement(path, 3, 3, 4, 2), Error);  // layer count
  EXPECT_THROW(load_placement(path, 2, 3, 6, 2), Error);  // physical count
}

TEST(ExpertPlacement, EplbPlacementReplicatesHotExperts) {
  std::vector<std::vector<double>> loads = {{100, 1, 1, 1, 1, 1, 1, 1}};
  auto p = eplb_placement(loads, 12, 4, 1, 1, EplbAlgorithm::kDeepseek);
  EXPECT_GT(p.log2phy[0][0].size(), 1u);
}

// Dispatch then combine of y = weight * x on 3 thread ranks: the result at each origin is the sum
// over its experts' weights times x, whatever the mode.
TEST(EpDispatcher, RoundTripBothModes) {
  for (auto mode : {DispatchMode::kNormal, DispatchMode::kLowLatency}) {
    const int n = 3, H = 4, K = 2, local = 2;
    auto groups = dist::make_thread_group(n, std::chrono::seconds(20));
    std::vector<std::thread> ts;
    std::vector<int> failures(n, 0);
    for (int r = 0; r < n; ++r)
      ts.emplace_back([&, r] {
        EpDispatcher d(*groups[r], H, K, local, 8);
        const int64_t rows = r + 1;  // rank 2 has 3 tokens, rank 0 one
        std::vector<float> x(rows * H), w(rows * K), out(rows * H);
        std::vector<int32_t> phys(rows * K);
        for (int64_t t = 0; t < rows; ++t) {
          for (int i = 0; i < H; ++i) x[t * H + i] = r * 100 + t * 10 + i;
          phys[t * K] = (r + t) % (n * local);
          phys[t * K + 1] = (r + t + 3) % (n * local);
          w[t * K] = 0.25f;
          w[t * K + 1] = 0.5f;
        }
        d.dispatch(mode, x.data(), rows, phys.data(), w.data());
        std::vector<float> y(d.num_received() * H, 0.f);
        for (int64_t j = 0; j < d.num_received(); ++j)
          for (int k = 0; k < K; ++k)
            if (d.received_expert()[j * K + k] >= 0)
              for (int i = 0; i < H; ++i)
                y[j * H + i] += d.received_weight()[j * K + k] * d.received_x()[j * H + i];
        d.combine(y.data(), out.data());
        for (int64_t i = 0; i < rows * H; ++i)
          if (out[i] != 0.75f * x[i]) ++failures[r];
        if (d.counters().tokens_sent < rows) ++failures[r];
      });
    for (auto& t : ts) t.join();
    for (int f : failures) EXPECT_EQ(f, 0);
  }
}

}  // namespace
}  // namespace wideserve::moe
