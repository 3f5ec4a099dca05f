// A running engine: EngineCore driven by its own step-loop thread. Thread-safe API for the worker:
// add a request with a callback that receives its outputs as they are produced, abort, stats.
#pragma once

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "engine/engine_core.h"

namespace wideserve::engine {

// Receives every output of one request, in order, on the engine thread; the last one has
// finish != kNone. Must not block for long.
using OutputCallback = std::function<void(const RequestOutput&)>;

class Engine {
 public:
  Engine(const EngineConfig& cfg, std::unique_ptr<ModelRunner> runner);
  ~Engine();  // stops the loop; unfinished requests get an abort output

  // Queues a request. Invalid requests (bad params, too long) get one output with kError.
  void add_request(NewRequest r, OutputCallback on_output);
  // Aborts a request at the next step boundary; pages are freed then.
  void abort(uint64_t id);
  // The latest step's stats.
  EngineStats stats() const;
  // Stops the loop (idempotent).
  void shutdown();

 private:
  void loop();

  EngineCore core_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::pair<NewRequest, OutputCallback>> inbox_;
  std::vector<uint64_t> aborts_;
  std::unordered_map<uint64_t, OutputCallback> callbacks_;  // loop thread only
  EngineStats stats_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace wideserve::engine
