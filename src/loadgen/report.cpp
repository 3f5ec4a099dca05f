#include "loadgen/report.h"

#include <fmt/format.h>

#include <cstdio>
#include <fstream>

#include "common/check.h"

namespace wideserve::loadgen {
namespace {

nlohmann::json summary_json(const Summary& s) {
  return {{"count", s.count}, {"mean", s.mean}, {"std", s.std}, {"min", s.min}, {"max", s.max},
          {"p50", s.p50},     {"p90", s.p90},   {"p95", s.p95}, {"p99", s.p99}};
}

std::string csv_escape(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

}  // namespace

double request_mean_itl_ms(const RequestRecord& r) {
  const auto& t = r.content_times_s;
  if (t.size() < 2) return 0;
  return (t.back() - t.front()) / static_cast<double>(t.size() - 1) * 1e3;
}

double request_tpot_ms(const RequestRecord& r) {
  if (r.completion_tokens < 2 || r.ttft_s < 0) return 0;
  return (r.e2e_s - r.ttft_s) / static_cast<double>(r.completion_tokens - 1) * 1e3;
}

BenchReport make_report(const std::vector<RequestRecord>& records, double duration_s,
                        const SloConfig& slo) {
  BenchReport rep;
  rep.duration_s = duration_s;
  rep.slo = slo;
  std::vector<double> ttft, itl, tpot, e2e, in_len, out_len;
  for (const auto& r : records) {
    if (r.warmup) continue;
    if (!r.ok()) {
      ++rep.failed;
      ++rep.errors[r.error_kind];
      continue;
    }
    ++rep.completed;
    rep.total_input_tokens += r.prompt_tokens;
    rep.total_output_tokens += r.completion_tokens;
    in_len.push_back(static_cast<double>(r.prompt_tokens));
    out_len.push_back(static_cast<double>(r.completion_tokens));
    ttft.push_back(r.ttft_s * 1e3);
    e2e.push_back(r.e2e_s * 1e3);
    for (size_t i = 1; i < r.content_times_s.size(); ++i)
      itl.push_back((r.content_times_s[i] - r.content_times_s[i - 1]) * 1e3);
    if (r.completion_tokens >= 2) tpot.push_back(request_tpot_ms(r));
    bool good = (slo.ttft_ms <= 0 || r.ttft_s * 1e3 <= slo.ttft_ms) &&
                (slo.itl_ms <= 0 || request_mean_itl_ms(r) <= slo.itl_ms) &&
                (slo.tpot_ms <= 0 || request_tpot_ms(r) <= slo.tpot_ms) &&
                (slo.e2e_ms <= 0 || r.e2e_s * 1e3 <= slo.e2e_ms);
    if (good) ++rep.good_requests;
  }
  rep.ttft_ms = summarize(std::move(ttft));
  rep.itl_ms = summarize(std::move(itl));
  rep.tpot_ms = summarize(std::move(tpot));
  rep.e2e_ms = summarize(std::move(e2e));
  rep.input_tokens = summarize(std::move(in_len));
  rep.output_tokens = summarize(std::move(out_len));
  if (duration_s > 0) {
    rep.request_throughput = static_cast<double>(rep.completed) / duration_s;
    rep.input_token_throughput = static_cast<double>(rep.total_input_tokens) / duration_s;
    rep.output_token_throughput = static_cast<double>(rep.total_output_tokens) / duration_s;
    rep.total_token_throughput = rep.input_token_throughput + rep.output_token_throughput;
    if (slo.any()) rep.goodput = static_cast<double>(rep.good_requests) / duration_s;
  }
  if (!slo.any()) rep.good_requests = 0;
  return rep;
}

nlohmann::json report_to_json(const BenchReport& r) {
  nlohmann::json j;
  j["completed"] = r.completed;
  j["failed"] = r.failed;
  j["errors"] = r.errors;
  j["duration_s"] = r.duration_s;
  j["total_input_tokens"] = r.total_input_tokens;
  j["total_output_tokens"] = r.total_output_tokens;
  j["request_throughput"] = r.request_throughput;
  j["input_token_throughput"] = r.input_token_throughput;
  j["output_token_throughput"] = r.output_token_throughput;
  j["total_token_throughput"] = r.total_token_throughput;
  j["ttft_ms"] = summary_json(r.ttft_ms);
  j["itl_ms"] = summary_json(r.itl_ms);
  j["tpot_ms"] = summary_json(r.tpot_ms);
  j["e2e_latency_ms"] = summary_json(r.e2e_ms);
  j["input_tokens"] = summary_json(r.input_tokens);
  j["output_tokens"] = summary_json(r.output_tokens);
  if (r.slo.any()) {
    nlohmann::json slo = nlohmann::json::object();
    if (r.slo.ttft_ms > 0) slo["ttft_ms"] = r.slo.ttft_ms;
    if (r.slo.itl_ms > 0) slo["itl_ms"] = r.slo.itl_ms;
    if (r.slo.tpot_ms > 0) slo["tpot_ms"] = r.slo.tpot_ms;
    if (r.slo.e2e_ms > 0) slo["e2e_ms"] = r.slo.e2e_ms;
    j["slo"] = slo;
    j["good_requests"] = r.good_requests;
    j["goodput"] = r.goodput;
  }
  return j;
}

std::string report_to_text(const BenchReport& r) {
  std::string s;
  auto line = [&](std::string_view name, const std::string& value) {
    s += fmt::format("{:<34}{:>16}\n", name, value);
  };
  auto num = [](double v) { return fmt::format("{:.2f}", v); };
  s += fmt::format("{:=^50}\n", " Serving Benchmark Result ");
  line("Successful requests:", std::to_string(r.completed));
  line("Failed requests:", std::to_string(r.failed));
  for (const auto& [kind, n] : r.errors) line(fmt::format("  {}:", kind), std::to_string(n));
  line("Benchmark duration (s):", num(r.duration_s));
  line("Total input tokens:", std::to_string(r.total_input_tokens));
  line("Total output tokens:", std::to_string(r.total_output_tokens));
  line("Request throughput (req/s):", num(r.request_throughput));
  line("Input token throughput (tok/s):", num(r.input_token_throughput));
  line("Output token throughput (tok/s):", num(r.output_token_throughput));
  line("Total token throughput (tok/s):", num(r.total_token_throughput));
  if (r.slo.any()) {
    line("Good requests (meet SLOs):", std::to_string(r.good_requests));
    line("Goodput (req/s):", num(r.goodput));
  }
  auto block = [&](std::string_view title, const Summary& m) {
    s += fmt::format("{:-^50}\n", fmt::format(" {} (ms) ", title));
    line("Mean:", num(m.mean));
    line("P50:", num(m.p50));
    line("P90:", num(m.p90));
    line("P99:", num(m.p99));
  };
  block("Time to First Token", r.ttft_ms);
  block("Inter-token Latency", r.itl_ms);
  block("Time per Output Token", r.tpot_ms);
  block("End-to-end Latency", r.e2e_ms);
  s += std::string(50, '=') + "\n";
  return s;
}

void write_records_csv(const std::string& path, const std::vector<RequestRecord>& records) {
  std::ofstream f(path);
  WS_CHECK_CODE(kNotFound, f.good(), "cannot write {}", path);
  f << "index,start_s,ttft_ms,e2e_ms,mean_itl_ms,tpot_ms,chunks,prompt_tokens,completion_tokens,"
       "http_status,error_kind,error_message\n";
  for (const auto& r : records) {
    if (r.warmup) continue;
    f << fmt::format("{},{:.6f},{:.3f},{:.3f},{:.3f},{:.3f},{},{},{},{},{},{}\n", r.index,
                     r.start_s, r.ttft_s >= 0 ? r.ttft_s * 1e3 : -1.0, r.e2e_s * 1e3,
                     request_mean_itl_ms(r), request_tpot_ms(r), r.content_times_s.size(),
                     r.prompt_tokens, r.completion_tokens, r.http_status, r.error_kind,
                     csv_escape(r.error_message));
  }
  WS_CHECK_CODE(kDataLoss, f.good(), "error writing {}", path);
}

}  // namespace wideserve::loadgen
