// The frontend's wideserve_ep_* series from a worker's EP figures.
#include "frontend/ep_metrics.h"

#include <gtest/gtest.h>

namespace wideserve::frontend {
namespace {

bool has(const std::string& text, const std::string& line) {
  return text.find(line + "\n") != std::string::npos;
}

engine::EpStats stats() {
  engine::EpStats e;
  e.ranks = 4;
  e.layers = {1, 3};
  e.layer_imbalance = {1.5, 2.25};
  e.forwards = 10;
  e.tokens_dispatched = 300;
  e.bytes_moved = 4096;
  e.rebalances = 1;
  return e;
}

TEST(EpMetrics, RendersSeriesPerWorkerAndLayer) {
  MetricsRegistry m;
  export_ep_metrics(m, "w1", "tiny", stats());
  const std::string t = m.render();
  EXPECT_TRUE(has(t, "# TYPE wideserve_ep_expert_load_imbalance gauge")) << t;
  EXPECT_TRUE(
      has(t, R"(wideserve_ep_expert_load_imbalance{worker="w1",model="tiny",layer="1"} 1.5)"))
      << t;
  EXPECT_TRUE(
      has(t, R"(wideserve_ep_expert_load_imbalance{worker="w1",model="tiny",layer="3"} 2.25)"))
      << t;
  EXPECT_TRUE(has(t, "# TYPE wideserve_ep_dispatched_tokens_total counter")) << t;
  EXPECT_TRUE(has(t, R"(wideserve_ep_dispatched_tokens_total{worker="w1",model="tiny"} 300)")) << t;
  EXPECT_TRUE(has(t, R"(wideserve_ep_forwards_total{worker="w1",model="tiny"} 10)")) << t;
  EXPECT_TRUE(has(t, R"(wideserve_ep_moved_bytes_total{worker="w1",model="tiny"} 4096)")) << t;
  EXPECT_TRUE(has(t, R"(wideserve_ep_rebalances_total{worker="w1",model="tiny"} 1)")) << t;
  EXPECT_TRUE(has(t, R"(wideserve_ep_ranks{worker="w1",model="tiny"} 4)")) << t;
}

TEST(EpMetrics, CountersFollowTheWorkerAndNeverGoDown) {
  MetricsRegistry m;
  auto e = stats();
  export_ep_metrics(m, "w1", "tiny", e);
  e.tokens_dispatched = 500;
  e.layer_imbalance = {1.0, 1.0};
  export_ep_metrics(m, "w1", "tiny", e);
  std::string t = m.render();
  EXPECT_TRUE(has(t, R"(wideserve_ep_dispatched_tokens_total{worker="w1",model="tiny"} 500)")) << t;
  EXPECT_TRUE(has(t, R"(wideserve_ep_expert_load_imbalance{worker="w1",model="tiny",layer="3"} 1)"))
      << t;
  e.tokens_dispatched = 100;  // a stale report: the counter stays
  export_ep_metrics(m, "w1", "tiny", e);
  t = m.render();
  EXPECT_TRUE(has(t, R"(wideserve_ep_dispatched_tokens_total{worker="w1",model="tiny"} 500)")) << t;
}

TEST(EpMetrics, OneRankWorkersExportNothingAndDepartedWorkersVanish) {
  MetricsRegistry m;
  export_ep_metrics(m, "plain", "tiny", engine::EpStats{});
  EXPECT_EQ(m.render().find("wideserve_ep_"), std::string::npos);
  export_ep_metrics(m, "w1", "tiny", stats());
  export_ep_metrics(m, "w2", "tiny", stats());
  remove_ep_metrics(m, "w1");
  const std::string t = m.render();
  EXPECT_EQ(t.find("worker=\"w1\""), std::string::npos) << t;
  EXPECT_TRUE(has(t, R"(wideserve_ep_dispatched_tokens_total{worker="w2",model="tiny"} 300)")) << t;
}

}  // namespace
}  // namespace wideserve::frontend
