// Data-only messages of the request plane (frontend <-> worker) and of embedded discovery
// (worker -> registry). Encoded with msgpack by runtime/codec.h; every frame carries
// kProtocolVersion so that mismatched binaries fail with a clear error instead of misreading.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/engine_core.h"
#include "engine/request.h"
#include "engine/sampling_params.h"

namespace wideserve::runtime {

// Bumped on any incompatible change of a message below.
inline constexpr uint32_t kProtocolVersion = 1;

// What a worker does with requests (disaggregation roles arrive with the PD issue).
enum class WorkerRole : uint8_t { kAggregated = 0, kPrefill = 1, kDecode = 2 };

// Frontend -> worker: generate from token ids. request_id is chosen by the frontend and unique
// within that frontend's connection.
struct GenerateRequest {
  uint64_t request_id = 0;
  std::vector<int32_t> token_ids;
  engine::SamplingParams params;
  int32_t sample_index = 0;   // when n == 1 stands for one sample of a larger n (PD splits n)
  engine::DisaggInfo disagg;  // PD: bootstrap host/port/room (absent: aggregated)
  // Migration: the last resumed_tokens of token_ids are this sample's own earlier output (from a
  // worker that died); the sampler continues after them (penalties, seeded draws).
  int32_t resumed_tokens = 0;
  // The data-parallel rank the KV router chose on a multi-rank worker (SGLang's
  // data_parallel_rank); -1 lets the worker's --load-balance-method choose.
  int32_t dp_rank = -1;
};

// Frontend -> worker: stop a request now and free its KV pages.
struct AbortRequest {
  uint64_t request_id = 0;
};

// Worker -> frontend: the next piece of one request's output. `output.id` is the frontend's
// request_id. The last message of a sample has output.finish != kNone; a request with n samples
// ends when every index has finished.
struct GenerateOutput {
  engine::RequestOutput output;
};

// Load figures a worker publishes with every heartbeat.
struct WorkerLoad {
  int64_t running = 0;           // sequences in the running batch
  int64_t waiting = 0;           // sequences queued
  int64_t kv_pages_total = 0;    // KV pool size in pages
  int64_t kv_pages_used = 0;     // pages held by requests or the prefix cache
  int64_t generated_tokens = 0;  // cumulative
  int64_t kv_pages_active = 0;   // pages requests hold (used minus the cache's evictable pages)
  engine::EpStats ep;            // wide EP workers: expert load imbalance, tokens dispatched
};

// Everything the frontend needs to know to use a worker.
struct WorkerInfo {
  std::string instance_id;  // unique per worker process (host:pid:random)
  std::string model_name;   // --served-model-name (or the model path)
  std::string model_path;   // where the frontend loads tokenizer and chat template from
  std::string endpoint;     // request-plane address, e.g. tcp://10.0.0.5:41231
  WorkerRole role = WorkerRole::kAggregated;
  int64_t context_length = 0;  // max prompt + output tokens
  int64_t page_size = 0;       // KV tokens per page (the block size of KV routing)
  int64_t kv_capacity_tokens = 0;
  int64_t vocab_size = 0;
  int32_t dp_size = 1;
  std::string reasoning_parser;    // --dyn-reasoning-parser (e.g. deepseek_r1), empty = none
  std::string tool_call_parser;    // --dyn-tool-call-parser (e.g. deepseek_v3), empty = none
  std::string bootstrap_host;      // PD issue
  int32_t bootstrap_port = 0;      // PD issue
  std::string kv_events_endpoint;  // ZMQ PUB of KV events (runtime/kv_events.h), empty = none
  std::string kv_state_endpoint;   // ZMQ ROUTER answering KV state queries (resync)
};

// Worker -> registry, every heartbeat interval: full info (so a restarted registry relearns it),
// current load, and whether the worker is draining (stop routing new work to it).
struct Heartbeat {
  WorkerInfo info;
  WorkerLoad load;
  bool draining = false;
};

// Registry -> worker reply to a heartbeat.
struct HeartbeatAck {
  bool accepted = true;
  std::string error;  // why not (e.g. a model name served with a different tokenizer)
};

// Worker -> registry on clean shutdown: forget me now rather than after the TTL.
struct Unregister {
  std::string instance_id;
};

}  // namespace wideserve::runtime
