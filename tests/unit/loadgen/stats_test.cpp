#include "loadgen/stats.h"

#include <gtest/gtest.h>

#include "common/check.h"
#include "loadgen/arrival.h"
#include "loadgen/report.h"

namespace wideserve::loadgen {
namespace {

TEST(Stats, PercentilesMatchNumpyLinear) {
  std::vector<double> v = {1, 2, 3, 4};
  // numpy.percentile([1, 2, 3, 4], [0, 50, 90, 99, 100]) = [1, 2.5, 3.7, 3.97, 4]
  EXPECT_DOUBLE_EQ(percentile_sorted(v, 0), 1);
  EXPECT_DOUBLE_EQ(percentile_sorted(v, 50), 2.5);
  EXPECT_NEAR(percentile_sorted(v, 90), 3.7, 1e-12);
  EXPECT_NEAR(percentile_sorted(v, 99), 3.97, 1e-12);
  EXPECT_DOUBLE_EQ(percentile_sorted(v, 100), 4);
  EXPECT_DOUBLE_EQ(percentile_sorted({7}, 99), 7);
  EXPECT_EQ(percentile_sorted({}, 50), 0);
  EXPECT_THROW(percentile_sorted(v, 101), Error);
}

TEST(Stats, Summary) {
  std::vector<double> v;
  for (int i = 100; i >= 1; --i) v.push_back(i);  // unsorted on purpose
  Summary s = summarize(v);
  EXPECT_EQ(s.count, 100);
  EXPECT_DOUBLE_EQ(s.mean, 50.5);
  EXPECT_DOUBLE_EQ(s.min, 1);
  EXPECT_DOUBLE_EQ(s.max, 100);
  EXPECT_NEAR(s.p50, 50.5, 1e-12);
  EXPECT_NEAR(s.p90, 90.1, 1e-12);
  EXPECT_NEAR(s.p99, 99.01, 1e-12);
  EXPECT_NEAR(s.std, 28.866070047722118, 1e-9);  // numpy.std(range(1, 101))
  EXPECT_EQ(summarize({}).count, 0);
}

RequestRecord ok_record(double start, double ttft, std::vector<double> chunk_times, int64_t in,
                        int64_t out) {
  RequestRecord r;
  r.start_s = start;
  r.ttft_s = ttft;
  r.content_times_s = std::move(chunk_times);
  r.e2e_s = r.content_times_s.back() + 0.001;
  r.prompt_tokens = in;
  r.completion_tokens = out;
  r.http_status = 200;
  return r;
}

TEST(Report, MetricsGoodputAndErrors) {
  std::vector<RequestRecord> recs;
  // Fast: TTFT 100 ms, ITL 10 ms over 5 chunks (5 tokens).
  recs.push_back(ok_record(0, 0.1, {0.1, 0.11, 0.12, 0.13, 0.14}, 10, 5));
  // Slow first token: TTFT 500 ms, ITL 20 ms.
  recs.push_back(ok_record(0, 0.5, {0.5, 0.52, 0.54}, 20, 3));
  RequestRecord warm = ok_record(0, 9, {9, 10}, 1000, 1000);
  warm.warmup = true;
  recs.push_back(warm);
  RequestRecord e1;
  e1.error_kind = "http_500";
  RequestRecord e2;
  e2.error_kind = "timeout";
  recs.push_back(e1);
  recs.push_back(e1);
  recs.push_back(e2);
  SloConfig slo;
  slo.ttft_ms = 200;
  BenchReport rep = make_report(recs, 2.0, slo);
  EXPECT_EQ(rep.completed, 2);
  EXPECT_EQ(rep.failed, 3);
  EXPECT_EQ(rep.errors.at("http_500"), 2);
  EXPECT_EQ(rep.errors.at("timeout"), 1);
  EXPECT_EQ(rep.total_input_tokens, 30);
  EXPECT_EQ(rep.total_output_tokens, 8);
  EXPECT_DOUBLE_EQ(rep.request_throughput, 1.0);
  EXPECT_DOUBLE_EQ(rep.output_token_throughput, 4.0);
  EXPECT_DOUBLE_EQ(rep.total_token_throughput, 19.0);
  EXPECT_EQ(rep.ttft_ms.count, 2);
  EXPECT_NEAR(rep.ttft_ms.p50, 300, 1e-9);
  EXPECT_EQ(rep.itl_ms.count, 6);  // 4 + 2 gaps pooled
  EXPECT_NEAR(rep.itl_ms.mean, (4 * 10 + 2 * 20) / 6.0, 1e-9);
  // TPOT = (e2e - ttft) / (out - 1): (0.141 - 0.1) / 4 and (0.541 - 0.5) / 2.
  EXPECT_NEAR(rep.tpot_ms.min, 10.25, 1e-9);
  EXPECT_NEAR(rep.tpot_ms.max, 20.5, 1e-9);
  EXPECT_EQ(rep.good_requests, 1);
  EXPECT_DOUBLE_EQ(rep.goodput, 0.5);
  slo.ttft_ms = 0;
  slo.itl_ms = 15;
  EXPECT_EQ(make_report(recs, 2.0, slo).good_requests, 1);
  slo.itl_ms = 25;
  slo.e2e_ms = 142;
  EXPECT_EQ(make_report(recs, 2.0, slo).good_requests, 1);
  EXPECT_EQ(make_report(recs, 2.0, SloConfig{}).goodput, 0);
  auto j = report_to_json(rep);
  EXPECT_EQ(j["errors"]["http_500"], 2);
  EXPECT_EQ(j["good_requests"], 1);
  EXPECT_NE(report_to_text(rep).find("timeout"), std::string::npos);
}

TEST(Arrival, MeanRateAndBurstiness) {
  for (double burst : {1.0, 0.25, 4.0}) {
    ArrivalProcess a(20.0, burst, 42);
    const int n = 200000;
    double sum = 0, sq = 0;
    for (int i = 0; i < n; ++i) {
      double g = a.next_gap_s();
      ASSERT_GE(g, 0);
      sum += g;
      sq += g * g;
    }
    double mean = sum / n, var = sq / n - mean * mean;
    EXPECT_NEAR(mean, 1 / 20.0, 0.01 / 20.0) << burst;  // rate within 1%
    // Gamma(k, theta): coefficient of variation 1 / sqrt(k).
    EXPECT_NEAR(std::sqrt(var) / mean, 1 / std::sqrt(burst), 0.03 / std::sqrt(burst)) << burst;
  }
  ArrivalProcess unlimited(0, 1, 1);
  EXPECT_EQ(unlimited.next_gap_s(), 0);
  EXPECT_THROW(ArrivalProcess(1, 0, 1), Error);
}

}  // namespace
}  // namespace wideserve::loadgen
