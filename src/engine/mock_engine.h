// A model-free engine for measuring the serving path (frontend, request plane, worker) alone, like
// Dynamo's mocker: fixed decode step time, simulated prefill rate, deterministic tokens.
#pragma once

#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "engine/engine.h"

namespace wideserve::engine {

// Timing and capacity of the mock.
struct MockEngineConfig {
  double decode_step_ms = 10.0;         // one token per running sequence per step
  double prefill_tokens_per_s = 1.0e5;  // prompt tokens admitted in a step add to its time
  int64_t vocab_size = 129280;
  int64_t context_length = 163840;
  int64_t max_running_requests = 256;
  int64_t page_size = 16;
  int64_t max_total_tokens = 1 << 22;  // KV capacity accounted in pages
};

// Token stream of the mock: a function of (prompt, seed, sample index, position) only, so that
// the same request gives the same tokens whatever else runs. Its distribution is a point mass, so
// every chosen token has logprob 0 and no alternatives.
class MockEngine : public AsyncEngine {
 public:
  explicit MockEngine(const MockEngineConfig& cfg);
  ~MockEngine() override;

  void add_request(NewRequest r, OutputCallback on_output) override;
  void abort(uint64_t id) override;
  EngineStats stats() const override;
  void shutdown() override;
  int64_t vocab_size() const override { return cfg_.vocab_size; }
  int64_t context_length() const override { return cfg_.context_length; }
  int64_t page_size() const override { return cfg_.page_size; }
  double seconds_stuck() const override { return 0.0; }

  // The token the mock emits at `position` (0-based among generated tokens).
  static int32_t token_at(uint64_t prompt_hash, uint64_t seed, int32_t index, int64_t position,
                          int64_t vocab_size);

 private:
  struct Seq {
    uint64_t id;
    int32_t index;
    uint64_t prompt_hash;
    uint64_t seed;
    int64_t prompt_len;
    int64_t generated = 0;
    int64_t pages = 0;
    bool prefilled = false;
    int64_t resumed = 0;     // migration: output tokens an earlier worker produced (in the prompt)
    int32_t seed_index = 0;  // the sample's index in its original request (PD/migration: n = 1)
  };
  struct Req {
    NewRequest req;
    OutputCallback cb;
    int32_t open = 0;  // samples not finished
  };
  void loop();
  void finish_seq(Seq& s, FinishReason r,
                  std::vector<std::pair<OutputCallback*, RequestOutput>>& out);

  MockEngineConfig cfg_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::pair<NewRequest, OutputCallback>> inbox_;
  std::vector<uint64_t> aborts_;
  EngineStats stats_;
  bool stop_ = false;
  // Loop thread only.
  std::unordered_map<uint64_t, Req> reqs_;
  std::deque<Seq> waiting_;
  std::vector<Seq> running_;
  int64_t pages_used_ = 0;
  std::thread thread_;
};

}  // namespace wideserve::engine
