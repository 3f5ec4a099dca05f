// Request lifecycle inside one engine: states, finish reasons, and per-step outputs.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/sampler.h"
#include "engine/sampling_params.h"

namespace wideserve::engine {

// Every state a request passes through, in lifecycle order; states only move forward, except
// retraction (kDecoding/kPrefilling -> kWaiting, recomputed later). The disaggregation states
// (bootstrapping, KV transfer) join with the prefill/decode issue.
enum class RequestState {
  kWaiting,     // queued; no KV pages
  kPrefilling,  // prompt (or recomputed prefix) being computed in chunks
  kDecoding,    // one token per step
  kFinished,    // done: pages released
};

// Why a request finished.
enum class FinishReason { kNone, kStop, kLength, kAbort, kError };

// Name for logs and the API ("stop", "length", "abort", "error").
const char* finish_reason_name(FinishReason r);
// Name of a state, for logs.
const char* request_state_name(RequestState s);

// What the engine reports about one request after a step (data only).
struct RequestOutput {
  uint64_t id = 0;
  int32_t index = 0;  // which of the request's n samples
  std::vector<int32_t> new_tokens;
  std::vector<SampleResult> logprobs;  // one per new token when top_logprobs >= 0
  FinishReason finish = FinishReason::kNone;
  int32_t matched_stop_token = -1;  // the EOS / stop token id that ended it, if any
  int64_t prompt_tokens = 0;
  int64_t cached_tokens = 0;  // prompt tokens served from the prefix cache
  int64_t completion_tokens = 0;
  std::string error;  // set when finish == kError
  // Frontend only (never on the wire): the error is the worker's loss (request-plane failure,
  // heartbeat or lease loss), not the request's fault, so the request may move elsewhere.
  bool worker_lost = false;
};

}  // namespace wideserve::engine
