// Drives a benchmark: warm-up, then requests by fixed concurrency or by gamma/Poisson arrivals
// (optionally capped by a concurrency limit), until a request count or a duration is reached.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "loadgen/request_body.h"
#include "loadgen/types.h"

namespace wideserve::loadgen {

struct BenchConfig {
  std::string url;         // http://host:port[/prefix]
  RequestOptions request;  // endpoint, model, ignore_eos, extra body
  std::string api_key;
  int64_t concurrency = 1;         // max requests in flight; 0: no limit (needs request_rate)
  double request_rate = 0;         // requests/s; 0: closed loop at `concurrency`
  double burstiness = 1.0;         // gamma shape of inter-arrival gaps (1: Poisson)
  int64_t num_requests = 0;        // stop issuing after this many (0: use duration_s)
  double duration_s = 0;           // stop issuing after this long (0: use num_requests)
  int64_t warmup_requests = 0;     // sent first, at `concurrency`, and excluded from results
  double request_timeout_s = 600;  // idle timeout of each connect/write/read
  int threads = 2;                 // io threads
  uint64_t seed = 0;
};

// A snapshot for progress display.
struct Progress {
  bool warmup = false;
  int64_t sent = 0, completed = 0, failed = 0, in_flight = 0;
  int64_t total = 0;  // requests to send; 0 in duration mode
  double elapsed_s = 0, duration_s = 0;
  int64_t output_tokens = 0;
};

struct BenchOutcome {
  std::vector<RequestRecord> records;  // warm-up and measured, in completion order
  double duration_s = 0;               // first measured send to last measured completion
};

// Runs the benchmark; prompts are used in order (warm-up first), cycling when exhausted.
// `on_progress` (may be null) is called from the calling thread about every 100 ms.
BenchOutcome run_benchmark(const BenchConfig& cfg, const std::vector<Prompt>& prompts,
                           const std::function<void(const Progress&)>& on_progress);

}  // namespace wideserve::loadgen
