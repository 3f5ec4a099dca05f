#include "engine/engine_config.h"

#include "common/check.h"

namespace wideserve::engine {

void EngineConfig::validate() const {
  WS_CHECK_ARG(max_running_requests >= 1, "--max-running-requests must be >= 1, got {}",
               max_running_requests);
  WS_CHECK_ARG(chunked_prefill_size >= 1, "--chunked-prefill-size must be >= 1, got {}",
               chunked_prefill_size);
  WS_CHECK_ARG(max_total_tokens >= 0, "--max-total-tokens must be >= 0, got {}", max_total_tokens);
  WS_CHECK_ARG(context_length >= 0, "--context-length must be >= 0, got {}", context_length);
  WS_CHECK_ARG(page_size >= 1 && page_size <= 4096, "--page-size must be in [1, 4096], got {}",
               page_size);
  WS_CHECK_ARG(mem_fraction_static >= 0.0 && mem_fraction_static < 1.0,
               "--mem-fraction-static must be in (0, 1), got {}", mem_fraction_static);
  WS_CHECK_ARG(decode_log_interval >= 1, "--decode-log-interval must be >= 1, got {}",
               decode_log_interval);
  WS_CHECK_ARG(schedule_policy == "fcfs", "--schedule-policy '{}' not supported (fcfs)",
               schedule_policy);
  if (max_total_tokens > 0)
    WS_CHECK_ARG(max_total_tokens >= page_size,
                 "--max-total-tokens {} is smaller than one page ({})", max_total_tokens,
                 page_size);
}

}  // namespace wideserve::engine
