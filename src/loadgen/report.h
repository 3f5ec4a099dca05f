// Benchmark results from per-request records: latency distributions, throughput, goodput under
// SLOs, errors by kind; as JSON, a text table and per-request CSV.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "loadgen/stats.h"
#include "loadgen/types.h"

namespace wideserve::loadgen {

// Service-level objectives in milliseconds; 0 means "not set". A request is good when it
// succeeded and meets every objective that is set.
struct SloConfig {
  double ttft_ms = 0;
  double itl_ms = 0;   // the request's mean gap between content chunks
  double tpot_ms = 0;  // (e2e - ttft) / (output_tokens - 1)
  double e2e_ms = 0;
  bool any() const { return ttft_ms > 0 || itl_ms > 0 || tpot_ms > 0 || e2e_ms > 0; }
};

struct BenchReport {
  int64_t completed = 0, failed = 0;
  std::map<std::string, int64_t> errors;  // kind -> count
  double duration_s = 0;
  int64_t total_input_tokens = 0, total_output_tokens = 0;
  double request_throughput = 0, input_token_throughput = 0, output_token_throughput = 0,
         total_token_throughput = 0;         // per second over duration_s, completed requests only
  Summary ttft_ms, itl_ms, tpot_ms, e2e_ms;  // ITL pools every gap of every request
  Summary input_tokens, output_tokens;       // per request, from usage
  SloConfig slo;
  int64_t good_requests = 0;
  double goodput = 0;  // good requests per second (0 when no SLO is set)
};

// Per-request mean ITL (ms) and TPOT (ms); 0 when the request has < 2 chunks / tokens.
double request_mean_itl_ms(const RequestRecord& r);
double request_tpot_ms(const RequestRecord& r);

// Builds the report from measured (non-warm-up) records.
BenchReport make_report(const std::vector<RequestRecord>& records, double duration_s,
                        const SloConfig& slo);

nlohmann::json report_to_json(const BenchReport& report);
std::string report_to_text(const BenchReport& report);

// One CSV row per measured request: index, start, ttft, e2e, mean ITL, TPOT, tokens, error.
void write_records_csv(const std::string& path, const std::vector<RequestRecord>& records);

}  // namespace wideserve::loadgen
