// The step loop of one engine (one rank): continuous batching of prefill chunks and decode tokens
// over a paged KV pool, with a prefix cache, retraction under memory pressure and abort.
// Single-threaded: the caller (Engine's loop thread, or a test) calls add_request/abort/step.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "engine/engine_config.h"
#include "engine/model_runner.h"
#include "engine/request.h"
#include "engine/sampler.h"
#include "kvcache/page_pool.h"
#include "kvcache/radix_cache.h"

namespace wideserve::engine {

// Where a disaggregated request's KV comes from or goes to (SGLang's bootstrap fields).
struct DisaggInfo {
  std::string bootstrap_host;  // prefill engine's bootstrap server (decode side)
  int32_t bootstrap_port = 0;
  uint64_t bootstrap_room = 0;  // pairs the prefill request with its decode request
  bool present() const { return bootstrap_room != 0 || bootstrap_port != 0; }
};

// A request as the engine receives it.
struct NewRequest {
  uint64_t id = 0;
  std::vector<int32_t> prompt;
  SamplingParams params;
  int32_t sample_index = 0;  // n == 1 requests that are one sample of a larger n (seeding)
  // Migration: the prompt's last resumed_tokens are the sample's earlier output (n == 1); the
  // sampler counts them as generated, so penalties and seeded draws continue where they were.
  int32_t resumed_tokens = 0;
  bool hold_kv = false;  // prefill of a disaggregated request: keep KV pages after finishing
  DisaggInfo disagg;
  int32_t dp_rank = -1;  // multi-rank engines: the rank the router chose (-1: the engine picks)
};

// KV pages a finished hold_kv request still owns (data only).
struct HeldKv {
  std::vector<int32_t> pages;  // page table of the prompt
  int64_t num_tokens = 0;      // prompt tokens whose KV is in the pages
};

// Wide EP figures of a multi-rank engine (data only; ranks == 0 for a one-rank engine).
struct EpStats {
  int32_t ranks = 0;
  std::vector<int32_t> layers;          // decoder layer of each MoE layer below
  std::vector<double> layer_imbalance;  // latest window: max/mean over ranks of expert token-slots
  int64_t forwards = 0;                 // cumulative forward rounds
  int64_t tokens_dispatched = 0;        // cumulative token copies dispatched, all ranks and layers
  int64_t bytes_moved = 0;              // cumulative dispatch + combine bytes, all ranks
  int64_t rebalances = 0;               // cumulative online rebalances
};

// Load and memory figures (data only).
struct EngineStats {
  int64_t running = 0;
  int64_t waiting = 0;
  int64_t pages_total = 0;
  int64_t pages_free = 0;
  int64_t pages_cached = 0;       // held by the prefix cache (evictable when unlocked)
  int64_t pages_evictable = 0;    // cached pages no request uses (free for the taking)
  int64_t prefix_hit_tokens = 0;  // cumulative prompt tokens served from the cache
  int64_t generated_tokens = 0;   // cumulative
  int64_t retractions = 0;        // cumulative
  int64_t steps = 0;
  EpStats ep;
};

class EngineCore {
 public:
  EngineCore(const EngineConfig& cfg, std::unique_ptr<ModelRunner> runner);
  ~EngineCore();

  // Validates (params, token ids, lengths) and queues; throws Error(kInvalidArgument) on bad input.
  // n > 1 becomes n sequences reported with index 0..n-1, sharing the prompt's KV pages.
  void add_request(NewRequest r);
  // Finishes the request now (pages freed immediately); its final output comes with the next step.
  // Unknown or finished ids are ignored.
  void abort(uint64_t id);
  // Runs one step; returns the outputs of every request that produced a token or finished.
  std::vector<RequestOutput> step();

  // Disaggregation (decode side): pages for `tokens` tokens of KV that a peer will write, taken
  // from the free pool (evicting the prefix cache if needed); nullopt when memory is short.
  std::optional<std::vector<int32_t>> reserve_pages(int64_t tokens);
  // Returns reserved pages that will not be used.
  void free_reserved_pages(const std::vector<int32_t>& pages);
  // Starts decoding a request whose prompt KV already is in `pages` (reserved above), with the
  // first token sampled by the prefill engine. The first token is reported by the next step.
  void add_prefilled_request(NewRequest r, std::vector<int32_t> pages, SampleResult first);
  // Disaggregation (prefill side): the KV of a finished hold_kv request, until released.
  const HeldKv* held_kv(uint64_t id) const;
  void release_held_kv(uint64_t id);
  // Validates a request as add_request would, without queueing it.
  void validate_request(const NewRequest& r) const;

  // Whether a request (any of its samples) is still queued or running.
  bool has_request(uint64_t id) const { return requests_.count(id) > 0; }
  bool has_work() const {
    return !running_.empty() || !waiting_.empty() || !pending_outputs_.empty();
  }
  int64_t num_running() const { return static_cast<int64_t>(running_.size()); }
  KvBufferInfo kv_buffer() { return runner_->kv_buffer(); }
  const EngineConfig& cfg() const { return cfg_; }
  int64_t free_pages() const { return pool_.num_free(); }
  EngineStats stats() const;
  const EngineConfig& config() const { return cfg_; }
  int64_t vocab_size() const { return runner_->vocab_size(); }
  // The runner's fatal error (its device failed for good), else empty. Any thread.
  std::string fatal_error() const { return runner_->fatal_error(); }
  int64_t context_length() const { return context_length_; }
  int64_t page_size() const { return runner_->page_size(); }

 private:
  struct Seq;
  struct BatchItem {
    Seq* seq;
    int64_t n;  // tokens computed this step
  };

  bool ensure_pages(Seq* s, int64_t tokens_after, Seq* requester);
  void retract(Seq* s);
  void release_kv(Seq* s, bool cache);
  void cache_prompt(Seq* s);
  void finish(Seq* s, FinishReason r, std::vector<RequestOutput>* out);
  RequestOutput& output_for(Seq* s, std::vector<RequestOutput>* out);
  void log_step(int64_t decode_rows, int64_t prefill_rows, double seconds);

  EngineConfig cfg_;
  std::unique_ptr<ModelRunner> runner_;
  kvcache::PagePool pool_;
  std::unique_ptr<kvcache::RadixCache> radix_;
  std::vector<int32_t> eos_;
  int64_t context_length_;
  std::unordered_map<uint64_t, std::vector<std::unique_ptr<Seq>>> requests_;
  std::deque<Seq*> waiting_;
  std::vector<Seq*> running_;                                // in admission order
  std::vector<RequestOutput> pending_outputs_;               // from aborts between steps
  std::unordered_map<uint64_t, std::unique_ptr<Seq>> held_;  // finished hold_kv sequences
  std::unordered_map<uint64_t, HeldKv> held_info_;
  int64_t reserved_pages_ = 0;
  uint64_t admit_counter_ = 0;
  EngineStats stats_;
  int64_t decode_steps_since_log_ = 0;
  int64_t tokens_since_log_ = 0;
  double seconds_since_log_ = 0;
};

}  // namespace wideserve::engine
