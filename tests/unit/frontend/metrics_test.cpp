#include "frontend/metrics.h"

#include <gtest/gtest.h>

namespace wideserve::frontend {
namespace {

TEST(Metrics, RendersPrometheusTextWithLabelsAndCumulativeBuckets) {
  MetricsRegistry r;
  r.counter("x_total", "Things", {"model", "status"}, {"m", "ok"}).inc();
  r.counter("x_total", "Things", {"model", "status"}, {"m", "ok"}).inc(2);
  r.gauge("g", "A gauge", {}, {}).set(1.5);
  auto& h = r.histogram("lat_seconds", "Latency", {"model"}, {"m\"q"}, {0.1, 1.0});
  h.observe(0.05);
  h.observe(0.5);
  h.observe(5);
  const std::string t = r.render();
  EXPECT_NE(t.find("# TYPE x_total counter\n"), std::string::npos);
  EXPECT_NE(t.find("x_total{model=\"m\",status=\"ok\"} 3\n"), std::string::npos);
  EXPECT_NE(t.find("g 1.5\n"), std::string::npos);
  EXPECT_NE(t.find("lat_seconds_bucket{model=\"m\\\"q\",le=\"0.1\"} 1\n"), std::string::npos);
  EXPECT_NE(t.find("lat_seconds_bucket{model=\"m\\\"q\",le=\"1\"} 2\n"), std::string::npos);
  EXPECT_NE(t.find("lat_seconds_bucket{model=\"m\\\"q\",le=\"+Inf\"} 3\n"), std::string::npos);
  EXPECT_NE(t.find("lat_seconds_count{model=\"m\\\"q\"} 3\n"), std::string::npos);
  EXPECT_NE(t.find("lat_seconds_sum{model=\"m\\\"q\"} 5.55\n"), std::string::npos);
}

TEST(Metrics, RemovesDepartedWorkerSeries) {
  MetricsRegistry r;
  r.gauge("kv", "KV", {"worker", "model"}, {"w1", "m"}).set(0.5);
  r.gauge("kv", "KV", {"worker", "model"}, {"w2", "m"}).set(0.25);
  r.remove_gauge_series("kv", {"w1"});
  const std::string t = r.render();
  EXPECT_EQ(t.find("w1"), std::string::npos);
  EXPECT_NE(t.find("kv{worker=\"w2\",model=\"m\"} 0.25"), std::string::npos);
}

}  // namespace
}  // namespace wideserve::frontend
