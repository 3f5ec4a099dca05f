// A running engine: EngineCore driven by its own step-loop thread. Thread-safe API for the worker:
// add a request with a callback that receives its outputs as they are produced, abort, stats.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "engine/engine_core.h"
#include "engine/loop_hook.h"

namespace wideserve::engine {

// Receives every output of one request, in order, on the engine thread; the last one has
// finish != kNone. Must not block for long.
using OutputCallback = std::function<void(const RequestOutput&)>;

// What a worker drives: the real engine, or the mock engine used to measure the serving path.
class AsyncEngine {
 public:
  virtual ~AsyncEngine() = default;
  // Queues a request. Invalid requests (bad params, too long) get one output with kError.
  virtual void add_request(NewRequest r, OutputCallback on_output) = 0;
  // Aborts a request at the next step boundary; pages are freed then.
  virtual void abort(uint64_t id) = 0;
  // The latest step's stats.
  virtual EngineStats stats() const = 0;
  // Stops the loop (idempotent); unfinished requests get an abort output.
  virtual void shutdown() = 0;
  // Vocabulary size, context length and KV page size the engine runs with.
  virtual int64_t vocab_size() const = 0;
  virtual int64_t context_length() const = 0;
  virtual int64_t page_size() const = 0;
  // Seconds since the last completed step while work is pending (0 when idle): for the watchdog.
  virtual double seconds_stuck() const = 0;
  // Why the engine can no longer serve (e.g. a rank of another process was lost), else empty.
  virtual std::string fatal_error() const { return {}; }
};

// The real engine: EngineCore on its own step-loop thread.
class Engine : public AsyncEngine {
 public:
  Engine(const EngineConfig& cfg, std::unique_ptr<ModelRunner> runner);
  // With a loop hook (disaggregation); `make_hook` runs on the caller's thread with the runner's
  // KV buffer before the loop starts.
  Engine(const EngineConfig& cfg, std::unique_ptr<ModelRunner> runner,
         std::function<std::unique_ptr<LoopHook>(const KvBufferInfo&)> make_hook);
  ~Engine() override;

  void add_request(NewRequest r, OutputCallback on_output) override;
  void abort(uint64_t id) override;
  EngineStats stats() const override;
  void shutdown() override;
  int64_t vocab_size() const override { return vocab_size_; }
  int64_t context_length() const override { return context_length_; }
  int64_t page_size() const override { return page_size_; }
  double seconds_stuck() const override;
  std::string fatal_error() const override { return core_.fatal_error(); }

 private:
  void loop();

  EngineCore core_;
  std::unique_ptr<LoopHook> hook_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::pair<NewRequest, OutputCallback>> inbox_;
  std::vector<uint64_t> aborts_;
  std::unordered_map<uint64_t, OutputCallback> callbacks_;  // loop thread only
  EngineStats stats_;
  int64_t vocab_size_ = 0, context_length_ = 0, page_size_ = 0;
  std::atomic<int64_t> step_started_ns_{0};  // nonzero while a step runs
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace wideserve::engine
