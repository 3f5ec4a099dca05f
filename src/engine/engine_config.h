// Engine settings (SGLang's flag names), validated once at start.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "kvcache/kv_events.h"

namespace wideserve::engine {

// Scheduler and KV pool limits of one engine (one rank).
struct EngineConfig {
  int64_t max_running_requests = 256;    // --max-running-requests
  int64_t chunked_prefill_size = 8192;   // --chunked-prefill-size: prefill tokens per step
  int64_t max_total_tokens = 0;          // --max-total-tokens: KV pool size in tokens (0 = default)
  int64_t context_length = 0;            // --context-length (0 = model's max_position_embeddings)
  int64_t page_size = 16;                // --page-size: tokens per KV page
  double mem_fraction_static = 0.0;      // --mem-fraction-static (GPU pools; 0 = unset)
  bool disable_radix_cache = false;      // --disable-radix-cache
  int64_t decode_log_interval = 40;      // --decode-log-interval: log every N decode steps
  std::string schedule_policy = "fcfs";  // --schedule-policy
  // Not a flag: where the prefix cache reports its blocks (the worker's KV event publisher).
  std::shared_ptr<kvcache::KvEventSink> kv_event_sink;

  // Throws Error(kInvalidArgument) naming the flag of the first bad value.
  void validate() const;
};

}  // namespace wideserve::engine
